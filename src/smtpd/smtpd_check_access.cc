// check_{client,reverse_client_hostname,helo,sender,recipient}_access and what an
// access(5) result does to the session (Postfix's check_table_result()), plus the
// smtpd_sender_login_maps restrictions.
#include "smtpd/smtpd_check_internal.h"
#include "util/base/strings.h"
#include "util/log/log.h"

namespace postern::smtpd::check {
namespace {

using access::ActionType;
using access::ReplyClass;

// The data a check_*_access restriction looks up, with its own reply name and class.
struct Subject {
    std::string reply_name;
    ReplyClass cls;
    std::string class_name = "";  // overrides the class's name ("SASL login name")

    std::string name() const { return class_name.empty() ? std::string(access::reply_class_name(cls)) : class_name; }
};

// access::reject_reply() with the subject's own class name.
std::string subject_reply(const access::Action& a, const Subject& s) {
    std::string reply = access::reject_reply(a, s.reply_name, s.cls);
    if (s.class_name.empty()) return reply;
    std::string from = ">: " + std::string(access::reply_class_name(s.cls)) + " rejected: ";
    if (size_t at = reply.find(from); at != std::string::npos)
        reply.replace(at, from.size(), ">: " + s.class_name + " rejected: ");
    return reply;
}

// "<name>: Class text" for the HOLD and DISCARD log lines.
std::string triggers(const Subject& s, const std::string& text, const char* action) {
    std::string what = text.empty() ? std::string("triggers ") + action + " action" : text;
    return "<" + s.reply_name + ">: " + s.name() + " " + what;
}

const RestrictionList* rhs_list(Evaluation& ev, const access::Action& a, const std::string& value,
                                std::string& error) {
    auto& cache = ev.engine.rhs_lists;
    if (auto it = cache.find(value); it != cache.end()) return &it->second;
    auto compiled = compile_list("access map", a.restrictions, &ev.engine.lists.classes);
    if (!compiled) {
        error = compiled.error();
        return nullptr;
    }
    return &cache.emplace(value, std::move(*compiled)).first->second;
}

// Acts on an access table's value.
void apply_action(Evaluation& ev, const access::Outcome& found, const Subject& s, Next next) {
    auto parsed = access::parse_action(found.value, found.table, found.key, ev.engine.settings.actions);
    if (auto* err = std::get_if<access::ActionError>(&parsed)) {
        for (const auto& w : err->warnings) log::warn("%s", w.c_str());
        if (err->effect == access::ActionError::Effect::ServerError) return next(ev.server_error(""));
        return next(Verdict::Dunno);
    }
    const access::Action& a = std::get<access::Action>(parsed);
    for (const auto& w : a.warnings) log::warn("%s", w.c_str());
    MessageActions& acts = ev.session.mutable_actions();
    std::string cls = s.name();
    switch (a.type) {
        case ActionType::Ok: return next(Verdict::Ok);
        case ActionType::Dunno: return next(Verdict::Dunno);
        case ActionType::Reject:
        case ActionType::Defer:
        case ActionType::Code: return next(ev.reject_reply(subject_reply(a, s)));
        case ActionType::DeferIfReject:
        case ActionType::DeferIfPermit: {
            Deferred& d = a.type == ActionType::DeferIfReject ? ev.defer_if_reject : ev.defer_if_permit;
            std::string reply = subject_reply(a, s);
            if (ev.warn_if_reject)
                ev.log_whatsup("reject_warning", reply);
            else if (!d.active)
                d = Deferred{true, reply};
            return next(Verdict::Dunno);
        }
        case ActionType::Hold:
            ev.log_whatsup("hold", triggers(s, a.text, "HOLD"));
            acts.hold = triggers(s, a.text, "HOLD");
            return next(Verdict::Dunno);
        case ActionType::Discard:
            ev.log_whatsup("discard", triggers(s, a.text, "DISCARD"));
            acts.discard = triggers(s, a.text, "DISCARD");
            return next(Verdict::Ok);
        case ActionType::Filter:
            ev.log_whatsup("filter", "<" + s.reply_name + ">: " + cls + " triggers FILTER " + a.text);
            acts.filter = a.text;
            return next(Verdict::Dunno);
        case ActionType::Redirect:
            ev.log_whatsup("redirect", "<" + s.reply_name + ">: " + cls + " triggers REDIRECT " + a.text);
            acts.redirect = a.text;
            return next(Verdict::Dunno);
        case ActionType::Bcc:
            ev.log_whatsup("bcc", "<" + s.reply_name + ">: " + cls + " triggers BCC " + a.text);
            acts.bcc = a.text;
            return next(Verdict::Dunno);
        case ActionType::Prepend:
            if (ev.point == CheckPoint::EndOfData) {
                log::warn("access table %s entry \"%s\" has PREPEND action that is unavailable after "
                          "the message content is received", found.table.c_str(), found.key.c_str());
                return next(Verdict::Dunno);
            }
            acts.prepend_headers.push_back(a.text);
            return next(Verdict::Dunno);
        case ActionType::Warn: ev.log_whatsup("warn", a.text); return next(Verdict::Dunno);
        case ActionType::Info: ev.log_whatsup("info", a.text); return next(Verdict::Dunno);
        case ActionType::Hangup:
            return next(ev.reject_reply("421 4.7.0 " + ev.engine.settings.myhostname + " Service unavailable"));
        case ActionType::Restrictions: {
            std::string error;
            const RestrictionList* list = rhs_list(ev, a, found.value, error);
            if (list == nullptr) return next(ev.server_error(error));
            return ev.run(*list, 0, ev.recursion + 1, next);
        }
    }
    next(Verdict::Dunno);
}

std::vector<table::Table*> raw_tables(const Restriction& r) {
    std::vector<table::Table*> out;
    for (const auto& t : r.tables) out.push_back(t.get());
    return out;
}

void finish_lookup(Evaluation& ev, const access::Outcome& o, const Subject& s, Next next) {
    if (o.status == access::Outcome::Status::Error) {
        log::warn("%s lookup error for \"%s\"", o.table.c_str(), o.key.c_str());
        return next(ev.reject_reply("451 4.3.5 <" + s.reply_name + ">: " + s.name() +
                                    " rejected: Server configuration error"));
    }
    if (!o.found()) return next(Verdict::Dunno);
    apply_action(ev, o, s, next);
}

}  // namespace

void apply_access_outcome(Evaluation& ev, const access::Outcome& outcome, const std::string& reply_name,
                          access::ReplyClass cls, const std::string& class_name, Next next) {
    finish_lookup(ev, outcome, Subject{reply_name, cls, class_name}, next);
}

void apply_table_result(Evaluation& ev, const std::string& table, const std::string& key, const std::string& value,
                        Next next) {
    access::Outcome found;
    found.status = access::Outcome::Status::Found;
    found.table = table;
    found.key = key;
    found.value = value;
    ReplyClass cls = ev.stage_class();
    std::string name = cls == ReplyClass::Other ? ev.stage.reply_class : "";
    apply_action(ev, found, Subject{ev.stage.reply_name, cls, name}, next);
}

void check_client_access(Evaluation& ev, const Restriction& r, Next next) {
    const ClientFacts& c = ev.facts.client;
    auto tables = raw_tables(r);
    auto o = access::check_client(tables, c.name, c.address, ev.engine.settings.lookup);
    finish_lookup(ev, o, Subject{c.namaddr(), ReplyClass::Client}, next);
}

void check_reverse_client_access(Evaluation& ev, const Restriction& r, Next next) {
    const ClientFacts& c = ev.facts.client;
    auto tables = raw_tables(r);
    auto o = access::check_client(tables, c.reverse_name, c.address, ev.engine.settings.lookup);
    finish_lookup(ev, o, Subject{c.reverse_name + "[" + c.address + "]", ReplyClass::Client}, next);
}

void check_helo_access(Evaluation& ev, const Restriction& r, Next next) {
    const std::string& helo = ev.facts.helo_name;
    if (helo.empty()) return next(Verdict::Dunno);
    auto tables = raw_tables(r);
    auto o = access::check_domain(tables, helo, ev.engine.settings.lookup);
    finish_lookup(ev, o, Subject{helo, ReplyClass::Helo}, next);
}

void check_sender_access(Evaluation& ev, const Restriction& r, Next next) {
    const TransactionFacts& t = ev.facts.transaction;
    if (!t.mail_given) return next(Verdict::Dunno);
    auto tables = raw_tables(r);
    auto o = access::check_mail(tables, t.sender, ev.engine.settings.lookup);
    finish_lookup(ev, o, Subject{t.sender, ReplyClass::Sender}, next);
}

void check_recipient_access(Evaluation& ev, const Restriction& r, Next next) {
    const std::string& rcpt = ev.recipient();
    if (rcpt.empty()) return next(Verdict::Dunno);
    auto tables = raw_tables(r);
    auto o = access::check_mail(tables, rcpt, ev.engine.settings.lookup);
    finish_lookup(ev, o, Subject{rcpt, ReplyClass::Recipient}, next);
}

// check_sasl_access: the SASL login name, once (authenticated clients only).
void check_sasl_access(Evaluation& ev, const Restriction& r, Next next) {
    const SaslFacts& sasl = ev.facts.sasl;
    if (!sasl.authenticated()) return next(Verdict::Dunno);
    auto tables = raw_tables(r);
    auto o = access::check_exact(tables, sasl.username);
    finish_lookup(ev, o, Subject{sasl.username, ReplyClass::Other, "SASL login name"}, next);
}

// check_ccert_access: the verified client certificate's fingerprint, then its public
// key's fingerprint.
void check_ccert_access(Evaluation& ev, const Restriction& r, Next next) {
    const TlsFacts& t = ev.facts.tls;
    if (!t.active || !t.peer_cert_verified) return next(Verdict::Dunno);
    auto tables = raw_tables(r);
    for (const std::string* key : {&t.peer_cert_fingerprint, &t.peer_pubkey_fingerprint}) {
        if (key->empty()) continue;
        auto o = access::check_exact(tables, *key);
        if (o.status == access::Outcome::Status::NotFound) continue;
        return finish_lookup(ev, o, Subject{ev.facts.client.namaddr(), ReplyClass::Other, "Client certificate"},
                             next);
    }
    next(Verdict::Dunno);
}

namespace {

enum class Owners { Known, Unknown, Error };

// The owners smtpd_sender_login_maps lists for the sender, comma/space separated.
Owners sender_owners(Evaluation& ev, std::vector<std::string>& owners) {
    const std::string& sender = ev.facts.transaction.sender;
    auto reply = ev.engine.resolve(ev.facts.transaction.recipient, sender);
    if (!reply || (reply->flags & ipc::mail::kResolveFlagError)) return Owners::Error;
    bool local = (reply->flags & ipc::mail::kResolveClassLocal) != 0;
    for (const auto& key : mail_addr_keys(reply->recipient, local, ev.engine.settings.lookup.recipient_delimiter)) {
        for (const auto& t : ev.engine.maps.sender_login) {
            auto r = t->lookup(key);
            if (r.status == table::LookupResult::Status::Error) return Owners::Error;
            if (!r.found()) continue;
            for (auto name : split_tokens(r.value, ", \t")) owners.emplace_back(name);
            return Owners::Known;
        }
    }
    return Owners::Unknown;
}

// authenticated: check a logged-in client; unauthenticated: check one that is not;
// allow_unknown: a sender no table lists is fine (reject_known_sender_login_mismatch).
void login_mismatch(Evaluation& ev, bool authenticated, bool unauthenticated, bool allow_unknown, Next next) {
    const TransactionFacts& t = ev.facts.transaction;
    const SaslFacts& sasl = ev.facts.sasl;
    if (!t.mail_given || t.sender.empty() || ev.engine.maps.sender_login.empty()) return next(Verdict::Dunno);
    bool logged_in = sasl.authenticated();
    if ((logged_in && !authenticated) || (!logged_in && !unauthenticated)) return next(Verdict::Dunno);
    std::vector<std::string> owners;
    Owners o = sender_owners(ev, owners);
    std::string name = t.sender;
    if (o == Owners::Error)
        return next(ev.reject(451, "4.3.0", "<" + name + ">: Temporary lookup failure", ReplyClass::Sender));
    if (!logged_in) {
        if (o != Owners::Known) return next(Verdict::Dunno);
        return next(ev.reject(553, "5.7.1", "<" + name + ">: Sender address rejected: not logged in",
                              ReplyClass::Sender));
    }
    if (o == Owners::Unknown && allow_unknown) return next(Verdict::Dunno);
    for (const auto& owner : owners)
        if (iequals(owner, sasl.username)) return next(Verdict::Dunno);
    next(ev.reject(553, "5.7.1", "<" + name + ">: Sender address rejected: not owned by user " + sasl.username,
                   ReplyClass::Sender));
}

}  // namespace

void reject_sender_login_mismatch(Evaluation& ev, const Restriction&, Next next) {
    login_mismatch(ev, true, true, false, next);
}

void reject_authenticated_sender_login_mismatch(Evaluation& ev, const Restriction&, Next next) {
    login_mismatch(ev, true, false, false, next);
}

void reject_known_sender_login_mismatch(Evaluation& ev, const Restriction&, Next next) {
    login_mismatch(ev, true, true, true, next);
}

void reject_unauthenticated_sender_login_mismatch(Evaluation& ev, const Restriction&, Next next) {
    login_mismatch(ev, false, true, false, next);
}

}  // namespace postern::smtpd::check
