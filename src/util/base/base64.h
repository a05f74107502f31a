// RFC 4648 base64 (the standard alphabet, "=" padding), as SMTP AUTH (RFC 4954) uses it.
// Decoding is strict: a client that sends garbage gets "501 5.5.2 Cannot decode
// response" rather than a guess at what it meant.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace postern::base64 {

std::string encode(std::string_view data);

// nullopt unless `text` is canonical base64: only alphabet characters, a length that is
// a multiple of 4, at most two "=" and only at the end, and zero pad bits. No
// whitespace is skipped. The empty string decodes to the empty string.
std::optional<std::string> decode(std::string_view text);

}  // namespace postern::base64
