// STARTTLS (RFC 3207), smtps wrapper mode and AUTH (RFC 4954). After STARTTLS the session
// forgets everything the client said before (HELO, SASL state), as RFC 3207 4.2 requires.
#include "smtpd/smtpd_session.h"
#include "smtpd/smtpd_anvil.h"
#include "util/base/base64.h"
#include "util/daemon/server.h"
#include "util/log/log.h"
#include "util/tls/tls_server.h"

namespace postern::smtpd {

// With a broken TLS set-up, "encrypt" still refuses plaintext mail (fail closed), as
// Postfix: STARTTLS is offered and answered 454.
bool Session::tls_required_first() {
    return cfg_.tls_level == "encrypt" && !facts_.tls.active;
}

void Session::cmd_starttls(std::string_view args) {
    if (!args.empty()) return reply("501 5.5.4 Syntax: STARTTLS");
    if (facts_.tls.active) return reply("554 5.5.1 Error: TLS already active");
    if (!cfg_.tls_offered()) return reply("502 5.5.1 Error: command not implemented");
    if (svc_.tls == nullptr) return reply("454 4.7.0 TLS not available due to local problem");
    if (facts_.transaction.mail_given) return reply("503 5.5.1 Error: MAIL transaction in progress");
    if (limits_ != nullptr) {
        if (auto refused = limits_->check_starttls()) return reply(refused->text);
    }
    SSL* ssl = svc_.tls->new_ssl(cfg_.tls_level == "encrypt");
    if (ssl == nullptr) return reply("454 4.7.0 TLS not available due to local problem");
    reply("220 2.0.0 Ready to start TLS");
    flush();
    // Plaintext pipelined after STARTTLS is an injection attempt (RFC 3207 6): dropped.
    reader_.discard_buffered();
    wait_begin();
    if (Status st = conn_.start_tls(ssl); !st) {
        log::warn("%s: %s", facts_.client.namaddr().c_str(), st.error().c_str());
        close("");
    }
}

void Session::start_wrapper_tls() {
    SSL* ssl = svc_.tls != nullptr ? svc_.tls->new_ssl(cfg_.tls_level == "encrypt") : nullptr;
    if (ssl == nullptr) {
        log::warn("%s: TLS not available for wrapper mode", facts_.client.namaddr().c_str());
        close("");
        return;
    }
    wait_begin();
    if (Status st = conn_.start_tls(ssl); !st) {
        log::warn("%s: %s", facts_.client.namaddr().c_str(), st.error().c_str());
        close("");
    }
}

void Session::on_tls_handshake() {
    tls::TlsSessionInfo info = tls::session_info(conn_.ssl());
    // smtpd_tls_loglevel 0 (Postfix's default) logs no summary line.
    if (svc_.tls != nullptr && svc_.tls->log_level() >= 1)
        log::info("%s", tls::established_log_line(info, facts_.client.namaddr()).c_str());
    if (limits_ != nullptr) {
        if (auto refused = limits_->check_tls_established(info.reused)) {
            wait_end();
            reply(refused->text);
            flush();
            close("");
            return;
        }
    }
    auto& t = facts_.tls;
    t.active = true;
    t.protocol = info.protocol;
    t.cipher = info.cipher;
    t.cipher_bits = info.cipher_bits;
    t.cipher_alg_bits = info.cipher_alg_bits;
    t.peer_cert_present = info.peer_cert_present;
    t.peer_cert_verified = info.peer_cert_verified;
    t.peer_cn = info.peer_cn;
    t.issuer_cn = info.issuer_cn;
    t.peer_cert_fingerprint = info.peer_cert_fingerprint;
    t.peer_pubkey_fingerprint = info.peer_pubkey_fingerprint;
    // RFC 3207 4.2: forget what the client said before the handshake.
    reset_transaction();
    facts_.helo_name.clear();
    facts_.sasl = SaslFacts{};
    facts_.protocol = "SMTP";
    ehlo_ = false;
    sasl_.reset();
    wait_end();
    if (cfg_.tls_wrappermode && where_ == "CONNECT") {
        reply("220 " + cfg_.banner);
        flush();
    }
    pump();
}

// The session's SASL server, made when first needed; null when AUTH is not available now.
sasl::SaslServer* Session::auth_server() {
    if (svc_.sasl == nullptr || !cfg_.sasl_auth_enable || facts_.sasl.authenticated()) return nullptr;
    if (cfg_.tls_auth_only && !facts_.tls.active) return nullptr;
    if (sasl_ == nullptr) {
        sasl::SaslConnectionInfo info;
        info.local_address = facts_.client.server_address;
        info.local_port = facts_.client.server_port;
        info.remote_address = facts_.client.address;
        info.remote_port = facts_.client.port;
        info.tls_active = facts_.tls.active;
        info.client_cert_verified = facts_.tls.peer_cert_verified;
        auto server = svc_.sasl->new_server(info);
        if (!server) {
            log::warn("SASL server: %s", server.error().c_str());
            return nullptr;
        }
        sasl_ = std::move(*server);
    }
    return sasl_.get();
}

std::string Session::auth_mechanisms() const {
    sasl::SaslServer* server = const_cast<Session*>(this)->auth_server();
    return server != nullptr ? server->mechanisms() : "";
}

void Session::cmd_auth(std::string_view args) {
    if (cfg_.helo_required && facts_.helo_name.empty()) return reply("503 5.5.1 Error: send HELO/EHLO first");
    // Dovecot's server exists with no mechanisms while Dovecot is unreachable: AUTH then
    // gets its 454.
    if (auth_server() == nullptr && !facts_.sasl.authenticated())
        return reply("503 5.5.1 Error: authentication not enabled");
    if (facts_.helo_name.empty()) return reply("503 5.5.1 Error: send HELO/EHLO first");
    if (facts_.sasl.authenticated()) return reply("503 5.5.1 Error: already authenticated");
    if (facts_.transaction.mail_given) return reply("503 5.5.1 Error: MAIL transaction in progress");
    if (limits_ != nullptr) {
        if (auto refused = limits_->check_auth()) return reply(refused->text);
    }
    std::string_view mech = args.substr(0, args.find(' '));
    std::string_view rest = mech.size() < args.size() ? args.substr(mech.size() + 1) : std::string_view{};
    if (mech.empty()) return reply("501 5.5.4 Syntax: AUTH mechanism");
    std::optional<std::string> initial;
    if (!rest.empty()) {
        if (rest == "=") {
            initial = std::string();
        } else {
            initial = base64::decode(rest);
            if (!initial) return reply("501 5.5.2 Cannot decode response");
        }
    }
    auth_mech_.assign(mech);
    for (char& c : auth_mech_) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
    wait_begin();
    sasl_->start(auth_mech_, initial, [this](sasl::SaslStep step) { auth_answered(std::move(step)); });
}

void Session::auth_response(const std::string& line) {
    in_auth_ = false;
    if (line == "*") {
        log::warn("%s: SASL %s authentication aborted", facts_.client.namaddr().c_str(), auth_mech_.c_str());
        sasl_.reset();
        return reply("501 5.7.0 Authentication aborted");
    }
    auto decoded = base64::decode(line);
    if (!decoded) {
        sasl_.reset();
        return reply("501 5.5.2 Cannot decode response");
    }
    wait_begin();
    sasl_->step(*decoded, [this](sasl::SaslStep step) { auth_answered(std::move(step)); });
}

// While the SASL server works (a worker thread, Dovecot) the session reads nothing more
// (wait_begin); the answer comes from the loop, never after the session (and its server)
// went away.
void Session::auth_answered(sasl::SaslStep step) {
    std::weak_ptr<bool> alive = alive_;
    wait_end();
    auth_step(step);
    if (!alive.expired()) pump();
}

void Session::auth_step(const sasl::SaslStep& step) {
    using S = sasl::SaslStep::State;
    if (step.state == S::Continue) {
        in_auth_ = true;
        return reply("334 " + base64::encode(step.challenge));
    }
    if (step.state == S::Success) {
        facts_.sasl.method = auth_mech_;
        facts_.sasl.username = step.username;
        if (facts_.protocol.find('A') == std::string::npos) facts_.protocol += "A";
        return reply("235 2.7.0 Authentication successful");
    }
    log::warn("%s", sasl::failure_log_text(facts_.client.namaddr(), auth_mech_, step).c_str());
    sasl_.reset();  // a new exchange needs a new server object
    reply(sasl::failure_reply(step));
}

}  // namespace postern::smtpd
