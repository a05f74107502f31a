// Helpers of the resolver: table lists named by a parameter, the key sequences Postfix
// tries in transport_maps and in address tables (mail_addr_find), and this host's
// interface addresses.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/access/access_map.h"
#include "util/config/config.h"
#include "util/rewrite/resolve.h"

namespace postern::rewrite {

// The parameters of one request kind: resolve, or verify (address_verify_*).
struct Resolver::ClassParams {
    std::string local_transport, virtual_transport, relay_transport, default_transport;
    std::string local_name, virtual_name, relay_name, default_name;  // for warnings
    std::string relayhost;
    Maps sender_relay, sender_transport, transport;
    std::string null_relay_key, null_transport_key;
};

struct Resolver::Outcome {
    std::string recipient;
    bool remote = false;  // the domain is not local (the loop stopped at it)
    bool fail = false;
};

// A list-valued parameter split as Postfix does, "inline:{ a=b, c=d }" kept whole.
std::vector<std::string> list_param(const config::Config& c, std::string_view param);

// Opens the tables of a parameter ("hash:/a, regexp:/b").
Result<Maps> open_maps(const config::Config& c, std::string_view param);
bool maps_changed(const Maps& m);

// First hit over the probes; status Error carries the table's complaint.
table::LookupResult find_in(const Maps& m, const std::vector<access::Probe>& probes);

// user+ext -> user (Postfix's split_addr: postmaster, mailer-daemon, owner-x and
// x-request stay whole); "" when there is no extension to strip.
std::string strip_extension(std::string_view address, std::string_view delimiters);

// transport_maps: user+ext@domain, user@domain, domain, .parent or parent, then "*".
std::vector<access::Probe> transport_probes(std::string_view address, std::string_view domain,
                                            std::string_view delimiters, bool parent_style);
// Address tables (relocated_maps, sender_dependent_*): user+ext@domain, user@domain,
// user+ext and user when the domain is local, @domain.
std::vector<access::Probe> address_probes(std::string_view address, std::string_view delimiters,
                                          bool domain_is_local);

// Normalized text of every address of inet_interfaces and (with_proxy) proxy_interfaces.
std::vector<std::string> interface_addresses(const config::Config& c, bool with_proxy = true);
// "1.2.3.4" / "IPv6:2001:db8::1" / "2001:db8::1" -> normalized text, "" if not an address.
std::string normalize_address(std::string_view text);

}  // namespace postern::rewrite
