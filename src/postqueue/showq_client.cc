// The unprivileged way to list the queue: connect to the showq service (public/showq),
// which runs as mail_owner, and read its records until the closing one. As Postfix's
// postqueue does, fall back to reading the queue directly when the mail system is down.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "postqueue/postqueue.h"
#include "util/base/unique_fd.h"
#include "util/ipc/attr.h"

namespace postern::postqueue {
namespace {

UniqueFd connect_showq(const queue::Layout& layout) {
    std::string path = layout.queue_directory() + "/public/showq";
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (!fd || path.size() >= sizeof sa.sun_path) return {};
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return {};
    return fd;
}

}  // namespace

bool list_via_showq(const queue::Layout& layout, const std::function<bool(const ListedMessage&)>& sink) {
    UniqueFd fd = connect_showq(layout);
    if (!fd) {
        log::warn("Mail system is down -- accessing queue directly");
        return false;
    }
    // One record per message; a message with many recipients is one large record.
    ipc::AttrDecoder decoder(ipc::AttrLimits{64, 1 << 20, 1 << 22, 256 << 20});
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fatal("read from showq service: %s", n < 0 ? strerror(errno) : "unexpected end of input");
        if (Status st = decoder.feed(std::string_view(buf, static_cast<size_t>(n))); !st)
            fatal("showq service: %s", st.error().c_str());
        while (auto record = decoder.next()) {
            if (record->find(queue::kShowqEnd)) return true;
            auto m = ListedMessage::from_record(*record);
            if (!m) fatal("%s", m.error().c_str());
            if (!sink(*m)) return true;
        }
    }
}

}  // namespace postern::postqueue
