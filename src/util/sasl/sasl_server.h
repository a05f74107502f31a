// Server-side SASL for smtpd AUTH (RFC 4954): Cyrus SASL (smtpd_sasl_type = cyrus) with
// smtpd_sasl_path (the application name, "smtpd" -> smtpd.conf), cyrus_sasl_config_path,
// smtpd_sasl_local_domain, smtpd_sasl_security_options and
// smtpd_sasl_tls_security_options, and Dovecot's auth service (smtpd_sasl_type = dovecot,
// smtpd_sasl_path = private/auth).
//
// Both may wait (saslauthd or PAM behind Cyrus, Dovecot's auth process and its failure
// delay), so start and step answer through a callback from the event loop: Cyrus's
// calls run on a worker thread, Dovecot's requests share one connection per process.
// Challenges and responses cross this interface decoded (raw bytes); the SMTP session
// does the base64 of RFC 4954 (util/base/base64.h).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "util/base/result.h"
#include "util/config/config.h"

struct event_base;

namespace postern::sasl {

struct SaslStep {
    enum class State { Continue, Success, Failure };
    State state = State::Failure;
    std::string challenge;  // Continue: the next server challenge (raw)
    // Success: the authenticated (canonical) user name. Failure: the name the client
    // gave, when the mechanism got that far (for the log), else empty.
    std::string username;
    std::string reason;     // Failure: for the log ("authentication failure", ...)
    // Failure: whether the failure is temporary (saslauthd down: 454 4.7.0) rather than
    // bad credentials (535 5.7.8).
    bool temporary = false;
};

struct SaslConnectionInfo {
    std::string local_address, local_port, remote_address, remote_port;
    bool tls_active = false;  // selects smtpd_sasl_tls_security_options
    bool client_cert_verified = false;  // Dovecot's valid-client-cert
};

// Runs once per start/step, always from the event loop (never inside start or step), and
// never once the SaslServer is destroyed: destroying it cancels what is pending.
using StepDone = std::function<void(SaslStep)>;

class SaslServer {
public:
    virtual ~SaslServer() = default;
    // Space-separated mechanism list for the EHLO "AUTH" keyword, filtered by the
    // security options in force for this connection.
    virtual std::string mechanisms() const = 0;
    // initial_response: the optional second argument of AUTH, decoded ("=" -> empty).
    // One exchange at a time: step only after a Continue, start after the end of one.
    virtual void start(std::string_view mechanism,
                       const std::optional<std::string>& initial_response, StepDone done) = 0;
    virtual void step(std::string_view response, StepDone done) = 0;
};

// One per process: reads the configuration and initialises the library (call before the
// jail: Cyrus reads its config and may open sasldb there).
class SaslServerFactory {
public:
    virtual ~SaslServerFactory() = default;
    // "fatal: ..." and exit for an unsupported smtpd_sasl_type or a broken library setup.
    // Answers are delivered on `base`.
    static std::unique_ptr<SaslServerFactory> create(const config::Config& config,
                                                     event_base* base);
    // A new server for one SMTP connection (after STARTTLS create a new one).
    virtual Result<std::unique_ptr<SaslServer>> new_server(const SaslConnectionInfo& info) = 0;
};

// Postfix's warning for a failed AUTH, without "warning: " (the session logs it with
// log::warn): "host[addr]: SASL PLAIN authentication failed: authentication failure,
// sasl_username=name" ("(unavailable)" when the name is not known).
std::string failure_log_text(std::string_view namaddr, std::string_view mechanism,
                             const SaslStep& step);
// The reply to a Failure step (RFC 4954 section 6, Postfix's texts):
// "454 4.7.0 Temporary authentication failure: reason" or
// "535 5.7.8 Error: authentication failed: reason" ("(reason unavailable)" when there is
// none, as Postfix 3.7 answers a Dovecot FAIL without one).
std::string failure_reply(const SaslStep& step);

}  // namespace postern::sasl
