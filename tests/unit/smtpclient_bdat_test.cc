#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "queue_test_util.h"
#include "util/smtpclient/bdat_framer.h"

using namespace postern;
using namespace postern::smtpclient;

namespace {

// A committed queue file holding `lines`, opened for reading.
struct QueuedMessage {
    queue::test::ScratchQueue q;
    UniqueFd fd;
    explicit QueuedMessage(const std::vector<std::string>& lines) {
        auto opened = queue::open_queue_file(queue::test::write_message(q, lines), false);
        REQUIRE(opened.ok());
        fd = std::move(opened->fd);
    }
};

struct Frame {
    size_t size = 0;
    bool last = false;
    std::string data;
};

// Takes the framer's output apart again: every "BDAT n [LAST]" line and its n bytes.
std::vector<Frame> parse_frames(std::string_view wire) {
    std::vector<Frame> out;
    while (!wire.empty()) {
        size_t eol = wire.find("\r\n");
        REQUIRE(eol != std::string_view::npos);
        std::string cmd(wire.substr(0, eol));
        wire.remove_prefix(eol + 2);
        Frame f;
        char tail[8] = "";
        int got = std::sscanf(cmd.c_str(), "BDAT %zu %7s", &f.size, tail);
        REQUIRE(got >= 1);
        f.last = got == 2 && std::string(tail) == "LAST";
        REQUIRE(cmd == bdat_command(f.size, f.last).substr(0, cmd.size()));
        REQUIRE(wire.size() >= f.size);
        f.data = std::string(wire.substr(0, f.size));
        wire.remove_prefix(f.size);
        out.push_back(std::move(f));
    }
    return out;
}

std::vector<Frame> frame_all(int fd, size_t chunk, WireOptions opts = {}) {
    BdatFramer framer(fd, opts, chunk);
    std::string wire;
    for (int i = 0; i < 1000000; ++i) {
        auto last = framer.next(wire);
        REQUIRE(last.ok());
        if (*last) break;
    }
    return parse_frames(wire);
}

std::string joined(const std::vector<Frame>& frames) {
    std::string all;
    for (const auto& f : frames) all += f.data;
    return all;
}

}  // namespace

TEST_CASE("bdat command lines") {
    CHECK(bdat_command(65536, false) == "BDAT 65536\r\n");
    CHECK(bdat_command(12, true) == "BDAT 12 LAST\r\n");
    CHECK(bdat_command(0, true) == "BDAT 0 LAST\r\n");
}

TEST_CASE("bdat chunks carry the DATA lines unstuffed, bounded, LAST on the final one") {
    std::vector<std::string> lines;
    std::string expected;
    for (int i = 0; i < 5000; ++i) {
        lines.push_back(i % 3 == 0 ? "." + std::to_string(i) : std::string(i % 250, 'a' + i % 26));
        expected += lines.back() + "\r\n";  // no dot-stuffing, no final dot
    }
    QueuedMessage m(lines);
    for (size_t chunk : {1000UL, 4096UL, 65536UL}) {
        INFO("chunk " << chunk);
        auto frames = frame_all(m.fd.get(), chunk);
        REQUIRE(frames.size() == (expected.size() + chunk - 1) / chunk);
        for (size_t i = 0; i + 1 < frames.size(); ++i) {
            CHECK(frames[i].size == chunk);  // every chunk but the last is full
            CHECK_FALSE(frames[i].last);
        }
        CHECK(frames.back().last);
        CHECK(frames.back().size > 0);
        CHECK(joined(frames) == expected);
    }
}

TEST_CASE("bdat: a message that fits is one LAST chunk, an empty one BDAT 0 LAST") {
    QueuedMessage small({"Subject: hi", "", ".", "body"});
    BdatFramer framer(small.fd.get(), {}, 65536);
    auto fits = framer.rest_fits_in_one_chunk();
    REQUIRE(fits.ok());
    CHECK(*fits);
    std::string wire;
    auto last = framer.next(wire);
    REQUIRE(last.ok());
    CHECK(*last);
    CHECK(wire == "BDAT 24 LAST\r\nSubject: hi\r\n\r\n.\r\nbody\r\n");

    QueuedMessage empty({});
    auto frames = frame_all(empty.fd.get(), 100);
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].last);
    CHECK(frames[0].size == 0);
}

TEST_CASE("bdat: content of exactly n chunks ends with a full LAST chunk") {
    // 10 lines of 98 bytes + CRLF = 1000 bytes.
    QueuedMessage m(std::vector<std::string>(10, std::string(98, 'x')));
    auto frames = frame_all(m.fd.get(), 500);
    REQUIRE(frames.size() == 2);
    CHECK_FALSE(frames[0].last);
    CHECK(frames[1].last);
    CHECK(frames[1].size == 500);
    BdatFramer framer(m.fd.get(), {}, 1000);
    auto fits = framer.rest_fits_in_one_chunk();
    REQUIRE(fits.ok());
    CHECK(*fits);
    BdatFramer tight(m.fd.get(), {}, 999);
    fits = tight.rest_fits_in_one_chunk();
    REQUIRE(fits.ok());
    CHECK_FALSE(*fits);
}

TEST_CASE("bdat: long lines are folded as for DATA and a huge line spans many chunks") {
    std::string huge(50000, 'h');
    QueuedMessage m({"a", huge, ".end"});
    WireOptions unlimited;
    unlimited.line_limit = 0;
    auto frames = frame_all(m.fd.get(), 4096, unlimited);
    CHECK(frames.size() == (2 + 1 + 2 + 50000 + 2 + 4 + 2 + 4095) / 4096);
    CHECK(joined(frames) == "a\r\n" + huge + "\r\n.end\r\n");
    WireOptions folded;
    folded.line_limit = 998;
    std::string expected = "a\r\n";
    append_data_line(expected, huge, {998, false});
    expected += ".end\r\n";
    CHECK(joined(frame_all(m.fd.get(), 4096, folded)) == expected);
}

TEST_CASE("bdat: the 8-bit MIME downgrade applies to the chunks, unstuffed") {
    QueuedMessage m({"Content-Transfer-Encoding: 8bit", "Subject: x", "", ".caf\xc3\xa9", "end"});
    BdatFramer framer(m.fd.get(), {}, 10, message::ParserLimits{});
    std::string wire;
    for (;;) {
        auto last = framer.next(wire);
        REQUIRE(last.ok());
        if (*last) break;
    }
    CHECK(joined(parse_frames(wire)) ==
          "Subject: x\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n.caf=C3=A9\r\nend\r\n");
    CHECK_FALSE(framer.mime_nesting_exceeded());
}
