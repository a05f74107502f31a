// WorkerThread: runs blocking calls (Cyrus SASL's password checks, which may wait seconds
// for saslauthd or PAM) one after another on a thread of their own, and runs each call's
// completion back on the event loop, so that a slow back end stalls no other session.
// The worker hands completions over through a pipe the loop watches.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "util/base/result.h"
#include "util/base/unique_fd.h"

struct event;
struct event_base;

namespace postern::daemon {

class WorkerThread {
public:
    // What runs on the loop once a job is done.
    using Completion = std::function<void()>;
    // What runs on the worker: the blocking call, returning its completion. A job must
    // not touch loop-side state; its completion may (and checks that its owner lives).
    using Job = std::function<Completion()>;

    static Result<std::unique_ptr<WorkerThread>> create(event_base* base);
    // Waits for the job in progress, drops the queued ones and their completions.
    ~WorkerThread();
    WorkerThread(const WorkerThread&) = delete;
    WorkerThread& operator=(const WorkerThread&) = delete;

    // Queues `job`; the thread starts with the first job (after the daemon's jail).
    void post(Job job);
    // Blocks until every job posted so far has run, then runs their completions: for work
    // that must not be dropped at exit.
    void drain();
    // Jobs posted whose completion has not run yet (tests).
    size_t pending() const { return pending_; }

private:
    WorkerThread(event_base* base, UniqueFd read_end, UniqueFd write_end);
    void run();              // the worker's loop
    void deliver();          // on the event loop: run the completions that are ready

    UniqueFd read_end_, write_end_;
    event* wakeup_ = nullptr;
    std::mutex mutex_;
    std::condition_variable wanted_;
    std::condition_variable idle_;     // a job finished (drain waits on it)
    std::deque<Job> jobs_;             // guarded by mutex_
    std::deque<Completion> done_;      // guarded by mutex_
    bool stopping_ = false;            // guarded by mutex_
    bool running_job_ = false;         // guarded by mutex_
    size_t pending_ = 0;               // loop side only
    std::thread thread_;
};

}  // namespace postern::daemon
