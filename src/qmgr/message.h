// One message in the active queue: its envelope, the open queue file, and what has
// happened to each recipient during this pass. qmgr writes the delivery logs and the
// done marks from this record when the last delivery of the message has finished.
#pragma once

#include <sys/time.h>

#include <string>
#include <string_view>
#include <vector>

#include "util/ipc/mail_proto.h"
#include "util/queue/queue_file.h"

namespace postern::qmgr {

enum class Outcome { Pending, Delivered, Bounced, Deferred };

struct RecipientState {
    size_t index = 0;  // into envelope.recipients
    Outcome outcome = Outcome::Pending;
    std::string resolved;  // the address trivial-rewrite returned ("" = as in the file)
};

class ActiveMessage {
public:
    // The queue file is not kept open while its deliveries run (the active queue may hold
    // more messages than a process may have descriptors); finishing reopens it.
    ActiveMessage(std::string id, queue::Envelope env);

    const std::string& id() const { return id_; }
    const queue::Envelope& envelope() const { return env_; }
    const std::string& sender() const { return env_.sender; }
    // create_time when the file has one (Postfix's message age), else the arrival time.
    long arrival() const;
    timeval active_arrival() const { return active_arrival_; }

    // The recipients still to deliver (not done in the file), in file order.
    std::vector<RecipientState>& recipients() { return rcpts_; }
    const queue::Recipient& recipient(size_t file_index) const { return env_.recipients[file_index]; }

    // Delivery jobs (queued or running) that still refer to this message.
    int outstanding = 0;

    // sendmail -bv / -v (the queue file's trace_flags, mail_proto.h kTraceFlag*).
    long trace_flags() const { return trace_flags_; }

    // Records one result; the status class decides the outcome (2: delivered, 5: bounced,
    // anything else: deferred). NOTIFY=SUCCESS deliveries also go to the trace log. For
    // sendmail -bv every result is final and goes to the trace log only (deliverable /
    // undeliverable, as Postfix's trace_append under DEL_REQ_FLAG_USR_VRFY); for -v every
    // result is also traced.
    void record(size_t file_index, const ipc::mail::RecipientResult& result, long now);
    bool all_settled() const;
    bool any_deferred() const;

    // Log entries of this pass, written when the message is finished.
    std::vector<ipc::mail::DeliveryLogEntry> bounce_log, defer_log, trace_log;
    // Offsets of recipients to mark done if the file stays (delivered or bounced).
    std::vector<uint64_t> done_offsets() const;

    // The request for a batch of recipients (file indexes) to one nexthop.
    ipc::mail::DeliveryRequest make_request(std::string_view nexthop,
                                            const std::vector<size_t>& file_indexes) const;
    ipc::mail::BounceRequest make_bounce(ipc::mail::BounceCommand command) const;

private:
    RecipientState* find(size_t file_index);
    const RecipientState* find(size_t file_index) const;
    std::string attribute(std::string_view name) const;  // "" when absent
    ipc::mail::DeliveryLogEntry entry(const queue::Recipient& r,
                                      const ipc::mail::RecipientResult& result, long now) const;
    // A trace/ID entry: the reason as "delivery via RELAY: reason".
    ipc::mail::DeliveryLogEntry trace_entry(const queue::Recipient& r,
                                            const ipc::mail::RecipientResult& result, long now) const;

    std::string id_;
    queue::Envelope env_;
    timeval active_arrival_{};
    std::vector<RecipientState> rcpts_;
    long trace_flags_ = 0;
};

}  // namespace postern::qmgr
