#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>

#include "util/table/table.h"

using namespace postern::table;

namespace {

std::string write_temp(const std::string& text) {
    char tmpl[] = "/tmp/postern-texthash-XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    close(fd);
    return tmpl;
}

}  // namespace

TEST_CASE("texthash reads the source file at open and folds keys", "[tables]") {
    std::string path = write_temp("Foo bar baz\n# c\nx@Example.COM y\n  continued\n");
    auto t = open_table("texthash:" + path, kReadOnly | kFoldFix | kDupWarn);
    REQUIRE(t.ok());
    CHECK((*t)->lookup("FOO").value == "bar baz");
    CHECK((*t)->lookup("x@example.com").value == "y  continued");
    CHECK_FALSE((*t)->lookup("nope").found());
    int n = 0;
    REQUIRE((*t)->for_each([&](std::string_view, std::string_view) { return ++n, true; }).ok());
    CHECK(n == 2);
    CHECK_FALSE((*t)->changed());
    unlink(path.c_str());
    CHECK((*t)->changed());
}

TEST_CASE("texthash duplicates follow the duplicate flags", "[tables]") {
    std::string path = write_temp("a 1\na 2\n");
    auto first = open_table("texthash:" + path, kReadOnly | kDupWarn);
    REQUIRE(first.ok());
    CHECK((*first)->lookup("a").value == "1");
    auto replaced = open_table("texthash:" + path, kReadOnly | kDupReplace);
    CHECK((*replaced)->lookup("a").value == "2");
    auto strict = open_table("texthash:" + path, kReadOnly);
    REQUIRE_FALSE(strict.ok());
    CHECK(strict.error() == path + ", line 2: duplicate entry: \"a\"");
    unlink(path.c_str());
}

TEST_CASE("texthash errors name the file", "[tables]") {
    auto missing = open_table("texthash:/nonexistent/x", kReadOnly);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error() == "open database /nonexistent/x: No such file or directory");
    auto rw = open_table("texthash:/etc/hostname", kCreate);
    REQUIRE_FALSE(rw.ok());
    CHECK(rw.error() == "texthash:/etc/hostname map requires O_RDONLY access mode");
}
