#include "smtpd/smtpd_reply_footer.h"

#include <cctype>

namespace postern::smtpd {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Length of an enhanced status code "D.D{1,3}.D{1,3}" at the start of `s`, else 0.
size_t dsn_length(const std::string& s, size_t at) {
    size_t i = at;
    if (i + 1 >= s.size() || (s[i] != '2' && s[i] != '4' && s[i] != '5') || s[i + 1] != '.') return 0;
    i += 2;
    for (int part = 0; part < 2; ++part) {
        size_t digits = 0;
        while (i < s.size() && is_digit(s[i]) && digits < 3) ++i, ++digits;
        if (digits == 0) return 0;
        if (part == 0) {
            if (i >= s.size() || s[i] != '.') return 0;
            ++i;
        }
    }
    return i < s.size() && s[i] == ' ' ? i - at : 0;
}

}  // namespace

std::string expand_macros(const std::string& tmpl, const std::map<std::string, std::string>& macros) {
    std::string out;
    auto value = [&macros](const std::string& n) {
        auto it = macros.find(n);
        return it == macros.end() ? std::string() : it->second;
    };
    for (size_t i = 0; i < tmpl.size(); ++i) {
        if (tmpl[i] != '$' || i + 1 >= tmpl.size()) {
            out += tmpl[i];
            continue;
        }
        if (tmpl[i + 1] == '$') {
            out += '$';
            ++i;
        } else if (tmpl[i + 1] == '{') {
            size_t depth = 1, j = i + 2;
            while (j < tmpl.size() && depth > 0) {
                if (tmpl[j] == '{') ++depth;
                if (tmpl[j] == '}') --depth;
                ++j;
            }
            std::string inner = tmpl.substr(i + 2, j - i - 3);
            size_t op = inner.find_first_of("?:");
            std::string n = inner.substr(0, op);
            std::string v = value(n);
            if (op == std::string::npos)
                out += v;
            else if (inner[op] == '?' && !v.empty())
                out += expand_macros(inner.substr(op + 1), macros);
            else if (inner[op] == ':' && v.empty())
                out += expand_macros(inner.substr(op + 1), macros);
            i = j - 1;
        } else {
            size_t j = i + 1;
            while (j < tmpl.size() && (isalnum(static_cast<unsigned char>(tmpl[j])) || tmpl[j] == '_')) ++j;
            out += value(tmpl.substr(i + 1, j - i - 1));
            i = j - 1;
        }
    }
    return out;
}

std::string add_reply_footer(const std::string& reply, const std::string& footer,
                             const std::map<std::string, std::string>& macros) {
    size_t last = reply.rfind('\n');
    last = last == std::string::npos ? 0 : last + 1;
    if (reply.size() < last + 4 || !is_digit(reply[last]) || !is_digit(reply[last + 1]) ||
        !is_digit(reply[last + 2]) || (reply[last + 3] != ' ' && reply[last + 3] != '-'))
        return reply;
    std::string code = reply.substr(last, 3);
    size_t dsn = dsn_length(reply, last + 4);
    std::string prefix_tail = dsn ? reply.substr(last + 4, dsn) + " " : "";
    std::string out = reply;
    size_t pos = 0;
    bool first = true;
    for (;;) {
        size_t nl = footer.find("\\n", pos);
        std::string line = footer.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        if (first && line.rfind("\\c", 0) == 0) {
            line.erase(0, 2);
        } else {
            // The line before becomes a continuation line.
            out[out.rfind('\n') == std::string::npos ? 3 : out.rfind('\n') + 4] = '-';
            out += "\n" + code + " " + prefix_tail;
        }
        out += expand_macros(line, macros);
        first = false;
        if (nl == std::string::npos) break;
        pos = nl + 2;
    }
    return out;
}

}  // namespace postern::smtpd
