// Small string helpers shared by every parser. Nothing here knows about mail.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace postern {

inline constexpr std::string_view kSpace = " \t\r\n";

std::string_view trim(std::string_view s);
std::string_view trim_left(std::string_view s);
std::string_view trim_right(std::string_view s);

// Splits on any of `seps`, dropping empty fields (Postfix's mystrtok).
std::vector<std::string_view> split_tokens(std::string_view s, std::string_view seps);

std::string lowercase(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
// No byte above 0x7f (an address or header that needs no SMTPUTF8).
bool all_ascii(std::string_view text);
bool istarts_with(std::string_view s, std::string_view prefix);

// Parses a decimal integer with optional sign; false on overflow or garbage.
bool parse_long(std::string_view s, long& out);

// "%s" formatting into a std::string (printf-style; g++ 12 has no std::format).
std::string strprintf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace postern
