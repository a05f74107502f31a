#include <catch2/catch.hpp>

#include "util/mailbox/destinations.h"

using postern::mailbox::split_destinations;
using V = std::vector<std::string>;

TEST_CASE("alias values split at commas outside quotes", "[local]") {
    CHECK(split_destinations("a, b@example.com ,c") == V{"a", "b@example.com", "c"});
    CHECK(split_destinations("\"|/usr/bin/filter -a x, y\", /var/log/mail.copy") ==
          V{"|/usr/bin/filter -a x, y", "/var/log/mail.copy"});
    CHECK(split_destinations("|/usr/bin/vacation user") == V{"|/usr/bin/vacation user"});
    CHECK(split_destinations(":include:/etc/lists/staff") == V{":include:/etc/lists/staff"});
}

TEST_CASE("alias values: route addresses, comments, escapes and empty items", "[local]") {
    CHECK(split_destinations("Joe User <joe@example.com>, (a comment) ann") ==
          V{"joe@example.com", "ann"});
    CHECK(split_destinations("\\root, ,,") == V{"\\root"});
    CHECK(split_destinations("\"john doe\"@example.com") == V{"john doe@example.com"});
    CHECK(split_destinations("\"|echo \\\"hi\\\"\"") == V{"|echo \"hi\""});
    CHECK(split_destinations("") == V{});
}
