// postalias(1): create, query or update alias databases; as newaliases(1), rebuild every
// table named in alias_database.
//   postalias [-Nfinoprsuvw] [-c config_dir] [-d key] [-q key] [map_type:]file...
//   newaliases [-v] [-c config_dir]
// Options, output, messages and exit codes follow Postfix 3.7's postalias (and the
// rebuild that Postfix's sendmail -bi / newaliases asks postalias for).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "util/base/strings.h"
#include "util/config/config.h"
#include "util/log/log.h"
#include "util/log/log_config.h"
#include "util/table/alias_source.h"
#include "util/table/map_command.h"

namespace postern::postalias {
namespace {

struct Options {
    table::MapCommand cmd;
    const char* config_dir = nullptr;
    const char* query = nullptr;
    const char* delkey = nullptr;
    bool sequence = false;
    bool incremental = false;
    bool utf8_off = false;
    int verbose = 0;
    std::vector<std::string> maps;
    bool newaliases = false;
    std::string myhostname;
};

[[noreturn]] void usage(const Options& o, const char* prog) {
    if (o.newaliases) log::fatal("usage: %s [-v] [-c config_dir]", prog);
    log::fatal("usage: %s [-Nfinoprsuvw] [-c config_dir] [-d key] [-q key] [map_type:]file...", prog);
}

Options parse_options(int argc, char** argv) {
    using namespace table;
    Options o;
    o.cmd.alias_format = true;
    o.newaliases = std::strcmp(argv[0], "newaliases") == 0;
    if (std::getenv("MAIL_VERBOSE")) o.verbose = 1;
    int ch;
    while ((ch = getopt(argc, argv, "Nc:d:finopq:rsuvw")) > 0) {
        switch (ch) {
            case 'N': o.cmd.flags = (o.cmd.flags | kTryNul1) & ~kTryNul0; break;
            case 'c': o.config_dir = optarg; break;
            case 'd':
                if (o.sequence || o.query || o.delkey) log::fatal("specify only one of -s -q or -d");
                o.delkey = optarg;
                break;
            case 'f': o.cmd.flags &= ~kFoldFix; break;
            case 'i': o.incremental = true; break;
            case 'n': o.cmd.flags = (o.cmd.flags | kTryNul0) & ~kTryNul1; break;
            case 'o': o.cmd.as_owner = false; break;
            case 'p': o.cmd.save_permissions = false; break;
            case 'q':
                if (o.sequence || o.query || o.delkey) log::fatal("specify only one of -s -q or -d");
                o.query = optarg;
                break;
            case 'r': o.cmd.flags = (o.cmd.flags & ~(kDupWarn | kDupIgnore)) | kDupReplace; break;
            case 's':
                if (o.query || o.delkey) log::fatal("specify only one of -s or -q or -d");
                o.sequence = true;
                break;
            case 'u': o.utf8_off = true; break;
            case 'v': ++o.verbose; break;
            case 'w': o.cmd.flags = (o.cmd.flags & ~(kDupWarn | kDupReplace)) | kDupIgnore; break;
            default: usage(o, argv[0]);
        }
    }
    for (int i = optind; i < argc; ++i) o.maps.emplace_back(argv[i]);
    if (o.newaliases && (!o.maps.empty() || o.query || o.delkey || o.sequence || o.incremental))
        usage(o, argv[0]);
    return o;
}

void apply_config(Options& o) {
    auto config = config::Config::load(config::config_directory(o.config_dir), o.newaliases ? "newaliases" : "postalias");
    if (!config) log::fatal("%s", config.error().c_str());
    log::configure_from(*config);
    log::set_verbose(o.verbose);
    std::string type = config->get("default_database_type");
    if (!type.empty()) o.cmd.default_type = type;
    if (table::smtputf8_enabled(*config) && !o.utf8_off) o.cmd.flags |= table::kUtf8;
    o.myhostname = config->get("myhostname");
    if (o.newaliases) o.maps = config->get_list("alias_database");
}

// After the source: the "@" entry that tells sendmail-style readers the database is
// complete, and the NIS entries, which Postfix writes without a NUL and without folding.
void add_signatures(table::Table& t, bool incremental, const std::string& myhostname) {
    if (incremental) {
        if (auto r = t.remove("@"); !r) log::fatal("table %s: update failed: %s", t.spec().c_str(), r.error().c_str());
    }
    if (Status s = t.update("@", "@"); !s) log::fatal("table %s: write error: %s", t.spec().c_str(), s.error().c_str());
    std::string when = strprintf("%010ld", static_cast<long>(std::time(nullptr)));
    if (Status s = table::put_raw(t, "YP_LAST_MODIFIED", when); !s) return;  // not a Berkeley DB table
    if (Status s = table::put_raw(t, "YP_MASTER_NAME", myhostname); !s)
        log::fatal("table %s: write error: %s", t.spec().c_str(), s.error().c_str());
}

int run(Options& o, const char* prog) {
    table::LookupModes modes{o.query, o.delkey, o.sequence, {}};
    if (int rc = table::run_lookup_mode(o.cmd, o.maps, modes, [&o, prog] { usage(o, prog); }); rc >= 0) return rc;
    if (o.maps.empty()) usage(o, prog);
    const bool utf8 = (o.cmd.flags & table::kUtf8) != 0;
    auto parse = [utf8](const table::LogicalLine& line, std::string_view path, std::vector<std::string>& warnings) {
        return table::parse_alias_line(line, path, utf8, warnings);
    };
    const std::string host = o.myhostname;
    auto finish = [&host](table::Table& t, bool incremental) { add_signatures(t, incremental, host); };
    // As with Postfix, a map that cannot be built stops the run; earlier ones are done.
    for (const std::string& m : o.maps)
        table::build_map(o.cmd, table::full_spec(m, o.cmd.default_type), o.incremental, parse, finish);
    return 0;
}

}  // namespace
}  // namespace postern::postalias

int main(int argc, char** argv) {
    using namespace postern;
    umask(022);
    if (const char* slash = std::strrchr(argv[0], '/'); slash && slash[1]) argv[0] = const_cast<char*>(slash + 1);
    log::init(argv[0]);
    postalias::Options opt = postalias::parse_options(argc, argv);
    postalias::apply_config(opt);
    return postalias::run(opt, argv[0]);
}
