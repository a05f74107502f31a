#include <catch2/catch.hpp>

#include "util/queue/queue_listing.h"

using namespace postern;
using queue::ListedMessage;

TEST_CASE("showq records carry a listed message both ways", "[queue_listing]") {
    ListedMessage m;
    m.queue = "deferred";
    m.id = "4ABCDEF";
    m.arrival = 1700000000;
    m.size = 1234;
    m.forced_expire = true;
    m.sender = "MAILER-DAEMON";
    m.recipients = {{"a@example.test", "connect refused"}, {"\"odd user\"@example.test", ""}};
    auto back = ListedMessage::from_record(m.to_record());
    REQUIRE(back);
    CHECK(back->queue == "deferred");
    CHECK(back->id == "4ABCDEF");
    CHECK(back->arrival == 1700000000);
    CHECK(back->size == 1234);
    CHECK(back->forced_expire);
    CHECK(back->sender == "MAILER-DAEMON");
    REQUIRE(back->recipients.size() == 2);
    CHECK(back->recipients[0].reason == "connect refused");
    CHECK(back->recipients[1].address == "\"odd user\"@example.test");
}

TEST_CASE("a showq record that is missing fields or has extra ones is refused", "[queue_listing]") {
    ipc::AttrRecord r;
    r.add("queue_name", "active").add("queue_id", "1A").add_long("time", 1);
    CHECK_FALSE(ListedMessage::from_record(r));
    r.add_long("size", 1).add_long("forced_expire", 0).add("sender", "s@x");
    CHECK(ListedMessage::from_record(r));
    r.add("recipient", "r@x");  // without its reason
    CHECK_FALSE(ListedMessage::from_record(r));
    ipc::AttrRecord bad;
    bad.add("queue_name", "active").add("queue_id", "1A").add("time", "soon");
    bad.add_long("size", 1).add_long("forced_expire", 0).add("sender", "s@x");
    CHECK_FALSE(ListedMessage::from_record(bad));
}
