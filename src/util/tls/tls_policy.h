// Postfix's TLS protocol and cipher settings turned into what OpenSSL takes:
// "!SSLv2, !SSLv3" / ">=TLSv1.2" / "TLSv1.2 TLSv1.3" become a minimum and maximum version
// plus SSL_OP_NO_* holes (Postfix's tls_protocol_mask), and a cipher grade with
// exclusions becomes one cipher list string (Postfix's tls_set_ciphers).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"
#include "util/config/config.h"

typedef struct ssl_st SSL;

namespace postern::tls {

struct ProtocolRange {
    int min_version = 0;      // OpenSSL's TLS1_VERSION, ...; 0: library default
    int max_version = 0;      // 0: newest the library has
    unsigned long no_ops = 0; // SSL_OP_NO_TLSv1_1 ... for holes inside [min, max]
};

// Parses a protocol list in Postfix syntax (names separated by whitespace, commas or
// colons; "!name" excludes, ">=name" / "<=name" bound). An unknown name or a list that
// leaves nothing enabled is an error worded as Postfix's "Invalid TLS protocol list".
Result<ProtocolRange> parse_protocols(std::string_view list);

// The OpenSSL cipher list for `grade` (export, low, medium, high, null; case-insensitive)
// read from config's tls_<grade>_cipherlist, with ":!x" appended per exclusion. An
// unknown grade or an exclusion starting with one of "!+-@" is an error.
Result<std::string> cipher_list(const config::Config& config, std::string_view grade,
                                const std::vector<std::string>& exclusions);

class TlsServerContext;
// The context whose new_ssl() made `ssl` (nullptr for an SSL from elsewhere).
const TlsServerContext* context_of(SSL* ssl);

// Colon-separated upper-case hex, as Postfix prints certificate fingerprints.
std::string hex_fingerprint(const unsigned char* data, size_t len);

}  // namespace postern::tls
