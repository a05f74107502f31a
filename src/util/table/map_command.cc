#include "util/table/map_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/base/strings.h"
#include "util/base/unique_fd.h"
#include "util/log/log.h"

namespace postern::table {
namespace {

constexpr size_t kReadChunk = 65536;

// Opens a map for a query or dump; failure to open is fatal, as in Postfix.
std::unique_ptr<Table> open_or_die(const std::string& spec, unsigned flags) {
    auto t = open_table(spec, flags);
    if (!t) log::fatal("%s", t.error().c_str());
    return std::move(t.value());
}

unsigned query_flags(const MapCommand& cmd) { return (cmd.flags & ~(kCreate)) | kReadOnly | kLock; }

void warn_empty_value(const std::string& spec, std::string_view key) {
    log::warn("table %s: key %.*s: empty string result is not allowed", spec.c_str(),
              static_cast<int>(key.size()), key.data());
    log::warn("table %s should return NO RESULT in case of NOT FOUND", spec.c_str());
}

// Postfix adds the system error text only when there is one; a table that already
// logged why (a configuration error) leaves the detail empty.
[[noreturn]] void query_error(const std::string& spec, const std::string& detail) {
    if (detail.empty()) log::fatal("table %s: query error", spec.c_str());
    log::fatal("table %s: query error: %s", spec.c_str(), detail.c_str());
}

void write_out(std::string_view text) { std::fwrite(text.data(), 1, text.size(), stdout); }

// Reads standard input in chunks and hands out its lines without the newline; a last
// line without a newline counts too (Postfix's vstring_get_nonl).
template <class Fn>
void for_each_stdin_line(Fn fn) {
    std::string pending;
    char buf[kReadChunk];
    for (;;) {
        ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) log::fatal("read standard input: %s", std::strerror(errno));
        if (n == 0) break;
        std::string_view chunk(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = chunk.find('\n')) != std::string_view::npos) {
            if (pending.empty()) {
                if (!fn(chunk.substr(0, nl))) return;
            } else {
                pending.append(chunk.substr(0, nl));
                if (!fn(std::string_view(pending))) return;
                pending.clear();
            }
            chunk.remove_prefix(nl + 1);
        }
        pending.append(chunk);
    }
    if (!pending.empty()) fn(std::string_view(pending));
}

// A message header line starts with a field name and a colon (RFC 5322).
bool is_header_line(std::string_view line) {
    size_t i = 0;
    while (i < line.size() && line[i] > ' ' && line[i] < 0x7f && line[i] != ':') ++i;
    if (i == 0) return false;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    return i < line.size() && line[i] == ':';
}

// Looks up one key in the maps in order, opening each map the first time it is needed.
class LazyMaps {
public:
    LazyMaps(const MapCommand& cmd, const std::vector<std::string>& maps) : cmd_(cmd), maps_(maps) {
        tables_.resize(maps.size());
        for (const std::string& m : maps) specs_.push_back(full_spec(m, cmd.default_type));
    }

    // Prints "key<TAB>value" for the first map that has it.
    bool query(std::string_view key) {
        for (size_t n = 0; n < tables_.size(); ++n) {
            if (!tables_[n]) tables_[n] = open_or_die(specs_[n], query_flags(cmd_));
            LookupResult r = tables_[n]->lookup(key);
            if (r.status == LookupResult::Status::Error) query_error(specs_[n], r.error);
            if (r.found()) {
                if (r.value.empty()) warn_empty_value(specs_[n], key);
                std::string line(key);
                line += cmd_.alias_format ? ":\t" : "\t";
                line += r.value;
                line += '\n';
                write_out(line);
                return true;
            }
        }
        return false;
    }

private:
    const MapCommand& cmd_;
    const std::vector<std::string>& maps_;
    std::vector<std::string> specs_;
    std::vector<std::unique_ptr<Table>> tables_;
};

// Feeds -h/-b keys from a message: each logical header line (continuations joined with
// a newline), and after the headers each body line, the separating empty line included.
class MessageKeys {
public:
    MessageKeys(QueryKeyMode mode, LazyMaps& maps) : mode_(mode), maps_(maps) {}

    // False when nothing more needs to be read.
    bool line(std::string_view text) {
        if (in_body_) {
            if (mode_.body) found_ |= maps_.query(text);
            return true;
        }
        if (have_header_ && !text.empty() && (text[0] == ' ' || text[0] == '\t')) {
            header_ += '\n';
            header_.append(text);
            return true;
        }
        flush_header();
        if (is_header_line(text)) {
            header_.assign(text);
            have_header_ = true;
            return true;
        }
        // End of the headers: an empty line, or text that is no header (then Postfix's
        // MIME engine supplies the missing empty line first).
        in_body_ = true;
        if (!mode_.body) return false;
        if (!text.empty()) found_ |= maps_.query("");
        found_ |= maps_.query(text);
        return true;
    }

    bool finish() {
        flush_header();
        return found_;
    }

private:
    void flush_header() {
        if (!have_header_) return;
        have_header_ = false;
        if (mode_.headers) found_ |= maps_.query(header_);
    }

    QueryKeyMode mode_;
    LazyMaps& maps_;
    std::string header_;
    bool have_header_ = false;
    bool in_body_ = false;
    bool found_ = false;
};

// Drops privileges to the source file's owner and narrows the umask to the source's
// group/other read bits, as postmap does before it creates the result.
void adopt_source_identity(const MapCommand& cmd, const struct stat& st) {
    if (cmd.save_permissions && S_ISREG(st.st_mode)) ::umask(022 | (~st.st_mode & 077));
    if (cmd.as_owner && ::getuid() == 0 && (st.st_uid != ::geteuid() || st.st_gid != ::getegid())) {
        if (::setegid(st.st_gid) < 0) log::fatal("setegid(%ld): %s", static_cast<long>(st.st_gid), std::strerror(errno));
        if (::seteuid(st.st_uid) < 0) log::fatal("seteuid(%ld): %s", static_cast<long>(st.st_uid), std::strerror(errno));
    }
}

bool is_bulk_type(std::string_view type) { return type == "hash" || type == "btree" || type == "fail"; }

std::unique_ptr<Table> open_for_build(const MapCommand& cmd, const std::string& spec, bool incremental) {
    std::string_view type, name;
    split_spec(spec, type, name);
    unsigned flags = cmd.flags & ~(kReadOnly | kLock);
    if (!incremental) flags |= kCreate;
    auto t = open_table(spec, flags);
    if (!t && incremental && type != "fail") {
        // postmap -i on a table that does not exist yet creates it.
        std::string db = std::string(name) + ".db";
        if (::access(db.c_str(), F_OK) < 0 && errno == ENOENT) t = open_table(spec, flags | kCreate);
    }
    if (!t) log::fatal("%s", t.error().c_str());
    return std::move(t.value());
}

}  // namespace

std::string full_spec(std::string_view arg, std::string_view default_type) {
    std::string_view type, name;
    if (split_spec(arg, type, name)) return std::string(arg);
    return std::string(default_type) + ":" + std::string(arg);
}

int query_one(const MapCommand& cmd, const std::vector<std::string>& maps, const std::string& key) {
    for (const std::string& m : maps) {
        std::string spec = full_spec(m, cmd.default_type);
        std::unique_ptr<Table> t = open_or_die(spec, query_flags(cmd));
        LookupResult r = t->lookup(key);
        if (r.status == LookupResult::Status::Error) query_error(spec, r.error);
        if (r.found()) {
            if (r.value.empty()) warn_empty_value(spec, key);
            write_out(r.value + "\n");
            std::fflush(stdout);
            return 0;
        }
    }
    return 1;
}

int query_stdin(const MapCommand& cmd, const std::vector<std::string>& maps, QueryKeyMode mode) {
    LazyMaps lazy(cmd, maps);
    bool found = false;
    if (!mode.headers && !mode.body) {
        for_each_stdin_line([&](std::string_view key) {
            found |= lazy.query(key);
            return true;
        });
    } else {
        MessageKeys keys(mode, lazy);
        for_each_stdin_line([&](std::string_view line) { return keys.line(line); });
        found = keys.finish();
    }
    std::fflush(stdout);
    return found ? 0 : 1;
}

int delete_one(const MapCommand& cmd, const std::vector<std::string>& maps, const std::string& key) {
    bool found = false;
    for (const std::string& m : maps) {
        std::string spec = full_spec(m, cmd.default_type);
        std::unique_ptr<Table> t = open_or_die(spec, (cmd.flags & ~(kReadOnly | kCreate)) | kLock);
        Result<bool> r = t->remove(key);
        if (!r) log::fatal("table %s: delete error: %s", spec.c_str(), r.error().c_str());
        found |= *r;
    }
    return found ? 0 : 1;
}

int delete_stdin(const MapCommand& cmd, const std::vector<std::string>& maps) {
    std::vector<std::pair<std::string, std::unique_ptr<Table>>> tables;
    for (const std::string& m : maps) {
        std::string spec = full_spec(m, cmd.default_type);
        tables.emplace_back(spec, open_or_die(spec, (cmd.flags & ~(kReadOnly | kCreate)) | kLock));
    }
    bool found = false;
    for_each_stdin_line([&](std::string_view key) {
        for (auto& [spec, t] : tables) {
            Result<bool> r = t->remove(key);
            if (!r) log::fatal("table %s: delete error: %s", spec.c_str(), r.error().c_str());
            found |= *r;
        }
        return true;
    });
    return found ? 0 : 1;
}

int sequence(const MapCommand& cmd, const std::vector<std::string>& maps) {
    if (maps.empty()) return 1;
    // Postfix dumps only the first map named.
    std::string spec = full_spec(maps.front(), cmd.default_type);
    std::unique_ptr<Table> t = open_or_die(spec, query_flags(cmd));
    std::string line;
    Status st = t->for_each([&](std::string_view key, std::string_view value) {
        if (key.empty())
            log::warn("table %s: empty lookup key value is not allowed", spec.c_str());
        else if (value.empty())
            warn_empty_value(spec, key);
        line.assign(key);
        line += cmd.alias_format ? ":\t" : "\t";
        line.append(value);
        line += '\n';
        write_out(line);
        return true;
    });
    if (!st) log::fatal("%s", st.error().c_str());
    std::fflush(stdout);
    return 0;
}

int run_lookup_mode(const MapCommand& cmd, const std::vector<std::string>& maps, const LookupModes& modes,
                    const std::function<void()>& usage) {
    if (modes.delkey) {
        if (maps.empty()) usage();
        if (std::strcmp(modes.delkey, "-") == 0) return delete_stdin(cmd, maps);
        return delete_one(cmd, maps, modes.delkey);
    }
    if (modes.query) {
        if (maps.empty()) usage();
        if (std::strcmp(modes.query, "-") == 0) return query_stdin(cmd, maps, modes.keys);
        return query_one(cmd, maps, modes.query);
    }
    if (modes.sequence) return sequence(cmd, maps);
    return -1;
}

bool smtputf8_enabled(const config::Config& config) {
    std::string v = config.get("smtputf8_enable");
    if (v.empty()) v = config.expand("${{$compatibility_level} <level {1} ? {no} : {yes}}");
    return v == "yes" || v == "true" || v == "1";
}

void build_map(const MapCommand& cmd, const std::string& spec, bool incremental, const LineParser& parse,
               const BuildFinisher& finish) {
    std::string_view type, name;
    split_spec(spec, type, name);
    const std::string path(name);

    UniqueFd source_fd;
    const std::string source_name = incremental ? "stdin" : path;
    if (!incremental) {
        source_fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!source_fd) log::fatal("open %s: %s", path.c_str(), std::strerror(errno));
    }
    // Postfix opens the source before it looks at the table type.
    bool known = false;
    for (std::string_view t : table_types()) known |= (t == type);
    if (!known)
        log::fatal("unsupported dictionary type: %.*s", static_cast<int>(type.size()), type.data());
    if (!is_bulk_type(type))
        log::fatal("unsupported dictionary type: %.*s does not support bulk-mode creation.",
                   static_cast<int>(type.size()), type.data());
    const int fd = incremental ? STDIN_FILENO : source_fd.get();
    struct stat st;
    if (::fstat(fd, &st) < 0) log::fatal("fstat %s: %s", path.c_str(), std::strerror(errno));

    mode_t saved_mask = ::umask(022);
    ::umask(saved_mask);
    adopt_source_identity(cmd, st);
    std::unique_ptr<Table> table = open_for_build(cmd, spec, incremental);
    ::umask(saved_mask);

    LogicalLineReader reader(source_name);
    std::vector<std::string> warnings;
    auto drain = [&] {
        for (const std::string& w : reader.take_warnings()) log::warn("%s", w.c_str());
        LogicalLine line;
        while (reader.next(line)) {
            warnings.clear();
            std::optional<SourceEntry> entry = parse(line, source_name, warnings);
            for (const std::string& w : warnings) log::warn("%s", w.c_str());
            if (!entry) continue;
            if (Status s = table->update(entry->key, entry->value); !s) {
                if (s.error().find("duplicate entry") != std::string::npos) log::fatal("%s", s.error().c_str());
                log::fatal("table %s: write error: %s", spec.c_str(), s.error().c_str());
            }
        }
    };
    char buf[kReadChunk];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) log::fatal("read %s: %s", source_name.c_str(), std::strerror(errno));
        if (n == 0) break;
        reader.feed(std::string_view(buf, static_cast<size_t>(n)));
        drain();
    }
    reader.finish();
    drain();
    if (finish) finish(*table, incremental);
    if (Status s = table->sync(); !s) log::fatal("%s", s.error().c_str());
}

}  // namespace postern::table
