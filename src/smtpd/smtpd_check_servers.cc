// Restrictions about the hosts behind a name (Postfix's check_server_access and
// permit_mx_backup), plus permit_inet_interfaces and sleep:
//
//   check_{client,reverse_client,helo,sender,recipient}_{a,mx,ns}_access type:table
//       the domain's MX hosts (none: the domain itself), NS hosts (none: the parent's),
//       or the domain itself (a): each host name, then each of its addresses, is
//       looked up in the table; the first match decides; OK is refused ("not allowed
//       for security reasons": use DUNNO).
//   permit_mx_backup
//       an authorized destination, or a domain whose backup (not primary) MX hosts
//       include this machine; with permit_mx_backup_networks, every address of every
//       primary MX host must be listed there.
//
// Every lookup goes through dns::Resolver and continues from its callback.
#include <event2/event.h>

#include "smtpd/smtpd_check_internal.h"
#include "util/base/strings.h"
#include "util/dns/resolver.h"
#include "util/log/log.h"
#include "util/rewrite/resolve_support.h"

namespace postern::smtpd::check {
namespace {

using access::ReplyClass;
using dns::Rcode;
namespace mail = ipc::mail;

enum class ServerType { A, MX, NS };

const char* type_text(ServerType t) { return t == ServerType::A ? "A" : t == ServerType::MX ? "MX" : "NS"; }

// Postfix's dns_strerror() and getaddrinfo texts for a failed lookup.
const char* dns_error_text(Rcode r) {
    switch (r) {
        case Rcode::NotFound: return "Host not found";
        case Rcode::NoData: return "Host found but no data record of requested type";
        case Rcode::TempFail: return "Host not found, try again";
        default: return "Non-recoverable error";
    }
}
const char* gai_error_text(Rcode r) {
    switch (r) {
        case Rcode::NotFound: return "Name or service not known";
        case Rcode::NoData: return "No address associated with hostname";
        case Rcode::TempFail: return "Temporary failure in name resolution";
        default: return "Non-recoverable failure in name resolution";
    }
}

bool not_found(Rcode r) { return r == Rcode::NotFound || r == Rcode::NoData; }

// A host's addresses (IPv4, then IPv6 when inet_protocols has it), as getaddrinfo()
// would give them; the Rcode is the IPv4 one unless that found nothing.
using AddressesFn = std::function<void(Evaluation&, std::vector<std::string>, Rcode)>;
void host_addresses(Evaluation& ev, const std::string& host, AddressesFn done) {
    if (ev.engine.dns == nullptr) return done(ev, {}, Rcode::TempFail);
    auto weak = ev.weak();
    ev.engine.dns->host_by_name(host, false, [weak, host, done](const dns::Answer& a4) {
        auto e = weak.lock();
        if (!e) return;
        if (!e->engine.inet_ipv6 || e->engine.dns == nullptr) return done(*e, a4.ok() ? a4.records : std::vector<std::string>{}, a4.rcode);
        e->engine.dns->host_by_name(host, true, [weak, a4, done](const dns::Answer& a6) {
            auto e2 = weak.lock();
            if (!e2) return;
            std::vector<std::string> all = a4.ok() ? a4.records : std::vector<std::string>{};
            if (a6.ok()) all.insert(all.end(), a6.records.begin(), a6.records.end());
            Rcode r = a4.ok() || a6.ok() ? Rcode::Ok : (a4.rcode == Rcode::TempFail ? a4.rcode : a6.rcode);
            done(*e2, std::move(all), r);
        });
    });
}

std::vector<table::Table*> server_tables(const Restriction& r) {
    std::vector<table::Table*> out;
    for (const auto& t : r.tables) out.push_back(t.get());
    return out;
}

// One check_*_{a,mx,ns}_access evaluation: walks the server list host by host.
struct ServerWalk {
    const Restriction* restriction;
    ServerType type;
    std::string target;  // the name checked, for the "returns OK" warning
    std::string reply_name, class_name;
    ReplyClass cls;
    std::vector<std::string> servers;
    Next next;
};

void walk(Evaluation& ev, std::shared_ptr<ServerWalk> w, size_t i);

// A table match or error ends the walk; OK is refused (Postfix's forbid_allowlist).
void decide(Evaluation& ev, std::shared_ptr<ServerWalk> w, const access::Outcome& o) {
    Next next = w->next;
    apply_access_outcome(ev, o, w->reply_name, w->cls, w->class_name,
                         [weak = ev.weak(), w, next](Verdict v) {
                             auto e = weak.lock();
                             if (!e) return;
                             if (v != Verdict::Ok || e->session.actions().discard) return next(v);
                             log::warn("restriction %s returns OK for %s", w->restriction->name.c_str(),
                                       w->target.c_str());
                             log::warn("this is not allowed for security reasons");
                             log::warn("use DUNNO instead of OK if you want to make an exception");
                             next(e->server_error(""));
                         });
}

void check_addresses(Evaluation& ev, std::shared_ptr<ServerWalk> w, size_t i, const std::vector<std::string>& addrs) {
    auto tables = server_tables(*w->restriction);
    for (const std::string& addr : addrs) {
        auto o = access::check_address(tables, addr);
        if (o.status != access::Outcome::Status::NotFound) return decide(ev, w, o);
    }
    walk(ev, w, i + 1);
}

void walk(Evaluation& ev, std::shared_ptr<ServerWalk> w, size_t i) {
    if (i >= w->servers.size()) return w->next(Verdict::Dunno);
    const std::string& host = w->servers[i];
    if (!rewrite::normalize_address(host).empty()) return check_addresses(ev, w, i, {host});
    if (w->type != ServerType::A) {
        auto tables = server_tables(*w->restriction);
        auto o = access::check_domain(tables, host, ev.engine.settings.lookup);
        if (o.status != access::Outcome::Status::NotFound) return decide(ev, w, o);
    }
    host_addresses(ev, host, [w, i, host](Evaluation& e, std::vector<std::string> addrs, Rcode r) {
        if (addrs.empty()) {
            if (w->type != ServerType::A)
                log::warn("Unable to look up %s host %s for %s %s: %s", type_text(w->type), host.c_str(),
                          w->class_name.c_str(), w->reply_name.c_str(), gai_error_text(r));
            return walk(e, w, i + 1);
        }
        check_addresses(e, w, i, addrs);
    });
}

// NS records of `domain`, else of its parents (Postfix's fallback for NS).
void find_ns(Evaluation& ev, std::shared_ptr<ServerWalk> w, std::string domain, std::string name) {
    auto weak = ev.weak();
    ev.engine.dns->query(domain, dns::Type::NS, [weak, w, domain, name](const dns::Answer& a) {
        auto e = weak.lock();
        if (!e) return;
        if (a.ok()) {
            w->servers = a.records;
            return walk(*e, w, 0);
        }
        size_t dot = domain.find('.');
        if (not_found(a.rcode) && dot != std::string::npos && dot + 1 < domain.size())
            return find_ns(*e, w, domain.substr(dot + 1), name);
        log::warn("Unable to look up NS host for %s: %s", domain.c_str(), dns_error_text(a.rcode));
        w->next(Verdict::Dunno);
    });
}

void check_server_access(Evaluation& ev, const Restriction& r, ServerType type, const std::string& name,
                         const std::string& reply_name, ReplyClass cls, const std::string& class_name, Next next) {
    size_t at = name.rfind('@');
    std::string domain = at == std::string::npos ? name : name.substr(at + 1);
    auto w = std::make_shared<ServerWalk>(ServerWalk{&r, type, name, reply_name, class_name, cls, {}, next});
    if (!domain.empty() && domain.front() == '[') {
        // An address literal is its own MX host (and has no name servers).
        if (type == ServerType::NS || domain.back() != ']') return next(Verdict::Dunno);
        std::string bare = domain.substr(1, domain.size() - 2);
        if (iequals(bare.substr(0, 5), "ipv6:")) bare = bare.substr(5);
        std::string addr = rewrite::normalize_address(bare);
        if (addr.empty()) return next(Verdict::Dunno);
        auto tables = server_tables(r);
        auto o = access::check_address(tables, addr);
        if (o.status == access::Outcome::Status::NotFound) return next(Verdict::Dunno);
        return decide(ev, w, o);
    }
    if (type == ServerType::A) {
        w->servers = {domain};
        return walk(ev, w, 0);
    }
    if (ev.engine.dns == nullptr) {
        log::warn("Unable to look up %s host for %s: %s", type_text(type), domain.c_str(),
                  dns_error_text(Rcode::TempFail));
        return next(Verdict::Dunno);
    }
    if (type == ServerType::NS) return find_ns(ev, w, domain, name);
    auto weak = ev.weak();
    ev.engine.dns->query(domain, dns::Type::MX, [weak, w, domain](const dns::Answer& a) {
        auto e = weak.lock();
        if (!e) return;
        if (a.ok()) {
            if (a.mx.size() == 1 && a.mx[0].host == ".") return w->next(Verdict::Dunno);  // null MX
            for (const dns::Mx& mx : a.mx) w->servers.push_back(mx.host);
        } else if (not_found(a.rcode)) {
            w->servers = {domain};  // no MX: the domain is its own mail host
        } else {
            log::warn("Unable to look up MX host for %s: %s", domain.c_str(), dns_error_text(a.rcode));
            return w->next(Verdict::Dunno);
        }
        walk(*e, w, 0);
    });
}

// The data each family looks at: client name, reverse name, HELO, sender, recipient.
struct NameSubject {
    std::string name, reply_name, class_name;
    ReplyClass cls;
    bool present;
};

NameSubject client_subject(const Evaluation& ev) {
    const ClientFacts& c = ev.facts.client;
    return {c.name, c.namaddr(), "Client host", ReplyClass::Client, !iequals(c.name, "unknown")};
}
NameSubject reverse_subject(const Evaluation& ev) {
    const ClientFacts& c = ev.facts.client;
    return {c.reverse_name, c.reverse_name, "Unverified Client host", ReplyClass::Client,
            !iequals(c.reverse_name, "unknown")};
}
NameSubject helo_subject(const Evaluation& ev) {
    const std::string& h = ev.facts.helo_name;
    return {h, h, "Helo command", ReplyClass::Helo, !h.empty()};
}
NameSubject sender_subject(const Evaluation& ev) {
    const TransactionFacts& t = ev.facts.transaction;
    return {t.sender, t.sender, "Sender address", ReplyClass::Sender, t.mail_given && !t.sender.empty()};
}
NameSubject recipient_subject(const Evaluation& ev) {
    const std::string& r = ev.recipient();
    return {r, r, "Recipient address", ReplyClass::Recipient, !r.empty()};
}

void server_check(Evaluation& ev, const Restriction& r, Next next, NameSubject (*subject)(const Evaluation&),
                  ServerType type) {
    NameSubject s = subject(ev);
    if (!s.present) return next(Verdict::Dunno);
    check_server_access(ev, r, type, s.name, s.reply_name, s.cls, s.class_name, next);
}

// ---- permit_mx_backup ----

struct MxBackup {
    std::string reply_name;
    std::vector<std::string> primaries, backups;
    Next next;
};

// Postfix's has_my_addr over `hosts`: does one of them have an address of ours?
void any_has_my_addr(Evaluation& ev, std::shared_ptr<MxBackup> m, std::vector<std::string> hosts, size_t i,
                     std::function<void(Evaluation&, bool)> done) {
    if (i >= hosts.size()) return done(ev, false);
    std::string host = hosts[i];
    host_addresses(ev, host, [m, hosts, i, host, done](Evaluation& e, std::vector<std::string> addrs, Rcode r) {
        if (addrs.empty()) {
            e.defer_if(e.defer_if_reject, 450, "4.4.4",
                       "<" + m->reply_name + ">: Recipient address rejected: Unable to look up mail exchanger host " +
                           host + ": " + gai_error_text(r),
                       ReplyClass::Recipient);
            return any_has_my_addr(e, m, hosts, i + 1, done);
        }
        for (const std::string& a : addrs)
            for (const std::string& own : e.engine.own_addresses)
                if (rewrite::normalize_address(a) == own) return done(e, true);
        any_has_my_addr(e, m, hosts, i + 1, done);
    });
}

// Postfix's i_am_mx: a host that is a local domain, else one with our address.
void i_am_mx(Evaluation& ev, std::shared_ptr<MxBackup> m, const std::vector<std::string>& hosts,
             std::function<void(Evaluation&, bool)> done) {
    for (const std::string& host : hosts) {
        auto reply = ev.engine.resolve("", "postmaster@" + host);
        if (reply && !(reply->flags & mail::kResolveFlagError) && (reply->flags & mail::kResolveClassLocal))
            return done(ev, true);
    }
    any_has_my_addr(ev, m, hosts, 0, done);
}

// Every address of every primary MX host in permit_mx_backup_networks.
void primaries_allowed(Evaluation& ev, std::shared_ptr<MxBackup> m, size_t i, std::function<void(Evaluation&, bool)> done) {
    if (i >= m->primaries.size()) return done(ev, true);
    std::string host = m->primaries[i];
    host_addresses(ev, host, [m, i, host, done](Evaluation& e, std::vector<std::string> addrs, Rcode r) {
        if (addrs.empty()) {
            log::warn("unable to look up host %s: %s", host.c_str(), dns_error_text(r));
            return done(e, false);
        }
        for (const std::string& a : addrs) {
            NetList::Match match = e.engine.mx_backup_networks->match(a);
            if (match == NetList::Match::Yes) continue;
            if (match == NetList::Match::Error)
                e.defer_if(e.defer_if_reject, 450, "4.4.4",
                           "<" + m->reply_name + ">: Recipient address rejected: Unable to verify host " + host +
                               " as mail exchanger",
                           ReplyClass::Recipient);
            return done(e, false);
        }
        primaries_allowed(e, m, i + 1, done);
    });
}

void mx_backup_decide(Evaluation& ev, std::shared_ptr<MxBackup> m) {
    i_am_mx(ev, m, m->primaries, [m](Evaluation& e, bool primary) {
        if (primary || m->backups.empty()) return m->next(Verdict::Dunno);
        i_am_mx(e, m, m->backups, [m](Evaluation& e2, bool backup) {
            if (!backup) return m->next(Verdict::Dunno);
            if (e2.engine.config.get_list("permit_mx_backup_networks").empty()) return m->next(Verdict::Ok);
            primaries_allowed(e2, m, 0, [m](Evaluation&, bool ok) { m->next(ok ? Verdict::Ok : Verdict::Dunno); });
        });
    });
}

}  // namespace

void permit_mx_backup(Evaluation& ev, const Restriction&, Next next) {
    const std::string& rcpt = ev.recipient();
    if (rcpt.empty()) return next(Verdict::Dunno);
    auto reply = ev.engine.resolve(ev.facts.transaction.sender, rcpt);
    if (!reply || (reply->flags & mail::kResolveFlagError))
        return next(ev.reject(451, "4.3.0", "<" + rcpt + ">: Temporary lookup failure", ReplyClass::Other));
    size_t at = reply->recipient.rfind('@');
    if (at == std::string::npos) return next(Verdict::Ok);
    if (!ev.engine.settings.allow_untrusted_routing && (reply->flags & mail::kResolveFlagRouted))
        return next(Verdict::Dunno);
    if (reply->flags & (mail::kResolveClassLocal | mail::kResolveClassAlias | mail::kResolveClassVirtual |
                        mail::kResolveClassRelay))
        return next(Verdict::Ok);
    std::string domain = reply->recipient.substr(at + 1);
    if (!domain.empty() && domain.front() == '[' && domain.back() == ']') return next(Verdict::Dunno);
    if (ev.engine.dns == nullptr) return next(Verdict::Dunno);
    auto m = std::make_shared<MxBackup>(MxBackup{rcpt, {}, {}, next});
    auto weak = ev.weak();
    ev.engine.dns->query(domain, dns::Type::MX, [weak, m](const dns::Answer& a) {
        auto e = weak.lock();
        if (!e) return;
        if (!a.ok() || a.mx.empty()) {
            if (a.rcode == Rcode::TempFail)
                e->defer_if(e->defer_if_reject, 450, "4.4.4",
                            "<" + m->reply_name + ">: Recipient address rejected: Unable to look up mail exchanger "
                            "information: " + dns_error_text(a.rcode),
                            ReplyClass::Recipient);
            return m->next(Verdict::Dunno);
        }
        for (const dns::Mx& mx : a.mx)  // sorted by preference
            (mx.preference == a.mx.front().preference ? m->primaries : m->backups).push_back(mx.host);
        mx_backup_decide(*e, m);
    });
}

void permit_inet_interfaces(Evaluation& ev, const Restriction&, Next next) {
    std::string addr = rewrite::normalize_address(ev.facts.client.address);
    for (const std::string& own : ev.engine.inet_addresses)
        if (own == addr) return next(Verdict::Ok);
    next(Verdict::Dunno);
}

// "sleep N": a timer, so the other sessions of the process keep running.
void sleep_restriction(Evaluation& ev, const Restriction& r, Next next) {
    long seconds = 0;
    if (r.arg.empty() || r.arg.find_first_not_of("0123456789") != std::string::npos || !parse_long(r.arg, seconds))
        return next(ev.server_error("restriction sleep must be followed by number"));
    if (ev.engine.base == nullptr || seconds == 0) return next(Verdict::Dunno);
    auto* resume = new std::function<void()>([weak = ev.weak(), next] {
        if (weak.lock()) next(Verdict::Dunno);
    });
    timeval tv{seconds, 0};
    event_base_once(ev.engine.base, -1, EV_TIMEOUT, [](evutil_socket_t, short, void* arg) {
        std::unique_ptr<std::function<void()>> fn(static_cast<std::function<void()>*>(arg));
        (*fn)();
    }, resume, &tv);
}

#define SERVER_CHECK(fn, subject, type) \
    void fn(Evaluation& ev, const Restriction& r, Next next) { server_check(ev, r, next, subject, type); }
SERVER_CHECK(check_client_a_access, client_subject, ServerType::A)
SERVER_CHECK(check_client_mx_access, client_subject, ServerType::MX)
SERVER_CHECK(check_client_ns_access, client_subject, ServerType::NS)
SERVER_CHECK(check_reverse_client_a_access, reverse_subject, ServerType::A)
SERVER_CHECK(check_reverse_client_mx_access, reverse_subject, ServerType::MX)
SERVER_CHECK(check_reverse_client_ns_access, reverse_subject, ServerType::NS)
SERVER_CHECK(check_helo_a_access, helo_subject, ServerType::A)
SERVER_CHECK(check_helo_mx_access, helo_subject, ServerType::MX)
SERVER_CHECK(check_helo_ns_access, helo_subject, ServerType::NS)
SERVER_CHECK(check_sender_a_access, sender_subject, ServerType::A)
SERVER_CHECK(check_sender_mx_access, sender_subject, ServerType::MX)
SERVER_CHECK(check_sender_ns_access, sender_subject, ServerType::NS)
SERVER_CHECK(check_recipient_a_access, recipient_subject, ServerType::A)
SERVER_CHECK(check_recipient_mx_access, recipient_subject, ServerType::MX)
SERVER_CHECK(check_recipient_ns_access, recipient_subject, ServerType::NS)
#undef SERVER_CHECK

}  // namespace postern::smtpd::check
