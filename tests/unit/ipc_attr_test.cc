#include <catch2/catch.hpp>

#include <random>

#include "util/ipc/attr.h"

using namespace postern::ipc;

namespace {

std::vector<AttrRecord> decode_all(AttrDecoder& d) {
    std::vector<AttrRecord> out;
    while (auto r = d.next()) out.push_back(std::move(*r));
    return out;
}

AttrRecord sample() {
    AttrRecord r;
    std::string binary("a\0b\nc\r%d\x7f\xff", 10);
    r.add("queue_id", "4Xb7Kq1ZzTz9").add("sender", "").add_long("size", 1234);
    r.add("rcpt", "a@example.com").add("rcpt", "b@example.com").add("body", binary);
    return r;
}

}  // namespace

TEST_CASE("attribute records round-trip any byte string") {
    AttrDecoder d;
    std::string wire = encode_record(sample());
    REQUIRE(d.feed(wire).ok());
    auto recs = decode_all(d);
    REQUIRE(recs.size() == 1);
    REQUIRE(recs[0].attrs().size() == 6);
    CHECK(recs[0].attrs()[5].value == std::string("a\0b\nc\r%d\x7f\xff", 10));
    CHECK(recs[0].find("sender") == std::string_view(""));
    CHECK_FALSE(recs[0].find("nosuch").has_value());
}

TEST_CASE("attribute decoder gives the same records for any split of the input") {
    std::string wire = encode_record(sample()) + encode_record(AttrRecord().add("x", "1"));
    std::mt19937 rng(42);
    for (int round = 0; round < 200; ++round) {
        AttrDecoder d;
        size_t pos = 0;
        while (pos < wire.size()) {
            size_t n = std::uniform_int_distribution<size_t>(1, 7)(rng);
            REQUIRE(d.feed(std::string_view(wire).substr(pos, n)).ok());
            pos += n;
        }
        auto recs = decode_all(d);
        REQUIRE(recs.size() == 2);
        CHECK(recs[0].attrs()[1].name == "sender");
        CHECK(recs[1].find("x") == std::string_view("1"));
    }
}

TEST_CASE("attribute decoder rejects broken framing and stays failed") {
    for (std::string bad : {"novalue\n", "Bad=1\n", "=x\n", "a=%4\n\n", "a=%zz\n", "a b=1\n"}) {
        AttrDecoder d;
        CHECK_FALSE(d.feed(bad).ok());
        CHECK(d.failed());
        CHECK_FALSE(d.feed("a=1\n\n").ok());
    }
}

TEST_CASE("attribute decoder enforces its limits") {
    AttrLimits lim;
    lim.max_value = 8;
    lim.max_attrs = 2;
    lim.max_record = 64;
    {
        AttrDecoder d(lim);
        CHECK_FALSE(d.feed("a=123456789\n").ok());
    }
    {
        AttrDecoder d(lim);
        CHECK_FALSE(d.feed("a=1\nb=2\nc=3\n").ok());
    }
    {
        AttrDecoder d(lim);
        std::string endless(1000, 'x');
        CHECK_FALSE(d.feed("a=" + endless).ok());
    }
}

TEST_CASE("record reader rejects missing, repeated and unexpected fields") {
    AttrRecord rec = sample();
    {
        RecordReader r(rec);
        CHECK(r.take("queue_id") == "4Xb7Kq1ZzTz9");
        CHECK(r.take("sender").empty());
        CHECK(r.take_long("size") == 1234);
        CHECK(r.take_all("rcpt").size() == 2);
        r.take("body");
        CHECK(r.finish().ok());
    }
    {
        RecordReader r(rec);
        r.take("queue_id");
        auto st = r.finish();
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().find("unexpected attribute") == 0);
    }
    {
        RecordReader r(rec);
        r.take("rcpt");
        CHECK_FALSE(r.finish().ok());
    }
    {
        AttrRecord bad;
        bad.add("size", "12x");
        RecordReader r(bad);
        r.take_long("size");
        CHECK_FALSE(r.finish().ok());
        RecordReader r2(bad);
        r2.take("missing");
        CHECK_FALSE(r2.finish().ok());
    }
}
