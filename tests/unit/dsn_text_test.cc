#include <catch2/catch.hpp>

#include "util/dsn/dsn_text.h"
#include "util/dsn/uniform_verdict.h"

using namespace postern::dsn;

TEST_CASE("wrap_line keeps short text on one line", "[dsn]") {
    auto lines = wrap_line("<a@example>: unknown user", 79, 4);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "<a@example>: unknown user");
}

TEST_CASE("wrap_line breaks at blanks and indents continuations", "[dsn]") {
    std::string text = "Diagnostic-Code: smtp; 550 5.1.1 <someone@example.com>: Recipient address "
                       "rejected: User unknown in virtual mailbox table and more words here";
    auto lines = wrap_line(text, 79, 4);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].size() <= 79);
    CHECK(lines[1].starts_with("    "));
    CHECK(lines[1][4] != ' ');
    // Joining the pieces with single blanks gives the text back.
    CHECK(lines[0] + " " + lines[1].substr(4) == text);
}

TEST_CASE("wrap_line leaves a word longer than the width whole", "[dsn]") {
    std::string word(120, 'x');
    auto lines = wrap_line("a " + word + " b", 79, 4);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == "a");
    CHECK(lines[1] == "    " + word);
    CHECK(lines[2] == "    b");
}

TEST_CASE("status codes at the start of a reason are split off", "[dsn]") {
    auto s = split_reason("5.1.1 User unknown in virtual alias table", "5.0.0");
    CHECK(s.status == "5.1.1");
    CHECK(s.text == "User unknown in virtual alias table");
    auto none = split_reason("User unknown", "5.0.0");
    CHECK(none.status == "5.0.0");
    CHECK(none.text == "User unknown");
    CHECK(split_reason("4.7.1", "5.0.0").text.empty());
    CHECK(is_status_code("2.0.0"));
    CHECK(is_status_code("5.123.999"));
    CHECK_FALSE(is_status_code("3.0.0"));
    CHECK_FALSE(is_status_code("5.1234.0"));
    CHECK_FALSE(is_status_code("5.1."));
    CHECK_FALSE(is_status_code("550"));
}

TEST_CASE("unsafe bytes in reasons are masked", "[dsn]") {
    CHECK(mask_unsafe("a\tb\rc\x01", false) == "a?b?c?");
    CHECK(mask_unsafe("caf\xc3\xa9", false) == "caf??");
    CHECK(mask_unsafe("caf\xc3\xa9", true) == "caf\xc3\xa9");
}

TEST_CASE("header lines are told from body lines as Postfix's is_header", "[dsn]") {
    CHECK(is_header_line("Subject: hi"));
    CHECK(is_header_line("X-Empty:"));
    CHECK(is_header_line("Obsolete : spacing"));
    CHECK_FALSE(is_header_line(""));
    CHECK_FALSE(is_header_line("no colon here"));
    CHECK_FALSE(is_header_line(": no name"));
    CHECK_FALSE(is_header_line("two words: x"));
    CHECK(is_header_block_line("\tcontinued"));
    CHECK_FALSE(is_header_block_line(""));
}

TEST_CASE("diagnostic type is an RFC 822 atom", "[dsn]") {
    CHECK(diagnostic_type("Postfix") == "X-Postfix");
    CHECK(diagnostic_type("My Mail (test)") == "X-My-Mail--test-");
}

TEST_CASE("rfc5322_date has Postfix's mail_date layout", "[dsn]") {
    std::string d = rfc5322_date(1700000000);
    // "Tue, 14 Nov 2023 22:13:20 +0000 (UTC)" in UTC; the zone depends on TZ.
    REQUIRE(d.size() > 31);
    CHECK(d[3] == ',');
    CHECK(d.find(" 2023 ") != std::string::npos);
    CHECK((d[26] == '+' || d[26] == '-'));
    CHECK(d.back() == ')');
}

TEST_CASE("agent verdicts take the next-hop code only in the right class", "[dsn]") {
    auto v = verdict_from_nexthop("5.1.1 User unknown in virtual alias table", "5.0.0");
    CHECK(v.status == "5.1.1");
    CHECK(v.reason == "User unknown in virtual alias table");
    CHECK(v.action == "failed");
    CHECK(v.log_status == "bounced");
    auto retry = verdict_from_nexthop("5.1.1 User unknown", "4.0.0");
    CHECK(retry.status == "4.0.0");
    CHECK(retry.log_status == "deferred");
    CHECK(retry.reason == "User unknown");
    auto plain = verdict_from_nexthop("mail for this domain is not accepted", "5.0.0");
    CHECK(plain.status == "5.0.0");
    CHECK(plain.reason == "mail for this domain is not accepted");
    auto sent = verdict_from_nexthop("discarded", "2.0.0");
    CHECK(sent.status == "2.0.0");
    CHECK(sent.action == "delivered");
    CHECK(sent.log_status == "sent");
}
