#include "util/smtpclient/content_stream.h"

namespace postern::smtpclient {

void append_data_line(std::string& out, std::string_view line, const WireOptions& opts) {
    if (opts.dot_stuff && !line.empty() && line[0] == '.') out += '.';
    size_t limit = opts.line_limit;
    if (limit > 1) {
        // Postfix's smtp_text_out(): the first piece is `limit` bytes, every continuation
        // a space and limit-1 bytes, so no sent line is longer than the limit.
        size_t room = limit;
        while (line.size() > room) {
            out.append(line.substr(0, room));
            out += "\r\n ";
            line.remove_prefix(room);
            room = limit - 1;
        }
    }
    out.append(line);
    out += "\r\n";
}

Status ContentStream::rewind() {
    reader_ = std::make_unique<queue::QueueFileReader>(queue::fd_source(fd_));
    done_ = false;
    auto env = reader_->read_envelope();
    if (!env) return make_error(env.error());
    return {};
}

Result<bool> ContentStream::fill(std::string& out, size_t want) {
    if (!reader_) {
        if (Status st = rewind(); !st) return make_error(st.error());
    }
    while (!done_ && out.size() < want) {
        auto line = reader_->next_line();
        if (!line) return make_error(line.error());
        if (!line->has_value()) {
            done_ = true;
            break;
        }
        append_data_line(out, **line, opts_);
    }
    return done_;
}

}  // namespace postern::smtpclient
