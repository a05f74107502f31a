#include "util/tls/tls_policy.h"

#include <openssl/ssl.h>

#include <array>

#include "util/base/strings.h"

namespace postern::tls {

namespace {

struct ProtocolName {
    const char* name;
    int version;          // 0: known to Postfix, absent from OpenSSL 3 (SSLv2)
    unsigned long no_op;  // the SSL_OP_NO_* bit that removes it
};

// Oldest first; the order defines what ">=" and "<=" mean.
constexpr std::array<ProtocolName, 6> kProtocols{{
    {"SSLv2", 0, 0},
    {"SSLv3", SSL3_VERSION, SSL_OP_NO_SSLv3},
    {"TLSv1", TLS1_VERSION, SSL_OP_NO_TLSv1},
    {"TLSv1.1", TLS1_1_VERSION, SSL_OP_NO_TLSv1_1},
    {"TLSv1.2", TLS1_2_VERSION, SSL_OP_NO_TLSv1_2},
    {"TLSv1.3", TLS1_3_VERSION, SSL_OP_NO_TLSv1_3},
}};

int protocol_index(std::string_view name) {
    for (size_t i = 0; i < kProtocols.size(); ++i)
        if (iequals(name, kProtocols[i].name)) return static_cast<int>(i);
    return -1;
}

}  // namespace

Result<ProtocolRange> parse_protocols(std::string_view list) {
    const auto invalid = [&] {
        return make_error("Invalid TLS protocol list \"" + std::string(list) + "\": disabling TLS support");
    };
    constexpr size_t n = kProtocols.size();
    std::array<bool, n> included{}, excluded{};
    bool any_include = false;
    size_t lo = 0, hi = n - 1;
    for (std::string_view tok : split_tokens(list, " \t\r\n,:")) {
        int which;
        if (tok.starts_with("!")) {
            if ((which = protocol_index(tok.substr(1))) < 0) return invalid();
            excluded[which] = true;
        } else if (tok.starts_with(">=")) {
            // Postfix accepts bounds it does not know yet; an unknown lower bound leaves
            // nothing, an unknown upper bound leaves everything.
            which = protocol_index(tok.substr(2));
            lo = which < 0 ? n : std::max(lo, static_cast<size_t>(which));
        } else if (tok.starts_with("<=")) {
            which = protocol_index(tok.substr(2));
            if (which >= 0) hi = std::min(hi, static_cast<size_t>(which));
        } else {
            if ((which = protocol_index(tok)) < 0) return invalid();
            included[which] = any_include = true;
        }
    }
    ProtocolRange range;
    int first = -1, last = -1;
    for (size_t i = 0; i < n; ++i) {
        bool on = i >= lo && i <= hi && !excluded[i] && (!any_include || included[i]) &&
                  kProtocols[i].version != 0;
        if (!on) continue;
        if (first < 0) first = static_cast<int>(i);
        last = static_cast<int>(i);
    }
    if (first < 0) return invalid();
    for (int i = first; i <= last; ++i) {
        bool on = !excluded[i] && (!any_include || included[i]);
        if (!on) range.no_ops |= kProtocols[i].no_op;
    }
    range.min_version = kProtocols[first].version;
    range.max_version = static_cast<size_t>(last) == n - 1 ? 0 : kProtocols[last].version;
    return range;
}

Result<std::string> cipher_list(const config::Config& config, std::string_view grade,
                                const std::vector<std::string>& exclusions) {
    static constexpr std::array<const char*, 5> kGrades{"export", "low", "medium", "high", "null"};
    std::string list;
    for (const char* g : kGrades)
        if (iequals(grade, g)) list = config.get(std::string("tls_") + g + "_cipherlist");
    if (list.empty()) return make_error("invalid cipher grade: \"" + std::string(grade) + "\"");
    for (const std::string& ex : exclusions) {
        for (std::string_view tok : split_tokens(ex, " \t\r\n,:")) {
            if (std::string_view("!+-@").find(tok.front()) != std::string_view::npos)
                return make_error("invalid unary '!+-@' in cipher exclusion: \"" + std::string(tok) + "\"");
            list += ":!";
            list += tok;
        }
    }
    return list;
}

std::string hex_fingerprint(const unsigned char* data, size_t len) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (size_t i = 0; i < len; ++i) {
        if (i > 0) out += ':';
        out += kHex[data[i] >> 4];
        out += kHex[data[i] & 15];
    }
    return out;
}

}  // namespace postern::tls
