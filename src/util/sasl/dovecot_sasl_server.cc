#include "util/sasl/dovecot_sasl_server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <utility>

#include "util/base/base64.h"
#include "util/base/strings.h"
#include "util/base/unique_fd.h"
#include "util/log/log.h"
#include "util/sasl/sasl_options.h"

namespace postern::sasl {
namespace dovecot {
namespace {

constexpr unsigned kPrivate = 0x10000;  // a MECH flag: never offered to clients

struct FlagWord {
    std::string_view word;
    unsigned flag;
};
// The MECH line's words and the security options they answer to (Postfix's
// xsasl_dovecot_serv_sec_props); unknown words are ignored.
constexpr FlagWord kFlagWords[] = {
    {"plaintext", kNoPlaintext},       {"active", kNoActive},
    {"dictionary", kNoDictionary},     {"anonymous", kNoAnonymous},
    {"forward-secrecy", kForwardSecrecy}, {"mutual-auth", kMutualAuth},
    {"private", kPrivate},
};
constexpr unsigned kWantedMask = kForwardSecrecy | kMutualAuth;
constexpr unsigned kRefusedMask = kNoPlaintext | kNoActive | kNoDictionary | kNoAnonymous;

// Tab-separated fields, empty ones kept (an empty CONT challenge is a field).
std::vector<std::string_view> fields_of(std::string_view line) {
    std::vector<std::string_view> fields;
    for (;;) {
        size_t tab = line.find('\t');
        fields.push_back(line.substr(0, tab));
        if (tab == std::string_view::npos) return fields;
        line.remove_prefix(tab + 1);
    }
}

// Dovecot's str_tabunescape: \001 followed by 1, t, r or n.
std::string unescape(std::string_view value) {
    std::string out;
    for (size_t i = 0; i < value.size(); ++i) {
        if (value[i] != '\001' || i + 1 == value.size()) {
            out += value[i];
            continue;
        }
        char c = value[++i];
        out += c == '1' ? '\001' : c == 't' ? '\t' : c == 'r' ? '\r' : c == 'n' ? '\n' : c;
    }
    return out;
}

// Postfix's printable(s, '?') for names that go into the log.
std::string printable(std::string s) {
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    return s;
}

bool parse_unsigned(std::string_view text, unsigned long& out) {
    long value = 0;
    if (text.empty() || text[0] == '-' || text[0] == '+' || !parse_long(text, value)) return false;
    out = static_cast<unsigned long>(value);
    return true;
}

}  // namespace

Handshake::Progress Handshake::feed(std::string_view line) {
    std::vector<std::string_view> f = fields_of(line);
    if (f[0] == "VERSION") {
        unsigned long major = 0, minor = 0;
        if (f.size() < 3 || !parse_unsigned(f[1], major) || !parse_unsigned(f[2], minor)) {
            error_ = "SASL: Protocol version error";
            return Progress::Failed;
        }
        if (major != 1) {
            error_ = strprintf("SASL: Protocol version mismatch (%lu vs. 1)", major);
            return Progress::Failed;
        }
    } else if (f[0] == "MECH" && f.size() >= 2) {
        have_mech_ = true;
        Mechanism mech{std::string(f[1]), 0};
        for (size_t i = 2; i < f.size(); ++i)
            for (const FlagWord& w : kFlagWords)
                if (iequals(f[i], w.word)) mech.flags |= w.flag;
        if (!(mech.flags & kPrivate)) mechanisms_.push_back(std::move(mech));
    } else if (f[0] == "SPID") {
        // auth-master and auth-userdb send VERSION and SPID, no MECH (Postfix's test).
        if (!have_mech_) {
            error_ = "SASL: Connected to wrong auth socket (auth-master instead of auth-client)";
            return Progress::Failed;
        }
    } else if (f[0] == "DONE") {
        return Progress::Done;
    }
    return Progress::More;
}

std::string allowed_mechanisms(const std::vector<Mechanism>& mechanisms, unsigned options) {
    unsigned wanted = options & kWantedMask, refused = options & kRefusedMask;
    std::string list;
    for (const Mechanism& m : mechanisms) {
        if ((m.flags & wanted) != wanted || (m.flags & refused) != 0) continue;
        if (!list.empty()) list += ' ';
        list += m.name;
    }
    return list;
}

Reply parse_reply(std::string_view line) {
    std::vector<std::string_view> f = fields_of(line);
    Reply reply;
    if (f[0] == "OK") reply.kind = Reply::Kind::Ok;
    else if (f[0] == "CONT") reply.kind = Reply::Kind::Cont;
    else if (f[0] == "FAIL") reply.kind = Reply::Kind::Fail;
    if (reply.kind == Reply::Kind::Other) return reply;
    if (f.size() < 2 || !parse_unsigned(f[1], reply.id)) {
        reply.kind = Reply::Kind::Other;
        return reply;
    }
    for (size_t i = 2; i < f.size(); ++i) reply.args.emplace_back(f[i]);
    return reply;
}

SaslStep step_of(const Reply& reply) {
    SaslStep step;
    auto backend_error = [&](const char* kind, const char* field) {
        log::warn("missing Dovecot server %s %s field", kind, field);
        step.state = SaslStep::State::Failure;
        step.reason = "Authentication backend error";
        return step;
    };
    if (reply.kind == Reply::Kind::Cont) {
        if (reply.args.empty()) return backend_error("CONT", "reply");
        auto challenge = base64::decode(reply.args[0]);
        if (!challenge) return backend_error("CONT", "reply");
        step.state = SaslStep::State::Continue;
        step.challenge = std::move(*challenge);
        return step;
    }
    for (const std::string& arg : reply.args) {
        if (arg.starts_with("user="))
            step.username = printable(unescape(std::string_view(arg).substr(5)));
        else if (arg.starts_with("reason=") && reply.kind == Reply::Kind::Fail)
            step.reason = printable(unescape(std::string_view(arg).substr(7)));
        else if (arg == "temp" && reply.kind == Reply::Kind::Fail)
            step.temporary = true;
    }
    if (reply.kind == Reply::Kind::Ok) {
        if (step.username.empty()) return backend_error("OK", "username");
        step.state = SaslStep::State::Success;
    } else {
        step.state = SaslStep::State::Failure;
    }
    return step;
}

}  // namespace dovecot

namespace {

constexpr long kAuthTimeout = 10;    // seconds, Postfix's AUTH_TIMEOUT
constexpr size_t kMaxLine = 64 * 1024;
constexpr const char* kCannotConnect = "Can't connect to authentication server";
constexpr const char* kConnectionLost = "Connection lost to authentication server";

// Runs `fn` from the event loop, after the current callback.
void run_soon(event_base* base, std::function<void()> fn) {
    event_base_once(base, -1, EV_TIMEOUT, [](evutil_socket_t, short, void* arg) {
        std::unique_ptr<std::function<void()>> call(static_cast<std::function<void()>*>(arg));
        (*call)();
    }, new std::function<void()>(std::move(fn)), nullptr);
}

SaslStep temporary_failure(const char* reason) {
    SaslStep step;
    step.state = SaslStep::State::Failure;
    step.reason = reason;
    step.temporary = true;
    return step;
}

// The process's one connection to Dovecot's auth service.
class AuthConnection {
public:
    // nullopt: the connection went away before the reply.
    using ReplyFn = std::function<void(std::optional<dovecot::Reply>)>;

    AuthConnection(event_base* base, std::string path) : base_(base), path_(std::move(path)) {}
    ~AuthConnection() { drop(); }

    bool ready() const { return state_ == State::Ready; }
    bool tried() const { return tried_; }
    unsigned generation() const { return generation_; }
    // The mechanisms of the last handshake (kept while reconnecting).
    const std::vector<dovecot::Mechanism>& mechanisms() const { return mechanisms_; }

    // Connects if not connected; `fn(true)` once the handshake is done, `fn(false)` when
    // that failed, from the loop.
    void when_ready(std::function<void(bool)> fn) {
        if (fn) waiters_.push_back(std::move(fn));
        if (state_ == State::Down) connect();
    }

    // The first connection of the process, from its first session: Postfix's blocking
    // connect and handshake (at most kAuthTimeout seconds each). Later ones are
    // asynchronous.
    void connect_first() {
        if (tried_) return;
        tried_ = true;
        sockaddr_storage ss{};
        int len = 0;
        if (std::string error = address(ss, len); !error.empty()) return connect_failed(error);
        UniqueFd fd(socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd) return connect_failed(std::strerror(errno));
        timeval tv{kAuthTimeout, 0};
        setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
            return connect_failed(std::strerror(errno));
        std::string hello = hello_lines();
        if (write(fd.get(), hello.data(), hello.size()) != ssize_t(hello.size())) {
            log::warn("SASL: Couldn't send handshake: %s", std::strerror(errno));
            return;
        }
        state_ = State::Connecting;
        handshake_ = dovecot::Handshake{};
        std::string buffer;
        char chunk[4096];
        while (state_ == State::Connecting) {
            size_t nl = buffer.find('\n');
            if (nl != std::string::npos) {
                std::string line = buffer.substr(0, nl);
                buffer.erase(0, nl + 1);
                if (!on_line(line)) return;
                continue;
            }
            ssize_t n = read(fd.get(), chunk, sizeof chunk);
            if (n <= 0 || buffer.size() > kMaxLine) {
                // Postfix says nothing more when the handshake ends early.
                state_ = State::Down;
                return;
            }
            buffer.append(chunk, size_t(n));
        }
        // The server says nothing after DONE until asked: no bytes are left behind.
        evutil_make_socket_nonblocking(fd.get());
        bev_ = bufferevent_socket_new(base_, fd.release(), BEV_OPT_CLOSE_ON_FREE);
        bufferevent_setcb(bev_, &AuthConnection::on_read, nullptr, &AuthConnection::on_event, this);
        bufferevent_enable(bev_, EV_READ | EV_WRITE);
        arm_timeout();
    }

    unsigned long next_id() { return ++last_id_; }
    void send(unsigned long id, const std::string& line, ReplyFn reply) {
        pending_[id] = std::move(reply);
        bufferevent_write(bev_, line.data(), line.size());
        arm_timeout();
    }
    void cancel(unsigned long id) { pending_.erase(id); }

private:
    enum class State { Down, Connecting, Ready };

    // The socket address of smtpd_sasl_path; an error text when there is none.
    std::string address(sockaddr_storage& ss, int& len) const {
        std::string_view where = path_;
        len = sizeof ss;
        if (where.starts_with("inet:")) {
            std::string hostport(where.substr(5));
            if (evutil_parse_sockaddr_port(hostport.c_str(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
                return strprintf("bad inet address '%s'", hostport.c_str());
            return "";
        }
        if (where.starts_with("unix:")) where.remove_prefix(5);
        auto* sun = reinterpret_cast<sockaddr_un*>(&ss);
        sun->sun_family = AF_UNIX;
        if (where.size() >= sizeof sun->sun_path) return std::strerror(ENAMETOOLONG);
        std::memcpy(sun->sun_path, where.data(), where.size());
        len = sizeof *sun;
        return "";
    }

    static std::string hello_lines() {
        return strprintf("VERSION\t1\t1\nCPID\t%ld\n", static_cast<long>(getpid()));
    }

    void connect() {
        tried_ = true;
        state_ = State::Connecting;
        handshake_ = dovecot::Handshake{};
        sockaddr_storage ss{};
        int len = 0;
        if (std::string error = address(ss, len); !error.empty()) return connect_failed(error);
        bev_ = bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE);
        if (bev_ == nullptr) return connect_failed("cannot create a bufferevent");
        bufferevent_setcb(bev_, &AuthConnection::on_read, nullptr, &AuthConnection::on_event, this);
        if (bufferevent_socket_connect(bev_, reinterpret_cast<sockaddr*>(&ss), len) < 0)
            return connect_failed(std::strerror(errno));
        bufferevent_enable(bev_, EV_READ | EV_WRITE);
        std::string hello = hello_lines();
        bufferevent_write(bev_, hello.data(), hello.size());
        arm_timeout();
    }

    void connect_failed(const std::string& why) {
        log::warn("SASL: Connect to Dovecot auth socket '%s' failed: %s", path_.c_str(), why.c_str());
        drop();
        fail_waiters();
    }

    void fail_handshake(const std::string& warning) {
        if (!warning.empty()) log::warn("%s", warning.c_str());
        drop();
        fail_waiters();
    }

    // The waiters hear from the loop, not from inside when_ready().
    void fail_waiters() {
        auto waiters = std::move(waiters_);
        waiters_.clear();
        for (auto& fn : waiters) run_soon(base_, [fn] { fn(false); });
    }

    // Closes the connection; requests waiting for a reply hear nullopt.
    void drop() {
        if (bev_ != nullptr) bufferevent_free(bev_);
        bev_ = nullptr;
        state_ = State::Down;
        auto pending = std::move(pending_);
        pending_.clear();
        for (auto& entry : pending) {
            ReplyFn fn = std::move(entry.second);  // clang cannot capture a structured binding
            run_soon(base_, [fn] { fn(std::nullopt); });
        }
    }

    // Reads time out only while a reply is due (a handshake or a request).
    void arm_timeout() {
        if (bev_ == nullptr) return;
        timeval tv{kAuthTimeout, 0};
        bool due = state_ == State::Connecting || !pending_.empty();
        bufferevent_set_timeouts(bev_, due ? &tv : nullptr, &tv);
    }

    static void on_read(bufferevent* bev, void* arg) {
        auto* self = static_cast<AuthConnection*>(arg);
        evbuffer* in = bufferevent_get_input(bev);
        for (;;) {
            size_t len = 0;
            char* line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
            if (line == nullptr) break;
            std::string text(line, len);
            free(line);
            if (!self->on_line(text)) return;  // the connection is gone
        }
        if (evbuffer_get_length(in) > kMaxLine) {
            log::warn("SASL: Protocol error");
            self->drop();
        }
    }

    // False when the line ended the connection.
    bool on_line(const std::string& line) {
        if (log::verbose()) log::info("dovecot auth reply: %s", line.c_str());
        if (state_ == State::Connecting) {
            switch (handshake_.feed(line)) {
                case dovecot::Handshake::Progress::More:
                    return true;
                case dovecot::Handshake::Progress::Failed:
                    fail_handshake(handshake_.error());
                    return false;
                case dovecot::Handshake::Progress::Done:
                    state_ = State::Ready;
                    ++generation_;
                    mechanisms_ = handshake_.mechanisms();
                    arm_timeout();
                    auto waiters = std::move(waiters_);
                    waiters_.clear();
                    for (auto& fn : waiters) run_soon(base_, [fn] { fn(true); });
                    return true;
            }
        }
        dovecot::Reply reply = dovecot::parse_reply(line);
        if (reply.kind == dovecot::Reply::Kind::Other) return true;  // Postfix ignores them too
        auto it = pending_.find(reply.id);
        if (it == pending_.end()) return true;  // a session that went away
        ReplyFn fn = std::move(it->second);
        pending_.erase(it);
        arm_timeout();
        fn(reply);
        return true;
    }

    static void on_event(bufferevent*, short what, void* arg) {
        auto* self = static_cast<AuthConnection*>(arg);
        if (what & BEV_EVENT_CONNECTED) return;
        if (self->state_ == State::Connecting && (what & BEV_EVENT_ERROR) && self->handshake_.mechanisms().empty()) {
            int err = EVUTIL_SOCKET_ERROR();
            self->connect_failed(std::strerror(err));
            return;
        }
        if (self->state_ == State::Connecting) {
            self->fail_handshake((what & BEV_EVENT_TIMEOUT) ? "SASL: Timeout waiting for the Dovecot auth handshake" : "");
            return;
        }
        self->drop();
    }

    event_base* base_;
    std::string path_;
    bufferevent* bev_ = nullptr;
    State state_ = State::Down;
    dovecot::Handshake handshake_;
    std::vector<dovecot::Mechanism> mechanisms_;
    std::vector<std::function<void(bool)>> waiters_;
    std::map<unsigned long, ReplyFn> pending_;
    unsigned long last_id_ = 0;
    unsigned generation_ = 0;
    bool tried_ = false;  // connect_first() is for the first attempt only
};

struct SessionSettings {
    std::string service;
    unsigned options = 0;   // the security options in force
    const MechanismFilter* filter = nullptr;
};

class DovecotSaslServer final : public SaslServer {
public:
    DovecotSaslServer(AuthConnection& conn, event_base* base, SessionSettings settings,
                      const SaslConnectionInfo& info)
        : conn_(conn), base_(base), settings_(std::move(settings)), info_(info) {}
    ~DovecotSaslServer() override {
        *alive_ = false;
        if (request_id_ != 0) conn_.cancel(request_id_);
    }

    std::string mechanisms() const override {
        if (!conn_.ready()) conn_.when_ready(nullptr);  // try again for the next session
        return settings_.filter->apply(dovecot::allowed_mechanisms(conn_.mechanisms(), settings_.options));
    }

    void start(std::string_view mechanism, const std::optional<std::string>& initial_response,
               StepDone done) override {
        finish_request();
        done_ = std::move(done);
        std::string name(mechanism);
        if (conn_.ready()) return send_auth(name, initial_response);
        std::weak_ptr<bool> alive = alive_;
        conn_.when_ready([this, alive, name, initial_response](bool ok) {
            if (alive.expired()) return;
            if (!ok) return finish(temporary_failure(kCannotConnect));
            send_auth(name, initial_response);
        });
    }

    void step(std::string_view response, StepDone done) override {
        done_ = std::move(done);
        if (request_id_ == 0 || !conn_.ready() || generation_ != conn_.generation()) {
            finish_request();
            return finish_soon(temporary_failure(kConnectionLost));
        }
        send(strprintf("CONT\t%lu\t%s\n", request_id_, base64::encode(response).c_str()));
    }

private:
    void send_auth(const std::string& mechanism, const std::optional<std::string>& initial) {
        if (!mechanism_listed(mechanisms(), mechanism)) {
            SaslStep refused;
            refused.reason = "Invalid authentication mechanism";
            return finish_soon(refused);
        }
        request_id_ = conn_.next_id();
        generation_ = conn_.generation();
        std::string line = strprintf("AUTH\t%lu\t%s\tservice=%s\tnologin\tlip=%s\trip=%s\tlport=%s\trport=%s",
                                     request_id_, mechanism.c_str(), settings_.service.c_str(),
                                     info_.local_address.c_str(), info_.remote_address.c_str(),
                                     info_.local_port.c_str(), info_.remote_port.c_str());
        if (info_.tls_active) line += "\tsecured";
        if (info_.client_cert_verified) line += "\tvalid-client-cert";
        if (initial) line += "\tresp=" + base64::encode(*initial);
        send(line + "\n");
    }

    void send(const std::string& line) {
        std::weak_ptr<bool> alive = alive_;
        conn_.send(request_id_, line, [this, alive](std::optional<dovecot::Reply> reply) {
            if (alive.expired()) return;
            if (!reply) {
                request_id_ = 0;
                return finish(temporary_failure(kConnectionLost));
            }
            SaslStep step = dovecot::step_of(*reply);
            if (step.state != SaslStep::State::Continue) request_id_ = 0;
            finish(std::move(step));
        });
    }

    void finish_request() {
        if (request_id_ != 0) conn_.cancel(request_id_);
        request_id_ = 0;
    }

    void finish(SaslStep step) {
        StepDone done = std::move(done_);
        done_ = nullptr;
        if (done) done(std::move(step));
    }

    void finish_soon(SaslStep step) {
        std::weak_ptr<bool> alive = alive_;
        run_soon(base_, [this, alive, step] {
            if (!alive.expired()) finish(step);
        });
    }

    AuthConnection& conn_;
    event_base* base_;
    SessionSettings settings_;
    SaslConnectionInfo info_;
    StepDone done_;
    unsigned long request_id_ = 0;  // the exchange in progress
    unsigned generation_ = 0;       // of the connection it runs on
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

class DovecotSaslServerFactory final : public SaslServerFactory {
public:
    DovecotSaslServerFactory(const config::Config& config, event_base* base)
        : base_(base),
          conn_(base, config.get("smtpd_sasl_path")),
          service_(config.get("smtpd_sasl_service")),
          plain_options_(security_options(config, "smtpd_sasl_security_options")),
          tls_options_(security_options(config, "smtpd_sasl_tls_security_options")) {
        auto filter = MechanismFilter::open(config.get_list("smtpd_sasl_mechanism_filter"));
        if (!filter) log::fatal("smtpd_sasl_mechanism_filter: %s", filter.error().c_str());
        filter_ = std::move(*filter);
    }

    Result<std::unique_ptr<SaslServer>> new_server(const SaslConnectionInfo& info) override {
        conn_.connect_first();
        SessionSettings settings{service_, info.tls_active ? tls_options_ : plain_options_, &filter_};
        return std::unique_ptr<SaslServer>(
            std::make_unique<DovecotSaslServer>(conn_, base_, std::move(settings), info));
    }

private:
    static unsigned security_options(const config::Config& config, std::string_view name) {
        Result<unsigned> flags = parse_security_options(config.get_list(name), config.get(name));
        if (!flags) log::fatal("%s", flags.error().c_str());
        return *flags;
    }

    event_base* base_;
    AuthConnection conn_;
    std::string service_;
    unsigned plain_options_, tls_options_;
    MechanismFilter filter_;
};

}  // namespace

std::unique_ptr<SaslServerFactory> create_dovecot_factory(const config::Config& config, event_base* base) {
    return std::make_unique<DovecotSaslServerFactory>(config, base);
}

}  // namespace postern::sasl
