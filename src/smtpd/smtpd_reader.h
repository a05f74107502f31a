// The SMTP input side as a pure state machine: bytes in, commands and message content
// out. No sockets, no libevent, no configuration -- so it is unit-tested one byte at a
// time and in random splits, and fuzzed (tests/fuzz/). The session feeds whatever the
// client sent and pulls events one at a time; it switches the mode (command lines, DATA
// content, a BDAT chunk) between events, which is how pipelined input after DATA or BDAT
// lands in the right place.
//
// Command lines end in LF (a CR before it is dropped); a line longer than the limit is
// reported as LineTooLong with its first `limit` bytes, the rest of it skipped (Postfix's
// SMTP_GET_FLAG_SKIP: the truncated command is then carried out).
// DATA content is returned in bulk with CRLF -> LF and dot-unstuffing done, lines longer
// than the limit passed on in pieces. Whether "<LF>.<LF>" (bare newlines) ends DATA is
// the policy's business: the SMTP smuggling defence (smtpd_forbid_bare_newline).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace postern::smtpd {

enum class BareLf {
    Allow,      // "no": LF alone ends a line, "<LF>.<LF>" ends DATA (Postfix < 3.9 default)
    Normalize,  // "normalize"/"yes": LF ends a line, only "<CR><LF>.<CR><LF>" ends DATA
    Reject,     // "reject": as normalize, and lines with a bare LF are flagged
};

struct ReaderEvent {
    enum class Kind {
        None,         // need more input
        Command,      // text: one command line without its line end
        LineTooLong,  // text: the first `limit` bytes of a longer command line (the rest is skipped)
        Content,      // text: message bytes, LF line ends, unstuffed
        EndOfData,    // the "." line of DATA
        ChunkEnd,     // all bytes of the current BDAT chunk were returned as Content
    };
    Kind kind = Kind::None;
    std::string text;
    bool bare_lf = false;  // Command/Content: a line ended in LF without CR
};

class SmtpReader {
public:
    enum class Mode { Command, Data, Chunk };

    explicit SmtpReader(size_t line_limit, BareLf bare_lf = BareLf::Allow)
        : line_limit_(line_limit < 16 ? 16 : line_limit), policy_(bare_lf) {}

    void feed(std::string_view bytes) { buf_.append(bytes); }
    // The next event in the current mode; Kind::None when more input is needed.
    ReaderEvent next();

    Mode mode() const { return mode_; }
    // smtpd_forbid_bare_newline_exclusions: decided once the client is known.
    void set_bare_lf(BareLf policy) { policy_ = policy; }
    void start_data();                 // after "354": content until the "." line
    void start_chunk(size_t size);     // after "BDAT size": exactly size raw bytes
    void start_commands() { mode_ = Mode::Command; }
    // After BDAT LAST (or RSET): a CR held back at the end of the last chunk, if any.
    std::string end_chunks();
    // Unread input (pipelining detection, STARTTLS injection defence).
    size_t buffered() const { return buf_.size() - pos_; }
    std::string_view peek() const { return std::string_view(buf_).substr(pos_); }
    void discard_buffered();

private:
    ReaderEvent next_command();
    ReaderEvent next_content();
    ReaderEvent next_chunk();
    void compact();

    size_t line_limit_;
    BareLf policy_;
    Mode mode_ = Mode::Command;
    std::string buf_;
    size_t pos_ = 0;
    bool skipping_ = false;       // inside an overlong command line
    bool mid_line_ = false;       // DATA: the last content piece did not end a line
    bool prev_crlf_ = true;       // DATA: the previous line ended in CRLF
    size_t chunk_left_ = 0;
    bool pending_cr_ = false;     // BDAT: a CR whose LF may start the next piece
};

}  // namespace postern::smtpd
