// RFC 822/5322 address-list tokens and parse tree, with the behaviour of Postfix's tok822
// module: a permissive right-to-left parser that keeps every token it does not
// understand, inserts missing commas between addresses, and groups each address's
// tokens under an Addr node. Display names, group names and comments stay at the top
// level, so the tree converts back to text without losing anything.
#pragma once

#include <list>
#include <string>
#include <string_view>

namespace postern::address::tok822 {

// Single-character operators use their character as type; the rest are above 0xff.
enum Type : int {
    kSentinel = 0,
    kAtom = 0x100,
    kQuoted,    // quoted string (text without quotes), or an atom that needs quoting
    kDomainLit, // [text] (text without brackets)
    kComment,   // (text), kept in external form including the parentheses
    kStartGroup,
    kAddr,      // children hold one address's tokens
};

struct Token {
    int type = kSentinel;
    std::string text;
    std::list<Token> children;  // kAddr only
};
using TokenList = std::list<Token>;

// Postfix's header_address_token_limit default: the rest of a longer header is ignored.
inline constexpr size_t kDefaultTokenLimit = 10240;

// Flat token list of an external-form string (tok822_scan).
TokenList scan(std::string_view text, size_t limit = kDefaultTokenLimit);
// Address-list parse tree (tok822_parse).
TokenList parse(std::string_view text, size_t limit = kDefaultTokenLimit);

// An Addr node's tokens as one internal-form string: quoting removed, no spaces
// between tokens, comments left out.
std::string internalize_addr(const Token& addr);
// Top-level tree as header text (tok822_externalize): addresses quoted with
// quote_822_local, spaces where Postfix puts them; line_breaks: a newline instead of
// the space after each comma (TOK822_STR_LINE, for header folding).
std::string externalize(const TokenList& tree, bool line_breaks = false);

}  // namespace postern::address::tok822
