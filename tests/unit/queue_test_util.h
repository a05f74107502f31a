// Helpers shared by the queue unit tests: a scratch queue directory tree, a committed
// queue file with a given message.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "util/queue/queue_file.h"
#include "util/queue/queue_layout.h"

namespace postern::queue::test {

struct ScratchQueue {
    std::string dir;
    Layout layout;
    explicit ScratchQueue(bool long_ids = true, std::vector<std::string> hashed = {"deferred", "defer"},
                          int depth = 1) {
        char tmpl[] = "/tmp/queue-test.XXXXXX";
        dir = mkdtemp(tmpl);
        layout = Layout(dir, std::move(hashed), depth, long_ids);
        for (const char* q : {"incoming", "active", "deferred", "hold", "corrupt", "maildrop", "saved"})
            mkdir((dir + "/" + q).c_str(), 0700);
    }
    ~ScratchQueue() { std::filesystem::remove_all(dir); }
};

// Commits a queue file whose message is `lines`; returns its path.
inline std::string write_message(ScratchQueue& q, const std::vector<std::string>& lines) {
    auto w = QueueFileWriter::create(q.layout);
    REQUIRE(w.ok());
    Envelope env;
    env.sender = "s@example.com";
    Recipient r;
    r.address = "r@example.com";
    env.recipients = {r};
    w->write_envelope(env);
    for (const auto& l : lines) w->add_line(l);
    REQUIRE(w->commit());
    return w->path();
}

}  // namespace postern::queue::test
