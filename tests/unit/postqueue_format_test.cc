// postqueue's listing formats (Postfix's showq_compat.c / showq_json.c rules). The
// formatter is one file of the postqueue program; it is compiled into the test binary
// here since programs are not part of the shared library.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "postqueue/show_format.cc"

using namespace postern::postqueue;

namespace {

// Arrival times print in local time: pin the zone, and put it back afterwards.
struct UtcZone {
    std::string saved;
    bool had = false;
    UtcZone() {
        if (const char* tz = getenv("TZ")) had = true, saved = tz;
        setenv("TZ", "UTC", 1);
        tzset();
    }
    ~UtcZone() {
        if (had) setenv("TZ", saved.c_str(), 1);
        else unsetenv("TZ");
        tzset();
    }
};

ListedMessage sample() {
    ListedMessage m;
    m.queue = "deferred";
    m.id = "4F3A21C0D2";
    m.arrival = 1795440290;  // Mon Nov 23 13:24:50 2026 UTC
    m.size = 2048;
    m.sender = "sender@example.com";
    return m;
}

}  // namespace

TEST_CASE("printable keeps UTF-8 characters only when SMTPUTF8 is on", "[postqueue]") {
    CHECK(printable("caf\xc3\xa9", true) == "caf\xc3\xa9");
    CHECK(printable("caf\xc3\xa9", false) == "caf??");
    CHECK(printable("a\tb\x01" "c\x7f", true) == "a?b?c?");
    CHECK(printable("x\xc3", true) == "x?");          // lead byte without continuation
    CHECK(printable("\xff\xfe" "ok", true) == "??ok");
}

TEST_CASE("json_quote escapes as Postfix's showq_json", "[postqueue]") {
    CHECK(json_quote("a\"b\\c", true) == "a\\\"b\\\\c");
    CHECK(json_quote("\b\f\n\r\t", true) == "\\b\\f\\n\\r\\t");
    CHECK(json_quote(std::string("\x01\x7f", 2), true) == "\\u0001\\u007F");
    CHECK(json_quote("/", true) == "/");
}

TEST_CASE("mailq heading and summary lines", "[postqueue]") {
    CHECK(compat_heading(false) ==
          "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n");
    CHECK(compat_heading(true) ==
          "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------\n");
    CHECK(compat_summary(0, 0) == "Mail queue is empty\n");
    CHECK(compat_summary(1, 2047) == "\n-- 1 Kbytes in 1 Request.\n");
    CHECK(compat_summary(3, 1023) == "\n-- 0 Kbytes in 3 Requests.\n");
}

TEST_CASE("a reason line appears where the reason changes", "[postqueue]") {
    UtcZone utc;
    ListedMessage m = sample();
    m.recipients = {{"a@example.org", "connection refused"},
                    {"b@example.org", "connection refused"},
                    {"c@example.org", ""}};
    std::string pad(76 - 18, ' ');
    CHECK(compat_message(m, false) ==
          "4F3A21C0D2     2048 Mon Nov 23 13:24:50  sender@example.com\n" + pad +
              "(connection refused)\n"
              "                                         a@example.org\n"
              "                                         b@example.org\n" +
              std::string(76 - 18, ' ') + "(reason unavailable)\n" +
              "                                         c@example.org\n");
}

TEST_CASE("queue status marks and a reason wider than the line", "[postqueue]") {
    UtcZone utc;
    ListedMessage m = sample();
    m.queue = "hold";
    m.forced_expire = true;
    std::string reason(90, 'r');
    m.recipients = {{"a@example.org", reason}};
    std::string out = compat_message(m, false);
    CHECK(out.starts_with("4F3A21C0D2!#    2048 Mon Nov 23 13:24:50  sender@example.com\n"));
    CHECK(out.find("\n(" + reason + ")\n") != std::string::npos);
    m.queue = "active";
    m.forced_expire = false;
    m.recipients.clear();
    CHECK(compat_message(m, true) ==
          "4F3A21C0D2*           2048 Mon Nov 23 13:24:50 sender@example.com\n");
}

TEST_CASE("JSON object in Postfix's key order", "[postqueue]") {
    ListedMessage m = sample();
    m.recipients = {{"a@example.org", "deferred transport"}, {"\"odd user\"@x", ""}};
    CHECK(json_message(m, true) ==
          "{\"queue_name\": \"deferred\", \"queue_id\": \"4F3A21C0D2\", \"arrival_time\": "
          "1795440290, \"message_size\": 2048, \"forced_expire\": false, \"sender\": "
          "\"sender@example.com\", \"recipients\": [{\"address\": \"a@example.org\", "
          "\"delay_reason\": \"deferred transport\"}, {\"address\": \"\\\"odd user\\\"@x\"}]}\n");
    m.recipients.clear();
    CHECK(json_message(m, true).ends_with("\"recipients\": []}\n"));
}
