// The TLS policy of one destination of smtp(8)/lmtp(8), as Postfix's smtp_tls_policy.c
// finds it: smtp_tls_policy_maps looked up with the next hop as the delivery request
// names it ("example.com", "[mx.example.com]:587"), then, for a plain domain, its parent
// domains as ".example.com", ".com"; no entry means smtp_tls_security_level. The value
// is "level [match=...] [protocols=...] [ciphers=...] [exclude=...]".
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "util/base/result.h"
#include "util/table/table.h"
#include "util/tls/tls_client.h"

namespace postern::smtpclient {

// One table value. An unknown level or attribute is an error in Postfix's words
// ("invalid security level \"x\"").
Result<tls::ClientPolicy> parse_tls_policy(std::string_view value);

// The lookup keys for `nexthop` in order: itself, then ".parent" domains of a plain
// domain name (not of "[host]", "host:port" or a path).
std::vector<std::string> tls_policy_keys(std::string_view nexthop);

struct TlsPolicyInputs {
    std::string_view param = "smtp_tls_policy_maps";  // for warnings
    const std::vector<std::shared_ptr<table::Table>>* maps = nullptr;
    tls::ClientLevel default_level = tls::ClientLevel::None;
    bool dnssec_lookups = false;  // smtp_dns_support_level = dnssec
    bool mx_lookup = true;        // the destination's servers come from MX records
};

// The policy for a delivery to `nexthop` whose destination domain is `domain`.
// DANE (RFC 7672) needs DNSSEC-validated answers, which Postern's resolver never has:
// as Postfix does for a destination that is not DNSSEC-signed, "dane" becomes "may" and
// "dane-only" defers (4.7.5 "non DNSSEC destination", or "no TLSA records found" for a
// host without MX lookup); with dnssec lookups not configured, Postfix's warning and
// "encrypt" / an invalid policy. A broken entry is an Invalid policy ("4.7.5", "client
// TLS configuration problem"), logged.
tls::ClientPolicy tls_policy_for(std::string_view nexthop, std::string_view domain, const TlsPolicyInputs& in);

}  // namespace postern::smtpclient
