// resolve_addr(): the preliminary loop that strips local domains and re-examines what
// is left, then the address class, transport_maps and relocated_maps.
#include <algorithm>
#include <iterator>

#include "util/address/address.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/rewrite/resolve.h"
#include "util/rewrite/resolve_support.h"

namespace postern::rewrite {
namespace tok = address::tok822;
namespace mail = ipc::mail;
using mail::ResolveReply;
using tok::TokenList;

namespace {

bool has_type(const TokenList& t, int type) {
    return std::any_of(t.begin(), t.end(), [type](const tok::Token& x) { return x.type == type; });
}

TokenList::iterator last_of(TokenList& t, int type) {
    auto r = std::find_if(t.rbegin(), t.rend(), [type](const tok::Token& x) { return x.type == type; });
    return r == t.rend() ? t.end() : std::prev(r.base());
}

// "smtp:[host]:25" -> transport "smtp", nexthop "[host]:25" (an empty one is kept).
void split_channel(std::string& channel, std::string& nexthop) {
    size_t colon = channel.find(':');
    if (colon == std::string::npos) return;
    std::string dest = channel.substr(colon + 1);
    channel.resize(colon);
    if (!dest.empty()) nexthop = dest;
}

// A quoted local part with routing operators in it ("user@remote"@local) is cracked
// open: technically wrong, but it stops relaying through a Sendmail next hop.
bool crack_quoted(TokenList& tree, bool percent_hack, bool swap_bangpath) {
    if (tree.size() != 1 || tree.front().type != tok::kQuoted) return false;
    std::string text = tree.front().text;
    size_t oper = text.rfind('@');
    if (oper == std::string::npos && percent_hack) oper = text.rfind('%');
    if (oper == std::string::npos && swap_bangpath) oper = text.rfind('!');
    if (oper == std::string::npos) return false;
    if (text[oper] == '%') text[oper] = '@';
    if (text[oper] == '@') text = address::to_external(text);
    tree = tok::scan(text, 0);
    return true;
}

}  // namespace

Resolver::Outcome Resolver::strip_local(std::string_view address) const {
    Outcome out;
    TokenList tree = tokens_of(address);
    TokenList saved;  // the last local "@domain" stripped
    const size_t loop_max = address.size() + 100;
    for (size_t loop = 0;; ++loop) {
        if (loop > loop_max) {
            log::warn("resolve_addr: <%s>: giving up after %zu iterations",
                      std::string(address).c_str(), loop);
            break;
        }
        if (tree.size() > 1 && tree.back().type == '.' && has_type(tree, '@') &&
            std::prev(tree.end(), 2)->type != '.')
            tree.pop_back();
        if (resolve_null_domain_ && !tree.empty() && tree.back().type == '@') tree.pop_back();
        auto at = last_of(tree, '@');
        if (at != tree.end()) {
            if (std::next(at) != tree.end()) {
                TokenList domain(std::next(at), tree.end());
                Match m = is_local(internal_of(domain));
                if (m == Match::Error) {
                    out.fail = true;
                    return out;
                }
                if (m == Match::No) {
                    out.remote = true;
                    break;
                }
            }
            saved.clear();
            saved.splice(saved.end(), tree, at, tree.end());
        }
        if (has_type(tree, '@') || (canon_.swap_bangpath && has_type(tree, '!')) ||
            (canon_.percent_hack && has_type(tree, '%'))) {
            rewrite_tokens(canon_, tree);
            continue;
        }
        if (resolve_dequoted_ && crack_quoted(tree, canon_.percent_hack, canon_.swap_bangpath)) {
            rewrite_tokens(canon_, tree);
            continue;
        }
        // An empty local part is the local MAILER-DAEMON, as in our own From: headers.
        if (tree.size() == 1 && tree.front().type == tok::kQuoted && tree.front().text.empty())
            tree.clear();
        if (tree.empty()) tree = tok::scan(empty_recipient_, 0);
        break;
    }
    if (!out.remote) {
        if (!saved.empty()) {
            tree.splice(tree.end(), saved);
        } else {
            tree.push_back(tok::Token{'@', {}, {}});
            tree.splice(tree.end(), tok::scan(myhostname_, 0));
        }
    }
    out.recipient = internal_of(tree);
    return out;
}

void Resolver::warn_overlap(const std::string& domain, bool local) const {
    if (!helpful_warnings_) return;
    auto both = [&domain](const char* a, const char* b) {
        log::warn("do not list domain %s in BOTH %s and %s", domain.c_str(), a, b);
    };
    if (local) {
        if (alias_domains_.match(domain) == Match::Yes) both("mydestination", "virtual_alias_domains");
        if (mailbox_domains_.match(domain) == Match::Yes) both("mydestination", "virtual_mailbox_domains");
        return;
    }
    bool alias = alias_domains_.match(domain) == Match::Yes;
    bool mailbox = mailbox_domains_.match(domain) == Match::Yes;
    bool relay = relay_domains_.match(domain) == Match::Yes;
    if (alias && mailbox) both("virtual_alias_domains", "virtual_mailbox_domains");
    if (alias && relay) both("virtual_alias_domains", "relay_domains");
    if (!alias && mailbox && relay) both("virtual_mailbox_domains", "relay_domains");
}

// Relay and default classes: transport (sender-dependent for default), relayhost.
bool Resolver::off_host(const ClassParams& p, std::string_view sender, const std::string& domain,
                        ResolveReply& r, std::string& blame) const {
    std::string key = sender.empty() ? p.null_transport_key : std::string(sender);
    auto local_sender = [this](std::string_view a) {
        size_t at = a.rfind('@');
        return at != std::string_view::npos && is_local(a.substr(at + 1)) == Match::Yes;
    };
    Match relay = relay_domains_.match(domain);
    if (relay == Match::Error) {
        log::warn("relay_domains lookup failure");
        return false;
    }
    if (relay == Match::Yes) {
        r.transport = p.relay_transport;
        blame = p.relay_name;
        r.flags |= mail::kResolveClassRelay;
    } else {
        r.transport = p.default_transport;
        blame = p.default_name;
        r.flags |= mail::kResolveClassDefault;
        if (!p.sender_transport.empty() && !key.empty()) {
            auto hit = find_in(p.sender_transport, address_probes(key, delimiters_, local_sender(key)));
            if (hit.status == table::LookupResult::Status::Error) {
                log::warn("%s lookup failure", p.sender_transport.param.c_str());
                return false;
            }
            if (hit.found() && !iequals(hit.value, "DUNNO")) {
                r.transport = hit.value;
                blame = p.sender_transport.param;
            }
        }
    }
    r.nexthop = p.relayhost.empty() ? domain : p.relayhost;
    std::string rkey = sender.empty() ? p.null_relay_key : std::string(sender);
    if (!p.sender_relay.empty() && !rkey.empty()) {
        auto hit = find_in(p.sender_relay, address_probes(rkey, delimiters_, local_sender(rkey)));
        if (hit.status == table::LookupResult::Status::Error) {
            log::warn("%s lookup failure", p.sender_relay.param.c_str());
            return false;
        }
        if (hit.found() && !hit.value.empty() && !iequals(hit.value, "DUNNO")) r.nexthop = hit.value;
    }
    return true;
}

bool Resolver::classify(const ClassParams& p, std::string_view sender, const std::string& domain,
                        ResolveReply& r, std::string& blame) const {
    Match alias = alias_domains_.match(domain);
    if (alias == Match::Yes) {
        warn_overlap(domain, false);
        r.transport = "error";
        r.nexthop = std::string("5.1.1 User unknown") + (show_table_name_ ? " in virtual alias table" : "");
        r.flags |= mail::kResolveClassAlias;
        return true;
    }
    if (alias == Match::Error) {
        log::warn("virtual_alias_domains lookup failure");
        return false;
    }
    Match mailbox = mailbox_domains_.match(domain);
    if (mailbox == Match::Error) {
        log::warn("virtual_mailbox_domains lookup failure");
        return false;
    }
    if (mailbox == Match::Yes) {
        warn_overlap(domain, false);
        r.transport = p.virtual_transport;
        r.nexthop = domain;
        blame = p.virtual_name;
        r.flags |= mail::kResolveClassVirtual;
        return true;
    }
    return off_host(p, sender, domain, r, blame);
}

// transport_maps: "transport:nexthop"; an empty transport keeps the class's, an empty
// nexthop with a transport resets it to the recipient domain ("Address is
// undeliverable" for error and retry).
bool Resolver::apply_transport_maps(const ClassParams& p, const std::string& domain,
                                    ResolveReply& r) const {
    auto hit = find_in(p.transport, transport_probes(r.recipient, domain, delimiters_,
                                                     transport_parent_style_));
    if (hit.status == table::LookupResult::Status::Error) {
        log::warn("%s lookup failure", p.transport.param.c_str());
        return false;
    }
    if (!hit.found()) return true;
    std::string channel = hit.value, host;
    size_t colon = channel.find(':');
    if (colon != std::string::npos) {
        host = channel.substr(colon + 1);
        channel.resize(colon);
    }
    if (!channel.empty()) r.transport = channel;
    if (!host.empty())
        r.nexthop = host;
    else if (channel == "error" || channel == "retry")  // Postfix's update_entry()
        r.nexthop = "Address is undeliverable";
    else if (!channel.empty())
        r.nexthop = domain;
    return true;
}

ResolveReply Resolver::resolve(std::string_view sender, std::string_view address, bool verify) const {
    const ClassParams& p = verify ? *verify_params_ : *resolve_params_;
    ResolveReply r;
    Outcome o = strip_local(address);
    if (o.fail) {
        r.flags = mail::kResolveFlagError;
        return r;
    }
    r.recipient = o.recipient;
    std::string domain = r.recipient.substr(r.recipient.rfind('@') + 1);
    bool bad = domain.empty() || (domain[0] == '[' ? !valid_mailhost_literal(domain)
                                                   : !valid_hostname(domain) ||
                                                         (!resolve_numeric_domain_ && valid_hostaddr(domain)));
    if (bad) {
        if (resolve_numeric_domain_ && valid_hostaddr(domain)) {
            r.recipient.insert(r.recipient.size() - domain.size(), "[");
            r.recipient += "]";
            domain = "[" + domain + "]";
            Match m = is_local(domain);
            if (m == Match::Error) return ResolveReply{mail::kResolveFlagError, {}, {}, {}};
            if (m == Match::Yes) o.remote = false;
        } else {
            // Postfix stops here: the default class, no transport or nexthop. (Postfix
            // calls this bit ERROR and a failed lookup FAIL; mail_proto.h has them the
            // other way round, and its readers act on that.)
            r.flags |= mail::kResolveFlagFail | mail::kResolveClassDefault;
            return r;
        }
    }
    // Routing operators left in the local part: a next hop would route them on.
    size_t op = r.recipient.find_first_of("@!%");
    if (r.recipient.substr(op + 1) != domain) r.flags |= mail::kResolveFlagRouted;

    std::string blame;
    if (o.remote) {
        if (!classify(p, sender, domain, r, blame)) return ResolveReply{mail::kResolveFlagError, {}, {}, {}};
    } else {
        warn_overlap(domain, true);
        r.transport = p.local_transport;
        r.nexthop = domain;
        blame = p.local_name;
        r.flags |= mail::kResolveClassLocal;
    }
    split_channel(r.transport, r.nexthop);
    if (r.transport.empty()) {
        log::warn("file %s/main.cf: parameter %s: null transport is not allowed",
                  config_dir_.c_str(), blame.c_str());
        return ResolveReply{mail::kResolveFlagError, {}, {}, {}};
    }
    if (!p.transport.empty() && !(r.flags & mail::kResolveClassAlias) &&
        !apply_transport_maps(p, domain, r))
        return ResolveReply{mail::kResolveFlagError, {}, {}, {}};
    if (!relocated_.empty()) {
        auto hit = find_in(relocated_, address_probes(r.recipient, delimiters_, !o.remote));
        if (hit.status == table::LookupResult::Status::Error) {
            log::warn("relocated_maps lookup failure");
            return ResolveReply{mail::kResolveFlagError, {}, {}, {}};
        }
        if (hit.found()) {
            r.transport = "error";
            r.nexthop = "5.1.6 User has moved to " + hit.value;
        }
    }
    // Postfix defines but never sets FINAL; Postern sets it for the hosted classes.
    if (r.flags & (mail::kResolveClassLocal | mail::kResolveClassAlias | mail::kResolveClassVirtual))
        r.flags |= mail::kResolveFlagFinal;
    return r;
}

}  // namespace postern::rewrite
