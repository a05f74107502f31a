// Splits a message, arriving in chunks of any size, into logical headers and body lines,
// the way Postfix's mime_state does for the primary header: a header line starts with
// "name:", a line starting with a blank continues it, and the header ends at the first
// empty line or at the first line that is neither (that line is the first body line).
// Bytes are bytes: 8-bit data, NUL and CR pass through unchanged. A logical header keeps
// its line breaks ("Subject: a\n b") and is cut at header_size_limit; the rest of it is
// discarded (Postfix's "header truncated" case).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace postern::message {

class MessageSink {
public:
    virtual ~MessageSink() = default;
    // One logical header; the sink may modify or move from it.
    virtual void header(std::string& header) = 0;
    // After the last header, before the first body line (also for a header-only message).
    virtual void headers_done() = 0;
    // One body line without its newline (the empty separator line is the first).
    virtual void body_line(std::string_view line) = 0;
};

struct ParserLimits {
    size_t header_size_limit = 102400;
    // A line longer than this is passed on in pieces of this size (memory bound only;
    // callers normally reject such messages first through message_size_limit).
    size_t max_line = 64u << 20;
};

class MessageParser {
public:
    explicit MessageParser(MessageSink& sink, ParserLimits limits = {});

    void feed(std::string_view data);
    // End of input: a last line without newline still counts, the header is flushed.
    void finish();

    bool in_header() const { return in_header_; }
    // True when some header was longer than header_size_limit.
    bool header_truncated() const { return truncated_; }
    // Bytes fed so far.
    size_t size() const { return size_; }

private:
    void line(std::string_view l);
    void header_line(std::string_view l);
    void append_header(std::string_view text);
    void flush_header();
    void end_headers();

    MessageSink& sink_;
    ParserLimits limits_;
    std::string partial_;  // an incomplete line
    std::string header_;   // the logical header being collected
    bool in_header_ = true;
    bool truncated_ = false;
    bool finished_ = false;
    size_t size_ = 0;
};

}  // namespace postern::message
