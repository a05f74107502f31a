// smtpd's input state machine (SmtpReader) and MAIL/RCPT argument parsing: command
// lines, DATA content with dot-unstuffing and the bare-newline policies (SMTP smuggling),
// BDAT chunks; every input also fed one byte at a time and in random splits.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "smtpd/smtpd_params.cc"  // NOLINT: program code, not in libpostern
#include "smtpd/smtpd_reader.cc"  // NOLINT

using postern::smtpd::BareLf;
using postern::smtpd::ReaderEvent;
using postern::smtpd::SmtpReader;
using Kind = ReaderEvent::Kind;

namespace {

// Drives the reader as the session does (DATA -> content, "BDAT n" -> a chunk) and
// writes a transcript: "C:line" commands, "D:content" (pieces joined), "." ends,
// "!" too-long lines, "B" chunk ends, "*" when a piece had a bare LF.
std::string transcript(const std::string& input, const std::vector<size_t>& cuts, BareLf policy,
                       size_t limit = 100) {
    SmtpReader r(limit, policy);
    std::string out, content;
    bool bare = false;
    size_t pos = 0;
    auto drain = [&] {
        for (;;) {
            ReaderEvent ev = r.next();
            if (ev.kind == Kind::None) return;
            if (ev.kind == Kind::Content) {
                content += ev.text;
                bare |= ev.bare_lf;
                continue;
            }
            if (!content.empty() || bare) {
                out += "D:" + content + (bare ? "*" : "") + "|";
                content.clear();
                bare = false;
            }
            switch (ev.kind) {
                case Kind::Command:
                    out += "C:" + ev.text + (ev.bare_lf ? "*" : "") + "|";
                    if (ev.text == "DATA") r.start_data();
                    if (ev.text.rfind("BDAT ", 0) == 0) r.start_chunk(std::stoul(ev.text.substr(5)));
                    break;
                case Kind::LineTooLong: out += "!" + ev.text + "|"; break;
                case Kind::EndOfData: out += ".|"; break;
                case Kind::ChunkEnd: out += "B|"; break;
                default: break;
            }
        }
    };
    for (size_t cut : cuts) {
        r.feed(input.substr(pos, cut - pos));
        pos = cut;
        drain();
    }
    r.feed(input.substr(pos));
    drain();
    if (!content.empty()) out += "D:" + content + (bare ? "*" : "") + "|";
    return out;
}

// The transcript must not depend on how the input was split.
std::string every_split(const std::string& input, BareLf policy = BareLf::Allow, size_t limit = 100) {
    std::string whole = transcript(input, {}, policy, limit);
    std::vector<size_t> bytes;
    for (size_t i = 1; i < input.size(); ++i) bytes.push_back(i);
    CHECK(transcript(input, bytes, policy, limit) == whole);
    std::mt19937 rng(42);
    for (int round = 0; round < 50; ++round) {
        std::vector<size_t> cuts;
        for (size_t i = 1; i < input.size(); ++i)
            if (rng() % 7 == 0) cuts.push_back(i);
        CHECK(transcript(input, cuts, policy, limit) == whole);
    }
    return whole;
}

}  // namespace

TEST_CASE("smtpd reader: command lines, CRLF and bare LF", "[smtpd_reader]") {
    CHECK(every_split("EHLO x\r\nMAIL FROM:<a@b>\r\nQUIT\n") == "C:EHLO x|C:MAIL FROM:<a@b>|C:QUIT*|");
    CHECK(every_split("NOOP\r\r\n") == "C:NOOP\r|");
    CHECK(every_split("partial") == "");
}

TEST_CASE("smtpd reader: overlong command lines are reported once and skipped", "[smtpd_reader]") {
    std::string longline(300, 'x');
    CHECK(every_split("NOOP\r\n" + longline + "\r\nQUIT\r\n", BareLf::Allow, 100) ==
          "C:NOOP|!" + std::string(100, 'x') + "|C:QUIT|");
    CHECK(every_split(std::string(101, 'y') + "\r\nRSET\r\n", BareLf::Allow, 100) ==
          "!" + std::string(100, 'y') + "|C:RSET|");
}

TEST_CASE("smtpd reader: DATA content is unstuffed and ends at the dot line", "[smtpd_reader]") {
    CHECK(every_split("DATA\r\nSubject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n") ==
          "C:DATA|D:Subject: x\n\n.dot\n|.|C:QUIT|");
    // An empty message, a message of only headers.
    CHECK(every_split("DATA\r\n.\r\n") == "C:DATA|.|");
    CHECK(every_split("DATA\r\nA: b\r\n.\r\n") == "C:DATA|D:A: b\n|.|");
    // Bare CR and NUL bytes are message data.
    CHECK(every_split(std::string("DATA\r\na\rb\0c\r\n.\r\n", 16)) ==
          std::string("C:DATA|D:a\rb\0c\n|.|", 18));
}

TEST_CASE("smtpd reader: long DATA lines pass in pieces without a false end", "[smtpd_reader]") {
    std::string body(250, 'z');
    std::string t = every_split("DATA\r\n." + body + "\r\n.\r\n", BareLf::Allow, 100);
    CHECK(t == "C:DATA|D:" + body + "\n|.|");
    // A "." after a split point inside a long line is not a line start.
    std::string tricky = std::string(120, 'q') + ".\r\n";
    CHECK(every_split("DATA\r\n" + tricky + ".\r\n", BareLf::Allow, 100) ==
          "C:DATA|D:" + std::string(120, 'q') + ".\n|.|");
}

TEST_CASE("smtpd reader: bare newline policies and SMTP smuggling", "[smtpd_reader]") {
    std::string smuggle = "DATA\r\nfirst\n.\nMAIL FROM:<evil@x>\r\n.\r\n";
    // "no": <LF>.<LF> ends DATA (Postfix < 3.9), the rest is read as commands.
    CHECK(every_split(smuggle, BareLf::Allow) == "C:DATA|D:first\n*|.|C:MAIL FROM:<evil@x>|C:.|");
    // normalize/reject: only <CR><LF>.<CR><LF> ends DATA; the smuggled text is content.
    CHECK(every_split(smuggle, BareLf::Normalize) == "C:DATA|D:first\n\nMAIL FROM:<evil@x>\n*|.|");
    CHECK(every_split(smuggle, BareLf::Reject) == "C:DATA|D:first\n\nMAIL FROM:<evil@x>\n*|.|");
    // <CR><LF>.<LF> does not end it either, nor <LF>.<CR><LF>.
    CHECK(every_split("DATA\r\na\r\n.\nb\n.\r\nc\r\n.\r\n", BareLf::Normalize) ==
          "C:DATA|D:a\n\nb\n\nc\n*|.|");
}

TEST_CASE("smtpd reader: BDAT chunks are exact byte counts, CRLF -> LF across chunks", "[smtpd_reader]") {
    CHECK(every_split("BDAT 5\r\nab\r\ncBDAT 3\r\n\r\nxQUIT\r\n") ==
          "C:BDAT 5|D:ab\nc|B|C:BDAT 3|D:\nx|B|C:QUIT|");
    // A CR at the end of one chunk and LF at the start of the next make one line end.
    std::string t = every_split("BDAT 2\r\na\rBDAT 2\r\n\nb");
    CHECK(t == "C:BDAT 2|D:a|B|C:BDAT 2|D:\nb|B|");
    CHECK(every_split("BDAT 0\r\nNOOP\r\n") == "C:BDAT 0|B|C:NOOP|");
    // Dots and "." lines mean nothing inside a chunk.
    CHECK(every_split("BDAT 6\r\n.\r\n.\r\n") == "C:BDAT 6|D:.\n.\n|B|");
}

TEST_CASE("smtpd reader: end_chunks returns a CR held back at the very end", "[smtpd_reader]") {
    SmtpReader r(100);
    r.feed("BDAT 2\r\nx\r");
    CHECK(r.next().kind == Kind::Command);
    r.start_chunk(2);
    ReaderEvent ev = r.next();
    CHECK(ev.kind == Kind::Content);
    CHECK(ev.text == "x");
    CHECK(r.next().kind == Kind::ChunkEnd);
    CHECK(r.end_chunks() == "\r");
    CHECK(r.end_chunks().empty());
}

TEST_CASE("smtpd params: MAIL/RCPT paths and ESMTP parameters", "[smtpd_reader]") {
    using postern::smtpd::parse_path;
    auto p = parse_path("FROM:<a@b.c> SIZE=100 body=8BITMIME", "FROM:", false);
    REQUIRE(p);
    CHECK(p->address == "a@b.c");
    CHECK(p->had_brackets);
    REQUIRE(p->params.size() == 2);
    CHECK(p->params[0] == std::make_pair(std::string("SIZE"), std::string("100")));
    CHECK(p->params[1] == std::make_pair(std::string("BODY"), std::string("8BITMIME")));
    CHECK(parse_path("FROM:<>", "FROM:", true)->address.empty());
    CHECK(parse_path("from: <x@y>", "FROM:", false)->address == "x@y");
    CHECK(parse_path("FROM:x@y", "FROM:", false)->address == "x@y");
    CHECK_FALSE(parse_path("FROM:x@y", "FROM:", true));
    CHECK_FALSE(parse_path("FROM:<x@y", "FROM:", false));
    CHECK_FALSE(parse_path("TO:<x@y>", "FROM:", false));
    CHECK(parse_path("TO:<\"a> b\"@c>", "TO:", true)->address == "\"a> b\"@c");
    CHECK(postern::smtpd::internal_address("@r1,@r2:u@d") == "u@d");
    CHECK(postern::smtpd::internal_address("\"a b\"@c") == "a b@c");
    CHECK(postern::smtpd::valid_mailbox("\"a b\"@c"));
    CHECK_FALSE(postern::smtpd::valid_mailbox("a b@c"));
    CHECK(postern::smtpd::valid_mailbox("@r1,@r2:u@d"));
    CHECK_FALSE(postern::smtpd::valid_mailbox("@r1,@r2:u,v@d"));
    CHECK_FALSE(postern::smtpd::valid_mailbox("@r 1:u@d"));
}

TEST_CASE("smtpd params: xtext", "[smtpd_reader]") {
    using postern::smtpd::xtext_decode;
    CHECK(*xtext_decode("a+2Bb+3D") == "a+b=");
    CHECK_FALSE(xtext_decode("a+2"));
    CHECK_FALSE(xtext_decode("a+zz"));
    CHECK_FALSE(xtext_decode("a=b"));
    CHECK(*xtext_decode(postern::smtpd::xtext_encode("rfc822;x+y=z@a b")) == "rfc822;x+y=z@a b");
}

TEST_CASE("smtpd params: UTF-8 validity", "[smtpd_reader]") {
    using postern::smtpd::valid_utf8;
    CHECK(valid_utf8("plain ascii"));
    CHECK(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    CHECK_FALSE(valid_utf8("\xc3"));            // truncated
    CHECK_FALSE(valid_utf8("\xc3("));           // bad continuation
    CHECK_FALSE(valid_utf8("\xc0\xaf"));        // overlong
    CHECK_FALSE(valid_utf8("\xed\xa0\x80"));    // surrogate
    CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80")); // past U+10FFFF
    CHECK_FALSE(valid_utf8("\xff"));
    CHECK(postern::all_ascii("abc"));
    CHECK_FALSE(postern::all_ascii("\xc3\xa9"));
}
