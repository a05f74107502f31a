// The Dovecot implementation of SaslServerFactory (smtpd_sasl_type = dovecot), after
// Postfix's xsasl_dovecot_server.c: Dovecot's auth client protocol (version 1) on
// smtpd_sasl_path, a UNIX-domain socket ("private/auth" is relative to queue_directory)
// or "inet:host:port". One connection per process serves all its sessions (a request id
// per exchange); it is asynchronous (libevent) and made again when Dovecot went away.
// The mechanisms are the handshake's MECH lines, filtered by the security options as
// Postfix does (a mechanism flagged "plaintext" goes with noplaintext, ...) and by
// smtpd_sasl_mechanism_filter.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/config/config.h"
#include "util/sasl/sasl_server.h"

namespace postern::sasl {

// Nothing connects before the first session (after the jail, with the daemon's
// privileges, as Postfix's "late binding"): that one waits for the handshake at most 10
// seconds (Postfix's AUTH_TIMEOUT). When Dovecot cannot be reached a session offers no
// AUTH and each new one tries again without waiting.
std::unique_ptr<SaslServerFactory> create_dovecot_factory(const config::Config& config,
                                                          event_base* base);

// The protocol, pure (tests).
namespace dovecot {

struct Mechanism {
    std::string name;
    unsigned flags = 0;  // SecurityFlag bits the mechanism falls foul of: plaintext ->
                         // kNoPlaintext, ...; forward-secrecy/mutual-auth: what it offers
};

// The server's side of the handshake, line by line (without the newline).
class Handshake {
public:
    enum class Progress { More, Done, Failed };
    // Failed: `error()` holds Postfix's warning text ("SASL: Protocol version error").
    Progress feed(std::string_view line);
    const std::vector<Mechanism>& mechanisms() const { return mechanisms_; }
    const std::string& error() const { return error_; }

private:
    std::vector<Mechanism> mechanisms_;
    bool have_mech_ = false;
    std::string error_;
};

// The mechanisms that the security options allow (Postfix's
// xsasl_dovecot_server_mech_filter), space-separated, in the server's order.
std::string allowed_mechanisms(const std::vector<Mechanism>& mechanisms, unsigned options);

struct Reply {
    enum class Kind { Ok, Cont, Fail, Other };
    Kind kind = Kind::Other;
    unsigned long id = 0;
    std::vector<std::string> args;  // after the id
};
Reply parse_reply(std::string_view line);
// OK -> Success (user=), CONT -> Continue (the decoded challenge), FAIL -> Failure
// (reason=, user=, temp -> temporary). Postfix's texts for a broken reply.
SaslStep step_of(const Reply& reply);

}  // namespace dovecot
}  // namespace postern::sasl
