#include "util/table/alias_source.h"

#include <cstring>

#include "util/base/strings.h"

namespace postern::table {
namespace {

enum class TokType { Op, Atom, QString, Comment, DomLit };

struct Token {
    TokType type;
    char op = 0;       // when Op
    std::string text;  // content: unquoted for QString/DomLit, "(...)" for Comment
};

// RFC 822 specials plus Postfix's extra operators '|', '%' and '!'.
constexpr std::string_view kOpChars = "|%!()<>@,;:\\\".[]";

bool is_op_char(char c) { return c != '\0' && kOpChars.find(c) != std::string_view::npos; }
bool is_lwsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Collects characters while `more(c)` holds; a backslash takes the next character
// literally, and whitespace is stored as a space.
template <class Pred>
size_t collect(std::string_view s, size_t i, std::string& out, Pred more) {
    while (i < s.size()) {
        char c = s[i];
        if (c == '\\') {
            if (++i == s.size()) break;
            c = s[i];
        } else if (!more(c)) {
            break;
        }
        out += is_lwsp(c) ? ' ' : c;
        ++i;
    }
    return i;
}

size_t collect_comment(std::string_view s, size_t i, std::string& out) {
    int level = 1;
    out = "(";
    while (i < s.size()) {
        char c = s[i++];
        out += c;
        if (c == '(') {
            ++level;
        } else if (c == ')') {
            if (--level == 0) break;
        } else if (c == '\\') {
            if (i == s.size()) break;
            out += s[i++];
        }
    }
    return i;
}

std::vector<Token> scan(std::string_view s) {
    std::vector<Token> out;
    size_t i = 0;
    while (i < s.size()) {
        char c = s[i];
        if (is_lwsp(c)) {
            ++i;
            continue;
        }
        Token t{TokType::Atom, 0, {}};
        if (c == '(') {
            t.type = TokType::Comment;
            i = collect_comment(s, i + 1, t.text);
        } else if (c == '[' || c == '"') {
            t.type = c == '[' ? TokType::DomLit : TokType::QString;
            char close = c == '[' ? ']' : '"';
            i = collect(s, i + 1, t.text, [close](char ch) { return ch != close; });
            if (i < s.size()) ++i;  // the closing character
        } else if (c != '\\' && is_op_char(c)) {
            t.type = TokType::Op;
            t.op = c;
            ++i;
        } else {
            i = collect(s, i, t.text, [](char ch) { return !is_lwsp(ch) && !is_op_char(ch); });
            // An atom with characters that need quoting is written back quoted.
            for (char ch : t.text)
                if (ch == ' ' || static_cast<unsigned char>(ch) < 32 || ch == 127 || is_op_char(ch)) {
                    t.type = TokType::QString;
                    break;
                }
        }
        out.push_back(std::move(t));
    }
    return out;
}

bool non_operator(const Token& t) { return t.type != TokType::Op; }

// Postfix's rule for a space after a token: after a comma, before '<', and between two
// words.
bool space_after(const std::vector<Token>& toks, size_t i, size_t end) {
    if (i + 1 >= end) return false;
    const Token& t = toks[i];
    const Token& next = toks[i + 1];
    if ((t.type == TokType::Op && t.op == ',') || (next.type == TokType::Op && next.op == '<')) return true;
    return non_operator(t) && non_operator(next);
}

void copy_quoted(std::string& out, const std::string& s, std::string_view quote_set) {
    for (char c : s) {
        if (quote_set.find(c) != std::string_view::npos) out += '\\';
        out += c;
    }
}

std::string internalize(const std::vector<Token>& toks, size_t begin, size_t end) {
    std::string out;
    for (size_t i = begin; i < end; ++i) {
        const Token& t = toks[i];
        switch (t.type) {
            case TokType::Op: out += t.op; break;
            case TokType::DomLit: out += '[' + t.text + ']'; break;
            default: out += t.text; break;
        }
        if (space_after(toks, i, end)) out += ' ';
    }
    return out;
}

std::string externalize(const std::vector<Token>& toks, size_t begin, size_t end) {
    std::string out;
    for (size_t i = begin; i < end; ++i) {
        const Token& t = toks[i];
        switch (t.type) {
            case TokType::Op: out += t.op; break;
            case TokType::Atom:
            case TokType::Comment: out += t.text; break;
            case TokType::QString:
                out += '"';
                copy_quoted(out, t.text, std::string_view("\"\\\r\n", 4));
                out += '"';
                break;
            case TokType::DomLit:
                out += '[';
                copy_quoted(out, t.text, std::string_view("\\\r\n", 3));
                out += ']';
                break;
        }
        if (space_after(toks, i, end)) out += ' ';
    }
    return out;
}

bool is_op(const Token& t, char op) { return t.type == TokType::Op && t.op == op; }

}  // namespace

std::optional<SourceEntry> parse_alias_line(const LogicalLine& line, std::string_view path, bool utf8,
                                            std::vector<std::string>& warnings) {
    std::string_view text = line.text;
    text = text.substr(0, text.find('\0'));  // Postfix sees a C string
    const int p_len = static_cast<int>(path.size());
    if (utf8 && !valid_utf8(text)) {
        warnings.push_back(strprintf("%.*s, line %d: non-UTF-8 input \"%s\" -- ignoring this line", p_len,
                                     path.data(), line.line, printable(text).c_str()));
        return std::nullopt;
    }
    std::vector<Token> toks = scan(text);
    if (toks.empty()) return std::nullopt;
    size_t colon = 0;
    while (colon < toks.size() && !is_op(toks[colon], ':')) ++colon;
    bool comma_before = false, nonlocal = false;
    for (size_t i = 0; i < colon && i < toks.size(); ++i) {
        comma_before |= is_op(toks[i], ',');
        nonlocal |= is_op(toks[i], '@') || is_op(toks[i], '%');
    }
    if (colon == toks.size() || colon == 0 || colon + 1 == toks.size() || comma_before) {
        warnings.push_back(strprintf("%.*s, line %d: need name:value pair", p_len, path.data(), line.line));
        return std::nullopt;
    }
    if (nonlocal) {
        warnings.push_back(strprintf("%.*s, line %d: name must be local", p_len, path.data(), line.line));
        return std::nullopt;
    }
    return SourceEntry{internalize(toks, 0, colon), externalize(toks, colon + 1, toks.size())};
}

}  // namespace postern::table
