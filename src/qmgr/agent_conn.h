// One connection to a delivery agent (private/<transport>): master hands it to one agent
// process, which serves one request at a time, in order. qmgr keeps the connection after
// the reply and sends the next request of the same transport on it, so a busy transport
// costs no process start per message; a second request may wait on the connection behind
// the running one (the replies come in request order). Non-blocking throughout: connect,
// write and the wait for the reply are events on qmgr's loop.
#pragma once

#include <ctime>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "util/base/result.h"
#include "util/ipc/attr.h"
#include "util/ipc/mail_proto.h"

struct event_base;
struct bufferevent;

namespace postern::qmgr {

class AgentConnection {
public:
    // The reply, or why there is none. `reused` tells whether the connection had served an
    // earlier request: a reused connection that the agent closed before answering (its
    // idle time ran out) may be retried on a fresh one.
    using ReplyFn = std::function<void(Result<ipc::mail::DeliveryReply>)>;

    enum class ConnectError { None, Busy, Unavailable };
    // Connects to the agent socket `path` (relative to queue_directory, our cwd).
    static std::unique_ptr<AgentConnection> connect(event_base* base, const std::string& transport,
                                                    const std::string& path, long timeout,
                                                    ConnectError& error, std::string& reason);
    ~AgentConnection();
    AgentConnection(const AgentConnection&) = delete;
    AgentConnection& operator=(const AgentConnection&) = delete;

    const std::string& transport() const { return transport_; }
    bool busy() const { return !pending_.empty(); }
    size_t outstanding() const { return pending_.size(); }
    bool reused() const { return uses_ > 1; }
    bool closed() const { return closed_; }
    time_t idle_since() const { return idle_since_; }

    // Sends one request; `on_reply` runs once with the reply or the failure. Replies are
    // matched to requests in order; a failure answers every waiting request.
    void send(const ipc::mail::DeliveryRequest& request, ReplyFn on_reply);

private:
    AgentConnection(event_base* base, int fd, std::string transport, long timeout);
    static void read_cb(bufferevent* bev, void* arg);
    static void event_cb(bufferevent* bev, short what, void* arg);
    void fail(const std::string& why);
    void deliver_reply(Result<ipc::mail::DeliveryReply> reply);

    bufferevent* bev_ = nullptr;
    std::string transport_;
    ipc::AttrDecoder decoder_;
    std::deque<ReplyFn> pending_;
    int uses_ = 0;
    bool closed_ = false;
    time_t idle_since_ = 0;
};

}  // namespace postern::qmgr
