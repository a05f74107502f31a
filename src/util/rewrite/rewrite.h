// trivial-rewrite's "rewrite" request: an address in a context ("local" or "remote")
// to its canonical form, as Postfix's rewrite.c: strip a source route, swap a!b to b@a,
// turn user%domain into user@domain, append @$myorigin to a bare user, append
// .$mydomain to an unqualified domain, strip a trailing dot.
#pragma once

#include <string>
#include <string_view>

#include "util/address/tok822.h"
#include "util/config/config.h"

namespace postern::rewrite {

struct RewriteContext {
    bool swap_bangpath = true;
    bool percent_hack = true;
    bool append_at_origin = true;
    bool append_dot_domain = false;
    std::string origin;  // appended as @origin ("local": $myorigin)
    std::string domain;  // appended as .domain ("local": $mydomain)

    // "local": myorigin/mydomain; "remote": remote_header_rewrite_domain for both.
    static RewriteContext local(const config::Config& c);
    static RewriteContext remote(const config::Config& c);
};

// Internal form in, internal form out. The empty address stays empty.
std::string rewrite_address(const RewriteContext& ctx, std::string_view address);

// The same on the tokens of one external-form address (resolve works on these).
void rewrite_tokens(const RewriteContext& ctx, address::tok822::TokenList& tokens);

// Tokens of one internal-form address (quoted as needed first, so quoted local
// parts stay one token) and back.
address::tok822::TokenList tokens_of(std::string_view internal);
std::string internal_of(const address::tok822::TokenList& tokens);

}  // namespace postern::rewrite
