#include "util/base/strings.h"

#include <cctype>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace postern {

std::string_view trim_left(std::string_view s) {
    size_t b = s.find_first_not_of(kSpace);
    return b == std::string_view::npos ? std::string_view() : s.substr(b);
}

std::string_view trim_right(std::string_view s) {
    size_t e = s.find_last_not_of(kSpace);
    return e == std::string_view::npos ? std::string_view() : s.substr(0, e + 1);
}

std::string_view trim(std::string_view s) { return trim_right(trim_left(s)); }

std::vector<std::string_view> split_tokens(std::string_view s, std::string_view seps) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < s.size()) {
        size_t b = s.find_first_not_of(seps, i);
        if (b == std::string_view::npos) break;
        size_t e = s.find_first_of(seps, b);
        if (e == std::string_view::npos) e = s.size();
        out.push_back(s.substr(b, e - b));
        i = e;
    }
    return out;
}

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool all_ascii(std::string_view text) {
    for (char c : text)
        if (static_cast<unsigned char>(c) >= 0x80) return false;
    return true;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool parse_long(std::string_view s, long& out) {
    if (s.empty() || s.size() > 32) return false;
    std::string tmp(s);
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(tmp.c_str(), &end, 10);
    if (errno != 0 || end == tmp.c_str() || *end != '\0') return false;
    if (!std::isdigit(static_cast<unsigned char>(tmp.back()))) return false;
    out = v;
    return true;
}

std::string strprintf(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = std::vsnprintf(nullptr, 0, fmt, ap);
    va_end(ap);
    std::string out;
    if (n > 0) {
        out.resize(static_cast<size_t>(n) + 1);
        std::vsnprintf(out.data(), out.size(), fmt, ap2);
        out.resize(static_cast<size_t>(n));
    }
    va_end(ap2);
    return out;
}

}  // namespace postern
