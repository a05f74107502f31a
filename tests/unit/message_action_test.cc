#include <catch2/catch.hpp>

#include "util/message/content_action.h"

using namespace postern::message;

TEST_CASE("content action REJECT takes a DSN from its text or 5.7.1") {
    ContentAction a = parse_content_action("REJECT", "header", "header_checks");
    CHECK(a.type == ContentActionType::Reject);
    CHECK(a.reason == "5.7.1 message content rejected");
    a = parse_content_action("reject no spam here", "header", "header_checks");
    CHECK(a.reason == "5.7.1 no spam here");
    a = parse_content_action("REJECT 4.7.0 later", "body", "body_checks");
    CHECK(a.reason == "4.7.0 later");
    CHECK(a.defer);
}

TEST_CASE("content actions with arguments validate them as Postfix does") {
    CHECK(parse_content_action("PREPEND X-Tag: yes", "header", "header_checks").type == ContentActionType::Prepend);
    ContentAction bad = parse_content_action("PREPEND not a header", "header", "header_checks");
    CHECK(bad.type == ContentActionType::Dunno);
    REQUIRE(bad.warnings.size() == 1);
    CHECK(bad.warnings[0] ==
          "bad PREPEND header text \"not a header\" in header_checks map -- need \"headername: headervalue\"");
    CHECK(parse_content_action("PREPEND any text", "body", "body_checks").type == ContentActionType::Prepend);
    CHECK(parse_content_action("REPLACE Subject: new", "header", "h").type == ContentActionType::Replace);
    CHECK(parse_content_action("REDIRECT user", "header", "h").type == ContentActionType::Dunno);
    ContentAction r = parse_content_action("REDIRECT u@example.com", "header", "h");
    CHECK(r.type == ContentActionType::Redirect);
    CHECK(r.text == "u@example.com");
    CHECK(parse_content_action("FILTER smtp:[127.0.0.1]:10025", "header", "h").type == ContentActionType::Filter);
    CHECK(parse_content_action("FILTER nocolon", "header", "h").type == ContentActionType::Dunno);
    CHECK(parse_content_action("IGNORE", "header", "h").type == ContentActionType::Ignore);
    CHECK(parse_content_action("DISCARD spam", "header", "h").type == ContentActionType::Discard);
    CHECK(parse_content_action("HOLD", "header", "h").type == ContentActionType::Hold);
    CHECK(parse_content_action("OK", "header", "h").type == ContentActionType::Dunno);
    ContentAction u = parse_content_action("FROB x", "header", "header_checks");
    CHECK(u.type == ContentActionType::Dunno);
    CHECK(u.warnings.at(0) == "unknown command in header_checks map: FROB x");
}

TEST_CASE("content action log line has Postfix's cleanup_act_log layout") {
    ActionLogContext ctx{"ABC123", "local", "a@b", "c@d", "", ""};
    CHECK(content_action_log(ctx, "reject", "header", "Subject: buy", "5.7.1 message content rejected") ==
          "ABC123: reject: header Subject: buy from local; from=<a@b> to=<c@d>: 5.7.1 message content rejected");
    ActionLogContext smtp{"X", "", "", "", "ESMTP", "client.example"};
    CHECK(content_action_log(smtp, "warning", "body", std::string(300, 'x'), "") ==
          "X: warning: body " + std::string(200, 'x') + " from unknown; from=<> proto=ESMTP helo=<client.example>");
}
