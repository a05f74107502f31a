// One SMTP or LMTP conversation with one server address, event-driven on the process's
// libevent loop: connect, greeting, EHLO/LHLO (HELO fallback), MAIL/RCPT/DATA (pipelined
// when the server offers PIPELINING), the dot-stuffed content -- or BDAT chunks with
// smtp_chunking_enable and a server that offers CHUNKING (session_bdat.cc) --, QUIT. Every wait has its
// smtp_*_timeout. The session reports once, through its callback, either "try the next
// server" (connection trouble, 4xx greeting/EHLO/MAIL, 5xx greeting with
// smtp_skip_5xx_greeting) or a final outcome per recipient.
#pragma once

#include <sys/time.h>

#include <ctime>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "smtp/settings.h"
#include "util/smtpclient/bdat_framer.h"
#include "util/smtpclient/content_stream.h"
#include "util/smtpclient/smtp_reply.h"

struct event_base;
struct bufferevent;
struct event;

namespace postern::smtp {

// A server to talk to: an address and port, or a UNIX-domain socket (LMTP).
struct Target {
    std::string host;  // name as found (MX host, nexthop), for logs
    std::string addr;  // numeric address; the socket path for UNIX-domain targets
    int port = 25;
    bool unix_socket = false;
    std::string sasl_credentials;  // "user:password" for AUTH, "" for none
    // The destination's TLS policy (smtp_tls_policy_maps or smtp_tls_security_level).
    std::shared_ptr<const tls::ClientPolicy> tls_policy;
    // The last server to try: a 4xx to RCPT is final here; elsewhere the recipient is
    // kept for the next server (Postfix's SMTP_MISC_FLAG_FINAL_SERVER).
    bool final_server = true;
    std::string namaddr() const { return host + "[" + addr + "]"; }
    // The relay= field of the log line: "host[addr]:port", "host[path]".
    std::string relay() const { return unix_socket ? namaddr() : namaddr() + ":" + std::to_string(port); }
};

// What a session sends: the envelope with its ESMTP options and the open queue file
// whose content each session streams from the start (util/smtpclient/content_stream.h).
struct Envelope {
    struct Rcpt {
        std::string address, orcpt, orig;  // orig: the original recipient (ORCPT fallback)
        long notify = 0;
        bool done = false;  // has its outcome from an earlier server: not sent again
    };
    std::string sender, envid;
    long ret = 0;
    bool eightbit = false, smtputf8 = false;
    bool sevenbit = false;  // declared BODY=7BIT: never converted on output
    bool smtputf8_required = false;  // non-ASCII envelope or headers: no server without SMTPUTF8
    unsigned long size = 0;
    std::vector<Rcpt> rcpts;
    int content_fd = -1;  // the queue file, kept open by the Delivery
};

// A recipient's outcome: status class '2', '4' or '5' with its RFC 3463 code and text.
struct Outcome {
    std::string dsn;     // "" while unknown
    std::string reason;  // "250 2.0.0 Ok: queued as X" or "host h[a] said: ..."
    bool dsn_server = false;  // accepted by an SMTP (not LMTP) server that announced DSN
    bool try_next = false;    // a 4xx from a server that is not the last: not final
    bool known() const { return !dsn.empty() && !try_next; }
};

struct SessionReport {
    bool try_next = false;  // the recipients are untouched; another server may do better
    std::string dsn, reason;  // the session-wide failure, when there was one
    std::vector<Outcome> rcpts;  // per recipient (unknown ones take dsn/reason)
    bool connected = false;   // reached the server (relay= names it)
    timeval conn_setup_done{};
    bool reused = false;      // ran on a cached connection (see Session::start_on)
    int reuse_count = 0;      // that connection's earlier deliveries
    bool kept = false;        // the transaction ended cleanly: take_connection() may cache it
};

struct CachedConnection;

class Session {
public:
    using Done = std::function<void(SessionReport)>;
    Session(event_base* base, const Settings& settings, const Target& target, const Envelope& env, Done done);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    // Starts connecting; `done` runs later from the loop, exactly once (not after the
    // session is destroyed).
    void start();
    // Starts on a cached connection instead: RSET (pipelined with MAIL when the server
    // offers PIPELINING) checks that it still works. A failure before MAIL is accepted
    // reports try_next with `reused` set: the owner then tries a fresh connection.
    void start_on(CachedConnection&& conn);
    // After a report with `kept`: moves the open connection into `out` (once).
    bool take_connection(CachedConnection& out);

private:
    enum class Phase { Connect, Greeting, Ehlo, Helo, StartTls, TlsHandshake, Auth, Transaction, Body, EndOfData, Quit, Finished };
    enum class Cmd { Rset, Mail, Rcpt, Data, Bdat };
    struct Pending {
        Cmd cmd;
        size_t index = 0;   // RCPT: the recipient
        bool last = false;  // BDAT: the LAST chunk
    };

    static void read_cb(bufferevent* bev, void* arg);
    static void write_cb(bufferevent* bev, void* arg);
    static void event_cb(bufferevent* bev, short what, void* arg);
    static void timer_cb(int fd, short what, void* arg);

    void handle(const smtpclient::Reply& reply);
    void on_greeting(const smtpclient::Reply& reply);
    void on_ehlo(const smtpclient::Reply& reply);
    void on_starttls(const smtpclient::Reply& reply);
    void start_tls_handshake(bool wrapped);
    void tls_established();
    // AUTH with target_.sasl_credentials (CRAM-MD5, PLAIN or LOGIN as the settings
    // allow); false when there is nothing to authenticate with or the server offers no AUTH.
    bool start_auth();
    std::optional<std::string> auth_answer(const smtpclient::Reply& reply);
    // A cached 535 for target_'s credentials (smtp_sasl_auth_cache_name): fails the session.
    bool auth_failure_cached();
    void on_auth(const smtpclient::Reply& reply);
    // The handshake is over (with or without TLS): check SIZE, start the transaction.
    void after_handshake();
    void begin_transaction();
    void send_next_command();
    void on_command_reply(const smtpclient::Reply& reply);
    void on_mail_reply(const smtpclient::Reply& reply);
    void on_data_reply(const smtpclient::Reply& reply);
    void on_end_of_data(const smtpclient::Reply& reply);
    void send_content_chunk();
    std::optional<message::ParserLimits> mime_downgrade() const;
    // BDAT (session_bdat.cc). With PIPELINING, a message that fits in one chunk goes
    // out with MAIL and RCPT; false when the session failed.
    void prepare_bdat();  // sets bdat_ when enabled and offered
    bool pipeline_whole_message();
    bool content_ok(const Result<bool>& read);  // false: the session failed
    void arm_after_rcpt_bdat();
    void start_bdat_body();
    void send_bdat_chunk();
    void on_bdat_reply(const smtpclient::Reply& reply, bool last);
    void send_quit();
    // The server answered the end of data: keep the connection for the cache, or QUIT.
    void end_transaction(const smtpclient::Reply& reply);

    std::string mail_command() const;
    std::string rcpt_command(size_t i) const;
    void send(const std::string& line);
    void arm(long seconds, std::string while_text);
    std::string said(const smtpclient::Reply& reply, const char* command) const;
    // Ends the session: try_next or final. Unknown recipients get dsn/reason.
    void fail_session(bool try_next, std::string dsn, std::string reason);
    void finish();
    void lost_connection(bool timed_out);
    void keep_for_next_server(std::string dsn, std::string reason);
    void connect_failed(int err);

    event_base* base_;
    const Settings& settings_;
    Target target_;
    const Envelope& env_;
    Done done_;
    bufferevent* bev_ = nullptr;
    event* timer_ = nullptr;
    smtpclient::ReplyParser parser_;
    smtpclient::Features features_;
    Phase phase_ = Phase::Connect;
    std::string while_;  // "receiving the initial server greeting", for lost connections
    std::deque<Pending> pending_;   // commands sent, replies not yet read
    std::deque<Pending> unsent_;    // commands not yet sent (no PIPELINING)
    std::unique_ptr<smtpclient::ContentStream> content_;
    bool content_end_ = false;  // the last line is in the output buffer
    std::unique_ptr<smtpclient::BdatFramer> bdat_;  // this transaction sends BDAT chunks
    bool bdat_last_sent_ = false;  // the LAST chunk is in the output buffer
    std::vector<size_t> accepted_;  // recipients the server took with 2xx
    bool mail_ok_ = false;
    bool tls_active_ = false;
    bool tls_verified_ = false;  // the server certificate matched (fingerprint, verify, ...)
    bool reused_ = false;   // started on a cached connection: RSET first
    time_t expire_at_ = 0;  // smtp_connection_reuse_time_limit from the connect
    int reuse_count_ = 0;   // earlier deliveries on this connection
    bool kept_ = false;     // finished with the connection open for the cache
    std::string auth_mech_;
    int auth_step_ = 0;
    size_t lmtp_replies_ = 0;
    SessionReport report_;
    bool reported_ = false;
    std::shared_ptr<bool> alive_;  // false once destroyed (pending report calls)
};

}  // namespace postern::smtp
