// One SMTP session (Postfix's SMTPD_STATE + smtpd_proto()): reads commands through the
// pure SmtpReader, dispatches them through a command table, keeps SessionFacts, and hands
// the message to cleanup without blocking (ipc/cleanup_stream.h). While it waits for
// cleanup, a restriction check or an error sleep it pauses its connection's input, so a
// pipelining client cannot make it read ahead without bound and no other session waits.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "smtpd/smtpd_check.h"
#include "smtpd/smtpd_facts.h"
#include "smtpd/smtpd_params.h"
#include "smtpd/smtpd_reader.h"
#include "smtpd/smtpd_settings.h"
#include "util/ipc/cleanup_stream.h"
#include "util/sasl/sasl_server.h"

struct event;
struct event_base;

namespace postern::daemon {
class Connection;
}
namespace postern::tls {
class TlsServerContext;
}
namespace postern::dns {
class Resolver;
}

namespace postern::smtpd {

class AnvilLimits;
class SessionLimits;

// What all sessions of the process share.
struct Services {
    const Settings* settings = nullptr;
    event_base* base = nullptr;
    CheckEngine* checks = nullptr;             // null: everything is permitted
    tls::TlsServerContext* tls = nullptr;      // null: no STARTTLS
    AnvilLimits* anvil = nullptr;              // null: no connection/rate limits
    dns::Resolver* resolver = nullptr;         // null: every client is "unknown"
    // smtpd_forbid_bare_newline_exclusions (null: nobody is excluded)
    std::function<bool(const ClientFacts&)> bare_lf_exempt;
    sasl::SaslServerFactory* sasl = nullptr;   // null: no AUTH
};

class Session {
public:
    Session(daemon::Connection& conn, const Services& services);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    void start();              // client facts, "connect from", greeting
    void on_input();           // the connection has new input
    void on_tls_handshake();   // STARTTLS / wrapper-mode handshake done
    void on_disconnect();      // the connection is gone (logs lost connection, counters)

    // The command table (STYLE.md pattern 5) and its flags.
    enum Flags : unsigned {
        kLimit = 1 << 0,      // counts toward smtpd_junk_command_limit
        kPreTls = 1 << 1,     // allowed before STARTTLS when TLS is required
        kLast = 1 << 2,       // must be last in a pipelined group (improper pipelining)
    };
    using Handler = void (Session::*)(std::string_view args);
    struct Command {
        const char* name;
        Handler handler;
        unsigned flags;
    };

private:
    static const Command kCommands[];
    static const int kCommandCount;
    static constexpr int kUnknown = 13;  // counter slot of unrecognized commands (= table size)

    // smtpd_session.cc: the loop, replies, errors, timers
    void connected();
    void greet();
    void pump();
    void dispatch(const std::string& line, bool bare_lf);
    void line_too_long(const std::string& head);
    void reply(std::string_view text);
    std::string with_footer(std::string_view text) const;
    void flush();
    void wait_begin();
    void wait_end();
    void close(std::string_view reason);
    void arm_timer();
    void on_timeout();
    void error_sleep_then_resume();
    std::string counters() const;
    std::string where_text() const;
    void log_reject(std::string_view text) const;
    void set_client_facts();

    // smtpd_commands.cc
    void cmd_helo(std::string_view args);
    void cmd_ehlo(std::string_view args);
    void cmd_mail(std::string_view args);
    void cmd_rcpt(std::string_view args);
    void cmd_rset(std::string_view args);
    void cmd_noop(std::string_view args);
    void cmd_quit(std::string_view args);
    void cmd_vrfy(std::string_view args);
    void cmd_etrn(std::string_view args);
    void helo_common(std::string_view args, bool ehlo);
    std::string ehlo_reply() const;
    std::string mail_params(const PathArgs& path);
    std::string rcpt_params(const PathArgs& path, RecipientFacts& r);
    void mail_checked(CheckOutcome outcome);
    void rcpt_checked(CheckOutcome outcome);
    void reset_transaction();
    void check(CheckPoint point, std::function<void(CheckOutcome)> done);

    // smtpd_transaction.cc
    void cmd_data(std::string_view args);
    void cmd_bdat(std::string_view args);
    void open_queue_file(std::function<void(bool)> done);
    void start_message();
    void message_content(const std::string& data, bool bare_lf);
    void end_of_message();
    void cleanup_done(Result<ipc::mail::CleanupResult> result);
    std::string received_header() const;
    ipc::mail::CleanupEnvelope make_envelope() const;
    bool data_restriction_ok();

    // smtpd_tls_auth.cc
    void cmd_starttls(std::string_view args);
    void cmd_auth(std::string_view args);
    void auth_response(const std::string& line);
    void auth_answered(sasl::SaslStep step);
    void auth_step(const sasl::SaslStep& step);
    sasl::SaslServer* auth_server();
    std::string auth_mechanisms() const;
    bool tls_required_first();
    void start_wrapper_tls();

    daemon::Connection& conn_;
    Services svc_;
    const Settings& cfg_;
    SessionFacts facts_;
    SmtpReader reader_;
    BareLf bare_lf_;             // smtpd_forbid_bare_newline for this client
    std::unique_ptr<CheckSession> check_;
    std::unique_ptr<ipc::mail::CleanupStream> cleanup_;
    std::unique_ptr<sasl::SaslServer> sasl_;
    std::string out_;            // replies not yet written (error sleep holds them)
    std::string where_ = "CONNECT";
    bool ehlo_ = false;          // the client said EHLO (ESMTP)
    bool waiting_ = false;       // for cleanup, a check or the error sleep
    bool closing_ = false;       // we said goodbye or gave up: no "lost connection"
    bool access_denied_ = false; // rejected at connect: 503 for all but QUIT
    bool in_auth_ = false;       // AUTH: lines are SASL responses
    std::string auth_mech_;
    int error_count_ = 0;
    int junk_count_ = 0;
    // DATA/BDAT state of the current message
    bool in_data_ = false;       // DATA content or between BDAT chunks
    bool bdat_ = false;          // the message is being sent with BDAT
    bool bdat_last_ = false;
    bool bdat_failed_ = false;   // an earlier BDAT failed: discard the rest
    bool content_bare_lf_ = false;
    long message_bytes_ = 0;     // Postfix's act_size
    bool bdat_partial_line_ = false;  // the content so far ends inside a line
    long chunk_bytes_ = 0;       // size of the current BDAT chunk
    std::string bdat_refusal_;   // the reply at the end of a BDAT chunk being discarded
    bool size_exceeded_ = false;
    bool cleanup_failed_ = false;
    long open_flags_ = 0;        // the cleanup flags the queue file was opened with
    long arrival_ = 0;
    // command counters for the disconnect line: {ok, total} per table entry + unknown
    std::array<std::pair<int, int>, 16> counts_{};
    event* timer_ = nullptr;
    event* sleep_timer_ = nullptr;
    bool sleep_timer_pending_ = false;
    int pending_index_ = -1;     // the command whose final reply is still due
    std::unique_ptr<SessionLimits> limits_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace postern::smtpd
