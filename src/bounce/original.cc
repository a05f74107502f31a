// Reading the message that a notice returns: envelope facts for the report (sender,
// arrival time, size) and the content lines, stopping after the header block when only
// the headers will be returned.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "bounce/bounce.h"
#include "util/dsn/dsn_text.h"
#include "util/log/log.h"
#include "util/queue/queue_file.h"

namespace postern::bounce {

Result<dsn::OriginalMessage> read_original(const queue::Layout& layout, const std::string& queue_name,
                                           const std::string& queue_id, bool headers_only,
                                           long size_limit) {
    dsn::OriginalMessage out;
    std::string path = layout.path(queue_name, queue_id);
    struct stat st;
    // Bouncing does not have to be perfect: a message that is gone is reported as
    // unavailable, as Postfix does; other errors mean trouble worth a retry.
    if (stat(path.c_str(), &st) != 0 && errno == ENOENT) return out;
    auto opened = queue::open_queue_file(path, false);
    if (!opened) return make_error(opened.error());
    queue::QueueFileReader reader(queue::fd_source(opened->fd.get()));
    auto env = reader.read_envelope();
    if (!env) {
        log::warn("%s: %s", queue_id.c_str(), env.error().c_str());
        return out;
    }
    out.available = true;
    out.sender = env->sender;
    out.arrival_time = env->arrival_sec;
    out.content_size = env->size.content_size;
    bool headers = headers_only || dsn::effective_return(dsn::ReturnContent::Full, out, size_limit) ==
                                       dsn::ReturnContent::Headers;
    while (true) {
        auto line = reader.next_line();
        if (!line) {
            // A damaged body still leaves a useful notice: keep what was read.
            log::warn("%s: read message file %s: %s", queue_id.c_str(), path.c_str(), line.error().c_str());
            break;
        }
        if (!*line) break;
        const std::string& l = **line;
        if (headers && !dsn::is_header_block_line(l)) break;
        out.lines.push_back(l);
    }
    return out;
}

}  // namespace postern::bounce
