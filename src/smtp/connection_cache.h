// smtp(8)'s connection cache: after a transaction the agent may keep its connection open
// for the next delivery to the same next hop (Postfix's smtp_connection_cache_on_demand
// and smtp_connection_cache_destinations). The cache lives in the agent process: qmgr
// sends the next request of a busy destination to an agent that is delivering to it
// (see qmgr's "ahead" requests), so that agent finds its own connection. One idle
// connection per process, closed after smtp_connection_cache_time_limit, or at once when
// the server speaks or hangs up while it waits.
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include "smtp/session.h"
#include "util/smtpclient/conn_reuse.h"
#include "util/smtpclient/smtp_reply.h"

struct event_base;
struct bufferevent;
struct event;

namespace postern::smtp {

using smtpclient::cache_destination_name;
using smtpclient::cache_key;
using smtpclient::may_reuse;

struct BufferEventFree {
    void operator()(bufferevent* bev) const;
};
using BufferEventPtr = std::unique_ptr<bufferevent, BufferEventFree>;

// A connection after a finished transaction: the server is waiting for MAIL (or RSET).
struct CachedConnection {
    BufferEventPtr bev;
    Target target;
    smtpclient::Features features;
    bool tls_active = false;
    int reuse_count = 0;    // deliveries after the first one (logged as conn_use=reuse_count+1)
    time_t expire_at = 0;   // connect time + smtp_connection_reuse_time_limit
};

// Sends QUIT (best effort, no reply awaited) and closes.
void quit_and_close(CachedConnection conn);

class ConnectionCache {
public:
    explicit ConnectionCache(event_base* base);
    ~ConnectionCache();
    ConnectionCache(const ConnectionCache&) = delete;
    ConnectionCache& operator=(const ConnectionCache&) = delete;

    // Keeps `conn` for `key` for at most `idle_seconds` (an older one is closed first).
    void store(std::string key, CachedConnection conn, long idle_seconds);
    // The connection kept for `key`, which leaves the cache.
    std::optional<CachedConnection> take(const std::string& key);
    // QUIT and close the idle connection, if any.
    void close();

private:
    static void idle_read_cb(bufferevent* bev, void* arg);
    static void idle_event_cb(bufferevent* bev, short what, void* arg);
    static void timer_cb(int fd, short what, void* arg);
    void drop();  // the server spoke or left: close without QUIT

    event_base* base_;
    event* timer_ = nullptr;
    std::string key_;
    std::optional<CachedConnection> idle_;
};

}  // namespace postern::smtp
