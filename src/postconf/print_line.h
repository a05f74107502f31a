// Postfix's postconf output line: whitespace between words collapsed to one space, and
// with -f folded before column 80 with a 4-space indent.
#pragma once

#include <string>
#include <string_view>

namespace postern::postconf {

inline constexpr size_t kLineLimit = 80;
inline constexpr std::string_view kIndentText = "    ";

// Returns `text` normalized (and folded when `fold`), ending in '\n'.
std::string print_line(std::string_view text, bool fold);

}  // namespace postern::postconf
