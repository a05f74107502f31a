// The restriction names (postconf(5), Postfix's generic_checks()) and the ones that
// need nothing but the session's facts. Access maps, relay control, recipient
// validation and DNS lookups live in their own files.
#include <map>

#include "smtpd/smtpd_check_internal.h"
#include "util/base/strings.h"
#include "util/rewrite/resolve.h"

namespace postern::smtpd::check {
namespace {

using access::ReplyClass;

void permit(Evaluation&, const Restriction&, Next next) { next(Verdict::Ok); }

void reject(Evaluation& ev, const Restriction&, Next next) {
    next(ev.reject(ev.engine.settings.reject_code, "5.7.1",
                   "<" + ev.stage.reply_name + ">: " + ev.stage.reply_class + " rejected: Access denied",
                   ev.stage_class()));
}

void defer(Evaluation& ev, const Restriction&, Next next) {
    next(ev.reject(ev.engine.settings.defer_code, "4.3.2",
                   "<" + ev.stage.reply_name + ">: " + ev.stage.reply_class + " rejected: Try again later",
                   ev.stage_class()));
}

void defer_if_permit(Evaluation& ev, const Restriction&, Next next) {
    ev.defer_if(ev.defer_if_permit, ev.engine.settings.defer_code, "4.7.0",
                "<" + ev.stage.reply_name + ">: " + ev.stage.reply_class + " rejected: defer_if_permit requested",
                ev.stage_class());
    next(Verdict::Dunno);
}

void defer_if_reject(Evaluation& ev, const Restriction&, Next next) {
    ev.defer_if(ev.defer_if_reject, ev.engine.settings.defer_code, "4.7.0",
                "<" + ev.stage.reply_name + ">: " + ev.stage.reply_class + " rejected: defer_if_reject requested",
                ev.stage_class());
    next(Verdict::Dunno);
}

void warn_if_reject(Evaluation& ev, const Restriction&, Next next) {
    if (ev.warn_if_reject == 0) ev.warn_if_reject = ev.recursion;
    next(Verdict::Dunno);
}

void permit_mynetworks(Evaluation& ev, const Restriction&, Next next) {
    switch (ev.engine.mynetworks->match(ev.facts.client.address)) {
        case NetList::Match::Yes: return next(Verdict::Ok);
        case NetList::Match::No: return next(Verdict::Dunno);
        case NetList::Match::Error: return next(ev.server_error("mynetworks: table lookup problem"));
    }
}

void permit_sasl_authenticated(Evaluation& ev, const Restriction&, Next next) {
    next(ev.facts.sasl.authenticated() ? Verdict::Ok : Verdict::Dunno);
}

void permit_tls_all_clientcerts(Evaluation& ev, const Restriction&, Next next) {
    const TlsFacts& t = ev.facts.tls;
    next(t.active && t.peer_cert_verified ? Verdict::Ok : Verdict::Dunno);
}

// relay_clientcerts lists tables of certificate or public-key fingerprints.
void permit_tls_clientcerts(Evaluation& ev, const Restriction&, Next next) {
    const TlsFacts& t = ev.facts.tls;
    if (!t.active || !t.peer_cert_verified) return next(Verdict::Dunno);
    for (const auto& table : ev.engine.maps.relay_clientcerts) {
        for (const std::string* key : {&t.peer_cert_fingerprint, &t.peer_pubkey_fingerprint}) {
            if (key->empty()) continue;
            auto r = table->lookup(*key);
            if (r.status == table::LookupResult::Status::Error)
                return next(ev.server_error(table->spec() + ": table lookup problem"));
            if (r.found()) return next(Verdict::Ok);
        }
    }
    next(Verdict::Dunno);
}

void reject_plaintext_session(Evaluation& ev, const Restriction&, Next next) {
    if (ev.facts.tls.active) return next(Verdict::Dunno);
    int code = static_cast<int>(ev.engine.config.get_int("plaintext_reject_code"));
    next(ev.reject(code, "4.7.1", "Session encryption is required", ev.stage_class()));
}

void reject_unauth_pipelining(Evaluation& ev, const Restriction&, Next next) {
    if (!ev.facts.improper_pipelining) return next(Verdict::Dunno);
    next(ev.reject(503, "5.5.0",
                   "<" + ev.stage.reply_name + ">: " + ev.stage.reply_class +
                       " rejected: Improper use of SMTP command pipelining",
                   ev.stage_class()));
}

// Postfix strips one trailing dot from a host name before syntax checks.
std::string without_trailing_dot(const std::string& name) {
    if (name.size() > 1 && name.back() == '.' && name[name.size() - 2] != '.')
        return name.substr(0, name.size() - 1);
    return name;
}

void reject_invalid_helo_hostname(Evaluation& ev, const Restriction&, Next next) {
    const std::string& helo = ev.facts.helo_name;
    if (helo.empty()) return next(Verdict::Dunno);
    const Settings& s = ev.engine.settings;
    if (helo.front() == '[') {
        if (rewrite::valid_mailhost_literal(helo)) return next(Verdict::Dunno);
        return next(ev.reject(s.invalid_hostname_code, "5.5.2",
                              "<" + helo + ">: Helo command rejected: invalid ip address", ReplyClass::Helo));
    }
    std::string name = without_trailing_dot(helo);
    if (rewrite::valid_hostname(name) || rewrite::valid_hostaddr(name)) return next(Verdict::Dunno);
    next(ev.reject(s.invalid_hostname_code, "5.5.2", "<" + helo + ">: Helo command rejected: Invalid name",
                   ReplyClass::Helo));
}

void reject_non_fqdn_helo_hostname(Evaluation& ev, const Restriction&, Next next) {
    const std::string& helo = ev.facts.helo_name;
    if (helo.empty() || helo.front() == '[') return next(Verdict::Dunno);
    std::string name = without_trailing_dot(helo);
    if (rewrite::valid_hostname(name) && name.find('.') != std::string::npos) return next(Verdict::Dunno);
    next(ev.reject(ev.engine.settings.non_fqdn_code, "5.5.2",
                   "<" + helo + ">: Helo command rejected: need fully-qualified hostname", ReplyClass::Helo));
}

void reject_unknown_client_hostname(Evaluation& ev, const Restriction&, Next next) {
    const ClientFacts& c = ev.facts.client;
    if (c.name_status == NameStatus::Ok) return next(Verdict::Dunno);
    int code = c.name_status == NameStatus::PermFail ? ev.engine.settings.unknown_client_code : 450;
    next(ev.reject(code, "4.7.25", "Client host rejected: cannot find your hostname, [" + c.address + "]",
                   ReplyClass::Client));
}

void reject_unknown_reverse_client_hostname(Evaluation& ev, const Restriction&, Next next) {
    const ClientFacts& c = ev.facts.client;
    if (c.reverse_name_status == NameStatus::Ok) return next(Verdict::Dunno);
    int code = c.reverse_name_status == NameStatus::PermFail ? ev.engine.settings.unknown_client_code : 450;
    next(ev.reject(code, "4.7.1", "Client host rejected: cannot find your reverse hostname, [" + c.address + "]",
                   ReplyClass::Client));
}

void reject_multi_recipient_bounce(Evaluation& ev, const Restriction&, Next next) {
    const TransactionFacts& t = ev.facts.transaction;
    size_t allowed = ev.point == CheckPoint::Rcpt ? 0 : 1;
    if (!t.mail_given || !t.sender.empty() || t.recipients.size() <= allowed) return next(Verdict::Dunno);
    next(ev.reject(ev.engine.settings.multi_recipient_code, "5.5.3",
                   "<" + ev.stage.reply_name + ">: " + ev.stage.reply_class + " rejected: Multi-recipient bounce",
                   ev.stage_class()));
}

const std::map<std::string_view, NameInfo>& names() {
    static const std::map<std::string_view, NameInfo> table = {
        {"permit", {permit, ArgKind::None}},
        {"reject", {reject, ArgKind::None}},
        {"defer", {defer, ArgKind::None}},
        {"defer_if_permit", {defer_if_permit, ArgKind::None}},
        {"defer_if_reject", {defer_if_reject, ArgKind::None}},
        {"warn_if_reject", {warn_if_reject, ArgKind::None}},
        {"permit_mynetworks", {permit_mynetworks, ArgKind::None}},
        {"permit_sasl_authenticated", {permit_sasl_authenticated, ArgKind::None}},
        {"permit_tls_clientcerts", {permit_tls_clientcerts, ArgKind::None}},
        {"permit_tls_all_clientcerts", {permit_tls_all_clientcerts, ArgKind::None}},
        {"reject_plaintext_session", {reject_plaintext_session, ArgKind::None}},
        {"reject_unauth_pipelining", {reject_unauth_pipelining, ArgKind::None}},
        {"reject_invalid_helo_hostname", {reject_invalid_helo_hostname, ArgKind::None}},
        {"reject_invalid_hostname", {reject_invalid_helo_hostname, ArgKind::None}},
        {"reject_non_fqdn_helo_hostname", {reject_non_fqdn_helo_hostname, ArgKind::None}},
        {"reject_non_fqdn_hostname", {reject_non_fqdn_helo_hostname, ArgKind::None}},
        {"reject_unknown_helo_hostname", {reject_unknown_helo_hostname, ArgKind::None}},
        {"reject_unknown_hostname", {reject_unknown_helo_hostname, ArgKind::None}},
        {"reject_unknown_client_hostname", {reject_unknown_client_hostname, ArgKind::None}},
        {"reject_unknown_client", {reject_unknown_client_hostname, ArgKind::None}},
        {"reject_unknown_reverse_client_hostname", {reject_unknown_reverse_client_hostname, ArgKind::None}},
        {"reject_multi_recipient_bounce", {reject_multi_recipient_bounce, ArgKind::None}},
        {"reject_unauth_destination", {reject_unauth_destination, ArgKind::None}},
        {"defer_unauth_destination", {defer_unauth_destination, ArgKind::None}},
        {"permit_auth_destination", {permit_auth_destination, ArgKind::None}},
        {"reject_unlisted_sender", {reject_unlisted_sender, ArgKind::None}},
        {"reject_unlisted_recipient", {reject_unlisted_recipient, ArgKind::None}},
        {"reject_unknown_recipient", {reject_unlisted_recipient, ArgKind::None}},
        {"reject_non_fqdn_sender", {reject_non_fqdn_sender, ArgKind::None}},
        {"reject_non_fqdn_recipient", {reject_non_fqdn_recipient, ArgKind::None}},
        {"reject_unknown_sender_domain", {reject_unknown_sender_domain, ArgKind::None}},
        {"reject_unknown_recipient_domain", {reject_unknown_recipient_domain, ArgKind::None}},
        {"reject_rbl_client", {reject_rbl_client, ArgKind::Domain}},
        {"reject_rbl", {reject_rbl_client, ArgKind::Domain}},
        {"permit_dnswl_client", {permit_dnswl_client, ArgKind::Domain}},
        {"reject_rhsbl_client", {reject_rhsbl_client, ArgKind::Domain}},
        {"reject_rhsbl_reverse_client", {reject_rhsbl_reverse_client, ArgKind::Domain}},
        {"reject_rhsbl_sender", {reject_rhsbl_sender, ArgKind::Domain}},
        {"reject_rhsbl_recipient", {reject_rhsbl_recipient, ArgKind::Domain}},
        {"reject_rhsbl_helo", {reject_rhsbl_helo, ArgKind::Domain}},
        {"check_client_access", {check_client_access, ArgKind::Table}},
        {"check_reverse_client_hostname_access", {check_reverse_client_access, ArgKind::Table}},
        {"check_helo_access", {check_helo_access, ArgKind::Table}},
        {"check_sender_access", {check_sender_access, ArgKind::Table}},
        {"check_recipient_access", {check_recipient_access, ArgKind::Table}},
        {"check_sasl_access", {check_sasl_access, ArgKind::Table}},
        {"check_ccert_access", {check_ccert_access, ArgKind::Table}},
        {"check_policy_service", {check_policy_service, ArgKind::Server}},
        {"check_relay_domains", {check_relay_domains, ArgKind::None}},
        {"sleep", {sleep_restriction, ArgKind::Number}},
        {"permit_inet_interfaces", {permit_inet_interfaces, ArgKind::None}},
        {"permit_mx_backup", {permit_mx_backup, ArgKind::None}},
        {"check_client_a_access", {check_client_a_access, ArgKind::Table}},
        {"check_client_mx_access", {check_client_mx_access, ArgKind::Table}},
        {"check_client_ns_access", {check_client_ns_access, ArgKind::Table}},
        {"check_reverse_client_a_access", {check_reverse_client_a_access, ArgKind::Table}},
        {"check_reverse_client_mx_access", {check_reverse_client_mx_access, ArgKind::Table}},
        {"check_reverse_client_ns_access", {check_reverse_client_ns_access, ArgKind::Table}},
        {"check_helo_a_access", {check_helo_a_access, ArgKind::Table}},
        {"check_helo_mx_access", {check_helo_mx_access, ArgKind::Table}},
        {"check_helo_ns_access", {check_helo_ns_access, ArgKind::Table}},
        {"check_sender_a_access", {check_sender_a_access, ArgKind::Table}},
        {"check_sender_mx_access", {check_sender_mx_access, ArgKind::Table}},
        {"check_sender_ns_access", {check_sender_ns_access, ArgKind::Table}},
        {"check_recipient_a_access", {check_recipient_a_access, ArgKind::Table}},
        {"check_recipient_mx_access", {check_recipient_mx_access, ArgKind::Table}},
        {"check_recipient_ns_access", {check_recipient_ns_access, ArgKind::Table}},
        {"reject_sender_login_mismatch", {reject_sender_login_mismatch, ArgKind::None}},
        {"reject_authenticated_sender_login_mismatch", {reject_authenticated_sender_login_mismatch, ArgKind::None}},
        {"reject_known_sender_login_mismatch", {reject_known_sender_login_mismatch, ArgKind::None}},
        {"reject_unauthenticated_sender_login_mismatch",
         {reject_unauthenticated_sender_login_mismatch, ArgKind::None}},
    };
    return table;
}

}  // namespace

const NameInfo* find_name(std::string_view name) {
    auto it = names().find(name);
    return it == names().end() ? nullptr : &it->second;
}

}  // namespace postern::smtpd::check
