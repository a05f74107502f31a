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

TEST_CASE("cidr table matches networks in order, first match wins") {
    auto t = cidr_table_from_text("t",
                                  "192.168.1.1   OK one\n"
                                  "192.168.0.0/16  REJECT two\n"
                                  "2001:db8::1 v6one\n"
                                  "2001:db8::/32 v6net\n"
                                  "0.0.0.0/0 all4\n");
    CHECK(value_of(*t, "192.168.1.1") == "OK one");
    CHECK(value_of(*t, "192.168.200.3") == "REJECT two");
    CHECK(value_of(*t, "10.0.0.1") == "all4");
    CHECK(value_of(*t, "2001:DB8:0::1") == "v6one");
    CHECK(value_of(*t, "2001:db8:ffff::7") == "v6net");
    CHECK(value_of(*t, "2001:db9::1") == "<none>");
    CHECK(t->is_pattern());
}

TEST_CASE("cidr keys that are not addresses never match") {
    auto t = cidr_table_from_text("t", "!10.0.0.0/8 outside\n::/0 all6\n");
    CHECK(value_of(*t, "abc") == "<none>");
    CHECK(value_of(*t, "") == "<none>");
    CHECK(value_of(*t, "[1.2.3.4]") == "<none>");
    CHECK(value_of(*t, "01.2.3.4") == "<none>");
    CHECK(value_of(*t, " 1.2.3.4") == "<none>");
}

TEST_CASE("cidr negation applies only within the same address family") {
    auto t = cidr_table_from_text("t", "!172.16.0.0/12 notprivate\n[::1] loop6\n");
    CHECK(value_of(*t, "8.8.8.8") == "notprivate");
    CHECK(value_of(*t, "172.16.1.1") == "<none>");
    CHECK(value_of(*t, "::1") == "loop6");
    auto d = cidr_table_from_text("t", "!!4.0.0.0/8 double\n! 5.0.0.0/8 spaced\n");
    CHECK(value_of(*d, "4.1.1.1") == "double");
    CHECK(value_of(*d, "4.1.1.2") == "double");
    CHECK(value_of(*d, "6.1.1.1") == "spaced");
}

TEST_CASE("cidr bracketed patterns are accepted") {
    auto t = cidr_table_from_text("t", "[10.0.0.0]/8 a\n[172.16.0.0/12] b\n[1::2]/128 c\n");
    CHECK(value_of(*t, "10.9.9.9") == "a");
    CHECK(value_of(*t, "172.17.0.1") == "b");
    CHECK(value_of(*t, "1::2") == "c");
}

TEST_CASE("cidr if/endif blocks nest and negate") {
    auto t = cidr_table_from_text("t",
                                  "if 10.0.0.0/8\n"
                                  "if !10.1.0.0/16\n"
                                  "10.0.0.0/8 ten-not-ten-one\n"
                                  "endif\n"
                                  "10.1.2.0/24 ten-one-two\n"
                                  "endif\n"
                                  "IF\t2001:db8::/32\n"
                                  "::/0 doc6\n"
                                  "EndIf\n"
                                  "0.0.0.0/0 default\n");
    CHECK(value_of(*t, "10.2.3.4") == "ten-not-ten-one");
    CHECK(value_of(*t, "10.1.2.3") == "ten-one-two");
    CHECK(value_of(*t, "10.1.3.3") == "default");
    CHECK(value_of(*t, "2001:db8::5") == "doc6");
    CHECK(value_of(*t, "2001:db9::5") == "<none>");
}

TEST_CASE("cidr negated if with another address family skips the block") {
    auto t = cidr_table_from_text("t", "if !1.0.0.0/8\n::/0 inside\nendif\n::/0 outside\n");
    CHECK(value_of(*t, "::1") == "outside");
}

TEST_CASE("cidr skips rules with non-null host bits and other errors") {
    auto t = cidr_table_from_text("t",
                                  "10.1.2.3/8 hostbits\n"
                                  "1.2.3.4/33 toolong\n"
                                  "1.2.3.4/8x badmask\n"
                                  "/8 nonet\n"
                                  "foo bar\n"
                                  "1.2.3.4\n"
                                  "[1.2.3.4 nobracket\n"
                                  "[1.2.3.4]x garbage\n"
                                  "endif\n"
                                  "endif junk\n"
                                  "if\n"
                                  "0.0.0.0/0 fallback\n");
    CHECK(value_of(*t, "10.1.2.3") == "fallback");
    CHECK(value_of(*t, "1.2.3.4") == "fallback");
}

TEST_CASE("cidr values keep inner blanks and lose trailing ones") {
    auto t = cidr_table_from_text("t", "1.2.3.4\t\tvalue with  spaces   \n 5.6.7.8 lost\n");
    CHECK(value_of(*t, "1.2.3.4") == "value with  spaces    5.6.7.8 lost");
}

TEST_CASE("cidr opens files, inline rules, and refuses writing") {
    auto t = open_table("cidr:{{1.2.3.4 x},{1.2.3.0/24 y}}");
    REQUIRE(t.ok());
    CHECK(value_of(**t, "1.2.3.4") == "x");
    CHECK(value_of(**t, "1.2.3.5") == "y");
    auto missing = open_table("cidr:/nonexistent/postern.cidr");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error() == "open /nonexistent/postern.cidr: No such file or directory");
    auto create = open_table("cidr:/tmp/x", kCreate);
    REQUIRE_FALSE(create.ok());
    CHECK(create.error() == "cidr:/tmp/x map requires O_RDONLY access mode");
}

TEST_CASE("cidr parser survives hostile input") {
    std::mt19937 rng(4242);
    for (int round = 0; round < 500; ++round) {
        std::string text;
        size_t n = rng() % 300;
        for (size_t i = 0; i < n; ++i) {
            static const char alphabet[] = "0123456789abcdef.:/[]! \t\nifendIF#x\0\xff";
            text.push_back(alphabet[rng() % (sizeof alphabet - 1)]);
        }
        auto t = cidr_table_from_text("fuzz", text);
        (void)t->lookup("1.2.3.4");
        (void)t->lookup("::1");
    }
    std::string deep;
    for (int i = 0; i < 5000; ++i) deep += "if 0.0.0.0/0\n";
    deep += "1.2.3.4 deep\n";
    auto t = cidr_table_from_text("deep", deep);
    CHECK(value_of(*t, "1.2.3.4") == "deep");
    CHECK(value_of(*t, "::1") == "<none>");
    auto h = cidr_table_from_text("huge", "1.2.3.4 " + std::string(200000, 'v') + "\n");
    CHECK(value_of(*h, "1.2.3.4").size() == 200000);
}
