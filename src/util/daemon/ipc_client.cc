#include "util/daemon/ipc_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <cerrno>
#include <cstring>

namespace postern::daemon {
namespace {

long now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

// Waits until `fd` is ready for `events` before `deadline_ms`; false on timeout.
bool wait_ready(int fd, short events, long deadline_ms) {
    for (;;) {
        long left = deadline_ms - now_ms();
        if (left <= 0) return false;
        pollfd p{fd, events, 0};
        int n = poll(&p, 1, static_cast<int>(left));
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return true;  // let the read/write report the error
    }
}

}  // namespace

Status IpcClient::connect_socket() {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path_.size() >= sizeof sun.sun_path) return make_error("socket path too long: " + path_);
    std::memcpy(sun.sun_path, path_.c_str(), path_.size() + 1);
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return make_error(std::string("socket: ") + std::strerror(errno));
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) < 0 && errno != EINPROGRESS)
        return make_error("connect to " + path_ + ": " + std::strerror(errno));
    fd_ = std::move(fd);
    connected_ms_ = now_ms();
    return {};
}

void IpcClient::expire_kept_connection() {
    if (!fd_.valid()) return;
    long now = now_ms();
    if ((idle_ms_ > 0 && now - used_ms_ > idle_ms_) || (ttl_ms_ > 0 && now - connected_ms_ > ttl_ms_)) fd_.reset();
}

Status IpcClient::write_all(const std::string& wire, long deadline, bool& retryable) {
    size_t sent = 0;
    while (sent < wire.size()) {
        ssize_t n = ::send(fd_.get(), wire.data() + sent, wire.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_ready(fd_.get(), POLLOUT, deadline)) return make_error("timeout writing to " + path_);
            continue;
        }
        retryable = sent == 0 && (errno == EPIPE || errno == ECONNRESET);
        return make_error("write to " + path_ + ": " + std::strerror(errno));
    }
    return {};
}

Result<ipc::AttrRecord> IpcClient::read_reply(long deadline, bool& retryable) {
    ipc::AttrDecoder decoder;
    char buf[4096];
    bool got_any = false;
    for (;;) {
        if (auto rec = decoder.next()) return std::move(*rec);
        ssize_t n = recv(fd_.get(), buf, sizeof buf, 0);
        if (n > 0) {
            got_any = true;
            if (Status st = decoder.feed(std::string_view(buf, static_cast<size_t>(n))); !st)
                return make_error("malformed reply from " + path_ + ": " + st.error());
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_ready(fd_.get(), POLLIN, deadline)) return make_error("timeout reading from " + path_);
            continue;
        }
        // A kept connection the server closed while idle: worth one reconnect.
        retryable = !got_any && (n == 0 || errno == ECONNRESET);
        if (n == 0) return make_error("premature end-of-input on " + path_);
        return make_error("read from " + path_ + ": " + std::strerror(errno));
    }
}

Result<ipc::AttrRecord> IpcClient::exchange(const std::string& wire, bool& retryable) {
    long deadline = now_ms() + timeout_ * 1000L;
    if (Status st = write_all(wire, deadline, retryable); !st) return make_error(st.error());
    return read_reply(deadline, retryable);
}

Status IpcClient::send(const ipc::AttrRecord& record) {
    if (!fd_.valid()) {
        if (Status st = connect_socket(); !st) return st;
    }
    bool retryable = false;
    Status st = write_all(ipc::encode_record(record), now_ms() + timeout_ * 1000L, retryable);
    if (!st) fd_.reset();
    return st;
}

Result<ipc::AttrRecord> IpcClient::receive() {
    if (!fd_.valid()) return make_error("not connected to " + path_);
    bool retryable = false;
    auto reply = read_reply(now_ms() + timeout_ * 1000L, retryable);
    if (!reply) fd_.reset();
    return reply;
}

Result<ipc::AttrRecord> IpcClient::call(const ipc::AttrRecord& request) {
    std::string wire = ipc::encode_record(request);
    expire_kept_connection();
    for (int attempt = 0; attempt < 2; ++attempt) {
        bool reused = fd_.valid();
        if (!reused) {
            if (Status st = connect_socket(); !st) return make_error(st.error());
        }
        bool retryable = false;
        auto reply = exchange(wire, retryable);
        used_ms_ = now_ms();
        if (reply) return reply;
        fd_.reset();
        if (!(reused && retryable)) return reply;
    }
    return make_error("cannot talk to " + path_);
}

Result<ipc::AttrRecord> ipc_call(const std::string& path, const ipc::AttrRecord& request,
                                 long timeout_seconds) {
    IpcClient client(path, timeout_seconds);
    return client.call(request);
}

}  // namespace postern::daemon
