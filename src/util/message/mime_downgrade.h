// 8-bit to 7-bit conversion of a message on its way to a server that does not announce
// 8BITMIME, as Postfix's smtp(8) does with mime_state's MIME_OPT_DOWNGRADE: the content
// of every leaf entity whose Content-Transfer-Encoding is 8bit or binary becomes
// quoted-printable, and a multipart or message/* entity so declared becomes 7bit (the
// content of a message/* other than rfc822 is still converted, as in Postfix). The
// old Content-Transfer-Encoding header goes; the new one ends the entity's headers.
// Everything else -- 8-bit headers, 8-bit bytes in content without an 8-bit
// declaration, non-MIME bodies -- passes unchanged, as in Postfix.
//
// Streaming: one line in, zero or more lines out, nothing buffered beyond a header.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "util/message/message_parser.h"

namespace postern::message {

// Appends the quoted-printable form of one content line as Postfix's
// mime_state_downgrade() writes it: lines of at most 76 bytes (a soft break "=" once
// 73 are out), trailing blank encoded. Calls `out` once per output line.
void quoted_printable_line(std::string_view line, const std::function<void(std::string_view)>& out);

class MimeDowngrade : private MessageSink {
public:
    using LineOut = std::function<void(std::string_view)>;
    // `limits.mime` is forced on: the conversion follows the MIME structure.
    MimeDowngrade(LineOut out, ParserLimits limits);

    // One message line without its newline; the converted lines go to `out`.
    void line(std::string_view l) { parser_.feed_line(l); }
    // End of message: a last pending header goes out.
    void finish() { parser_.finish(); }
    // The structure went deeper than mime_nesting_limit (Postfix bounces such mail
    // when it must convert it: "MIME nesting exceeds safety limit").
    bool nesting_exceeded() const { return parser_.nesting_exceeded(); }

private:
    void header(std::string& h) override { entity_header(h); }
    void part_header(std::string& h, HeaderClass) override { entity_header(h); }
    void headers_done() override {}
    void header_section_done(HeaderClass cls, std::string_view type, std::string_view subtype) override;
    void boundary(std::string_view l) override;
    void body_line(std::string_view l) override;
    void entity_header(const std::string& h);

    LineOut out_;
    MessageParser parser_;
    bool eight_bit_ = false;   // the headers so far declare 8bit or binary
    bool converting_ = false;  // the lines now are content to encode
};

}  // namespace postern::message
