#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "util/message/added_headers.h"
#include "util/message/header_opts.h"

using namespace postern::message;

TEST_CASE("header_name follows Postfix's is_header") {
    CHECK(header_name("Subject: x") == std::optional<std::string_view>("Subject"));
    CHECK(header_name("Subject : x") == std::optional<std::string_view>("Subject"));
    CHECK(header_name("X-A:") == std::optional<std::string_view>("X-A"));
    CHECK_FALSE(header_name(": x"));
    CHECK_FALSE(header_name("no colon here"));
    CHECK_FALSE(header_name("two words: x"));
    CHECK_FALSE(header_name(" Subject: x"));
    CHECK_FALSE(header_name("Sub\xe4ject: x"));
}

TEST_CASE("header_value skips blanks and unfold joins continuation lines") {
    CHECK(header_value("Subject:   hi there") == "hi there");
    CHECK(header_value("To:\n a@b") == "a@b");
    CHECK(unfold("Subject: a\n b\r\n\tc") == "Subject: a b\tc");
}

TEST_CASE("header table knows Postfix's header classes, case-insensitively") {
    HeaderTable t;
    const HeaderInfo* to = t.find_line("tO: a@b");
    REQUIRE(to);
    CHECK(to->type == HeaderType::To);
    CHECK((to->flags & kHeaderExtract));
    const HeaderInfo* bcc = t.find_name("BCC");
    REQUIRE(bcc);
    CHECK((bcc->flags & kHeaderDrop));
    CHECK((t.find_name("Return-Path")->flags & kHeaderDrop));
    CHECK_FALSE((t.find_name("From")->flags & kHeaderDrop));
    CHECK((t.find_name("Resent-From")->flags & kHeaderResent));
    CHECK((t.find_name("Content-Type")->flags & kHeaderMime));
    CHECK(t.find_name("X-Whatever") == nullptr);
}

TEST_CASE("message_drop_headers adds unknown names and can spare Bcc") {
    HeaderTable t({"x-secret", "return-path"});
    REQUIRE(t.find_name("X-Secret"));
    CHECK((t.find_name("X-Secret")->flags & kHeaderDrop));
    CHECK_FALSE((t.find_name("Bcc")->flags & kHeaderDrop));
}

TEST_CASE("added headers have Postfix's forms") {
    const char* old_tz = getenv("TZ");
    std::string saved = old_tz ? old_tz : "";
    setenv("TZ", "UTC", 1);
    tzset();
    time_t t = 1795267364;  // 2026-11-21 13:22:44 UTC (a Saturday)
    CHECK(mail_date(t) == "Sat, 21 Nov 2026 13:22:44 +0000 (UTC)");
    CHECK(mail_date(t - 18 * 86400) == "Tue,  3 Nov 2026 13:22:44 +0000 (UTC)");
    CHECK(message_id_header("", t, "4Fx1yZ", "host.example") ==
          "Message-Id: <20261121132244.4Fx1yZ@host.example>");
    CHECK(message_id_header("Resent-", t, "ABC", "h") == "Resent-Message-Id: <20261121132244.ABC@h>");
    CHECK(from_header("", "joe@example.com", std::string("Joe (The) User"), false) ==
          "From: joe@example.com (Joe \\(The\\) User)");
    CHECK(from_header("", "joe@example.com", std::string("Joe  User")) == "From: Joe User <joe@example.com>");
    CHECK(from_header("", "joe@example.com", std::string("Joe Q. \"X\" User")) ==
          "From: \"Joe Q. \\\"X\\\" User\" <joe@example.com>");
    CHECK(from_header("", "joe@example.com", std::string("")) == "From: joe@example.com");
    CHECK(from_header("", "", std::string("x")) == "From: MAILER-DAEMON");
    CHECK(from_header("Resent-", "a b@example.com", std::nullopt) == "Resent-From: \"a b\"@example.com");
    CHECK(received_header("host", "Postern", 1000, "ABC", t) ==
          "Received: by host (Postern, from userid 1000)\n\tid ABC; Sat, 21 Nov 2026 13:22:44 +0000 (UTC)");
    if (old_tz)
        setenv("TZ", saved.c_str(), 1);
    else
        unsetenv("TZ");
    tzset();
}
