#include <catch2/catch.hpp>

#include "util/daemon/daemon_args.h"

using postern::daemon::build_daemon_args;
using postern::daemon::DaemonArgs;
using postern::daemon::parse_daemon_args;

TEST_CASE("daemon arguments as master passes them are parsed") {
    auto a = parse_daemon_args({"/x/anvil", "-n", "anvil", "-t", "unix", "-u", "-c", "-s", "2", "-v", "-v",
                                "-o", "max_idle=30s", "-oanvil_rate_time_unit = 10s", "extra"});
    REQUIRE(a.ok());
    CHECK(a->service_name == "anvil");
    CHECK(a->transport == "unix");
    CHECK(a->unprivileged);
    CHECK(a->chroot);
    CHECK(a->listen_count == 2);
    CHECK(a->verbose == 2);
    REQUIRE(a->overrides.size() == 2);
    CHECK(a->overrides[0].name == "max_idle");
    CHECK(a->overrides[0].value == "30s");
    CHECK(a->overrides[1].name == "anvil_rate_time_unit");
    CHECK(a->overrides[1].value == "10s");
    REQUIRE(a->args.size() == 1);
    CHECK(a->args[0] == "extra");
}

TEST_CASE("daemon flags may be combined and the service defaults to the program name") {
    auto a = parse_daemon_args({"/usr/libexec/postern/qmgr", "-uvc", "-tfifo"});
    REQUIRE(a.ok());
    CHECK(a->service_name == "qmgr");
    CHECK(a->transport == "fifo");
    CHECK(a->unprivileged);
    CHECK(a->verbose == 1);
    CHECK(a->chroot);
}

TEST_CASE("bad daemon arguments give Postfix-style errors") {
    auto bad = parse_daemon_args({"d", "-x"});
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error() == "invalid option -- 'x'");
    auto missing = parse_daemon_args({"d", "-n"});
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error() == "option requires an argument -- 'n'");
    auto noeq = parse_daemon_args({"d", "-o", "max_idle"});
    REQUIRE_FALSE(noeq.ok());
    CHECK(noeq.error() == "-o: missing '=' in \"max_idle\"");
    CHECK_FALSE(parse_daemon_args({"d", "-t", "tcp"}).ok());
    CHECK_FALSE(parse_daemon_args({"d", "-s", "0"}).ok());
}

TEST_CASE("arguments built by master parse back to the same settings") {
    DaemonArgs in;
    in.service_name = "submission";
    in.transport = "inet";
    in.unprivileged = true;
    in.listen_count = 3;
    in.verbose = 1;
    in.solitary = true;
    in.overrides = {{"syslog_name", "postern/submission"}};
    // Like pipe(8)'s: options stop at the first non-option, later dashes are kept.
    in.args = {"flags=R", "argv=/bin/cmd", "-f"};
    std::vector<std::string> argv = {"/x/smtpd"};
    for (auto& s : build_daemon_args(in)) argv.push_back(s);
    auto out = parse_daemon_args(argv);
    REQUIRE(out.ok());
    CHECK(out->service_name == "submission");
    CHECK(out->transport == "inet");
    CHECK(out->unprivileged);
    CHECK_FALSE(out->chroot);
    CHECK(out->listen_count == 3);
    CHECK(out->solitary);
    REQUIRE(out->overrides.size() == 1);
    CHECK(out->overrides[0].value == "postern/submission");
    CHECK(out->args == std::vector<std::string>{"flags=R", "argv=/bin/cmd", "-f"});
}
