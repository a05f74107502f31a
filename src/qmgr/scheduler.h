// Who gets the next delivery agent: per transport, a round robin over the destinations
// that have work and a free slot, each destination held to its concurrency window
// (slow start from initial_destination_concurrency up to the destination limit) and the
// transport to its process limit. Pure bookkeeping, no I/O, so it is unit-tested.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "qmgr/settings.h"

namespace postern::qmgr {

class ActiveMessage;
struct Destination;

// One delivery request to be made: some recipients of one message to one destination.
struct Job {
    ActiveMessage* message = nullptr;
    std::string nexthop;
    std::vector<size_t> recipients;  // indexes into the envelope's recipient list
    Destination* destination = nullptr;
    bool retried = false;  // already sent again after a reused connection dropped it
    bool queued_ahead = false;  // sent behind a running job on its connection (see ahead())
};

struct Destination {
    std::string key;  // nexthop, or the recipient with per-recipient concurrency
    std::deque<Job> jobs;
    long active = 0;
    long ahead = 0;  // jobs sent ahead on connections whose agent is busy with `active` ones
    long window = 1;
    bool in_ready = false;
};

class TransportQueue {
public:
    TransportQueue(std::string name, TransportLimits limits);

    const std::string& name() const { return name_; }
    const TransportLimits& limits() const { return limits_; }
    long active() const { return active_; }
    size_t queued() const { return queued_; }

    // Queues a job for destination `key`.
    void add(const std::string& key, Job job);
    // The next job that may start now (the slot is taken), or nothing.
    std::optional<Job> next();
    // A started job ended. A success opens the window one step (slow start); a failure of
    // the agent closes it to one.
    void finished(const Job& job, bool agent_ok);
    // A started job could not get an agent yet (all busy): it goes first again.
    void give_back(Job job);
    // Pipelining within the concurrency window: the next job of `d`, to be sent on the
    // connection of one of its running jobs, so that the agent finds its next request
    // waiting when it replies instead of idling until qmgr has read the reply (at most
    // one per running job; the agent still delivers one at a time). Not counted as
    // active until promote(), when the job ahead of it has its reply.
    std::optional<Job> ahead(Destination& d);
    void promote(Job& job);
    // A job sent ahead whose connection failed before the agent began it: first again.
    void take_back(Job job);
    // Removes and returns every queued job (the transport is unavailable).
    std::vector<Job> take_all();

private:
    void make_ready(Destination& d);
    void forget_if_idle(Destination& d);

    std::string name_;
    TransportLimits limits_;
    std::unordered_map<std::string, std::unique_ptr<Destination>> dests_;
    std::deque<Destination*> ready_;
    long active_ = 0;
    size_t queued_ = 0;
};

// The per-recipient destination name "localpart@nexthop" (lower case, without the
// address extension after a recipient_delimiter character).
std::string recipient_queue_name(std::string_view recipient, std::string_view nexthop,
                                 std::string_view delimiters);

// Splits the recipients of one message for one destination into requests of at most
// `limit` recipients (0: all in one).
std::vector<std::vector<size_t>> batch_recipients(const std::vector<size_t>& rcpts, long limit);

}  // namespace postern::qmgr
