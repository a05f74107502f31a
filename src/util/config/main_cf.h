// main.cf syntax (postconf(5)): "name = value" lines, '#' comments on their own line,
// continuation lines that start with whitespace, blank lines ignored. The same syntax
// serves every "name = value" file Postern reads (mysql_table(5) files, for one).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"

namespace postern::config {

struct ConfigEntry {
    std::string name;
    std::string value;  // continuation lines joined with one space, trimmed
    int line = 0;       // line where the entry starts
};

// Parses the text of a main.cf-style file. Errors read as Postfix words them:
// "/etc/postern/main.cf, line 7: missing '=' after attribute name: \"foo\"".
Result<std::vector<ConfigEntry>> parse_main_cf(std::string_view text, std::string_view path);

}  // namespace postern::config
