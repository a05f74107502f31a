#include "smtpd/smtpd_params.h"

#include "util/address/address.h"
#include "util/base/strings.h"

namespace postern::smtpd {

namespace {

std::string uppercase(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return out;
}

// The address part: "<...>" (quotes and brackets inside quotes respected) or, when not
// strict, a bare word up to the first space.
std::optional<std::string_view> take_address(std::string_view& s, bool strict, bool& brackets) {
    s = trim_left(s);
    if (s.empty()) return std::nullopt;
    if (s.front() != '<') {
        if (strict) return std::nullopt;
        size_t end = s.find(' ');
        std::string_view word = s.substr(0, end);
        s.remove_prefix(word.size());
        brackets = false;
        return word;
    }
    bool quoted = false;
    for (size_t i = 1; i < s.size(); ++i) {
        char c = s[i];
        if (c == '\\' && quoted) {
            ++i;
        } else if (c == '"') {
            quoted = !quoted;
        } else if (c == '>' && !quoted) {
            std::string_view inner = s.substr(1, i - 1);
            s.remove_prefix(i + 1);
            brackets = true;
            return inner;
        }
    }
    return std::nullopt;
}

}  // namespace

std::optional<PathArgs> parse_path(std::string_view arg, std::string_view keyword, bool strict) {
    if (!istarts_with(arg, keyword)) return std::nullopt;
    arg.remove_prefix(keyword.size());
    PathArgs out;
    auto addr = take_address(arg, strict, out.had_brackets);
    if (!addr) return std::nullopt;
    out.address.assign(*addr);
    if (!arg.empty() && arg.front() != ' ') return std::nullopt;
    for (std::string_view tok : split_tokens(arg, " ")) {
        size_t eq = tok.find('=');
        std::string name = uppercase(tok.substr(0, eq));
        if (name.empty()) return std::nullopt;
        std::string value = eq == std::string_view::npos ? "" : std::string(tok.substr(eq + 1));
        out.params.emplace_back(std::move(name), std::move(value));
        out.raw_params.emplace_back(tok);
    }
    return out;
}

bool has_path_keyword(std::string_view arg, std::string_view keyword) {
    return istarts_with(arg, keyword) && !trim(arg.substr(keyword.size())).empty();
}

// The "@a,@b:" of a source-routed path, when `quoted` has one: what internal_address()
// drops.
static std::string_view source_route(std::string_view quoted) {
    if (quoted.empty() || quoted.front() != '@') return {};
    size_t colon = quoted.find(':');
    return colon == std::string_view::npos ? std::string_view() : quoted.substr(0, colon + 1);
}

std::string internal_address(std::string_view quoted) {
    // "@relay1,@relay2:user@domain": the source route is ignored (RFC 5321 appendix C).
    quoted.remove_prefix(source_route(quoted).size());
    return address::to_internal(quoted);
}

bool valid_mailbox(std::string_view quoted) {
    // A source route is a comma-separated list of @domain (RFC 5321 section 4.1.2); the
    // mailbox after it is checked as any other.
    std::string_view route = source_route(quoted);
    for (unsigned char c : route)
        if (c <= 32 || c == 127 || c == '<' || c == '>' || c == '(' || c == ')' || c == ';' || c == '"')
            return false;
    quoted.remove_prefix(route.size());
    bool in_quote = false;
    for (size_t i = 0; i < quoted.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(quoted[i]);
        if (c < 32 || c == 127) return false;
        if (in_quote) {
            if (c == '\\') ++i;
            else if (c == '"') in_quote = false;
            continue;
        }
        if (c == '"') in_quote = true;
        else if (c == ' ' || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' || c == ';')
            return false;
    }
    return !in_quote;
}

bool valid_utf8(std::string_view text) {
    size_t i = 0;
    while (i < text.size()) {
        auto c = static_cast<unsigned char>(text[i]);
        size_t n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 4;
        if (n == 4 || i + n >= text.size()) return false;  // bad lead byte, or truncated
        unsigned long cp = n == 0 ? c : (c & (0x3F >> n));
        for (size_t k = 1; k <= n; ++k) {
            auto cc = static_cast<unsigned char>(text[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        static constexpr unsigned long kMin[] = {0, 0x80, 0x800, 0x10000};
        if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n + 1;
    }
    return true;
}

}  // namespace postern::smtpd
