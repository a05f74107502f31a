#include "util/daemon/server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "util/daemon/master_proto.h"
#include "util/daemon/privileges.h"
#include "util/log/log.h"
#include "util/log/log_config.h"
#include "util/tls/tls_server.h"

namespace postern::daemon {

struct EventFree {
    void operator()(event* e) const { event_free(e); }
};
using EventPtr = std::unique_ptr<event, EventFree>;

// The running daemon: listeners, clients, timers and the status reports to master.
class Server {
public:
    Server(ServerMode mode, const DaemonHooks& hooks, config::Config& config, const DaemonArgs& args,
           bool under_master);
    ~Server();
    int run();

    ServerContext& context() { return ctx_; }
    event_base* base() { return base_; }
    void add_timer(long seconds, bool repeat, std::function<void()> fn);
    // Runs a connection's input handler from the loop (after resume_input).
    void schedule_input(uint64_t id);
    void request_exit() {
        exiting_ = true;
        event_base_loopbreak(base_);
    }

    static void read_cb(bufferevent* bev, void* arg);
    static void write_cb(bufferevent* bev, void* arg);
    static void event_cb(bufferevent* bev, short what, void* arg);
    static void log_tls_failure(const Connection& c, short what);

private:
    struct Timer {
        EventPtr ev;
        std::function<void()> fn;
        bool repeat;
    };

    void setup_listeners();
    void setup_signals();
    void accept_ready(int fd);
    void trigger_ready(int fd);
    void add_client(int fd);
    void handle_input(Connection& c);
    void serve_records(Connection& c);
    static void write_reply(Connection& c, std::string data);
    void after_callback(Connection& c);
    void drop(Connection& c);
    void report(Availability a);
    void update_idle_timer();
    void stop_accepting();
    void resume_accepting();

    ServerMode mode_;
    const DaemonHooks& hooks_;
    ServerContext ctx_;
    event_base* base_;
    std::vector<EventPtr> listen_events_;
    std::vector<std::unique_ptr<Timer>> timers_;
    EventPtr idle_timer_, master_watch_, sigterm_, sighup_;
    std::map<uint64_t, std::unique_ptr<Connection>> clients_;
    uint64_t next_id_ = 1;
    long use_count_ = 0;
    bool under_master_ = false;
    unsigned generation_ = 0;
    bool accepting_ = true;
    bool draining_ = false;  // SIGHUP or max_use reached: finish the clients, then exit
    bool exiting_ = false;
};

void flush_socket(bufferevent* bev) {
    bufferevent* sock = bufferevent_get_underlying(bev);
    if (sock == nullptr) sock = bev;
    // The bufferevent keeps the front of its output frozen; take it back.
    evbuffer* out = bufferevent_get_output(sock);
    if (evbuffer_get_length(out) == 0) return;
    evbuffer_unfreeze(out, 1);
    evbuffer_write(out, bufferevent_getfd(sock));
}

namespace {

// "unknown[addr]", Postfix's name for a client whose name is not known.
std::string unknown_peer(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    char addr[INET6_ADDRSTRLEN] = "";
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, addr, sizeof addr);
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, addr, sizeof addr);
    }
    return std::string("unknown[") + (addr[0] != '\0' ? addr : "unknown") + "]";
}

}  // namespace

// A handshake that failed or a TLS stream that broke, in Postfix's words. libevent has
// taken OpenSSL's errors off the queue by now, so file and line are not known.
void Server::log_tls_failure(const Connection& c, short what) {
    std::string name = c.peer_name_.empty() ? unknown_peer(c.fd()) : c.peer_name_;
    if (!c.tls_handshake_done_ && (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)))
        log::info("SSL_accept error from %s: %s", name.c_str(), (what & BEV_EVENT_EOF) ? "lost connection" : "-1");
    for (unsigned long e; (e = bufferevent_get_openssl_error(c.bev_)) != 0;) {
        // libevent also files SSL_get_error()'s code (lib 0) among OpenSSL's errors.
        if (ERR_GET_LIB(e) == 0) continue;
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        log::warn("TLS library problem: %s:", buf);
    }
    ERR_clear_error();
}

// --- ServerContext and Connection -------------------------------------------------

event_base* ServerContext::base() { return server_.base(); }
void ServerContext::add_timer(long seconds, bool repeat, std::function<void()> fn) {
    server_.add_timer(seconds, repeat, std::move(fn));
}
void ServerContext::request_exit() { server_.request_exit(); }

Connection::Connection(Server& server, uint64_t id, bufferevent* bev)
    : server_(server), id_(id), bev_(bev), fd_(static_cast<int>(bufferevent_getfd(bev))) {}

Connection::~Connection() {
    if (bev_ != nullptr) bufferevent_free(bev_);
}

int Connection::fd() const { return fd_; }
ServerContext& Connection::context() { return server_.context(); }

void Connection::write(std::string_view data) {
    if (!closing_ && !data.empty()) bufferevent_write(bev_, data.data(), data.size());
}

void Connection::close_after_write() { closing_ = true; }

void Connection::pause_input() {
    paused_ = true;
    bufferevent_disable(bev_, EV_READ);
}

void Connection::resume_input() {
    if (!paused_) return;
    paused_ = false;
    bufferevent_enable(bev_, EV_READ);
    // Input that arrived before the pause is handled from the loop, not from inside the
    // caller (which is usually the connection's own handler).
    if (!input_.empty()) server_.schedule_input(id_);
}

void Connection::set_timeout(long seconds) {
    timeout_ = seconds;
    timeval tv{seconds, 0};
    bufferevent_set_timeouts(bev_, &tv, &tv);
}

Status Connection::start_tls(SSL* ssl) {
    if (tls_) {
        SSL_free(ssl);
        return make_error("TLS already active");
    }
    // Plaintext the client sent after the command that started TLS must not be read as if
    // it came through TLS (RFC 3207 section 6): drop what we hold and what libevent holds.
    input_.clear();
    evbuffer* pending = bufferevent_get_input(bev_);
    evbuffer_drain(pending, evbuffer_get_length(pending));
    // The filter reads and writes through the socket bufferevent, whose output (the
    // "220 Ready to start TLS") still goes out in plaintext first. Timeouts move to the
    // filter: the socket bufferevent's own would fire unseen.
    bufferevent_set_timeouts(bev_, nullptr, nullptr);
    // Deferred callbacks: the filter would otherwise run write_cb from inside write() (it
    // encrypts at once), and a session that wrote its last reply would be dropped while
    // still on the stack.
    bufferevent* filter = bufferevent_openssl_filter_new(server_.base(), bev_, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (filter == nullptr) {
        SSL_free(ssl);
        return make_error("cannot set up TLS on the connection");
    }
    bev_ = filter;
    tls_ = true;
    // A client that closes without close_notify ends the session as an EOF, not an error.
    bufferevent_openssl_set_allow_dirty_shutdown(filter, 1);
    bufferevent_setcb(filter, &Server::read_cb, &Server::write_cb, &Server::event_cb, this);
    timeval tv{timeout_, 0};
    bufferevent_set_timeouts(filter, &tv, &tv);
    bufferevent_enable(filter, paused_ ? EV_WRITE : EV_READ | EV_WRITE);
    return {};
}

SSL* Connection::ssl() const { return tls_ ? bufferevent_openssl_get_ssl(bev_) : nullptr; }

// --- Server setup -----------------------------------------------------------------

Server::Server(ServerMode mode, const DaemonHooks& hooks, config::Config& config,
               const DaemonArgs& args, bool under_master)
    : mode_(mode), hooks_(hooks), ctx_(*this, config, args), base_(event_base_new()) {
    if (base_ == nullptr) log::fatal("event_base_new failed");
    ctx_.max_idle = config.get_time("max_idle");
    ctx_.max_use = config.get_int("max_use");
    under_master_ = under_master;
    if (const char* gen = getenv(kGenerationEnv)) generation_ = static_cast<unsigned>(strtoul(gen, nullptr, 0));
}

Server::~Server() {
    clients_.clear();
    listen_events_.clear();
    timers_.clear();
    idle_timer_.reset();
    master_watch_.reset();
    sigterm_.reset();
    sighup_.reset();
    event_base_free(base_);
}

void Server::add_timer(long seconds, bool repeat, std::function<void()> fn) {
    auto t = std::make_unique<Timer>();
    t->fn = std::move(fn);
    t->repeat = repeat;
    Timer* raw = t.get();
    raw->ev.reset(event_new(base_, -1, repeat ? EV_PERSIST : 0,
                            [](evutil_socket_t, short, void* arg) { static_cast<Timer*>(arg)->fn(); },
                            raw));
    timeval tv{seconds, 0};
    event_add(raw->ev.get(), &tv);
    timers_.push_back(std::move(t));
}

void Server::setup_listeners() {
    const std::string& type = ctx_.args().transport;
    bool stream = type == "unix" || type == "inet" || type == "pass";
    for (int i = 0; i < ctx_.args().listen_count; ++i) {
        int fd = kListenFd + i;
        if (fcntl(fd, F_GETFD) == -1) log::fatal("no listening descriptor %d from master (is this daemon run by master?)", fd);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        auto cb = [](evutil_socket_t s, short, void* arg) {
            Server* self = static_cast<Server*>(arg);
            if (self->mode_ == ServerMode::Trigger && !(self->ctx_.args().transport == "unix" ||
                                                        self->ctx_.args().transport == "inet"))
                self->trigger_ready(static_cast<int>(s));
            else
                self->accept_ready(static_cast<int>(s));
        };
        if (!stream && mode_ != ServerMode::Trigger)
            log::fatal("transport type %s needs a trigger server", type.c_str());
        listen_events_.emplace_back(event_new(base_, fd, EV_READ | EV_PERSIST, cb, this));
        event_add(listen_events_.back().get(), nullptr);
    }
}

void Server::setup_signals() {
    signal(SIGPIPE, SIG_IGN);
    sigterm_.reset(evsignal_new(
        base_, SIGTERM, [](evutil_socket_t, short, void* arg) { static_cast<Server*>(arg)->request_exit(); },
        this));
    event_add(sigterm_.get(), nullptr);
    sighup_.reset(evsignal_new(
        base_, SIGHUP,
        [](evutil_socket_t, short, void* arg) {
            Server* self = static_cast<Server*>(arg);
            self->draining_ = true;
            self->stop_accepting();
            if (self->clients_.empty()) self->request_exit();
        },
        this));
    event_add(sighup_.get(), nullptr);
    if (under_master_) {
        // The status pipe's write end turns readable (error) when master's read end closes:
        // master is gone, so leave as Postfix daemons do.
        master_watch_.reset(event_new(
            base_, kStatusFd, EV_READ,
            [](evutil_socket_t, short, void* arg) {
                log::debug("master disconnect -- exiting");
                static_cast<Server*>(arg)->request_exit();
            },
            this));
        event_add(master_watch_.get(), nullptr);
    }
}

int Server::run() {
    setup_listeners();
    setup_signals();
    if (hooks_.post_jail_init) hooks_.post_jail_init(ctx_);
    report(Availability::Available);
    update_idle_timer();
    while (!exiting_) {
        if (hooks_.on_pre_accept) hooks_.on_pre_accept(ctx_);
        if (event_base_loop(base_, EVLOOP_ONCE) < 0) break;
    }
    // Replies already made still go out (best effort: one write per client).
    for (auto& [id, c] : clients_) flush_socket(c->bev_);
    if (hooks_.on_exit) hooks_.on_exit(ctx_);
    return 0;
}

// --- clients ------------------------------------------------------------------------

void Server::report(Availability a) {
    if (under_master_ && !notify_master(kStatusFd, generation_, a)) {
        log::debug("master disconnect -- exiting");
        request_exit();
    }
}

void Server::update_idle_timer() {
    if (!clients_.empty() || ctx_.max_idle <= 0) {
        idle_timer_.reset();
        return;
    }
    idle_timer_.reset(event_new(
        base_, -1, 0,
        [](evutil_socket_t, short, void* arg) {
            log::debug("idle timeout -- exiting");
            static_cast<Server*>(arg)->request_exit();
        },
        this));
    timeval tv{ctx_.max_idle, 0};
    event_add(idle_timer_.get(), &tv);
}

void Server::stop_accepting() {
    if (!accepting_) return;
    accepting_ = false;
    for (auto& e : listen_events_) event_del(e.get());
}

void Server::resume_accepting() {
    if (accepting_ || draining_) return;
    accepting_ = true;
    for (auto& e : listen_events_) event_add(e.get(), nullptr);
}

void Server::accept_ready(int listen_fd) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        // Another process of the service took it, or a transient error.
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            log::warn("accept connection: %s", std::strerror(errno));
        return;
    }
    report(Availability::Taken);
    add_client(fd);
    if (mode_ == ServerMode::Multi) {
        // A multi server can take more clients at once, so it is available again at once.
        // Its uses are counted as clients leave, and it keeps accepting until it has
        // none left after max_use (Postfix's multi_server): its clients (cleanup, qmgr,
        // smtpd for trivial-rewrite) may never leave, and one that stopped accepting
        // while master still counted it available would leave new clients hanging.
        report(Availability::Available);
        return;
    }
    ++use_count_;
    if (ctx_.max_use > 0 && use_count_ >= ctx_.max_use) draining_ = true;
    stop_accepting();
}

void Server::trigger_ready(int fd) {
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return;
    report(Availability::Taken);
    if (hooks_.on_trigger) hooks_.on_trigger(ctx_, std::string_view(buf, static_cast<size_t>(n)));
    ++use_count_;
    report(Availability::Available);
    if (ctx_.max_use > 0 && use_count_ >= ctx_.max_use) request_exit();
    update_idle_timer();
}

void Server::add_client(int fd) {
    bufferevent* bev = bufferevent_socket_new(base_, fd, BEV_OPT_CLOSE_ON_FREE);
    if (bev == nullptr) {
        ::close(fd);
        return;
    }
    uint64_t id = next_id_++;
    auto conn = std::make_unique<Connection>(*this, id, bev);
    Connection& c = *conn;
    clients_.emplace(id, std::move(conn));
    if (hooks_.on_request) c.decoder_ = std::make_unique<ipc::AttrDecoder>();
    bufferevent_setcb(bev, &Server::read_cb, &Server::write_cb, &Server::event_cb, &c);
    c.set_timeout(hooks_.read_timeout > 0 ? hooks_.read_timeout : ctx_.config().get_time("ipc_timeout"));
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    update_idle_timer();
    if (hooks_.on_connection) hooks_.on_connection(c);
    after_callback(c);
}

void Server::read_cb(bufferevent* bev, void* arg) {
    auto& c = *static_cast<Connection*>(arg);
    evbuffer* in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    size_t start = c.input_.size();
    c.input_.resize(start + len);
    evbuffer_remove(in, c.input_.data() + start, len);
    c.server_.handle_input(c);
}

void Server::write_cb(bufferevent*, void* arg) {
    auto& c = *static_cast<Connection*>(arg);
    c.server_.after_callback(c);
}

void Server::event_cb(bufferevent*, short what, void* arg) {
    auto& c = *static_cast<Connection*>(arg);
    Server& self = c.server_;
    if (what & BEV_EVENT_TIMEOUT) {
        log::warn("timeout on %s client fd %d", self.ctx_.args().service_name.c_str(), c.fd());
        self.drop(c);
        return;
    }
    if ((what & BEV_EVENT_CONNECTED) && c.tls_) {
        // The TLS handshake that start_tls began is complete.
        c.tls_handshake_done_ = true;
        if (self.hooks_.on_tls_handshake) self.hooks_.on_tls_handshake(c);
        self.after_callback(c);
        return;
    }
    if (c.tls_) self.log_tls_failure(c, what);
    if (what & BEV_EVENT_EOF) {
        c.eof_ = true;
        if (self.mode_ == ServerMode::Trigger && self.hooks_.on_trigger)
            self.hooks_.on_trigger(self.ctx_, c.input_);
        else if (self.hooks_.on_request && c.decoder_->mid_record())
            log::warn("premature end-of-input on %s client", self.ctx_.args().service_name.c_str());
    }
    self.drop(c);
}

void Server::schedule_input(uint64_t id) {
    struct Pending {
        Server* self;
        uint64_t id;
    };
    auto* p = new Pending{this, id};
    event_base_once(
        base_, -1, EV_TIMEOUT,
        [](evutil_socket_t, short, void* arg) {
            std::unique_ptr<Pending> p(static_cast<Pending*>(arg));
            auto it = p->self->clients_.find(p->id);
            if (it != p->self->clients_.end() && !it->second->paused_) p->self->handle_input(*it->second);
        },
        p, nullptr);
}

void Server::handle_input(Connection& c) {
    if (c.paused_) return;
    if (c.input_.size() > hooks_.max_input) {
        log::warn("%s client sent more than %zu bytes -- disconnecting",
                  ctx_.args().service_name.c_str(), hooks_.max_input);
        drop(c);
        return;
    }
    if (mode_ == ServerMode::Trigger) return;  // the request ends at EOF
    if (hooks_.on_request) {
        serve_records(c);
    } else if (hooks_.on_data) {
        hooks_.on_data(c);
    }
    after_callback(c);
}

void Server::serve_records(Connection& c) {
    Status st = c.decoder_->feed(c.input_);
    c.input_.clear();
    if (!st) {
        log::warn("%s: malformed request: %s", ctx_.args().service_name.c_str(), st.error().c_str());
        c.closing_ = true;
        return;
    }
    while (auto rec = c.decoder_->next()) {
        // A request the client sent ahead is not begun once it has hung up (qmgr died):
        // nobody would learn the outcome, and the queue would have it done again.
        pollfd hup{c.fd_, 0, 0};
        if (::poll(&hup, 1, 0) == 1 && (hup.revents & POLLHUP)) {
            c.closing_ = true;
            break;
        }
        // An empty reply means the hook answered nothing (it usually closes the client).
        ipc::AttrRecord reply = hooks_.on_request(c, *rec);
        if (!reply.empty()) write_reply(c, ipc::encode_record(reply));
        if (c.closing_) break;
    }
}

// A reply goes out before the next request is served: a client that sends its next
// request while this one runs (qmgr to a delivery agent) gets each reply as soon as it
// is made, not after the next delivery. What the socket does not take now is left to
// the bufferevent.
void Server::write_reply(Connection& c, std::string data) {
    std::string_view rest = data;
    if (!c.closing_ && !c.tls_ && evbuffer_get_length(bufferevent_get_output(c.bev_)) == 0) {
        ssize_t n = ::send(c.fd_, rest.data(), rest.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) rest.remove_prefix(static_cast<size_t>(n));
    }
    c.write(rest);
}

// Closes a connection that asked for it once its output has gone.
void Server::after_callback(Connection& c) {
    if (!c.closing_) return;
    if (evbuffer_get_length(bufferevent_get_output(c.bev_)) == 0) drop(c);
}

void Server::drop(Connection& c) {
    if (hooks_.on_disconnect) hooks_.on_disconnect(c);
    if (c.tls_handshake_done_ && !c.eof_) {
        // The last reply (221, 421) and close_notify are encrypted into the socket
        // bufferevent by now, but it is freed with the connection: send them first.
        SSL_shutdown(bufferevent_openssl_get_ssl(c.bev_));
        ERR_clear_error();
        flush_socket(c.bev_);
    }
    clients_.erase(c.id_);  // destroys c and frees its bufferevent
    if (mode_ != ServerMode::Multi) report(Availability::Available);
    if (mode_ == ServerMode::Multi && ++use_count_ >= ctx_.max_use && ctx_.max_use > 0) draining_ = true;
    if (clients_.empty() && draining_) {
        request_exit();
        return;
    }
    if (mode_ != ServerMode::Multi) resume_accepting();
    update_idle_timer();
}

// --- entry points -----------------------------------------------------------------

namespace {

int run_server(ServerMode mode, int argc, char** argv, const DaemonHooks& hooks) {
    std::vector<std::string> av(argv, argv + argc);
    std::string_view prog = argc > 0 ? argv[0] : "daemon";
    if (size_t slash = prog.rfind('/'); slash != std::string_view::npos) prog.remove_prefix(slash + 1);
    log::init(prog);
    log::Settings base = log::settings();
    base.to_stderr = isatty(2);  // daemons log to the maillog; a terminal gets a copy
    base.maillog_stdout_ok = true;
    base.maillog_required = true;
    log::configure(base);

    auto args = parse_daemon_args(av);
    if (!args) log::fatal("%s", args.error().c_str());
    // main.cf's warnings go to the maillog, as each Postfix daemon logs them there.
    auto loaded = config::Config::read(config::config_directory(nullptr), prog);
    if (!loaded) log::fatal("%s", loaded.error().c_str());
    config::Config config = std::move(*loaded);
    for (const auto& o : args->overrides) config.set_override(o.name, o.value);
    log::configure_from(config);
    for (const std::string& w : config.warnings()) log::warn("%s", w.c_str());
    log::set_verbose(args->verbose);
    return run_daemon(mode, hooks, config, *args);
}

}  // namespace

int run_daemon(ServerMode mode, const DaemonHooks& hooks, config::Config& config, const DaemonArgs& args) {
    std::string queue_dir = config.get("queue_directory");
    if (chdir(queue_dir.c_str()) < 0) log::fatal("chdir(\"%s\"): %s", queue_dir.c_str(), std::strerror(errno));
    // Checked before libevent opens descriptors of its own, which could take number 5.
    bool under_master = !args.stdin_mode && fcntl(kStatusFd, F_GETFD) != -1;
    Server server(mode, hooks, config, args, under_master);
    // The maillog is root's (0600): open it while we still may, as postlogd does.
    if (Status st = log::open_maillog_now(); !st) log::fatal("%s", st.error().c_str());
    if (hooks.pre_jail_init) hooks.pre_jail_init(server.context());
    if (args.chroot) {
        if (Status st = enter_jail(queue_dir); !st) log::fatal("%s", st.error().c_str());
    }
    if (args.unprivileged && geteuid() == 0) {
        auto owner = lookup_account(config.get("mail_owner"), "mail_owner");
        if (!owner) log::fatal("file %s: parameter mail_owner: %s", config.main_cf_path().c_str(), owner.error().c_str());
        if (Status st = become_user(*owner); !st) log::fatal("%s", st.error().c_str());
    }
    return server.run();
}

int run_multi_server(int argc, char** argv, const DaemonHooks& hooks) {
    return run_server(ServerMode::Multi, argc, argv, hooks);
}
int run_single_server(int argc, char** argv, const DaemonHooks& hooks) {
    return run_server(ServerMode::Single, argc, argv, hooks);
}
int run_trigger_server(int argc, char** argv, const DaemonHooks& hooks) {
    return run_server(ServerMode::Trigger, argc, argv, hooks);
}

}  // namespace postern::daemon
