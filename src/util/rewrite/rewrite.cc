// The rules work on the token list of the quoted address: an operator inside a quoted
// local part ("a!b"@x) is text, not routing.
#include "util/rewrite/rewrite.h"

#include <algorithm>
#include <iterator>

#include "util/address/address.h"

namespace postern::rewrite {
namespace tok = address::tok822;
using tok::TokenList;

namespace {

TokenList::iterator find_first(TokenList& t, int type) {
    return std::find_if(t.begin(), t.end(), [type](const tok::Token& x) { return x.type == type; });
}

TokenList::iterator find_last(TokenList& t, int type) {
    auto r = std::find_if(t.rbegin(), t.rend(), [type](const tok::Token& x) { return x.type == type; });
    return r == t.rend() ? t.end() : std::prev(r.base());
}

bool contains_after(TokenList& t, TokenList::iterator from, int type) {
    return std::any_of(from, t.end(), [type](const tok::Token& x) { return x.type == type; });
}

void append_text(TokenList& t, int op, std::string_view text) {
    t.push_back(tok::Token{op, {}, {}});
    t.splice(t.end(), tok::scan(text, 0));
}

// Forms without '@': domain!user, user%domain, bare user.
void qualify(const RewriteContext& ctx, TokenList& t) {
    if (ctx.swap_bangpath) {
        auto bang = find_first(t, '!');
        if (bang != t.end()) {
            TokenList site;
            site.splice(site.end(), t, t.begin(), bang);
            t.erase(bang);
            t.push_back(tok::Token{'@', {}, {}});
            t.splice(t.end(), site);
            return;
        }
    }
    if (ctx.percent_hack) {
        auto pct = find_last(t, '%');
        if (pct != t.end()) {
            pct->type = '@';
            return;
        }
    }
    if (ctx.append_at_origin && !ctx.origin.empty()) append_text(t, '@', ctx.origin);
}

}  // namespace

RewriteContext RewriteContext::local(const config::Config& c) {
    RewriteContext r;
    r.swap_bangpath = c.get_bool("swap_bangpath");
    r.percent_hack = c.get_bool("allow_percent_hack");
    r.append_at_origin = c.get_bool("append_at_myorigin");
    r.append_dot_domain = c.get_bool("append_dot_mydomain");
    r.origin = c.get("myorigin");
    r.domain = c.get("mydomain");
    return r;
}

RewriteContext RewriteContext::remote(const config::Config& c) {
    RewriteContext r = local(c);
    r.origin = r.domain = c.get("remote_header_rewrite_domain");
    return r;
}

void rewrite_tokens(const RewriteContext& ctx, TokenList& t) {
    if (t.empty()) return;
    if (t.size() == 1 && t.front().type == tok::kQuoted && t.front().text.empty()) return;
    if (t.size() == 1 && t.front().type == '@') {  // a lone @ is the null address
        t.front() = tok::Token{tok::kQuoted, {}, {}};
        return;
    }
    if (t.front().type == '@') {  // source route
        auto colon = find_first(t, ':');
        if (colon != t.end() && std::next(colon) != t.end()) t.erase(t.begin(), std::next(colon));
    }
    if (find_last(t, '@') == t.end()) qualify(ctx, t);
    auto at = find_last(t, '@');
    if (ctx.append_dot_domain && !ctx.domain.empty() && at != t.end() && std::next(at) != t.end() &&
        !contains_after(t, at, tok::kDomainLit) && !contains_after(t, at, '.'))
        append_text(t, '.', ctx.domain);
    // A trailing dot goes, but not from "..", "@." (diagnostics show those as given).
    if (t.size() > 1 && t.back().type == '.') {
        int before = std::prev(t.end(), 2)->type;
        if (before != '.' && before != '@') t.pop_back();
    }
}

TokenList tokens_of(std::string_view internal) {
    return tok::scan(address::to_external(internal), 0);
}

// Postfix internalizes these tokens as a top-level list: a space follows a comma and
// separates adjacent words ("@a, @b:user@c").
std::string internal_of(const TokenList& tokens) {
    std::string out;
    auto word = [](int type) {
        return type == tok::kAtom || type == tok::kQuoted || type == tok::kDomainLit ||
               type == tok::kComment || type == tok::kAddr;
    };
    for (auto it = tokens.begin(); it != tokens.end(); ++it) {
        tok::Token one{tok::kAddr, {}, {}};
        one.children.push_back(*it);
        out += it->type == tok::kComment ? it->text : tok::internalize_addr(one);
        auto next = std::next(it);
        if (next != tokens.end() &&
            (it->type == ',' || next->type == '<' || (word(it->type) && word(next->type))))
            out += ' ';
    }
    return out;
}

std::string rewrite_address(const RewriteContext& ctx, std::string_view address) {
    if (address.empty()) return {};
    TokenList t = tokens_of(address);
    rewrite_tokens(ctx, t);
    return internal_of(t);
}

}  // namespace postern::rewrite
