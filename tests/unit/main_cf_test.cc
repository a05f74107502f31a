#include <catch2/catch.hpp>

#include <random>

#include "util/config/main_cf.h"

using namespace postern::config;

namespace {

postern::Result<std::vector<ConfigEntry>> parse(std::string_view text, std::vector<std::string>* warnings = nullptr) {
    std::vector<std::string> w;
    auto r = parse_main_cf(text, "/etc/postern/main.cf", w);
    if (warnings) *warnings = w;
    return r;
}

}  // namespace

TEST_CASE("main.cf joins continuation lines as readlline does and skips comments") {
    auto r = parse("# comment\nmyhostname = a.example\nmydestination = a,\n  b\n\n  # c\n");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].name == "myhostname");
    CHECK((*r)[0].value == "a.example");
    CHECK((*r)[1].value == "a,  b");
    CHECK((*r)[1].line == 3);
}

TEST_CASE("main.cf comment and blank lines inside a logical line do not end it") {
    auto r = parse("a = b\n  # comment\n#col0\n\n \t\n  cont\nc=d\n");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].value == "b  cont");
    CHECK((*r)[1].name == "c");
    CHECK((*r)[1].line == 7);
}

TEST_CASE("main.cf '#' after a value is part of the value") {
    auto r = parse("a = b # not comment\nq = \"x\"\n");
    REQUIRE(r.ok());
    CHECK((*r)[0].value == "b # not comment");
    CHECK((*r)[1].value == "\"x\"");
}

TEST_CASE("main.cf line without '=' names file and line") {
    auto r = parse("a = b\nfoo bar\n");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "/etc/postern/main.cf, line 2: missing '=' after attribute name: \"foo bar\"");
    r = parse("a=1\nfoo\n  bar\n");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "/etc/postern/main.cf, line 2: missing '=' after attribute name: \"foo  bar\"");
    r = parse("a b = c\n");
    CHECK(r.error() == "/etc/postern/main.cf, line 1: missing '=' after attribute name: \"a b = c\"");
}

TEST_CASE("main.cf line starting with '=' is a missing attribute name") {
    auto r = parse("\n= c\n");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "/etc/postern/main.cf, line 2: missing attribute name: \"= c\"");
}

TEST_CASE("main.cf logical line starting with whitespace is skipped with Postfix's warning") {
    std::vector<std::string> w;
    auto r = parse(" a = b\n  more\nc = d\n", &w);
    REQUIRE(r.ok());
    REQUIRE(r->size() == 1);
    CHECK((*r)[0].name == "c");
    REQUIRE(w.size() == 1);
    CHECK(w[0] == "/etc/postern/main.cf: logical line must not start with whitespace: \" a = b  more\"");
    r = parse("  0123456789012345678901234567890123456789 = x\n", &w);
    REQUIRE(w.size() == 1);
    CHECK(w[0] == "/etc/postern/main.cf: logical line must not start with whitespace: "
                  "\"  0123456789012345678901234567...\"");
}

TEST_CASE("main.cf trims values, keeps inner whitespace, and accepts empty values") {
    auto r = parse("a=\nb =    \nc = x\t y  \nd=e=f\n");
    REQUIRE(r.ok());
    CHECK((*r)[0].value.empty());
    CHECK((*r)[1].value.empty());
    CHECK((*r)[2].value == "x\t y");
    CHECK((*r)[3].name == "d");
    CHECK((*r)[3].value == "e=f");
}

TEST_CASE("main.cf with CRLF line ends reads like LF") {
    auto r = parse("a = b\r\nc = d\r\n  e\r\n");
    REQUIRE(r.ok());
    CHECK((*r)[0].value == "b");
    CHECK((*r)[1].value == "d\r  e");
}

TEST_CASE("main.cf NUL bytes end the line as in C") {
    auto r = parse(std::string("myorigin = a\0b\nmydomain = x\n", 28));
    REQUIRE(r.ok());
    CHECK((*r)[0].value == "a");
    CHECK((*r)[1].value == "x");
    r = parse(std::string("myorigin\0 = a\n", 14));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "/etc/postern/main.cf, line 1: missing '=' after attribute name: \"myorigin\"");
    r = parse(std::string("\0x\n", 3));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "/etc/postern/main.cf, line 1: missing attribute name: \"\"");
}

TEST_CASE("main.cf without a final newline and with huge lines") {
    auto r = parse("a = b");
    REQUIRE(r.ok());
    CHECK((*r)[0].value == "b");
    std::string big = "a = " + std::string(200 * 1024, 'x') + "\n  " + std::string(100 * 1024, 'y');
    r = parse(big);
    REQUIRE(r.ok());
    CHECK((*r)[0].value.size() == 200 * 1024 + 2 + 100 * 1024);
    r = parse(std::string(100 * 1024, 'z'));
    CHECK_FALSE(r.ok());
}

TEST_CASE("main.cf parser never crashes on random bytes or random splits of a file") {
    std::mt19937 rng(7);
    const std::string file = "# c\nmyhostname = a.example\nmydestination = a,\n  b\n\n  # c\nx=y\n";
    for (int i = 0; i < 5000; ++i) {
        std::string s;
        size_t len = rng() % 200;
        for (size_t k = 0; k < len; ++k) {
            unsigned r = rng() % 10;
            s += r < 3 ? "= \n#\t\r\0x"[rng() % 9] : static_cast<char>(rng() % 256);
        }
        std::vector<std::string> w;
        auto r = parse_main_cf(s, "f", w);
        if (r.ok())
            for (const ConfigEntry& e : *r) CHECK_FALSE(e.name.empty());
        else
            CHECK(r.error().rfind("f, line ", 0) == 0);
        // A prefix of a good file that ends at a line end is a good file; any other
        // cut gives a good file or an error that names the line.
        size_t cut = rng() % file.size();
        auto p = parse_main_cf(std::string_view(file).substr(0, cut), "f", w);
        if (cut == 0 || file[cut - 1] == '\n')
            CHECK(p.ok());
        else if (!p.ok())
            CHECK(p.error().rfind("f, line ", 0) == 0);
    }
}
