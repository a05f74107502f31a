// Tokenizer and right-to-left address-list parser. The parser works on one list with a
// sentinel at each end: walking from the right, `right` marks where the tokens already
// dealt with begin, so the address being collected always lies between the current
// token and `right`.
#include "util/address/tok822.h"

#include <cstring>
#include <iterator>

#include "util/address/address.h"

namespace postern::address::tok822 {
namespace {

// RFC 822 specials plus the routing operators % ! and the alias-file pipe.
constexpr const char kOperators[] = "|%!()<>@,;:\\\".[]";

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_operator(unsigned char c) { return c != 0 && std::strchr(kOperators, c) != nullptr; }
bool is_cntrl(unsigned char c) { return c < 32 || c == 127; }

// Collects characters while `more(c)` holds; a backslash escapes any next character.
// Line-break and tab characters become spaces, as in Postfix.
template <typename Pred>
size_t collect(std::string_view in, size_t i, std::string& out, Pred more) {
    while (i < in.size()) {
        unsigned char c = static_cast<unsigned char>(in[i]);
        if (c == '\\') {
            if (++i >= in.size()) break;
            c = static_cast<unsigned char>(in[i]);
        } else if (!more(c)) {
            break;
        }
        out.push_back(is_space(c) ? ' ' : static_cast<char>(c));
        ++i;
    }
    return i;
}

// Comments nest and are kept in external form, backslashes included.
size_t collect_comment(std::string_view in, size_t i, std::string& out) {
    int level = 1;
    out.push_back('(');
    while (i < in.size()) {
        char c = in[i++];
        out.push_back(c);
        if (c == '(') {
            ++level;
        } else if (c == ')') {
            if (--level == 0) break;
        } else if (c == '\\') {
            if (i >= in.size()) break;
            out.push_back(in[i++]);
        }
    }
    return i;
}

// An atom holding characters that are not allowed in atoms is emitted quoted.
int atom_type(const std::string& text) {
    for (unsigned char c : text)
        if (c == ' ' || is_cntrl(c) || is_operator(c)) return kQuoted;
    return kAtom;
}

Token scan_one(std::string_view in, size_t& i) {
    Token t;
    unsigned char c = static_cast<unsigned char>(in[i++]);
    if (c == '(') {
        t.type = kComment;
        i = collect_comment(in, i, t.text);
    } else if (c == '[' || c == '"') {
        t.type = c == '[' ? kDomainLit : kQuoted;
        unsigned char close = c == '[' ? ']' : '"';
        i = collect(in, i, t.text, [close](unsigned char ch) { return ch != close; });
        if (i < in.size()) ++i;
    } else if (c != '\\' && is_operator(c)) {
        t.type = c;
    } else {
        i = collect(in, i - 1, t.text,
                    [](unsigned char ch) { return !is_space(ch) && !is_operator(ch); });
        t.type = atom_type(t.text);
    }
    return t;
}

bool is_word(int type) { return type == kAtom || type == kQuoted || type == kDomainLit; }

// Moves the tokens strictly between `left` and `right` under a new Addr node placed
// after `left`, optionally preceded by a resynchronizing comma. Returns `left`.
using It = TokenList::iterator;
It group(TokenList& list, It left, It right, bool add_comma) {
    if (left == right || std::next(left) == right) return left;
    Token addr;
    addr.type = kAddr;
    addr.children.splice(addr.children.end(), list, std::next(left), right);
    It at = list.insert(right, std::move(addr));
    if (add_comma) list.insert(at, Token{',', {}, {}});
    return left;
}

constexpr int kDoWord = 1;   // a word here starts a new address
constexpr int kDoGroup = 2;  // inside "name: ... ;", so ':' opens the group

// Moves a comment out of the way, to just before `right`; returns its predecessor.
It move_comment(TokenList& list, It tp, It& right) {
    It prev = std::prev(tp);
    list.splice(right, list, tp);
    right = tp;
    return prev;
}

// "<...>" seen from its '>': groups the route address and skips the phrase before it.
It parse_route_addr(TokenList& list, It tp, It& right) {
    right = group(list, tp, right, true);
    while (tp->type != kSentinel && tp->type != '<') {
        if (tp->type == kComment)
            tp = move_comment(list, tp, right);
        else
            --tp;
    }
    if (tp->type == '<' && std::next(tp) == right)
        list.insert(right, Token{kAddr, {}, {}});  // "<>": the null address
    else
        group(list, tp, right, false);
    while (tp->type != kSentinel && (tp->type > 0xff || !std::strchr(">;,:", tp->type))) --tp;
    right = tp;
    return tp;
}

}  // namespace

TokenList scan(std::string_view text, size_t limit) {
    TokenList out;
    size_t i = 0;
    while (i < text.size()) {
        if (is_space(static_cast<unsigned char>(text[i]))) {
            ++i;
            continue;
        }
        out.push_back(scan_one(text, i));
        if (limit > 0 && out.size() >= limit) break;
    }
    return out;
}

TokenList parse(std::string_view text, size_t limit) {
    TokenList list = scan(text, limit);
    if (list.empty()) return list;
    list.push_front(Token{});
    list.push_back(Token{});
    int state = kDoWord;
    It right = std::prev(list.end());
    It tp = std::prev(right);
    while (tp->type != kSentinel) {
        if (tp->type == kComment) {
            tp = move_comment(list, tp, right);
            continue;
        } else if (tp->type == ';') {
            right = group(list, tp, right, true);
            state = kDoGroup | kDoWord;
        } else if (tp->type == ':' && (state & kDoGroup) != 0) {
            tp->type = kStartGroup;
            group(list, tp, right, false);
            while (tp->type != kSentinel && tp->type != ',') --tp;
            right = tp;
            continue;
        } else if (tp->type == '>') {
            tp = parse_route_addr(list, tp, right);
            state |= kDoWord;
            continue;
        } else if (is_word(tp->type)) {
            if ((state & kDoWord) == 0) right = std::next(group(list, tp, right, true));
            state &= ~kDoWord;
        } else if (tp->type == ',') {
            right = group(list, tp, right, false);
            state |= kDoWord;
        } else {
            state |= kDoWord;
        }
        --tp;
    }
    group(list, tp, right, false);
    list.pop_front();
    list.pop_back();
    return list;
}

std::string internalize_addr(const Token& addr) {
    std::string out;
    for (const Token& t : addr.children) {
        switch (t.type) {
        case kAtom:
        case kQuoted: out += t.text; break;
        case kComment: break;
        case kDomainLit: out += '[' + t.text + ']'; break;
        case kStartGroup: out += ':'; break;
        case kAddr: out += internalize_addr(t); break;
        default: out += static_cast<char>(t.type);
        }
    }
    return out;
}

namespace {

void append_escaped(std::string& out, const std::string& text, const char* specials) {
    for (char c : text) {
        if (c != 0 && std::strchr(specials, c)) out += '\\';
        out += c;
    }
}

bool non_operator(int type) {
    return type == kAtom || type == kQuoted || type == kComment || type == kDomainLit ||
           type == kAddr;
}

bool space_after(const Token& t, const Token& next) {
    if (t.type == ',' || t.type == kStartGroup || next.type == '<') return true;
    return non_operator(t.type) && non_operator(next.type);
}

}  // namespace

std::string externalize(const TokenList& tree, bool line_breaks) {
    std::string out;
    for (auto it = tree.begin(); it != tree.end(); ++it) {
        const Token& t = *it;
        switch (t.type) {
        case kAddr: {
            std::string internal = internalize_addr(t);
            if (!internal.empty()) out += to_external(internal);
            break;
        }
        case kAtom:
        case kComment: out += t.text; break;
        case kQuoted:
            out += '"';
            append_escaped(out, t.text, "\"\\\r\n");
            out += '"';
            break;
        case kDomainLit:
            out += '[';
            append_escaped(out, t.text, "\\\r\n");
            out += ']';
            break;
        case kStartGroup: out += ':'; break;
        default: out += static_cast<char>(t.type);
        }
        auto next = std::next(it);
        if (line_breaks && t.type == ',')
            out += '\n';
        else if (next != tree.end() && space_after(t, *next))
            out += ' ';
    }
    return out;
}

}  // namespace postern::address::tok822
