#include "util/queue/delivery_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/base/file_io.h"
#include "util/base/unique_fd.h"
#include "util/queue/queue_id.h"

namespace postern::queue {
namespace {

Error errno_failure(const char* what, const std::string& path) {
    return make_error(std::string(what) + " " + path + ": " + std::strerror(errno));
}

Status check_names(std::string_view log_queue, std::string_view id) {
    if (log_queue != kBounce && log_queue != kDefer && log_queue != kTrace)
        return make_error("not a delivery log queue: " + std::string(log_queue));
    if (!id_ok(id)) return make_error("bad queue id: " + std::string(id));
    return {};
}

UniqueFd open_for_append(const std::string& path, Status& st) {
    int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW;
    UniqueFd fd(open(path.c_str(), flags, 0600));
    if (!fd && errno == ENOENT) {
        if (Status s = make_parent_dirs(path); !s) {
            st = s;
            return fd;
        }
        fd.reset(open(path.c_str(), flags, 0600));
    }
    if (!fd) st = errno_failure("open", path);
    return fd;
}

}  // namespace

Status append_delivery_log(const Layout& layout, std::string_view log_queue, std::string_view id,
                           std::span<const ipc::mail::DeliveryLogEntry> entries, bool sync) {
    if (Status st = check_names(log_queue, id); !st) return st;
    std::string path = layout.path(log_queue, id);
    std::string wire;
    for (const auto& e : entries) ipc::encode_record(e.to_record(), wire);
    Status st;
    UniqueFd fd = open_for_append(path, st);
    if (!fd) return st;
    // One write(2): with O_APPEND, records of concurrent writers do not interleave.
    size_t done = 0;
    while (done < wire.size()) {
        ssize_t n = write(fd.get(), wire.data() + done, wire.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return errno_failure("write", path);
        done += static_cast<size_t>(n);
    }
    if (sync && fsync(fd.get()) != 0) return errno_failure("fsync", path);
    return {};
}

Result<std::vector<ipc::mail::DeliveryLogEntry>> read_delivery_log(const Layout& layout,
                                                                   std::string_view log_queue,
                                                                   std::string_view id) {
    if (Status st = check_names(log_queue, id); !st) return make_error(st.error());
    std::string path = layout.path(log_queue, id);
    std::vector<ipc::mail::DeliveryLogEntry> out;
    auto text = read_file(path);
    if (!text) {
        if (access(path.c_str(), F_OK) != 0 && errno == ENOENT) return out;
        return make_error(text.error());
    }
    ipc::AttrDecoder decoder;
    if (Status st = decoder.feed(*text); !st) return make_error(path + ": " + st.error());
    while (auto rec = decoder.next()) {
        auto entry = ipc::mail::DeliveryLogEntry::from_record(*rec);
        if (!entry) return make_error(path + ": " + entry.error());
        out.push_back(std::move(*entry));
    }
    if (decoder.mid_record()) return make_error(path + ": truncated record at end of file");
    return out;
}

Status remove_delivery_log(const Layout& layout, std::string_view log_queue, std::string_view id) {
    if (Status st = check_names(log_queue, id); !st) return st;
    std::string path = layout.path(log_queue, id);
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return errno_failure("remove", path);
    return {};
}

}  // namespace postern::queue
