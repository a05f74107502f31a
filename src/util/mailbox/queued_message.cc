#include "util/mailbox/queued_message.h"

#include <memory>

#include "util/base/strings.h"

namespace postern::mailbox {

Result<QueuedMessage> QueuedMessage::open(const queue::Layout& layout, const std::string& queue_name,
                                          const std::string& queue_id) {
    QueuedMessage m;
    m.path_ = layout.path(queue_name, queue_id);
    auto opened = queue::open_queue_file(m.path_, false);
    if (!opened) return make_error(opened.error());
    m.fd_ = std::move(opened->fd);
    queue::QueueFileReader reader(queue::fd_source(m.fd_.get()));
    auto env = reader.read_envelope();
    if (!env) return make_error(strprintf("%s: %s", m.path_.c_str(), env.error().c_str()));
    m.envelope_ = std::move(*env);
    if (Status st = m.scan_headers(); !st) return make_error(st.error());
    return m;
}

mailbox::LineReader QueuedMessage::lines() const {
    auto reader = std::make_shared<queue::QueueFileReader>(queue::fd_source(fd_.get()));
    auto started = std::make_shared<bool>(false);
    std::string path = path_;
    return [reader, started, path]() -> Result<std::optional<std::string>> {
        if (!*started) {
            *started = true;
            auto env = reader->read_envelope();
            if (!env) return make_error(strprintf("%s: %s", path.c_str(), env.error().c_str()));
        }
        return reader->next_line();
    };
}

Status QueuedMessage::scan_headers() {
    auto next = lines();
    std::string header;
    auto take = [&] {
        size_t colon = header.find(':');
        if (colon != std::string::npos && iequals(trim(std::string_view(header).substr(0, colon)), "Delivered-To"))
            delivered_.push_back(lowercase(trim(std::string_view(header).substr(colon + 1))));
        header.clear();
    };
    for (;;) {
        auto line = next();
        if (!line) return make_error(line.error());
        if (!line->has_value() || (*line)->empty()) break;
        const std::string& text = **line;
        if ((text[0] == ' ' || text[0] == '\t') && !header.empty()) {
            header += text;
            continue;
        }
        take();
        header = text;
    }
    take();
    return Status::success();
}

bool QueuedMessage::delivered_to(const std::string& address) const {
    std::string folded = lowercase(address);
    for (const auto& d : delivered_)
        if (d == folded) return true;
    return false;
}

}  // namespace postern::mailbox
