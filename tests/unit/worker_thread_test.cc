// The worker thread's plumbing: jobs off the loop, completions on it, in order, and a
// blocked job that leaves the loop free.
#include "util/daemon/worker_thread.h"

#include <event2/event.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

using namespace postern;

namespace {

struct Loop {
    event_base* base = event_base_new();
    ~Loop() { event_base_free(base); }
    // Runs the loop until `done` holds (a bounded number of rounds: a bug fails, not hangs).
    template <class F>
    bool until(F done) {
        for (int i = 0; i < 100000 && !done(); ++i) event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        return done();
    }
};

}  // namespace

TEST_CASE("worker runs jobs off the loop and their completions on it, in order", "[worker]") {
    Loop loop;
    auto worker = daemon::WorkerThread::create(loop.base);
    REQUIRE(worker.ok());
    std::thread::id loop_thread = std::this_thread::get_id();
    std::vector<int> order;
    std::vector<bool> job_on_loop_thread, completion_on_loop_thread;
    for (int i = 0; i < 5; ++i) {
        (*worker)->post([&, i] {
            bool on_loop = std::this_thread::get_id() == loop_thread;
            return daemon::WorkerThread::Completion([&, i, on_loop] {
                job_on_loop_thread.push_back(on_loop);
                completion_on_loop_thread.push_back(std::this_thread::get_id() == loop_thread);
                order.push_back(i);
            });
        });
    }
    CHECK((*worker)->pending() == 5);
    CHECK(order.empty());  // nothing runs inside post()
    REQUIRE(loop.until([&] { return order.size() == 5; }));
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
    CHECK(job_on_loop_thread == std::vector<bool>(5, false));
    CHECK(completion_on_loop_thread == std::vector<bool>(5, true));
    CHECK((*worker)->pending() == 0);
}

TEST_CASE("a blocked job leaves the loop free for other events", "[worker]") {
    Loop loop;
    auto worker = daemon::WorkerThread::create(loop.base);
    REQUIRE(worker.ok());
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    bool completed = false;
    (*worker)->post([released, &completed] {
        released.wait();  // a saslauthd that takes its time
        return daemon::WorkerThread::Completion([&completed] { completed = true; });
    });
    // Another event on the loop runs while the job is blocked.
    bool timer_ran = false;
    event* timer = evtimer_new(loop.base, [](evutil_socket_t, short, void* arg) { *static_cast<bool*>(arg) = true; },
                               &timer_ran);
    timeval now{0, 0};
    evtimer_add(timer, &now);
    REQUIRE(loop.until([&] { return timer_ran; }));
    CHECK_FALSE(completed);
    CHECK((*worker)->pending() == 1);
    release.set_value();
    REQUIRE(loop.until([&] { return completed; }));
    event_free(timer);
}

TEST_CASE("destroying the worker waits for the job in progress and runs no completion", "[worker]") {
    Loop loop;
    auto worker = daemon::WorkerThread::create(loop.base);
    REQUIRE(worker.ok());
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::promise<void> first_started;
    int completions = 0;
    (*worker)->post([&, released] {
        first_started.set_value();
        released.wait();
        return daemon::WorkerThread::Completion([&] { ++completions; });
    });
    for (int i = 0; i < 3; ++i)
        (*worker)->post([&] { return daemon::WorkerThread::Completion([&] { ++completions; }); });
    first_started.get_future().wait();
    std::thread releaser([&] { release.set_value(); });
    worker->reset();  // waits for the job in progress, drops the rest
    releaser.join();
    loop.until([] { return false; });
    CHECK(completions == 0);  // the session that owned them is gone too
}

TEST_CASE("drain runs every posted job and its completion without the loop", "[worker]") {
    Loop loop;
    auto worker = daemon::WorkerThread::create(loop.base);
    REQUIRE(worker.ok());
    std::vector<int> jobs_run, completions;
    for (int i = 0; i < 20; ++i) {
        (*worker)->post([&, i] {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            jobs_run.push_back(i);  // one worker thread: no concurrent access
            return daemon::WorkerThread::Completion([&, i] { completions.push_back(i); });
        });
    }
    (*worker)->drain();
    CHECK(jobs_run.size() == 20);
    CHECK(completions.size() == 20);
    CHECK(completions.back() == 19);
    CHECK((*worker)->pending() == 0);
    (*worker)->drain();  // nothing left: returns at once
    CHECK(completions.size() == 20);
}
