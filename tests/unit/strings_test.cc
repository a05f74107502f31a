#include <catch2/catch.hpp>

#include "util/base/strings.h"

using namespace postern;

TEST_CASE("split_tokens drops empty fields between separators") {
    auto v = split_tokens(" a, b,,c\t", ", \t");
    REQUIRE(v.size() == 3);
    CHECK(v[0] == "a");
    CHECK(v[1] == "b");
    CHECK(v[2] == "c");
}

TEST_CASE("parse_long rejects garbage and overflow") {
    long v = 0;
    CHECK(parse_long("42", v));
    CHECK(v == 42);
    CHECK(parse_long("-7", v));
    CHECK(v == -7);
    CHECK_FALSE(parse_long("", v));
    CHECK_FALSE(parse_long("12x", v));
    CHECK_FALSE(parse_long("99999999999999999999999", v));
    CHECK_FALSE(parse_long("+", v));
}

TEST_CASE("trim strips spaces, tabs and line ends on both sides") {
    CHECK(trim("  a b \r\n") == "a b");
    CHECK(trim(" \t ").empty());
}
