#include "util/dsn/dsn_text.h"

#include <ctime>

#include "util/base/strings.h"

namespace postern::dsn {

std::string rfc5322_date(long when) {
    time_t t = static_cast<time_t>(when);
    struct tm lt;
    localtime_r(&t, &lt);
    char stamp[64];
    strftime(stamp, sizeof stamp, "%a, %d %b %Y %H:%M:%S ", &lt);
    long off = lt.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    // Postfix appends the zone name in a comment: "+0000 (UTC)".
    return strprintf("%s%c%02ld%02ld (%s)", stamp, sign, off / 3600, (off % 3600) / 60,
                     lt.tm_zone ? lt.tm_zone : "UTC");
}

std::vector<std::string> wrap_line(std::string_view text, size_t width, size_t indent) {
    std::vector<std::string> out;
    std::string pad;
    text = trim_right(text);  // trailing blanks would end a field line invisibly
    while (true) {
        size_t room = width > pad.size() ? width - pad.size() : 1;
        if (text.size() <= room) {
            out.push_back(pad + std::string(text));
            return out;
        }
        // Break at the last blank that fits, else at the first blank after the limit.
        size_t cut = text.find_last_of(" \t", room);
        if (cut == std::string_view::npos || cut == 0) cut = text.find_first_of(" \t", room);
        if (cut == std::string_view::npos) {
            out.push_back(pad + std::string(text));
            return out;
        }
        out.push_back(pad + std::string(trim_right(text.substr(0, cut))));
        text = trim_left(text.substr(cut));
        if (text.empty()) return out;
        pad.assign(indent, ' ');
    }
}

std::string mask_unsafe(std::string_view text, bool utf8_ok) {
    std::string out(text);
    for (char& c : out) {
        auto b = static_cast<unsigned char>(c);
        if (b < 0x20 || b == 0x7f || (b >= 0x80 && !utf8_ok)) c = '?';
    }
    return out;
}

namespace {

bool digits(std::string_view s, size_t max) {
    if (s.empty() || s.size() > max) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

}  // namespace

bool is_status_code(std::string_view code) {
    if (code.size() < 5 || (code[0] != '2' && code[0] != '4' && code[0] != '5') || code[1] != '.')
        return false;
    std::string_view rest = code.substr(2);
    size_t dot = rest.find('.');
    if (dot == std::string_view::npos) return false;
    return digits(rest.substr(0, dot), 3) && digits(rest.substr(dot + 1), 3);
}

SplitReason split_reason(std::string_view reason, std::string_view fallback) {
    std::string_view r = trim_left(reason);
    size_t end = r.find_first_of(" \t");
    std::string_view first = r.substr(0, end);
    if (is_status_code(first))
        return {std::string(first), std::string(end == std::string_view::npos ? "" : trim_left(r.substr(end)))};
    return {std::string(fallback), std::string(r)};
}

bool is_header_line(std::string_view line) {
    size_t i = 0;
    while (i < line.size()) {
        auto c = static_cast<unsigned char>(line[i]);
        if (c == ':' || c == ' ' || c == '\t' || c < 0x21 || c > 0x7e) break;
        ++i;
    }
    if (i == 0) return false;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    return i < line.size() && line[i] == ':';
}

bool is_header_block_line(std::string_view line) {
    return !line.empty() && (line[0] == ' ' || line[0] == '\t' || is_header_line(line));
}

std::string diagnostic_type(std::string_view mail_name) {
    std::string atom = "X-" + std::string(mail_name);
    for (char& c : atom)
        if (std::string_view(" \t\r\n()<>@,;:\\\".[]").find(c) != std::string_view::npos) c = '-';
    return atom;
}

std::optional<std::string> xtext_decode(std::string_view text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c < 33 || c > 126 || c == '=') return std::nullopt;
        if (c != '+') {
            out.push_back(static_cast<char>(c));
            continue;
        }
        if (i + 2 >= text.size()) return std::nullopt;
        auto hex = [](char h) -> int {
            if (h >= '0' && h <= '9') return h - '0';
            if (h >= 'A' && h <= 'F') return h - 'A' + 10;
            return -1;
        };
        int hi = hex(text[i + 1]), lo = hex(text[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

std::string xtext_encode(std::string_view text) {
    std::string out;
    for (unsigned char c : text) {
        if (c < 33 || c > 126 || c == '+' || c == '=')
            out += strprintf("+%02X", c);
        else
            out.push_back(static_cast<char>(c));
    }
    return out;
}

}  // namespace postern::dsn
