#include "qmgr/agent_conn.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/base/strings.h"

namespace postern::qmgr {

namespace mail = ipc::mail;

std::unique_ptr<AgentConnection> AgentConnection::connect(event_base* base, const std::string& transport,
                                                          const std::string& path, long timeout,
                                                          ConnectError& error, std::string& reason) {
    error = ConnectError::None;
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path.size() >= sizeof sun.sun_path) {
        error = ConnectError::Unavailable;
        reason = "socket path too long: " + path;
        return nullptr;
    }
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = ConnectError::Busy;  // out of descriptors: try again later
        reason = strprintf("socket: %s", std::strerror(errno));
        return nullptr;
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0 && errno != EINPROGRESS) {
        int e = errno;
        ::close(fd);
        // A full listen queue: every agent is busy and master has not caught up.
        error = (e == EAGAIN || e == EINTR) ? ConnectError::Busy : ConnectError::Unavailable;
        reason = strprintf("connect to transport %s: %s", path.c_str(), std::strerror(e));
        return nullptr;
    }
    return std::unique_ptr<AgentConnection>(new AgentConnection(base, fd, transport, timeout));
}

AgentConnection::AgentConnection(event_base* base, int fd, std::string transport, long timeout)
    : transport_(std::move(transport)) {
    bev_ = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (bev_ == nullptr) {
        ::close(fd);
        closed_ = true;
        return;
    }
    bufferevent_setcb(bev_, &AgentConnection::read_cb, nullptr, &AgentConnection::event_cb, this);
    // Only the write side has a limit: a delivery may take as long as the agent needs
    // (the agent has its own time limits).
    timeval tv{timeout, 0};
    bufferevent_set_timeouts(bev_, nullptr, &tv);
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
    idle_since_ = time(nullptr);
}

AgentConnection::~AgentConnection() {
    if (bev_ != nullptr) bufferevent_free(bev_);
}

void AgentConnection::send(const mail::DeliveryRequest& request, ReplyFn on_reply) {
    pending_.push_back(std::move(on_reply));
    ++uses_;
    if (closed_) {
        fail("lost connection with delivery agent");
        return;
    }
    std::string wire = ipc::encode_record(request.to_record());
    bufferevent_write(bev_, wire.data(), wire.size());
}

void AgentConnection::read_cb(bufferevent* bev, void* arg) {
    auto* self = static_cast<AgentConnection*>(arg);
    evbuffer* in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    std::string data(len, '\0');
    evbuffer_remove(in, data.data(), len);
    if (self->pending_.empty()) {
        self->fail("unexpected data from delivery agent");
        return;
    }
    if (Status st = self->decoder_.feed(data); !st) {
        self->fail("malformed reply from delivery agent: " + st.error());
        return;
    }
    while (!self->closed_) {
        auto rec = self->decoder_.next();
        if (!rec) break;
        if (self->pending_.empty()) {
            self->fail("unexpected data from delivery agent");
            return;
        }
        auto reply = mail::DeliveryReply::from_record(*rec);
        if (!reply) {
            self->fail("malformed reply from delivery agent: " + reply.error());
            return;
        }
        self->deliver_reply(std::move(*reply));
    }
}

void AgentConnection::event_cb(bufferevent*, short what, void* arg) {
    auto* self = static_cast<AgentConnection*>(arg);
    if (what & BEV_EVENT_TIMEOUT) {
        self->fail("timeout sending request to delivery agent");
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        self->fail("lost connection with delivery agent");
    }
}

// The connection is useless from here on: answer the waiting requests, in order. An idle
// one is noticed by its owner through closed().
void AgentConnection::fail(const std::string& why) {
    closed_ = true;
    if (bev_ != nullptr) bufferevent_disable(bev_, EV_READ | EV_WRITE);
    while (!pending_.empty()) deliver_reply(make_error(why));
}

void AgentConnection::deliver_reply(Result<mail::DeliveryReply> reply) {
    ReplyFn fn = std::move(pending_.front());
    pending_.pop_front();
    idle_since_ = time(nullptr);
    fn(std::move(reply));  // may send the next request on this connection
}

}  // namespace postern::qmgr
