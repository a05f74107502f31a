#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "util/message/message_parser.h"

using namespace postern::message;

namespace {

struct Collect : MessageSink {
    std::vector<std::string> headers, body;
    int done = 0;
    void header(std::string& h) override { headers.push_back(h); }
    void headers_done() override { ++done; }
    void body_line(std::string_view l) override { body.emplace_back(l); }
};

Collect parse(std::string_view text, ParserLimits limits = {}) {
    Collect c;
    MessageParser p(c, limits);
    p.feed(text);
    p.finish();
    return c;
}

}  // namespace

TEST_CASE("message parser splits headers and body at the empty line") {
    Collect c = parse("Subject: hi\nFrom: a@b\n\nbody 1\nbody 2\n");
    REQUIRE(c.headers == std::vector<std::string>{"Subject: hi", "From: a@b"});
    CHECK(c.done == 1);
    CHECK(c.body == std::vector<std::string>{"", "body 1", "body 2"});
}

TEST_CASE("message parser writes the obsolete \"name : value\" as \"name: value\"") {
    Collect c = parse("Subject \t: hi : there\nX-A:b\n\nKey : not a header\n");
    CHECK(c.headers == std::vector<std::string>{"Subject: hi : there", "X-A:b"});
    CHECK(c.body == std::vector<std::string>{"", "Key : not a header"});
}

TEST_CASE("message parser joins folded headers keeping the line breaks") {
    Collect c = parse("Subject: one\n two\n\tthree\nTo: x\n\nb\n");
    REQUIRE(c.headers.size() == 2);
    CHECK(c.headers[0] == "Subject: one\n two\n\tthree");
}

TEST_CASE("message parser ends the header at a line that is not a header") {
    Collect c = parse("Subject: x\nthis is text\nTo: y\n");
    CHECK(c.headers == std::vector<std::string>{"Subject: x"});
    CHECK(c.body == std::vector<std::string>{"", "this is text", "To: y"});  // Postfix adds the empty line
}

TEST_CASE("message parser: a leading blank line means no headers") {
    Collect c = parse(" indented first line\nSubject: no\n");
    CHECK(c.headers.empty());
    CHECK(c.done == 1);
    CHECK(c.body == std::vector<std::string>{"", " indented first line", "Subject: no"});
}

TEST_CASE("message parser: header-only message without final newline") {
    Collect c = parse("Subject: x\n y");
    CHECK(c.headers == std::vector<std::string>{"Subject: x\n y"});
    CHECK(c.done == 1);
    CHECK(c.body.empty());
}

TEST_CASE("message parser truncates a header at header_size_limit and drops the rest of it") {
    ParserLimits limits;
    limits.header_size_limit = 20;
    Collect c;
    MessageParser p(c, limits);
    p.feed("Subject: 0123456789abcdefghij\n more more\nTo: a\n\nx\n");
    p.finish();
    REQUIRE(c.headers.size() == 2);
    CHECK(c.headers[0] == "Subject: 0123456789a");
    CHECK(c.headers[1] == "To: a");
    CHECK(p.header_truncated());
}

TEST_CASE("message parser passes 8-bit bytes, NUL and CR through unchanged") {
    static const char kRaw[] = "Subject: \xe4\xf6\x00x\r\n\nb\xff\x00y\n";
    std::string msg(kRaw, sizeof kRaw - 1);
    Collect c = parse(msg);
    REQUIRE(c.headers.size() == 1);
    CHECK(c.headers[0] == std::string("Subject: \xe4\xf6\x00x\r", 14));
    REQUIRE(c.body.size() == 2);
    CHECK(c.body[1] == std::string("b\xff\x00y", 4));
}

TEST_CASE("message parser gives the same result for any split of the input") {
    std::string msg = "Received: a\n\tb\nSubject: s\nX-Long: " + std::string(5000, 'z') + "\n\nline1\n\nline3";
    Collect whole = parse(msg);
    std::mt19937 rng(42);
    for (int round = 0; round < 50; ++round) {
        Collect c;
        MessageParser p(c);
        size_t pos = 0;
        while (pos < msg.size()) {
            size_t n = std::uniform_int_distribution<size_t>(0, 40)(rng);
            if (round == 0) n = 1;
            p.feed(std::string_view(msg).substr(pos, n));
            pos += n;
        }
        p.finish();
        CHECK(c.headers == whole.headers);
        CHECK(c.body == whole.body);
    }
}

TEST_CASE("message parser cuts a line longer than max_line into pieces") {
    ParserLimits limits;
    limits.max_line = 10;
    Collect c = parse("\n" + std::string(25, 'a') + "\n", limits);
    CHECK(c.body == std::vector<std::string>{"", std::string(10, 'a'), std::string(10, 'a'), std::string(5, 'a')});
}

namespace {

struct MimeCollect : Collect {
    std::vector<std::pair<HeaderClass, std::string>> parts;
    void part_header(std::string& h, HeaderClass cls) override { parts.emplace_back(cls, h); }
};

MimeCollect parse_mime(std::string_view text, size_t nesting = 100, size_t split = 0) {
    MimeCollect c;
    ParserLimits limits;
    limits.mime = true;
    limits.mime_nesting_limit = nesting;
    MessageParser p(c, limits);
    if (split == 0) {
        p.feed(text);
    } else {
        for (size_t i = 0; i < text.size(); i += split) p.feed(text.substr(i, split));
    }
    p.finish();
    c.done += p.nesting_exceeded() ? 100 : 0;
    return c;
}

const char* kMixed =
    "Subject: s\nContent-Type: multipart/mixed;\n boundary=\"=_b1 (x)\"\n\n"
    "preamble\n--=_b1 (x)\nContent-Type: text/plain\n\nhello\n"
    "--=_b1 (x)\nContent-Type: message/rfc822\nContent-Disposition: attachment\n\n"
    "From: inner@example.test\nSubject: inner\n\ninner body\n"
    "--=_b1 (x)--\nepilogue\n";

}  // namespace

TEST_CASE("MIME parsing hands part and attached-message headers over by class") {
    for (size_t split : {0, 1, 7}) {
        MimeCollect c = parse_mime(kMixed, 100, split);
        CHECK(c.headers == std::vector<std::string>{"Subject: s", "Content-Type: multipart/mixed;\n boundary=\"=_b1 (x)\""});
        using H = HeaderClass;
        std::vector<std::pair<H, std::string>> want = {
            {H::Multipart, "Content-Type: text/plain"},
            {H::Multipart, "Content-Type: message/rfc822"},
            {H::Multipart, "Content-Disposition: attachment"},
            {H::Nested, "From: inner@example.test"},
            {H::Nested, "Subject: inner"}};
        CHECK(c.parts == want);
        CHECK(c.body == std::vector<std::string>{"", "preamble", "--=_b1 (x)", "", "hello", "--=_b1 (x)", "",
                                                 "", "inner body", "--=_b1 (x)--", "epilogue"});
        CHECK(c.done == 1);
    }
}

TEST_CASE("without MIME processing part headers are body lines") {
    Collect c = parse(kMixed);
    CHECK(c.headers.size() == 2);
    CHECK(std::find(c.body.begin(), c.body.end(), "From: inner@example.test") != c.body.end());
}

TEST_CASE("an outer boundary ends inner multiparts; digest parts default to message/rfc822") {
    MimeCollect c = parse_mime(
        "Content-Type: multipart/mixed; boundary=outer\n\n"
        "--outer\nContent-Type: multipart/digest; boundary=inner\n\n"
        "--inner\n\nFrom: d@example.test\n\ndigest body\n"
        "--outer\nX-Part: two\n\nplain\n--outer--\n");
    using H = HeaderClass;
    std::vector<std::pair<H, std::string>> want = {
        {H::Multipart, "Content-Type: multipart/digest; boundary=inner"},
        {H::Nested, "From: d@example.test"},
        {H::Multipart, "X-Part: two"}};
    CHECK(c.parts == want);
}

TEST_CASE("MIME nesting beyond the limit is reported and read as content") {
    // Postfix counts multipart levels only and takes mime_nesting_limit + 2 of them.
    auto deep = [](int levels) {
        std::string m;
        for (int i = 0; i < levels; ++i)
            m += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\n\n--b" + std::to_string(i) + "\n";
        return m + "Subject: deepest\n\nbody\n";
    };
    MimeCollect shallow = parse_mime(deep(5), 3);
    CHECK(shallow.done == 1);
    CHECK(shallow.parts.back().second == "Subject: deepest");
    MimeCollect limited = parse_mime(deep(6), 3);
    CHECK(limited.done == 101);
    REQUIRE(limited.parts.size() == 5);
    CHECK(limited.parts.back().second == "Content-Type: multipart/mixed; boundary=b5");
    // Attached messages do not count.
    std::string nested;
    for (int i = 0; i < 5; ++i) nested += "Content-Type: message/rfc822\n\n";
    MimeCollect messages = parse_mime(nested + "Subject: deepest\n\nbody\n", 1);
    CHECK(messages.done == 1);
    CHECK(messages.parts.back().second == "Subject: deepest");
}
