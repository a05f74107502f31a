#include "postconf/master_entry.h"

#include <algorithm>

#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/config/main_cf_edit.h"
#include "util/config/master_cf.h"

namespace postern::postconf {
namespace {

constexpr std::string_view kFieldNames[] = {"service", "type",   "private",       "unprivileged",
                                            "chroot",  "wakeup", "process_limit", "command"};
constexpr std::string_view kValidTypes[] = {"unix", "unix-dgram", "fifo", "inet", "pass"};

bool is_blank(char c) { return kMasterBlanks.find(c) != std::string_view::npos; }

// Splits on blanks; a "{...}" group stays inside one token (Postfix's argv_splitq).
std::vector<std::string> split_quoted(std::string_view s) {
    std::vector<std::string> out;
    for (std::string_view t : config::split_outside_braces(s, kMasterBlanks)) out.emplace_back(t);
    return out;
}

// Text inside {}, trimmed (Postfix's extpar with EXTPAR_FLAG_STRIP).
std::string extract_braced(const std::string& arg, std::vector<std::string>& warnings) {
    int depth = 0;
    size_t close = std::string::npos;
    for (size_t i = 0; i < arg.size(); ++i) {
        if (arg[i] == '{') ++depth;
        else if (arg[i] == '}' && --depth == 0) {
            close = i;
            break;
        }
    }
    if (close == std::string::npos) {
        warnings.push_back(strprintf("master.cf: missing '}' in \"%s\"", arg.c_str()));
        return std::string(trim(std::string_view(arg).substr(1)));
    }
    if (close + 1 != arg.size())
        warnings.push_back(strprintf("master.cf: syntax error after '}' in \"%s\"", arg.c_str()));
    return std::string(trim(std::string_view(arg).substr(1, close - 1)));
}

void normalize_daemon_args(std::vector<std::string>& argv, std::vector<std::string>& warnings) {
    size_t field = kMasterMinFields;
    for (; field < argv.size(); ++field) {
        std::string& arg = argv[field];
        if (arg[0] != '-' || arg == "--") break;
        // "-vozz" becomes "-v" "-ozz": only -o takes a value.
        size_t o = arg.find('o', 2);
        if (o != std::string::npos) {
            argv.insert(argv.begin() + static_cast<long>(field) + 1, "-" + argv[field].substr(o));
            argv[field].resize(o);
        }
        if (argv[field][1] != 'o') continue;
        bool extract = false;
        if (argv[field].size() > 2) {  // "-oname=value" becomes "-o" "name=value"
            argv.insert(argv.begin() + static_cast<long>(field) + 1, argv[field].substr(2));
            argv[field].resize(2);
            ++field;
            extract = argv[field][0] == '{';
        } else if (field + 1 < argv.size()) {
            ++field;
            extract = argv[field][0] == '{';
        }
        if (extract) {
            argv[field] = extract_braced(argv[field], warnings);
            auto nv = config::split_name_value(argv[field]);
            if (!nv) warnings.push_back(strprintf("master.cf: %s: \"%s\"", nv.error().c_str(), argv[field].c_str()));
            else argv[field] = nv->name + "=" + nv->value;
        }
    }
    for (; field < argv.size(); ++field)
        if (argv[field][0] == '{') argv[field] = extract_braced(argv[field], warnings);
}

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        out.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return out;
}

std::string one_line(std::string_view s) {
    std::string out(s);
    std::replace(out.begin(), out.end(), '\n', ' ');
    return out;
}

Status check_master_entry(const std::vector<std::string>& argv, std::string_view raw) {
    std::string shown = one_line(raw);
    auto bad = [&](int field) {
        return make_error(strprintf("invalid %s field \"%s\" in \"%s\"", std::string(kFieldNames[field]).c_str(),
                                    argv[field].c_str(), shown.c_str()));
    };
    if (std::find(std::begin(kValidTypes), std::end(kValidTypes), argv[1]) == std::end(kValidTypes))
        return bad(1);
    for (int f = 2; f <= 4; ++f)
        if (argv[f].size() != 1 || std::string_view("yn-").find(argv[f][0]) == std::string_view::npos)
            return bad(f);
    std::string_view w = argv[5];
    size_t len = w.size();
    if (len > 0 && w[len - 1] == '?') --len;
    size_t digits = std::min(w.find_first_not_of("0123456789"), w.size());
    if (!(w[0] == '-' && len == 1) && digits != len) return bad(5);
    if (argv[6] != "-" && argv[6].find_first_not_of("0123456789") != std::string::npos) return bad(6);
    return Status::success();
}

}  // namespace

std::map<std::string, std::string, std::less<>> MasterEntry::params() const {
    std::map<std::string, std::string, std::less<>> out;
    for (size_t f = kMasterMinFields; f < argv.size(); ++f) {
        const std::string& arg = argv[f];
        if (arg[0] != '-' || arg == "--") break;
        if (arg == "-o" && f + 1 < argv.size()) {
            if (auto nv = config::split_name_value(argv[f + 1])) out[nv->name] = nv->value;
            ++f;
        }
    }
    return out;
}

Result<MasterEntry> parse_master_entry(std::string_view text, std::vector<std::string>& warnings) {
    MasterEntry e;
    e.argv = split_quoted(text);
    if (e.argv.size() < static_cast<size_t>(kMasterMinFields)) return make_error("bad field count");
    if (Status s = check_master_entry(e.argv, text); !s) return make_error(s.error());
    normalize_daemon_args(e.argv, warnings);
    return e;
}

Result<MasterFile> read_master_cf(const std::string& path) {
    auto text = read_file(path);
    if (!text) return make_error(text.error());
    MasterFile mf;
    std::string logical;
    int first = 0, lineno = 0;
    auto flush = [&]() -> Status {
        if (logical.empty()) return Status::success();
        auto e = parse_master_entry(logical, mf.warnings);
        // Postfix names file and line only for a short entry; field checks die with their
        // own text, which quotes the entry.
        if (!e && e.error() == "bad field count")
            return make_error(strprintf("file %s: line %d: %s", path.c_str(), first, e.error().c_str()));
        if (!e) return make_error(e.error());
        e->line = first;
        mf.entries.push_back(std::move(*e));
        logical.clear();
        return Status::success();
    };
    for (std::string_view line : split_lines(*text)) {
        ++lineno;
        std::string_view body = trim(line);
        if (body.empty() || body[0] == '#') continue;
        if (is_blank(line[0])) {
            if (!logical.empty()) {
                logical += '\n';
                logical += trim_right(line);
            } else {  // Postfix's readllines() skips it, quoting at most 30 bytes
                std::string_view shown = trim_right(line);
                mf.warnings.push_back(strprintf("%s: logical line must not start with whitespace: \"%.*s%s\"",
                                                path.c_str(), static_cast<int>(std::min<size_t>(shown.size(), 30)),
                                                shown.data(), shown.size() > 30 ? "..." : ""));
            }
            continue;
        }
        if (Status s = flush(); !s) return make_error(s.error());
        first = lineno;
        logical = std::string(trim_right(line));
    }
    if (Status s = flush(); !s) return make_error(s.error());
    return mf;
}

std::optional<int> parse_field_name(std::string_view name) {
    if (name == "*") return kFieldWildcard;
    for (int i = 0; i < kMasterMinFields; ++i)
        if (kFieldNames[i] == name) return i;
    return std::nullopt;
}

std::string_view field_name(int field) { return kFieldNames[field]; }

std::optional<std::vector<std::string>> parse_service_pattern(std::string_view pattern, int min, int max) {
    if (!pattern.empty() && pattern[0] == '/') return std::nullopt;
    std::vector<std::string> parts;
    for (std::string_view p : split_tokens(pattern, "/")) parts.emplace_back(p);
    if (static_cast<int>(parts.size()) < min || static_cast<int>(parts.size()) > max) return std::nullopt;
    for (const std::string& p : parts)
        if (p != "*" && p.find('*') != std::string::npos) return std::nullopt;
    while (static_cast<int>(parts.size()) < max) parts.emplace_back("*");
    return parts;
}

bool match_service(const std::vector<std::string>& pattern, std::string_view name, std::string_view type) {
    return (pattern[0] == "*" || pattern[0] == name) && (pattern[1] == "*" || pattern[1] == type);
}

bool match_service(const std::vector<std::string>& pattern, const MasterEntry& e) {
    return match_service(pattern, e.service(), e.type());
}

Status edit_master_field(MasterEntry& e, int field, std::string_view value) {
    std::vector<std::string> warnings;
    if (field == kFieldCommand) {
        e.argv.resize(kFieldCommand);
        for (std::string& t : split_quoted(value)) e.argv.push_back(std::move(t));
        if (e.argv.size() < static_cast<size_t>(kMasterMinFields)) e.argv.emplace_back();
        normalize_daemon_args(e.argv, warnings);
    } else {
        e.argv[field] = std::string(value);
    }
    return check_master_entry(e.argv, value);
}

void edit_master_param(MasterEntry& e, std::string_view name, const std::optional<std::string>& value) {
    bool matched = false;
    size_t f = kMasterMinFields;
    for (; f < e.argv.size(); ++f) {
        const std::string& arg = e.argv[f];
        if (arg[0] != '-' || arg == "--") break;
        if (arg[1] != 'o' || f + 1 >= e.argv.size()) continue;
        std::string_view aval = e.argv[f + 1];
        if (arg == "-o" && aval.size() > name.size() && aval.substr(0, name.size()) == name &&
            aval[name.size()] == '=') {
            matched = true;
            if (value) {
                e.argv[f + 1] = std::string(name) + "=" + *value;
            } else {
                e.argv.erase(e.argv.begin() + static_cast<long>(f), e.argv.begin() + static_cast<long>(f) + 2);
                f -= 2;
            }
        }
        ++f;
    }
    if (value && !matched) {
        e.argv.insert(e.argv.begin() + static_cast<long>(f), {"-o", std::string(name) + "=" + *value});
    }
}

}  // namespace postern::postconf
