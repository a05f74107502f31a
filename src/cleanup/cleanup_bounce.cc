// Local submissions are bounced, not refused (Postfix's cleanup_bounce): pickup and
// local forwarding have nobody to show a refusal to, so a message that header/body
// checks, message_size_limit or the hop limit rejects is queued with every recipient
// done and one bounce-log entry each. qmgr then finds nothing to deliver and a bounce
// log, and has bounce send the notice from the queued copy. Unlike Postfix, cleanup does
// not call bounce itself: a synchronous call from cleanup to bounce, which submits its
// notice through cleanup, could wait on itself.
#include <sys/time.h>

#include "cleanup_message.h"
#include "util/dsn/dsn_text.h"
#include "util/log/log.h"
#include "util/log/mail_events.h"

namespace postern::cleanup {

namespace proto = ipc::mail;

bool CleanupMessage::bounce_instead() {
    constexpr long kBounceable = proto::kCleanupStatCont | proto::kCleanupStatSize | proto::kCleanupStatHops;
    if (!(flags_ & proto::kCleanupBounce) || errs_ == 0 || (errs_ & ~kBounceable) || recipients_.empty())
        return false;
    std::string text = reason();  // "5.7.1 message content rejected"
    std::string dsn = "5.0.0";
    if (size_t sp = text.find(' '); sp != std::string::npos && dsn::is_status_code(text.substr(0, sp))) {
        dsn = text.substr(0, sp);
        text.erase(0, sp + 1);
    }
    dsn[0] = '5';
    long now = time(nullptr);
    for (queue::Recipient& r : recipients_) {
        r.done = true;
        proto::DeliveryLogEntry e;
        e.recipient = r.address;
        e.orig_rcpt = r.original;
        e.dsn_orcpt = r.dsn_orcpt;
        e.notify = r.dsn_notify;
        e.status = dsn;
        e.action = "failed";
        e.reason = text;
        e.relay = "none";
        e.when = now;
        bounce_entries_.push_back(std::move(e));
    }
    errs_ = 0;
    reason_.clear();
    write_file();
    return true;
}

void CleanupMessage::log_bounces() const {
    timeval now{};
    gettimeofday(&now, nullptr);
    for (const proto::DeliveryLogEntry& b : bounce_entries_) {
        log::DeliveryEvent e;
        e.queue_id = queue_id();
        e.recipient = b.recipient;
        e.orig_recipient = b.orig_rcpt;
        e.relay = "none";
        e.times.incoming_arrival = {env_.arrival_sec, static_cast<suseconds_t>(env_.arrival_usec)};
        e.dsn = b.status;
        e.status = "bounced";
        e.reason = b.reason;
        log::info("%s", log::delivery_line(e, now).c_str());
    }
}

}  // namespace postern::cleanup
