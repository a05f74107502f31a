// Address-list headers on top of the tok822 parse tree: extracting the addresses and
// rewriting them in place while display names, groups and comments stay as they were.
#include <iterator>

#include "util/address/address.h"
#include "util/address/tok822.h"

namespace postern::address {
namespace {

using tok822::Token;

// The addr-spec of an Addr node: a source route "@a,@b:" in front is dropped, as
// trivial-rewrite does before anything looks at the address.
std::string addr_spec(const Token& addr) {
    const auto& kids = addr.children;
    if (!kids.empty() && kids.front().type == '@') {
        for (auto it = kids.begin(); it != kids.end(); ++it) {
            if (it->type != ':' || std::next(it) == kids.end()) continue;
            Token rest;
            rest.type = tok822::kAddr;
            rest.children.assign(std::next(it), kids.end());
            return tok822::internalize_addr(rest);
        }
    }
    return tok822::internalize_addr(addr);
}

}  // namespace

std::vector<std::string> parse_address_list(std::string_view header_value) {
    std::vector<std::string> out;
    for (const Token& t : tok822::parse(header_value))
        if (t.type == tok822::kAddr) out.push_back(addr_spec(t));
    return out;
}

std::string rewrite_address_list(std::string_view header_value,
                                 const std::function<std::string(std::string_view)>& fn) {
    tok822::TokenList tree = tok822::parse(header_value);
    bool changed = false;
    for (Token& t : tree) {
        if (t.type != tok822::kAddr) continue;
        std::string before = addr_spec(t);
        std::string after = fn(before);
        if (after == before) continue;
        changed = true;
        // One atom holding the whole internal form: externalize() quotes it as needed.
        t.children.clear();
        t.children.push_back(Token{tok822::kAtom, std::move(after), {}});
    }
    // Like cleanup(8), a header whose addresses all stay the same is kept byte for byte.
    return changed ? tok822::externalize(tree) : std::string(header_value);
}

}  // namespace postern::address
