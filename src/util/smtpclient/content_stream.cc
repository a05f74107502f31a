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
    if (downgrade_limits_)
        downgrade_ = std::make_unique<message::MimeDowngrade>(
            [this](std::string_view l) { append_data_line(*fill_out_, l, opts_); }, *downgrade_limits_);
    auto env = reader_->read_envelope();
    if (!env) return make_error(env.error());
    return {};
}

Result<bool> ContentStream::fill(std::string& out, size_t want) {
    if (!reader_) {
        if (Status st = rewind(); !st) return make_error(st.error());
    }
    fill_out_ = &out;
    while (!done_ && out.size() < want) {
        auto line = reader_->next_line();
        if (!line) return make_error(line.error());
        if (!line->has_value()) {
            if (downgrade_) downgrade_->finish();
            done_ = true;
            break;
        }
        if (downgrade_)
            downgrade_->line(**line);
        else
            append_data_line(out, **line, opts_);
    }
    fill_out_ = nullptr;
    return done_;
}

}  // namespace postern::smtpclient
