// Message headers as Postfix classifies them (header_opts.c): which known header a line
// is, and what cleanup does with it (sender or recipient addresses to rewrite, extract
// recipients from, MIME, Resent-, drop). Names compare case-insensitively; the
// message_drop_headers list marks more names for dropping.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace postern::message {

enum class HeaderType {
    Other, ApparentlyTo, Bcc, Cc, ContentDescription, ContentDisposition, ContentId,
    ContentLength, ContentTransferEncoding, ContentType, DeliveredTo, DispositionNotificationTo,
    Date, ErrorsTo, From, MailFollowupTo, MessageId, MimeVersion, Received, ReplyTo,
    ResentBcc, ResentCc, ResentDate, ResentFrom, ResentMessageId, ResentReplyTo, ResentSender,
    ResentTo, ReturnPath, ReturnReceiptTo, Sender, To,
};

enum HeaderFlag : unsigned {
    kHeaderSender = 1u << 0,   // addresses rewritten as sender addresses
    kHeaderRecip = 1u << 1,    // addresses rewritten as recipient addresses
    kHeaderExtract = 1u << 2,  // sendmail -t takes recipients from it
    kHeaderMime = 1u << 3,     // MIME header (mime_header_checks)
    kHeaderResent = 1u << 4,   // a Resent- header: added headers become Resent- ones
    kHeaderDrop = 1u << 5,     // removed from the message (message_drop_headers)
};

struct HeaderInfo {
    std::string_view name;  // preferred capitalization ("" for drop-only names)
    HeaderType type = HeaderType::Other;
    unsigned flags = 0;
};

// Postfix's is_header(): a name of printable non-space ASCII without ':', optional
// blanks, then ':'. Returns the name (without the blanks), nullopt when not a header.
std::optional<std::string_view> header_name(std::string_view line);
inline bool is_header(std::string_view line) { return header_name(line).has_value(); }

// The value after the colon with leading whitespace removed (newlines of a folded
// header kept).
std::string_view header_value(std::string_view header);

// Joins a folded header into one line: every "\n" (and "\r\n") before whitespace goes.
std::string unfold(std::string_view header);

// Known headers plus the drop list; built once per process.
class HeaderTable {
public:
    // `drop` = message_drop_headers (names, any case).
    explicit HeaderTable(const std::vector<std::string>& drop = default_drop_list());
    // Info for a header line or bare name; nullptr when neither known nor dropped.
    const HeaderInfo* find_line(std::string_view line) const;
    const HeaderInfo* find_name(std::string_view name) const;

    static std::vector<std::string> default_drop_list();

private:
    std::unordered_map<std::string, HeaderInfo> by_name_;  // lower-case keys
};

}  // namespace postern::message
