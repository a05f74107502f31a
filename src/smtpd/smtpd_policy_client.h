// The client side of Postfix's policy delegation protocol (SMTPD_POLICY_README) for
// check_policy_service: a request is "name=value" lines and an empty line, the reply
// the same ("action=..."). One PolicyClient per policy server and smtpd process keeps
// one connection, reused by every session of the process; requests queue up and go out
// one at a time, in order. Nothing blocks: connect, send and receive run on the event
// loop with the request timeout.
//
// Failures are Postfix's attr_clnt's: a broken connection is retried up to try_limit
// times, retry_delay apart, with the same warnings ("connect to 127.0.0.1:10023:
// Connection refused", "problem talking to server ...: ..."), and then the request
// answers "no reply" (the caller applies the default action). A connection is closed
// when idle for max_idle, once older than max_ttl, and after request_limit requests.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/base/result.h"
#include "util/base/unique_fd.h"

struct event_base;
struct event;
struct bufferevent;

namespace postern::dns {
class Resolver;
}

namespace postern::smtpd {

struct PolicyLimits {
    long timeout = 100, max_idle = 300, max_ttl = 1000, retry_delay = 1;  // seconds
    long request_limit = 0;  // 0: no limit
    long try_limit = 2;
};

using PolicyAttrs = std::vector<std::pair<std::string, std::string>>;

// "name=value\n..." and the empty line. Values cannot carry a newline; one is sent as
// a blank.
std::string encode_policy_request(const PolicyAttrs& attrs);

// Incremental reader of one reply: lines until an empty one, at most 64 KiB.
class PolicyReplyParser {
public:
    enum class State { More, Done, Error };
    State feed(std::string_view data);
    const PolicyAttrs& attrs() const { return attrs_; }
    void reset() { *this = PolicyReplyParser{}; }

private:
    std::string line_;
    size_t bytes_ = 0;
    PolicyAttrs attrs_;
};

class PolicyClient {
public:
    // server: "inet:host:port" or "unix:path" / "local:path" (relative paths from
    // queue_directory, as Postfix's chrooted smtpd sees them). dns resolves a host name
    // (nullptr: numeric addresses only).
    static Result<std::unique_ptr<PolicyClient>> create(event_base* base, std::string_view server,
                                                        PolicyLimits limits, const std::string& queue_directory,
                                                        dns::Resolver* dns);
    ~PolicyClient();
    PolicyClient(const PolicyClient&) = delete;
    PolicyClient& operator=(const PolicyClient&) = delete;

    // The server as Postfix's warnings name it: "127.0.0.1:10023", "private/policy".
    const std::string& name() const { return name_; }

    // The reply's attributes, or nullopt when every try failed (warnings are logged).
    using Done = std::function<void(std::optional<PolicyAttrs>)>;
    // Queues a request. `owner` expired before its turn: the request is dropped and done
    // is not called. done runs from the event loop, never from inside request().
    void request(const PolicyAttrs& attrs, std::weak_ptr<void> owner, Done done);

private:
    PolicyClient(event_base* base, PolicyLimits limits) : base_(base), limits_(limits) {}
    struct Pending {
        std::string wire;
        std::weak_ptr<void> owner;
        Done done;
        long tries = 0;
    };
    enum class State { Closed, Resolving, Connecting, Ready, Busy, Waiting };

    void pump();
    void start_connect();
    void connect_to(const std::string& address);
    void connected(UniqueFd fd);
    void send_front();
    void failed(int err, bool connecting);
    void finish_front(std::optional<PolicyAttrs> reply);
    void close_connection();
    void arm_timer(long seconds);
    static void read_cb(bufferevent* bev, void* arg);
    static void event_cb(bufferevent* bev, short what, void* arg);
    static void connect_cb(int fd, short what, void* arg);
    static void timer_cb(int fd, short what, void* arg);

    event_base* base_;
    PolicyLimits limits_;
    dns::Resolver* dns_ = nullptr;
    std::string name_;
    bool is_unix_ = false;
    std::string path_;        // unix: the socket path
    std::string host_, port_; // inet
    State state_ = State::Closed;
    std::deque<Pending> queue_;
    UniqueFd connecting_fd_;
    event* connect_ev_ = nullptr;
    event* timer_ = nullptr;  // retry delay, or idle close while Ready
    bufferevent* bev_ = nullptr;
    PolicyReplyParser parser_;
    long connected_at_ = 0, requests_on_connection_ = 0;
    // Cleared by the destructor: resolver callbacks check it.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace postern::smtpd
