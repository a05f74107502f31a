#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <sstream>

#include "util/config/master_cf.h"

using namespace postern::config;

namespace {

MasterCf parse_ok(std::string_view text, int limit = 100) {
    auto r = parse_master_cf(text, "/etc/postern/master.cf", limit);
    INFO(text);
    REQUIRE(r.ok());
    return std::move(r).value();
}

std::string parse_error(std::string_view text) {
    auto r = parse_master_cf(text, "/etc/postern/master.cf");
    INFO(text);
    REQUIRE_FALSE(r.ok());
    return r.error();
}

}  // namespace

TEST_CASE("master.cf keeps the eight columns as written and resolves defaults") {
    auto cf = parse_ok(
        "# comment\n"
        "smtp      inet  n       -       y       -       -       smtpd\n"
        "pickup    unix  n       -       y       60      1       pickup\n"
        "tlsmgr    unix  -       -       y       1000?   1       tlsmgr\n"
        "postlog   unix-dgram n  -       n       -       1       postlogd\n"
        "smtpd     pass  -       -       y       -       -       smtpd\n"
        "qmgr      fifo  n       -       n       300     1       qmgr\n",
        250);
    REQUIRE(cf.services.size() == 6);
    const MasterService& smtp = cf.services[0];
    CHECK(smtp.columns == std::array<std::string, 8>{"smtp", "inet", "n", "-", "y", "-", "-", "smtpd"});
    CHECK(smtp.line == 2);
    CHECK(smtp.type == ServiceType::Inet);
    CHECK_FALSE(smtp.private_service);
    CHECK(smtp.unprivileged);
    CHECK(smtp.chroot);
    CHECK(smtp.wakeup_seconds == 0);
    CHECK(smtp.max_proc == 250);
    CHECK(smtp.max_proc_is_default);
    CHECK(smtp.inet_host.empty());
    CHECK(smtp.inet_port == "smtp");
    CHECK(smtp.command == "smtpd");
    CHECK(cf.services[1].wakeup_seconds == 60);
    CHECK_FALSE(cf.services[1].wakeup_conditional);
    CHECK(cf.services[1].max_proc == 1);
    CHECK(cf.services[2].wakeup_seconds == 1000);
    CHECK(cf.services[2].wakeup_conditional);
    CHECK(cf.services[2].private_service);   // "-" is private
    CHECK_FALSE(cf.services[2].max_proc_is_default);
    CHECK(cf.services[3].type == ServiceType::UnixDgram);
    CHECK_FALSE(cf.services[3].chroot);
    CHECK(cf.services[4].type == ServiceType::Pass);
    CHECK(cf.services[5].type == ServiceType::Fifo);
    CHECK(cf.find("pickup", "unix") == &cf.services[1]);
    CHECK(cf.find("pickup", "inet") == nullptr);
    CHECK(service_type_name(ServiceType::UnixDgram) == "unix-dgram");
}

TEST_CASE("master.cf chroot defaults to n and unprivileged to y, as in Postfix 3") {
    auto cf = parse_ok("x unix - - - - - cmd\n");
    CHECK(cf.services[0].private_service);
    CHECK(cf.services[0].unprivileged);
    CHECK_FALSE(cf.services[0].chroot);
}

TEST_CASE("master.cf splits inet host:port, [ipv6]:port and port") {
    auto cf = parse_ok(
        "127.0.0.1:submission inet n - y - - smtpd\n"
        "[::1]:2525 inet n - y - - smtpd\n"
        "[ipv6:fd00::2]:26 inet n - y - - smtpd\n"
        "mail.example.com:465 inet n - y - - smtpd\n"
        "::1:27 inet n - y - - smtpd\n");
    CHECK(cf.services[0].inet_host == "127.0.0.1");
    CHECK(cf.services[0].inet_port == "submission");
    CHECK(cf.services[1].inet_host == "::1");
    CHECK(cf.services[1].inet_port == "2525");
    CHECK(cf.services[2].inet_host == "fd00::2");
    CHECK(cf.services[3].inet_host == "mail.example.com");
    CHECK(cf.services[4].inet_host == "::1");
    CHECK(cf.services[4].inet_port == "27");
}

TEST_CASE("master.cf inet endpoint errors are Postfix's host_port texts") {
    CHECK(parse_error("[::1 inet n - y - - smtpd\n") ==
          "/etc/postern/master.cf: line 1: missing \"]\" in \"[::1\"");
    CHECK(parse_error("[::1]x inet n - y - - smtpd\n") ==
          "/etc/postern/master.cf: line 1: garbage after \"]\" in \"[::1]x\"");
    CHECK(parse_error("host: inet n - y - - smtpd\n") ==
          "/etc/postern/master.cf: line 1: missing service information in \"host:\"");
    CHECK(parse_error("[1.2.3.4] inet n - y - - smtpd\n") ==
          "/etc/postern/master.cf: line 1: missing service information in \"[1.2.3.4]\"");
    CHECK(parse_error("25x inet n - y - - smtpd\n") ==
          "/etc/postern/master.cf: line 1: garbage after numerical service in \"25x\"");
    CHECK(parse_error("bad!host:25 inet n - y - - smtpd\n") ==
          "/etc/postern/master.cf: line 1: valid hostname or network address required in \"bad!host:25\"");
    CHECK(parse_error("[ipv6:zz]:25 inet n - y - - smtpd\n") ==
          "/etc/postern/master.cf: line 1: malformed IPv6 address in \"[ipv6:zz]:25\"");
}

TEST_CASE("master.cf field errors use master's wording with file and line") {
    CHECK(parse_error("\nsmtp bogus n - y - - smtpd\n") ==
          "/etc/postern/master.cf: line 2: bad transport type: bogus");
    CHECK(parse_error("smtp\n") == "/etc/postern/master.cf: line 1: missing \"transport type\" field");
    CHECK(parse_error("smtp - n\n") == "/etc/postern/master.cf: line 1: field \"transport type\" has no default value");
    CHECK(parse_error("smtp inet x - y - - smtpd\n") ==
          "/etc/postern/master.cf: line 1: field \"private\": bad value: \"x\"");
    CHECK(parse_error("smtp inet y - y - - smtpd\n") ==
          "/etc/postern/master.cf: line 1: inet service cannot be private");
    CHECK(parse_error("smtp inet - - y - - smtpd\n") ==
          "/etc/postern/master.cf: line 1: inet service cannot be private");
    CHECK(parse_error("a unix - yes y - - cmd\n") ==
          "/etc/postern/master.cf: line 1: field \"unprivileged\": bad value: \"yes\"");
    CHECK(parse_error("a unix - - Y - - cmd\n") ==
          "/etc/postern/master.cf: line 1: field \"chroot\": bad value: \"Y\"");
    CHECK(parse_error("a unix - - - 1x - cmd\n") ==
          "/etc/postern/master.cf: line 1: field \"wakeup_time\": bad value: \"1x\"");
    CHECK(parse_error("a unix - - - -5 - cmd\n") ==
          "/etc/postern/master.cf: line 1: field \"wakeup_time\": bad value: \"-5\"");
    CHECK(parse_error("a unix - - - 60? 1? cmd\n") ==
          "/etc/postern/master.cf: line 1: field \"max_proc\": bad value: \"1?\"");
    CHECK(parse_error("a unix - - - - -\n") == "/etc/postern/master.cf: line 1: missing \"command\" field");
    CHECK(parse_error("a unix - - - - - -\n") ==
          "/etc/postern/master.cf: line 1: field \"command\" has no default value");
    CHECK(parse_error("a unix - - - - 99999999999 cmd\n") ==
          "/etc/postern/master.cf: line 1: field \"max_proc\": bad value: \"99999999999\"");
}

TEST_CASE("master.cf error names the first line of a continued entry") {
    CHECK(parse_error("\nsmtp inet n - y\n  - bad smtpd\n") ==
          "/etc/postern/master.cf: line 2: field \"max_proc\": bad value: \"bad\"");
}

TEST_CASE("master.cf -o overrides in every Postfix form") {
    auto cf = parse_ok(
        "submission inet n - y - - smtpd\n"
        "  -o syslog_name=postfix/submission\n"
        "  -o { smtpd_banner = $myhostname ESMTP  ready }\n"
        "  -osmtpd_tls_security_level=encrypt -vDo {smtpd_sasl_auth_enable=yes}\n"
        "  -o smtpd_tls_security_level=may\n");
    const MasterService& s = cf.services[0];
    REQUIRE(s.overrides.size() == 5);
    CHECK(s.overrides[0].name == "syslog_name");
    CHECK(s.overrides[0].value == "postfix/submission");
    CHECK(s.overrides[1].name == "smtpd_banner");
    CHECK(s.overrides[1].value == "$myhostname ESMTP  ready");
    CHECK(s.overrides[2].name == "smtpd_tls_security_level");
    CHECK(s.overrides[3].name == "smtpd_sasl_auth_enable");
    CHECK(s.override_value("smtpd_tls_security_level") == "may");
    CHECK_FALSE(s.override_value("nothing").has_value());
    std::vector<std::string> want = {"-o", "syslog_name=postfix/submission",
                                     "-o", "smtpd_banner=$myhostname ESMTP  ready",
                                     "-o", "smtpd_tls_security_level=encrypt",
                                     "-vD", "-o", "smtpd_sasl_auth_enable=yes",
                                     "-o", "smtpd_tls_security_level=may"};
    CHECK(s.args == want);
    CHECK(cf.warnings.empty());
}

TEST_CASE("master.cf command arguments keep ${name} and group {a b} into one") {
    auto cf = parse_ok(
        "maildrop  unix  -       n       n       -       -       pipe\n"
        "  flags=DRXhu user=vmail argv=/usr/bin/maildrop -d ${recipient}\n"
        "a unix - - - - - cmd {x y} z -o not_an_override=1\n");
    std::vector<std::string> want = {"flags=DRXhu", "user=vmail", "argv=/usr/bin/maildrop", "-d", "${recipient}"};
    CHECK(cf.services[0].args == want);
    CHECK(cf.services[0].overrides.empty());
    std::vector<std::string> want2 = {"x y", "z", "-o", "not_an_override=1"};
    CHECK(cf.services[1].args == want2);
    CHECK(cf.services[1].overrides.empty());
}

TEST_CASE("master.cf brace and -o mistakes are warnings, as in postconf") {
    auto cf = parse_ok("smtp inet n - y - - smtpd -o { bad }\nx unix - - - - - cmd -o { a = b\n");
    REQUIRE(cf.warnings.size() == 2);
    CHECK(cf.warnings[0] == "/etc/postern/master.cf: line 1: missing '=' after attribute name: \"bad\"");
    CHECK(cf.warnings[1] == "/etc/postern/master.cf: line 2: missing '}' in \"{ a = b\"");
    CHECK(cf.services[1].override_value("a") == "b");
    auto cf2 = parse_ok(" smtp inet n - y - - smtpd\nb unix - - - - - cmd\n");
    REQUIRE(cf2.services.size() == 1);
    CHECK(cf2.warnings[0] ==
          "/etc/postern/master.cf: logical line must not start with whitespace: \" smtp inet n - y - - smtpd\"");
}

TEST_CASE("master.cf parses Debian's master.cf.dist: every service found") {
    std::ifstream in("/usr/share/postfix/master.cf.dist");
    REQUIRE(in.good());
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    size_t expected = 0;
    std::istringstream lines(text);
    for (std::string l; std::getline(lines, l);)
        if (!l.empty() && l[0] != '#' && l[0] != ' ' && l[0] != '\t') ++expected;
    auto cf = parse_ok(text);
    CHECK(cf.services.size() == expected);
    CHECK(expected >= 25);
    CHECK(cf.warnings.empty());
    const MasterService* relay = cf.find("relay", "unix");
    REQUIRE(relay);
    CHECK(relay->override_value("syslog_name") == "postfix/$service_name");
    const MasterService* postlog = cf.find("postlog", "unix-dgram");
    REQUIRE(postlog);
    CHECK(postlog->command == "postlogd");
    const MasterService* uucp = cf.find("uucp", "unix");
    REQUIRE(uucp);
    CHECK(uucp->args.back() == "($recipient)");
}

TEST_CASE("master.cf loads from a directory and reports a missing file") {
    auto r = load_master_cf("/nonexistent-dir");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "open /nonexistent-dir/master.cf: No such file or directory");
}

TEST_CASE("master.cf parser survives random bytes, NULs and huge lines") {
    std::mt19937 rng(11);
    const std::string good = "smtp inet n - y - - smtpd -o {a = b}\n  -o c=d\npickup unix n - y 60? 1 pickup\n";
    for (int i = 0; i < 5000; ++i) {
        std::string s;
        if (i % 2) {
            s = good;
            for (int k = 0; k < 3; ++k) s[rng() % s.size()] = static_cast<char>(rng() % 256);
        } else {
            size_t len = rng() % 120;
            for (size_t k = 0; k < len; ++k) s += "{}-o =?[]:\n \t\0yn1x"[rng() % 19];
        }
        auto r = parse_master_cf(s, "m");
        if (!r.ok()) CHECK(r.error().rfind("m: line ", 0) == 0);
    }
    std::string huge = "a unix - - - - - cmd " + std::string(100 * 1024, 'x') + " {" + std::string(100 * 1024, 'y');
    auto r = parse_master_cf(huge, "m");
    REQUIRE(r.ok());
    CHECK(r->services[0].args.size() == 2);
    CHECK(parse_master_cf(std::string(100 * 1024, '{'), "m").ok() == false);
}

TEST_CASE("split_outside_braces keeps {} groups whole, with any separators") {
    auto f = split_outside_braces("a, {b c, d} ,e{f g}h {unclosed x", ", ");
    std::vector<std::string_view> want = {"a", "{b c, d}", "e{f g}h", "{unclosed x"};
    CHECK(f == want);
    CHECK(split_outside_braces("  \t ", " \t").empty());
}
