#include <catch2/catch.hpp>
#include <string>

#include "util/table/table.h"

using namespace postern::table;

TEST_CASE("inline tables take key=value lists and braced entries with spaces", "[tables]") {
    auto t = open_table("inline:{ a=b, { c = d e }, F=G }", kReadOnly | kFoldFix);
    REQUIRE(t.ok());
    CHECK((*t)->lookup("A").value == "b");
    CHECK((*t)->lookup("c").value == "d e");
    CHECK((*t)->lookup("f").value == "G");
    CHECK_FALSE((*t)->lookup("x").found());
    auto dup = open_table("inline:{ a=b, a=c }", kReadOnly);
    CHECK((*dup)->lookup("a").value == "c");
}

TEST_CASE("inline syntax errors read like Postfix's", "[tables]") {
    for (const char* bad : {"inline:{}", "inline:a=b", "inline:{a=b", "inline:{a=b}x", "inline:{ {a=b }"}) {
        auto t = open_table(bad, kReadOnly);
        REQUIRE_FALSE(t.ok());
        CHECK(t.error() == std::string("bad syntax: \"") + bad + "\"; need \"inline:{name=value...}\"");
    }
    auto t = open_table("inline:{ a }", kReadOnly);
    REQUIRE_FALSE(t.ok());
    CHECK(t.error() == "missing '=' after attribute name: \"inline:{ a }\"; need \"inline:{name=value...}\"");
}

TEST_CASE("static tables answer every key with one value", "[tables]") {
    auto t = open_table("static:{ text with spaces }", kReadOnly);
    REQUIRE(t.ok());
    CHECK((*t)->lookup("anything").value == "text with spaces");
    auto plain = open_table("static:OK", kReadOnly);
    CHECK((*plain)->lookup("").value == "OK");
    auto bad = open_table("static:{a b", kReadOnly);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error() == "bad static:name syntax: missing '}' in \"{a b\"");
    auto empty = open_table("static:", kReadOnly);
    REQUIRE_FALSE(empty.ok());
    CHECK(empty.error() == "open dictionary: expecting \"type:name\" form instead of \"static:\"");
    auto seq = (*t)->for_each([](std::string_view, std::string_view) { return true; });
    CHECK(seq.error() == "table static:{ text with spaces }: sequence operation is not supported");
}

TEST_CASE("fail tables fail every lookup and update", "[tables]") {
    auto t = open_table("fail:oops", kReadOnly);
    REQUIRE(t.ok());
    LookupResult r = (*t)->lookup("x");
    CHECK(r.status == LookupResult::Status::Error);
    CHECK(r.error == "Application error");
    CHECK_FALSE((*t)->update("a", "b").ok());
    CHECK_FALSE((*t)->remove("a").ok());
}
