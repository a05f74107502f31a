// Splits a message, arriving in chunks of any size, into logical headers and body lines,
// the way Postfix's mime_state does for the primary header: a header line starts with
// "name:" (the obsolete "name :" becomes "name:", as there), a line starting with a blank continues it, and the header ends at the first
// empty line or at the first line that is neither (that line is the first body line).
// Bytes are bytes: 8-bit data, NUL and CR pass through unchanged. A logical header keeps
// its line breaks ("Subject: a\n b") and is cut at header_size_limit; the rest of it is
// discarded (Postfix's "header truncated" case).
//
// With MIME processing on (ParserLimits::mime) it also follows the MIME structure as
// mime_state does: the headers of each multipart body part (after a "--boundary" line)
// and of each attached message/rfc822 come to the sink as part headers, so cleanup can
// apply mime_header_checks and nested_header_checks to them; boundary lines, blank
// lines and content are body lines.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace postern::message {

// Where a header is (Postfix's MIME_HDR_PRIMARY, MIME_HDR_MULTIPART, MIME_HDR_NESTED).
enum class HeaderClass { Primary, Multipart, Nested };

class MessageSink {
public:
    virtual ~MessageSink() = default;
    // One logical header of the message itself; the sink may modify or move from it.
    virtual void header(std::string& header) = 0;
    // With MIME processing: one logical header of a body part or attached message. The
    // default passes it on as the body lines it is made of.
    virtual void part_header(std::string& header, HeaderClass cls);
    // After the last header, before the first body line (also for a header-only message).
    virtual void headers_done() = 0;
    // With MIME processing: the end of any header section (primary, body part, attached
    // message), before headers_done() and the section's first body line, with its media
    // type and subtype (lower case; the context's default when there is no Content-Type).
    virtual void header_section_done(HeaderClass, std::string_view /*type*/, std::string_view /*subtype*/) {}
    // With MIME processing: a "--boundary" or "--boundary--" line of an enclosing
    // multipart. The default passes it on as a body line.
    virtual void boundary(std::string_view line) { body_line(line); }
    // One body line without its newline (the empty separator line is the first).
    virtual void body_line(std::string_view line) = 0;
};

struct ParserLimits {
    size_t header_size_limit = 102400;
    // A line longer than this is passed on in pieces of this size (memory bound only;
    // callers normally reject such messages first through message_size_limit).
    size_t max_line = 64u << 20;
    bool mime = false;                         // !disable_mime_input_processing
    size_t mime_nesting_limit = 100;           // multipart levels (as Postfix counts them)
    size_t mime_boundary_length_limit = 2048;  // longer boundaries are cut to this
};

class MessageParser {
public:
    explicit MessageParser(MessageSink& sink, ParserLimits limits = {});

    void feed(std::string_view data);
    // One whole line without its newline, for callers that already split lines (the
    // queue file reader); not to be mixed with feed() of a partial line.
    void feed_line(std::string_view l);
    // End of input: a last line without newline still counts, the header is flushed.
    void finish();

    bool in_header() const { return in_header_; }
    // True when some header was longer than header_size_limit.
    bool header_truncated() const { return truncated_; }
    // Bytes fed so far.
    size_t size() const { return size_; }
    // True when the MIME structure went deeper than mime_nesting_limit (the deeper
    // levels were then treated as plain content).
    bool nesting_exceeded() const { return nesting_exceeded_; }

private:
    void line(std::string_view l);
    void header_line(std::string_view l);
    void append_header(std::string_view text);
    void flush_header();
    void end_headers();
    void note_content_type(std::string_view header);
    bool boundary_line(std::string_view l);
    void enter_body(std::string_view first_line);

    struct Boundary {
        std::string text;
        bool digest = false;        // multipart/digest: parts default to message/rfc822
        size_t nested_before = 0;   // nested_depth_ when the multipart began
    };
    // The Content-Type of the header section being read (defaults by context).
    struct ContentType {
        std::string type = "text", subtype = "plain", boundary;
    };

    MessageSink& sink_;
    ParserLimits limits_;
    std::string partial_;  // an incomplete line
    std::string header_;   // the logical header being collected
    bool in_header_ = true;
    bool truncated_ = false;
    bool finished_ = false;
    size_t size_ = 0;
    HeaderClass class_ = HeaderClass::Primary;
    ContentType content_;
    std::vector<Boundary> boundaries_;
    size_t nested_depth_ = 0;
    bool nesting_exceeded_ = false;
};

}  // namespace postern::message
