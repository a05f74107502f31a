// Moving queue files into active/ and reading their envelopes.
#include <event2/event.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "qmgr/qmgr.h"
#include "util/log/log.h"
#include "util/log/mail_events.h"
#include "util/queue/delivery_log.h"

namespace postern::qmgr {

// A previous qmgr stopped with files in active/: they go back through incoming/ (their
// done marks tell which recipients are finished), as Postfix's qmgr does at start.
void Qmgr::recover_active() {
    auto ids = layout_.list(queue::kActive);
    if (!ids) {
        log::warn("scan active queue: %s", ids.error().c_str());
        return;
    }
    for (const std::string& id : *ids) {
        if (Status st = layout_.move(id, queue::kActive, queue::kIncoming); !st)
            log::warn("%s: requeue from active: %s", id.c_str(), st.error().c_str());

    }
}

void Qmgr::run_scans() {
    bool incoming = scan_incoming_, deferred = scan_deferred_, ignore_time = ignore_time_;
    scan_incoming_ = scan_deferred_ = ignore_time_ = false;
    scan_blocked_ = false;
    if (incoming) start_feed(queue::kIncoming, ignore_time);
    if (deferred) start_feed(queue::kDeferred, ignore_time);
    feed();
}

// A fresh listing of the queue replaces the one being fed (what is left of it is in the
// new listing too); a flush asked for earlier still holds for it.
void Qmgr::start_feed(std::string_view queue_name, bool ignore_time) {
    auto ids = layout_.list(queue_name);
    if (!ids) {
        log::warn("scan %s queue: %s", std::string(queue_name).c_str(), ids.error().c_str());
        return;
    }
    auto old = std::find_if(feeds_.begin(), feeds_.end(), [&](const Feed& f) { return f.queue == queue_name; });
    if (old != feeds_.end()) {
        ignore_time |= old->ignore_time;
        feeds_.erase(old);
    }
    feeds_.push_back(Feed{queue_name, ignore_time, std::move(*ids), 0});
}

// Activates up to kFeedSlice files, taking the queues in turn (as Postfix's qmgr
// alternates incoming and deferred), hands out work, and comes back on the next loop turn.
void Qmgr::feed() {
    constexpr int kFeedSlice = 10;
    if (stopping_) return;
    int budget = kFeedSlice;
    size_t turn = 0;
    while (!feeds_.empty() && budget > 0) {
        turn %= feeds_.size();
        Feed& f = feeds_[turn];
        if (f.next == f.ids.size()) {
            feeds_.erase(feeds_.begin() + static_cast<long>(turn));
            continue;
        }
        if (static_cast<long>(messages_.size()) >= settings_.active_limit) {
            // Picked up again when a message leaves the active queue.
            scan_blocked_ = true;
            for (const Feed& blocked : feeds_) {
                if (blocked.queue == queue::kIncoming) scan_incoming_ = true;
                else scan_deferred_ = true;
                ignore_time_ |= blocked.ignore_time;
            }
            feeds_.clear();
            break;
        }
        const std::string& id = f.ids[f.next++];
        if (messages_.count(id) == 0) {
            activate(f.queue, id, f.ignore_time);
            --budget;
        }
        ++turn;
    }
    dispatch();
    if (!feeds_.empty()) {
        timeval now{0, 0};
        event_add(feed_event_, &now);
    }
}

void Qmgr::quarantine(const std::string& id) {
    log::warn("saving corrupt file \"%s\" from queue \"%s\" to queue \"%s\"", id.c_str(),
              std::string(queue::kActive).c_str(), std::string(queue::kCorrupt).c_str());
    if (Status st = layout_.move(id, queue::kActive, queue::kCorrupt); !st)
        log::warn("%s: %s", id.c_str(), st.error().c_str());
}

void Qmgr::activate(std::string_view queue_name, const std::string& id, bool ignore_time) {
    struct stat st{};
    if (stat(layout_.path(queue_name, id).c_str(), &st) != 0) return;  // gone meanwhile
    // Not committed: cleanup is still writing it (or died; postsuper cleans up).
    if (!queue::is_complete_mode(st.st_mode)) return;
    if (queue_name == queue::kDeferred && !retry_time_reached(st.st_mtime, time(nullptr), ignore_time)) return;
    if (Status s = layout_.move(id, queue_name, queue::kActive); !s) {
        log::warn("%s: move to active: %s", id.c_str(), s.error().c_str());
        return;
    }
    auto opened = queue::open_queue_file(layout_.path(queue::kActive, id), false);
    if (!opened) {
        log::warn("%s: %s", id.c_str(), opened.error().c_str());
        return;  // left in active/: the next start requeues it
    }
    queue::QueueFileReader reader(queue::fd_source(opened->fd.get()));
    auto env = reader.read_envelope();
    if (!env) {
        if (reader.state() == queue::FileState::Io) {
            log::warn("%s: %s", id.c_str(), env.error().c_str());
            (void)layout_.move(id, queue::kActive, queue_name);
        } else {
            log::warn("%s: %s", id.c_str(), env.error().c_str());
            quarantine(id);
        }
        return;
    }
    // The defer log of an earlier pass speaks of recipients this pass tries again: it is
    // started afresh (as Postfix does), so a later notice lists each reason once.
    if (Status rm = queue::remove_delivery_log(layout_, queue::kDefer, id); !rm)
        log::warn("%s: %s", id.c_str(), rm.error().c_str());
    auto msg = std::make_unique<ActiveMessage>(id, std::move(*env));
    ActiveMessage& m = *msg;
    messages_.emplace(id, std::move(msg));
    log::info("%s", log::from_line(id, m.sender(), m.envelope().size.content_size,
                                   static_cast<int>(m.recipients().size()))
                        .c_str());
    route(m);
}

}  // namespace postern::qmgr
