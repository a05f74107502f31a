// Helpers shared by the queue unit tests: a scratch queue directory tree.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

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

}  // namespace postern::queue::test
