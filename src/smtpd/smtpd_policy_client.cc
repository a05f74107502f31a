#include "smtpd/smtpd_policy_client.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "util/base/strings.h"
#include "util/dns/resolver.h"
#include "util/log/log.h"

namespace postern::smtpd {
namespace {

constexpr size_t kMaxReply = 64 * 1024;

long now_seconds() {
    using namespace std::chrono;
    return duration_cast<seconds>(steady_clock::now().time_since_epoch()).count();
}

// Postfix's %m: errno 0 reads "Application error".
std::string error_text(int err) { return err == 0 ? "Application error" : std::strerror(err); }

}  // namespace

std::string encode_policy_request(const PolicyAttrs& attrs) {
    std::string out;
    for (const auto& [name, value] : attrs) {
        out += name;
        out += '=';
        for (char c : value) out += (c == '\n' || c == '\r') ? ' ' : c;
        out += '\n';
    }
    out += '\n';
    return out;
}

PolicyReplyParser::State PolicyReplyParser::feed(std::string_view data) {
    for (char c : data) {
        if (++bytes_ > kMaxReply) return State::Error;
        if (c != '\n') {
            line_ += c;
            continue;
        }
        if (!line_.empty() && line_.back() == '\r') line_.pop_back();
        if (line_.empty()) return State::Done;
        size_t eq = line_.find('=');
        if (eq == std::string::npos) return State::Error;
        attrs_.emplace_back(line_.substr(0, eq), line_.substr(eq + 1));
        line_.clear();
    }
    return State::More;
}

Result<std::unique_ptr<PolicyClient>> PolicyClient::create(event_base* base, std::string_view server,
                                                           PolicyLimits limits, const std::string& queue_directory,
                                                           dns::Resolver* dns) {
    std::unique_ptr<PolicyClient> c(new PolicyClient(base, limits));
    c->dns_ = dns;
    size_t colon = server.find(':');
    std::string type = colon == std::string_view::npos ? "" : lowercase(server.substr(0, colon));
    std::string rest(colon == std::string_view::npos ? server : server.substr(colon + 1));
    if (type == "unix" || type == "local") {
        c->is_unix_ = true;
        c->name_ = rest;
        c->path_ = !rest.empty() && rest.front() == '/' ? rest : queue_directory + "/" + rest;
        if (rest.empty() || c->path_.size() >= sizeof(sockaddr_un{}.sun_path))
            return make_error("bad policy service address: " + std::string(server));
    } else if (type == "inet") {
        c->name_ = rest;
        size_t port_at = rest.rfind(':');
        if (port_at == std::string::npos || port_at == 0 || port_at + 1 == rest.size())
            return make_error("bad policy service address: " + std::string(server));
        c->host_ = rest.substr(0, port_at);
        c->port_ = rest.substr(port_at + 1);
        if (c->host_.front() == '[' && c->host_.back() == ']') c->host_ = c->host_.substr(1, c->host_.size() - 2);
    } else {
        return make_error("unsupported policy service type: " + std::string(server));
    }
    c->timer_ = evtimer_new(base, &PolicyClient::timer_cb, c.get());
    return c;
}

PolicyClient::~PolicyClient() {
    *alive_ = false;
    close_connection();
    if (timer_ != nullptr) event_free(timer_);
}

void PolicyClient::request(const PolicyAttrs& attrs, std::weak_ptr<void> owner, Done done) {
    queue_.push_back(Pending{encode_policy_request(attrs), std::move(owner), std::move(done)});
    pump();
}

// Starts the next request when the connection is free.
void PolicyClient::pump() {
    if (state_ != State::Closed && state_ != State::Ready) return;
    while (!queue_.empty() && queue_.front().owner.expired()) queue_.pop_front();
    if (queue_.empty()) {
        if (state_ == State::Ready) arm_timer(limits_.max_idle);
        return;
    }
    if (state_ == State::Ready && now_seconds() - connected_at_ >= limits_.max_ttl) {
        close_connection();
        state_ = State::Closed;
    }
    if (state_ == State::Ready)
        send_front();
    else
        start_connect();
}

void PolicyClient::start_connect() {
    if (is_unix_) return connect_to(path_);
    in6_addr probe;
    if (inet_pton(AF_INET, host_.c_str(), &probe) == 1 || inet_pton(AF_INET6, host_.c_str(), &probe) == 1)
        return connect_to(host_);
    if (dns_ == nullptr) {
        state_ = State::Connecting;
        return failed(EHOSTUNREACH, true);
    }
    state_ = State::Resolving;
    std::weak_ptr<bool> alive = alive_;
    dns_->host_by_name(host_, false, [this, alive](const dns::Answer& a) {
        if (alive.expired()) return;
        if (a.ok() && !a.records.empty()) return connect_to(a.records.front());
        failed(EHOSTUNREACH, true);
    });
}

void PolicyClient::connect_to(const std::string& address) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (is_unix_) {
        auto* sun = reinterpret_cast<sockaddr_un*>(&ss);
        sun->sun_family = AF_UNIX;
        std::memcpy(sun->sun_path, address.c_str(), address.size() + 1);
        len = sizeof(sockaddr_un);
    } else {
        int port = 0;
        if (long n = 0; parse_long(port_, n) && n > 0 && n < 65536) {
            port = static_cast<int>(n);
        } else if (servent* se = getservbyname(port_.c_str(), "tcp")) {
            port = ntohs(static_cast<uint16_t>(se->s_port));
        }
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
        if (port != 0 && inet_pton(AF_INET, address.c_str(), &sin->sin_addr) == 1) {
            sin->sin_family = AF_INET;
            sin->sin_port = htons(static_cast<uint16_t>(port));
            len = sizeof(sockaddr_in);
        } else if (port != 0 && inet_pton(AF_INET6, address.c_str(), &sin6->sin6_addr) == 1) {
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons(static_cast<uint16_t>(port));
            len = sizeof(sockaddr_in6);
        } else {
            state_ = State::Connecting;
            return failed(EINVAL, true);
        }
    }
    state_ = State::Connecting;
    UniqueFd fd(socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return failed(errno, true);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0) return connected(std::move(fd));
    if (errno != EINPROGRESS) return failed(errno, true);
    connecting_fd_ = std::move(fd);
    connect_ev_ = event_new(base_, connecting_fd_.get(), EV_WRITE, &PolicyClient::connect_cb, this);
    timeval tv{limits_.timeout, 0};
    event_add(connect_ev_, &tv);
}

void PolicyClient::connect_cb(int, short what, void* arg) {
    auto* self = static_cast<PolicyClient*>(arg);
    event_free(self->connect_ev_);
    self->connect_ev_ = nullptr;
    if (what & EV_TIMEOUT) return self->failed(ETIMEDOUT, true);
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(self->connecting_fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err != 0) return self->failed(err, true);
    self->connected(std::move(self->connecting_fd_));
}

void PolicyClient::connected(UniqueFd fd) {
    bev_ = bufferevent_socket_new(base_, fd.release(), BEV_OPT_CLOSE_ON_FREE);
    if (bev_ == nullptr) return failed(ENOMEM, true);
    bufferevent_setcb(bev_, &PolicyClient::read_cb, nullptr, &PolicyClient::event_cb, this);
    connected_at_ = now_seconds();
    requests_on_connection_ = 0;
    state_ = State::Ready;
    pump();
}

void PolicyClient::send_front() {
    event_del(timer_);
    parser_.reset();
    const std::string& wire = queue_.front().wire;
    bufferevent_write(bev_, wire.data(), wire.size());
    timeval tv{limits_.timeout, 0};
    bufferevent_set_timeouts(bev_, &tv, &tv);
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
    state_ = State::Busy;
}

void PolicyClient::read_cb(bufferevent* bev, void* arg) {
    auto* self = static_cast<PolicyClient*>(arg);
    evbuffer* in = bufferevent_get_input(bev);
    std::string data(evbuffer_get_length(in), '\0');
    evbuffer_remove(in, data.data(), data.size());
    if (self->state_ != State::Busy) {
        // Nothing was asked: the server is confused; start afresh next time.
        self->close_connection();
        self->state_ = State::Closed;
        return self->pump();
    }
    switch (self->parser_.feed(data)) {
        case PolicyReplyParser::State::More: return;
        case PolicyReplyParser::State::Error: return self->failed(EPROTO, false);
        case PolicyReplyParser::State::Done: return self->finish_front(self->parser_.attrs());
    }
}

void PolicyClient::event_cb(bufferevent*, short what, void* arg) {
    auto* self = static_cast<PolicyClient*>(arg);
    if (self->state_ != State::Busy) {
        // The server closed an idle connection.
        self->close_connection();
        self->state_ = State::Closed;
        return self->pump();
    }
    if (what & BEV_EVENT_TIMEOUT) return self->failed(ETIMEDOUT, false);
    if (what & BEV_EVENT_EOF) return self->failed(0, false);
    self->failed(EVUTIL_SOCKET_ERROR(), false);
}

// attr_clnt_request()'s failure path: Postfix stays quiet about a first failure that
// looks like a connection the server had closed, and warns about every other one.
void PolicyClient::failed(int err, bool connecting) {
    close_connection();
    if (connecting) log::warn("connect to %s: %s", name_.c_str(), error_text(err).c_str());
    Pending& p = queue_.front();
    if (p.tries > 0 || (err != 0 && err != EPIPE && err != ENOENT && err != ECONNRESET))
        log::warn("problem talking to server %s: %s", name_.c_str(), error_text(err).c_str());
    ++p.tries;
    state_ = State::Waiting;
    arm_timer(p.tries < limits_.try_limit ? limits_.retry_delay : 0);
}

void PolicyClient::finish_front(std::optional<PolicyAttrs> reply) {
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    if (reply && bev_ != nullptr) {
        ++requests_on_connection_;
        bufferevent_set_timeouts(bev_, nullptr, nullptr);
        if (limits_.request_limit > 0 && requests_on_connection_ >= limits_.request_limit) {
            close_connection();
            state_ = State::Closed;
        } else {
            state_ = State::Ready;
        }
    } else {
        close_connection();
        state_ = State::Closed;
    }
    if (!p.owner.expired()) p.done(std::move(reply));
    pump();
}

void PolicyClient::timer_cb(int, short, void* arg) {
    auto* self = static_cast<PolicyClient*>(arg);
    if (self->state_ == State::Ready) {  // idle for max_idle
        self->close_connection();
        self->state_ = State::Closed;
        return;
    }
    if (self->state_ != State::Waiting || self->queue_.empty()) return;
    if (self->queue_.front().tries >= self->limits_.try_limit) return self->finish_front(std::nullopt);
    self->state_ = State::Closed;
    self->pump();
}

void PolicyClient::arm_timer(long seconds) {
    timeval tv{seconds, 0};
    event_add(timer_, &tv);
}

void PolicyClient::close_connection() {
    if (connect_ev_ != nullptr) {
        event_free(connect_ev_);
        connect_ev_ = nullptr;
    }
    connecting_fd_.reset();
    if (bev_ != nullptr) {
        bufferevent_free(bev_);
        bev_ = nullptr;
    }
    if (timer_ != nullptr) event_del(timer_);
    parser_.reset();
}

}  // namespace postern::smtpd
