// The restrictions that ask the DNS: reject_unknown_helo_hostname,
// reject_unknown_{sender,recipient}_domain, reject_rbl_client, permit_dnswl_client and
// the reject_rhsbl_* family. Each starts a lookup and continues from its callback; the
// callback holds only a weak_ptr to the evaluation, so a session that ended meanwhile
// simply drops the answer.
#include "smtpd/smtpd_check_internal.h"
#include "smtpd/smtpd_reply_footer.h"
#include "util/base/strings.h"
#include "util/dns/resolver.h"
#include "util/log/log.h"

namespace postern::smtpd::check {
namespace {

using access::ReplyClass;
using dns::Rcode;
namespace mail = ipc::mail;

// Runs `queries` in order and reports the first Ok answer, else the "worst" failure
// (TempFail over NotFound), as Postfix's dns_lookup_l() over several types.
void lookup_any(Evaluation& ev, std::string name, std::vector<dns::Type> types, size_t i, dns::Answer worst,
                std::function<void(Evaluation&, const dns::Answer&)> done) {
    if (i >= types.size()) return done(ev, worst);
    if (ev.engine.dns == nullptr) {
        dns::Answer a;
        a.rcode = Rcode::TempFail;
        a.error = "no DNS resolver";
        return done(ev, a);
    }
    auto weak = ev.weak();
    dns::Type type = types[i];
    ev.engine.dns->query(name, type, [weak, name, types, i, worst, done](const dns::Answer& a) {
        auto e = weak.lock();
        if (!e) return;
        if (a.ok()) return done(*e, a);
        dns::Answer w = worst;
        if (i == 0 || a.rcode == Rcode::TempFail || (a.rcode == Rcode::Malformed && w.rcode != Rcode::TempFail))
            w = a;
        lookup_any(*e, name, types, i + 1, w, done);
    });
}

std::string domain_of(const std::string& address) {
    size_t at = address.rfind('@');
    return at == std::string::npos ? "" : address.substr(at + 1);
}

void unknown_address(Evaluation& ev, const std::string& address, ReplyClass cls, Next next) {
    if (address.empty()) return next(Verdict::Dunno);
    auto reply = ev.engine.resolve(ev.facts.transaction.sender, address);
    if (!reply || (reply->flags & mail::kResolveFlagError))
        return next(ev.reject(451, "4.3.0", "<" + address + ">: Temporary lookup failure",
                              ReplyClass::Other));
    std::string domain = domain_of(reply->recipient);
    if (domain.empty() || (reply->flags & (mail::kResolveClassLocal | mail::kResolveClassAlias |
                                          mail::kResolveClassVirtual)))
        return next(Verdict::Dunno);
    if (domain.front() == '[' && domain.back() == ']') return next(Verdict::Dunno);
    std::string name = "<" + address + ">: " + std::string(access::reply_class_name(cls));
    bool sender = cls == ReplyClass::Sender;
    auto mx_done = [next, name, domain, sender, cls](Evaluation& e, const dns::Answer& a) {
        if (a.ok()) {
            if (a.mx.size() == 1 && a.mx[0].host == ".")
                // RFC 7505's codes, not subject to the address DSN fix-up.
                return next(e.reject_reply(std::string(sender ? "550 5.7.27 " : "556 5.1.10 ") + name +
                                           " rejected: Domain " + domain + " does not accept mail (nullMX)"));
            return next(Verdict::Dunno);
        }
        if (a.rcode == Rcode::TempFail)
            return next(e.tempfail(e.engine.settings.unknown_address_defer_now, 450, sender ? "4.1.8" : "4.1.2",
                                   name + " rejected: Domain not found", cls));
        const char* why = a.rcode == Rcode::Malformed ? "Malformed DNS server reply" : "Domain not found";
        next(e.reject(e.engine.settings.unknown_address_code, sender ? "4.1.8" : "4.1.2",
                      name + " rejected: " + why, cls));
    };
    // An MX record, else an address record, makes the domain a mail domain.
    lookup_any(ev, domain, {dns::Type::MX}, 0, {},
               [mx_done, domain](Evaluation& e, const dns::Answer& a) {
                   if (a.ok() || a.rcode == Rcode::TempFail || a.rcode == Rcode::NotFound) return mx_done(e, a);
                   lookup_any(e, domain, {dns::Type::A, dns::Type::AAAA}, 0, {}, mx_done);
               });
}

// The reply for a listed client or domain: rbl_reply_maps[domain], else default_rbl_reply.
Verdict rbl_reject(Evaluation& ev, const std::string& rbl_domain, const std::string& what, const char* rbl_class,
                   const std::string& reason) {
    std::string tmpl = ev.engine.settings.default_rbl_reply;
    for (const auto& t : ev.engine.maps.rbl_reply) {
        auto r = t->lookup(rbl_domain);
        if (r.found()) {
            tmpl = r.value;
            break;
        }
    }
    const SessionFacts& f = ev.facts;
    std::map<std::string, std::string> macros = {
        {"rbl_code", std::to_string(ev.engine.settings.rbl_code)},
        {"rbl_domain", rbl_domain},
        {"rbl_reason", reason},
        {"rbl_txt", reason},
        {"rbl_class", rbl_class},
        {"rbl_what", what},
        {"client_address", f.client.address},
        {"client_name", f.client.name},
        {"reverse_client_name", f.client.reverse_name},
        {"helo_name", f.helo_name},
        {"sender", f.transaction.sender},
        {"recipient", f.transaction.recipient},
    };
    std::string text = expand_macros(tmpl, macros);
    // The template starts with the code; the DSN goes after it unless the text has one.
    std::string code = text.substr(0, 3);
    std::string rest = text.size() > 4 ? text.substr(4) : "";
    bool has_dsn = rest.size() > 5 && (rest[0] == '4' || rest[0] == '5') && rest[1] == '.';
    if (!has_dsn) rest = std::string(code[0] == '4' ? "4" : "5") + ".7.1 " + rest;
    return ev.reject_reply(code + " " + rest);
}

// "rbl.example.com=127.0.0.[2;3]": the domain and an optional reply filter.
void split_filter(const std::string& arg, std::string& domain, std::string& filter) {
    size_t eq = arg.find('=');
    domain = arg.substr(0, eq);
    filter = eq == std::string::npos ? "" : arg.substr(eq + 1);
}

bool filter_match(const std::string& filter, const std::vector<std::string>& addrs) {
    if (filter.empty()) return true;
    // Split on dots outside brackets: "127.0.0.[2;4..6]".
    std::vector<std::string> want(1);
    int depth = 0;
    for (char c : filter) {
        if (c == '[') ++depth;
        if (c == ']') --depth;
        if (c == '.' && depth == 0)
            want.emplace_back();
        else
            want.back() += c;
    }
    for (const auto& a : addrs) {
        auto have = split_tokens(a, ".");
        if (have.size() != 4 || want.size() != 4) continue;
        bool ok = true;
        for (size_t i = 0; i < 4 && ok; ++i) {
            const std::string& w = want[i];
            if (!w.empty() && w.front() == '[' && w.back() == ']') {
                ok = false;
                // Named: the views of split_tokens must not outlive a temporary.
                const std::string inner = w.substr(1, w.size() - 2);
                for (auto part : split_tokens(inner, ";")) {
                    size_t dots = part.find("..");
                    long lo = 0, hi = 0, v = 0;
                    parse_long(have[i], v);
                    if (dots == std::string_view::npos) {
                        ok = ok || part == have[i];
                    } else if (parse_long(part.substr(0, dots), lo) && parse_long(part.substr(dots + 2), hi)) {
                        ok = ok || (v >= lo && v <= hi);
                    }
                }
            } else {
                ok = w == have[i];
            }
        }
        if (ok) return true;
    }
    return false;
}

// Looks `what` (reversed address or domain) up in the list; `listed` runs with the TXT
// reason when it is listed, Dunno otherwise.
void rbl_lookup(Evaluation& ev, const std::string& query, const std::string& filter,
                std::function<void(Evaluation&, const std::string& reason)> listed, Next next) {
    lookup_any(ev, query, {dns::Type::A}, 0, {}, [query, filter, listed, next](Evaluation& e, const dns::Answer& a) {
        if (!a.ok() || !filter_match(filter, a.records)) return next(Verdict::Dunno);
        lookup_any(e, query, {dns::Type::TXT}, 0, {}, [listed](Evaluation& e2, const dns::Answer& txt) {
            listed(e2, txt.ok() && !txt.records.empty() ? txt.records.front() : "");
        });
    });
}

// `domain` is looked up; `what` is what the reply names ($rbl_what: the client name,
// the whole sender address, ...).
void rhsbl(Evaluation& ev, const Restriction& r, const std::string& domain, const std::string& what,
           const char* cls, Next next) {
    if (domain.empty() || domain == "unknown" || domain.front() == '[') return next(Verdict::Dunno);
    std::string list, filter;
    split_filter(r.arg, list, filter);
    rbl_lookup(ev, domain + "." + list, filter,
               [list, what, cls, next](Evaluation& e, const std::string& reason) {
                   next(rbl_reject(e, list, what, cls, reason));
               },
               next);
}

}  // namespace

void reject_unknown_helo_hostname(Evaluation& ev, const Restriction&, Next next) {
    const std::string& helo = ev.facts.helo_name;
    if (helo.empty() || helo.front() == '[') return next(Verdict::Dunno);
    std::string text = "<" + helo + ">: Helo command rejected: ";
    lookup_any(ev, helo, {dns::Type::A, dns::Type::AAAA, dns::Type::MX}, 0, {},
               [text, next](Evaluation& e, const dns::Answer& a) {
                   if (a.ok()) return next(Verdict::Dunno);
                   if (a.rcode == Rcode::TempFail)
                       return next(e.tempfail(e.engine.settings.unknown_helo_defer_now, 450, "4.7.1",
                                              text + "Host not found", ReplyClass::Helo));
                   const char* why = a.rcode == Rcode::Malformed ? "Malformed DNS server reply" : "Host not found";
                   next(e.reject(e.engine.settings.unknown_hostname_code, "4.7.1", text + why, ReplyClass::Helo));
               });
}

void reject_unknown_sender_domain(Evaluation& ev, const Restriction&, Next next) {
    if (!ev.facts.transaction.mail_given) return next(Verdict::Dunno);
    unknown_address(ev, ev.facts.transaction.sender, ReplyClass::Sender, next);
}

void reject_unknown_recipient_domain(Evaluation& ev, const Restriction&, Next next) {
    unknown_address(ev, ev.recipient(), ReplyClass::Recipient, next);
}

void reject_rbl_client(Evaluation& ev, const Restriction& r, Next next) {
    std::string rev = dns::reverse_address(ev.facts.client.address);
    if (rev.empty()) return next(Verdict::Dunno);
    std::string list, filter;
    split_filter(r.arg, list, filter);
    std::string addr = ev.facts.client.address;
    rbl_lookup(ev, rev + "." + list, filter,
               [list, addr, next](Evaluation& e, const std::string& reason) {
                   next(rbl_reject(e, list, addr, "Client host", reason));
               },
               next);
}

void permit_dnswl_client(Evaluation& ev, const Restriction& r, Next next) {
    std::string rev = dns::reverse_address(ev.facts.client.address);
    if (rev.empty()) return next(Verdict::Dunno);
    std::string list, filter;
    split_filter(r.arg, list, filter);
    rbl_lookup(ev, rev + "." + list, filter, [next](Evaluation&, const std::string&) { next(Verdict::Ok); }, next);
}

void reject_rhsbl_client(Evaluation& ev, const Restriction& r, Next next) {
    rhsbl(ev, r, ev.facts.client.name, ev.facts.client.name, "Client host", next);
}

void reject_rhsbl_reverse_client(Evaluation& ev, const Restriction& r, Next next) {
    rhsbl(ev, r, ev.facts.client.reverse_name, ev.facts.client.reverse_name, "Unverified Client host", next);
}

void reject_rhsbl_sender(Evaluation& ev, const Restriction& r, Next next) {
    const TransactionFacts& t = ev.facts.transaction;
    if (!t.mail_given) return next(Verdict::Dunno);
    rhsbl(ev, r, domain_of(t.sender), t.sender, "Sender address", next);
}

void reject_rhsbl_recipient(Evaluation& ev, const Restriction& r, Next next) {
    rhsbl(ev, r, domain_of(ev.recipient()), ev.recipient(), "Recipient address", next);
}

void reject_rhsbl_helo(Evaluation& ev, const Restriction& r, Next next) {
    rhsbl(ev, r, ev.facts.helo_name, ev.facts.helo_name, "Helo command", next);
}

}  // namespace postern::smtpd::check
