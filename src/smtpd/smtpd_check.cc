// The restriction engine's core: which restriction lists a check point runs and in
// which order (Postfix's smtpd_check_client/helo/mail/rcpt/data/eod/etrn), the
// smtpd_check_reject() logic (warn_if_reject, defer_if_reject, defer_if_permit,
// soft_bounce) and the "NOQUEUE: reject: ..." log line.
#include "smtpd/smtpd_check.h"

#include "smtpd/smtpd_check_internal.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/rewrite/match_list.h"

namespace postern::smtpd::check {

// Postfix's state->where: the command being answered.
const char* where_name(CheckPoint point, const SessionFacts& facts) {
    switch (point) {
        case CheckPoint::Connect: return "CONNECT";
        case CheckPoint::Helo: return facts.protocol.find("ESMTP") == 0 ? "EHLO" : "HELO";
        case CheckPoint::Mail: return "MAIL";
        case CheckPoint::Rcpt: return "RCPT";
        case CheckPoint::Data: return "DATA";
        case CheckPoint::EndOfData: return "END-OF-MESSAGE";
        case CheckPoint::Etrn: return "ETRN";
        case CheckPoint::Vrfy: return "VRFY";
    }
    return "CONNECT";
}

namespace {

// Restriction lists nest through classes and access map values; Postfix stops at 100.
constexpr int kMaxRecursion = 100;

}  // namespace

access::ReplyClass Evaluation::stage_class() const {
    switch (stage.kind) {
        case StageKind::Client: return access::ReplyClass::Client;
        case StageKind::Helo: return access::ReplyClass::Helo;
        case StageKind::Sender: return access::ReplyClass::Sender;
        case StageKind::Recipient: return access::ReplyClass::Recipient;
        default: return access::ReplyClass::Other;
    }
}

void Evaluation::log_whatsup(const char* what, const std::string& text) const {
    const TransactionFacts& t = facts.transaction;
    std::string line = strprintf("%s: %s: %s from %s: %s;",
                                 t.queue_id.empty() ? "NOQUEUE" : t.queue_id.c_str(), what,
                                 where_name(point, facts), facts.client.namaddr().c_str(), text.c_str());
    // Addresses in logs are in external (quoted) form, in replies as the client sent them.
    if (t.mail_given) line += " from=<" + external_form(t.sender) + ">";
    // After RCPT, Postfix's state->recipient is the last recipient accepted.
    std::string to = t.recipient;
    if (to.empty() && (point == CheckPoint::Data || point == CheckPoint::EndOfData) && !t.recipients.empty())
        to = t.recipients.back().address;
    if (!to.empty() && point != CheckPoint::Connect && point != CheckPoint::Helo && point != CheckPoint::Mail)
        line += " to=<" + external_form(to) + ">";
    line += " proto=" + facts.protocol;
    if (!facts.helo_name.empty()) line += " helo=<" + facts.helo_name + ">";
    log::info("%s", line.c_str());
}

Verdict Evaluation::reject_reply(const std::string& whole) {
    std::string text = whole;
    const Settings& s = engine.settings;
    if (warn_if_reject) {
        log_whatsup("reject_warning", text);
        return Verdict::Dunno;
    }
    // defer_if_reject turns a later 5xx into the remembered 4xx.
    if (defer_if_reject.active && !text.empty() && text[0] == '5') text = defer_if_reject.reply;
    if (s.soft_bounce && !text.empty() && text[0] == '5') {
        text[0] = '4';
        if (text.size() > 4 && text[4] == '5' && text[5] == '.') text[4] = '4';
    }
    log_whatsup("reject", text);
    reply = text;
    return Verdict::Reject;
}

Verdict Evaluation::reject(int code, std::string dsn, const std::string& text, access::ReplyClass cls) {
    dsn = access::fix_dsn(dsn, cls);
    std::string c = std::to_string(code);
    if (!dsn.empty()) dsn[0] = c[0];
    return reject_reply(c + " " + dsn + " " + text);
}

void Evaluation::defer_if(Deferred& d, int code, const std::string& dsn, const std::string& text,
                          access::ReplyClass cls) {
    if (warn_if_reject) {
        log_whatsup("reject_warning", std::to_string(code) + " " + access::fix_dsn(dsn, cls) + " " + text);
        return;
    }
    if (d.active) return;
    d.active = true;
    d.reply = std::to_string(code) + " " + access::fix_dsn(dsn, cls) + " " + text;
}

Verdict Evaluation::tempfail(bool defer_now, int code, const std::string& dsn, const std::string& text,
                             access::ReplyClass cls) {
    if (defer_now || warn_if_reject) return reject(code, dsn, text, cls);
    defer_if(defer_if_permit, code, dsn, text, cls);
    return Verdict::Dunno;
}

// Postfix's smtpd_acl_permit(): "permit: ... action=permit_mynetworks for Client
// host=name[addr]" for the names smtpd_log_access_permit_actions lists.
void Evaluation::log_permit(const Restriction& r) {
    if (r.class_list != nullptr || defer_if_permit.active || engine.log_permit_actions.empty()) return;
    static const char* const kClient[] = {"permit_inet_interfaces", "permit_mynetworks", "permit_sasl_authenticated",
                                          "permit_tls_clientcerts", "permit_tls_all_clientcerts",
                                          "permit_dnswl_client", "permit_rhswl_client"};
    static const char* const kRecipient[] = {"permit_mx_backup", "permit_auth_destination", "check_relay_domains"};
    std::string cls, name;
    if (r.name == "permit") {
        cls = stage.reply_class;
        name = stage.reply_name;
    }
    for (const char* n : kClient)
        if (r.name == n) cls = "Client host", name = facts.client.namaddr();
    for (const char* n : kRecipient)
        if (r.name == n) cls = "Recipient address", name = recipient();
    if (cls.empty() || engine.log_permit_actions.match(r.name) != rewrite::Match::Yes) return;
    // Postfix appends " " and an empty format: the text ends in a blank.
    log_whatsup("permit", "action=" + r.name + " for " + cls + "=" + name + " ");
}

Verdict Evaluation::server_error(const std::string& why) {
    if (!why.empty()) log::warn("%s", why.c_str());
    // Not subject to warn_if_reject: the configuration is broken, not the client.
    int warn = warn_if_reject;
    warn_if_reject = 0;
    Verdict v = reject_reply("451 4.3.5 Server configuration error");
    warn_if_reject = warn;
    return v;
}

void Evaluation::run(const RestrictionList& list, size_t i, int depth, Next done) {
    // Iterates while handlers answer synchronously; a handler that waits for DNS resumes
    // the loop from its callback (by then this frame is gone, hence the shared Step).
    struct Step {
        bool sync = true, answered = false;
        Verdict verdict = Verdict::Dunno;
    };
    if (depth > kMaxRecursion) {
        done(server_error("too many levels of nested restrictions"));
        return;
    }
    while (i < list.size()) {
        const Restriction& r = list[i];
        if (r.class_list == nullptr && r.handler == nullptr) {
            done(server_error(strprintf("unknown smtpd restriction: \"%s\"", r.name.c_str())));
            return;
        }
        auto step = std::make_shared<Step>();
        bool is_warn = r.name == "warn_if_reject";
        auto after = [self = weak(), &list, i, depth, done, step, is_warn](Verdict v) {
            auto ev = self.lock();
            if (!ev) return;
            ev->recursion = depth;
            if (v == Verdict::Ok) ev->log_permit(list[i]);
            // warn_if_reject applies to the one restriction that follows it.
            if (!is_warn && ev->warn_if_reject >= depth) ev->warn_if_reject = 0;
            if (step->sync) {
                step->answered = true;
                step->verdict = v;
                return;
            }
            if (v != Verdict::Dunno)
                done(v);
            else
                ev->run(list, i + 1, depth, done);
        };
        recursion = depth;
        if (r.class_list != nullptr)
            run(*r.class_list, 0, depth + 1, after);
        else
            r.handler(*this, r, after);
        step->sync = false;
        if (!step->answered) return;  // resumed from a callback
        if (step->verdict != Verdict::Dunno) {
            done(step->verdict);
            return;
        }
        ++i;
    }
    done(Verdict::Dunno);
}

}  // namespace postern::smtpd::check
