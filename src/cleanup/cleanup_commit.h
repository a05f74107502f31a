// Group commit: messages that finish within about a millisecond of each other (or up to
// kMaxBatch of them) are made durable with one queue::commit_many() call, and only then
// does each client get its result. One qmgr wake-up per group.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cleanup_message.h"
#include "util/queue/queue_layout.h"

struct event_base;
struct event;

namespace postern::cleanup {

class GroupCommit {
public:
    static constexpr size_t kMaxBatch = 32;
    static constexpr long kWindowUsec = 1000;

    using Reply = std::function<void(uint64_t client, const ipc::mail::CleanupResult& result)>;

    GroupCommit(event_base* base, const queue::Layout& layout, Reply reply);
    ~GroupCommit();
    GroupCommit(const GroupCommit&) = delete;
    GroupCommit& operator=(const GroupCommit&) = delete;

    // Takes a finished message (its file written, not committed) of client `client`.
    void add(std::unique_ptr<CleanupMessage> message, uint64_t client);
    // Commits everything pending now.
    void flush();

private:
    struct Item {
        std::unique_ptr<CleanupMessage> message;
        uint64_t client;
    };
    static void on_timer(int fd, short what, void* arg);
    void hold(CleanupMessage& message);

    const queue::Layout& layout_;
    Reply reply_;
    event* timer_ = nullptr;
    bool armed_ = false;
    std::vector<Item> pending_;
};

}  // namespace postern::cleanup
