// bounce(8): delivery status notifications from the logs that qmgr writes under
// bounce/, defer/ and trace/. One program serves master.cf's bounce, defer and trace
// services; the request says which log and which notice (util/ipc/mail_proto.h
// BounceRequest). Notices are composed by util/dsn and queued through cleanup with the
// null sender (double-bounce for postmaster notices); a notice that cannot be queued
// fails the request, so qmgr keeps the message and asks again later.
#pragma once

#include <string>
#include <vector>

#include "util/base/result.h"
#include "util/config/config.h"
#include "util/dsn/dsn_notice.h"
#include "util/ipc/mail_proto.h"
#include "util/queue/queue_layout.h"

namespace postern::bounce {

struct Settings {
    std::string queue_directory;
    dsn::NoticeConfig notice;
    bool notify_bounce = false;     // notify_classes: bounce
    bool notify_2bounce = false;    // notify_classes: 2bounce
    bool notify_delay = false;      // notify_classes: delay
    std::string bounce_rcpt;        // bounce_notice_recipient
    std::string double_bounce_rcpt; // 2bounce_notice_recipient
    std::string delay_rcpt;         // delay_notice_recipient
    std::string double_bounce_sender;
    long ipc_timeout = 3600;
};
Settings load_settings(const config::Config& config);

// The returned message from its queue file. A missing file is "unavailable" (the notice
// says so); any other read failure is an error. The body is not read when only the
// headers are wanted or the message is larger than `size_limit` (bounce_size_limit).
Result<dsn::OriginalMessage> read_original(const queue::Layout& layout, const std::string& queue_name,
                                           const std::string& queue_id, bool headers_only,
                                           long size_limit);

// Queues one notice through cleanup: the envelope from `sender` to `recipient`, the
// content composed with the new queue ID in its Message-Id. Returns that queue ID.
Result<std::string> post_notice(const Settings& settings, const std::string& sender,
                                const std::string& recipient, dsn::Notice notice,
                                const dsn::OriginalMessage& original);

// The work of one request; the reply's status is 0 when every required notice was
// queued (or none was needed).
ipc::mail::BounceReply handle_request(const Settings& settings, const queue::Layout& layout,
                                      const ipc::mail::BounceRequest& request);

}  // namespace postern::bounce
