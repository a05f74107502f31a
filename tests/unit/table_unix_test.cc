#include <grp.h>
#include <pwd.h>

#include <catch2/catch.hpp>
#include <string>

#include "util/table/table.h"

using namespace postern::table;

TEST_CASE("unix:passwd.byname returns the passwd line", "[tables]") {
    struct passwd* pw = getpwuid(0);
    REQUIRE(pw);
    std::string expect = std::string(pw->pw_name) + ":" + pw->pw_passwd + ":0:" + std::to_string(pw->pw_gid) +
                         ":" + pw->pw_gecos + ":" + pw->pw_dir + ":" + pw->pw_shell;
    auto t = open_table("unix:passwd.byname", kReadOnly | kFoldFix);
    REQUIRE(t.ok());
    CHECK((*t)->lookup(pw->pw_name).value == expect);
    CHECK((*t)->lookup("ROOT").found());
    CHECK_FALSE((*t)->lookup("no-such-user-here").found());
}

TEST_CASE("unix:group.byname returns the group line with members", "[tables]") {
    struct group* gr = getgrgid(0);
    REQUIRE(gr);
    auto t = open_table("unix:group.byname", kReadOnly);
    REQUIRE(t.ok());
    std::string v = (*t)->lookup(gr->gr_name).value;
    CHECK(v.rfind(std::string(gr->gr_name) + ":" + gr->gr_passwd + ":0:", 0) == 0);
}

TEST_CASE("unix tables other than passwd and group are refused", "[tables]") {
    auto t = open_table("unix:shadow.byname", kReadOnly);
    REQUIRE_FALSE(t.ok());
    CHECK(t.error() == "unknown table: unix:shadow.byname");
}
