// aliases(5) source lines, as postalias(1) reads them: "name: value, value, ...".
// Lines are logical lines (see table_source.h: continuation lines start with
// whitespace). Each line is split into RFC 822 tokens (atoms, "quoted strings",
// (comments), [domain literals] and the operators ()<>@,;:\".[]|%!), the name is what
// precedes the first ':' in internal (unquoted) form, and the value is the rest in
// external form with Postfix's spacing: ", " after commas, one space between words,
// none around operators. So `"|/bin/cmd arg"`, `:include:/file`, `/file/name` and
// addresses all come out as Postfix stores them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/table/table_source.h"

namespace postern::table {

// Returns nullopt for a line that is skipped, with Postfix's warning:
// "FILE, line N: need name:value pair" or "FILE, line N: name must be local".
std::optional<SourceEntry> parse_alias_line(const LogicalLine& line, std::string_view path, bool utf8,
                                            std::vector<std::string>& warnings);

}  // namespace postern::table
