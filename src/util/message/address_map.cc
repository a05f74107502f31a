#include "util/message/address_map.h"

#include <unordered_set>

#include "util/address/address.h"
#include "util/base/strings.h"

namespace postern::message {
namespace {

using Status = table::LookupResult::Status;

struct Split {
    std::string user, ext, domain;  // ext includes its delimiter
    bool has_domain = false;
};

Split split_address(const AddressMapper& m, std::string_view address) {
    address::Parts p = address::split(address);
    Split s{p.local, "", p.domain, p.has_domain};
    if (!m.delimiters.empty() && s.user.size() > 1) {
        size_t pos = s.user.find_first_of(m.delimiters, 1);
        if (pos != std::string::npos) {
            s.ext = s.user.substr(pos);
            s.user.resize(pos);
        }
    }
    return s;
}

// The result of a key: addresses with "@domain" completed and the extension propagated
// when the match was on the address without it.
std::vector<std::string> expand_result(const std::string& value, const Split& s, bool stripped,
                                       bool propagate) {
    std::vector<std::string> out;
    for (std::string addr : address::parse_address_list(value)) {
        if (!addr.empty() && addr[0] == '@') addr = s.user + s.ext + addr;
        if (stripped && propagate && !s.ext.empty() && !addr.empty()) {
            address::Parts p = address::split(addr);
            addr = p.local + s.ext + (p.has_domain ? "@" + p.domain : "");
        }
        out.push_back(std::move(addr));
    }
    return out;
}

}  // namespace

MapLookup map_address(const AddressMapper& m, std::string_view address) {
    Split s = split_address(m, address);
    std::string at_domain = s.has_domain ? "@" + s.domain : "";
    bool local = !s.has_domain || (m.is_local_domain && m.is_local_domain(s.domain));
    struct Key {
        std::string key;
        bool stripped;
    };
    std::vector<Key> keys;
    if (s.has_domain) {
        keys.push_back({s.user + s.ext + at_domain, false});
        if (!s.ext.empty()) keys.push_back({s.user + at_domain, true});
    }
    if (local) {
        keys.push_back({s.user + s.ext, false});
        if (!s.ext.empty()) keys.push_back({s.user, true});
    }
    if (s.has_domain) keys.push_back({at_domain, false});

    MapLookup out;
    for (const Key& k : keys) {
        table::LookupResult r = m.lookup(k.key);
        if (r.status == Status::Error) {
            out.status = Status::Error;
            out.error = r.error;
            return out;
        }
        if (r.found()) {
            out.status = Status::Found;
            out.addresses = expand_result(r.value, s, k.stripped, m.propagate);
            return out;
        }
    }
    return out;
}

CanonicalResult map_canonical(const AddressMapper& m, std::string_view address) {
    CanonicalResult out;
    out.address = std::string(address);
    for (int round = 0; round < 10; ++round) {
        MapLookup r = map_address(m, out.address);
        if (r.status == Status::Error) {
            out.error = true;
            out.error_text = r.error;
            return out;
        }
        if (r.status != Status::Found || r.addresses.empty()) break;
        if (r.addresses.size() > 1)
            out.warnings.push_back("multi-valued canonical_maps entry for " + out.address);
        if (r.addresses[0] == out.address) break;
        out.address = r.addresses[0];
        out.changed = true;
    }
    return out;
}

Expansion expand_virtual(const AddressMapper& m, std::string_view address,
                         const ExpansionLimits& limits, std::string_view map_title) {
    Expansion out;
    std::vector<std::string>& list = out.addresses;
    list.emplace_back(address);
    std::unordered_set<std::string> self_expanded;  // lower-cased: expanded into itself once
    auto fail = [&](std::string warning, bool table_error) {
        out.defer = true;
        out.table_error = table_error;
        out.warning = std::move(warning);
        list.assign(1, std::string(address));
        return out;
    };
    for (size_t arg = 0; arg < list.size(); ++arg) {
        if (list.size() > limits.expansion)
            return fail("unreasonable " + std::string(map_title) + " map expansion size for " +
                        std::string(address) + " -- message not accepted, try again later", false);
        for (size_t count = 0;; ++count) {
            if (self_expanded.count(lowercase(list[arg]))) break;
            if (count >= limits.recursion)
                return fail("unreasonable " + std::string(map_title) + " map nesting for " +
                            std::string(address) + " -- message not accepted, try again later", false);
            MapLookup r = map_address(m, list[arg]);
            if (r.status == Status::Error)
                return fail(std::string(map_title) + " map lookup problem for " + std::string(address) +
                            " -- message not accepted, try again later", true);
            if (r.status != Status::Found || r.addresses.empty()) break;
            std::string lhs = list[arg];
            for (size_t i = 0; i < r.addresses.size(); ++i) {
                if (r.addresses[i].size() > limits.address_length)
                    return fail("unreasonable " + std::string(map_title) + " result " +
                                r.addresses[i].substr(0, 300) + "... -- message not accepted, try again later",
                                false);
                if (i == 0)
                    list[arg] = r.addresses[i];
                else
                    list.push_back(r.addresses[i]);
                if (iequals(lhs, r.addresses[i])) self_expanded.insert(lowercase(lhs));
            }
        }
    }
    return out;
}

}  // namespace postern::message
