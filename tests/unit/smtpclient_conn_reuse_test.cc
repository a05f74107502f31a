#include <catch2/catch.hpp>

#include "util/smtpclient/conn_reuse.h"

using namespace postern::smtpclient;

TEST_CASE("smtp connection reuse stops at the reuse time limit", "[smtpclient][reuse]") {
    CHECK(may_reuse(0, 1000, 999, 0));
    CHECK_FALSE(may_reuse(0, 1000, 1000, 0));
    CHECK_FALSE(may_reuse(5, 1000, 2000, 0));
}

TEST_CASE("smtp connection reuse count limit counts reuses, not uses", "[smtpclient][reuse]") {
    // Postfix: with a limit of 2 a connection serves three deliveries (conn_use=3).
    CHECK(may_reuse(0, 1000, 10, 2));
    CHECK(may_reuse(1, 1000, 10, 2));
    CHECK_FALSE(may_reuse(2, 1000, 10, 2));
    CHECK(may_reuse(1000, 1000, 10, 0));  // 0: no limit
}

TEST_CASE("smtp connection cache key is the request's next hop in lower case", "[smtpclient][reuse]") {
    CHECK(cache_key("[Relay.Example]:587") == "[relay.example]:587");
    CHECK(cache_key("example.com") == "example.com");
    CHECK(cache_key("[relay.example]:587") != cache_key("[relay.example]:25"));
    // Sender-dependent credentials: one connection per sender.
    CHECK(cache_key("[relay.example]", "a@example.com") != cache_key("[relay.example]", "b@example.com"));
    CHECK(cache_key("[relay.example]", "a@example.com") != cache_key("[relay.example]"));
}

TEST_CASE("smtp connection cache destinations name the host without brackets or port", "[smtpclient][reuse]") {
    CHECK(cache_destination_name("[Relay.Example]:587", false) == "relay.example");
    CHECK(cache_destination_name("example.com", false) == "example.com");
    CHECK(cache_destination_name("[127.0.0.1]:2525", false) == "127.0.0.1");
    CHECK(cache_destination_name("unix:/var/run/lmtp", true) == "/var/run/lmtp");
}
