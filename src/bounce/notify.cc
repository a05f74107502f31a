// Which notices one request produces, following Postfix's bounce_notify_service,
// bounce_warn_service and bounce_trace_service:
//
//   failure (flush, defer_flush)  sender: "sender non-delivery notification" (NOTIFY
//       FAILURE or none), plus a headers-only postmaster copy for notify_classes=bounce;
//       null sender: a double bounce to 2bounce_notice_recipient when notify_classes has
//       bounce or 2bounce, else nothing; double-bounce sender: never a triple bounce.
//       The log is removed only when the notices were queued.
//   delay (warn)  sender: "sender delay notification" (NOTIFY DELAY or none), plus a
//       postmaster copy for notify_classes=delay; the log stays.
//   success (trace)  sender: "sender delivery status notification" (NOTIFY SUCCESS);
//       for sendmail -bv / -v (trace_flags) the verify template's "Mail Delivery Status
//       Report" with every traced recipient, whatever its NOTIFY.
#include "bounce/bounce.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/queue/delivery_log.h"

namespace postern::bounce {

namespace mail = ipc::mail;

namespace {

struct Job {
    const Settings& settings;
    const mail::BounceRequest& request;
    std::vector<dsn::ReportRecipient> entries;
    dsn::OriginalMessage original;
};

std::vector<dsn::ReportRecipient> to_report(const std::vector<mail::DeliveryLogEntry>& log) {
    std::vector<dsn::ReportRecipient> out;
    for (const auto& e : log)
        out.push_back({e.recipient, e.orig_rcpt, e.dsn_orcpt, e.notify, e.status, e.action, e.reason, e.relay});
    return out;
}

std::vector<dsn::ReportRecipient> select(const std::vector<dsn::ReportRecipient>& all, long filter) {
    std::vector<dsn::ReportRecipient> out;
    for (const auto& r : all)
        if (dsn::notify_wanted(r.notify, filter)) out.push_back(r);
    return out;
}

bool is_double_bounce(const std::string& address, const Settings& s) {
    const std::string& dbs = s.double_bounce_sender;
    return iequals(address, dbs) || iequals(address, dbs + "@" + s.notice.myorigin) ||
           iequals(address, dbs + "@" + s.notice.myhostname);
}

dsn::Notice base_notice(const Job& job, dsn::NoticeKind kind) {
    dsn::Notice n;
    n.kind = kind;
    n.queue_id = job.request.queue_id;
    n.envid = job.request.envid;
    n.encoding = job.request.encoding;
    n.smtputf8 = job.request.smtputf8 != 0;
    return n;
}

// Queues one notice and logs it as Postfix does ("ID: sender non-delivery
// notification: NEWID"); false when it could not be queued.
bool send(const Job& job, dsn::Notice notice, const std::string& from, const std::string& to,
          const char* what, std::string* new_id = nullptr) {
    auto id = post_notice(job.settings, from, to, std::move(notice), job.original);
    if (!id) {
        log::warn("%s: %s not sent: %s", job.request.queue_id.c_str(), what, id.error().c_str());
        return false;
    }
    log::info("%s: %s: %s", job.request.queue_id.c_str(), what, id->c_str());
    if (new_id) *new_id = *id;
    return true;
}

// A postmaster notice: every recipient regardless of NOTIFY, no boiler-plate.
dsn::Notice postmaster_notice(const Job& job, dsn::NoticeKind kind, dsn::ReturnContent ret) {
    dsn::Notice n = base_notice(job, kind);
    n.postmaster_copy = true;
    n.ret = ret;
    n.recipients = job.entries;
    return n;
}

bool notify_failure(const Job& job, std::string& new_id) {
    const Settings& s = job.settings;
    const std::string& sender = job.request.sender;
    const char* id = job.request.queue_id.c_str();
    if (is_double_bounce(sender, s)) {
        log::warn("%s: undeliverable postmaster notification discarded", id);
        return true;
    }
    if (sender.empty()) {
        if (!s.notify_bounce && !s.notify_2bounce) return true;
        return send(job, postmaster_notice(job, dsn::NoticeKind::Failure, dsn::ReturnContent::Full),
                    s.double_bounce_sender, s.double_bounce_rcpt, "postmaster non-delivery notification", &new_id);
    }
    dsn::Notice n = base_notice(job, dsn::NoticeKind::Failure);
    n.ret = (job.request.ret & mail::kRetHeaders) ? dsn::ReturnContent::Headers : dsn::ReturnContent::Full;
    n.recipients = select(job.entries, mail::kNotifyFailure);
    // A log that is gone or damaged still gets the sender a notice ("report
    // unavailable"); recipients that all declined one (NOTIFY) get none, but the
    // postmaster copy goes out all the same, as in Postfix.
    bool wanted = !n.recipients.empty() || job.entries.empty();
    if (wanted && !send(job, std::move(n), "", sender, "sender non-delivery notification", &new_id))
        return false;
    if (s.notify_bounce &&
        !send(job, postmaster_notice(job, dsn::NoticeKind::Failure, dsn::ReturnContent::Headers),
              s.double_bounce_sender, s.bounce_rcpt, "postmaster non-delivery notification"))
        log::warn("%s: postmaster notice failed while bouncing to %s", id, sender.c_str());
    return true;
}

bool notify_delay(const Job& job, std::string& new_id) {
    const Settings& s = job.settings;
    const std::string& sender = job.request.sender;
    if (is_double_bounce(sender, s)) {
        log::warn("%s: undeliverable postmaster notification discarded", job.request.queue_id.c_str());
        return true;
    }
    if (job.entries.empty()) return true;
    if (sender.empty()) {
        if (!s.notify_delay) return true;
        return send(job, postmaster_notice(job, dsn::NoticeKind::Delay, dsn::ReturnContent::Headers),
                    s.double_bounce_sender, s.delay_rcpt, "postmaster delay notification", &new_id);
    }
    dsn::Notice n = base_notice(job, dsn::NoticeKind::Delay);
    n.ret = dsn::ReturnContent::Headers;
    n.recipients = select(job.entries, mail::kNotifyDelay);
    if (!n.recipients.empty() && !send(job, std::move(n), "", sender, "sender delay notification", &new_id))
        return false;
    if (s.notify_delay &&
        !send(job, postmaster_notice(job, dsn::NoticeKind::Delay, dsn::ReturnContent::Headers),
              s.double_bounce_sender, s.delay_rcpt, "postmaster delay notification"))
        log::warn("%s: postmaster notice failed while warning %s", job.request.queue_id.c_str(), sender.c_str());
    return true;
}

bool notify_success(const Job& job, std::string& new_id) {
    const std::string& sender = job.request.sender;
    const char* id = job.request.queue_id.c_str();
    if (sender.empty() || is_double_bounce(sender, job.settings)) {
        log::info("%s: not sending trace/success notification for %s message", id,
                  sender.empty() ? "single-bounce" : "double-bounce");
        return true;
    }
    bool report = job.request.trace_flags & (mail::kTraceFlagVerify | mail::kTraceFlagRecord);
    dsn::Notice n = base_notice(job, report ? dsn::NoticeKind::Verify : dsn::NoticeKind::Success);
    n.ret = dsn::ReturnContent::Headers;
    n.recipients = report ? job.entries : select(job.entries, mail::kNotifySuccess);
    if (n.recipients.empty()) return true;
    return send(job, std::move(n), "", sender, "sender delivery status notification", &new_id);
}

std::string_view log_queue(mail::BounceCommand c) {
    switch (c) {
    case mail::BounceCommand::Flush:
        return queue::kBounce;
    case mail::BounceCommand::Trace:
        return queue::kTrace;
    default:
        return queue::kDefer;
    }
}

}  // namespace

mail::BounceReply handle_request(const Settings& settings, const queue::Layout& layout,
                                 const mail::BounceRequest& request) {
    mail::BounceReply reply;
    std::string_view logq = log_queue(request.command);
    auto log_entries = queue::read_delivery_log(layout, logq, request.queue_id);
    if (!log_entries) log::warn("%s: %s", request.queue_id.c_str(), log_entries.error().c_str());
    bool warn_only = request.command == mail::BounceCommand::Warn;
    bool trace = request.command == mail::BounceCommand::Trace;
    // Delay warnings and success reports return headers only; a bounce may return all.
    auto original = read_original(layout, request.queue_name, request.queue_id, warn_only || trace,
                                  settings.notice.bounce_size_limit);
    if (!original) {
        log::warn("%s: %s", request.queue_id.c_str(), original.error().c_str());
        reply.status = 1;
        return reply;
    }
    Job job{settings, request, log_entries ? to_report(*log_entries) : std::vector<dsn::ReportRecipient>{},
            std::move(*original)};
    bool ok = warn_only ? notify_delay(job, reply.queue_id)
              : trace   ? notify_success(job, reply.queue_id)
                        : notify_failure(job, reply.queue_id);
    if (!ok) {
        reply.status = 1;
        return reply;
    }
    if (!warn_only) {
        if (Status st = queue::remove_delivery_log(layout, logq, request.queue_id); !st) {
            log::warn("%s: %s", request.queue_id.c_str(), st.error().c_str());
            reply.status = 1;
        }
    }
    return reply;
}

}  // namespace postern::bounce
