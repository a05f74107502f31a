// Parsing of the arguments of MAIL FROM and RCPT TO (RFC 5321 4.1.2, ESMTP parameters
// of RFC 1870, 6152, 3461, 4954, 6531), pure functions so they are unit-tested and
// fuzzed. Errors come back as Postfix's exact reply lines.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/dsn/dsn_text.h"

namespace postern::smtpd {

struct PathArgs {
    std::string address;   // as written inside <> (quoted form), "" for <>
    bool had_brackets = false;
    std::vector<std::pair<std::string, std::string>> params;  // NAME uppercased, value
    std::vector<std::string> raw_params;  // the same, as the client wrote them (for replies)
};

// Splits "FROM:<a@b> SIZE=10 BODY=8BITMIME" after the "FROM:"/"TO:" keyword. `strict`:
// strict_rfc821_envelopes (the address must be in <> and nothing but parameters may
// follow). Returns nullopt on a syntax error. Whether the keyword is there at all is
// has_path_keyword()'s question (Postfix answers the two with different replies).
std::optional<PathArgs> parse_path(std::string_view arg, std::string_view keyword, bool strict);

// "FROM:" (or "TO:") followed by something: the command has the right shape.
bool has_path_keyword(std::string_view arg, std::string_view keyword);

using dsn::xtext_decode;
using dsn::xtext_encode;

// RFC 5321 address (in quoted form, as inside <>) to Postfix's internal form: drops a
// source route ("@a,@b:user@d") and unquotes the local part.
std::string internal_address(std::string_view quoted);
// A crude RFC 5321 mailbox syntax check: printable, at most one unquoted @, no spaces
// outside quotes, no control characters; a source route before it is allowed.
bool valid_mailbox(std::string_view quoted);
// Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view text);

}  // namespace postern::smtpd
