// Text helpers for delivery status notifications: RFC 5322 dates, Postfix's line_wrap()
// for report lines, masking of unsafe bytes in delivery reasons, RFC 3463 status codes
// at the start of a reason ("5.1.1 User unknown"), and the header test Postfix uses to
// find the end of a message's header block.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::dsn {

// "Mon, 23 Nov 2026 13:22:44 +0000 (UTC)" in local time, as Postfix's mail_date().
std::string rfc5322_date(long when);

// Postfix's line_wrap(): breaks `text` at blanks so that no line is longer than `width`
// (a single longer word stays whole); lines after the first are indented by `indent`
// spaces, which also makes them valid header/field continuations.
std::vector<std::string> wrap_line(std::string_view text, size_t width = 79, size_t indent = 4);

// Replaces control characters (and, unless `utf8_ok`, non-ASCII bytes) with '?', so a
// remote server's reply can be shown safely (Postfix's printable()).
std::string mask_unsafe(std::string_view text, bool utf8_ok);

// True for a valid RFC 3463 code "C.SSS.DDD" (class 2, 4 or 5, 1-3 digit subject,
// 1-3 digit detail).
bool is_status_code(std::string_view code);

// A reason that may start with a status code ("5.1.1 User unknown"): the code, or
// `fallback` when it has none, and the text after it. Postfix's dsn_split().
struct SplitReason {
    std::string status;
    std::string text;
};
SplitReason split_reason(std::string_view reason, std::string_view fallback);

// Postfix's is_header(): "Name:" with a non-empty name of printable ASCII other than
// ':' and blanks (blanks before the colon allowed); continuation lines are not headers
// here (the caller checks for a leading blank).
bool is_header_line(std::string_view line);
// A header or a header continuation line: what a headers-only return copies.
bool is_header_block_line(std::string_view line);

// RFC 3461 section 4 xtext for ENVID and ORCPT values: '+', '=' and bytes outside
// 33..126 become "+XX".
std::string xtext_encode(std::string_view text);
// The reverse, strict: nullopt for a byte outside 33..126, a bare '=' or a bad "+XX".
std::optional<std::string> xtext_decode(std::string_view text);

// The diagnostic-type atom "X-<mail_name>" with RFC 822 specials replaced by '-'.
std::string diagnostic_type(std::string_view mail_name);

}  // namespace postern::dsn
