#include "qmgr/scheduler.h"

#include <algorithm>
#include <cctype>

namespace postern::qmgr {

TransportQueue::TransportQueue(std::string name, TransportLimits limits)
    : name_(std::move(name)), limits_(limits) {}

static long window_limit(const TransportLimits& l) {
    return l.dest_concurrency > 0 ? l.dest_concurrency : l.process_limit;
}

void TransportQueue::add(const std::string& key, Job job) {
    auto& slot = dests_[key];
    if (!slot) {
        slot = std::make_unique<Destination>();
        slot->key = key;
        slot->window = std::min(limits_.initial_concurrency, window_limit(limits_));
        if (slot->window < 1) slot->window = 1;
    }
    job.destination = slot.get();
    slot->jobs.push_back(std::move(job));
    ++queued_;
    make_ready(*slot);
}

void TransportQueue::make_ready(Destination& d) {
    if (d.in_ready || d.jobs.empty() || d.active >= d.window) return;
    d.in_ready = true;
    ready_.push_back(&d);
}

std::optional<Job> TransportQueue::next() {
    while (active_ < limits_.process_limit && !ready_.empty()) {
        Destination* d = ready_.front();
        ready_.pop_front();
        d->in_ready = false;
        if (d->jobs.empty() || d->active >= d->window) {
            forget_if_idle(*d);
            continue;
        }
        Job job = std::move(d->jobs.front());
        d->jobs.pop_front();
        --queued_;
        ++d->active;
        ++active_;
        make_ready(*d);  // to the back: other destinations go first
        return job;
    }
    return std::nullopt;
}

void TransportQueue::finished(const Job& job, bool agent_ok) {
    Destination& d = *job.destination;
    --d.active;
    --active_;
    if (agent_ok) {
        d.window = std::min(d.window + 1, window_limit(limits_));
    } else {
        d.window = 1;
    }
    make_ready(d);
    forget_if_idle(d);
}

void TransportQueue::give_back(Job job) {
    Destination& d = *job.destination;
    --d.active;
    --active_;
    d.jobs.push_front(std::move(job));
    ++queued_;
    make_ready(d);
}

std::optional<Job> TransportQueue::ahead(Destination& d) {
    if (d.jobs.empty() || d.ahead >= d.active) return std::nullopt;
    Job job = std::move(d.jobs.front());
    d.jobs.pop_front();
    --queued_;
    ++d.ahead;
    job.queued_ahead = true;
    return job;
}

void TransportQueue::promote(Job& job) {
    Destination& d = *job.destination;
    --d.ahead;
    ++d.active;
    ++active_;
    job.queued_ahead = false;
}

void TransportQueue::take_back(Job job) {
    Destination& d = *job.destination;
    --d.ahead;
    job.queued_ahead = false;
    d.jobs.push_front(std::move(job));
    ++queued_;
    make_ready(d);
    forget_if_idle(d);
}

void TransportQueue::forget_if_idle(Destination& d) {
    if (d.active > 0 || d.ahead > 0 || !d.jobs.empty() || d.in_ready) return;
    dests_.erase(d.key);  // destroys d
}

std::vector<Job> TransportQueue::take_all() {
    std::vector<Job> out;
    for (auto& [key, d] : dests_) {
        for (auto& j : d->jobs) out.push_back(std::move(j));
        d->jobs.clear();
    }
    queued_ = 0;
    ready_.clear();
    for (auto it = dests_.begin(); it != dests_.end();) {
        it->second->in_ready = false;
        if (it->second->active == 0 && it->second->ahead == 0) {
            it = dests_.erase(it);
        } else {
            ++it;
        }
    }
    return out;
}

// With one recipient per delivery the destination is the recipient: its local part
// without an address extension, at the nexthop (Postfix's per-recipient queue name, so
// that one user in several equivalent domains or extensions gets no extra slots).
std::string recipient_queue_name(std::string_view recipient, std::string_view nexthop,
                                 std::string_view delimiters) {
    std::string_view local = recipient.substr(0, std::min(recipient.rfind('@'), recipient.size()));
    if (!delimiters.empty()) {
        size_t cut = local.find_first_of(delimiters);
        if (cut != std::string_view::npos && cut > 0) local = local.substr(0, cut);
    }
    std::string name = std::string(local) + "@" + std::string(nexthop);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    return name;
}

std::vector<std::vector<size_t>> batch_recipients(const std::vector<size_t>& rcpts, long limit) {
    std::vector<std::vector<size_t>> out;
    size_t step = limit > 0 ? static_cast<size_t>(limit) : rcpts.size();
    if (step == 0) return out;
    for (size_t i = 0; i < rcpts.size(); i += step) {
        size_t end = std::min(rcpts.size(), i + step);
        out.emplace_back(rcpts.begin() + static_cast<long>(i), rcpts.begin() + static_cast<long>(end));
    }
    return out;
}

}  // namespace postern::qmgr
