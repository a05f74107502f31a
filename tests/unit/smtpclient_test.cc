#include <catch2/catch.hpp>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "queue_test_util.h"
#include "util/smtpclient/content_stream.h"
#include "util/smtpclient/nexthop.h"
#include "util/smtpclient/smtp_reply.h"

using namespace postern;
using namespace postern::smtpclient;

namespace {

std::vector<Reply> parse_in_pieces(std::string_view wire, size_t piece) {
    ReplyParser p;
    std::vector<Reply> out;
    for (size_t i = 0; i < wire.size(); i += piece) REQUIRE(p.feed(wire.substr(i, piece), out));
    REQUIRE_FALSE(p.mid_reply());
    return out;
}

}  // namespace

TEST_CASE("smtp client reply parser joins multi-line replies in any split") {
    std::string wire = "220 mx.example ESMTP\r\n250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"
                       "550-5.1.1 The account\r\n550 5.1.1 does not exist\r\n";
    for (size_t piece : {1, 2, 3, 7, 1000}) {
        auto replies = parse_in_pieces(wire, piece);
        REQUIRE(replies.size() == 3);
        CHECK(replies[0].code == 220);
        CHECK(replies[1].lines.size() == 3);
        CHECK(replies[2].code == 550);
        CHECK(replies[2].text() == "550-5.1.1 The account 550 5.1.1 does not exist");
        CHECK(replies[2].dsn() == "5.1.1");
    }
}

TEST_CASE("smtp client reply status falls back to the reply code class") {
    auto r = parse_in_pieces("451 try later\r\n", 100);
    CHECK(r[0].dsn() == "4.0.0");
    // an enhanced code of the wrong class is not trusted
    r = parse_in_pieces("450 5.1.1 mixed up\r\n", 100);
    CHECK(r[0].dsn() == "4.0.0");
    r = parse_in_pieces("250 2.0.0 Ok: queued as X\n", 100);  // bare LF accepted
    CHECK(r[0].dsn() == "2.0.0");
    CHECK(r[0].text() == "250 2.0.0 Ok: queued as X");
}

TEST_CASE("smtp client reply parser rejects garbage and overlong lines") {
    ReplyParser p(16);
    std::vector<Reply> out;
    CHECK_FALSE(p.feed("hello\r\n", out));
    ReplyParser q(16);
    CHECK_FALSE(q.feed("250 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", out));
    ReplyParser r;
    CHECK_FALSE(r.feed("999 no such code\r\n", out));
    ReplyParser s;
    CHECK_FALSE(s.feed("250_x\r\n", out));
}

TEST_CASE("smtp client reads EHLO keywords case-insensitively") {
    auto r = parse_in_pieces("250-mx.example greets you\r\n250-pipelining\r\n250-SIZE 10240000\r\n"
                             "250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250-STARTTLS\r\n"
                             "250-AUTH PLAIN login\r\n250-AUTH=LOGIN CRAM-MD5\r\n250 CHUNKING\r\n", 5);
    Features f = parse_ehlo(r[0]);
    CHECK(f.pipelining);
    CHECK(f.size);
    CHECK(f.size_limit == 10240000);
    CHECK(f.eightbitmime);
    CHECK(f.smtputf8);
    CHECK(f.dsn);
    CHECK(f.starttls);
    CHECK(f.chunking);
    CHECK(f.auth == std::vector<std::string>{"PLAIN", "LOGIN", "CRAM-MD5"});
    // the greeting line is not a keyword
    auto g = parse_in_pieces("250-PIPELINING\r\n250 SIZE\r\n", 100);
    Features h = parse_ehlo(g[0]);
    CHECK_FALSE(h.pipelining);
    CHECK(h.size);
    CHECK(h.size_limit == 0);
}

TEST_CASE("smtp nexthop: domain, [host], host:port and lmtp forms") {
    auto d = parse_nexthop("example.com", false);
    REQUIRE(d);
    CHECK(d->host == "example.com");
    CHECK(d->mx_lookup);
    CHECK(d->port == 25);
    auto b = parse_nexthop("[mail.example.com]:587", false);
    REQUIRE(b);
    CHECK(b->host == "mail.example.com");
    CHECK_FALSE(b->mx_lookup);
    CHECK(b->port == 587);
    auto ip = parse_nexthop("[192.0.2.1]", false);
    REQUIRE(ip);
    CHECK(ip->host == "192.0.2.1");
    CHECK(ip->port == 25);
    auto v6 = parse_nexthop("[ipv6:2001:db8::1]:2525", false);
    REQUIRE(v6);
    CHECK(v6->host == "2001:db8::1");
    CHECK(v6->port == 2525);
    auto hp = parse_nexthop("relay.example:smtp", false);
    REQUIRE(hp);
    CHECK(hp->mx_lookup);
    CHECK(hp->port == 25);
    auto u = parse_nexthop("unix:private/dovecot-lmtp", true);
    REQUIRE(u);
    CHECK(u->kind == NextHop::Kind::Unix);
    CHECK(u->path == "private/dovecot-lmtp");
    auto in = parse_nexthop("inet:lmtp.example:2003", true);
    REQUIRE(in);
    CHECK(in->host == "lmtp.example");
    CHECK(in->port == 2003);
    CHECK_FALSE(in->mx_lookup);
    auto dflt = parse_nexthop("inet:[127.0.0.1]", true, 2424);
    REQUIRE(dflt);
    CHECK(dflt->port == 2424);
    CHECK_FALSE(parse_nexthop("[unterminated", false));
    CHECK_FALSE(parse_nexthop("[]", false));
    CHECK_FALSE(parse_nexthop("host:99999", false));
    CHECK_FALSE(parse_nexthop("host:nosuchservice-xyz", false));
    CHECK_FALSE(parse_nexthop("unix:", true));
    CHECK_FALSE(parse_nexthop("", false));
}

TEST_CASE("smtp MX order: by preference, random among equals, own preference cuts") {
    std::vector<dns::Mx> mx = {{20, "c"}, {10, "a1"}, {10, "a2"}, {10, "a3"}, {30, "d"}};
    std::set<std::string> firsts;
    for (unsigned seed = 0; seed < 50; ++seed) {
        std::mt19937 rng(seed);
        auto o = order_mx(mx, rng);
        REQUIRE(o.size() == 5);
        for (size_t i = 0; i < 3; ++i) CHECK(o[i].preference == 10);
        CHECK(o[3].host == "c");
        CHECK(o[4].host == "d");
        firsts.insert(o[0].host);
    }
    CHECK(firsts.size() == 3);  // every equal-preference host comes first sometimes
    std::mt19937 rng(1);
    auto cut = order_mx(mx, rng, 20);
    CHECK(cut.size() == 3);
    CHECK(is_null_mx({{0, "."}}));
    CHECK_FALSE(is_null_mx({{0, "."}, {10, "mx"}}));
    CHECK_FALSE(is_null_mx({{10, "mx"}}));
}

TEST_CASE("smtp DATA lines are dot-stuffed and CRLF-ended") {
    std::string out;
    append_data_line(out, "plain");
    append_data_line(out, ".");
    append_data_line(out, "..two");
    append_data_line(out, "");
    append_data_line(out, " .not at start");
    CHECK(out == "plain\r\n..\r\n...two\r\n\r\n .not at start\r\n");
}

TEST_CASE("smtp DATA lines longer than smtp_line_length_limit are folded as Postfix folds them") {
    WireOptions opts;
    opts.line_limit = 4;
    std::string out;
    append_data_line(out, "abcd", opts);         // exactly the limit: unchanged
    append_data_line(out, "abcde", opts);        // one byte over
    append_data_line(out, ".bcdefghij", opts);   // the stuffed dot is not counted
    append_data_line(out, "abcdefg", opts);      // the continuation ends on the limit
    CHECK(out == "abcd\r\n"
                 "abcd\r\n e\r\n"
                 "..bcd\r\n efg\r\n hij\r\n"
                 "abcd\r\n efg\r\n");
    std::string raw;
    append_data_line(raw, ".x", {0, false});
    CHECK(raw == ".x\r\n");
}

TEST_CASE("the content stream reads a queue file piece by piece and rewinds") {
    postern::queue::test::ScratchQueue q;
    std::vector<std::string> lines;
    std::string expected;
    for (int i = 0; i < 20000; ++i) {
        lines.push_back(i % 7 == 0 ? "." + std::to_string(i) : std::string(i % 300, 'a' + i % 26));
        append_data_line(expected, lines.back());
    }
    auto opened = postern::queue::open_queue_file(write_message(q, lines), false);
    REQUIRE(opened.ok());
    ContentStream stream(opened->fd.get(), {});
    for (int pass = 0; pass < 2; ++pass) {
        std::string sent, piece;
        size_t pieces = 0;
        for (;;) {
            piece.clear();
            auto done = stream.fill(piece, 8192);
            REQUIRE(done.ok());
            CHECK(piece.size() < 8192 + 400);  // never much more than asked for
            sent += piece;
            ++pieces;
            if (*done) break;
        }
        CHECK(sent == expected);
        CHECK(pieces > 100);
        REQUIRE(stream.rewind());
    }
}

TEST_CASE("the content stream converts 8-bit MIME on the way out when asked, pieces and all") {
    postern::queue::test::ScratchQueue q;
    auto opened = postern::queue::open_queue_file(
        write_message(q, {"Content-Transfer-Encoding: 8bit", "Subject: x", "", ".caf\xc3\xa9", "end"}), false);
    REQUIRE(opened.ok());
    const std::string converted =
        "Subject: x\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n..caf=C3=A9\r\nend\r\n";
    ContentStream stream(opened->fd.get(), {}, postern::message::ParserLimits{});
    for (size_t want : {size_t{1}, size_t{4096}}) {
        std::string sent;
        for (;;) {
            auto done = stream.fill(sent, sent.size() + want);
            REQUIRE(done.ok());
            if (*done) break;
        }
        CHECK(sent == converted);
        CHECK_FALSE(stream.mime_nesting_exceeded());
        REQUIRE(stream.rewind());
    }
    ContentStream as_is(opened->fd.get(), {});
    std::string sent;
    REQUIRE(as_is.fill(sent, 1 << 20).ok());
    CHECK(sent == "Content-Transfer-Encoding: 8bit\r\nSubject: x\r\n\r\n..caf\xc3\xa9\r\nend\r\n");
}
