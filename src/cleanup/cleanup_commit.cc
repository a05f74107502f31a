#include "cleanup_commit.h"

#include <event2/event.h>

#include "util/ipc/mail_proto.h"
#include "util/log/log.h"

namespace postern::cleanup {

namespace proto = ipc::mail;

GroupCommit::GroupCommit(event_base* base, const queue::Layout& layout, Reply reply)
    : layout_(layout), reply_(std::move(reply)) {
    if (base) timer_ = evtimer_new(base, &GroupCommit::on_timer, this);
}

GroupCommit::~GroupCommit() {
    if (timer_) event_free(timer_);
}

void GroupCommit::on_timer(int, short, void* arg) {
    auto* self = static_cast<GroupCommit*>(arg);
    self->armed_ = false;
    self->flush();
}

void GroupCommit::add(std::unique_ptr<CleanupMessage> message, uint64_t client) {
    pending_.push_back({std::move(message), client});
    if (pending_.size() >= kMaxBatch || !timer_) {
        flush();
        return;
    }
    if (!armed_) {
        timeval tv{0, kWindowUsec};
        evtimer_add(timer_, &tv);
        armed_ = true;
    }
}

// A held message goes to hold/ before it is committed, so qmgr never sees it complete in
// incoming/. (The rename becomes durable with the file's own fsync only on file systems
// that order metadata; after a crash it may show up in incoming/ and be delivered.)
void GroupCommit::hold(CleanupMessage& message) {
    Status st = layout_.move(message.queue_id(), queue::kIncoming, queue::kHold);
    if (!st) log::warn("%s: cannot move to hold queue: %s", message.queue_id().c_str(), st.error().c_str());
}

void GroupCommit::flush() {
    if (armed_) {
        evtimer_del(timer_);
        armed_ = false;
    }
    if (pending_.empty()) return;
    std::vector<Item> batch;
    batch.swap(pending_);
    std::vector<queue::QueueFileWriter*> files;
    for (Item& item : batch) {
        if (item.message->held()) hold(*item.message);
        files.push_back(&item.message->file());
    }
    Status st = queue::commit_many(files);
    bool wake_qmgr = false;
    for (Item& item : batch) {
        proto::CleanupResult result;
        result.queue_id = item.message->queue_id();
        if (st) {
            wake_qmgr = wake_qmgr || !item.message->held();
        } else {
            log::warn("%s: %s", result.queue_id.c_str(), st.error().c_str());
            if (item.message->held()) (void)layout_.remove(queue::kHold, result.queue_id);
            (void)item.message->file().abandon();
            result.status = proto::kCleanupStatWrite;
            result.reason = proto::cleanup_status_text(result.status);
        }
        reply_(item.client, result);
    }
    if (wake_qmgr) {
        Status t = proto::send_trigger(layout_.queue_directory(), proto::kQmgrSocket,
                                       std::string(1, proto::kTriggerScanIncoming), 1);
        if (!t) log::debug("qmgr trigger: %s", t.error().c_str());
    }
}

}  // namespace postern::cleanup
