#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "util/table/alias_source.h"

using namespace postern::table;

namespace {

std::string entry(const std::string& text, std::vector<std::string>* warnings = nullptr) {
    std::vector<std::string> w;
    auto e = parse_alias_line({text, 5}, "aliases", false, w);
    if (warnings) *warnings = w;
    return e ? e->key + "|" + e->value : "<none>";
}

}  // namespace

TEST_CASE("alias values come out in Postfix's external form", "[tables]") {
    CHECK(entry("root: Admin@Example.COM, \"|/usr/bin/foo bar\"  , /var/log/x") ==
          "root|Admin@Example.COM, \"|/usr/bin/foo bar\", /var/log/x");
    CHECK(entry("a.b: c  d") == "a.b|c d");
    CHECK(entry("e: f , g ,h") == "e|f, g, h");
    CHECK(entry("i: j (comment) k") == "i|j (comment) k");
    CHECK(entry("l: \"m n\" <o@p>") == "l|\"m n\" <o@p>");
    CHECK(entry("q: r@s.t, u . v") == "q|r@s.t, u.v");
    CHECK(entry("w: [1.2.3.4] x") == "w|[1.2.3.4] x");
    CHECK(entry("y: \\\\z, \\\"q") == "y|\"\\\\z\", \"\\\"q\"");
    CHECK(entry("A: B; C") == "A|B;C");
    CHECK(entry("d: :include:/etc/x,:include: /y") == "d|:include:/etc/x, :include:/y");
    CHECK(entry("em: \"\"") == "em|\"\"");
    CHECK(entry("pipe: |/bin/cmd") == "pipe||/bin/cmd");
}

TEST_CASE("alias names are unquoted and keep their words", "[tables]") {
    CHECK(entry("\"Quoted Name\": x") == "Quoted Name|x");
    CHECK(entry("foo bar: x") == "foo bar|x");
    CHECK(entry("\"p\\\"q\": 3") == "p\"q|3");
    CHECK(entry("Last:val") == "Last|val");
}

TEST_CASE("alias lines without a name, value or colon are refused", "[tables]") {
    std::vector<std::string> w;
    for (const char* bad : {"bad line", "foo:", ": empty", "a, b: c"}) {
        CHECK(entry(bad, &w) == "<none>");
        REQUIRE(w.size() == 1);
        CHECK(w[0] == "aliases, line 5: need name:value pair");
    }
    for (const char* remote : {"user@dom: x", "u%v: y", "\"x y\"@z: 1"}) {
        CHECK(entry(remote, &w) == "<none>");
        REQUIRE(w.size() == 1);
        CHECK(w[0] == "aliases, line 5: name must be local");
    }
}

TEST_CASE("alias lines with NUL bytes, unterminated quotes or comments do not crash", "[tables]") {
    CHECK(entry(std::string("a: b\0c", 6)) == "a|b");
    CHECK(entry("a: \"unterminated") == "a|\"unterminated\"");
    CHECK(entry("a: (unterminated") == "a|(unterminated");
    CHECK(entry("a: [1.2") == "a|[1.2]");
    CHECK(entry("a: x\\") == "a|x");
    CHECK(entry("") == "<none>");
}
