// The client's host names as smtpd knows them (Postfix's smtpd_peer.c): the PTR name of
// its address (reverse_name, unverified) and, when that name's A/AAAA records include
// the address again, the verified name. Unknown names read "unknown" with a status that
// tells a temporary DNS failure from a permanent one (reject_unknown_client_hostname
// answers 450 for the first, unknown_client_reject_code for the second).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "util/dns/resolver.h"

namespace postern::dns {

enum class NameStatus { Ok, TempFail, PermFail };

struct ClientNames {
    std::string name = "unknown";
    std::string reverse_name = "unknown";
    NameStatus name_status = NameStatus::PermFail;
    NameStatus reverse_name_status = NameStatus::PermFail;
};

// Looks up `address` ("192.0.2.1", "2001:db8::1"); `done` runs from the event loop once
// the PTR and forward lookups have answered. Logs Postfix's warnings ("hostname X does
// not resolve to address Y"). The caller guards `done` against its own destruction.
void lookup_client_names(Resolver& resolver, std::string_view address,
                         std::function<void(const ClientNames&)> done);

// Postfix's normalization of an address for the comparison: IPv4-mapped IPv6 addresses
// ("::ffff:192.0.2.1") compare as IPv4, and text forms are canonical.
std::string canonical_address(std::string_view address);

}  // namespace postern::dns
