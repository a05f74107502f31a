// unix:passwd.byname and unix:group.byname — the system's user and group databases
// through getpwnam_r/getgrnam_r, formatted as the passwd(5)/group(5) line Postfix returns.
#include <grp.h>
#include <pwd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "util/base/strings.h"
#include "util/table/table_source.h"
#include "util/table/table_types.h"

namespace postern::table {
namespace {

enum class UnixMap { Passwd, Group };

class UnixTable final : public Table {
public:
    UnixTable(std::string spec, unsigned flags, UnixMap map) : Table(std::move(spec), flags), map_(map) {}

    LookupResult lookup(std::string_view key) override {
        std::string name = (flags() & kFoldFix) ? fold_key(key, false) : std::string(key);
        if (name.find('\0') != std::string::npos) return LookupResult::miss();
        return map_ == UnixMap::Passwd ? lookup_passwd(name) : lookup_group(name);
    }
    Status for_each(const std::function<bool(std::string_view, std::string_view)>&) override {
        return make_error(strprintf("table %s: sequence operation is not supported", spec().c_str()));
    }

private:
    // The _r functions want a caller buffer; grow it while they answer ERANGE.
    template <class Rec, class Fn>
    LookupResult fetch(const std::string& name, Fn fn, Rec& rec, Rec*& out, std::vector<char>& buf) {
        buf.resize(4096);
        for (;;) {
            int err = fn(name.c_str(), &rec, buf.data(), buf.size(), &out);
            if (err == ERANGE && buf.size() < (1u << 22)) {
                buf.resize(buf.size() * 2);
                continue;
            }
            if (out) return LookupResult::hit("");
            if (err == 0 || err == ENOENT || err == ESRCH || err == EBADF || err == EPERM)
                return LookupResult::miss();
            return LookupResult::fail(strprintf("%s: %s", spec().c_str(), std::strerror(err)));
        }
    }

    LookupResult lookup_passwd(const std::string& name) {
        struct passwd pw, *out = nullptr;
        std::vector<char> buf;
        LookupResult r = fetch(name, getpwnam_r, pw, out, buf);
        if (!r.found()) return r;
        return LookupResult::hit(strprintf("%s:%s:%ld:%ld:%s:%s:%s", out->pw_name, out->pw_passwd,
                                           static_cast<long>(out->pw_uid), static_cast<long>(out->pw_gid),
                                           out->pw_gecos, out->pw_dir, out->pw_shell));
    }

    LookupResult lookup_group(const std::string& name) {
        struct group gr, *out = nullptr;
        std::vector<char> buf;
        LookupResult r = fetch(name, getgrnam_r, gr, out, buf);
        if (!r.found()) return r;
        std::string line = strprintf("%s:%s:%ld:", out->gr_name, out->gr_passwd, static_cast<long>(out->gr_gid));
        for (char** m = out->gr_mem; m && *m; ++m) {
            if (m != out->gr_mem) line += ',';
            line += *m;
        }
        return LookupResult::hit(std::move(line));
    }

    UnixMap map_;
};

}  // namespace

TableResult open_unix_table(std::string_view spec, std::string_view name, unsigned flags) {
    if (name.empty())
        return make_error(strprintf("open dictionary: expecting \"type:name\" form instead of \"%.*s\"",
                                    static_cast<int>(spec.size()), spec.data()));
    UnixMap map;
    if (name == "passwd.byname") map = UnixMap::Passwd;
    else if (name == "group.byname") map = UnixMap::Group;
    else return make_error(strprintf("unknown table: %.*s", static_cast<int>(spec.size()), spec.data()));
    return std::unique_ptr<Table>(std::make_unique<UnixTable>(std::string(spec), flags, map));
}

}  // namespace postern::table
