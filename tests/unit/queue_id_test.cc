#include <catch2/catch.hpp>

#include <set>

#include "queue_test_util.h"
#include "util/queue/queue_file.h"
#include "util/queue/queue_id.h"

using namespace postern::queue;

TEST_CASE("long queue id encodes seconds, microseconds and inode and decodes back") {
    std::string id = make_long_id(1763897409, 123456, 987654321);
    REQUIRE(id.size() >= 12);
    CHECK(id.find('z') == 10);
    auto p = parse_id(id);
    REQUIRE(p);
    CHECK(p->long_form);
    CHECK(*p->seconds == 1763897409);
    CHECK(p->usec == 123456);
    CHECK(p->inode == 987654321);
    CHECK(id_ok(id));
}

TEST_CASE("long queue ids sort by arrival time as plain strings") {
    std::vector<std::pair<uint64_t, uint32_t>> times = {
        {1000000000, 5}, {1000000000, 999999}, {1000000001, 0}, {1763897409, 1}, {4000000000u, 7}};
    for (size_t i = 1; i < times.size(); ++i) {
        std::string a = make_long_id(times[i - 1].first, times[i - 1].second, 999999999);
        std::string b = make_long_id(times[i].first, times[i].second, 1);
        CHECK(a < b);
    }
}

TEST_CASE("the inode part of a long id never contains the separator") {
    for (uint64_t ino : {0ull, 50ull, 51ull, 2600ull, 123456789012ull}) {
        std::string enc = encode_inode(ino, true);
        CHECK(enc.find('z') == std::string::npos);
        auto p = parse_id(make_long_id(1, 2, ino));
        REQUIRE(p);
        CHECK(p->inode == ino);
    }
}

TEST_CASE("short postfix hex queue ids are recognised") {
    std::string id = make_short_id(0x1A2B3, 0xBEEF);
    CHECK(id == "1A2B3BEEF");
    auto p = parse_id("3F1C2A1D0E");
    REQUIRE(p);
    CHECK_FALSE(p->long_form);
    CHECK(p->usec == 0x3F1C2);
    CHECK(p->inode == 0xA1D0E);
    CHECK_FALSE(parse_id("3f1c2a1d0e"));  // Postfix's hex is upper case
    CHECK_FALSE(parse_id("F4240A"));      // 1000000 microseconds is not a time
}

TEST_CASE("queue id validation keeps paths inside the queue directory") {
    CHECK(id_ok("4Xb7Kq1ZzTz9Hk"));
    CHECK(id_ok("example_com"));
    CHECK_FALSE(id_ok(""));
    CHECK_FALSE(id_ok("../etc/passwd"));
    CHECK_FALSE(id_ok(".."));
    CHECK_FALSE(id_ok("a/b"));
    CHECK_FALSE(id_ok(std::string("a\0b", 3)));
    CHECK_FALSE(id_ok(std::string(256, 'A')));
    CHECK_FALSE(queue_name_ok("a_b"));
    CHECK(queue_name_ok("deferred"));
}

TEST_CASE("hash source of a long id is its microseconds in short-id hex") {
    std::string id = make_long_id(1763897409, 0xABCDE, 42);
    CHECK(hash_source(id) == "ABCDE");
    CHECK(hash_source("1A2B3BEEF") == "1A2B3BEEF");
}

TEST_CASE("queue files created in a row get unique ids in time order") {
    test::ScratchQueue q;
    std::set<std::string> seen;
    std::vector<std::string> order;
    std::vector<QueueFileWriter> keep;  // alive, so inodes are not reused
    for (int i = 0; i < 2000; ++i) {
        auto w = QueueFileWriter::create(q.layout);
        REQUIRE(w.ok());
        CHECK(seen.insert(w->id()).second);
        order.push_back(w->id());
        keep.push_back(std::move(*w));
    }
    for (size_t i = 1; i < order.size(); ++i)
        CHECK(order[i - 1].substr(0, 10) <= order[i].substr(0, 10));
}
