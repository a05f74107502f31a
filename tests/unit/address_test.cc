// Address helpers: expected results follow Postfix's quote_822_local.ref and the
// behaviour of its tok822 parser (missing commas added, groups flattened, comments and
// phrases kept out of the addresses).
#include <catch2/catch.hpp>

#include "util/address/address.h"

using namespace postern::address;
using List = std::vector<std::string>;

TEST_CASE("to_external quotes a local part that is not a dot-atom", "[address]") {
    CHECK(to_external("user@example.com") == "user@example.com");
    CHECK(to_external("first.last@example.com") == "first.last@example.com");
    CHECK(to_external("john doe@example.com") == "\"john doe\"@example.com");
    CHECK(to_external("a@b@c@d") == "\"a@b@c\"@d");
    CHECK(to_external("a..b@c") == "\"a..b\"@c");
    CHECK(to_external(".a@c") == "\".a\"@c");
    CHECK(to_external("a.@c") == "\"a.\"@c");
    CHECK(to_external("a\"b@c") == "\"a\\\"b\"@c");
    CHECK(to_external("a\\b@c") == "\"a\\\\b\"@c");
    CHECK(to_external("joe") == "joe");
    CHECK(to_external("joe smith") == "\"joe smith\"");
    CHECK(to_external("") == "\"\"");
    CHECK(to_external("a(b)@c") == "\"a(b)\"@c");
    CHECK(to_external("user+tag@example.com") == "user+tag@example.com");
    CHECK(to_external("user%host@relay") == "user%host@relay");
}

TEST_CASE("to_external leaves 8-bit local parts alone, as Postfix's default", "[address]") {
    CHECK(to_external("jos\xc3\xa9@example.com") == "jos\xc3\xa9@example.com");
}

TEST_CASE("to_external skips a source route", "[address]") {
    CHECK(to_external("@r1,@r2:joe smith@x") == "@r1,@r2:\"joe smith\"@x");
    CHECK(to_external("@r1:joe@x") == "@r1:joe@x");
}

TEST_CASE("to_internal removes quoting up to the last unquoted @", "[address]") {
    CHECK(to_internal("\"a@b@c\"@d") == "a@b@c@d");
    CHECK(to_internal("\"a@b@c\"") == "a@b@c");
    CHECK(to_internal("\"a@b@c\"@d@e") == "a@b@c@d@e");
    CHECK(to_internal("\"john doe\"@Example.COM") == "john doe@Example.COM");
    CHECK(to_internal("a\\\"b@c") == "a\"b@c");
    CHECK(to_internal("x@\"dom\"") == "x@\"dom\"");
    CHECK(to_internal("@r:\"a b\"@c") == "@r:a b@c");
    CHECK(to_internal("plain@example.com") == "plain@example.com");
    CHECK(to_internal("") == "");
    CHECK(to_internal("trailing\\") == "trailing\\");
}

TEST_CASE("to_internal undoes to_external", "[address]") {
    for (const char* a : {"john doe@x", "a@b@c", "a\"b@c", "\"@x", "a\\@c", "@r:x", "@r",
                          "", "a..b", "x@\"d", "a@b@\"c"})
        CHECK(to_internal(to_external(a)) == a);
}

TEST_CASE("split cuts at the last @", "[address]") {
    Parts p = split("a@b@c");
    CHECK(p.local == "a@b");
    CHECK(p.domain == "c");
    CHECK(p.has_domain);
    p = split("abc");
    CHECK(p.local == "abc");
    CHECK(p.domain.empty());
    CHECK_FALSE(p.has_domain);
    p = split("a@");
    CHECK(p.has_domain);
    CHECK(p.domain.empty());
}

TEST_CASE("fold_domain lower-cases only the domain", "[address]") {
    CHECK(fold_domain("John@EXAMPLE.Com") == "John@example.com");
    CHECK(fold_domain("JOHN") == "JOHN");
    CHECK(fold_domain("A@B@C.D") == "A@B@c.d");
}

TEST_CASE("parse_address_list: plain, named and quoted addresses", "[address]") {
    CHECK(parse_address_list("a@b") == List{"a@b"});
    CHECK(parse_address_list("John Doe <john@example.com>") == List{"john@example.com"});
    CHECK(parse_address_list("\"Doe, John\" <john@example.com>, jane@example.com") ==
          List{"john@example.com", "jane@example.com"});
    CHECK(parse_address_list("\"john doe\"@example.com") == List{"john doe@example.com"});
    CHECK(parse_address_list("\"a\\\"b\"@c") == List{"a\"b@c"});
    CHECK(parse_address_list("Johnny B. Goode <j@x>") == List{"j@x"});
    CHECK(parse_address_list("user@[1.2.3.4]") == List{"user@[1.2.3.4]"});
    CHECK(parse_address_list("a . b @ c . d") == List{"a.b@c.d"});
    CHECK(parse_address_list("jos\xc3\xa9@exemple.fr") == List{"jos\xc3\xa9@exemple.fr"});
    CHECK(parse_address_list("A@EXAMPLE.COM") == List{"A@EXAMPLE.COM"});
}

TEST_CASE("parse_address_list: comments are dropped wherever they are", "[address]") {
    CHECK(parse_address_list("a@b (Comment)") == List{"a@b"});
    CHECK(parse_address_list("(Comment) a@b") == List{"a@b"});
    CHECK(parse_address_list("a@b (x (nested) y)") == List{"a@b"});
    CHECK(parse_address_list("Joe <a@b (inside)>") == List{"a@b"});
    CHECK(parse_address_list("a(c1)@(c2)b") == List{"a@b"});
}

TEST_CASE("parse_address_list: groups are flattened", "[address]") {
    CHECK(parse_address_list("grp: a@b, c@d;") == List{"a@b", "c@d"});
    CHECK(parse_address_list("undisclosed-recipients:;") == List{});
    CHECK(parse_address_list("g1: a@b;, g2: c@d;") == List{"a@b", "c@d"});
    CHECK(parse_address_list("team: Joe <j@x>, k@y; z@w") == List{"j@x", "k@y", "z@w"});
}

TEST_CASE("parse_address_list: null address, source routes, routing operators",
          "[address]") {
    CHECK(parse_address_list("<>") == List{""});
    CHECK(parse_address_list("Mailer <>") == List{""});
    CHECK(parse_address_list("<@route1,@route2:user@host>") == List{"user@host"});
    CHECK(parse_address_list("user%domain@relay") == List{"user%domain@relay"});
    CHECK(parse_address_list("a!b!c") == List{"a!b!c"});
    CHECK(parse_address_list("a\\@b@c") == List{"a@b@c"});
    // A colon outside a group stays in the address (DECnet).
    CHECK(parse_address_list("node::user") == List{"node::user"});
}

TEST_CASE("parse_address_list adds missing commas as Postfix does", "[address]") {
    CHECK(parse_address_list("foo bar@baz") == List{"foo", "bar@baz"});
    CHECK(parse_address_list("a@b c@d") == List{"a@b", "c@d"});
    CHECK(parse_address_list("Doe, John <j@x>") == List{"Doe", "j@x"});
    CHECK(parse_address_list("<a@b> c@d") == List{"a@b", "c@d"});
    CHECK(parse_address_list("a, , b") == List{"a", "b"});
}

TEST_CASE("parse_address_list salvages garbage without failing", "[address]") {
    CHECK(parse_address_list("").empty());
    CHECK(parse_address_list(" \t\r\n ").empty());
    CHECK(parse_address_list("(just a comment)").empty());
    CHECK(parse_address_list("\"abc@d") == List{"abc@d"});
    CHECK(parse_address_list("<a@b") == List{"<a@b"});
    CHECK(parse_address_list("a@b>") == List{"a@b"});
    CHECK(parse_address_list("<<<>>>") == List{">>"});
    CHECK(parse_address_list("a@b (unterminated") == List{"a@b"});
    CHECK(parse_address_list("trailing\\") == List{"trailing"});
    // Colons outside a group belong to an address; a ';' ends what follows it.
    CHECK(parse_address_list(",,,;;;:::") == List{":::"});
    CHECK(parse_address_list(",,,;;;").empty());
}

TEST_CASE("parse_address_list stops at the token limit", "[address]") {
    std::string many;
    for (int i = 0; i < 20000; ++i) many += "a,";
    CHECK(parse_address_list(many).size() == 5120);
}

namespace {
std::string qualify(std::string_view a) {
    if (a.find('@') != std::string_view::npos) return std::string(a);
    return std::string(a) + "@example.com";
}
}  // namespace

TEST_CASE("rewrite_address_list keeps phrases, groups and comments", "[address]") {
    CHECK(rewrite_address_list("joe", qualify) == "joe@example.com");
    CHECK(rewrite_address_list("Joe User <joe>", qualify) == "Joe User <joe@example.com>");
    CHECK(rewrite_address_list("\"Doe, John\" <jd>, (comment) bob", qualify) ==
          "\"Doe, John\" <jd@example.com>, bob@example.com (comment)");
    CHECK(rewrite_address_list("list: a, b;", qualify) ==
          "list: a@example.com, b@example.com;");
    CHECK(rewrite_address_list("a b", qualify) == "a@example.com, b@example.com");
    CHECK(rewrite_address_list("x@y, z", qualify) == "x@y, z@example.com");
}

TEST_CASE("rewrite_address_list quotes rewritten addresses in external form", "[address]") {
    auto to_space = [](std::string_view) { return std::string("john doe@x"); };
    CHECK(rewrite_address_list("Joe <a@b>", to_space) == "Joe <\"john doe\"@x>");
    auto null_to = [](std::string_view a) {
        return a.empty() ? std::string("MAILER-DAEMON@x") : std::string(a);
    };
    CHECK(rewrite_address_list("<>", null_to) == "<MAILER-DAEMON@x>");
    CHECK(rewrite_address_list("\"john doe\"@x", [](std::string_view a) {
              return std::string(a) + ".org";
          }) == "\"john doe\"@x.org");
}

TEST_CASE("rewrite_address_list returns an unchanged header byte for byte", "[address]") {
    const char* value = "  a@b ,c@d  (x)\"q\" <e@f>";
    CHECK(rewrite_address_list(value, qualify) == value);
    CHECK(rewrite_address_list("", qualify) == "");
    CHECK(rewrite_address_list("undisclosed-recipients:;", qualify) ==
          "undisclosed-recipients:;");
}

TEST_CASE("rewrite_address_list sees each address's addr-spec", "[address]") {
    List seen;
    auto record = [&seen](std::string_view a) {
        seen.emplace_back(a);
        return std::string(a);
    };
    rewrite_address_list("A <@r:a@b>, \"c d\"@e, g: h;", record);
    CHECK(seen == List{"a@b", "c d@e", "h"});
}

TEST_CASE("rewrite_address_header folds as cleanup does", "[address]") {
    CHECK_FALSE(rewrite_address_header("To", "a@b, c@d", qualify).has_value());
    CHECK(rewrite_address_header("To", "joe, Ann <ann>", qualify) ==
          std::optional<std::string>("To: joe@example.com, Ann <ann@example.com>"));
    std::string many;
    for (int i = 0; i < 6; ++i) many += (i ? ", user" : "user") + std::to_string(i);
    // "user0@example.com," is 18 bytes: "To: " and three stay under 70, the fourth
    // would make 79 and starts the next line (the tab not counted).
    CHECK(rewrite_address_header("To", many, qualify) ==
          std::optional<std::string>("To: user0@example.com, user1@example.com, user2@example.com,\n"
                                     "\tuser3@example.com, user4@example.com, user5@example.com"));
}
