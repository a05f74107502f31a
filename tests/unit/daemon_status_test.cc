#include <catch2/catch.hpp>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "util/daemon/master_proto.h"

using namespace postern::daemon;

TEST_CASE("status messages round-trip through their fixed layout") {
    StatusMessage m{4242, 7, Availability::Taken};
    StatusBytes b = encode_status(m);
    CHECK(b.size() == 12);
    auto back = decode_status(b);
    REQUIRE(back);
    CHECK(back->pid == 4242);
    CHECK(back->generation == 7);
    CHECK(back->avail == Availability::Taken);
    CHECK(decode_status(encode_status({1, 0, Availability::Available}))->avail == Availability::Available);
}

TEST_CASE("a status message with an unknown availability is rejected") {
    StatusBytes b = encode_status({1, 1, Availability::Available});
    b[8] = 2;
    CHECK_FALSE(decode_status(b));
}

TEST_CASE("notify_master writes one whole message per call and fails when master is gone") {
    int p[2];
    REQUIRE(pipe(p) == 0);
    REQUIRE(notify_master(p[1], 3, Availability::Taken));
    REQUIRE(notify_master(p[1], 3, Availability::Available));
    StatusBytes b;
    REQUIRE(read(p[0], b.data(), b.size()) == 12);
    CHECK(decode_status(b)->avail == Availability::Taken);
    CHECK(decode_status(b)->pid == getpid());
    REQUIRE(read(p[0], b.data(), b.size()) == 12);
    CHECK(decode_status(b)->avail == Availability::Available);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    CHECK_FALSE(notify_master(p[1], 3, Availability::Taken));
    close(p[1]);
}
