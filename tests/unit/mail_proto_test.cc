// The mail-flow vocabulary: every record survives encoding, and readers reject records
// with missing, unknown or inconsistent fields.
#include <catch2/catch.hpp>

#include "queue_test_util.h"
#include "util/ipc/mail_proto.h"
#include "util/queue/delivery_log.h"

using namespace postern;
using namespace postern::ipc;
using namespace postern::ipc::mail;

namespace {
// Encodes and decodes through the wire form, as two daemons would.
AttrRecord over_the_wire(const AttrRecord& rec) {
    AttrDecoder d;
    REQUIRE(d.feed(encode_record(rec)));
    auto out = d.next();
    REQUIRE(out);
    return *out;
}
}  // namespace

TEST_CASE("cleanup envelope round-trips recipients and attributes in order", "[mail_proto]") {
    CleanupEnvelope env;
    env.sender = "me@example.com";
    env.fullname = "Me Myself";
    env.ret = kRetHeaders;
    env.envid = "abc+2B";
    env.attributes = {{"log_client_name", "localhost"}, {"rewrite_context", "local"}};
    env.recipients = {{"a@x", "A@x", "rfc822;A@x", kNotifyFailure | kNotifyDelay}, {"b@y", "", "", 0}};
    auto back = CleanupEnvelope::from_record(over_the_wire(env.to_record()));
    REQUIRE(back);
    CHECK(back->sender == "me@example.com");
    CHECK(back->fullname == std::optional<std::string>("Me Myself"));
    CHECK(back->ret == kRetHeaders);
    REQUIRE(back->attributes.size() == 2);
    CHECK(back->attributes[1].second == "local");
    REQUIRE(back->recipients.size() == 2);
    CHECK(back->recipients[0].orig == "A@x");
    CHECK(back->recipients[0].notify == (kNotifyFailure | kNotifyDelay));
    CHECK(back->recipients[1].address == "b@y");
}

TEST_CASE("cleanup envelope without a fullname keeps it absent", "[mail_proto]") {
    CleanupEnvelope env;
    auto back = CleanupEnvelope::from_record(over_the_wire(env.to_record()));
    REQUIRE(back);
    CHECK_FALSE(back->fullname);
    CHECK(back->sender.empty());
    CHECK(back->smtputf8 == 0);
}

TEST_CASE("cleanup envelope carries the client's SMTPUTF8 request", "[mail_proto]") {
    CleanupEnvelope env;
    env.smtputf8 = kSmtputf8Requested;
    auto back = CleanupEnvelope::from_record(over_the_wire(env.to_record()));
    REQUIRE(back);
    CHECK(back->smtputf8 == kSmtputf8Requested);
    CHECK_FALSE(smtputf8_required(kSmtputf8Requested));
    CHECK(smtputf8_required(kSmtputf8Requested | kSmtputf8Header));
    CHECK_FALSE(smtputf8_required(kSmtputf8Recipient));  // never requested: no obligation
}

TEST_CASE("message content with newlines, NUL and 8-bit bytes survives a content record", "[mail_proto]") {
    CleanupContent c;
    c.data = std::string("Subject: \xe9t\xe9\n\nline\r\n\0x%41\n", 23);
    auto back = CleanupContent::from_record(over_the_wire(c.to_record()));
    REQUIRE(back);
    CHECK(back->data == c.data);
}

TEST_CASE("a record of the wrong request type or with an extra field is refused", "[mail_proto]") {
    CHECK_FALSE(CleanupEnd::from_record(CleanupOpen{}.to_record()));
    AttrRecord rec = CleanupOpen{kCleanupExtract}.to_record();
    CHECK(CleanupOpen::from_record(rec)->flags == kCleanupExtract);
    rec.add("bogus", "1");
    auto bad = CleanupOpen::from_record(rec);
    REQUIRE_FALSE(bad);
    CHECK(bad.error() == "unexpected attribute bogus");
}

TEST_CASE("the end of a message may carry a late hold or discard, nothing else", "[mail_proto]") {
    CHECK(CleanupEnd::from_record(over_the_wire(CleanupEnd{}.to_record()))->late_flags == 0);
    CleanupEnd end;
    end.late_flags = kCleanupHold;
    auto back = CleanupEnd::from_record(over_the_wire(end.to_record()));
    REQUIRE(back);
    CHECK(back->late_flags == kCleanupHold);
    end.late_flags = kCleanupHold | kCleanupExtract;
    CHECK_FALSE(CleanupEnd::from_record(end.to_record()));
}

TEST_CASE("delivery request needs recipients whose fields line up", "[mail_proto]") {
    DeliveryRequest req;
    req.queue_name = "active";
    req.queue_id = "4ABCDEF";
    CHECK_FALSE(DeliveryRequest::from_record(req.to_record()));
    req.recipients = {{"u@h", "U@h", "", 0, 123}};
    auto back = DeliveryRequest::from_record(over_the_wire(req.to_record()));
    REQUIRE(back);
    CHECK(back->recipients[0].offset == 123);
    AttrRecord rec = req.to_record();
    rec.add("rcpt", "extra@h");
    auto bad = DeliveryRequest::from_record(rec);
    REQUIRE_FALSE(bad);
    CHECK(bad.error() == "recipient field count mismatch");
}

TEST_CASE("delivery request carries qmgr's active-queue arrival for delays=a/b/c/d", "[mail_proto]") {
    DeliveryRequest req;
    req.queue_name = "active";
    req.queue_id = "4ABCDEF";
    req.recipients = {{"u@h", "u@h", "", 0, 1}};
    timeval handoff{2000, 5};
    // Not sent (an older qmgr): the agent's handoff stands for it, b = 0.
    auto plain = DeliveryRequest::from_record(over_the_wire(req.to_record()));
    REQUIRE(plain);
    CHECK(plain->active_arrival(handoff).tv_sec == 2000);
    req.active_sec = 1990;
    req.active_usec = 250000;
    auto back = DeliveryRequest::from_record(over_the_wire(req.to_record()));
    REQUIRE(back);
    timeval active = back->active_arrival(handoff);
    CHECK(active.tv_sec == 1990);
    CHECK(active.tv_usec == 250000);
}

TEST_CASE("delivery reply results carry an RFC 3463 status class", "[mail_proto]") {
    DeliveryReply reply;
    reply.results = {{0, "2.0.0", "delivered", "delivered to maildir", "local"},
                     {1, "4.2.2", "delayed", "mailbox full", "local"}};
    auto back = DeliveryReply::from_record(over_the_wire(reply.to_record()));
    REQUIRE(back);
    CHECK(back->results[0].status_class() == '2');
    CHECK(back->results[1].status_class() == '4');
    reply.results[0].status = "250 ok";
    CHECK_FALSE(DeliveryReply::from_record(reply.to_record()));
}

TEST_CASE("a delivery result says whether the next hop took NOTIFY=SUCCESS along", "[mail_proto]") {
    DeliveryReply reply;
    reply.results = {{0, "2.0.0", "relayed", "250 ok", "mx[192.0.2.1]:25", true},
                     {1, "2.0.0", "relayed", "250 ok", "mx[192.0.2.1]:25", false}};
    auto back = DeliveryReply::from_record(over_the_wire(reply.to_record()));
    REQUIRE(back);
    CHECK(back->results[0].notify_passed_on);
    CHECK_FALSE(back->results[1].notify_passed_on);
    // an agent that leaves the field out passes nothing on
    AttrRecord rec;
    rec.add_long("status", 0).add_long("result_index", 0).add("result_status", "2.0.0")
        .add("result_action", "delivered").add("result_reason", "ok").add("result_relay", "local");
    auto plain = DeliveryReply::from_record(over_the_wire(rec));
    REQUIRE(plain);
    CHECK_FALSE(plain->results[0].notify_passed_on);
}

TEST_CASE("resolve and bounce requests name their command", "[mail_proto]") {
    ResolveRequest rq{"verify", "s@x", "r@y"};
    CHECK(ResolveRequest::from_record(rq.to_record())->request == "verify");
    rq.request = "rewrite";
    CHECK_FALSE(ResolveRequest::from_record(rq.to_record()));
    BounceRequest b;
    b.command = BounceCommand::DeferFlush;
    b.queue_id = "4ABC";
    b.trace_flags = kTraceFlagVerify;
    auto back = BounceRequest::from_record(b.to_record());
    REQUIRE(back);
    CHECK(back->command == BounceCommand::DeferFlush);
    CHECK(back->trace_flags == kTraceFlagVerify);
    CHECK(b.to_record().find("request") == std::optional<std::string_view>("defer_flush"));
}

TEST_CASE("DSN NOTIFY lists parse as RFC 3461 allows", "[mail_proto]") {
    CHECK(parse_notify("SUCCESS,DELAY") == (kNotifySuccess | kNotifyDelay));
    CHECK(parse_notify("never") == kNotifyNever);
    CHECK(parse_notify("NEVER,SUCCESS") == 0);
    CHECK(parse_notify("SOMETIMES") == 0);
    CHECK(notify_text(kNotifyFailure | kNotifyDelay) == "FAILURE,DELAY");
}

TEST_CASE("delivery logs append records and read them back in order", "[mail_proto][queue]") {
    queue::test::ScratchQueue q(true, {"deferred", "defer"});
    DeliveryLogEntry a;
    a.recipient = "a@x";
    a.status = "4.2.2";
    a.action = "delayed";
    a.reason = "mailbox full\nsecond line";
    DeliveryLogEntry b = a;
    b.recipient = "b@x";
    std::string id = "4ZZZZZZZZZZZZZZZZZ";
    CHECK(queue::read_delivery_log(q.layout, queue::kDefer, id)->empty());
    REQUIRE(queue::append_delivery_log(q.layout, queue::kDefer, id, std::span(&a, 1), true));
    REQUIRE(queue::append_delivery_log(q.layout, queue::kDefer, id, std::span(&b, 1), false));
    auto got = queue::read_delivery_log(q.layout, queue::kDefer, id);
    REQUIRE(got);
    REQUIRE(got->size() == 2);
    CHECK((*got)[0].reason == "mailbox full\nsecond line");
    CHECK((*got)[1].recipient == "b@x");
    REQUIRE(queue::remove_delivery_log(q.layout, queue::kDefer, id));
    CHECK(queue::read_delivery_log(q.layout, queue::kDefer, id)->empty());
    CHECK_FALSE(queue::append_delivery_log(q.layout, queue::kIncoming, id, std::span(&a, 1), false));
}

TEST_CASE("a delivery request with a bad active-queue arrival is refused", "[mail_proto]") {
    DeliveryRequest req;
    req.queue_name = "active";
    req.queue_id = "4ABCDEF";
    req.recipients = {{"u@h", "u@h", "", 0, 1}};
    AttrRecord rec = req.to_record();
    AttrRecord bad;
    for (const auto& a : rec.attrs()) bad.add(a.name, a.name == "active_sec" ? "soon" : a.value);
    auto back = DeliveryRequest::from_record(bad);
    REQUIRE_FALSE(back);
    CHECK(back.error() == "attribute active_sec: bad number \"soon\"");
}
