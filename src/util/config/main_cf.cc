#include "util/config/main_cf.h"

#include <algorithm>

#include "util/base/strings.h"
#include "util/log/log.h"

namespace postern::config {
namespace {

// C isspace() in the "C" locale, which Postfix's ISSPACE() is.
bool is_c_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// True for an empty line, an all-whitespace line, or one whose first non-blank is '#'.
bool is_ignorable(std::string_view line) {
    size_t i = 0;
    while (i < line.size() && is_c_space(line[i])) ++i;
    return i == line.size() || line[i] == '#';
}

}  // namespace

std::vector<LogicalLine> read_logical_lines(std::string_view text, std::string_view path,
                                            std::vector<std::string>& warnings) {
    std::vector<LogicalLine> out;
    LogicalLine cur;
    bool open = false;
    auto finish = [&]() {
        if (!open) return;
        open = false;
        if (is_c_space(cur.text.front())) {
            std::string_view t(cur.text);
            std::string shown(t.substr(0, std::min(t.size(), t.find('\0'))).substr(0, 30));
            warnings.push_back(strprintf("%.*s: logical line must not start with whitespace: \"%s%s\"",
                                         static_cast<int>(path.size()), path.data(), shown.c_str(),
                                         cur.text.size() > 30 ? "..." : ""));
            return;
        }
        out.push_back(std::move(cur));
    };
    int lineno = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        size_t end = nl == std::string_view::npos ? text.size() : nl;
        std::string_view line = text.substr(pos, end - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++lineno;
        if (is_ignorable(line)) continue;
        // A line that starts with neither whitespace nor '#' begins a new logical line.
        if (!is_c_space(line.front()) || !open) {
            finish();
            cur = LogicalLine{std::string(line), lineno, lineno};
            open = true;
        } else {
            cur.text += line;
            cur.last_line = lineno;
        }
    }
    finish();
    return out;
}

namespace {

// Postfix's split_nameval(): the error text, or empty on success.
std::string_view split_name_value(std::string_view s, std::string_view& name, std::string_view& value) {
    size_t np = 0;
    while (np < s.size() && is_c_space(s[np])) ++np;
    if (np == s.size() || s[np] == '=') return "missing attribute name";
    size_t ep = np;
    while (ep < s.size() && !is_c_space(s[ep]) && s[ep] != '=') ++ep;
    size_t cp = ep;
    while (cp < s.size() && is_c_space(s[cp])) ++cp;
    if (cp == s.size() || s[cp] != '=') return "missing '=' after attribute name";
    name = s.substr(np, ep - np);
    size_t vp = cp + 1;
    while (vp < s.size() && is_c_space(s[vp])) ++vp;
    size_t ve = s.size();
    while (ve > vp && is_c_space(s[ve - 1])) --ve;
    value = s.substr(vp, ve - vp);
    return {};
}

}  // namespace

Result<std::vector<ConfigEntry>> parse_main_cf(std::string_view text, std::string_view path,
                                               std::vector<std::string>& warnings) {
    std::vector<ConfigEntry> entries;
    for (const LogicalLine& l : read_logical_lines(text, path, warnings)) {
        // Postfix handles the line as a C string: a NUL byte ends it.
        std::string_view s(l.text);
        s = s.substr(0, s.find('\0'));
        std::string_view name, value;
        std::string_view err = split_name_value(s, name, value);
        if (!err.empty())
            return make_error(strprintf("%.*s, line %d: %.*s: \"%.*s\"", static_cast<int>(path.size()),
                                        path.data(), l.line, static_cast<int>(err.size()), err.data(),
                                        static_cast<int>(s.size()), s.data()));
        entries.push_back({std::string(name), std::string(value), l.line});
    }
    return entries;
}

Result<std::vector<ConfigEntry>> parse_main_cf(std::string_view text, std::string_view path) {
    std::vector<std::string> warnings;
    auto r = parse_main_cf(text, path, warnings);
    for (const std::string& w : warnings) log::warn("%s", w.c_str());
    return r;
}

}  // namespace postern::config
