#include <catch2/catch.hpp>

#include "util/anvil/anvil_table.h"
#include "util/ipc/anvil_proto.h"

using postern::anvil::AnvilTable;
namespace proto = postern::ipc::anvil;

namespace {
struct FakeClock {
    long now = 1000;
    AnvilTable::Clock fn() {
        return [this] { return now; };
    }
};
}  // namespace

TEST_CASE("anvil counts simultaneous connections and the connection rate") {
    FakeClock clock;
    AnvilTable t(60, clock.fn());
    auto a = t.connect("smtpd:1.2.3.4", 1);
    CHECK(a.count == 1);
    CHECK(a.rate == 1);
    auto b = t.connect("smtpd:1.2.3.4", 2);
    CHECK(b.count == 2);
    CHECK(b.rate == 2);
    t.disconnect("smtpd:1.2.3.4", 1);
    CHECK(t.lookup("smtpd:1.2.3.4").count == 1);
    CHECK(t.lookup("smtpd:1.2.3.4").rate == 2);
    // Another client's ident is separate.
    CHECK(t.connect("smtpd:5.6.7.8", 3).count == 1);
}

TEST_CASE("anvil rates reset when the time unit since the first sample has passed") {
    FakeClock clock;
    AnvilTable t(60, clock.fn());
    t.connect("s:a", 1);
    CHECK(t.message("s:a", 1) == 1);
    clock.now += 30;
    CHECK(t.message("s:a", 1) == 2);
    clock.now += 30;  // exactly one unit: still the same window
    CHECK(t.message("s:a", 1) == 3);
    clock.now += 1;
    CHECK(t.message("s:a", 1) == 1);
    CHECK(t.recipient("s:a", 1) == 1);
    CHECK(t.auth("s:a", 1) == 1);
    CHECK(t.newtls("s:a", 1) == 1);
    CHECK(t.newtls_report("s:a") == 1);
    clock.now += 61;
    // Stale rates read as zero; the connection is still counted.
    auto c = t.lookup("s:a");
    CHECK(c.count == 1);
    CHECK(c.rate == 0);
    CHECK(c.mail == 0);
    CHECK(t.newtls_report("s:a") == 0);
}

TEST_CASE("anvil drops the connection of a client that goes away without disconnect") {
    FakeClock clock;
    AnvilTable t(60, clock.fn());
    t.connect("s:a", 7);
    t.connect("s:a", 8);
    t.drop_local(7);
    CHECK(t.lookup("s:a").count == 1);
    // A disconnect from a client that did not connect this ident changes nothing.
    t.disconnect("s:a", 9);
    CHECK(t.lookup("s:a").count == 1);
    t.disconnect("s:a", 8);
    CHECK(t.lookup("s:a").count == 0);
}

TEST_CASE("anvil forgets idle entries one time unit after the last disconnect") {
    FakeClock clock;
    AnvilTable t(60, clock.fn());
    t.connect("s:a", 1);
    t.connect("s:b", 2);
    t.disconnect("s:a", 1);
    clock.now += 59;
    t.expire();
    CHECK(t.size() == 2);
    clock.now += 1;
    t.expire();
    CHECK(t.size() == 1);  // s:b is still connected
    CHECK(t.lookup("s:a").count == 0);
}

TEST_CASE("anvil statistics lines read as Postfix's and reset after logging") {
    FakeClock clock;
    clock.now = 1700000000;
    AnvilTable t(60, clock.fn());
    t.connect("smtpd:10.0.0.1", 1);
    t.connect("smtpd:10.0.0.1", 2);
    t.message("smtpd:10.0.0.1", 2);
    auto lines = t.take_statistics();
    std::string when = postern::anvil::log_time(clock.now);
    REQUIRE(lines.size() == 4);
    CHECK(lines[0] == "statistics: max connection rate 2/60s for (smtpd:10.0.0.1) at " + when);
    CHECK(lines[1] == "statistics: max connection count 2 for (smtpd:10.0.0.1) at " + when);
    CHECK(lines[2] == "statistics: max message rate 1/60s for (smtpd:10.0.0.1) at " + when);
    CHECK(lines[3] == "statistics: max cache size 1 at " + when);
    CHECK(t.take_statistics().empty());
    CHECK(when.size() == 15);
}

TEST_CASE("anvil requests round-trip and reject missing or unknown fields") {
    proto::AnvilRequest req{proto::Request::Connect, proto::make_ident("smtpd", "::1")};
    auto back = proto::AnvilRequest::from_record(req.to_record());
    REQUIRE(back.ok());
    CHECK(back->request == proto::Request::Connect);
    CHECK(back->ident == "smtpd:::1");

    postern::ipc::AttrRecord missing;
    missing.add("request", "connect");
    CHECK_FALSE(proto::AnvilRequest::from_record(missing).ok());
    auto extra = req.to_record();
    extra.add("bogus", "1");
    CHECK_FALSE(proto::AnvilRequest::from_record(extra).ok());
    postern::ipc::AttrRecord unknown;
    unknown.add("request", "explode").add("ident", "x");
    auto u = proto::AnvilRequest::from_record(unknown);
    REQUIRE_FALSE(u.ok());
    CHECK(u.error() == "unrecognized request: \"explode\"");
}

TEST_CASE("anvil replies carry exactly the fields of their request") {
    proto::AnvilReply r;
    r.count = 3;
    r.rate = 5;
    r.mail = 2;
    auto conn = r.to_record(proto::Request::Connect);
    CHECK(postern::ipc::encode_record(conn) == "status=0\ncount=3\nrate=5\n\n");
    CHECK(postern::ipc::encode_record(r.to_record(proto::Request::Disconnect)) == "status=0\n\n");
    CHECK(postern::ipc::encode_record(r.to_record(proto::Request::Message)) == "status=0\nrate=5\n\n");
    auto parsed = proto::AnvilReply::from_record(proto::Request::Lookup, r.to_record(proto::Request::Lookup));
    REQUIRE(parsed.ok());
    CHECK(parsed->mail == 2);
    // A connect reply is not a valid lookup reply.
    CHECK_FALSE(proto::AnvilReply::from_record(proto::Request::Lookup, conn).ok());
    proto::AnvilReply fail;
    fail.status = proto::kStatusFail;
    auto f = proto::AnvilReply::from_record(proto::Request::Connect, fail.to_record(proto::Request::Connect));
    REQUIRE(f.ok());
    CHECK(f->status == proto::kStatusFail);
}
