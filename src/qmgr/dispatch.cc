// Routing recipients to transports and handing the work to delivery agents.
#include <event2/event.h>
#include <sys/time.h>

#include <algorithm>
#include <ctime>
#include <map>

#include "qmgr/qmgr.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/log/mail_events.h"

namespace postern::qmgr {

namespace mail = ipc::mail;

namespace {
// Wait before trying a transport again whose agents were all busy (listen queue full).
constexpr long kBusyRetryMs = 100;
const char kTransportError[] = "unknown mail transport error";
const char kTransportUnavailable[] = "mail transport unavailable";

long monotonic_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

std::string lowercase(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}
bool local_part_is(std::string_view address, std::string_view name) {
    std::string_view local = address.substr(0, std::min(address.rfind('@'), address.size()));
    return local.size() == name.size() &&
           std::equal(local.begin(), local.end(), name.begin(),
                      [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) ==
                                                  std::tolower(static_cast<unsigned char>(b)); });
}

}  // namespace

TransportState& Qmgr::transport(const std::string& name) {
    auto& slot = transports_[name];
    if (!slot) slot = std::make_unique<TransportState>(TransportQueue(name, settings_.limits(name)));
    return *slot;
}

void Qmgr::settle(ActiveMessage& msg, size_t file_index, std::string_view dsn, std::string_view reason) {
    mail::RecipientResult r;
    r.status = dsn;
    r.reason = reason;
    r.relay = "none";
    msg.record(file_index, r, time(nullptr));
    const queue::Recipient& rcpt = msg.recipient(file_index);
    log::DeliveryEvent e;
    e.queue_id = msg.id();
    e.recipient = rcpt.address;
    e.orig_recipient = rcpt.original;
    e.relay = "none";
    e.times.incoming_arrival = {msg.envelope().arrival_sec, msg.envelope().arrival_usec};
    e.times.active_arrival = msg.active_arrival();
    e.dsn = dsn;
    e.status = dsn.starts_with("2") ? "sent" : dsn.starts_with("5") ? "bounced" : "deferred";
    e.reason = reason;
    timeval now{};
    gettimeofday(&now, nullptr);
    log::info("%s", log::delivery_line(e, now).c_str());
}

// Asks trivial-rewrite where each recipient goes and queues one job per destination
// batch. Recipients that cannot go anywhere now are settled at once.
void Qmgr::route(ActiveMessage& msg) {
    struct Group {
        std::string transport, key, nexthop;
        std::vector<size_t> rcpts;
    };
    std::vector<Group> groups;
    std::map<std::pair<std::string, std::string>, size_t> index;
    time_t now = time(nullptr);
    for (RecipientState& rs : msg.recipients()) {
        const queue::Recipient& r = msg.recipient(rs.index);
        auto reply = rewrite_.resolve(msg.sender(), r.address);
        if (!reply || (reply->flags & mail::kResolveFlagError)) {
            if (!reply) log::warn("%s: resolve %s: %s", msg.id().c_str(), r.address.c_str(), reply.error().c_str());
            settle(msg, rs.index, "4.3.0", "address resolver failure");
            continue;
        }
        if (reply->flags & mail::kResolveFlagFail) {
            settle(msg, rs.index, "5.1.3", "bad address syntax");
            continue;
        }
        if (reply->recipient.empty()) {
            settle(msg, rs.index, "5.1.3", "null recipient address");
            continue;
        }
        // Mail to the local double-bounce address ends here, so that a notice about an
        // undeliverable notice cannot loop.
        if ((reply->flags & mail::kResolveClassLocal) && local_part_is(reply->recipient, settings_.double_bounce_sender)) {
            settle(msg, rs.index, "2.0.0", "undeliverable postmaster notification discarded");
            continue;
        }
        const std::string& name = reply->transport;
        if (std::find(settings_.defer_transports.begin(), settings_.defer_transports.end(), name) !=
            settings_.defer_transports.end()) {
            settle(msg, rs.index, "4.3.2", "deferred transport");
            continue;
        }
        TransportState& ts = transport(name);
        if (ts.dead_until > now) {
            settle(msg, rs.index, "4.3.0", std::string("delivery temporarily suspended: ") + kTransportUnavailable);
            continue;
        }
        std::string key = ts.queue.limits().per_recipient()
                              ? recipient_queue_name(reply->recipient, reply->nexthop, settings_.recipient_delimiter)
                              : lowercase(reply->nexthop);
        if (reply->recipient != r.address) rs.resolved = reply->recipient;
        auto [it, fresh] = index.emplace(std::make_pair(name, key), groups.size());
        if (fresh) groups.push_back({name, key, reply->nexthop, {}});
        groups[it->second].rcpts.push_back(rs.index);
    }
    for (const Group& g : groups) queue_jobs(msg, g.transport, g.key, g.nexthop, g.rcpts);
    if (msg.outstanding == 0) finish(msg);
}

void Qmgr::queue_jobs(ActiveMessage& msg, const std::string& name, const std::string& key,
                      const std::string& nexthop, const std::vector<size_t>& rcpts) {
    TransportState& ts = transport(name);
    for (auto& batch : batch_recipients(rcpts, ts.queue.limits().rcpt_limit)) {
        Job job;
        job.message = &msg;
        job.nexthop = nexthop;
        job.recipients = std::move(batch);
        ++msg.outstanding;
        ts.queue.add(key, std::move(job));
    }
}

void Qmgr::dispatch() {
    for (auto& [name, ts] : transports_) dispatch(*ts);
}

void Qmgr::dispatch(TransportState& ts) {
    if (stopping_) return;
    if (monotonic_ms() >= ts.busy_until_ms) {
        for (;;) {
            auto job = ts.queue.next();
            if (!job) break;
            if (!start_job(ts, std::move(*job))) break;
        }
    }
    // The window is full: what waits for a busy destination goes behind its running jobs.
    if (ts.queue.queued() == 0) return;
    for (auto& [conn, owned] : ts.busy) send_ahead(ts, conn);
}

// Sends the next job of the running job's destination on `conn`, unless one waits there.
void Qmgr::send_ahead(TransportState& ts, AgentConnection* conn) {
    auto it = ts.running.find(conn);
    if (it == ts.running.end() || it->second.ahead || conn->closed() || conn->outstanding() != 1) return;
    auto job = ts.queue.ahead(*it->second.destination);
    if (!job) return;
    auto shared = std::make_shared<Job>(std::move(*job));
    it->second.ahead = shared;
    send_job(ts, conn, std::move(shared));
}

void Qmgr::send_job(TransportState& ts, AgentConnection* conn, std::shared_ptr<Job> job) {
    auto request = job->message->make_request(job->nexthop, job->recipients);
    // More mail waits for this destination: the agent keeps its connection for it.
    if (job->destination != nullptr && !job->destination->jobs.empty())
        request.flags |= mail::kDeliveryFlagConnStore;
    TransportState* tsp = &ts;
    conn->send(request, [this, tsp, conn, job](Result<mail::DeliveryReply> reply) {
        job_done(*tsp, std::move(*job), conn, std::move(reply));
    });
}

// Sends the job to an idle agent connection or a new one. False when the transport
// cannot take more work now.
bool Qmgr::start_job(TransportState& ts, Job job) {
    std::unique_ptr<AgentConnection> conn;
    while (!ts.idle.empty() && !conn) {
        conn = std::move(ts.idle.back());
        ts.idle.pop_back();
        if (conn->closed()) retired_.push_back(std::move(conn));
    }
    if (!conn) {
        AgentConnection::ConnectError err;
        std::string why;
        conn = AgentConnection::connect(ctx_.base(), ts.queue.name(), mail::agent_socket(ts.queue.name()),
                                        settings_.ipc_timeout, err, why);
        if (err == AgentConnection::ConnectError::Busy) {
            ts.queue.give_back(std::move(job));
            ts.busy_until_ms = monotonic_ms() + kBusyRetryMs;
            timeval tv{0, kBusyRetryMs * 1000};
            event_base_once(ctx_.base(), -1, EV_TIMEOUT, [](evutil_socket_t, short, void* arg) {
                static_cast<Qmgr*>(arg)->dispatch();
            }, this, &tv);
            return false;
        }
        if (err == AgentConnection::ConnectError::Unavailable) {
            log::warn("%s", why.c_str());
            transport_failed(ts, std::move(job), kTransportUnavailable);
            return false;
        }
    }
    AgentConnection* raw = conn.get();
    ts.busy.emplace(raw, std::move(conn));
    ts.running[raw] = TransportState::Running{job.destination, nullptr};
    send_job(ts, raw, std::make_shared<Job>(std::move(job)));
    send_ahead(ts, raw);
    return true;
}

// The agent socket cannot be reached: this job and everything queued for the transport
// is deferred, and new mail for it too until transport_retry_time has passed.
void Qmgr::transport_failed(TransportState& ts, Job job, const std::string& why) {
    ts.dead_until = time(nullptr) + settings_.transport_retry_time;
    ts.queue.finished(job, false);
    std::vector<Job> jobs = ts.queue.take_all();
    for (size_t i : job.recipients) settle(*job.message, i, "4.3.0", why);
    for (Job& j : jobs) {
        for (size_t i : j.recipients)
            settle(*j.message, i, "4.3.0", std::string("delivery temporarily suspended: ") + why);
    }
    job_settled(*job.message);
    for (Job& j : jobs) job_settled(*j.message);
}

void Qmgr::retire(TransportState& ts, AgentConnection* conn) {
    auto it = ts.busy.find(conn);
    if (it == ts.busy.end()) return;
    retired_.push_back(std::move(it->second));
    ts.busy.erase(it);
}

void Qmgr::job_done(TransportState& ts, Job job, AgentConnection* conn, Result<mail::DeliveryReply> reply) {
    bool reused = conn->reused();
    if (job.queued_ahead) {
        // Only a failure comes before the reply to the job in front, which promotes this
        // one: the agent never began it, so it waits for the next connection.
        ts.running.erase(conn);
        retire(ts, conn);
        ts.queue.take_back(std::move(job));
        dispatch(ts);
        return;
    }
    if (!reply) {
        // A job sent ahead stays listed until its own failure comes (next, from fail()).
        if (auto run = ts.running.find(conn); run != ts.running.end() && !run->second.ahead) ts.running.erase(run);
        retire(ts, conn);
        // A kept connection that the agent closed before answering: try once more on a
        // fresh one (the agent process had gone idle, not failed).
        if (reused && !job.retried) {
            job.retried = true;
            ts.queue.give_back(std::move(job));
            dispatch(ts);
            return;
        }
        log::warn("%s: transport %s: %s", job.message->id().c_str(), ts.queue.name().c_str(), reply.error().c_str());
        ts.queue.finished(job, false);
        for (size_t i : job.recipients) settle(*job.message, i, "4.3.0", kTransportError);
    } else {
        // The job sent ahead on this connection is the running one now.
        auto run = ts.running.find(conn);
        std::shared_ptr<Job> next = run != ts.running.end() ? std::move(run->second.ahead) : nullptr;
        if (next) {
            ts.queue.promote(*next);
            run->second = TransportState::Running{next->destination, nullptr};
        } else {
            if (run != ts.running.end()) ts.running.erase(run);
            auto it = ts.busy.find(conn);
            if (it != ts.busy.end()) {
                ts.idle.push_back(std::move(it->second));
                ts.busy.erase(it);
            }
        }
        ts.queue.finished(job, reply->status == 0);
        apply_reply(job, *reply);
        if (next) send_ahead(ts, conn);
    }
    ActiveMessage& msg = *job.message;
    dispatch(ts);
    job_settled(msg);
}

void Qmgr::apply_reply(Job& job, const mail::DeliveryReply& reply) {
    ActiveMessage& msg = *job.message;
    long now = time(nullptr);
    std::vector<bool> answered(job.recipients.size(), false);
    if (reply.status == 0) {
        for (const auto& r : reply.results) {
            if (r.index < 0 || static_cast<size_t>(r.index) >= job.recipients.size()) continue;
            answered[static_cast<size_t>(r.index)] = true;
            msg.record(job.recipients[static_cast<size_t>(r.index)], r, now);
        }
    }
    for (size_t k = 0; k < job.recipients.size(); ++k) {
        if (!answered[k]) settle(msg, job.recipients[k], "4.3.0", kTransportError);
    }
}

void Qmgr::job_settled(ActiveMessage& msg) {
    if (--msg.outstanding == 0) finish(msg);
}

}  // namespace postern::qmgr
