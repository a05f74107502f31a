#include "util/table/table_source.h"

#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <cctype>

#include "util/base/strings.h"

namespace postern::table {
namespace {

// C's isspace() in the C locale, which is what Postfix's ISSPACE tests.
bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

std::string_view trim_c_space(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && is_space(s[b])) ++b;
    while (e > b && is_space(s[e - 1])) --e;
    return s.substr(b, e - b);
}

// Postfix handles lines as C strings: anything after a NUL byte is not seen.
std::string_view as_c_string(std::string_view s) {
    size_t nul = s.find('\0');
    return nul == std::string_view::npos ? s : s.substr(0, nul);
}

// With smtputf8 on, Postfix drops a line that is not UTF-8, with a warning.
bool utf8_line_ok(std::string_view text, std::string_view path, int line, bool utf8,
                  std::vector<std::string>& warnings) {
    if (!utf8 || valid_utf8(text)) return true;
    warnings.push_back(strprintf("%.*s, line %d: non-UTF-8 input \"%s\" -- ignoring this line",
                                 static_cast<int>(path.size()), path.data(), line, printable(text).c_str()));
    return false;
}

std::string c_string(std::string_view s) { return std::string(as_c_string(s)); }

}  // namespace

void LogicalLineReader::feed(std::string_view data) {
    while (!data.empty()) {
        size_t nl = data.find('\n');
        if (nl == std::string_view::npos) {
            partial_.append(data);
            return;
        }
        ++lineno_;
        if (partial_.empty()) {
            physical_line(data.substr(0, nl));
        } else {
            partial_.append(data.substr(0, nl));
            physical_line(partial_);
            partial_.clear();
        }
        data.remove_prefix(nl + 1);
    }
}

void LogicalLineReader::finish() {
    // A last line without a newline still counts, but does not advance the line count
    // (readllines counts newline characters).
    if (!partial_.empty()) {
        std::string last = std::move(partial_);
        partial_.clear();
        ++lineno_;
        physical_line(last);
        --lineno_;
    }
    end_logical();
}

void LogicalLineReader::physical_line(std::string_view line) {
    size_t i = 0;
    while (i < line.size() && is_space(line[i])) ++i;
    if (i == line.size() || line[i] == '#') return;  // blank or comment: ignored
    if (i > 0) {                                      // continuation
        if (!have_current_) {
            have_current_ = true;
            current_line_ = lineno_;
            current_.clear();
        }
        current_.append(line);
        return;
    }
    end_logical();
    have_current_ = true;
    current_line_ = lineno_;
    current_.assign(line);
}

void LogicalLineReader::end_logical() {
    if (!have_current_) return;
    have_current_ = false;
    if (!current_.empty() && is_space(current_[0])) {
        // Continuation text with nothing to continue: Postfix warns and drops it.
        std::string_view shown = as_c_string(current_);
        warnings_.push_back(strprintf("%s: logical line must not start with whitespace: \"%.*s%s\"",
                                      path_.c_str(), static_cast<int>(std::min<size_t>(shown.size(), 30)),
                                      shown.data(), current_.size() > 30 ? "..." : ""));
        current_.clear();
        return;
    }
    if (ready_pos_ == ready_.size()) {
        ready_.clear();
        ready_pos_ = 0;
    }
    ready_.push_back({std::move(current_), current_line_});
    current_.clear();
}

bool LogicalLineReader::next(LogicalLine& out) {
    if (ready_pos_ >= ready_.size()) return false;
    out = std::move(ready_[ready_pos_++]);
    return true;
}

std::vector<std::string> LogicalLineReader::take_warnings() {
    std::vector<std::string> out;
    out.swap(warnings_);
    return out;
}

std::optional<SourceEntry> parse_postmap_line(const LogicalLine& line, std::string_view path,
                                              bool utf8, std::vector<std::string>& warnings) {
    std::string_view text = as_c_string(line.text);
    const int p_len = static_cast<int>(path.size());
    if (!utf8_line_ok(text, path, line.line, utf8, warnings)) return std::nullopt;
    // The key ends at the first whitespace outside quotes; a backslash protects one
    // character. The quotes and backslashes stay in the key, as Postfix keeps them.
    bool in_quotes = false;
    size_t i = 0;
    for (; i < text.size(); ++i) {
        char c = text[i];
        if (c == '\\') {
            if (++i == text.size()) break;
        } else if (is_space(c)) {
            if (!in_quotes) break;
        } else if (c == '"') {
            in_quotes = !in_quotes;
        }
    }
    if (in_quotes) {
        warnings.push_back(strprintf("%.*s, line %d: unbalanced '\"' in '%s' -- ignoring this line",
                                     p_len, path.data(), line.line, c_string(text).c_str()));
        return std::nullopt;
    }
    size_t key_end = std::min(i, text.size());
    std::string_view key = text.substr(0, key_end);
    std::string_view value = key_end < text.size() ? trim_c_space(text.substr(key_end + 1))
                                                   : std::string_view();
    if (key.empty() || value.empty()) {
        warnings.push_back(strprintf("%.*s, line %d: expected format: key whitespace value", p_len,
                                     path.data(), line.line));
        return std::nullopt;
    }
    if (key.back() == ':')
        warnings.push_back(strprintf(
            "%.*s, line %d: record is in \"key: value\" format; is this an alias file?", p_len,
            path.data(), line.line));
    return SourceEntry{std::string(key), std::string(value)};
}

std::optional<SourceEntry> parse_texthash_line(const LogicalLine& line, std::string_view path,
                                               bool utf8, std::vector<std::string>& warnings) {
    std::string_view text = as_c_string(line.text);
    const int p_len = static_cast<int>(path.size());
    if (!utf8_line_ok(text, path, line.line, utf8, warnings)) return std::nullopt;
    size_t i = 0;
    while (i < text.size() && !is_space(text[i])) ++i;
    std::string_view key = trim_c_space(text.substr(0, i));
    std::string_view value = i < text.size() ? trim_c_space(text.substr(i + 1)) : std::string_view();
    if (key.empty() || value.empty()) {
        warnings.push_back(strprintf(
            "%.*s, line %d: expected format: key whitespace value -- ignoring this line", p_len,
            path.data(), line.line));
        return std::nullopt;
    }
    if (key.back() == ':')
        warnings.push_back(strprintf(
            "%.*s, line %d: record is in \"key: value\" format; is this an alias file?", p_len,
            path.data(), line.line));
    return SourceEntry{std::string(key), std::string(value)};
}

bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        int n;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) n = 3, cp = c & 0x07;
        else return false;
        if (i + static_cast<size_t>(n) >= s.size()) return false;
        for (int k = 1; k <= n; ++k) {
            unsigned char cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

namespace {

void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// The C.UTF-8 locale, created once and never changed: towlower_l needs a locale whose
// LC_CTYPE knows Unicode, independent of whatever the process's locale is.
locale_t utf8_locale() {
    static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    return loc;
}

}  // namespace

// Case folds that are not the simple lower-case mapping (Unicode CaseFolding.txt, status
// C and F, for the letters that turn up in addresses).
static const char* special_fold(unsigned cp) {
    switch (cp) {
        case 0x00B5: return "\xce\xbc";          // micro sign -> mu
        case 0x00DF: return "ss";                // sharp s
        case 0x1E9E: return "ss";                // capital sharp s
        case 0x017F: return "s";                 // long s
        case 0x0130: return "i\xcc\x87";         // I with dot above
        case 0x0149: return "\xca\xbcn";
        case 0x03C2: return "\xcf\x83";          // final sigma -> sigma
        case 0x03D0: return "\xce\xb2";
        case 0x03D1: return "\xce\xb8";
        case 0x03D5: return "\xcf\x86";
        case 0x03D6: return "\xcf\x80";
        case 0x03F0: return "\xce\xba";
        case 0x03F1: return "\xcf\x81";
        case 0x03F5: return "\xce\xb5";
        case 0x1E9B: return "\xe1\xb9\xa1";
        case 0x1FBE: return "\xce\xb9";
        case 0xFB00: return "ff";
        case 0xFB01: return "fi";
        case 0xFB02: return "fl";
        case 0xFB03: return "ffi";
        case 0xFB04: return "ffl";
        case 0xFB05: return "st";
        case 0xFB06: return "st";
        default: return nullptr;
    }
}

std::string printable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
            ++i;
            continue;
        }
        size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 1;
        if (n > 1 && i + n <= s.size() && valid_utf8(s.substr(i, n))) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            out += '?';
            ++i;
        }
    }
    return out;
}

std::string fold_key(std::string_view key, bool utf8) {
    bool ascii = true;
    for (char c : key)
        if (static_cast<unsigned char>(c) >= 0x80) ascii = false;
    if (ascii || !utf8 || !valid_utf8(key) || utf8_locale() == static_cast<locale_t>(0))
        return lowercase(key);
    std::string out;
    out.reserve(key.size());
    for (size_t i = 0; i < key.size();) {
        unsigned char c = static_cast<unsigned char>(key[i]);
        if (c < 0x80) {
            out += static_cast<char>(std::tolower(c));
            ++i;
            continue;
        }
        int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
        unsigned cp = c & (n == 1 ? 0x1F : n == 2 ? 0x0F : 0x07);
        for (int k = 1; k <= n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(key[i + k]) & 0x3F);
        if (const char* special = special_fold(cp)) out += special;
        else append_utf8(out, static_cast<unsigned>(towlower_l(static_cast<wint_t>(cp), utf8_locale())));
        i += n + 1;
    }
    return out;
}

}  // namespace postern::table
