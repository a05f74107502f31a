#include "util/ipc/cleanup_stream.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

namespace postern::ipc::mail {
namespace {
constexpr size_t kChunk = 64 * 1024;
}  // namespace

CleanupStream::CleanupStream(event_base* base, std::string socket_path, long timeout_seconds)
    : base_(base), path_(std::move(socket_path)), timeout_(timeout_seconds > 0 ? timeout_seconds : 3600) {}

CleanupStream::~CleanupStream() {
    *alive_ = false;
    if (bev_ != nullptr) bufferevent_free(bev_);
}

void CleanupStream::open(long flags, OpenedFn done) {
    opened_ = std::move(done);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path_.size() >= sizeof sun.sun_path) {
        fail("cleanup socket path too long: " + path_);
        return;
    }
    std::memcpy(sun.sun_path, path_.c_str(), path_.size() + 1);
    bev_ = bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev_ == nullptr) {
        fail("cannot create a bufferevent for " + path_);
        return;
    }
    bufferevent_setcb(bev_, &CleanupStream::read_cb, &CleanupStream::write_cb, &CleanupStream::event_cb, this);
    if (bufferevent_socket_connect(bev_, reinterpret_cast<sockaddr*>(&sun), sizeof sun) < 0) {
        fail("connect to " + path_ + ": " + std::strerror(errno));
        return;
    }
    send(CleanupOpen{flags}.to_record());
    expect_reply(true);
}

void CleanupStream::envelope(const CleanupEnvelope& env) { send(env.to_record()); }

void CleanupStream::content(std::string_view data) {
    while (!data.empty() && !failed()) {
        size_t take = std::min(data.size(), kChunk - pending_.size());
        pending_.append(data.substr(0, take));
        data.remove_prefix(take);
        if (pending_.size() >= kChunk) flush_content();
    }
}

void CleanupStream::flush_content() {
    if (pending_.empty()) return;
    CleanupContent chunk;
    chunk.data.swap(pending_);
    send(chunk.to_record());
}

void CleanupStream::finish(ResultFn done, long late_flags) {
    result_ = std::move(done);
    flush_content();
    CleanupEnd end;
    end.late_flags = late_flags;
    send(end.to_record());
    if (failed()) {
        // Reported from the loop, not from inside the caller.
        auto cb = std::move(result_);
        std::string err = error_;
        event_base_once(base_, -1, EV_TIMEOUT, [](evutil_socket_t, short, void* arg) {
            std::unique_ptr<std::function<void()>> fn(static_cast<std::function<void()>*>(arg));
            (*fn)();
        }, new std::function<void()>([cb, err] { cb(make_error(err)); }), nullptr);
        return;
    }
    expect_reply(true);
}

size_t CleanupStream::backlog() const {
    if (bev_ == nullptr || failed()) return 0;
    return evbuffer_get_length(bufferevent_get_output(bev_)) + pending_.size();
}

void CleanupStream::send(const AttrRecord& rec) {
    if (failed() || bev_ == nullptr) return;
    std::string wire = encode_record(rec);
    bufferevent_write(bev_, wire.data(), wire.size());
}

// Reads are enabled (with the reply timeout) only while a reply is due.
void CleanupStream::expect_reply(bool on) {
    if (bev_ == nullptr || failed()) return;
    timeval tv{timeout_, 0};
    bufferevent_set_timeouts(bev_, on ? &tv : nullptr, &tv);
    if (on)
        bufferevent_enable(bev_, EV_READ | EV_WRITE);
    else
        bufferevent_disable(bev_, EV_READ);
}

void CleanupStream::fail(std::string error) {
    if (failed()) return;
    error_ = std::move(error);
    pending_.clear();
    if (bev_ != nullptr) bufferevent_disable(bev_, EV_READ | EV_WRITE);
    std::weak_ptr<bool> alive = alive_;
    if (opened_) {
        auto cb = std::move(opened_);
        opened_ = nullptr;
        cb(make_error(error_));
        if (alive.expired()) return;
    }
    if (result_) {
        auto cb = std::move(result_);
        result_ = nullptr;
        cb(make_error(error_));
    }
}

void CleanupStream::read_cb(bufferevent* bev, void* arg) {
    auto* self = static_cast<CleanupStream*>(arg);
    std::weak_ptr<bool> alive = self->alive_;
    evbuffer* in = bufferevent_get_input(bev);
    std::string data(evbuffer_get_length(in), '\0');
    evbuffer_remove(in, data.data(), data.size());
    if (Status st = self->decoder_.feed(data); !st) {
        self->fail("malformed reply from " + self->path_ + ": " + st.error());
        return;
    }
    while (auto rec = self->decoder_.next()) {
        if (self->opened_) {
            auto opened = CleanupOpened::from_record(*rec);
            auto cb = std::move(self->opened_);
            self->opened_ = nullptr;
            self->expect_reply(false);
            if (!opened)
                cb(make_error("cleanup: " + opened.error()));
            else if (opened->status != kCleanupOk)
                cb(make_error("cleanup: " + cleanup_status_text(opened->status)));
            else
                cb(opened->queue_id);
        } else if (self->result_) {
            auto result = CleanupResult::from_record(*rec);
            auto cb = std::move(self->result_);
            self->result_ = nullptr;
            self->expect_reply(false);
            if (!result)
                cb(make_error("cleanup: " + result.error()));
            else
                cb(std::move(*result));
        } else {
            self->fail("unexpected reply from " + self->path_);
        }
        if (alive.expired()) return;
    }
}

// The socket took everything written: the caller may read more. (The partial chunk in
// pending_ waits for more content, so it does not count here, or a caller that stopped
// reading with a partial chunk left would never be called again.)
void CleanupStream::write_cb(bufferevent* bev, void* arg) {
    auto* self = static_cast<CleanupStream*>(arg);
    if (self->drain_ && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        auto fn = std::move(self->drain_);
        self->drain_ = nullptr;
        fn();
    }
}

void CleanupStream::event_cb(bufferevent*, short what, void* arg) {
    auto* self = static_cast<CleanupStream*>(arg);
    if (what & BEV_EVENT_CONNECTED) return;
    if (what & BEV_EVENT_TIMEOUT)
        self->fail("timeout talking to " + self->path_);
    else if (what & BEV_EVENT_EOF)
        self->fail("lost connection to " + self->path_);
    else
        self->fail(std::string(self->path_) + ": " + std::strerror(EVUTIL_SOCKET_ERROR()));
}

}  // namespace postern::ipc::mail
