#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "util/table/table_source.h"

using namespace postern::table;

namespace {

struct Parsed {
    std::vector<LogicalLine> lines;
    std::vector<std::string> warnings;
};

Parsed read_all(std::string_view text, const std::vector<size_t>& cuts = {}) {
    LogicalLineReader r("src");
    size_t pos = 0;
    for (size_t c : cuts) {
        r.feed(text.substr(pos, c - pos));
        pos = c;
    }
    r.feed(text.substr(pos));
    r.finish();
    Parsed p;
    LogicalLine l;
    while (r.next(l)) p.lines.push_back(l);
    p.warnings = r.take_warnings();
    return p;
}

std::vector<std::string> entries(std::string_view text, std::vector<std::string>* warnings = nullptr) {
    Parsed p = read_all(text);
    std::vector<std::string> out;
    std::vector<std::string> w = p.warnings;
    for (const LogicalLine& l : p.lines)
        if (auto e = parse_postmap_line(l, "src", false, w)) out.push_back(e->key + "=" + e->value);
    if (warnings) *warnings = w;
    return out;
}

}  // namespace

TEST_CASE("logical lines drop comments and blank lines and join continuations", "[tables]") {
    Parsed p = read_all("a b\n# comment\n  c\n\n   \nd e\n\t f\n");
    REQUIRE(p.lines.size() == 2);
    CHECK(p.lines[0].text == "a b  c");
    CHECK(p.lines[0].line == 1);
    CHECK(p.lines[1].text == "d e\t f");
    CHECK(p.lines[1].line == 6);
    CHECK(p.warnings.empty());
}

TEST_CASE("continuation text without a line to continue is dropped with Postfix's warning", "[tables]") {
    Parsed p = read_all("  lead x\na b\n");
    REQUIRE(p.lines.size() == 1);
    CHECK(p.lines[0].text == "a b");
    REQUIRE(p.warnings.size() == 1);
    CHECK(p.warnings[0] == "src: logical line must not start with whitespace: \"  lead x\"");
    Parsed longer = read_all("  0123456789012345678901234567890123456789\n");
    REQUIRE(longer.warnings.size() == 1);
    CHECK(longer.warnings[0] ==
          "src: logical line must not start with whitespace: \"  0123456789012345678901234567...\"");
}

TEST_CASE("a last line without newline still counts", "[tables]") {
    Parsed p = read_all("a b\nlast nonl");
    REQUIRE(p.lines.size() == 2);
    CHECK(p.lines[1].text == "last nonl");
    CHECK(p.lines[1].line == 2);
}

TEST_CASE("any split of the input gives the same logical lines", "[tables]") {
    const std::string text = "k1 v1\r\n# c\n  more\n\nk2 \"v 2\"\n\t\tcont\nk3\n  orphan? no\n"
                             "  x\nlast line";
    Parsed whole = read_all(text);
    std::mt19937 rng(12345);
    for (int round = 0; round < 500; ++round) {
        std::vector<size_t> cuts;
        size_t n = rng() % 6;
        for (size_t i = 0; i < n; ++i) cuts.push_back(rng() % (text.size() + 1));
        std::sort(cuts.begin(), cuts.end());
        Parsed split = read_all(text, cuts);
        REQUIRE(split.lines.size() == whole.lines.size());
        for (size_t i = 0; i < whole.lines.size(); ++i) {
            CHECK(split.lines[i].text == whole.lines[i].text);
            CHECK(split.lines[i].line == whole.lines[i].line);
        }
        CHECK(split.warnings == whole.warnings);
    }
    // Byte at a time.
    std::vector<size_t> every;
    for (size_t i = 1; i < text.size(); ++i) every.push_back(i);
    Parsed bytes = read_all(text, every);
    REQUIRE(bytes.lines.size() == whole.lines.size());
}

TEST_CASE("postmap lines: key ends at unquoted whitespace, value is trimmed", "[tables]") {
    CHECK(entries("Foo   bar baz  \n") == std::vector<std::string>{"Foo=bar baz"});
    CHECK(entries("\"a b\" c\n") == std::vector<std::string>{"\"a b\"=c"});
    CHECK(entries("q\\\"x y\n") == std::vector<std::string>{"q\\\"x=y"});
    CHECK(entries("cr v\r\n") == std::vector<std::string>{"cr=v"});
}

TEST_CASE("postmap lines: malformed lines are skipped with file and line", "[tables]") {
    std::vector<std::string> w;
    auto e = entries("ok 1\nnovalue\n\"unbal x\nk: v\n", &w);
    CHECK(e == std::vector<std::string>{"ok=1", "k:=v"});
    REQUIRE(w.size() == 3);
    CHECK(w[0] == "src, line 2: expected format: key whitespace value");
    CHECK(w[1] == "src, line 3: unbalanced '\"' in '\"unbal x' -- ignoring this line");
    CHECK(w[2] == "src, line 4: record is in \"key: value\" format; is this an alias file?");
}

TEST_CASE("postmap lines: a NUL byte ends the line as in Postfix's C strings", "[tables]") {
    std::vector<std::string> w;
    auto e = entries(std::string("nul\0key v\nk\0 v2 ok\n", 19), &w);
    CHECK(e.empty());
    REQUIRE(w.size() == 2);
    CHECK(w[0] == "src, line 1: expected format: key whitespace value");
}

TEST_CASE("postmap lines: huge lines are handled", "[tables]") {
    std::string key(200000, 'k');
    std::string value(300000, 'v');
    auto e = entries(key + " " + value + "\n  " + value + "\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].size() == key.size() + 1 + value.size() * 2 + 2);
}

TEST_CASE("postmap lines: non-UTF-8 input is refused only when UTF-8 is on", "[tables]") {
    LogicalLine l{"k \xff\xfe", 7};
    std::vector<std::string> w;
    CHECK_FALSE(parse_postmap_line(l, "src", true, w));
    REQUIRE(w.size() == 1);
    CHECK(w[0] == "src, line 7: non-UTF-8 input \"k ??\" -- ignoring this line");
    w.clear();
    CHECK(parse_postmap_line(l, "src", false, w));
    CHECK(parse_postmap_line({"k \xc3\xa4", 1}, "src", true, w));
}

TEST_CASE("texthash lines split at the first whitespace without quote handling", "[tables]") {
    std::vector<std::string> w;
    auto e = parse_texthash_line({"\"a b\" c", 3}, "f", false, w);
    REQUIRE(e);
    CHECK(e->key == "\"a");
    CHECK(e->value == "b\" c");
    CHECK_FALSE(parse_texthash_line({"novalue", 4}, "f", false, w));
    REQUIRE(w.size() == 1);
    CHECK(w[0] == "f, line 4: expected format: key whitespace value -- ignoring this line");
}

TEST_CASE("valid_utf8 rejects overlong forms, surrogates and truncation", "[tables]") {
    CHECK(valid_utf8("plain"));
    CHECK(valid_utf8("\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80"));
    CHECK_FALSE(valid_utf8("\xc0\xaf"));
    CHECK_FALSE(valid_utf8("\xed\xa0\x80"));
    CHECK_FALSE(valid_utf8("\xe2\x82"));
    CHECK_FALSE(valid_utf8("\xf5\x80\x80\x80"));
}

TEST_CASE("fold_key lower-cases ASCII, and Unicode letters when UTF-8 is on", "[tables]") {
    CHECK(fold_key("MiXeD@Example.COM", false) == "mixed@example.com");
    CHECK(fold_key("\xc3\x84" "B", true) == "\xc3\xa4" "b");
    CHECK(fold_key("\xc3\x84" "B", false) == "\xc3\x84" "b");
    CHECK(fold_key("\xff" "AB", true) == "\xff" "ab");
}

TEST_CASE("fold_key uses full case folding where it differs from lower case", "[tables]") {
    CHECK(fold_key("STRA\xc3\x9f" "E", true) == "strasse");
    CHECK(fold_key("\xce\xa3\xcf\x82", true) == "\xcf\x83\xcf\x83");
    CHECK(fold_key("\xef\xac\x81le", true) == "file");
}

TEST_CASE("printable keeps UTF-8 and replaces control and stray bytes", "[tables]") {
    CHECK(printable("ok \xc3\xa4") == "ok \xc3\xa4");
    CHECK(printable("bad\xff\x01x") == "bad??x");
    CHECK(printable("\xe2\x82") == "??");
}
