// authorized_submit_users and friends: Postfix's user_acl rules (first match decides,
// "!" denies, tables match on a hit, nothing matching denies).
#include <catch2/catch.hpp>

#include <unistd.h>

#include "util/access/user_acl.h"

using postern::access::check_user_acl;
using postern::access::user_allowed;

TEST_CASE("static:anyone lets every user submit", "[user_acl]") {
    auto ok = user_allowed({"static:anyone"}, "alice");
    REQUIRE(ok.ok());
    CHECK(*ok);
}

TEST_CASE("an empty list lets nobody submit", "[user_acl]") {
    auto ok = user_allowed({}, "alice");
    REQUIRE(ok.ok());
    CHECK_FALSE(*ok);
}

TEST_CASE("the first matching element decides, a negated one denies", "[user_acl]") {
    std::vector<std::string> acl = {"!mallory", "alice", "static:anyone"};
    CHECK(*user_allowed(acl, "alice"));
    CHECK(*user_allowed(acl, "bob"));
    CHECK_FALSE(*user_allowed(acl, "mallory"));
    CHECK_FALSE(*user_allowed({"alice"}, "bob"));
}

TEST_CASE("a table matches when it finds the login name", "[user_acl]") {
    std::vector<std::string> acl = {"inline:{alice=yes, bob=no}"};
    CHECK(*user_allowed(acl, "alice"));
    CHECK(*user_allowed(acl, "bob"));  // any value is a match, as in Postfix's string lists
    CHECK_FALSE(*user_allowed(acl, "carol"));
}

TEST_CASE("an unreadable table is an error, not a decision", "[user_acl]") {
    auto ok = user_allowed({"hash:/nonexistent/postern/users"}, "alice");
    CHECK_FALSE(ok.ok());
}

TEST_CASE("check_user_acl names the user it refuses", "[user_acl]") {
    CHECK_FALSE(check_user_acl("authorized_submit_users", {"static:anyone"}, getuid()).has_value());
    auto denied = check_user_acl("authorized_submit_users", {"!static:anyone"}, getuid());
    REQUIRE(denied.has_value());
    CHECK(*denied == postern::access::login_name_of(getuid()));
}
