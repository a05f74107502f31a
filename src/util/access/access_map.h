// access(5) lookups: which keys smtpd's check_{client,helo,sender,recipient}_access try,
// in which order, against which tables. The order is Postfix 3.7's (smtpd_check.c
// check_namadr_access/check_domain_access/check_addr_access/check_mail_access with
// mail_addr_find.c's strategy):
//
//   user+ext@sub.example.com   full address (every table, pattern tables included)
//   user@sub.example.com       without the extension
//   sub.example.com, .example.com, .com      (or example.com, com with
//                              parent_domain_matches_subdomains containing smtpd_access_maps)
//   user+ext@, user@
//
//   host.example.com, .example.com, .com; then 192.0.2.1, 192.0.2, 192.0, 192
//   (IPv6: 2001:db8::1, 2001:db8:, 2001:db8, 2001)
//
// Only the first key of each walk is "full"; the rest are "partial" and, as in Postfix's
// maps_find(DICT_FLAG_FIXED), pattern tables (regexp, pcre, cidr) never see them.
// Nothing here reads main.cf: the caller passes the parameters, so smtpd can call it per
// command with its own settings.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/table/table.h"

namespace postern::access {

struct LookupParams {
    // True when parent_domain_matches_subdomains lists smtpd_access_maps: "example.com"
    // matches its subdomains; otherwise subdomains need ".example.com".
    bool parent_matches_subdomains = false;
    // recipient_delimiter: a set of delimiter characters; empty disables extensions.
    std::string recipient_delimiter;
    // owner_request_special: do not split owner-foo / foo-request on '-'.
    bool owner_request_special = true;
    // double_bounce_sender: never split, like postmaster and mailer-daemon.
    std::string double_bounce_sender = "double-bounce";
    // smtpd_null_access_lookup_key: the key for the null sender <>; empty: no lookup.
    std::string null_access_key = "<>";
};

// One key to try. `partial` keys skip pattern tables.
struct Probe {
    std::string key;
    bool partial = false;
    bool operator==(const Probe&) const = default;
};

// The key sequences, exposed so tests and `postmap`-style tools can show them.
// Address: the resolved (internal form) address; no '@' yields no keys, as Postfix
// warns "no @domain in address" and skips the lookup.
std::vector<Probe> address_probes(std::string_view address, const LookupParams& params);
// Host name or HELO argument: the name, then its parent domains (not for an IP address).
std::vector<Probe> domain_probes(std::string_view name, const LookupParams& params);
// Client IP address: the address, then shorter prefixes cut at '.' (IPv4) or ':' (IPv6).
std::vector<Probe> ip_probes(std::string_view address);

struct Outcome {
    enum class Status { Found, NotFound, Error };
    Status status = Status::NotFound;
    std::string value;       // the table's result when Found
    std::string key;         // the key that matched
    std::string table;       // spec of the table that answered, or that failed
    std::string error;       // when Error (the caller answers 451 4.3.5)

    bool found() const { return status == Status::Found; }
};

// Postfix's maps_find() over a probe sequence: for each key in order, each table in
// order; the first hit wins; empty keys are skipped; a table error ends the search.
Outcome find(std::span<table::Table* const> tables, const std::vector<Probe>& probes);

// check_client_access: host name walk, then address walk.
Outcome check_client(std::span<table::Table* const> tables, std::string_view hostname,
                     std::string_view address, const LookupParams& params);
// The address walk alone (check_*_{a,mx,ns}_access server addresses).
Outcome check_address(std::span<table::Table* const> tables, std::string_view address);
// check_helo_access (and check_*_{ns,mx}_access host names): the name walk.
Outcome check_domain(std::span<table::Table* const> tables, std::string_view name,
                     const LookupParams& params);
// check_sender_access / check_recipient_access. An empty address is the null sender,
// looked up once as params.null_access_key.
Outcome check_mail(std::span<table::Table* const> tables, std::string_view address,
                   const LookupParams& params);
// check_sasl_access, check_ccert_access: the whole key once.
Outcome check_exact(std::span<table::Table* const> tables, std::string_view key);

// RFC 5321 quoting of an address's local part ("a b"@x), Postfix's external form:
// address lookups try it first when it differs from the internal form.
std::string quote_local_part(std::string_view address);

}  // namespace postern::access
