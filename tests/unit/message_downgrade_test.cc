#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "util/message/mime_downgrade.h"

using namespace postern::message;

namespace {

// The converted message, lines joined with "\n" (each line fed whole, as the queue file
// reader hands them over).
std::string downgrade(std::string_view text, ParserLimits limits = {}) {
    std::string out;
    MimeDowngrade d([&out](std::string_view l) { out.append(l).append("\n"); }, limits);
    while (!text.empty()) {
        size_t nl = text.find('\n');
        d.line(text.substr(0, nl));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    d.finish();
    return out;
}

std::vector<std::string> qp(std::string_view line) {
    std::vector<std::string> out;
    quoted_printable_line(line, [&out](std::string_view l) { out.emplace_back(l); });
    return out;
}

}  // namespace

TEST_CASE("quoted-printable encodes 8-bit bytes, '=' and controls but not tab") {
    CHECK(qp("caf\xc3\xa9 = 1\tx") == std::vector<std::string>{"caf=C3=A9 =3D 1\tx"});
    CHECK(qp("a\rb") == std::vector<std::string>{"a=0Db"});
    CHECK(qp("") == std::vector<std::string>{""});
}

TEST_CASE("quoted-printable encodes a trailing blank") {
    CHECK(qp("end ") == std::vector<std::string>{"end=20"});
    CHECK(qp("end\t") == std::vector<std::string>{"end=09"});
    CHECK(qp("  ") == std::vector<std::string>{" =20"});
}

TEST_CASE("quoted-printable breaks softly once 73 bytes are out") {
    std::string line(200, 'x');
    auto out = qp(line);
    REQUIRE(out.size() == 3);
    CHECK(out[0] == std::string(73, 'x') + "=");
    CHECK(out[1] == std::string(73, 'x') + "=");
    CHECK(out[2] == std::string(54, 'x'));
    // An encoded byte is never split; a line may reach 75 bytes before the "=".
    auto eight = qp(std::string(72, 'y') + "\xe9\xe9" + "z");
    REQUIRE(eight.size() == 2);
    CHECK(eight[0] == std::string(72, 'y') + "=E9=");
    CHECK(eight[1] == "=E9z");
    CHECK(qp(std::string(73, 'q')) == std::vector<std::string>{std::string(73, 'q')});
}

TEST_CASE("downgrade turns an 8bit text body into quoted-printable") {
    std::string in =
        "From: a@b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
        "Subject: s\n\nGr\xc3\xbc\xc3\x9f\x65 =\n.\n";
    CHECK(downgrade(in) ==
          "From: a@b\nContent-Type: text/plain; charset=utf-8\nSubject: s\n"
          "Content-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe =3D\n.\n");
}

TEST_CASE("downgrade leaves 7-bit declarations and undeclared 8-bit content alone") {
    std::string seven = "Content-Transfer-Encoding: base64\n\nw6k=\n";
    CHECK(downgrade(seven) == seven);
    // No MIME at all: 8-bit bytes and 8-bit headers pass as they are.
    std::string plain = "Subject: caf\xc3\xa9\n\ncaf\xc3\xa9\n";
    CHECK(downgrade(plain) == plain);
    // The encoding names compare case-insensitively, comments allowed.
    CHECK(downgrade("Content-Transfer-Encoding: (c) BINARY\n\n\xff\n") ==
          "Content-Transfer-Encoding: quoted-printable\n\n=FF\n");
}

TEST_CASE("downgrade converts each 8bit part of a multipart and marks the multipart 7bit") {
    std::string in =
        "Content-Type: multipart/mixed; boundary=\"XX\"\nContent-Transfer-Encoding: 8bit\n\n"
        "prolog \xe9\n"
        "--XX\nContent-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\n\xe9t\xe9\n"
        "--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAAA\n"
        "--XX\nContent-Type: image/x\nContent-Transfer-Encoding: 8bit\n\n\x80\n"
        "--XX--\nepilogue \xe9\n";
    CHECK(downgrade(in) ==
          "Content-Type: multipart/mixed; boundary=\"XX\"\nContent-Transfer-Encoding: 7bit\n\n"
          "prolog \xe9\n"
          "--XX\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n=E9t=E9\n"
          "--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAAA\n"
          "--XX\nContent-Type: image/x\nContent-Transfer-Encoding: quoted-printable\n\n=80\n"
          "--XX--\nepilogue \xe9\n");
}

TEST_CASE("downgrade recurses into an attached message") {
    std::string in =
        "Content-Type: message/rfc822\nContent-Transfer-Encoding: 8bit\n\n"
        "Subject: inner\nContent-Transfer-Encoding: 8bit\n\n\xe9\n";
    CHECK(downgrade(in) ==
          "Content-Type: message/rfc822\nContent-Transfer-Encoding: 7bit\n\n"
          "Subject: inner\nContent-Transfer-Encoding: quoted-printable\n\n=E9\n");
}

TEST_CASE("downgrade keeps folded headers and emits the encoding of a header-only message") {
    CHECK(downgrade("Subject: a\n b\nContent-Transfer-Encoding:\n 8bit") ==
          "Subject: a\n b\nContent-Transfer-Encoding: quoted-printable\n");
}

TEST_CASE("downgrade reports nesting beyond mime_nesting_limit") {
    ParserLimits limits;
    limits.mime_nesting_limit = 1;
    for (int levels : {3, 4}) {
        MimeDowngrade d([](std::string_view) {}, limits);
        for (int i = 0; i < levels; ++i) {
            d.line("Content-Type: multipart/mixed; boundary=b" + std::to_string(i));
            d.line("");
            d.line("--b" + std::to_string(i));
        }
        d.line("");
        d.line("x");
        d.finish();
        CHECK(d.nesting_exceeded() == (levels == 4));
    }
}

TEST_CASE("downgrade declares message/partial 7bit but still encodes its content, as Postfix") {
    CHECK(downgrade("Content-Type: message/partial; id=x\nContent-Transfer-Encoding: binary\n\n\xe9\n") ==
          "Content-Type: message/partial; id=x\nContent-Transfer-Encoding: 7bit\n\n=E9\n");
}
