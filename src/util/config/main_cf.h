// main.cf syntax (postconf(5)), read the way Postfix's readlline() and split_nameval() do:
// "name = value" lines; a line that starts with whitespace continues the previous one
// (its text is appended as it stands, newline removed); lines that are empty, all
// whitespace, or whose first non-blank is '#' are skipped and do not end a logical line.
// The same syntax serves every "name = value" file Postern reads (mysql_table(5) files).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"

namespace postern::config {

struct ConfigEntry {
    std::string name;
    // Leading and trailing whitespace trimmed; continuation lines appended as Postfix
    // does ("b" then "  c" gives "b  c"). Text after a NUL byte is dropped, as in C.
    std::string value;
    int line = 0;  // line where the entry starts
};

// One logical line as readlline() returns it, and the line where it began.
struct LogicalLine {
    std::string text;
    int line = 0;       // first physical line
    int last_line = 0;  // last physical line (Postfix's master.cf errors name this one)
};

// Splits text into logical lines the way Postfix's readlline() does (main.cf, master.cf
// and table source files share it). Logical lines that start with whitespace are
// dropped with Postfix's warning, which is appended to `warnings`.
std::vector<LogicalLine> read_logical_lines(std::string_view text, std::string_view path,
                                            std::vector<std::string>& warnings);

// Parses the text of a main.cf-style file. Errors read as Postfix words them:
// "/etc/postern/main.cf, line 7: missing '=' after attribute name: \"foo bar\"" and
// "... missing attribute name: \"= c\"". A logical line that starts with whitespace is
// skipped with Postfix's warning ("/path: logical line must not start with whitespace:
// \" a = b\""), which this overload logs with log::warn.
Result<std::vector<ConfigEntry>> parse_main_cf(std::string_view text, std::string_view path);

// The same, collecting the warnings instead of logging them.
Result<std::vector<ConfigEntry>> parse_main_cf(std::string_view text, std::string_view path,
                                               std::vector<std::string>& warnings);

}  // namespace postern::config
