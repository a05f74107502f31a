// Address mapping as cleanup applies canonical_maps (one address in, one out) and
// virtual_alias_maps (one in, many out), with Postfix's lookup order for an address
// (mail_addr_find: user+ext@domain, user@domain, then user+ext and user when the domain
// is local, then @domain), unmatched-extension propagation, "@domain" results that keep
// the local part, and the recursion and expansion limits of cleanup_map1n.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "util/table/table.h"

namespace postern::message {

struct AddressMapper {
    // Looks a key up in the parameter's tables in order (first match wins).
    std::function<table::LookupResult(std::string_view key)> lookup;
    // True when the domain is "local" (myorigin, mydestination): bare user keys apply.
    std::function<bool(std::string_view domain)> is_local_domain;
    std::string delimiters;  // recipient_delimiter
    bool propagate = true;   // propagate_unmatched_extensions covers this map class
};

struct MapLookup {
    table::LookupResult::Status status = table::LookupResult::Status::NotFound;
    std::vector<std::string> addresses;  // internal form, extension propagated
    std::string error;
};

// One lookup of an internal-form address.
MapLookup map_address(const AddressMapper& m, std::string_view address);

// canonical_maps: repeats the lookup on the result (up to 10 times, until it stops
// changing); a multi-address result uses the first. Err: table error text.
struct CanonicalResult {
    std::string address;
    bool changed = false;
    bool error = false;
    std::string error_text;
    std::vector<std::string> warnings;
};
CanonicalResult map_canonical(const AddressMapper& m, std::string_view address);

// virtual_alias_maps: the full expansion.
struct ExpansionLimits {
    size_t recursion = 1000;       // virtual_alias_recursion_limit
    size_t expansion = 1000;       // virtual_alias_expansion_limit
    size_t address_length = 1000;  // virtual_alias_address_length_limit
};
struct Expansion {
    std::vector<std::string> addresses;  // the address itself when nothing matched
    bool defer = false;                  // limit hit or table error: try again later
    bool table_error = false;
    std::string warning;                 // Postfix's text without the "ID: " prefix
};
Expansion expand_virtual(const AddressMapper& m, std::string_view address,
                         const ExpansionLimits& limits, std::string_view map_title = "virtual_alias_maps");

}  // namespace postern::message
