// RFC 5322 addresses as Postfix handles them (tok822 / quote_822_local): the internal
// form of an address has its quoting removed ("john doe"@example.com is stored as
// john doe@example.com); the external form quotes the local part where RFC 5322 needs it.
// Envelope addresses travel in internal form; headers hold external form.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::address {

// Internal -> external: quotes the local part when it is not a dot-atom (quote_822_local).
std::string to_external(std::string_view internal);
// External -> internal: removes quotes and backslash escapes of the local part.
std::string to_internal(std::string_view external);

// Splits at the last '@' (Postfix's convention): "a@b@c" -> local "a@b", domain "c".
struct Parts {
    std::string local;
    std::string domain;  // "" when there is no '@'
    bool has_domain = false;
};
Parts split(std::string_view address);

// Every addr-spec of an address-list header value (From, To, Cc, Bcc, Reply-To,
// Resent-*), internal form, in order: groups flattened, comments and display names
// dropped, <route-addr> reduced to its addr-spec, "<>" as "". Garbage yields what could
// be salvaged (as Postfix's tok822 parser does), never an exception.
std::vector<std::string> parse_address_list(std::string_view header_value);

// Rewrites every address of an address-list header value through `fn` (internal form in,
// internal form out) and returns the new value: display names and comments are kept,
// the addresses re-emitted in external form (cleanup's canonical and masquerade
// rewriting of From:/To:/Cc: ...).
std::string rewrite_address_list(std::string_view header_value,
                                 const std::function<std::string(std::string_view)>& fn);

// The same for cleanup(8)'s header output: nullopt when no address changed (keep the
// header as it was); otherwise "Name: value" folded as Postfix's cleanup_fold_header:
// addresses joined with spaces while a line stays under 70 bytes, then a new line
// that starts with a tab.
std::optional<std::string> rewrite_address_header(
    std::string_view name, std::string_view header_value,
    const std::function<std::string(std::string_view)>& fn);

// Lower-cases the domain part only (lookups fold the domain; the local part may be
// case-sensitive in mailboxes).
std::string fold_domain(std::string_view address);

}  // namespace postern::address
