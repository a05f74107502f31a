// qmgr's retry arithmetic and delivery scheduling. qmgr is a program, not part of
// libpostern, so its two pure parts are compiled into this test directly.
#include <catch2/catch.hpp>

#include "qmgr/retry.h"
#include "qmgr/scheduler.cc"  // NOLINT: see above
#include "qmgr/settings.cc"   // NOLINT: see above
#include "util/config/config.h"

using namespace postern::qmgr;

namespace {

RetryPolicy policy() {
    RetryPolicy p;
    p.minimal_backoff = 300;
    p.maximal_backoff = 4000;
    p.queue_lifetime = 5 * 86400;
    p.bounce_lifetime = 86400;
    return p;
}

TransportLimits limits(long procs, long dest, long initial, long rcpts) {
    TransportLimits l;
    l.process_limit = procs;
    l.dest_concurrency = dest;
    l.initial_concurrency = initial;
    l.rcpt_limit = rcpts;
    return l;
}

Job job(int tag) {
    Job j;
    j.recipients = {static_cast<size_t>(tag)};
    return j;
}

int tag(const std::optional<Job>& j) { return j ? static_cast<int>(j->recipients.at(0)) : -1; }

}  // namespace

TEST_CASE("backoff is the message age kept between the minimal and maximal backoff", "[qmgr]") {
    RetryPolicy p = policy();
    CHECK(backoff_delay(p, 1000, 1010) == 300);      // young: minimal
    CHECK(backoff_delay(p, 1000, 1000 + 1234) == 1234);
    CHECK(backoff_delay(p, 1000, 1000 + 86400) == 4000);  // old: maximal
    CHECK(backoff_delay(p, 0, 5000) == 300);          // unknown arrival
}

TEST_CASE("a message expires after its lifetime; bounces use bounce_queue_lifetime", "[qmgr]") {
    RetryPolicy p = policy();
    CHECK_FALSE(is_expired(p, "a@example", 0, 5 * 86400 - 1));
    CHECK(is_expired(p, "a@example", 0, 5 * 86400));
    CHECK(is_expired(p, "", 0, 86400));
    CHECK_FALSE(is_expired(p, "", 0, 86399));
    p.queue_lifetime = 0;  // one attempt only
    CHECK(is_expired(p, "a@example", 100, 100));
}

TEST_CASE("delay warning is due once its time has come, never when unset", "[qmgr]") {
    CHECK(warning_due(100, 100));
    CHECK_FALSE(warning_due(100, 99));
    CHECK_FALSE(warning_due(0, 1000));
}

TEST_CASE("deferred files wait for their mtime unless the scan ignores times", "[qmgr]") {
    CHECK(retry_time_reached(100, 100, false));
    CHECK_FALSE(retry_time_reached(101, 100, false));
    CHECK(retry_time_reached(101, 100, true));
}

TEST_CASE("destinations take turns and stay within their concurrency", "[qmgr]") {
    TransportQueue q("local", limits(100, 2, 5, 1));
    q.add("a", job(1));
    q.add("a", job(2));
    q.add("a", job(3));
    q.add("b", job(4));
    auto j1 = q.next();
    CHECK(tag(j1) == 1);
    CHECK(tag(q.next()) == 4);  // b's turn before a's second
    CHECK(tag(q.next()) == 2);
    CHECK_FALSE(q.next());      // a has 2 running: its limit
    CHECK(q.active() == 3);
    CHECK(q.queued() == 1);
    q.finished(*j1, true);
    CHECK(tag(q.next()) == 3);
}

TEST_CASE("the process limit caps a transport across destinations", "[qmgr]") {
    TransportQueue q("smtp", limits(1, 20, 5, 50));
    q.add("a", job(1));
    q.add("b", job(2));
    auto j = q.next();
    CHECK(tag(j) == 1);
    CHECK_FALSE(q.next());
    q.finished(*j, true);
    CHECK(tag(q.next()) == 2);
}

TEST_CASE("slow start opens the window on success and closes it on agent failure", "[qmgr]") {
    TransportQueue q("smtp", limits(100, 3, 1, 50));
    for (int i = 1; i <= 6; ++i) q.add("d", job(i));
    auto j = q.next();
    CHECK_FALSE(q.next());  // window 1
    q.finished(*j, true);   // window 2
    auto j2 = q.next(), j3 = q.next();
    CHECK((j2 && j3));
    CHECK_FALSE(q.next());
    q.finished(*j2, false);  // window back to 1, one still running
    CHECK_FALSE(q.next());
    q.finished(*j3, true);   // window 2, nothing running
    CHECK(q.next());
}

TEST_CASE("a job given back goes first; take_all empties the transport", "[qmgr]") {
    TransportQueue q("local", limits(100, 2, 2, 1));
    q.add("a", job(1));
    q.add("a", job(2));
    auto j = q.next();
    q.give_back(std::move(*j));
    CHECK(q.active() == 0);
    CHECK(tag(q.next()) == 1);
    auto rest = q.take_all();
    REQUIRE(rest.size() == 1);
    CHECK(rest[0].recipients.at(0) == 2);
    CHECK(q.queued() == 0);
}

TEST_CASE("a job goes ahead behind each running one of its destination, counted when promoted", "[qmgr]") {
    TransportQueue q("local", limits(100, 2, 2, 1));
    for (int i = 1; i <= 6; ++i) q.add("a", job(i));
    auto j1 = q.next(), j2 = q.next();
    REQUIRE((j1 && j2));
    CHECK_FALSE(q.next());  // the window is full
    Destination& d = *j1->destination;
    auto a3 = q.ahead(d), a4 = q.ahead(d);
    CHECK(tag(a3) == 3);
    CHECK(tag(a4) == 4);
    CHECK(a3->queued_ahead);
    CHECK_FALSE(q.ahead(d));  // one per running job
    CHECK(q.active() == 2);   // jobs ahead are not running
    CHECK(q.queued() == 2);
    q.promote(*a3);  // j1's reply came: a3 runs now
    q.finished(*j1, true);
    CHECK(q.active() == 2);
    CHECK_FALSE(a3->queued_ahead);
    CHECK_FALSE(q.next());
    CHECK(tag(q.ahead(d)) == 5);
    // j2's connection failed: the job ahead of it was never begun and goes first again.
    q.finished(*j2, false);
    q.take_back(std::move(*a4));
    CHECK(q.active() == 1);
    CHECK(q.queued() == 2);
    CHECK_FALSE(q.next());  // the failure closed the window to 1, a3 still runs
    q.finished(*a3, true);
    CHECK(tag(q.next()) == 4);
}

TEST_CASE("recipients are batched by the destination recipient limit", "[qmgr]") {
    std::vector<size_t> r{0, 1, 2, 3, 4};
    auto b = batch_recipients(r, 2);
    REQUIRE(b.size() == 3);
    CHECK(b[2] == std::vector<size_t>{4});
    CHECK(batch_recipients(r, 0).size() == 1);
    CHECK(batch_recipients({}, 1).empty());
}

TEST_CASE("transport limits come from <transport>_* parameters, else the defaults", "[qmgr]") {
    auto cfg = postern::config::Config::from_text(
        "smtp_destination_concurrency_limit = 7\nrelay_destination_recipient_limit = 3\n",
        "/etc/postern/main.cf", "qmgr");
    REQUIRE(cfg);
    Settings s = Settings::from(*cfg);
    const TransportLimits& local = s.limits("local");
    CHECK(local.dest_concurrency == 2);
    CHECK(local.rcpt_limit == 1);
    CHECK(local.per_recipient());
    CHECK(s.limits("smtp").dest_concurrency == 7);
    CHECK(s.limits("relay").rcpt_limit == 3);
    CHECK(s.limits("relay").dest_concurrency == 20);
    CHECK(s.limits("other").rcpt_limit == 50);
    CHECK_FALSE(s.limits("other").per_recipient());
}

TEST_CASE("per-recipient destinations ignore case and address extensions", "[qmgr]") {
    CHECK(recipient_queue_name("John+list@Example.COM", "example.com", "+") == "john@example.com");
    CHECK(recipient_queue_name("john-x@example.com", "example.com", "+-") == "john@example.com");
    CHECK(recipient_queue_name("+x@example.com", "example.com", "+") == "+x@example.com");
    CHECK(recipient_queue_name("root", "host.example", "") == "root@host.example");
}
