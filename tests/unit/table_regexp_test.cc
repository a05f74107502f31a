#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "util/table/pattern_source.h"
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

TEST_CASE("regexp table returns the first matching rule") {
    auto t = regexp_table_from_text("t", "/^a/ first\n/a/ second\n/b/ third\n");
    CHECK(value_of(*t, "abc") == "first");
    CHECK(value_of(*t, "cab") == "second");
    CHECK(value_of(*t, "xyz") == "<none>");
    CHECK(t->is_pattern());
}

TEST_CASE("regexp matching is case-insensitive unless the i flag toggles it") {
    auto t = regexp_table_from_text("t", "/^abc$/i sensitive\n/^abc$/ insensitive\n");
    CHECK(value_of(*t, "abc") == "sensitive");
    CHECK(value_of(*t, "ABC") == "insensitive");
}

TEST_CASE("regexp x flag switches to basic regular expressions") {
    // In a basic RE "a+" is a literal plus sign.
    auto t = regexp_table_from_text("t", "/^a+$/x basic\n/^a+$/ extended\n");
    CHECK(value_of(*t, "a+") == "basic");
    CHECK(value_of(*t, "aaa") == "extended");
}

TEST_CASE("regexp substitutes $N, ${N}, $(N) and $$") {
    auto t = regexp_table_from_text("t", "/^(.*)@(.*)$/ u=$1 d=${2} again=$(1) cost=$$5\n");
    CHECK(value_of(*t, "joe@example.com") == "u=joe d=example.com again=joe cost=$5");
}

TEST_CASE("regexp substitution of a group that did not match is empty") {
    auto t = regexp_table_from_text("t", "/^(a)(b)?$/ [$1][$2]\n");
    CHECK(value_of(*t, "a") == "[a][]");
}

TEST_CASE("regexp negated rules match when the pattern does not") {
    auto t = regexp_table_from_text("t", "!/^owner-/ not-owner\n");
    CHECK(value_of(*t, "joe") == "not-owner");
    CHECK(value_of(*t, "owner-list") == "<none>");
}

TEST_CASE("regexp /p1/!/p2/ needs p1 to match and p2 not to") {
    auto t = regexp_table_from_text("t", "/example/!/^postmaster@/ caught\n");
    CHECK(value_of(*t, "joe@example.com") == "caught");
    CHECK(value_of(*t, "postmaster@example.com") == "<none>");
}

TEST_CASE("regexp accepts any delimiter and escaped delimiters") {
    auto t = regexp_table_from_text("t", "|a/b| slash\n%x\\%y% percent\n");
    CHECK(value_of(*t, "a/b") == "slash");
    CHECK(value_of(*t, "x%y") == "percent");
}

TEST_CASE("regexp if/endif blocks nest and negate") {
    auto t = regexp_table_from_text("t",
                                    "if /example\\.com$/\n"
                                    "if !/^admin@/\n"
                                    "/./ user-at-example\n"
                                    "endif\n"
                                    "/^admin@/ admin\n"
                                    "endif\n"
                                    "/./ elsewhere\n");
    CHECK(value_of(*t, "joe@example.com") == "user-at-example");
    CHECK(value_of(*t, "admin@example.com") == "admin");
    CHECK(value_of(*t, "joe@other.org") == "elsewhere");
}

TEST_CASE("regexp if without endif ends the search when it does not match") {
    auto t = regexp_table_from_text("t", "if /^a/\n/b/ inside\n");
    CHECK(value_of(*t, "ab") == "inside");
    CHECK(value_of(*t, "xb") == "<none>");
}

TEST_CASE("regexp continuation lines join without the newline") {
    auto t = regexp_table_from_text("t", "/a/ x\n\t\tcont\n  # comment\n   more\n\n/b/\n  after blank\n");
    CHECK(value_of(*t, "a") == "x\t\tcont   more");
    CHECK(value_of(*t, "b") == "after blank");
}

TEST_CASE("regexp rules with errors are skipped, the rest still work") {
    auto t = regexp_table_from_text("t",
                                    "/(bad/ x\n"          // regcomp error
                                    "/a/q x\n"            // unknown flag
                                    "/unterminated x\n"   // no closing delimiter
                                    "/(e)/ $1x\n"         // non-numeric $1x
                                    "/(f)/ $0\n"          // $0 out of range
                                    "/(g)/ $2\n"          // more groups than the pattern has
                                    "!/(h)/ $1\n"         // $1 in a negated rule
                                    "/(i)/ [$]\n"         // empty macro name
                                    "/(j)/ ${1\n"         // truncated reference
                                    "endif\n"             // endif without if
                                    "junk\n"              // unrecognized
                                    "/./ fallback\n");
    for (const char* k : {"bad", "aq", "e", "f", "g", "i", "j", "unterminated"})
        CHECK(value_of(*t, k) == "fallback");
}

TEST_CASE("regexp rule without a result yields an empty string") {
    auto t = regexp_table_from_text("t", "/a/\n");
    LookupResult r = t->lookup("a");
    REQUIRE(r.found());
    CHECK(r.value.empty());
}

TEST_CASE("regexp folds the key to lower case only with kFoldMul") {
    auto t = regexp_table_from_text("t", "/^(abc)$/i [$1]\n", kReadOnly | kFoldMul);
    CHECK(value_of(*t, "ABC") == "[abc]");
    auto u = regexp_table_from_text("t", "/^(abc)$/ [$1]\n");
    CHECK(value_of(*u, "ABC") == "[ABC]");
}

TEST_CASE("regexp table opens a file through open_table and reports a missing file") {
    char path[] = "/tmp/postern-regexp-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    std::string text = "/^(.*)@example\\.com$/ local:$1\n";
    REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    close(fd);
    auto t = open_table(std::string("regexp:") + path);
    REQUIRE(t.ok());
    CHECK(value_of(**t, "joe@example.com") == "local:joe");
    unlink(path);
    auto missing = open_table("regexp:/nonexistent/postern.re");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error() == "open /nonexistent/postern.re: No such file or directory");
    auto create = open_table("regexp:/tmp/x", kCreate);
    REQUIRE_FALSE(create.ok());
    CHECK(create.error() == "regexp:/tmp/x map requires O_RDONLY access mode");
}

TEST_CASE("regexp inline specification holds one rule per brace group") {
    auto t = open_table("regexp:{ {/a(b)/ x$1}, { /c/ d } }");
    REQUIRE(t.ok());
    CHECK(value_of(**t, "abc") == "xb");
    CHECK(value_of(**t, "c") == "d");
    auto bad = open_table("regexp:{ {/a/ x}, /c/ d }");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error() == "regexp map: no '{' at start of text in \"/c/\"");
    auto open = open_table("regexp:{ {/a/ x}");
    REQUIRE_FALSE(open.ok());
    CHECK(open.error() == "regexp map: missing '}' in \"{ {/a/ x}\"");
    auto after = open_table("regexp:{ {/a/ x} } junk");
    REQUIRE_FALSE(after.ok());
    CHECK(after.error() == "regexp map: syntax error after '}' in \"{ {/a/ x} } junk\"");
}

TEST_CASE("logical lines report the first physical line number") {
    auto lines = logical_lines("# c\n\n/a/ x\n  y\n\n#z\nsecond\n", "f");
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].lineno == 3);
    CHECK(lines[0].text == "/a/ x  y");
    CHECK(lines[1].lineno == 7);
    // A continuation with nothing before it is dropped.
    auto orphan = logical_lines("  lost\nfound\n", "f");
    REQUIRE(orphan.size() == 1);
    CHECK(orphan[0].text == "found");
}

TEST_CASE("regexp parser survives hostile input") {
    std::mt19937 rng(12345);
    for (int round = 0; round < 300; ++round) {
        std::string text;
        size_t n = rng() % 400;
        for (size_t i = 0; i < n; ++i) {
            static const char alphabet[] = "/!$({})\\ \t\n#ifendIFx.*+?[]^a1\0\xff";
            text.push_back(alphabet[rng() % (sizeof alphabet - 1)]);
        }
        auto t = regexp_table_from_text("fuzz", text);
        (void)t->lookup("abc");
        (void)t->lookup(std::string("a\0b", 3));
    }
    // Deep nesting and a huge line: no recursion, no fixed buffers.
    std::string deep;
    for (int i = 0; i < 2000; ++i) deep += "if /a/\n";
    deep += "/a/ deep\n";
    auto t = regexp_table_from_text("deep", deep);
    CHECK(value_of(*t, "a") == "deep");
    CHECK(value_of(*t, "b") == "<none>");
    std::string huge = "/" + std::string(100000, 'a') + "/ long\n";
    auto h = regexp_table_from_text("huge", huge);
    CHECK(value_of(*h, std::string(100000, 'a')) == "long");
}

TEST_CASE("pattern tables with kUtf8 refuse non-UTF-8 keys and results") {
    auto t = regexp_table_from_text("t", "/^(.)(.*)$/ first=$1 rest=$2\n", kReadOnly | kUtf8);
    CHECK(t->lookup("\xff\xfe" "abc").status == LookupResult::Status::NotFound);
    // "(.)" takes one byte of the two-byte "Ü": the result is not UTF-8, a lookup error.
    CHECK(t->lookup("\xc3\x9c" "BER").status == LookupResult::Status::Error);
    CHECK(value_of(*t, "abc") == "first=a rest=bc");
    auto plain = regexp_table_from_text("t", "/^(.)(.*)$/ first=$1\n");
    CHECK(plain->lookup("\xc3\x9c" "BER").found());
    auto c = cidr_table_from_text("c", "1.2.3.4 caf\xe9\n", kReadOnly | kUtf8);
    CHECK(c->lookup("1.2.3.4").status == LookupResult::Status::Error);
}
