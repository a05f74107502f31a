// trivial-rewrite's "resolve" and "verify" requests: which transport, next hop and
// final recipient an address goes to, with Postfix's address classes (resolve.c):
//
//   local    domain in mydestination, or [ip] of inet_interfaces/proxy_interfaces,
//            or no domain at all      -> local_transport (nexthop: the domain)
//   alias    virtual_alias_domains    -> error:5.1.1 User unknown in virtual alias table
//   virtual  virtual_mailbox_domains  -> virtual_transport
//   relay    relay_domains            -> relay_transport
//   default  anything else            -> default_transport (or sender-dependent)
//
// Off-host classes go to relayhost (or the sender-dependent relayhost) when set;
// "transport:nexthop" in a *_transport parameter sets the next hop; transport_maps then
// override both, and relocated_maps turn a moved user into an error. Local domains are
// stripped first so that user%remote@local and remote!user@local route onwards (and
// get the ROUTED flag). "verify" uses the address_verify_* variants of each parameter.
// Flags follow mail_proto.h: kResolveFlagFail for a bad domain (permanent),
// kResolveFlagError when a table lookup failed (try again later).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"
#include "util/config/config.h"
#include "util/ipc/mail_proto.h"
#include "util/rewrite/match_list.h"
#include "util/rewrite/rewrite.h"

namespace postern::rewrite {

// A list of tables searched in order (transport_maps = hash:/a, regexp:/b).
struct Maps {
    std::string param;
    std::vector<std::shared_ptr<table::Table>> tables;
    bool empty() const { return tables.empty(); }
};

class Resolver {
public:
    // Opens every list and table the parameters name; errors read like Postfix's fatals.
    static Result<std::unique_ptr<Resolver>> create(const config::Config& c);

    // `address` in internal form; verify: address verification (address_verify_*).
    ipc::mail::ResolveReply resolve(std::string_view sender, std::string_view address,
                                    bool verify = false) const;
    // A table behind any setting was rebuilt (trivial-rewrite then restarts).
    bool changed() const;

private:
    struct ClassParams;
    struct Outcome;
    Resolver() = default;
    Match is_local(std::string_view domain) const;
    bool own_address(std::string_view literal) const;
    Outcome strip_local(std::string_view address) const;
    bool classify(const ClassParams& p, std::string_view sender, const std::string& domain,
                  ipc::mail::ResolveReply& r, std::string& blame) const;
    bool off_host(const ClassParams& p, std::string_view sender, const std::string& domain,
                  ipc::mail::ResolveReply& r, std::string& blame) const;
    bool apply_transport_maps(const ClassParams& p, const std::string& domain,
                              ipc::mail::ResolveReply& r) const;
    void warn_overlap(const std::string& domain, bool local) const;

    RewriteContext canon_;
    std::string config_dir_;
    std::string myhostname_;
    std::string empty_recipient_;
    std::string delimiters_;
    bool resolve_null_domain_ = false;
    bool resolve_dequoted_ = true;  // resolve_dequoted_address: crack quoted local parts
    bool resolve_numeric_domain_ = false;
    bool show_table_name_ = true;
    bool helpful_warnings_ = true;
    bool transport_parent_style_ = false;
    MatchList mydestination_, alias_domains_, mailbox_domains_, relay_domains_;
    std::vector<std::string> own_addresses_;  // inet_interfaces + proxy_interfaces, normalized
    Maps relocated_;
    std::shared_ptr<ClassParams> resolve_params_, verify_params_;
};

// Hostname and address-literal syntax checks as Postfix's valid_hostname() and
// valid_mailhost_literal() (exposed for tests and smtpd).
bool valid_hostname(std::string_view name);
bool valid_mailhost_literal(std::string_view literal);  // "[1.2.3.4]", "[IPv6:...]"
bool valid_hostaddr(std::string_view addr);             // "1.2.3.4", "2001:db8::1"

}  // namespace postern::rewrite
