// Test-only benchmark driver for bench/queue_write.sh (hidden tag [.queue-bench]):
// writes and commits POSTERN_QUEUE_BENCH_COUNT small queue files into
// POSTERN_QUEUE_BENCH_DIR, one fsync'ed commit each, then the same count in group
// commits of POSTERN_QUEUE_BENCH_BATCH, and prints files/s for both.
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>

#include "util/queue/queue_file.h"

using namespace postern::queue;

namespace {

QueueFileWriter small_message(const Layout& layout, int n) {
    auto w = QueueFileWriter::create(layout);
    REQUIRE(w.ok());
    Envelope env;
    env.sender = "bench@example.com";
    env.attributes = {{"rewrite_context", "local"}};
    Recipient r;
    r.address = "user@example.com";
    env.recipients = {r};
    w->write_envelope(env);
    w->add_line("From: bench@example.com");
    w->add_line("Subject: message " + std::to_string(n));
    w->add_line("");
    for (int i = 0; i < 20; ++i) w->add_line("A line of body text, about as long as a mail line is.");
    return std::move(*w);
}

double rate(int count, std::chrono::steady_clock::duration d) {
    return count / std::chrono::duration<double>(d).count();
}

}  // namespace

TEST_CASE("test helper: queue write benchmark", "[.queue-bench]") {
    const char* dir = getenv("POSTERN_QUEUE_BENCH_DIR");
    REQUIRE(dir);
    int count = atoi(getenv("POSTERN_QUEUE_BENCH_COUNT") ? getenv("POSTERN_QUEUE_BENCH_COUNT") : "1000");
    int batch = atoi(getenv("POSTERN_QUEUE_BENCH_BATCH") ? getenv("POSTERN_QUEUE_BENCH_BATCH") : "16");
    REQUIRE(count > 0);
    REQUIRE(batch > 0);
    Layout layout(dir, {"deferred"}, 1, true);
    mkdir((std::string(dir) + "/incoming").c_str(), 0700);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i) {
        QueueFileWriter w = small_message(layout, i);
        REQUIRE(w.commit().ok());
    }
    auto t1 = std::chrono::steady_clock::now();
    for (int i = 0; i < count; i += batch) {
        std::vector<QueueFileWriter> ws;
        std::vector<QueueFileWriter*> ptrs;
        for (int j = i; j < std::min(count, i + batch); ++j) ws.push_back(small_message(layout, j));
        for (auto& w : ws) ptrs.push_back(&w);
        REQUIRE(commit_many(ptrs).ok());
    }
    auto t2 = std::chrono::steady_clock::now();
    std::printf("queue_write: %d files, commit each: %.0f files/s\n", count, rate(count, t1 - t0));
    std::printf("queue_write: %d files, group commit of %d: %.0f files/s\n", count, batch,
                rate(count, t2 - t1));
}
