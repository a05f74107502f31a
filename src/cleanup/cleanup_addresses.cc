#include "cleanup_addresses.h"

#include "util/address/address.h"
#include "util/base/strings.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"

namespace postern::cleanup {

namespace proto = ipc::mail;

AddressRewriter::AddressRewriter(const Settings& settings, std::unique_ptr<proto::RewriteClient> client)
    : settings_(settings),
      client_(std::move(client)),
      canonical_(settings.mapper(settings.canonical, settings.propagate_canonical)),
      sender_canonical_(settings.mapper(settings.sender_canonical, settings.propagate_canonical)),
      recipient_canonical_(settings.mapper(settings.recipient_canonical, settings.propagate_canonical)),
      virtual_(settings.mapper(settings.virtual_alias, settings.propagate_virtual)) {}

std::string AddressRewriter::rewrite(std::string_view address, std::string_view context, unsigned cls,
                                     bool map_ok, AddressError& error) {
    std::string addr(address);
    if (addr.empty()) return addr;  // the null sender stays null
    auto r = client_->rewrite(context, addr);
    if (!r) {
        if (error.status == 0) {
            error.status = proto::kCleanupStatWrite;
            error.reason = "4.3.0 address rewriting service is unavailable";
            error.warning = "problem talking to service rewrite: " + r.error();
        }
        return addr;
    }
    addr = *r;
    if (!map_ok) return addr;
    addr = canonicalize(std::move(addr), cls, error);
    if (settings_.masquerade_classes & cls) addr = masquerade(addr);
    return addr;
}

std::string AddressRewriter::canonicalize(std::string address, unsigned cls, AddressError& error) {
    struct Step {
        const MapList& maps;
        const message::AddressMapper& mapper;
        unsigned classes;
    };
    const Step steps[] = {
        {settings_.sender_canonical, sender_canonical_,
         settings_.sender_canonical_classes & (kEnvelopeSender | kHeaderSender)},
        {settings_.recipient_canonical, recipient_canonical_,
         settings_.recipient_canonical_classes & (kEnvelopeRecipient | kHeaderRecipient)},
        {settings_.canonical, canonical_, settings_.canonical_classes},
    };
    for (const Step& s : steps) {
        if (s.maps.empty() || !(s.classes & cls)) continue;
        message::CanonicalResult r = message::map_canonical(s.mapper, address);
        for (const std::string& w : r.warnings) log::warn("%s", w.c_str());
        if (r.error) {
            if (error.status == 0) {
                error.status = proto::kCleanupStatWrite;
                error.reason = "4.6.0 Alias expansion error";
                error.warning = s.maps.title() + " map lookup problem for " + address +
                                " -- message not accepted, try again later";
            }
            return address;
        }
        address = r.address;
    }
    return address;
}

// masquerade_domains: user@host.sub.example.com -> user@example.com for the first listed
// domain the address is below; "!domain" stops masquerading for that domain.
std::string AddressRewriter::masquerade(const std::string& address) const {
    if (settings_.masquerade_domains.empty()) return address;
    address::Parts p = address::split(address);
    if (!p.has_domain) return address;
    for (const std::string& user : settings_.masquerade_exceptions)
        if (iequals(user, p.local)) return address;
    std::string domain = lowercase(p.domain);
    for (const std::string& entry : settings_.masquerade_domains) {
        bool negate = !entry.empty() && entry[0] == '!';
        std::string masq = negate ? entry.substr(1) : entry;
        if (domain == masq) return address;
        if (domain.size() > masq.size() && domain.ends_with("." + masq))
            return negate ? address : p.local + "@" + masq;
    }
    return address;
}

std::vector<std::string> AddressRewriter::expand(std::string_view address, AddressError& error) {
    if (settings_.virtual_alias.empty() || address.empty()) return {std::string(address)};
    message::Expansion e = message::expand_virtual(virtual_, address, settings_.virtual_limits);
    if (e.defer && error.status == 0) {
        error.status = e.table_error ? proto::kCleanupStatWrite : proto::kCleanupStatDefer;
        error.reason = "4.6.0 Alias expansion error";
        error.warning = e.warning;
    }
    return e.addresses;
}

}  // namespace postern::cleanup

namespace postern::cleanup {

std::string AddressRewriter::bcc_for(const MapList& maps, std::string_view address, AddressError& error) {
    if (maps.empty() || address.empty()) return {};
    message::AddressMapper m = settings_.mapper(maps, false);
    message::MapLookup r = message::map_address(m, address);
    if (r.status == table::LookupResult::Status::Error) {
        if (error.status == 0) {
            error.status = proto::kCleanupStatWrite;
            error.reason = "4.3.0 " + maps.title() + " map lookup problem";
            error.warning = maps.title() + " map lookup problem for " + std::string(address) +
                            " -- message not accepted, try again later";
        }
        return {};
    }
    return r.addresses.empty() ? std::string() : r.addresses.front();
}

}  // namespace postern::cleanup
