// Settling a message after its last delivery of this pass: logs, notifications, and
// either removal or the move back to deferred/ with the next retry time.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "qmgr/qmgr.h"
#include "util/base/unique_fd.h"
#include "util/log/log.h"
#include "util/log/mail_events.h"
#include "util/queue/delivery_log.h"

namespace postern::qmgr {

namespace mail = ipc::mail;

bool Qmgr::log_exists(std::string_view log_queue, const std::string& id) const {
    struct stat st{};
    return stat(layout_.path(log_queue, id).c_str(), &st) == 0;
}

// Any message may have logs of an earlier pass (postqueue -i moves deferred mail back to
// incoming/), so the bounce and trace checks cost a failed lookup each for fresh mail.

// Appends this pass's entries to bounce/, defer/ and trace/. Not synced: the bounce log
// is handed to the bounce service right away, and a lost defer or trace entry only
// changes a notice's text (the recipient itself stays undone in the queue file).
bool Qmgr::write_logs(ActiveMessage& msg) {
    bool ok = true;
    auto append = [&](std::string_view log_queue, const std::vector<mail::DeliveryLogEntry>& entries) {
        if (entries.empty()) return;
        if (Status st = queue::append_delivery_log(layout_, log_queue, msg.id(), entries, false); !st) {
            log::warn("%s: %s", msg.id().c_str(), st.error().c_str());
            ok = false;
        }
    };
    append(queue::kBounce, msg.bounce_log);
    append(queue::kDefer, msg.defer_log);
    append(queue::kTrace, msg.trace_log);
    return ok;
}

bool Qmgr::bounce_call(ActiveMessage& msg, mail::BounceCommand command) {
    auto reply = bounce_.call(msg.make_bounce(command).to_record());
    if (reply) {
        auto parsed = mail::BounceReply::from_record(*reply);
        if (parsed && parsed->status == 0) return true;
        log::warn("%s: %s service: %s", msg.id().c_str(), std::string(mail::bounce_command_name(command)).c_str(),
                  parsed ? "request failed" : parsed.error().c_str());
        return false;
    }
    bounce_.disconnect();
    log::warn("%s: %s service: %s", msg.id().c_str(), std::string(mail::bounce_command_name(command)).c_str(),
              reply.error().c_str());
    return false;
}

int Qmgr::open_active(ActiveMessage& msg, UniqueFd& fd) {
    if (!fd) {
        auto opened = queue::open_queue_file(layout_.path(queue::kActive, msg.id()), true);
        if (opened) {
            fd = std::move(opened->fd);
        } else {
            log::warn("%s: %s", msg.id().c_str(), opened.error().c_str());
        }
    }
    return fd.get();
}

void Qmgr::finish(ActiveMessage& msg) {
    long now = time(nullptr);
    UniqueFd fd;  // the queue file, opened only when it must change
    bool logs_ok = write_logs(msg);
    bool deferred = msg.any_deferred();
    bool keep = !logs_ok;
    // Bounced recipients: one notice for all of them, now, even if others wait.
    bool bounce_flushed = true;
    if (!msg.bounce_log.empty() || log_exists(queue::kBounce, msg.id())) {
        bounce_flushed = bounce_call(msg, mail::BounceCommand::Flush);
        keep |= !bounce_flushed;
    }
    if (deferred) {
        if (is_expired(settings_.retry, msg.sender(), msg.arrival(), now)) {
            log::info("%s: from=<%s>, status=expired, returned to sender", msg.id().c_str(), msg.sender().c_str());
            if (bounce_call(msg, mail::BounceCommand::DeferFlush)) deferred = false;
        } else if (msg.envelope().warn_time && warning_due(*msg.envelope().warn_time, now)) {
            if (bounce_call(msg, mail::BounceCommand::Warn)) {
                // Not synced alone: a lost update costs one more warning, never mail.
                if (Status st = queue::update_warn_time(open_active(msg, fd), msg.envelope().warn_offset, 0, false); !st)
                    log::warn("%s: %s", msg.id().c_str(), st.error().c_str());
            }
        }
    }
    if (!msg.trace_log.empty() || log_exists(queue::kTrace, msg.id()))
        (void)bounce_call(msg, mail::BounceCommand::Trace);
    if (deferred || keep) {
        keep_deferred(msg, open_active(msg, fd), !bounce_flushed, logs_ok);
    } else {
        remove_message(msg);
    }
    std::string id = msg.id();
    messages_.erase(id);  // msg is gone from here on
    if (scan_blocked_) request_scan(false, false, false);
}

// Some recipients wait: mark the finished ones done (one fsync), stamp the next retry
// time as the file's mtime and move it to deferred/.
void Qmgr::keep_deferred(ActiveMessage& msg, int fd, bool sync_bounce_log, bool logs_written) {
    if (sync_bounce_log) {
        // The bounce service did not take the log: it must outlive the done marks.
        UniqueFd log_fd(open(layout_.path(queue::kBounce, msg.id()).c_str(), O_RDONLY | O_CLOEXEC));
        if (log_fd && fsync(log_fd.get()) != 0) log::warn("%s: fsync bounce log: %s", msg.id().c_str(), std::strerror(errno));
    }
    // Without their log entries, finished recipients stay undone: they are tried again
    // (a possible duplicate) rather than bounced without a notice.
    std::vector<uint64_t> done = logs_written ? msg.done_offsets() : std::vector<uint64_t>{};
    if (!done.empty()) {
        if (Status st = queue::mark_done_many(fd, done); !st)
            log::warn("%s: %s", msg.id().c_str(), st.error().c_str());
    }
    long now = time(nullptr);
    long delay = backoff_delay(settings_.retry, msg.arrival(), now);
    timespec times[2] = {{now, 0}, {now + delay, 0}};
    if (futimens(fd, times) != 0)
        log::warn("%s: set retry time: %s", msg.id().c_str(), std::strerror(errno));
    if (Status st = layout_.move(msg.id(), queue::kActive, queue::kDeferred); !st)
        log::warn("%s: move to deferred: %s", msg.id().c_str(), st.error().c_str());
}

// Every recipient has its outcome and the bounce service holds any notice.
// The unlink runs on the remover thread; the log line comes when it is done.
void Qmgr::remove_message(ActiveMessage& msg) {
    auto report = [](const std::string& id, const Status& st) {
        if (!st)
            log::warn("%s: remove from active: %s", id.c_str(), st.error().c_str());
        else
            log::info("%s", log::removed_line(id).c_str());
    };
    if (!remover_) {
        report(msg.id(), layout_.remove(queue::kActive, msg.id()));
        return;
    }
    remover_->post([this, id = msg.id(), report] {
        Status st = layout_.remove(queue::kActive, id);
        return daemon::WorkerThread::Completion([id, st, report] { report(id, st); });
    });
}

}  // namespace postern::qmgr
