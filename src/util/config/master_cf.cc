// master.cf parsing: readlline() logical lines, mystrtokq()-style fields with {} groups,
// master_ent.c's per-field checks and texts, postconf's option normalization.
#include "util/config/master_cf.h"

#include <arpa/inet.h>

#include <cctype>

#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/config/main_cf.h"

namespace postern::config {
namespace {

constexpr std::string_view kBlanks = " \t\r\n";

std::vector<std::string> split_quoted(std::string_view s) {
    std::vector<std::string> out;
    for (std::string_view f : split_outside_braces(s, kBlanks)) out.emplace_back(f);
    return out;
}

// Postfix's extpar() with EXTPAR_FLAG_STRIP: "{ text }" -> "text". An error is reported
// as a warning and the best-effort text is kept, as postconf does.
std::string strip_braces(std::string_view arg, const std::string& where, std::vector<std::string>& warnings) {
    if (arg.empty() || arg.front() != '{') return std::string(arg);
    int level = 0;
    size_t close = std::string_view::npos;
    for (size_t i = 0; i < arg.size(); ++i) {
        if (arg[i] == '{') ++level;
        if (arg[i] == '}' && --level == 0) {
            close = i;
            break;
        }
    }
    std::string shown(arg);
    if (close == std::string_view::npos) {
        warnings.push_back(strprintf("%s: missing '}' in \"%s\"", where.c_str(), shown.c_str()));
        return std::string(trim(arg.substr(1)));
    }
    if (close + 1 != arg.size())
        warnings.push_back(strprintf("%s: syntax error after '}' in \"%s\"", where.c_str(), shown.c_str()));
    return std::string(trim(arg.substr(1, close - 1)));
}

// getopt() semantics, which the daemons' own option parsing follows: in a cluster such
// as "-vDo", 'o' takes the rest of the cluster or else the next argument. The result is
// "-vD" "-o" "value". Postfix's postconf splits "-osyslog_name=x" at the second 'o' for
// display; the daemons do not, and neither do we. Stops at "--" or a non-option.
std::vector<std::string> normalize_options(const std::vector<std::string>& args) {
    std::vector<std::string> out;
    size_t f = 0;
    for (; f < args.size(); ++f) {
        const std::string& arg = args[f];
        if (arg.size() < 2 || arg[0] != '-' || arg == "--") break;
        size_t o = arg.find('o', 1);
        if (o == std::string::npos) {
            out.push_back(arg);
            continue;
        }
        if (o > 1) out.push_back(arg.substr(0, o));
        out.push_back("-o");
        if (o + 1 < arg.size())
            out.push_back(arg.substr(o + 1));
        else if (f + 1 < args.size())
            out.push_back(args[++f]);
    }
    out.insert(out.end(), args.begin() + static_cast<long>(f), args.end());
    return out;
}

bool valid_hostname(std::string_view h) {
    if (h.empty() || h.size() > 255) return false;
    for (std::string_view label : split_tokens(h, ".")) {
        if (label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    }
    return h.front() != '.' && h.find("..") == std::string_view::npos;
}

bool valid_address(std::string_view h) {
    std::string s(h);
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

struct FieldReader {
    const std::vector<std::string>& fields;
    size_t next = 0;
    std::string context;  // "PATH: line N"

    Error fail(const std::string& what) const { return make_error(context + ": " + what); }
};

// One field: its value, or "-" replaced by `def` (error when there is no default).
Result<std::string> take(FieldReader& r, const char* name, const char* def) {
    if (r.next >= r.fields.size()) return r.fail(strprintf("missing \"%s\" field", name));
    const std::string& v = r.fields[r.next++];
    if (v != "-") return v;
    if (!def) return r.fail(strprintf("field \"%s\" has no default value", name));
    return std::string(def);
}

Result<bool> take_bool(FieldReader& r, const char* name, const char* def) {
    auto v = take(r, name, def);
    if (!v) return make_error(v.error());
    if (*v == "y") return true;
    if (*v == "n") return false;
    return r.fail(strprintf("field \"%s\": bad value: \"%s\"", name, v->c_str()));
}

// A non-negative decimal; `allow_question` accepts the wakeup field's trailing '?'.
Result<int> take_int(FieldReader& r, const char* name, const char* def, bool allow_question) {
    auto v = take(r, name, def);
    if (!v) return make_error(v.error());
    std::string_view digits = *v;
    if (allow_question && !digits.empty() && digits.back() == '?') digits.remove_suffix(1);
    long n = 0;
    if (digits.empty() || !std::isdigit(static_cast<unsigned char>(digits[0])) ||
        digits.find_first_not_of("0123456789") != std::string_view::npos || !parse_long(digits, n) ||
        n > 0x7fffffff)
        return r.fail(strprintf("field \"%s\": bad value: \"%s\"", name, v->c_str()));
    return static_cast<int>(n);
}

Result<ServiceType> parse_type(FieldReader& r) {
    auto t = take(r, "transport type", nullptr);
    if (!t) return make_error(t.error());
    if (*t == "inet") return ServiceType::Inet;
    if (*t == "unix") return ServiceType::Unix;
    if (*t == "unix-dgram") return ServiceType::UnixDgram;
    if (*t == "fifo") return ServiceType::Fifo;
    if (*t == "pass") return ServiceType::Pass;
    return r.fail("bad transport type: " + *t);
}

// Fills the columns and resolved values from the first eight fields.
Status parse_columns(MasterService& s, FieldReader& r, int default_process_limit) {
    for (size_t i = 0; i < s.columns.size() && i < r.fields.size(); ++i) s.columns[i] = r.fields[i];
    s.name = r.fields[r.next++];
    auto type = parse_type(r);
    if (!type) return make_error(type.error());
    s.type = *type;
    if (s.type == ServiceType::Inet) {
        auto ep = split_inet_endpoint(s.name);
        if (!ep) return r.fail(ep.error() + " in \"" + s.name + "\"");
        s.inet_host = ep->first;
        s.inet_port = ep->second;
    }
    auto priv = take_bool(r, "private", "y");
    if (!priv) return make_error(priv.error());
    s.private_service = *priv;
    if (s.type == ServiceType::Inet && s.private_service) return r.fail("inet service cannot be private");
    auto unpriv = take_bool(r, "unprivileged", "y");
    if (!unpriv) return make_error(unpriv.error());
    s.unprivileged = *unpriv;
    auto chroot = take_bool(r, "chroot", "n");
    if (!chroot) return make_error(chroot.error());
    s.chroot = *chroot;
    auto wakeup = take_int(r, "wakeup_time", "0", true);
    if (!wakeup) return make_error(wakeup.error());
    s.wakeup_seconds = *wakeup;
    s.wakeup_conditional = s.wakeup_seconds > 0 && s.columns[MasterService::kWakeup].back() == '?';
    std::string limit = std::to_string(default_process_limit);
    auto maxproc = take_int(r, "max_proc", limit.c_str(), false);
    if (!maxproc) return make_error(maxproc.error());
    s.max_proc = *maxproc;
    s.max_proc_is_default = s.columns[MasterService::kMaxproc] == "-";
    auto command = take(r, "command", nullptr);
    if (!command) return make_error(command.error());
    s.command = *command;
    return Status::success();
}

// The arguments after the command: options normalized, braces stripped, -o collected.
void parse_arguments(MasterService& s, const std::vector<std::string>& fields, size_t first,
                     const std::string& where, std::vector<std::string>& warnings) {
    std::vector<std::string> raw(fields.begin() + static_cast<long>(first), fields.end());
    std::vector<std::string> args = normalize_options(raw);
    bool in_options = true;
    for (size_t i = 0; i < args.size(); ++i) {
        std::string arg = strip_braces(args[i], where, warnings);
        if (in_options && (args[i].size() < 2 || args[i][0] != '-' || args[i] == "--")) in_options = false;
        if (!in_options || args[i] != "-o" || i + 1 >= args.size()) {
            s.args.push_back(std::move(arg));
            continue;
        }
        std::string value = strip_braces(args[++i], where, warnings);
        std::vector<std::string> ignored;
        auto kv = parse_main_cf(value, "", ignored);
        if (kv && kv->size() == 1 && value.find('\n') == std::string::npos) {
            value = (*kv)[0].name + "=" + (*kv)[0].value;
            s.overrides.push_back({(*kv)[0].name, (*kv)[0].value});
        } else {
            warnings.push_back(strprintf("%s: missing '=' after attribute name: \"%s\"", where.c_str(),
                                         value.c_str()));
        }
        s.args.push_back("-o");
        s.args.push_back(std::move(value));
    }
}

}  // namespace

std::vector<std::string_view> split_outside_braces(std::string_view s, std::string_view separators) {
    std::vector<std::string_view> out;
    auto is_sep = [&](char c) { return separators.find(c) != std::string_view::npos; };
    size_t i = 0;
    while (true) {
        while (i < s.size() && is_sep(s[i])) ++i;
        if (i >= s.size()) break;
        size_t start = i;
        int level = 0;
        for (; i < s.size(); ++i) {
            if (s[i] == '{') ++level;
            else if (s[i] == '}' && level > 0) --level;
            else if (level == 0 && is_sep(s[i])) break;
        }
        out.push_back(s.substr(start, i - start));
    }
    return out;
}

std::string_view service_type_name(ServiceType type) {
    switch (type) {
        case ServiceType::Inet: return "inet";
        case ServiceType::Unix: return "unix";
        case ServiceType::UnixDgram: return "unix-dgram";
        case ServiceType::Fifo: return "fifo";
        case ServiceType::Pass: return "pass";
    }
    return "unix";
}

std::optional<std::string> MasterService::override_value(std::string_view n) const {
    std::optional<std::string> out;
    for (const MasterOverride& o : overrides)
        if (o.name == n) out = o.value;
    return out;
}

const MasterService* MasterCf::find(std::string_view name, std::string_view type) const {
    for (const MasterService& s : services)
        if (s.name == name && service_type_name(s.type) == type) return &s;
    return nullptr;
}

Result<std::pair<std::string, std::string>> split_inet_endpoint(std::string_view name) {
    std::string host, port;
    if (!name.empty() && name.front() == '[') {
        size_t close = name.find(']');
        if (close == std::string_view::npos) return make_error("missing \"]\"");
        host = std::string(name.substr(1, close - 1));
        std::string_view rest = name.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') return make_error("garbage after \"]\"");
        if (!rest.empty()) rest.remove_prefix(1);
        if (istarts_with(host, "ipv6:")) {
            host.erase(0, 5);
            unsigned char buf[16];
            if (inet_pton(AF_INET6, host.c_str(), buf) != 1) return make_error("malformed IPv6 address");
        }
        if (rest.empty()) return make_error("missing service information");
        port = std::string(rest);
    } else if (size_t colon = name.rfind(':'); colon != std::string_view::npos) {
        host = std::string(name.substr(0, colon));
        port = std::string(name.substr(colon + 1));
        if (port.empty()) return make_error("missing service information");
    } else {
        port = std::string(name);
        if (port.empty()) return make_error("missing service information");
    }
    if (!host.empty() && !valid_hostname(host) && !valid_address(host))
        return make_error("valid hostname or network address required");
    if (std::isdigit(static_cast<unsigned char>(port[0])) &&
        port.find_first_not_of("0123456789") != std::string::npos)
        return make_error("garbage after numerical service");
    return std::make_pair(host, port);
}

Result<MasterCf> parse_master_cf(std::string_view text, std::string_view path, int default_process_limit) {
    MasterCf cf;
    for (const LogicalLine& l : read_logical_lines(text, path, cf.warnings)) {
        // A NUL ends the line, as it does for Postfix's C strings.
        std::string_view line(l.text);
        line = line.substr(0, line.find('\0'));
        std::vector<std::string> fields = split_quoted(line);
        if (fields.empty()) continue;
        std::string where = strprintf("%.*s: line %d", static_cast<int>(path.size()), path.data(), l.line);
        MasterService s;
        s.line = l.line;
        s.raw_text = std::string(line);
        FieldReader reader{fields, 0, where};
        Status st = parse_columns(s, reader, default_process_limit);
        if (!st) return make_error(st.error());
        parse_arguments(s, fields, reader.next, where, cf.warnings);
        cf.services.push_back(std::move(s));
    }
    return cf;
}

Result<MasterCf> load_master_cf(const std::string& config_dir, int default_process_limit) {
    std::string path = config_dir + "/master.cf";
    auto text = read_file(path);
    if (!text) return make_error(text.error());
    return parse_master_cf(*text, path, default_process_limit);
}

}  // namespace postern::config
