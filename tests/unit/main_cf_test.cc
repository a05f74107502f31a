#include <catch2/catch.hpp>

#include "util/config/main_cf.h"

using namespace postern::config;

TEST_CASE("main.cf joins continuation lines and skips comments") {
    auto r = parse_main_cf("# comment\nmyhostname = a.example\nmydestination = a,\n  b\n\n  # c\n", "main.cf");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].name == "myhostname");
    CHECK((*r)[0].value == "a.example");
    CHECK((*r)[1].value == "a, b");
    CHECK((*r)[1].line == 3);
}

TEST_CASE("main.cf line without '=' names file and line") {
    auto r = parse_main_cf("a = b\nfoo bar\n", "/etc/postern/main.cf");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "/etc/postern/main.cf, line 2: missing '=' after attribute name: \"foo bar\"");
}
