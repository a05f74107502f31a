// Address-list headers on top of the tok822 parse tree: extracting the addresses and
// rewriting them in place while display names, groups and comments stay as they were.
#include <iterator>
#include <optional>

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

namespace {

// Rewrites every address of the tree in place; false when none changed.
bool rewrite_tree(tok822::TokenList& tree, const std::function<std::string(std::string_view)>& fn) {
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
    return changed;
}

}  // namespace

std::string rewrite_address_list(std::string_view header_value,
                                 const std::function<std::string(std::string_view)>& fn) {
    tok822::TokenList tree = tok822::parse(header_value);
    // Like cleanup(8), a header whose addresses all stay the same is kept byte for byte.
    return rewrite_tree(tree, fn) ? tok822::externalize(tree) : std::string(header_value);
}

std::optional<std::string> rewrite_address_header(
    std::string_view name, std::string_view header_value,
    const std::function<std::string(std::string_view)>& fn) {
    tok822::TokenList tree = tok822::parse(header_value);
    if (!rewrite_tree(tree, fn)) return std::nullopt;
    std::string text = std::string(name) + ": " + tok822::externalize(tree, true);
    // One address per line from externalize(); join lines while the output line,
    // counted from its start, stays under 70 bytes.
    std::string out;
    size_t line_start = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string_view piece(text.data() + pos, end - pos);
        if (pos == 0) {
            out += piece;
        } else if (out.size() - line_start + 1 + piece.size() < 70) {
            out += ' ';
            out += piece;
        } else {
            out += "\n\t";  // the tab is cleanup's continuation, not counted
            line_start = out.size();
            out += piece;
        }
        pos = end + 1;
    }
    return out;
}

}  // namespace postern::address
