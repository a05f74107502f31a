#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue_test_util.h"
#include "util/config/config.h"
#include "util/queue/queue_file.h"
#include "util/queue/queue_id.h"

using namespace postern::queue;

TEST_CASE("hashed queues put files in subdirectories named by the id's microseconds") {
    Layout l("/q", {"deferred", "defer"}, 2, true);
    std::string id = make_long_id(1763897409, 0xABCDE, 42);
    CHECK(l.path("deferred", id) == "/q/deferred/A/B/" + id);
    CHECK(l.path("defer", id) == "/q/defer/A/B/" + id);
    CHECK(l.path("active", id) == "/q/active/" + id);
    CHECK(l.relative_path("incoming", id) == "incoming/" + id);
    Layout s("/q", {"deferred"}, 1, false);
    CHECK(s.path("DEFERRED", "3F1C2A1D0E") == "/q/DEFERRED/3/3F1C2A1D0E");
    CHECK(s.dir("deferred", "3F1C2A1D0E") == "/q/deferred/3/");
}

TEST_CASE("hash depth beyond the id length uses underscores, as dir_forest") {
    Layout l("/q", {"hold"}, 7, false);
    CHECK(l.path("hold", "ABCDEF") == "/q/hold/A/B/C/D/E/F/_/ABCDEF");
}

TEST_CASE("layout comes from main.cf parameters") {
    auto cfg = postern::config::Config::from_text(
        "queue_directory = /var/q\nhash_queue_names = hold, incoming\nhash_queue_depth = 2\n"
        "enable_long_queue_ids = yes\n", "main.cf");
    REQUIRE(cfg.ok());
    auto l = Layout::from_config(*cfg);
    REQUIRE(l.ok());
    CHECK(l->queue_directory() == "/var/q");
    CHECK(l->hash_depth() == 2);
    CHECK(l->long_ids());
    CHECK(l->is_hashed("incoming"));
    CHECK_FALSE(l->is_hashed("deferred"));
}

TEST_CASE("moving a file between queues keeps its id and creates hash directories") {
    test::ScratchQueue q(true, {"deferred"}, 2);
    auto w = QueueFileWriter::create(q.layout);
    REQUIRE(w.ok());
    std::string id = w->id();
    REQUIRE(w->commit().ok());
    REQUIRE(q.layout.move(id, kIncoming, kActive).ok());
    REQUIRE(q.layout.move(id, kActive, kDeferred).ok());
    CHECK(access(q.layout.path(kDeferred, id).c_str(), F_OK) == 0);
    CHECK(q.layout.find(id).value() == "deferred");
    auto listed = q.layout.list(kDeferred);
    REQUIRE(listed.ok());
    CHECK(*listed == std::vector<std::string>{id});
    CHECK_FALSE(q.layout.move(id, kActive, kHold).ok());  // not there any more
    CHECK_FALSE(q.layout.move("../x", kDeferred, kHold).ok());
    REQUIRE(q.layout.remove(kDeferred, id).ok());
    CHECK_FALSE(q.layout.find(id).ok());
}

TEST_CASE("listing a queue finds ids at any hash depth and skips temporary files") {
    test::ScratchQueue q(true, {"deferred"}, 1);
    std::vector<std::string> ids;
    for (int i = 0; i < 30; ++i) {
        auto w = QueueFileWriter::create(q.layout, kDeferred);
        REQUIRE(w.ok());
        REQUIRE(w->commit().ok());
        ids.push_back(w->id());
    }
    int fd = open((q.dir + "/deferred/123.456").c_str(), O_CREAT | O_WRONLY, 0600);
    close(fd);
    std::sort(ids.begin(), ids.end());
    auto listed = q.layout.list(kDeferred);
    REQUIRE(listed.ok());
    CHECK(*listed == ids);
    CHECK_FALSE(q.layout.list("no/such").ok());
}

TEST_CASE("the queue tree is created with Postfix's modes and checked") {
    test::ScratchQueue q;
    Layout l(q.dir + "/spool", {"deferred"}, 1, true);
    Ownership me = current_user_ownership();
    CHECK_FALSE(check_tree(l, me).empty());
    REQUIRE(create_tree(l, me).ok());
    CHECK(check_tree(l, me).empty());
    struct stat st;
    REQUIRE(stat((q.dir + "/spool/maildrop").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 01730);
    REQUIRE(stat((q.dir + "/spool/public").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 02710);
    chmod((q.dir + "/spool/incoming").c_str(), 0777);
    auto problems = check_tree(l, me);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].find("incoming: mode is 0777, should be 0700") != std::string::npos);
    REQUIRE(create_tree(l, me).ok());  // repairs
    CHECK(check_tree(l, me).empty());
}
