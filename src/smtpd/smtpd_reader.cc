#include "smtpd/smtpd_reader.h"

namespace postern::smtpd {

namespace {
// Content is returned in pieces of about this size, so one event never holds a whole
// large message and the session can hand it to cleanup as it goes.
constexpr size_t kContentPiece = 64 * 1024;
}  // namespace

void SmtpReader::compact() {
    if (pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    } else if (pos_ > kContentPiece) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
}

void SmtpReader::discard_buffered() {
    buf_.clear();
    pos_ = 0;
    skipping_ = false;
}

void SmtpReader::start_data() {
    mode_ = Mode::Data;
    mid_line_ = false;
    prev_crlf_ = true;  // the DATA command line itself
}

void SmtpReader::start_chunk(size_t size) {
    mode_ = Mode::Chunk;
    chunk_left_ = size;
}

ReaderEvent SmtpReader::next() {
    switch (mode_) {
        case Mode::Command: return next_command();
        case Mode::Data: return next_content();
        case Mode::Chunk: return next_chunk();
    }
    return {};
}

ReaderEvent SmtpReader::next_command() {
    ReaderEvent ev;
    if (skipping_) {
        size_t lf = buf_.find('\n', pos_);
        if (lf == std::string::npos) {
            pos_ = buf_.size();
            compact();
            return ev;
        }
        pos_ = lf + 1;
        skipping_ = false;
    }
    size_t lf = buf_.find('\n', pos_);
    if (lf == std::string::npos) {
        // A CR at the end may be the first half of this line's CRLF: it does not count.
        size_t avail = buffered();
        if (avail > 0 && buf_.back() == '\r') --avail;
        if (avail > line_limit_) {
            ev.text.assign(buf_, pos_, line_limit_);
            skipping_ = true;
            pos_ = buf_.size();
            compact();
            ev.kind = ReaderEvent::Kind::LineTooLong;
        }
        return ev;
    }
    std::string_view line(buf_.data() + pos_, lf - pos_);
    pos_ = lf + 1;
    ev.bare_lf = line.empty() || line.back() != '\r';
    if (!ev.bare_lf) line.remove_suffix(1);
    ev.kind = line.size() > line_limit_ ? ReaderEvent::Kind::LineTooLong : ReaderEvent::Kind::Command;
    ev.text.assign(line.substr(0, line_limit_));
    compact();
    return ev;
}

// DATA content, line by line: CRLF (or a bare LF) -> LF, a leading dot removed, the lone
// "." ends the message when the bare-newline policy agrees it is "<CR><LF>.<CR><LF>".
ReaderEvent SmtpReader::next_content() {
    ReaderEvent ev;
    std::string& out = ev.text;
    while (out.size() < kContentPiece && pos_ < buf_.size()) {
        size_t lf = buf_.find('\n', pos_);
        if (lf == std::string::npos) {
            // A partial line: wait for its end unless it is already over the limit.
            size_t avail = buffered();
            if (avail <= line_limit_ && !mid_line_) break;
            if (buf_.back() == '\r') --avail;  // may be the CR of CRLF
            if (avail == 0) break;
            std::string_view piece(buf_.data() + pos_, avail);
            if (!mid_line_ && piece.front() == '.') piece.remove_prefix(1);
            out.append(piece);
            pos_ += avail;
            mid_line_ = true;
            break;
        }
        std::string_view line(buf_.data() + pos_, lf - pos_);
        bool crlf = !line.empty() && line.back() == '\r';
        if (crlf) line.remove_suffix(1);
        if (!mid_line_ && line == ".") {
            if (policy_ == BareLf::Allow || (crlf && prev_crlf_)) {
                if (!out.empty()) break;  // the content first, the end next time
                pos_ = lf + 1;
                compact();
                mode_ = Mode::Command;
                ev.kind = ReaderEvent::Kind::EndOfData;
                return ev;
            }
        }
        if (!mid_line_ && !line.empty() && line.front() == '.') line.remove_prefix(1);
        out.append(line).push_back('\n');
        if (!crlf) ev.bare_lf = true;
        prev_crlf_ = crlf;
        mid_line_ = false;
        pos_ = lf + 1;
    }
    compact();
    if (!out.empty()) ev.kind = ReaderEvent::Kind::Content;
    return ev;
}

// A BDAT chunk: exactly chunk_left_ bytes, CRLF -> LF (a CR at the end of what has
// arrived so far waits for the next byte; one at the very end of a chunk waits for the
// next chunk, since the message is one stream split anywhere).
ReaderEvent SmtpReader::next_chunk() {
    ReaderEvent ev;
    if (chunk_left_ == 0) {
        mode_ = Mode::Command;
        ev.kind = ReaderEvent::Kind::ChunkEnd;
        return ev;
    }
    size_t take = std::min(chunk_left_, buffered());
    if (take == 0) return ev;
    take = std::min(take, kContentPiece);
    std::string& out = ev.text;
    out.reserve(take + 1);
    bool cr_before = pending_cr_;
    if (pending_cr_) {
        if (buf_[pos_] != '\n') out.push_back('\r');
        pending_cr_ = false;
    }
    const char* p = buf_.data() + pos_;
    for (size_t i = 0; i < take; ++i) {
        if (p[i] == '\r') {
            if (i + 1 < take) {
                if (p[i + 1] != '\n') out.push_back('\r');
            } else {
                pending_cr_ = true;
            }
            continue;
        }
        if (p[i] == '\n' && !(i == 0 ? cr_before : p[i - 1] == '\r')) ev.bare_lf = true;
        out.push_back(p[i]);
    }
    pos_ += take;
    chunk_left_ -= take;
    compact();
    ev.kind = ReaderEvent::Kind::Content;
    return ev;
}

std::string SmtpReader::end_chunks() {
    std::string rest = pending_cr_ ? "\r" : "";
    pending_cr_ = false;
    return rest;
}

}  // namespace postern::smtpd
