#include "qmgr/message.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

namespace postern::qmgr {

namespace mail = ipc::mail;

ActiveMessage::ActiveMessage(std::string id, queue::Envelope env)
    : id_(std::move(id)), env_(std::move(env)) {
    gettimeofday(&active_arrival_, nullptr);
    for (size_t i = 0; i < env_.recipients.size(); ++i) {
        if (!env_.recipients[i].done) rcpts_.push_back({i, Outcome::Pending, {}});
    }
    trace_flags_ = std::strtol(attribute("trace_flags").c_str(), nullptr, 10) &
                   (mail::kTraceFlagVerify | mail::kTraceFlagRecord);
}

long ActiveMessage::arrival() const { return env_.create_time > 0 ? env_.create_time : env_.arrival_sec; }

// rcpts_ is in file order, so a binary search finds a recipient of a large message.
const RecipientState* ActiveMessage::find(size_t file_index) const {
    auto it = std::lower_bound(rcpts_.begin(), rcpts_.end(), file_index,
                               [](const RecipientState& r, size_t i) { return r.index < i; });
    return it != rcpts_.end() && it->index == file_index ? &*it : nullptr;
}

RecipientState* ActiveMessage::find(size_t file_index) {
    return const_cast<RecipientState*>(std::as_const(*this).find(file_index));
}

mail::DeliveryLogEntry ActiveMessage::entry(const queue::Recipient& r, const mail::RecipientResult& result,
                                            long now) const {
    mail::DeliveryLogEntry e;
    e.recipient = r.address;
    e.orig_rcpt = r.original;
    e.dsn_orcpt = r.dsn_orcpt;
    e.notify = r.dsn_notify;
    e.offset = static_cast<long>(r.offset);
    e.status = result.status;
    e.action = result.action;
    e.reason = result.reason;
    e.relay = result.relay;
    e.when = now;
    return e;
}

mail::DeliveryLogEntry ActiveMessage::trace_entry(const queue::Recipient& r, const mail::RecipientResult& result,
                                                  long now) const {
    mail::DeliveryLogEntry e = entry(r, result, now);
    // Postfix's trace_append(): a status report names the agent that did the work.
    if (!e.relay.empty() && e.relay != "none") e.reason = "delivery via " + e.relay + ": " + e.reason;
    return e;
}

void ActiveMessage::record(size_t file_index, const mail::RecipientResult& result, long now) {
    RecipientState* state = find(file_index);
    if (state == nullptr || state->outcome != Outcome::Pending) return;
    const queue::Recipient& r = env_.recipients[file_index];
    mail::RecipientResult res = result;
    if (trace_flags_ & mail::kTraceFlagVerify) {
        // A what-if report: nothing was delivered, nothing bounces, nothing is retried.
        state->outcome = Outcome::Delivered;
        res.action = result.status_class() == '2' ? "deliverable" : "undeliverable";
        trace_log.push_back(trace_entry(r, res, now));
        return;
    }
    switch (result.status_class()) {
        case '2':
            state->outcome = Outcome::Delivered;
            if (res.action.empty()) res.action = "delivered";
            if (((r.dsn_notify & mail::kNotifySuccess) && !res.notify_passed_on) ||
                (trace_flags_ & mail::kTraceFlagRecord))
                trace_log.push_back(trace_entry(r, res, now));
            break;
        case '5':
            state->outcome = Outcome::Bounced;
            if (res.action.empty()) res.action = "failed";
            bounce_log.push_back(entry(r, res, now));
            if (trace_flags_ & mail::kTraceFlagRecord) trace_log.push_back(trace_entry(r, res, now));
            break;
        default:
            state->outcome = Outcome::Deferred;
            if (res.action.empty() || res.status_class() != '4') res.action = "delayed";
            if (res.status.empty() || res.status[0] != '4') res.status = "4.0.0";
            defer_log.push_back(entry(r, res, now));
            if (trace_flags_ & mail::kTraceFlagRecord) trace_log.push_back(trace_entry(r, res, now));
            break;
    }
}

bool ActiveMessage::all_settled() const {
    for (const auto& r : rcpts_) {
        if (r.outcome == Outcome::Pending) return false;
    }
    return true;
}

bool ActiveMessage::any_deferred() const {
    for (const auto& r : rcpts_) {
        if (r.outcome == Outcome::Deferred || r.outcome == Outcome::Pending) return true;
    }
    return false;
}

std::vector<uint64_t> ActiveMessage::done_offsets() const {
    std::vector<uint64_t> out;
    for (const auto& r : rcpts_) {
        if (r.outcome == Outcome::Delivered || r.outcome == Outcome::Bounced)
            out.push_back(env_.recipients[r.index].offset);
    }
    return out;
}

std::string ActiveMessage::attribute(std::string_view name) const {
    const std::string* v = env_.attribute(name);
    return v ? *v : std::string();
}

mail::DeliveryRequest ActiveMessage::make_request(std::string_view nexthop,
                                                  const std::vector<size_t>& file_indexes) const {
    mail::DeliveryRequest req;
    req.queue_name = "active";
    req.queue_id = id_;
    req.data_offset = env_.size.data_offset;
    req.data_size = env_.size.content_size;
    req.nexthop = nexthop;
    req.encoding = attribute(queue::attr::kEncoding);
    req.smtputf8 = env_.size.smtputf8;
    req.sender = env_.sender;
    req.envid = attribute(queue::attr::kEnvid);
    req.ret = std::strtol(attribute(queue::attr::kRet).c_str(), nullptr, 10);
    req.arrival_sec = env_.arrival_sec;
    req.arrival_usec = env_.arrival_usec;
    req.active_sec = active_arrival_.tv_sec;
    req.active_usec = active_arrival_.tv_usec;
    req.client_name = attribute(queue::attr::kClientName);
    req.client_address = attribute(queue::attr::kClientAddress);
    req.client_protocol = attribute(queue::attr::kProtocol);
    req.client_helo = attribute(queue::attr::kHeloName);
    if (trace_flags_ & mail::kTraceFlagVerify) req.flags |= mail::kDeliveryFlagVerify;
    if (trace_flags_ & mail::kTraceFlagRecord) req.flags |= mail::kDeliveryFlagRecord;
    for (size_t i : file_indexes) {
        const queue::Recipient& r = env_.recipients[i];
        const RecipientState* state = find(i);
        const std::string& address = state && !state->resolved.empty() ? state->resolved : r.address;
        req.recipients.push_back({address, r.original, r.dsn_orcpt, r.dsn_notify, static_cast<long>(r.offset)});
    }
    return req;
}

mail::BounceRequest ActiveMessage::make_bounce(mail::BounceCommand command) const {
    mail::BounceRequest b;
    b.command = command;
    b.queue_name = "active";
    b.queue_id = id_;
    b.encoding = attribute(queue::attr::kEncoding);
    b.smtputf8 = env_.size.smtputf8;
    b.sender = env_.sender;
    b.envid = attribute(queue::attr::kEnvid);
    b.ret = std::strtol(attribute(queue::attr::kRet).c_str(), nullptr, 10);
    b.trace_flags = trace_flags_;
    return b;
}

}  // namespace postern::qmgr
