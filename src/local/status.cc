// Recording one delivery attempt: the log record Postfix writes ("to=<...>, orig_to=<...>,
// relay=local, delay=..., dsn=..., status=... (reason)") and the top-level recipient's
// verdict for qmgr: any deferral defers the recipient (it is retried whole, as Postfix
// retries it), else any bounce bounces it, else it was delivered.
#include <sys/time.h>

#include "local/local.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/log/mail_events.h"

namespace postern::local {

namespace {

int severity(char status_class) { return status_class == '4' ? 2 : status_class == '5' ? 1 : 0; }

const char* status_word(DelStat s) {
    switch (s) {
        case DelStat::Sent: return "sent";
        case DelStat::Deferred: return "deferred";
        case DelStat::Bounced: return "bounced";
    }
    return "deferred";
}

const char* default_action(DelStat s) {
    switch (s) {
        case DelStat::Sent: return "delivered";
        case DelStat::Deferred: return "delayed";
        case DelStat::Bounced: return "failed";
    }
    return "delayed";
}

}  // namespace

bool RequestContext::been_here(const std::string& key) {
    if (seen.count(key)) return true;
    if (cfg.duplicate_filter_limit <= 0 || static_cast<long>(seen.size()) < cfg.duplicate_filter_limit)
        seen.insert(key);
    return false;
}

DelStat record_result(RequestContext& ctx, const MessageAttr& attr, DelStat status, std::string dsn,
                     std::string_view reason, std::string_view action) {
    timeval now{};
    gettimeofday(&now, nullptr);
    log::DeliveryEvent e;
    e.queue_id = ctx.request.queue_id;
    e.recipient = attr.recipient;
    e.orig_recipient = attr.orig_rcpt;
    e.relay = ctx.cfg.service;
    e.times.incoming_arrival = {ctx.request.arrival_sec, static_cast<suseconds_t>(ctx.request.arrival_usec)};
    e.times.active_arrival = ctx.request.active_arrival(ctx.handoff);
    e.times.agent_handoff = ctx.handoff;
    e.times.deliver_done = now;
    e.dsn = dsn;
    // Address verification probes are logged as such, never as deliveries.
    bool verify = ctx.request.flags & ipc::mail::kDeliveryFlagVerify;
    e.status = !verify ? status_word(status)
               : status == DelStat::Sent ? "deliverable"
               : status == DelStat::Bounced ? "undeliverable" : "deferred";
    e.reason = reason;
    e.delay_max_digits = ctx.cfg.delay_max_digits;
    log::info("%s", log::delivery_line(e, now).c_str());

    ipc::mail::RecipientResult r;
    r.status = std::move(dsn);
    r.action = action.empty() ? default_action(status) : std::string(action);
    r.reason = std::string(reason);
    r.relay = ctx.cfg.service;
    if (!ctx.verdict_set || severity(r.status_class()) > severity(ctx.verdict.status_class())) {
        long index = ctx.verdict.index;
        ctx.verdict = std::move(r);
        ctx.verdict.index = index;
        ctx.verdict_set = true;
    }
    return status;
}

DelStat from_failure(RequestContext& c, const MessageAttr& a, const mailbox::Failure& f,
                    std::string_view prefix) {
    std::string why = std::string(prefix) + f.reason;
    if (f.corrupt || f.dsn.empty() || f.dsn[0] == '4') return defer(c, a, f.dsn.empty() ? "4.3.0" : f.dsn, why);
    return bounce(c, a, f.dsn, why);
}

}  // namespace postern::local
