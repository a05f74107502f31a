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
