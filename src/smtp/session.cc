#include "smtp/session.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <event2/event.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "smtp/connection_cache.h"
#include "util/base/base64.h"
#include "util/base/strings.h"
#include "util/base/unique_fd.h"
#include "util/daemon/server.h"
#include "util/dsn/dsn_text.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"
#include "util/mailbox/mail_copy.h"
#include "util/smtpclient/sasl_client.h"

namespace postern::smtp {

namespace {

constexpr size_t kChunk = 64 * 1024;

}  // namespace

Session::Session(event_base* base, const Settings& settings, const Target& target, const Envelope& env, Done done)
    : base_(base), settings_(settings), target_(target), env_(env), done_(std::move(done)),
      alive_(std::make_shared<bool>(true)) {
    report_.rcpts.resize(env_.rcpts.size());
}

Session::~Session() {
    *alive_ = false;
    if (timer_ != nullptr) event_free(timer_);
    if (bev_ != nullptr) bufferevent_free(bev_);
}

void Session::start() {
    timer_ = evtimer_new(base_, &Session::timer_cb, this);
    expire_at_ = time(nullptr) + settings_.reuse_time_limit;
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family = AF_INET;
    if (target_.unix_socket) {
        auto* sun = reinterpret_cast<sockaddr_un*>(&ss);
        sun->sun_family = AF_UNIX;
        if (target_.addr.size() >= sizeof(sun->sun_path)) {
            connect_failed(ENAMETOOLONG);
            return;
        }
        std::memcpy(sun->sun_path, target_.addr.c_str(), target_.addr.size() + 1);
        len = sizeof(sockaddr_un);
        family = AF_UNIX;
    } else {
        addrinfo hints{};
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        if (getaddrinfo(target_.addr.c_str(), std::to_string(target_.port).c_str(), &hints, &res) != 0 || !res) {
            connect_failed(EINVAL);
            return;
        }
        std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
        len = res->ai_addrlen;
        family = res->ai_family;
        freeaddrinfo(res);
    }
    UniqueFd fd(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        connect_failed(errno);
        return;
    }
    const std::string& bind_addr = family == AF_INET6 ? settings_.bind_address6 : settings_.bind_address;
    if (family != AF_UNIX && !bind_addr.empty()) {
        addrinfo hints{};
        hints.ai_flags = AI_NUMERICHOST;
        hints.ai_family = family;
        addrinfo* res = nullptr;
        if (getaddrinfo(bind_addr.c_str(), nullptr, &hints, &res) != 0 || !res) {
            log::warn("%s: invalid bind address: %s", settings_.lmtp ? "lmtp" : "smtp", bind_addr.c_str());
        } else {
            if (bind(fd.get(), res->ai_addr, res->ai_addrlen) < 0)
                log::warn("%s: bind %s: %s", settings_.lmtp ? "lmtp" : "smtp", bind_addr.c_str(), strerror(errno));
            freeaddrinfo(res);
        }
    }
    bev_ = bufferevent_socket_new(base_, fd.release(), BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev_, &Session::read_cb, &Session::write_cb, &Session::event_cb, this);
    arm(settings_.connect_timeout, "");
    if (bufferevent_socket_connect(bev_, reinterpret_cast<sockaddr*>(&ss), static_cast<int>(len)) < 0) {
        connect_failed(EVUTIL_SOCKET_ERROR());
        return;
    }
}

void Session::start_on(CachedConnection&& conn) {
    timer_ = evtimer_new(base_, &Session::timer_cb, this);
    bev_ = conn.bev.release();
    features_ = conn.features;
    tls_active_ = conn.tls_active;
    expire_at_ = conn.expire_at;
    reuse_count_ = conn.reuse_count + 1;
    reused_ = true;
    auth_mech_ = "done";  // authenticated (or not) when the connection was made
    phase_ = Phase::Transaction;
    report_.connected = true;
    report_.reused = true;
    report_.reuse_count = reuse_count_;
    bufferevent_setcb(bev_, &Session::read_cb, &Session::write_cb, &Session::event_cb, this);
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
    after_handshake();
}

bool Session::take_connection(CachedConnection& out) {
    if (!kept_ || bev_ == nullptr) return false;
    out.bev.reset(bev_);
    bev_ = nullptr;
    out.target = target_;
    out.features = features_;
    out.tls_active = tls_active_;
    out.reuse_count = reuse_count_;
    out.expire_at = expire_at_;
    return true;
}

// ---- events ------------------------------------------------------------------------

void Session::read_cb(bufferevent* bev, void* arg) {
    auto* self = static_cast<Session*>(arg);
    evbuffer* in = bufferevent_get_input(bev);
    std::string data(evbuffer_get_length(in), '\0');
    evbuffer_remove(in, data.data(), data.size());
    std::vector<smtpclient::Reply> replies;
    Status st = self->parser_.feed(data, replies);
    for (const auto& r : replies) {
        if (self->reported_) return;
        self->handle(r);
    }
    if (!st && !self->reported_) {
        self->fail_session(self->phase_ < Phase::Transaction, "4.4.0",
                           strprintf("host %s sent %s", self->target_.namaddr().c_str(), st.error().c_str()));
    }
}

void Session::write_cb(bufferevent*, void* arg) {
    auto* self = static_cast<Session*>(arg);
    if (self->phase_ == Phase::Body) self->bdat_ ? self->send_bdat_chunk() : self->send_content_chunk();
}

void Session::event_cb(bufferevent*, short what, void* arg) {
    auto* self = static_cast<Session*>(arg);
    if (self->reported_) return;
    if ((what & BEV_EVENT_CONNECTED) && self->phase_ == Phase::TlsHandshake) {
        self->tls_established();
        return;
    }
    if (self->phase_ == Phase::TlsHandshake) {
        self->fail_session(true, "4.7.5", "Cannot start TLS: handshake failure");
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        self->report_.connected = true;
        if (self->settings_.tls_wrappermode) {
            // smtp_tls_wrappermode (SMTPS, port 465): TLS before the greeting.
            self->start_tls_handshake(true);
            return;
        }
        self->phase_ = Phase::Greeting;
        self->arm(self->settings_.helo_timeout, "receiving the initial server greeting");
        bufferevent_enable(self->bev_, EV_READ);
        return;
    }
    if (self->phase_ == Phase::Connect) {
        self->connect_failed(EVUTIL_SOCKET_ERROR());
        return;
    }
    self->lost_connection(false);
}

void Session::timer_cb(int, short, void* arg) {
    auto* self = static_cast<Session*>(arg);
    if (self->reported_) return;
    if (self->phase_ == Phase::Connect) {
        self->connect_failed(ETIMEDOUT);
        return;
    }
    self->lost_connection(true);
}

void Session::arm(long seconds, std::string while_text) {
    if (!while_text.empty()) while_ = std::move(while_text);
    evtimer_del(timer_);
    if (seconds <= 0) return;
    timeval tv{seconds, 0};
    evtimer_add(timer_, &tv);
}

// ---- failures ----------------------------------------------------------------------

void Session::connect_failed(int err) {
    std::string why = strprintf("connect to %s: %s", target_.relay().c_str(), strerror(err));
    if (target_.unix_socket) why = strprintf("connect to %s: %s", target_.addr.c_str(), strerror(err));
    log::info("%s", why.c_str());
    fail_session(true, "4.4.1", why);
}

void Session::lost_connection(bool timed_out) {
    std::string why = timed_out
        ? strprintf("conversation with %s timed out while %s", target_.namaddr().c_str(), while_.c_str())
        : strprintf("lost connection with %s while %s", target_.namaddr().c_str(), while_.c_str());
    if (phase_ >= Phase::Transaction && mail_ok_ && !target_.final_server) {
        keep_for_next_server("4.4.2", std::move(why));
        return;
    }
    // Before the transaction another server may do better; after MAIL, at the last
    // server, the recipients that are not done yet are deferred.
    fail_session(phase_ < Phase::Transaction || !mail_ok_, "4.4.2", why);
}

// As Postfix's smtp_bulk_fail() at a server that is not the last: the recipients this
// server has not settled (accepted but not yet delivered, or not answered) wait for the
// next server; those it refused keep their outcome.
void Session::keep_for_next_server(std::string dsn, std::string reason) {
    for (size_t i = 0; i < report_.rcpts.size(); ++i) {
        Outcome& o = report_.rcpts[i];
        if (env_.rcpts[i].done || !o.dsn.empty()) continue;  // settled, or a 4xx of its own
        o = Outcome{dsn, reason, false, true};
    }
    report_.dsn = std::move(dsn);
    report_.reason = std::move(reason);
    finish();
}

std::string Session::said(const smtpclient::Reply& reply, const char* command) const {
    return strprintf("host %s said: %s (in reply to %s command)", target_.namaddr().c_str(),
                     dsn::mask_unsafe(reply.text(), true).c_str(), command);
}

void Session::fail_session(bool try_next, std::string dsn, std::string reason) {
    report_.try_next = try_next;
    report_.dsn = std::move(dsn);
    report_.reason = std::move(reason);
    finish();
}

void Session::finish() {
    if (reported_) return;
    reported_ = true;
    bool raw_socket = !tls_active_ && phase_ != Phase::TlsHandshake;
    phase_ = Phase::Finished;
    if (timer_ != nullptr) evtimer_del(timer_);
    if (bev_ != nullptr && kept_) {
        // The server waits for the next MAIL: the owner takes the connection.
        bufferevent_setcb(bev_, nullptr, nullptr, nullptr, nullptr);
        bufferevent_disable(bev_, EV_READ);
    } else if (bev_ != nullptr) {
        bufferevent_disable(bev_, EV_READ | EV_WRITE);
        // QUIT (if queued) goes out best effort; Postfix skips the QUIT response too.
        if (!raw_socket) bufferevent_flush(bev_, EV_WRITE, BEV_NORMAL);  // encrypt what is queued
        if (raw_socket || tls_active_) daemon::flush_socket(bev_);
        bufferevent_free(bev_);
        bev_ = nullptr;
    }
    // Report from the loop, so that the owner may destroy this session in the callback.
    struct Call {
        std::shared_ptr<bool> alive;
        Session* self;
    };
    auto* call = new Call{alive_, this};
    event_base_once(
        base_, -1, EV_TIMEOUT,
        [](evutil_socket_t, short, void* arg) {
            std::unique_ptr<Call> c(static_cast<Call*>(arg));
            if (!*c->alive) return;
            // Moved out first: the callback may destroy the session.
            Done done = std::move(c->self->done_);
            SessionReport report = std::move(c->self->report_);
            done(std::move(report));
        },
        call, nullptr);
}

void Session::send(const std::string& line) {
    bufferevent_write(bev_, line.data(), line.size());
    bufferevent_write(bev_, "\r\n", 2);
}

void Session::send_quit() {
    if (bev_ != nullptr) send("QUIT");
}

void Session::end_transaction(const smtpclient::Reply& reply) {
    // 421: the server is closing the connection.
    if (reply.code != 421 && bev_ != nullptr) {
        kept_ = report_.kept = true;
    } else {
        send_quit();
    }
    finish();
}

// ---- the conversation ----------------------------------------------------------------

void Session::handle(const smtpclient::Reply& reply) {
    switch (phase_) {
    case Phase::Greeting: on_greeting(reply); break;
    case Phase::Ehlo:
    case Phase::Helo: on_ehlo(reply); break;
    case Phase::StartTls: on_starttls(reply); break;
    case Phase::Auth: on_auth(reply); break;
    case Phase::Transaction: on_command_reply(reply); break;
    case Phase::Body:
    case Phase::EndOfData:
        if (bdat_ && !pending_.empty()) {  // a BDAT chunk's reply
            on_command_reply(reply);
            break;
        }
        if (phase_ == Phase::EndOfData) {
            on_end_of_data(reply);
            break;
        }
        [[fallthrough]];
    default:
        // A reply nobody asked for (while the content is being sent).
        send_quit();
        fail_session(false, "4.4.2", strprintf("host %s sent an unexpected reply: %s", target_.namaddr().c_str(),
                                               dsn::mask_unsafe(reply.text(), true).c_str()));
        break;
    }
}

void Session::on_greeting(const smtpclient::Reply& reply) {
    if (reply.code / 100 != 2) {
        send_quit();
        bool next = reply.cls() == '4' || settings_.skip_5xx_greeting;
        fail_session(next, reply.dsn(), strprintf("host %s refused to talk to me: %s", target_.namaddr().c_str(),
                                                  dsn::mask_unsafe(reply.text(), true).c_str()));
        return;
    }
    phase_ = Phase::Ehlo;
    send(std::string(settings_.ehlo_verb()) + " " + settings_.helo_name);
    arm(settings_.helo_timeout, strprintf("performing the %s handshake", settings_.ehlo_verb()));
}

void Session::on_ehlo(const smtpclient::Reply& reply) {
    if (reply.code / 100 != 2) {
        if (phase_ == Phase::Ehlo && reply.cls() == '5' && !settings_.lmtp) {
            phase_ = Phase::Helo;
            send("HELO " + settings_.helo_name);
            arm(settings_.helo_timeout, "performing the HELO handshake");
            return;
        }
        send_quit();
        const char* verb = phase_ == Phase::Helo ? "HELO" : settings_.ehlo_verb();
        fail_session(true, reply.dsn(), said(reply, verb));
        return;
    }
    features_ = phase_ == Phase::Ehlo ? smtpclient::parse_ehlo(reply) : smtpclient::Features{};
    const tls::ClientPolicy* tls = target_.tls_policy.get();
    if (!tls_active_ && settings_.tls && tls != nullptr && tls->level != tls::ClientLevel::None) {
        if (features_.starttls) {
            phase_ = Phase::StartTls;
            send("STARTTLS");
            arm(settings_.helo_timeout, "receiving the STARTTLS response");
            return;
        }
        if (tls::level_is_mandatory(tls->level)) {
            send_quit();
            fail_session(true, "4.7.4", strprintf("TLS is required, but was not offered by host %s",
                                                  target_.namaddr().c_str()));
            return;
        }
    }
    after_handshake();
}

void Session::on_starttls(const smtpclient::Reply& reply) {
    if (reply.code / 100 != 2) {
        if (tls::level_is_mandatory(target_.tls_policy->level)) {
            send_quit();
            fail_session(true, reply.dsn(), said(reply, "STARTTLS"));
            return;
        }
        after_handshake();  // opportunistic TLS: go on in plaintext
        return;
    }
    start_tls_handshake(false);
}

// After "220 Ready to start TLS", or right after the connect in wrapper mode (where the
// server has not spoken yet: no QUIT in plaintext on failure).
void Session::start_tls_handshake(bool wrapped) {
    SSL* ssl = settings_.tls == nullptr || target_.tls_policy == nullptr ? nullptr
        : settings_.tls->new_ssl(*target_.tls_policy, target_.host, target_.relay());
    bufferevent* filter = ssl == nullptr ? nullptr
        : bufferevent_openssl_filter_new(base_, bev_, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (filter == nullptr) {
        if (ssl != nullptr) SSL_free(ssl);
        if (!wrapped) send_quit();
        fail_session(true, "4.7.5", "Cannot start TLS: handshake failure");
        return;
    }
    bev_ = filter;  // owns the socket bufferevent now
    bufferevent_setcb(bev_, &Session::read_cb, &Session::write_cb, &Session::event_cb, this);
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
    phase_ = Phase::TlsHandshake;
    arm(settings_.starttls_timeout, "performing the TLS handshake");
}

void Session::tls_established() {
    tls_active_ = true;
    SSL* ssl = bufferevent_openssl_get_ssl(bev_);
    tls::PeerVerdict verdict = settings_.tls->check_peer(ssl, *target_.tls_policy, target_.relay());
    // Postfix logs the handshake before it gives up on the certificate.
    if (settings_.tls->log_level() >= 1)
        log::info("%s", tls::established_to_log_line(ssl, target_.relay(), verdict.trust).c_str());
    if (!verdict.ok) {
        send_quit();
        fail_session(true, "4.7.5", "Server certificate not verified");
        return;
    }
    tls_verified_ = std::string_view(verdict.trust) == "Verified";  // smtp_sasl_tls_verified_security_options
    if (settings_.tls_wrappermode) {
        // The server greets over TLS; EHLO follows as on a plaintext connection.
        phase_ = Phase::Greeting;
        arm(settings_.helo_timeout, "receiving the initial server greeting");
        return;
    }
    // RFC 3207: forget what the server said before TLS and ask again.
    phase_ = Phase::Ehlo;
    send(std::string(settings_.ehlo_verb()) + " " + settings_.helo_name);
    arm(settings_.helo_timeout, strprintf("performing the %s handshake", settings_.ehlo_verb()));
}

bool Session::start_auth() {
    if (features_.auth.empty()) return false;
    std::vector<std::string> kept;
    std::string offered;
    for (const auto& mech : features_.auth) {
        offered += (offered.empty() ? "" : " ") + mech;
        if (settings_.sasl_mech_filter.keeps(mech)) kept.push_back(mech);
    }
    // As Postfix, the warning comes with the EHLO reply, credentials or not.
    if (kept.empty())
        log::warn("%s offered no supported AUTH mechanisms: '%s'", target_.relay().c_str(), offered.c_str());
    if (target_.sasl_credentials.empty()) return false;
    if (kept.empty()) {
        send_quit();
        fail_session(true, "4.7.0", strprintf("SASL authentication failed: server %s offered no compatible "
                                              "authentication mechanisms for this type of connection security",
                                              target_.namaddr().c_str()));
        return true;
    }
    if (auth_failure_cached()) return true;
    unsigned options = !tls_active_ ? settings_.sasl_options
                       : tls_verified_ ? settings_.sasl_tls_verified_options : settings_.sasl_tls_options;
    auth_mech_ = smtpclient::choose_sasl_mechanism(kept, options);
    if (auth_mech_.empty()) {
        send_quit();
        fail_session(true, "4.7.0", strprintf("SASL authentication failed; cannot authenticate to server %s: "
                                              "no mechanism available", target_.namaddr().c_str()));
        return true;
    }
    auto cred = smtpclient::split_credentials(target_.sasl_credentials);
    phase_ = Phase::Auth;
    auth_step_ = 0;
    if (auth_mech_ == "PLAIN")
        send("AUTH PLAIN " + base64::encode(std::string(1, '\0') + cred.user + std::string(1, '\0') + cred.password));
    else
        send("AUTH " + auth_mech_);
    arm(settings_.helo_timeout, "performing the SASL authentication");
    return true;
}

// The client's answer to a 334 challenge, or nullopt when it has none.
std::optional<std::string> Session::auth_answer(const smtpclient::Reply& reply) {
    auto cred = smtpclient::split_credentials(target_.sasl_credentials);
    if (auth_mech_ == "LOGIN" && auth_step_ < 2) return base64::encode(auth_step_++ == 0 ? cred.user : cred.password);
    if (auth_mech_ == "CRAM-MD5" && auth_step_++ == 0) {
        std::string_view line = reply.lines.empty() ? "" : std::string_view(reply.lines[0]);
        return smtpclient::cram_md5_response(cred.user, cred.password, line.size() > 4 ? line.substr(4) : "");
    }
    return std::nullopt;
}

void Session::on_auth(const smtpclient::Reply& reply) {
    if (reply.code == 334) {
        if (auto answer = auth_answer(reply)) {
            send(*answer);
            return;
        }
        send("*");  // a challenge we cannot answer: cancel
        send_quit();
        fail_session(true, "4.7.0", strprintf("SASL authentication failed; cannot authenticate to server %s: "
                                              "unexpected %s challenge", target_.namaddr().c_str(),
                                              auth_mech_.c_str()));
        return;
    }
    if (reply.code / 100 == 2) {
        auth_mech_ = "done";
        after_handshake();
        return;
    }
    send_quit();
    if (reply.code == 535 && settings_.sasl_auth_cache) {
        auto cred = smtpclient::split_credentials(target_.sasl_credentials);
        settings_.sasl_auth_cache->store(target_.host, cred.user, cred.password, reply.dsn(), reply.text(),
                                         time(nullptr));
    }
    // smtp_sasl_auth_soft_bounce (default yes): a 5xx refusal defers, another server may do.
    std::string dsn = reply.dsn();
    bool soft = dsn[0] != '5' || settings_.sasl_soft_bounce;
    if (soft && dsn[0] == '5') dsn[0] = '4';
    fail_session(soft, dsn, strprintf("SASL authentication failed; server %s said: %s", target_.namaddr().c_str(),
                                      dsn::mask_unsafe(reply.text(), true).c_str()));
}

// smtp_sasl_auth_cache_name: a 535 for these credentials at this server is remembered;
// no AUTH then, the mail defers (or bounces) with Postfix's "[CACHED]" reason.
bool Session::auth_failure_cached() {
    if (!settings_.sasl_auth_cache) return false;
    auto cred = smtpclient::split_credentials(target_.sasl_credentials);
    auto hit = settings_.sasl_auth_cache->find(target_.host, cred.user, cred.password, time(nullptr));
    if (!hit) return false;
    send_quit();
    std::string dsn = hit->dsn;
    if (settings_.sasl_soft_bounce && dsn[0] == '5') dsn[0] = '4';
    fail_session(dsn[0] != '5', dsn, strprintf("SASL [CACHED] authentication failed; server %s said: %s",
                                               target_.host.c_str(), dsn::mask_unsafe(hit->text, true).c_str()));
    return true;
}

void Session::after_handshake() {
    if (auth_mech_ != "done" && settings_.sasl_enable && start_auth()) return;
    gettimeofday(&report_.conn_setup_done, nullptr);
    if (features_.size_limit > 0 && env_.size > features_.size_limit) {
        send_quit();
        fail_session(false, "5.3.4", strprintf("message size %lu exceeds size limit %lu of server %s", env_.size,
                                               features_.size_limit, target_.namaddr().c_str()));
        return;
    }
    if (env_.smtputf8_required && !features_.smtputf8) {
        send_quit();
        fail_session(false, "5.6.7", strprintf("SMTPUTF8 is required, but was not offered by host %s",
                                               target_.namaddr().c_str()));
        return;
    }
    begin_transaction();
}

std::string Session::mail_command() const {
    std::string cmd = "MAIL FROM:<" + env_.sender + ">";
    if (features_.size) cmd += strprintf(" SIZE=%lu", env_.size);
    if (env_.eightbit && features_.eightbitmime) cmd += " BODY=8BITMIME";
    if (env_.sevenbit && features_.eightbitmime) cmd += " BODY=7BIT";  // as Postfix passes it on
    if (env_.smtputf8 && features_.smtputf8) cmd += " SMTPUTF8";
    if (features_.dsn) {
        if (env_.ret & ipc::mail::kRetFull) cmd += " RET=FULL";
        else if (env_.ret & ipc::mail::kRetHeaders) cmd += " RET=HDRS";
        if (!env_.envid.empty()) cmd += " ENVID=" + dsn::xtext_encode(env_.envid);
    }
    return cmd;
}

std::string Session::rcpt_command(size_t i) const {
    const auto& r = env_.rcpts[i];
    std::string cmd = "RCPT TO:<" + r.address + ">";
    if (features_.dsn) {
        if (r.notify != 0) cmd += " NOTIFY=" + ipc::mail::notify_text(r.notify);
        if (!r.orcpt.empty()) {
            size_t semi = r.orcpt.find(';');
            if (semi != std::string::npos)
                cmd += " ORCPT=" + r.orcpt.substr(0, semi + 1) + dsn::xtext_encode(r.orcpt.substr(semi + 1));
        } else if (!r.orig.empty()) {
            // As Postfix: without an ORCPT from the client, the original recipient.
            cmd += " ORCPT=rfc822;" + dsn::xtext_encode(mailbox::quote_address(r.orig));
        }
    }
    return cmd;
}

void Session::begin_transaction() {
    phase_ = Phase::Transaction;
    prepare_bdat();
    std::deque<Pending> cmds;
    if (reused_) cmds.push_back({Cmd::Rset, 0});
    cmds.push_back({Cmd::Mail, 0});
    for (size_t i = 0; i < env_.rcpts.size(); ++i)
        if (!env_.rcpts[i].done) cmds.push_back({Cmd::Rcpt, i});
    if (!bdat_) cmds.push_back({Cmd::Data, 0});
    if (features_.pipelining) {
        for (const auto& c : cmds) {
            send(c.cmd == Cmd::Rset ? "RSET" : c.cmd == Cmd::Mail ? mail_command()
                 : c.cmd == Cmd::Rcpt ? rcpt_command(c.index) : "DATA");
            pending_.push_back(c);
        }
        // Not behind a RSET: if the cached connection turns out bad, the message goes
        // out again on a new one, so none of it may have been complete on this one.
        if (bdat_ && !reused_ && !pipeline_whole_message()) return;
        if (reused_)
            arm(settings_.rset_timeout, "sending RSET");
        else
            arm(settings_.mail_timeout, "sending MAIL FROM");
        return;
    }
    unsent_ = std::move(cmds);
    send_next_command();
}

void Session::send_next_command() {
    Pending c = unsent_.front();
    unsent_.pop_front();
    pending_.push_back(c);
    switch (c.cmd) {
    case Cmd::Rset:
        send("RSET");
        arm(settings_.rset_timeout, "sending RSET");
        break;
    case Cmd::Mail:
        send(mail_command());
        arm(settings_.mail_timeout, "sending MAIL FROM");
        break;
    case Cmd::Rcpt:
        send(rcpt_command(c.index));
        arm(settings_.rcpt_timeout, "sending RCPT TO");
        break;
    case Cmd::Data:
        send("DATA");
        arm(settings_.data_init_timeout, "sending DATA command");
        break;
    case Cmd::Bdat: break;  // never queued here: send_bdat_chunk() writes the chunks
    }
}

void Session::on_command_reply(const smtpclient::Reply& reply) {
    if (pending_.empty()) return;
    Pending c = pending_.front();
    pending_.pop_front();
    if (c.cmd == Cmd::Rset) {
        if (reply.code / 100 != 2) {
            // The cached connection is no good: the owner tries a fresh one.
            send_quit();
            fail_session(true, reply.dsn(), said(reply, "RSET"));
            return;
        }
        arm(settings_.mail_timeout, "sending MAIL FROM");
    } else if (c.cmd == Cmd::Mail) {
        on_mail_reply(reply);
    } else if (c.cmd == Cmd::Rcpt) {
        if (reply.code / 100 == 2) {
            accepted_.push_back(c.index);
        } else {
            report_.rcpts[c.index] = {reply.dsn(), said(reply, "RCPT TO")};
            report_.rcpts[c.index].try_next = reply.cls() == '4' && !target_.final_server;
        }
        if (bdat_)
            arm_after_rcpt_bdat();
        else
            arm(pending_.size() > 1 || !unsent_.empty() ? settings_.rcpt_timeout : settings_.data_init_timeout,
                pending_.size() > 1 || !unsent_.empty() ? "sending RCPT TO" : "sending DATA command");
    } else if (c.cmd == Cmd::Bdat) {
        on_bdat_reply(reply, c.last);
        return;
    } else {
        on_data_reply(reply);
        return;
    }
    if (reported_) return;
    if (!unsent_.empty()) {
        // Without PIPELINING: no DATA when the server took no recipient.
        if (unsent_.front().cmd == Cmd::Data && accepted_.empty()) {
            send_quit();
            finish();
            return;
        }
        send_next_command();
    } else if (bdat_ && pending_.empty() && phase_ == Phase::Transaction) {
        start_bdat_body();  // every RCPT reply is in
    }
}

void Session::on_mail_reply(const smtpclient::Reply& reply) {
    if (reply.code / 100 == 2) {
        mail_ok_ = true;
        arm(settings_.rcpt_timeout, "sending RCPT TO");
        return;
    }
    send_quit();
    // A 4xx to MAIL may be this server's trouble only: try the next one.
    fail_session(reply.cls() == '4', reply.dsn(), said(reply, "MAIL FROM"));
}

void Session::on_data_reply(const smtpclient::Reply& reply) {
    if (accepted_.empty()) {
        // Pipelined DATA after every recipient was refused: nothing to send.
        send_quit();
        finish();
        return;
    }
    if (reply.code != 354) {
        std::string dsn = reply.code / 100 == 2 ? "5.5.0" : reply.dsn();
        for (size_t i : accepted_) report_.rcpts[i] = {dsn, said(reply, "DATA")};
        send_quit();
        finish();
        return;
    }
    phase_ = Phase::Body;
    content_ = std::make_unique<smtpclient::ContentStream>(
        env_.content_fd, smtpclient::WireOptions{settings_.line_limit, true}, mime_downgrade());
    content_end_ = false;
    send_content_chunk();
}

// Postfix's SMTP_MIME_DOWNGRADE: anything not declared 7BIT may hold 8-bit MIME content,
// which a server without 8BITMIME gets as quoted-printable unless that is turned off.
std::optional<message::ParserLimits> Session::mime_downgrade() const {
    if (settings_.mime_output_conversion && !features_.eightbitmime && !env_.sevenbit)
        return settings_.mime_limits;
    return std::nullopt;
}

// Called again whenever the output buffer has drained: at most one chunk of the message
// is in memory at a time, however large the message.
void Session::send_content_chunk() {
    evbuffer* out = bufferevent_get_output(bev_);
    if (content_end_) {
        // The final dot went out with the last chunk: once it is in the socket buffer,
        // wait for the reply.
        if (evbuffer_get_length(out) > 0) return;
        phase_ = Phase::EndOfData;
        arm(settings_.data_done_timeout, "sending end of data -- message may be sent more than once");
        return;
    }
    if (evbuffer_get_length(out) >= kChunk) return;
    std::string chunk;
    chunk.reserve(kChunk + 1024);
    auto done = content_->fill(chunk, kChunk);
    if (!done) {
        // The server must not take a truncated message: drop the connection before the dot.
        log::warn("%s: %s", settings_.lmtp ? "lmtp" : "smtp", done.error().c_str());
        fail_session(false, "4.3.0", "unreadable mail queue entry");
        return;
    }
    if (content_->mime_nesting_exceeded()) {
        // As Postfix: the conversion cannot be trusted; drop the connection before the dot.
        fail_session(false, "5.6.0", "MIME nesting exceeds safety limit");
        return;
    }
    content_end_ = *done;
    // The dot travels in the same write as the end of the content: a separate small
    // segment would wait for the peer's delayed ACK (Nagle), ~40 ms per message.
    if (content_end_) chunk += ".\r\n";
    bufferevent_write(bev_, chunk.data(), chunk.size());
    arm(settings_.data_xfer_timeout, "sending message body");
}

void Session::on_end_of_data(const smtpclient::Reply& reply) {
    std::string dsn = reply.dsn();
    std::string reason = reply.code / 100 == 2 ? dsn::mask_unsafe(reply.text(), true)
                                               : said(reply, bdat_ ? "BDAT LAST" : "end of DATA");
    if (!settings_.lmtp) {
        for (size_t i : accepted_) report_.rcpts[i] = {dsn, reason, features_.dsn};
        end_transaction(reply);
        return;
    }
    // LMTP: one reply per accepted recipient, in RCPT order.
    report_.rcpts[accepted_[lmtp_replies_++]] = {dsn, reason};
    if (lmtp_replies_ < accepted_.size()) {
        arm(settings_.data_done_timeout, "");
        return;
    }
    end_transaction(reply);
}

}  // namespace postern::smtp
