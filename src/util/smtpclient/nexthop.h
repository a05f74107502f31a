// Where an smtp(8)/lmtp(8) delivery request goes: the next-hop text qmgr passes
// ("example.com", "[mx.example.com]:587", "[192.0.2.1]", lmtp's "unix:/path",
// "inet:host:port") parsed as Postfix's smtp_connect.c reads it, and the order in which
// the mail exchangers of a domain are tried.
#pragma once

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"
#include "util/dns/resolver.h"

namespace postern::smtpclient {

struct NextHop {
    enum class Kind { Inet, Unix } kind = Kind::Inet;
    std::string host;  // name or address, without brackets
    int port = 25;
    bool mx_lookup = false;  // a domain: look up its MX records ([] suppresses that)
    std::string path;        // Kind::Unix
};

// `lmtp` selects LMTP syntax (no MX lookups, unix: and inet: prefixes); `default_port`
// applies when the text names none (0: 25 for SMTP, 24 for LMTP). A port may be a
// number or a service name from /etc/services.
Result<NextHop> parse_nexthop(std::string_view text, bool lmtp, int default_port = 0);

// MX records in the order to try: by preference, random order among equal preferences
// (RFC 5321 section 5.1). Records at or above `own_preference` (when >= 0: this host is
// one of the exchangers) are dropped, as Postfix does to avoid mail loops.
std::vector<dns::Mx> order_mx(std::vector<dns::Mx> mx, std::mt19937& rng, int own_preference = -1);

// RFC 7505: the only MX record is "." (preference ignored).
bool is_null_mx(const std::vector<dns::Mx>& mx);

}  // namespace postern::smtpclient
