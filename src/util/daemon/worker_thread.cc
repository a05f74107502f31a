#include "util/daemon/worker_thread.h"

#include <event2/event.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/base/strings.h"

namespace postern::daemon {

Result<std::unique_ptr<WorkerThread>> WorkerThread::create(event_base* base) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
        return make_error(strprintf("worker thread pipe: %s", std::strerror(errno)));
    std::unique_ptr<WorkerThread> worker(new WorkerThread(base, UniqueFd(fds[0]), UniqueFd(fds[1])));
    if (worker->wakeup_ == nullptr) return make_error("worker thread: cannot create the wake-up event");
    return worker;
}

WorkerThread::WorkerThread(event_base* base, UniqueFd read_end, UniqueFd write_end)
    : read_end_(std::move(read_end)), write_end_(std::move(write_end)) {
    wakeup_ = event_new(base, read_end_.get(), EV_READ | EV_PERSIST,
                        [](evutil_socket_t, short, void* arg) { static_cast<WorkerThread*>(arg)->deliver(); },
                        this);
    if (wakeup_ != nullptr) event_add(wakeup_, nullptr);
}

WorkerThread::~WorkerThread() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        jobs_.clear();
    }
    wanted_.notify_one();
    if (thread_.joinable()) thread_.join();
    if (wakeup_ != nullptr) event_free(wakeup_);
}

void WorkerThread::post(Job job) {
    {
        std::lock_guard lock(mutex_);
        jobs_.push_back(std::move(job));
    }
    ++pending_;
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    wanted_.notify_one();
}

void WorkerThread::drain() {
    {
        std::unique_lock lock(mutex_);
        idle_.wait(lock, [this] { return stopping_ || (jobs_.empty() && !running_job_); });
    }
    deliver();
}

void WorkerThread::run() {
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            wanted_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            if (stopping_) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
            running_job_ = true;
        }
        Completion completion = job();
        job = nullptr;  // what the job held goes before its completion runs
        {
            std::lock_guard lock(mutex_);
            running_job_ = false;
            if (stopping_) return;
            done_.push_back(std::move(completion));
        }
        idle_.notify_all();
        // A full pipe already holds a wake-up: the loop drains everything it finds.
        char byte = 0;
        [[maybe_unused]] ssize_t n = write(write_end_.get(), &byte, 1);
    }
}

void WorkerThread::deliver() {
    char buf[64];
    while (read(read_end_.get(), buf, sizeof buf) > 0) {
    }
    std::deque<Completion> ready;
    {
        std::lock_guard lock(mutex_);
        ready.swap(done_);
    }
    // A completion may destroy this worker (its owner went away): nothing of `this` after.
    pending_ -= ready.size();
    for (Completion& completion : ready)
        if (completion) completion();
}

}  // namespace postern::daemon
