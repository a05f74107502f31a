#include "smtp/connection_cache.h"

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "util/daemon/server.h"

namespace postern::smtp {

void BufferEventFree::operator()(bufferevent* bev) const {
    if (bev != nullptr) bufferevent_free(bev);
}

void quit_and_close(CachedConnection conn) {
    bufferevent* bev = conn.bev.get();
    if (bev == nullptr) return;
    bufferevent_setcb(bev, nullptr, nullptr, nullptr, nullptr);
    bufferevent_disable(bev, EV_READ);
    bufferevent_write(bev, "QUIT\r\n", 6);
    if (conn.tls_active) bufferevent_flush(bev, EV_WRITE, BEV_NORMAL);  // encrypt it
    daemon::flush_socket(bev);
}

ConnectionCache::ConnectionCache(event_base* base)
    : base_(base), timer_(evtimer_new(base, &ConnectionCache::timer_cb, this)) {}

ConnectionCache::~ConnectionCache() {
    close();
    event_free(timer_);
}

void ConnectionCache::store(std::string key, CachedConnection conn, long idle_seconds) {
    close();
    key_ = std::move(key);
    idle_ = std::move(conn);
    bufferevent* bev = idle_->bev.get();
    bufferevent_setcb(bev, &ConnectionCache::idle_read_cb, nullptr, &ConnectionCache::idle_event_cb, this);
    bufferevent_enable(bev, EV_READ);
    timeval tv{idle_seconds > 0 ? idle_seconds : 1, 0};
    evtimer_add(timer_, &tv);
}

std::optional<CachedConnection> ConnectionCache::take(const std::string& key) {
    if (!idle_ || key != key_) return std::nullopt;
    evtimer_del(timer_);
    std::optional<CachedConnection> out = std::move(idle_);
    idle_.reset();
    bufferevent_setcb(out->bev.get(), nullptr, nullptr, nullptr, nullptr);
    bufferevent_disable(out->bev.get(), EV_READ);
    return out;
}

void ConnectionCache::close() {
    evtimer_del(timer_);
    if (!idle_) return;
    CachedConnection conn = std::move(*idle_);
    idle_.reset();
    quit_and_close(std::move(conn));
}

void ConnectionCache::drop() {
    evtimer_del(timer_);
    idle_.reset();  // frees the bufferevent and the socket
}

void ConnectionCache::idle_read_cb(bufferevent*, void* arg) {
    // A server that speaks unasked while idle (typically "421 timeout") is leaving.
    static_cast<ConnectionCache*>(arg)->drop();
}

void ConnectionCache::idle_event_cb(bufferevent*, short, void* arg) { static_cast<ConnectionCache*>(arg)->drop(); }

void ConnectionCache::timer_cb(int, short, void* arg) { static_cast<ConnectionCache*>(arg)->close(); }

}  // namespace postern::smtp
