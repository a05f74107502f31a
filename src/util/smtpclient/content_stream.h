// The message as the SMTP/LMTP client sends it: lines read from the queue file a piece
// at a time (never the whole message in memory), in the wire form of the DATA phase --
// CRLF line ends, dot-stuffed (RFC 5321 4.5.2), lines longer than smtp_line_length_limit
// folded as Postfix's smtp_text_out() folds them; for a server without 8BITMIME,
// optionally converted to 7 bits (util/message/mime_downgrade.h).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "util/base/result.h"
#include "util/message/mime_downgrade.h"
#include "util/queue/queue_file.h"

namespace postern::smtpclient {

struct WireOptions {
    // smtp_line_length_limit: longer lines are broken with CRLF SPACE; 0: no limit.
    size_t line_limit = 0;
    bool dot_stuff = true;  // DATA; BDAT chunks are sent as they are
};

// One message line in the wire form. A line of more than line_limit bytes becomes
// line_limit bytes, CRLF, then " " and the next line_limit-1 bytes, and so on.
void append_data_line(std::string& out, std::string_view line, const WireOptions& opts = {});

// Reads the content of an open queue file (the caller keeps `fd` open). Each reader
// has its own position, so one file may feed several sessions one after the other.
class ContentStream {
public:
    // With `downgrade` limits, 8-bit MIME entities become quoted-printable (Postfix's
    // downgrade for a server without 8BITMIME).
    ContentStream(int fd, WireOptions opts, std::optional<message::ParserLimits> downgrade = std::nullopt)
        : fd_(fd), opts_(opts), downgrade_limits_(downgrade) {}
    ContentStream(const ContentStream&) = delete;
    ContentStream& operator=(const ContentStream&) = delete;
    // Back to the first line of the message.
    Status rewind();
    // Appends wire-form lines to `out` until it holds at least `want` bytes or the
    // message ends; true once the last line has been appended.
    Result<bool> fill(std::string& out, size_t want);
    // The downgrade met MIME nesting deeper than mime_nesting_limit.
    bool mime_nesting_exceeded() const { return downgrade_ && downgrade_->nesting_exceeded(); }

private:
    int fd_;
    WireOptions opts_;
    std::optional<message::ParserLimits> downgrade_limits_;
    std::unique_ptr<queue::QueueFileReader> reader_;
    std::unique_ptr<message::MimeDowngrade> downgrade_;
    std::string* fill_out_ = nullptr;  // where the downgrade's lines go during fill()
    bool done_ = false;
};

}  // namespace postern::smtpclient
