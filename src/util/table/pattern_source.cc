#include "util/table/pattern_source.h"

#include <climits>

#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/config/master_cf.h"
#include "util/log/log.h"
#include "util/table/table_source.h"

namespace postern::table {
namespace {

// Index of the '}' that closes the '{' at s[open], or npos.
size_t matching_brace(std::string_view s, size_t open) {
    int level = 0;
    for (size_t i = open; i < s.size(); ++i) {
        if (s[i] == '{') ++level;
        if (s[i] == '}' && --level == 0) return i;
    }
    return std::string_view::npos;
}

// "{ text }" -> "text" (blanks after '{' and before '}' dropped), as Postfix's extpar().
Result<std::string_view> strip_braces(std::string_view kind, std::string_view s) {
    std::string k(kind), q(s);
    if (s.empty() || s[0] != '{')
        return make_error(strprintf("%s map: no '{' at start of text in \"%s\"", k.c_str(), q.c_str()));
    size_t close = matching_brace(s, 0);
    if (close == std::string_view::npos)
        return make_error(strprintf("%s map: missing '}' in \"%s\"", k.c_str(), q.c_str()));
    if (!trim(s.substr(close + 1)).empty())
        return make_error(strprintf("%s map: syntax error after '}' in \"%s\"", k.c_str(), q.c_str()));
    return trim(s.substr(1, close - 1));
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// atoi() without its undefined overflow: saturates.
size_t digits_value(std::string_view s) {
    size_t v = 0;
    for (char c : s) {
        if (v > (SIZE_MAX - 9) / 10) return SIZE_MAX / 2;
        v = v * 10 + static_cast<size_t>(c - '0');
    }
    return v;
}

}  // namespace

std::string_view trim_trailing_blanks(std::string_view s) {
    size_t n = s.size();
    while (n > 0 && is_space(s[n - 1])) --n;
    return s.substr(0, n);
}

std::vector<std::string_view> split_outside_braces(std::string_view s) {
    return config::split_outside_braces(s, ", \t\r\n");
}

bool utf8_key_acceptable(const Table& table, std::string_view key) {
    if (!(table.flags() & kUtf8) || valid_utf8(key)) return true;
    log::warn("%s: non-UTF-8 key \"%s\": malformed UTF-8 or invalid codepoint", table.spec().c_str(),
              printable(key).c_str());
    return false;
}

LookupResult utf8_checked_result(const Table& table, std::string_view key, LookupResult result) {
    if (!(table.flags() & kUtf8) || !result.found() || valid_utf8(result.value)) return result;
    log::warn("%s: key \"%s\": non-UTF-8 value \"%s\": malformed UTF-8 or invalid codepoint",
              table.spec().c_str(), printable(key).c_str(), printable(result.value).c_str());
    return LookupResult::fail("");  // the warning said it all; postmap adds "query error"
}

bool starts_with_keyword(std::string_view line, std::string_view keyword) {
    if (line.size() < keyword.size() || !iequals(line.substr(0, keyword.size()), keyword))
        return false;
    return line.size() == keyword.size() || !is_alnum(line[keyword.size()]);
}

Result<std::string> inline_rules_to_text(std::string_view kind, std::string_view spec) {
    auto body = strip_braces(kind, spec);
    if (!body) return make_error(body.error());
    std::string text;
    for (std::string_view item : split_outside_braces(*body)) {
        auto rule = strip_braces(kind, item);
        if (!rule) return make_error(rule.error());
        text.append(*rule);
        text.push_back('\n');
    }
    return text;
}

Result<std::string> load_pattern_source(std::string_view kind, std::string_view name) {
    if (!name.empty() && name[0] == '{') return inline_rules_to_text(kind, name);
    return read_file(std::string(name));
}

std::vector<SourceLine> logical_lines(std::string_view text, std::string_view source_name) {
    // postmap/texthash sources and pattern tables share one readllines() implementation.
    LogicalLineReader reader{std::string(source_name)};
    reader.feed(text);
    reader.finish();
    for (const std::string& w : reader.take_warnings()) log::warn("%s", w.c_str());
    std::vector<SourceLine> out;
    for (LogicalLine line; reader.next(line);) out.push_back(SourceLine{line.line, std::move(line.text)});
    return out;
}

bool Replacement::parse(std::string_view text, const std::string& where, bool hyphen_range) {
    pieces_.clear();
    literal_.clear();
    max_index_ = 0;
    bool ok = true;
    std::string lit;
    const std::string whole(text);
    size_t i = 0;
    while (i < text.size()) {
        if (text[i] != '$') {
            lit.push_back(text[i++]);
            continue;
        }
        if (i + 1 < text.size() && text[i + 1] == '$') {
            lit.push_back('$');
            i += 2;
            continue;
        }
        if (!lit.empty()) pieces_.push_back(Piece{std::move(lit), 0});
        lit.clear();
        ++i;
        std::string_view name;
        if (i < text.size() && (text[i] == '{' || text[i] == '(')) {
            char open = text[i], close = open == '{' ? '}' : ')';
            int level = 1;
            size_t j = i + 1;
            for (; j < text.size() && level > 0; ++j) {
                if (text[j] == open) ++level;
                if (text[j] == close) --level;
            }
            if (level > 0) {
                log::warn("truncated macro reference: \"%s\"", whole.c_str());
                return false;
            }
            name = text.substr(i + 1, j - i - 2);
            i = j;
        } else {
            size_t j = i;
            while (j < text.size() && (is_alnum(text[j]) || text[j] == '_')) ++j;
            name = text.substr(i, j - i);
            i = j;
        }
        if (name.empty()) {
            log::warn("empty macro name: \"%s\"", whole.c_str());
            return false;
        }
        std::string n(name);
        if (!all_digits(name)) {
            log::warn("%s: non-numeric replacement index \"%s\"", where.c_str(), n.c_str());
            ok = false;
            continue;
        }
        size_t index = digits_value(name);
        if (index < 1) {
            log::warn("%s: %s replacement index \"%s\"", where.c_str(),
                      hyphen_range ? "out-of-range" : "out of range", n.c_str());
            ok = false;
            continue;
        }
        if (index > max_index_) max_index_ = index;
        pieces_.push_back(Piece{{}, index});
    }
    if (!lit.empty()) pieces_.push_back(Piece{std::move(lit), 0});
    if (ok && max_index_ == 0)
        for (const Piece& p : pieces_) literal_ += p.text;
    return ok;
}

std::string Replacement::expand(const std::function<std::string_view(size_t)>& group) const {
    if (max_index_ == 0) return literal_;
    std::string out;
    for (const Piece& p : pieces_) {
        if (p.index == 0)
            out += p.text;
        else
            out += group(p.index);
    }
    return out;
}

}  // namespace postern::table
