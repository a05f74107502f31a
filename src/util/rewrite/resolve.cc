// The resolver proper: strip local domains (resolve.c's preliminary loop), pick the
// address class, then let transport_maps and relocated_maps have the last word.
#include "util/rewrite/resolve.h"

#include <algorithm>

#include "util/address/address.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/rewrite/resolve_support.h"

namespace postern::rewrite {
namespace tok = address::tok822;
using ipc::mail::ResolveReply;
using tok::TokenList;

namespace {

std::string param_name(bool verify, const char* name) {
    return verify ? std::string("address_verify_") + name : std::string(name);
}

}  // namespace

Result<std::unique_ptr<Resolver>> Resolver::create(const config::Config& c) {
    std::unique_ptr<Resolver> r(new Resolver());
    r->canon_ = RewriteContext::local(c);
    r->config_dir_ = c.config_dir();
    r->myhostname_ = c.get("myhostname");
    r->empty_recipient_ = c.get("empty_address_recipient");
    r->delimiters_ = c.get("recipient_delimiter");
    r->resolve_null_domain_ = c.get_bool("resolve_null_domain");
    r->resolve_numeric_domain_ = c.get_bool("resolve_numeric_domain");
    r->resolve_dequoted_ = c.get_bool("resolve_dequoted_address");
    r->show_table_name_ = c.get_bool("show_user_unknown_table_name");
    r->helpful_warnings_ = c.get_bool("helpful_warnings");
    bool relay_parent = false;
    for (const std::string& p : c.get_list("parent_domain_matches_subdomains")) {
        if (p == "relay_domains") relay_parent = true;
        if (p == "transport_maps") r->transport_parent_style_ = true;
    }
    struct ListSpec {
        MatchList* list;
        const char* param;
        MatchStyle style;
    } lists[] = {
        {&r->mydestination_, "mydestination", MatchStyle::String},
        {&r->alias_domains_, "virtual_alias_domains", MatchStyle::String},
        {&r->mailbox_domains_, "virtual_mailbox_domains", MatchStyle::String},
        {&r->relay_domains_, "relay_domains",
         relay_parent ? MatchStyle::DomainParent : MatchStyle::Domain},
    };
    for (const ListSpec& l : lists) {
        auto m = MatchList::create(l.param, list_param(c, l.param), l.style);
        if (!m) return make_error(m.error());
        *l.list = std::move(*m);
    }
    r->own_addresses_ = interface_addresses(c);
    auto relocated = open_maps(c, "relocated_maps");
    if (!relocated) return make_error(relocated.error());
    r->relocated_ = std::move(*relocated);
    for (bool verify : {false, true}) {
        auto p = std::make_shared<ClassParams>();
        p->local_name = param_name(verify, "local_transport");
        p->virtual_name = param_name(verify, "virtual_transport");
        p->relay_name = param_name(verify, "relay_transport");
        p->default_name = param_name(verify, "default_transport");
        p->local_transport = c.get(p->local_name);
        p->virtual_transport = c.get(p->virtual_name);
        p->relay_transport = c.get(p->relay_name);
        p->default_transport = c.get(p->default_name);
        p->relayhost = c.get(param_name(verify, "relayhost"));
        p->null_relay_key = c.get("empty_address_relayhost_maps_lookup_key");
        p->null_transport_key = c.get("empty_address_default_transport_maps_lookup_key");
        for (auto [maps, name] : {std::pair{&p->sender_relay, "sender_dependent_relayhost_maps"},
                                  std::pair{&p->sender_transport, "sender_dependent_default_transport_maps"},
                                  std::pair{&p->transport, "transport_maps"}}) {
            auto m = open_maps(c, param_name(verify, name));
            if (!m) return make_error(m.error());
            *maps = std::move(*m);
        }
        (verify ? r->verify_params_ : r->resolve_params_) = std::move(p);
    }
    return r;
}

bool Resolver::changed() const {
    for (const MatchList* l : {&mydestination_, &alias_domains_, &mailbox_domains_, &relay_domains_})
        if (l->changed()) return true;
    for (const auto& p : {resolve_params_, verify_params_})
        if (maps_changed(p->sender_relay) || maps_changed(p->sender_transport) || maps_changed(p->transport))
            return true;
    return maps_changed(relocated_);
}

bool Resolver::own_address(std::string_view literal) const {
    std::string n = normalize_address(literal);
    return !n.empty() && std::find(own_addresses_.begin(), own_addresses_.end(), n) != own_addresses_.end();
}

// resolve_local(): mydestination, or [address] of one of our interfaces.
Match Resolver::is_local(std::string_view domain) const {
    std::string d = lowercase(domain);
    if (!d.empty() && d.back() == '.') {
        d.pop_back();
        if (d.empty() || d.back() == '.') return Match::No;
    }
    if (d.empty()) return Match::No;
    Match m = mydestination_.match(d);
    if (m != Match::No) {
        if (m == Match::Error) log::warn("%s", mydestination_.error().c_str());
        return m;
    }
    if (d.size() > 2 && d.front() == '[' && d.back() == ']' && own_address(d.substr(1, d.size() - 2)))
        return Match::Yes;
    return Match::No;
}

}  // namespace postern::rewrite
