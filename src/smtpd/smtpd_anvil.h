// smtpd's client rate and concurrency limits through anvil(8), as smtpd(8) "RESOURCE
// AND RATE CONTROLS": smtpd_client_connection_count_limit, *_connection_rate_limit,
// *_message_rate_limit, *_recipient_rate_limit, *_auth_rate_limit,
// *_new_tls_session_rate_limit, with smtpd_client_event_limit_exceptions exempt.
//
// One AnvilLimits per smtpd process. anvil(8) ties one client ident to each connection
// that reported a "connect" (Postfix's smtpd serves one client per process), so a session
// whose connections are counted talks to anvil over a connection of its own, made at
// check_connect() and closed with the session (anvil then forgets the count even if we
// die); the rate requests of uncounted sessions share the process's one connection.
// Each SMTP session owns a SessionLimits; its checks
// return the reply to send when a limit is exceeded, log Postfix's warning themselves,
// and the session does what Postfix does with the reply:
//   check_connect()         instead of the 220 greeting: 421, then close
//   check_mail()/rcpt()     450 for this command (call after the sequence/syntax checks)
//   check_auth()            450 for this AUTH
//   check_starttls()        454 for this STARTTLS (does not count a TLS session)
//   check_tls_established() after a handshake that made a new (not resumed) session:
//                           421, then close
// A session should count the reply as a policy error (Postfix's MAIL_ERROR_POLICY).
// The anvil calls are blocking local-socket round trips, as in Postfix; when anvil
// cannot be reached the limit is not enforced (Postfix too) and one warning is logged.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "smtpd/smtpd_facts.h"
#include "util/base/result.h"
#include "util/config/config.h"
#include "util/ipc/anvil_proto.h"

namespace postern::smtpd {

struct LimitReply {
    std::string text;    // "421 4.7.0 host Error: too many connections from 192.0.2.1", no CRLF
    bool close = false;  // end the session after sending it
};

struct LimitSettings {
    long connection_count = 50, connection_rate = 0, message_rate = 0;
    long recipient_rate = 0, auth_rate = 0, new_tls_rate = 0;
    std::string myhostname;
    std::string anvil_socket = "private/anvil";  // relative to queue_directory
    long anvil_timeout = 10;                     // seconds; the event loop waits this long at worst

    static LimitSettings from_config(const config::Config& config);
    // Postfix talks to anvil only when a connection limit is on (connect/disconnect).
    bool counts_connections() const { return connection_count > 0 || connection_rate > 0; }
};

// smtpd_client_event_limit_exceptions: true = the client is exempt. Postfix's
// namadr_list: "!pattern", addresses and networks ("192.0.2.0/24", "[2001:db8::]/32"),
// host and domain names (subdomains match when the parameter's name is in
// parent_domain_matches_subdomains, as it is for mynetworks), "/file" and "type:table"
// (looked up with the name, then the address). First match wins.
using ExceptionMatcher = std::function<bool(const ClientFacts&)>;
Result<ExceptionMatcher> make_exception_matcher(const config::Config& config);
Result<ExceptionMatcher> make_exception_matcher(const std::vector<std::string>& patterns,
                                                bool parent_matches_subdomains);

class SessionLimits;

class AnvilLimits {
public:
    // Opens the exceptions' tables (call before the jail when they need root). The anvil
    // connection is made on first use.
    static Result<std::unique_ptr<AnvilLimits>> create(const config::Config& config);
    AnvilLimits(LimitSettings settings, ExceptionMatcher exempt);

    std::unique_ptr<SessionLimits> new_session(const SessionFacts& facts);
    const LimitSettings& settings() const { return settings_; }

private:
    friend class SessionLimits;
    // The anvil reply, or nullopt (anvil unreachable: already warned about).
    std::optional<ipc::anvil::AnvilReply> call(ipc::anvil::AnvilClient& client, ipc::anvil::Request request,
                                               const SessionFacts& facts);

    LimitSettings settings_;
    ExceptionMatcher exempt_;
    ipc::anvil::AnvilClient shared_;
    bool warned_ = false;
};

// Per session. Destroying it after check_connect() reports the disconnect to anvil, so
// the concurrency count stays right however the session ends.
class SessionLimits {
public:
    SessionLimits(AnvilLimits& limits, const SessionFacts& facts);
    ~SessionLimits();
    SessionLimits(const SessionLimits&) = delete;
    SessionLimits& operator=(const SessionLimits&) = delete;

    std::optional<LimitReply> check_connect();
    std::optional<LimitReply> check_mail();
    std::optional<LimitReply> check_rcpt();
    std::optional<LimitReply> check_auth();
    std::optional<LimitReply> check_starttls();
    std::optional<LimitReply> check_tls_established(bool session_reused);
    // Explicit disconnect (the destructor does it too); idempotent.
    void disconnect();
    // smtpd_client_event_limit_exceptions, decided at the first check (the client's name
    // is known by then).
    bool exempt();

    struct RateRule;

private:
    std::optional<long> rate(ipc::anvil::Request request, long limit);
    std::optional<LimitReply> check_rate(const RateRule& rule);

    AnvilLimits& limits_;
    const SessionFacts& facts_;
    std::optional<bool> exempt_;
    std::unique_ptr<ipc::anvil::AnvilClient> own_;  // after a counted connect
    bool connected_ = false;
};

}  // namespace postern::smtpd
