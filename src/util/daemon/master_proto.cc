#include "util/daemon/master_proto.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace postern::daemon {
namespace {

void put32(unsigned char* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

uint32_t get32(const unsigned char* p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
    return v;
}

}  // namespace

StatusBytes encode_status(const StatusMessage& message) {
    StatusBytes out{};
    put32(out.data(), static_cast<uint32_t>(message.pid));
    put32(out.data() + 4, message.generation);
    put32(out.data() + 8, static_cast<uint32_t>(message.avail));
    return out;
}

std::optional<StatusMessage> decode_status(const StatusBytes& bytes) {
    uint32_t avail = get32(bytes.data() + 8);
    if (avail > 1) return std::nullopt;
    StatusMessage m;
    m.pid = static_cast<pid_t>(get32(bytes.data()));
    m.generation = get32(bytes.data() + 4);
    m.avail = static_cast<Availability>(avail);
    return m;
}

bool notify_master(int fd, unsigned generation, Availability avail) {
    StatusBytes b = encode_status({getpid(), generation, avail});
    ssize_t n;
    do {
        n = ::write(fd, b.data(), b.size());
    } while (n < 0 && errno == EINTR);
    return n == static_cast<ssize_t>(b.size());
}

}  // namespace postern::daemon
