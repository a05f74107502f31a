// The SASL side of smtp(8)/lmtp(8) that needs no connection: which credentials
// smtp_sasl_password_maps gives for a delivery (Postfix's smtp_sasl_passwd_lookup
// order), which mechanism to use among those the server offers (the Cyrus client's
// choice under smtp_sasl_security_options), and the CRAM-MD5 answer (RFC 2195).
// Postern speaks PLAIN, LOGIN and CRAM-MD5 itself; there is no Cyrus client.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/access/access_map.h"
#include "util/table/table.h"

namespace postern::smtpclient {

// What to look up, in Postfix's order: the sender's keys (mail_addr_find: address,
// address without extension, local part for local domains, "@domain"; empty unless
// smtp_sender_dependent_authentication is on and the sender is not null), then the
// server's host name, then the destination as the request names it ("[host]:587").
struct SaslLookup {
    std::vector<access::Probe> sender;
    std::string host, dest;
};

// The table answer ("user:password"), NotFound (no AUTH), or Error (defer).
access::Outcome find_sasl_password(std::span<table::Table* const> tables, const SaslLookup& lookup);

// "user:password" split at the first colon (no colon: an empty password).
struct SaslCredentials {
    std::string user, password;
};
SaslCredentials split_credentials(std::string_view value);

// The mechanism to use among `offered` (upper case, the server's order, after
// smtp_sasl_mechanism_filter), or "" when the security options (sasl::SecurityFlag
// bits) leave none: CRAM-MD5 before PLAIN and LOGIN, as Cyrus ranks them; between
// PLAIN and LOGIN the server's order. noplaintext drops PLAIN and LOGIN; noactive,
// nodictionary, forward_secrecy and mutual_auth drop all three; noanonymous none.
std::string choose_sasl_mechanism(const std::vector<std::string>& offered, unsigned security_flags);

// The base64 answer to a base64 CRAM-MD5 challenge: "user hex(HMAC-MD5(password,
// challenge))"; nullopt when the challenge does not decode.
std::optional<std::string> cram_md5_response(std::string_view user, std::string_view password,
                                             std::string_view challenge_base64);

}  // namespace postern::smtpclient
