// What the pattern tables (regexp, pcre, cidr) share: reading the rule text (a file, or
// Postfix 3.7's inline "{ {rule}, {rule} }" form), splitting it into logical lines the way
// Postfix's readllines() does, and the "$1 ${2} $(3) $$" replacement text of regexp/pcre.
//
// Every parser here takes an in-memory text so fuzz targets and tests need no files.
// Problems in a rule are Postfix warnings ("regexp map F, line N: ...: skipping this
// rule"), logged through log::warn; only an unreadable source or a broken inline
// specification fails the open, as in Postfix.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"
#include "util/table/table.h"

namespace postern::table {

// One logical line: its text (continuation lines appended, newlines dropped, trailing
// blanks kept) and the number of its first physical line.
struct SourceLine {
    int lineno = 0;
    std::string text;
};

// Rule text for table `kind` ("regexp", "pcre", "cidr") named `name`: the file's contents,
// or for a name starting with '{' the inline rules, one per line. Errors read as
// Postfix's: "open /x: No such file or directory", "regexp map: missing '}' in ...".
Result<std::string> load_pattern_source(std::string_view kind, std::string_view name);

// Splits inline rules "{ {r1}, {r2} }" into "r1\nr2\n".
Result<std::string> inline_rules_to_text(std::string_view kind, std::string_view spec);

// Postfix's readllines(): blank lines and lines whose first non-blank is '#' are dropped
// (they do not end a logical line); a line starting with blanks continues the previous
// one; continuation text with nothing to continue is warned about ("NAME: logical line
// must not start with whitespace: ...") and dropped.
std::vector<SourceLine> logical_lines(std::string_view text, std::string_view source_name);

// Postfix's ISSPACE/ISALNUM: ASCII only, whatever the locale.
inline bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
inline bool is_alnum(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
// Drops trailing blanks (Postfix's trimblanks()).
std::string_view trim_trailing_blanks(std::string_view s);

// The result text of a regexp/pcre rule with its $N references resolved at open.
class Replacement {
public:
    // Parses `text` as Postfix's mac_parse() does: "$$" is "$", "$name", "${text}" and
    // "$(text)" are references that must be decimal numbers >= 1. On a bad reference
    // it logs Postfix's warnings under `where` ("regexp map F, line N") and returns false.
    // `hyphen_range` picks the wording of the n < 1 warning: dict_regexp says
    // "out-of-range", dict_pcre says "out of range".
    bool parse(std::string_view text, const std::string& where, bool hyphen_range);

    // Largest $N used; 0 when the text is a constant.
    size_t max_index() const { return max_index_; }
    // The text with $$ already reduced, for a constant replacement.
    const std::string& literal() const { return literal_; }

    // Builds the result; `group(n)` gives the text of capture n (empty when it did not
    // take part in the match, which Postfix also expands to nothing).
    std::string expand(const std::function<std::string_view(size_t)>& group) const;

private:
    struct Piece {
        std::string text;  // literal text when index == 0
        size_t index = 0;  // capture number otherwise
    };
    std::vector<Piece> pieces_;
    std::string literal_;
    size_t max_index_ = 0;
};

// Splits on ", \t\r\n" outside braces, keeping the braces (Postfix's mystrtokq/
// argv_splitq with CHARS_BRACE): "{ a, b } c" -> "{ a, b }", "c".
std::vector<std::string_view> split_outside_braces(std::string_view s);

// With kUtf8 (smtputf8_enable), Postfix's dict_utf8 layer around a lookup: a key that is
// not UTF-8 is warned about and not found; a result that is not UTF-8 (a $1 can cut a
// character in half) is warned about and becomes a lookup error.
bool utf8_key_acceptable(const Table& table, std::string_view key);
LookupResult utf8_checked_result(const Table& table, std::string_view key, LookupResult result);

// Postfix's "if"/"endif" keyword test: case-insensitive, not followed by a letter or digit.
bool starts_with_keyword(std::string_view line, std::string_view keyword);

}  // namespace postern::table
