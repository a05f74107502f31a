// Asynchronous DNS lookups on a libevent loop (c-ares underneath): A, AAAA, MX, NS, PTR and
// TXT queries whose answers arrive through a callback, so that a slow DNS server never
// stalls the other sessions of an event-driven daemon. smtpd's restrictions and client
// name lookups use it; the outbound SMTP client will use it for MX lookups.
//
// The resolver reads /etc/resolv.conf like the C library does. Postfix has no parameter
// that names a DNS server and neither has Postern: tests point a process at a test
// server with a private resolv.conf, or through Options::servers (unit tests only).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"

struct event_base;

namespace postern::dns {

enum class Type { A, AAAA, MX, NS, PTR, TXT };
std::string_view type_name(Type t);  // "A", "MX", ...

// Postfix's dns_lookup() outcomes: DNS_OK, DNS_NOTFOUND (the name exists, no records of
// that type), DNS_FAIL (NXDOMAIN: permanent), DNS_RETRY (temporary), DNS_INVAL
// (malformed reply).
enum class Rcode { Ok, NoData, NotFound, TempFail, Malformed };

struct Mx {
    int preference = 0;
    std::string host;  // "." for a null MX (RFC 7505)
};

struct Answer {
    Rcode rcode = Rcode::TempFail;
    // A/AAAA: addresses as text ("192.0.2.1"); PTR, NS: names; TXT: one string per record
    // (its character-strings joined); MX: in `mx`, sorted by preference.
    std::vector<std::string> records;
    std::vector<Mx> mx;
    std::string error;  // c-ares' text when not Ok ("Domain name not found")
    bool ok() const { return rcode == Rcode::Ok; }
};

using Callback = std::function<void(const Answer&)>;

struct Options {
    // "127.0.0.53:5353,[::1]:53": overrides resolv.conf. For tests only.
    std::string servers;
    // 0: resolv.conf's "options timeout:N attempts:N", else the C library's 5 s and 2.
    int timeout_ms = 0;  // first try; c-ares doubles it on each retry
    int tries = 0;
};

class Resolver {
public:
    static Result<std::unique_ptr<Resolver>> create(event_base* base, const Options& options = {});
    virtual ~Resolver() = default;
    // Starts a query; `callback` runs later from the event loop (never from inside
    // query()), exactly once unless the resolver is destroyed first.
    virtual void query(std::string_view name, Type type, Callback callback) = 0;
    // The C library's view, as Postfix's getnameinfo()/getaddrinfo() calls see it: the
    // hosts file first, then DNS (c-ares follows nsswitch.conf's "hosts:" order). Answer
    // records: the host's names (the canonical one first), resp. its addresses of the
    // family asked for. Same callback rules as query().
    virtual void host_by_address(std::string_view address, Callback callback) = 0;
    virtual void host_by_name(std::string_view name, bool ipv6, Callback callback) = 0;
    // Queries in flight (tests).
    virtual size_t pending() const = 0;
};

// "1.2.3.4" -> "4.3.2.1" (the RBL and in-addr.arpa order); IPv6 as 32 reversed nibbles
// "b.a.9.8....". Empty for something that is not an IP address.
std::string reverse_address(std::string_view address);
// The PTR query name: "4.3.2.1.in-addr.arpa" or "....ip6.arpa".
std::string ptr_name(std::string_view address);

}  // namespace postern::dns
