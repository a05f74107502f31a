// Quoting of local parts (Postfix's quote_822_local / unquote_822_local), splitting and
// domain folding. Postfix's quoting is 8-bit clean: UTF-8 local parts stay unquoted.
#include "util/address/address.h"

#include <cstring>

namespace postern::address {
namespace {

// Where the local part begins: after a source route "@a,@b:" if there is one.
size_t local_part_start(std::string_view s) {
    if (!s.empty() && s[0] == '@') {
        size_t colon = s.find(':');
        if (colon != std::string_view::npos) return colon + 1;
    }
    return 0;
}

bool is_dot_string(std::string_view local) {
    if (local.empty() || local.front() == '.' || local.back() == '.') return false;
    for (size_t i = 0; i < local.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(local[i]);
        if (c == '.' && i + 1 < local.size() && local[i + 1] == '.') return false;
        if (c == ' ' || c < 32 || c == 127) return false;
        if (std::strchr("()<>@,;:\\\"[]", c)) return false;
    }
    return true;
}

}  // namespace

std::string to_external(std::string_view internal) {
    size_t start = local_part_start(internal);
    size_t at = internal.rfind('@');
    size_t end = (at == std::string_view::npos || at < start) ? internal.size() : at;
    std::string_view local = internal.substr(start, end - start);
    if (is_dot_string(local)) return std::string(internal);
    std::string out(internal.substr(0, start));
    out += '"';
    for (char c : local) {
        if (c == '"' || c == '\\' || c == '\r') out += '\\';
        out += c;
    }
    out += '"';
    out += internal.substr(end);
    return out;
}

std::string to_internal(std::string_view external) {
    size_t start = local_part_start(external);
    std::string out(external.substr(0, start));
    bool in_quote = false;
    size_t bare_at_out = std::string::npos;  // where the last unquoted '@' went
    size_t bare_at_in = 0;
    for (size_t i = start; i < external.size(); ++i) {
        char c = external[i];
        if (c == '"') {
            in_quote = !in_quote;
            continue;
        }
        if (c == '@') {
            if (!in_quote) {
                bare_at_out = out.size();
                bare_at_in = i;
            }
        } else if (c == '\\' && i + 1 < external.size()) {
            c = external[++i];
        }
        out += c;
    }
    // The domain after the last unquoted '@' is kept exactly as written.
    if (bare_at_out != std::string::npos) {
        out.resize(bare_at_out);
        out += external.substr(bare_at_in);
    }
    return out;
}

Parts split(std::string_view address) {
    Parts p;
    size_t at = address.rfind('@');
    if (at == std::string_view::npos) {
        p.local = std::string(address);
        return p;
    }
    p.local = std::string(address.substr(0, at));
    p.domain = std::string(address.substr(at + 1));
    p.has_domain = true;
    return p;
}

std::string fold_domain(std::string_view address) {
    std::string out(address);
    size_t at = out.rfind('@');
    if (at == std::string::npos) return out;
    for (size_t i = at + 1; i < out.size(); ++i)
        if (out[i] >= 'A' && out[i] <= 'Z') out[i] = static_cast<char>(out[i] - 'A' + 'a');
    return out;
}

}  // namespace postern::address
