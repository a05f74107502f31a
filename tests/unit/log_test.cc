#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <initializer_list>
#include <map>
#include <string>

#include "util/base/file_io.h"
#include "util/log/log.h"
#include "util/log/log_config.h"
#include "util/log/mail_events.h"

using namespace postern;
using namespace postern::log;

namespace {

// Restores the process's logging settings when a test that changes them ends.
struct SettingsGuard {
    Settings saved = settings();
    ~SettingsGuard() { configure(saved); }
};

timeval tv(long sec, long usec) {
    timeval t{};
    t.tv_sec = sec;
    t.tv_usec = usec;
    return t;
}

DeliveryEvent event(std::string_view id, std::string_view rcpt, std::string_view relay,
                    std::string_view dsn, std::string_view status, std::string_view reason) {
    DeliveryEvent e;
    e.queue_id = id;
    e.recipient = rcpt;
    e.relay = relay;
    e.dsn = dsn;
    e.status = status;
    e.reason = reason;
    return e;
}

ParamLookup lookup_from(std::map<std::string, std::string> m) {
    return [m](std::string_view name) {
        auto it = m.find(std::string(name));
        return it == m.end() ? std::string() : it->second;
    };
}

}  // namespace

struct DelayCase {
    long sec, usec;
    int sig, max;
    const char* want;
};

void check_delays(std::initializer_list<DelayCase> cases) {
    for (const DelayCase& c : cases) {
        INFO(c.sec << "s " << c.usec << "us sig " << c.sig << " max " << c.max);
        CHECK(format_delay(c.sec, c.usec, c.sig, c.max) == c.want);
    }
}

TEST_CASE("format_delay keeps two significant digits like Postfix's format_tv") {
    // Postfix's format_tv.ref, sig_digits 2, max_digits 6.
    check_delays({{1110, 0, 2, 6, "1110"},     {111, 0, 2, 6, "111"},
                  {11, 100000, 2, 6, "11"},    {1, 110000, 2, 6, "1.1"},
                  {0, 111000, 2, 6, "0.11"},   {0, 11100, 2, 6, "0.011"},
                  {0, 1110, 2, 6, "0.0011"},   {0, 111, 2, 6, "0.00011"},
                  {0, 11, 2, 6, "0.000011"},   {0, 1, 2, 6, "0.000001"},
                  {1000, 0, 2, 6, "1000"},     {0, 100000, 2, 6, "0.1"},
                  {0, 10, 2, 6, "0.00001"}});
}

TEST_CASE("format_delay rounds up across a decimal boundary without trailing zeros") {
    check_delays({{996, 0, 2, 6, "996"},       {99, 600000, 2, 6, "100"},
                  {9, 960000, 2, 6, "10"},     {0, 996000, 2, 6, "1"},
                  {0, 99600, 2, 6, "0.1"},     {0, 9960, 2, 6, "0.01"},
                  {0, 996, 2, 6, "0.001"},     {1, 110000, 1, 6, "1"},
                  {0, 111000, 1, 6, "0.1"},    {0, 11, 1, 6, "0.00001"}});
}

TEST_CASE("format_delay at the default resolution limit of 2 digits") {
    check_delays({{0, 0, 2, 2, "0"},           {0, 4999, 2, 2, "0"},
                  {0, 5000, 2, 2, "0.01"},     {0, 524000, 2, 2, "0.52"},
                  {0, 525000, 2, 2, "0.53"},   {0, 500000, 2, 2, "0.5"},
                  {2, 340000, 2, 2, "2.3"},    {12, 340000, 2, 2, "12"},
                  {3600, 999999, 2, 2, "3601"}, {-5, 0, 2, 2, "0"}});
    CHECK(format_delay(0, 524000) == "0.52");  // the defaults are 2 and 2
}

TEST_CASE("delivery record has Postfix's field order and delay split") {
    DeliveryEvent e = event("3F1A2B4C5D", "bob@example.org", "mx.example.org[192.0.2.2]:25",
                            "2.0.0", "sent", "250 2.0.0 Ok: queued as 123");
    e.orig_recipient = "Bob@Example.org";  // differs only in case: not logged
    e.times.incoming_arrival = tv(1000, 0);
    e.times.active_arrival = tv(1000, 10000);
    e.times.agent_handoff = tv(1000, 20000);
    e.times.conn_setup_done = tv(1000, 220000);
    CHECK(delivery_line(e, tv(1000, 520000)) ==
          "3F1A2B4C5D: to=<bob@example.org>, relay=mx.example.org[192.0.2.2]:25, "
          "delay=0.52, delays=0.01/0.01/0.2/0.3, dsn=2.0.0, status=sent "
          "(250 2.0.0 Ok: queued as 123)");
}

TEST_CASE("delivery record shows orig_to, conn_use and local delays without a connection") {
    DeliveryEvent e = event("ABC", "bob@example.org", "local", "2.0.0", "sent",
                            "delivered to mailbox");
    e.orig_recipient = "postmaster@example.org";
    e.times.incoming_arrival = tv(100, 0);
    e.times.active_arrival = tv(101, 0);
    e.times.agent_handoff = tv(101, 0);
    e.times.reuse_count = 2;
    CHECK(delivery_line(e, tv(103, 500000)) ==
          "ABC: to=<bob@example.org>, orig_to=<postmaster@example.org>, relay=local, "
          "conn_use=3, delay=3.5, delays=1/0/0/2.5, dsn=2.0.0, status=sent "
          "(delivered to mailbox)");
}

TEST_CASE("mail deferred by the queue manager counts its wait as qmgr time") {
    DeliveryEvent e = event("DEF", "carol@example.net", "none", "4.4.1", "deferred",
                            "delivery temporarily suspended");
    e.times.incoming_arrival = tv(50, 0);
    e.times.active_arrival = tv(52, 0);
    // The agent's completion time, when given, wins over the caller's clock.
    e.times.deliver_done = tv(3652, 0);
    CHECK(delivery_line(e, tv(9999, 0)) ==
          "DEF: to=<carol@example.net>, relay=none, delay=3602, delays=2/3600/0/0, "
          "dsn=4.4.1, status=deferred (delivery temporarily suspended)");
}

TEST_CASE("delays count up to now when the queue manager was never reached") {
    DeliveryTimes t;
    t.incoming_arrival = tv(100, 0);
    Delays d = compute_delays(t, tv(104, 0));
    CHECK(d.delay.tv_sec == 4);
    CHECK(d.before_qmgr.tv_sec == 4);
    CHECK(d.in_qmgr.tv_sec == 0);
    // A clock that jumped back gives zero, never a negative delay.
    Delays back = compute_delays(t, tv(90, 0));
    CHECK(back.delay.tv_sec == 0);
    CHECK(back.delay.tv_usec == 0);
}

TEST_CASE("client, message-id, from and removed records read as Postfix's") {
    CHECK(client_line({"3F1A", client_namaddr("mail.example.org", "192.0.2.1"), {}, {}, {}}) ==
          "3F1A: client=mail.example.org[192.0.2.1]");
    CHECK(client_line({{}, client_namaddr("unknown", "192.0.2.9", "4711", true), {}, {}, {}}) ==
          "NOQUEUE: client=unknown[192.0.2.9]:4711");
    CHECK(client_line({"3F1A", "h[192.0.2.1]", "PLAIN", "alice", {}}) ==
          "3F1A: client=h[192.0.2.1], sasl_method=PLAIN, sasl_username=alice");
    CHECK(message_id_line("3F1A", "<20261123.abc@example.org>") ==
          "3F1A: message-id=<20261123.abc@example.org>");
    CHECK(message_id_line("3F1A", "") == "3F1A: message-id=<>");
    CHECK(message_id_line("3F1A", "<x@y>", true) == "3F1A: resent-message-id=<x@y>");
    CHECK(from_line("3F1A", "alice@example.org", 1234, 2) ==
          "3F1A: from=<alice@example.org>, size=1234, nrcpt=2 (queue active)");
    CHECK(from_line("3F1A", "", 99, 1) == "3F1A: from=<>, size=99, nrcpt=1 (queue active)");
    CHECK(removed_line("3F1A") == "3F1A: removed");
}

TEST_CASE("maillog_file line has time, first host label, tag and pid") {
    SettingsGuard guard;
    const char* old_tz = std::getenv("TZ");
    std::string saved_tz = old_tz ? old_tz : "";
    setenv("TZ", "UTC", 1);
    tzset();
    Settings s;
    s.syslog_name = "postern";
    s.hostname = "mail.example.org";
    configure(s);
    // 2026-11-03 07:08:09 UTC: the day is zero-padded as in Postfix's msg_logger.
    long when = 1793689689;
    std::string line = format_logfile_line_at(Level::Warning, "disk\tfull", 4242, when);
    CHECK(line == "Nov 03 07:08:09 mail postern/" + program() + "[4242]: warning: disk?full");
    s.tag = "mytag";
    configure(s);
    CHECK(format_logfile_line_at(Level::Info, "hi", 7, when) == "Nov 03 07:08:09 mail mytag[7]: hi");
    if (old_tz) setenv("TZ", saved_tz.c_str(), 1); else unsetenv("TZ");
    tzset();
}

TEST_CASE("log lines are appended to maillog_file, created with its permissions") {
    SettingsGuard guard;
    char dir_template[] = "/tmp/postern-log-test.XXXXXX";
    REQUIRE(mkdtemp(dir_template) != nullptr);
    std::string path = std::string(dir_template) + "/maillog";
    Settings s;
    s.syslog_name = "unit";
    s.maillog_file = path;
    s.to_stderr = false;
    s.to_syslog = false;
    configure(s);
    info("first %d", 1);
    warn("second");
    reopen();
    error("third");
    auto text = read_file(path);
    REQUIRE(text.ok());
    std::string tag = "unit/" + program() + "[" + std::to_string(getpid()) + "]: ";
    CHECK(text->find(tag + "first 1\n") != std::string::npos);
    CHECK(text->find(tag + "warning: second\n") != std::string::npos);
    CHECK(text->find(tag + "error: third\n") != std::string::npos);
    CHECK(std::count(text->begin(), text->end(), '\n') == 3);
    struct stat sb;
    REQUIRE(stat(path.c_str(), &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0600);
    configure(guard.saved);
    unlink(path.c_str());
    rmdir(dir_template);
}

TEST_CASE("maillog_file must match one of maillog_file_prefixes") {
    CHECK(check_maillog_prefix("/var/log/postern.log", "/var, /dev/stdout").ok());
    CHECK(check_maillog_prefix("/dev/stdout", "/var, /dev/stdout").ok());
    Status bad = check_maillog_prefix("/tmp/x.log", "/var, /dev/stdout");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error() ==
          "maillog_file value '/tmp/x.log' does not match any prefix in maillog_file_prefixes");
    CHECK_FALSE(check_maillog_prefix("/tmp/x.log", "").ok());
}

TEST_CASE("logging settings come from main.cf parameters") {
    Settings base;
    base.to_stderr = false;
    auto s = settings_from(lookup_from({{"syslog_name", "postfix"},
                                        {"syslog_facility", "local3"},
                                        {"myhostname", "mx1.example.org"},
                                        {"maillog_file", "/var/log/mail.log"},
                                        {"maillog_file_prefixes", "/var"},
                                        {"maillog_file_permissions", "0644"}}),
                           base);
    REQUIRE(s.ok());
    CHECK(s->syslog_name == "postfix");
    CHECK(s->syslog_facility == "local3");
    CHECK(s->hostname == "mx1.example.org");
    CHECK(s->maillog_file == "/var/log/mail.log");
    CHECK(s->maillog_file_mode == 0644);
    CHECK_FALSE(s->to_stderr);  // the program's own choice is kept
}

TEST_CASE("bad logging settings are reported, not guessed") {
    Settings base;
    auto prefix = settings_from(lookup_from({{"maillog_file", "/tmp/log"},
                                             {"maillog_file_prefixes", "/var, /dev/stdout"}}),
                                base);
    REQUIRE_FALSE(prefix.ok());
    CHECK(prefix.error().find("does not match any prefix in maillog_file_prefixes") !=
          std::string::npos);
    auto facility = settings_from(lookup_from({{"syslog_facility", "bogus"}}), base);
    REQUIRE_FALSE(facility.ok());
    CHECK(facility.error() == "parameter syslog_facility: unrecognized value: bogus");
    auto perms = settings_from(lookup_from({{"maillog_file_permissions", "0777"}}), base);
    CHECK_FALSE(perms.ok());
}

TEST_CASE("log text loses control characters and stops at Postfix's 2000 bytes") {
    CHECK(sanitize("a\tb\r\nc\x7f" "d") == "a?b??c?d");
    CHECK(sanitize("caf\xc3\xa9") == "caf\xc3\xa9");  // UTF-8 is kept
    CHECK(sanitize(std::string(5000, 'x')).size() == 2000);
    CHECK(facility_code("LOCAL7") >= 0);
    CHECK(facility_code("mail") >= 0);
    CHECK(facility_code("nosuch") == -1);
}

TEST_CASE("a command carries on when it may not write maillog_file") {
    SettingsGuard guard;
    Settings s;
    s.maillog_file = "/nonexistent-postern-dir/maillog";
    s.to_stderr = false;
    s.to_syslog = false;
    s.maillog_required = false;
    configure(s);
    warn("dropped, not fatal");  // would exit(1) if the log were required
    info("still running");
    CHECK(access("/nonexistent-postern-dir/maillog", F_OK) != 0);
    configure(guard.saved);
}

TEST_CASE("a daemon can open maillog_file before it drops privileges") {
    SettingsGuard guard;
    char dir_template[] = "/tmp/postern-log-open.XXXXXX";
    REQUIRE(mkdtemp(dir_template) != nullptr);
    std::string path = std::string(dir_template) + "/maillog";
    Settings s;
    s.maillog_file = path;
    s.to_stderr = false;
    s.to_syslog = false;
    configure(s);
    REQUIRE(open_maillog_now().ok());
    struct stat sb;
    CHECK(stat(path.c_str(), &sb) == 0);
    // The descriptor stays in use: the file may now be renamed away and still be written.
    std::string moved = path + ".old";
    REQUIRE(rename(path.c_str(), moved.c_str()) == 0);
    info("after rename");
    auto text = read_file(moved);
    REQUIRE(text.ok());
    CHECK(text->find("after rename") != std::string::npos);
    s.maillog_file = std::string(dir_template) + "/missing/maillog";
    configure(s);
    CHECK_FALSE(open_maillog_now().ok());
    configure(guard.saved);
    unlink(moved.c_str());
    rmdir(dir_template);
}
