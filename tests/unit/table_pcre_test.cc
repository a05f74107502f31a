#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "util/table/pattern_tables.h"
#include "util/table/table.h"

using namespace postern;
using namespace postern::table;

namespace {

std::string value_of(Table& t, std::string_view key) {
    LookupResult r = t.lookup(key);
    return r.found() ? r.value : "<none>";
}

}  // namespace

TEST_CASE("pcre table supports perl syntax and substitution") {
    auto t = pcre_table_from_text("t", "/^(?!owner-)(.*)-outgoing@(.*)/ 550 Use ${1}@${2} instead\n");
    CHECK(value_of(*t, "list-outgoing@example.com") == "550 Use list@example.com instead");
    CHECK(value_of(*t, "owner-list-outgoing@example.com") == "<none>");
    CHECK(t->is_pattern());
}

TEST_CASE("pcre defaults to caseless and dotall; flags toggle them") {
    auto t = pcre_table_from_text("t", "/^a.b$/s no-dotall\n/^A.B$/ dotall-caseless\n");
    CHECK(value_of(*t, "a\nb") == "dotall-caseless");
    CHECK(value_of(*t, "axb") == "no-dotall");
    auto c = pcre_table_from_text("t", "/^abc$/i sensitive\n/^abc$/ insensitive\n");
    CHECK(value_of(*c, "abc") == "sensitive");
    CHECK(value_of(*c, "ABC") == "insensitive");
}

TEST_CASE("pcre flags x, A, U, E, m change matching") {
    auto t = pcre_table_from_text("t",
                                  "/a b c/x extended\n"
                                  "/zz/A anchored\n"
                                  "/^(q.+)/U [$1]\n"
                                  "/end$/E endonly\n"
                                  "/^two$/m multiline\n");
    CHECK(value_of(*t, "abc") == "extended");
    CHECK(value_of(*t, "zzz") == "anchored");
    CHECK(value_of(*t, "yzz") == "<none>");
    CHECK(value_of(*t, "qxyz") == "[qx]");
    CHECK(value_of(*t, "the end\n") == "<none>");
    CHECK(value_of(*t, "one\ntwo\nthree") == "multiline");
}

TEST_CASE("pcre X flag is accepted and ignored, unknown flags skip the rule") {
    auto t = pcre_table_from_text("t", "/a/X ex\n/b/!/c/ bang\n/./ other\n");
    CHECK(value_of(*t, "a") == "ex");
    // pcre has no /p1/!/p2/ form: '!' is an unknown flag there.
    CHECK(value_of(*t, "b") == "other");
}

TEST_CASE("pcre unset groups substitute as empty text") {
    auto t = pcre_table_from_text("t", "/^(a)|(b)$/ [$1][$2]\n");
    CHECK(value_of(*t, "a") == "[a][]");
    CHECK(value_of(*t, "b") == "[][b]");
}

TEST_CASE("pcre if/endif and negation work as in regexp tables") {
    auto t = pcre_table_from_text("t", "if !/\\.example$/\n/./ foreign\nendif\n!/^x/ local-not-x\n");
    CHECK(value_of(*t, "host.other") == "foreign");
    CHECK(value_of(*t, "host.example") == "local-not-x");
    CHECK(value_of(*t, "x.example") == "<none>");
}

TEST_CASE("pcre compile errors skip the rule") {
    auto t = pcre_table_from_text("t", "/(unclosed/ x\n/(?<=a+)b/ y\n/(a)/ $2\n/./ fallback\n");
    CHECK(value_of(*t, "unclosed") == "fallback");
    CHECK(value_of(*t, "a") == "fallback");
}

TEST_CASE("pcre opens files and inline rules through open_table") {
    auto t = open_table("pcre:{ {/^(\\d+)$/ number $1}, {/./ text} }");
    REQUIRE(t.ok());
    CHECK(value_of(**t, "42") == "number 42");
    CHECK(value_of(**t, "x") == "text");
    auto missing = open_table("pcre:/nonexistent/postern.pcre");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error() == "open /nonexistent/postern.pcre: No such file or directory");
}

TEST_CASE("pcre parser survives hostile input") {
    std::mt19937 rng(777);
    for (int round = 0; round < 300; ++round) {
        std::string text;
        size_t n = rng() % 400;
        for (size_t i = 0; i < n; ++i) {
            static const char alphabet[] = "/!$({})\\ \t\n#ifendIFxAEUXsm.*+?[]^a1(?<\0\xc3";
            text.push_back(alphabet[rng() % (sizeof alphabet - 1)]);
        }
        auto t = pcre_table_from_text("fuzz", text);
        (void)t->lookup("abc");
        (void)t->lookup("\xff\xfe");
    }
    // Catastrophic backtracking hits pcre2's match limit: a warning, not a hang or a hit.
    auto t = pcre_table_from_text("t", "/^(a+)+$/ evil\n");
    std::string subject(40, 'a');
    subject += "!";
    CHECK(value_of(*t, subject) == "<none>");
}
