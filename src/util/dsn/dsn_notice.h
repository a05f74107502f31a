// Composes delivery status notifications as RFC 3464/3462 multipart/report messages,
// laid out as Postfix's bounce(8) writes them:
//
//   From/Subject/To/Auto-Submitted/MIME-Version/Content-Type (boundary
//   "QUEUEID.TIME/HOSTNAME"), [Content-Transfer-Encoding], Date, Message-Id
//   "This is a MIME-encapsulated message."
//   part 1  text/plain: template boiler-plate, then "<rcpt>: reason" per recipient
//   part 2  message/delivery-status: Reporting-MTA, Original-Envelope-Id,
//           X-Postern-Queue-ID, X-Postern-Sender, Arrival-Date; then per recipient
//           Final-Recipient, Original-Recipient, Action, Status, Remote-MTA,
//           Diagnostic-Code, Will-Retry-Until (delay warnings)
//   part 3  message/rfc822 (the original, Return-Path first) or text/rfc822-headers
//
// A pure function of its inputs (no files, no clock), so tests can check every byte.
// Lines end in LF, as cleanup expects. With SMTPUTF8 the report parts use RFC 6533's
// message/global-delivery-status, message/global and message/global-headers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/dsn/dsn_template.h"

namespace postern::dsn {

// One recipient of a report (a bounce/, defer/ or trace/ log entry).
struct ReportRecipient {
    std::string address;
    std::string orig_rcpt;   // address before aliasing; "" = none
    std::string dsn_orcpt;   // "rfc822;user@example" (DSN ORCPT); "" = none
    long notify = 0;         // DSN NOTIFY mask (mail_proto.h kNotify*); 0 = not given
    std::string status;      // "5.1.1"
    std::string action;      // failed, delayed, delivered, relayed, expanded
    std::string reason;
    std::string relay;       // "local", "none", "mx.example[192.0.2.1]:25"
};

// Postfix's NOTIFY filter: a recipient without NOTIFY (0) is always reported;
// otherwise only when its mask has a bit of `filter`. kNotifyOverride reports all
// (postmaster copies).
inline constexpr long kNotifyOverride = -1;
bool notify_wanted(long notify, long filter);

enum class ReturnContent { Full, Headers };

// The returned message as read from its queue file.
struct OriginalMessage {
    bool available = false;   // false: "--- Undelivered message unavailable ---"
    std::string sender;       // envelope sender; "" is shown as MAILER-DAEMON
    long arrival_time = 0;    // 0: no Arrival-Date
    long content_size = 0;    // queue file content size, compared to bounce_size_limit
    std::vector<std::string> lines;  // content lines; may stop after the header block
};

struct NoticeConfig {
    std::string myhostname;
    std::string myorigin;            // domain for unqualified addresses in headers
    std::string mail_name = "Postfix";
    long delay_warning_time = 0;     // seconds (delay template)
    long maximal_queue_lifetime = 5 * 86400;
    long bounce_size_limit = 50000;  // 0: no limit
    TemplateFile templates;          // bounce_template_file; unset kinds are built in
};

struct Notice {
    NoticeKind kind = NoticeKind::Failure;
    bool postmaster_copy = false;    // Postmaster-Subject, no boiler-plate, auto-generated
    std::string to;                  // header recipient, internal form
    std::string queue_id;            // of the original message
    std::string envid;               // DSN ENVID; "" = none
    std::string encoding;            // "7bit", "8bit" or "8bitmime", "" = none declared
    bool smtputf8 = false;
    ReturnContent ret = ReturnContent::Full;
    long now = 0;                    // Date, Message-Id, boundary
    std::string new_queue_id;        // of the notice, for Message-Id; "" = no Message-Id
    std::vector<ReportRecipient> recipients;  // already filtered
};

// What part 3 will hold: Headers when asked, or when the original is larger than
// bounce_size_limit (so a truncated copy never breaks the MIME structure).
ReturnContent effective_return(ReturnContent requested, const OriginalMessage& original,
                               long bounce_size_limit);

// The whole notice, header and body, LF line ends.
std::string compose_notice(const NoticeConfig& config, const Notice& notice,
                           const OriginalMessage& original);

}  // namespace postern::dsn
