#include "util/config/main_cf.h"

#include "util/base/strings.h"

namespace postern::config {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// One logical line: the text, joined from its continuation lines, and where it began.
struct LogicalLine {
    std::string text;
    int line = 0;
};

Result<std::vector<LogicalLine>> join_lines(std::string_view text, std::string_view path) {
    std::vector<LogicalLine> out;
    int lineno = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view raw =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++lineno;
        std::string_view body = trim(raw);
        if (body.empty() || body.front() == '#') continue;  // blank or comment line
        if (is_space(raw.front())) {
            if (out.empty())
                return make_error(strprintf("%.*s, line %d: missing '=' after attribute name: \"%.*s\"",
                                            static_cast<int>(path.size()), path.data(), lineno,
                                            static_cast<int>(body.size()), body.data()));
            out.back().text += ' ';
            out.back().text += body;
            continue;
        }
        out.push_back({std::string(trim_right(raw)), lineno});
    }
    return out;
}

}  // namespace

Result<std::vector<ConfigEntry>> parse_main_cf(std::string_view text, std::string_view path) {
    auto lines = join_lines(text, path);
    if (!lines) return make_error(lines.error());
    std::vector<ConfigEntry> entries;
    for (const LogicalLine& l : *lines) {
        std::string_view s = l.text;
        size_t eq = s.find('=');
        std::string_view name = trim(s.substr(0, eq == std::string_view::npos ? s.size() : eq));
        if (eq == std::string_view::npos || name.empty() ||
            name.find_first_of(kSpace) != std::string_view::npos) {
            std::string_view shown = eq == std::string_view::npos ? trim(s) : name;
            return make_error(strprintf("%.*s, line %d: missing '=' after attribute name: \"%.*s\"",
                                        static_cast<int>(path.size()), path.data(), l.line,
                                        static_cast<int>(shown.size()), shown.data()));
        }
        entries.push_back({std::string(name), std::string(trim(s.substr(eq + 1))), l.line});
    }
    return entries;
}

}  // namespace postern::config
