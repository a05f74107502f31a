// Relay control and address validation (Postfix's permit_auth_destination,
// reject_unauth_destination, reject_non_fqdn_address and check_rcpt_maps): every
// decision starts from trivial-rewrite's answer for the address -- its class (local,
// virtual alias, virtual mailbox, relay, default) and whether the client routed it
// through us (user%host@, host!user@, @a:user@b, user@host@).
#include "smtpd/smtpd_check_internal.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/rewrite/resolve.h"

namespace postern::smtpd::check {
namespace {

using access::ReplyClass;
namespace mail = ipc::mail;

constexpr long kClassFinal = mail::kResolveClassLocal | mail::kResolveClassAlias | mail::kResolveClassVirtual;

// "451 4.3.0 <addr>: Temporary lookup failure" (Postfix's reject_dict_retry).
Verdict dict_retry(Evaluation& ev, const std::string& address) {
    return ev.reject(451, "4.3.0", "<" + address + ">: Temporary lookup failure", ReplyClass::Other);
}

// Postfix's permit_auth_destination(): Ok for our own and relay_domains destinations,
// Dunno for anything else, including addresses with a sender-specified route.
Result<Verdict> auth_destination(Evaluation& ev, const std::string& recipient) {
    auto reply = ev.engine.resolve(ev.facts.transaction.sender, recipient);
    if (!reply || (reply->flags & mail::kResolveFlagError)) return make_error("retry");
    if (reply->recipient.find('@') == std::string::npos) return Verdict::Ok;
    if (!ev.engine.settings.allow_untrusted_routing && (reply->flags & mail::kResolveFlagRouted))
        return Verdict::Dunno;
    if (reply->flags & (kClassFinal | mail::kResolveClassRelay)) return Verdict::Ok;
    return Verdict::Dunno;
}

void unauth_destination(Evaluation& ev, int code, const char* dsn, Next next) {
    const std::string& rcpt = ev.recipient();
    if (rcpt.empty()) return next(Verdict::Dunno);
    auto v = auth_destination(ev, rcpt);
    if (!v) return next(dict_retry(ev, rcpt));
    if (*v == Verdict::Ok) return next(Verdict::Dunno);
    next(ev.reject(code, dsn, "<" + rcpt + ">: Relay access denied", ReplyClass::Recipient));
}

enum class Found { Yes, No, Error };

Found find_in(const std::vector<std::shared_ptr<table::Table>>& tables, const std::vector<std::string>& keys) {
    for (const auto& key : keys) {
        for (const auto& t : tables) {
            auto r = t->lookup(key);
            if (r.status == table::LookupResult::Status::Error) return Found::Error;
            if (r.found()) return Found::Yes;
        }
    }
    return Found::No;
}

// Postfix's check_rcpt_maps() for `address` in the role `cls` (sender or recipient).
Verdict check_rcpt_maps(Evaluation& ev, const std::string& address, ReplyClass cls) {
    if (address.empty()) return Verdict::Dunno;
    auto reply = ev.engine.resolve(ev.facts.transaction.sender, address);
    if (!reply || (reply->flags & mail::kResolveFlagError)) return dict_retry(ev, address);
    const std::string& rcpt = reply->recipient;
    const Settings& s = ev.engine.settings;
    const RecipientMaps& m = ev.engine.maps;
    const std::string& delim = s.lookup.recipient_delimiter;
    std::string cls_name(access::reply_class_name(cls));
    auto unknown = [&](int code, const char* where) {
        return ev.reject(code, cls == ReplyClass::Sender ? "5.1.0" : "5.1.1",
                         "<" + address + ">: " + cls_name + " rejected: User unknown in " + where,
                         cls);
    };
    // An address that virtual aliasing rewrites is known, whatever its domain.
    Found alias = find_in(m.virtual_alias, mail_addr_keys(rcpt, false, delim));
    if (alias == Found::Error) return dict_retry(ev, address);
    if (alias == Found::Yes) return Verdict::Dunno;
    if (reply->flags & mail::kResolveClassAlias) return unknown(s.virtual_alias_code, "virtual alias table");
    if ((reply->flags & mail::kResolveClassLocal) && m.local_configured) {
        // Mail for the double-bounce address is absorbed by qmgr.
        std::string local = rcpt.substr(0, rcpt.rfind('@'));
        if (iequals(local, s.lookup.double_bounce_sender)) return Verdict::Dunno;
        Found f = find_in(m.local, mail_addr_keys(rcpt, true, delim));
        if (f == Found::Error) return dict_retry(ev, address);
        if (f == Found::No) return unknown(s.local_recipient_code, "local recipient table");
    }
    if ((reply->flags & mail::kResolveClassVirtual) && !m.virtual_mailbox.empty()) {
        Found f = find_in(m.virtual_mailbox, mail_addr_keys(rcpt, false, delim));
        if (f == Found::Error) return dict_retry(ev, address);
        if (f == Found::No) return unknown(s.virtual_mailbox_code, "virtual mailbox table");
    }
    if ((reply->flags & mail::kResolveClassRelay) && m.relay_configured) {
        Found f = find_in(m.relay, mail_addr_keys(rcpt, false, delim));
        if (f == Found::Error) return dict_retry(ev, address);
        if (f == Found::No) return unknown(s.relay_recipient_code, "relay recipient table");
    }
    return Verdict::Dunno;
}

// Postfix's reject_non_fqdn_address().
Verdict non_fqdn_address(Evaluation& ev, const std::string& address, ReplyClass cls) {
    if (address.empty()) return Verdict::Dunno;
    size_t at = address.rfind('@');
    std::string domain = at == std::string::npos ? "" : address.substr(at + 1);
    if (!domain.empty() && domain.front() == '[') return Verdict::Dunno;
    if (domain.size() > 1 && domain.back() == '.' && domain[domain.size() - 2] != '.') domain.pop_back();
    if (!domain.empty() && rewrite::valid_hostname(domain) && domain.find('.') != std::string::npos)
        return Verdict::Dunno;
    std::string cls_name(access::reply_class_name(cls));
    return ev.reject(ev.engine.settings.non_fqdn_code, "5.5.2",
                     "<" + address + ">: " + cls_name + " rejected: need fully-qualified address", cls);
}

}  // namespace

// The keys Postfix's mail_addr_find() tries for a recipient table: the address, without
// its extension, then (local domains) the bare local part, and "@domain".
std::vector<std::string> mail_addr_keys(const std::string& mixed_case, bool local, const std::string& delimiters) {
    // Postfix's mail_addr_find() looks addresses up in lower case.
    std::string address = lowercase(mixed_case);
    std::vector<std::string> keys;
    auto add = [&keys](std::string k) {
        for (const auto& have : keys)
            if (have == k) return;
        if (!k.empty()) keys.push_back(std::move(k));
    };
    size_t at = address.rfind('@');
    std::string user = at == std::string::npos ? address : address.substr(0, at);
    std::string domain = at == std::string::npos ? "" : address.substr(at);
    std::string base = user;
    if (!delimiters.empty()) {
        size_t d = user.find_first_of(delimiters);
        if (d != std::string::npos && d > 0) base = user.substr(0, d);
    }
    add(address);
    add(base + domain);
    if (local) {
        add(user);
        add(base);
    }
    if (!domain.empty()) add(domain);
    return keys;
}

void reject_unauth_destination(Evaluation& ev, const Restriction&, Next next) {
    unauth_destination(ev, ev.engine.settings.relay_code, "5.7.1", next);
}

void defer_unauth_destination(Evaluation& ev, const Restriction&, Next next) {
    unauth_destination(ev, ev.engine.settings.relay_code - 100, "4.7.1", next);
}

// Obsolete (Postfix warns once per process): the client's name in relay_domains, or an
// authorized destination, else "Relay access denied" with the recipient's class.
void check_relay_domains(Evaluation& ev, const Restriction&, Next next) {
    EngineImpl& engine = ev.engine;
    if (!engine.warned_check_relay_domains) {
        engine.warned_check_relay_domains = true;
        log::warn("support for restriction \"check_relay_domains\" will be removed from %s; "
                  "use \"reject_unauth_destination\" instead", engine.config.get("mail_name").c_str());
    }
    const std::string& rcpt = ev.recipient();
    if (rcpt.empty()) return next(Verdict::Dunno);
    if (ev.facts.client.name != "unknown") {
        auto reply = engine.resolve(ev.facts.transaction.sender, "postmaster@" + ev.facts.client.name);
        if (reply && !(reply->flags & mail::kResolveFlagError) && (reply->flags & mail::kResolveClassRelay))
            return next(Verdict::Ok);
    }
    auto v = auth_destination(ev, rcpt);
    if (!v) return next(dict_retry(ev, rcpt));
    if (*v == Verdict::Ok) return next(Verdict::Ok);
    next(ev.reject(engine.settings.relay_code, "5.7.1", "<" + rcpt + ">: Recipient address rejected: Relay access denied",
                   ReplyClass::Recipient));
}

void permit_auth_destination(Evaluation& ev, const Restriction&, Next next) {
    const std::string& rcpt = ev.recipient();
    if (rcpt.empty()) return next(Verdict::Dunno);
    auto v = auth_destination(ev, rcpt);
    next(v ? *v : dict_retry(ev, rcpt));
}

void reject_unlisted_sender(Evaluation& ev, const Restriction&, Next next) {
    if (!ev.facts.transaction.mail_given) return next(Verdict::Dunno);
    next(check_rcpt_maps(ev, ev.facts.transaction.sender, ReplyClass::Sender));
}

void reject_unlisted_recipient(Evaluation& ev, const Restriction&, Next next) {
    if (ev.recipient().empty()) return next(Verdict::Dunno);
    next(check_rcpt_maps(ev, ev.recipient(), ReplyClass::Recipient));
}

void reject_non_fqdn_sender(Evaluation& ev, const Restriction&, Next next) {
    if (!ev.facts.transaction.mail_given) return next(Verdict::Dunno);
    next(non_fqdn_address(ev, ev.facts.transaction.sender, ReplyClass::Sender));
}

void reject_non_fqdn_recipient(Evaluation& ev, const Restriction&, Next next) {
    if (ev.recipient().empty()) return next(Verdict::Dunno);
    next(non_fqdn_address(ev, ev.recipient(), ReplyClass::Recipient));
}

void validate_recipient(Evaluation& ev, const std::string& address, Next next) {
    if (!ev.engine.settings.reject_unlisted_recipient) return next(Verdict::Dunno);
    ev.warn_if_reject = 0;
    ev.defer_if_reject = Deferred{};
    next(check_rcpt_maps(ev, address, ReplyClass::Recipient));
}

}  // namespace postern::smtpd::check
