#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "util/config/config.h"
#include "util/config/param_registry.h"

using namespace postern::config;

namespace {

Config from(std::string_view text) {
    auto r = Config::from_text(text, "/etc/postern/main.cf", "test");
    REQUIRE(r.ok());
    return std::move(r).value();
}

std::string machine_host() {
    char buf[256] = {};
    gethostname(buf, sizeof(buf) - 1);
    return buf;
}

}  // namespace

TEST_CASE("config_directory prefers -c, then MAIL_CONFIG, then the compiled default") {
    setenv("MAIL_CONFIG", "/from/env", 1);
    CHECK(config_directory("/from/flag") == "/from/flag");
    CHECK(config_directory(nullptr) == "/from/env");
    unsetenv("MAIL_CONFIG");
    CHECK(config_directory(nullptr) == "/etc/postern");
    CHECK(config_directory("") == "/etc/postern");
}

TEST_CASE("Config::load reads DIR/main.cf and reports a missing file as Postfix does") {
    char tmpl[] = "/tmp/config_test_XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    std::string dir = tmpl;
    auto missing = Config::load(dir);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error() == "open " + dir + "/main.cf: No such file or directory");
    std::ofstream(dir + "/main.cf") << "myorigin = example.org\nfoo = $myorigin!\n";
    auto cfg = Config::load(dir, "smtpd");
    REQUIRE(cfg.ok());
    CHECK(cfg->config_dir() == dir);
    CHECK(cfg->main_cf_path() == dir + "/main.cf");
    CHECK(cfg->get("foo") == "example.org!");
    CHECK(cfg->get("config_directory") == dir);
    CHECK(cfg->get("process_name") == "smtpd");
    CHECK(cfg->entries().size() == 2);
    std::remove((dir + "/main.cf").c_str());
    rmdir(dir.c_str());
}

TEST_CASE("raw and get: override over main.cf over default; unknown names are empty") {
    Config c = from("myorigin = $mydomain\nmydomain = example.com\nmine = x\nmine = y\n");
    CHECK(c.raw("myorigin") == "$mydomain");
    CHECK(c.get("myorigin") == "example.com");
    CHECK(c.raw("mine") == "y");  // the last setting wins
    CHECK(c.is_set("mine"));
    CHECK_FALSE(c.is_set("mail_owner"));
    CHECK(c.raw("mail_owner") == "postfix");
    CHECK_FALSE(c.raw("no_such_parameter").has_value());
    CHECK(c.get("no_such_parameter") == "");
    c.set_override("mydomain", "override.example");
    CHECK(c.get("myorigin") == "override.example");
    CHECK(c.is_set("mail_owner") == false);
    c.set_override("mail_owner", "nobody");
    CHECK(c.is_set("mail_owner"));
    CHECK(c.get("mail_owner") == "nobody");
}

TEST_CASE("myhostname and mydomain derive from the host name as in Postfix") {
    std::string host = machine_host();
    Config d;
    std::string expect_host = host.find('.') == std::string::npos ? host + ".localdomain" : host;
    CHECK(d.get("myhostname") == expect_host);
    CHECK(derived_default("myhostname", "x") == expect_host);
    Config c = from("myhostname = mail.example.com\n");
    CHECK(c.get("mydomain") == "example.com");
    Config c2 = from("myhostname = mail.example\n");
    CHECK(c2.get("mydomain") == "example");
    Config c3 = from("myhostname = nodots\n");
    CHECK(c3.get("mydomain") == "localdomain");
    if (host.find('.') == std::string::npos) {
        Config c4 = from("mydomain = foo.org\n");
        CHECK(c4.get("myhostname") == host + ".foo.org");
    }
    CHECK(d.get("process_id") == std::to_string(getpid()));
}

TEST_CASE("mynetworks follows mynetworks_style: host, subnet, class") {
    Config host = from("mynetworks_style = host\n");
    CHECK(host.get("mynetworks").find("127.0.0.1/32") != std::string::npos);
    Config subnet = from("mynetworks_style = subnet\n");
    CHECK(subnet.get("mynetworks").find("127.0.0.0/8") != std::string::npos);
    Config cls = from("mynetworks_style = class\ninet_protocols = ipv4\n");
    CHECK(cls.get("mynetworks").find("127.0.0.0/8") == 0);
    CHECK(cls.get("mynetworks").find('[') == std::string::npos);
    // compatibility_level 0 selects "subnet" through the default's expression.
    Config d = from("");
    CHECK(d.get("mynetworks_style") == "subnet");
    CHECK(from("compatibility_level = 2\n").get("mynetworks_style") == "host");
    auto bad = compute_mynetworks("bogus", "all");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error() == "unknown mynetworks mask style value \"bogus\" in \"bogus\"");
}

TEST_CASE("typed getters convert as Postfix and give Postfix's error texts") {
    Config c = from(
        "n = 42\nneg = -3\nbad = 4x\nbig = 99999999999\nb1 = YES\nb2 = no\nb3 = true\n"
        "t1 = 10\nt2 = 5m\nt3 = 2h\nt4 = 1d\nt5 = 1w\nt6 = 10x\nt7 = -1s\nt8 = 1h30m\n"
        "l = a, b\tc ,,d\n"
        "lb = inline:{ {a=b c}, {c=d} }, hash:/x\n");
    CHECK(c.get_int("n") == 42);
    CHECK(c.get_int("neg") == -3);
    CHECK(c.try_get_int("bad").error() == "bad numerical configuration: bad = 4x");
    CHECK(c.try_get_int("big").error() == "bad numerical configuration: big = 99999999999");
    CHECK(c.get_bool("b1"));
    CHECK_FALSE(c.get_bool("b2"));
    CHECK(c.try_get_bool("b3").error() == "bad boolean configuration: b3 = true");
    CHECK(c.get_time("t1") == 10);
    CHECK(c.get_time("t2") == 300);
    CHECK(c.get_time("t3") == 7200);
    CHECK(c.get_time("t4") == 86400);
    CHECK(c.get_time("t5") == 604800);
    CHECK(c.try_get_time("t6").error() == "parameter t6: bad time value or unit: 10x");
    CHECK_FALSE(c.try_get_time("t7").ok());
    CHECK_FALSE(c.try_get_time("t8").ok());
    CHECK(c.get_list("l") == std::vector<std::string>{"a", "b", "c", "d"});
    CHECK(c.get_list("lb") == std::vector<std::string>{"inline:{ {a=b c}, {c=d} }", "hash:/x"});
}

TEST_CASE("time values use the given default unit and Postfix's overflow bounds") {
    CHECK(parse_time_value("3", 'd') == 3 * 86400);
    CHECK(parse_time_value("3", 'h') == 3 * 3600);
    CHECK(parse_time_value("0", 's') == 0);
    CHECK_FALSE(parse_time_value("", 's'));
    CHECK_FALSE(parse_time_value("5", 'x'));
    CHECK_FALSE(parse_time_value("5ss", 's'));
    CHECK_FALSE(parse_time_value("4000w", 's'));
    CHECK(parse_time_value("3000w", 's') == 3000L * 604800);
    CHECK_FALSE(parse_time_value(std::string("5\0s", 3), 's'));
}

TEST_CASE("expansion errors are fatal-worded but available without exiting") {
    Config c = from("myorigin = ${foo\nloop = $loop\n");
    auto r = c.try_get("myorigin");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "truncated macro reference: \"${foo\"; macro processing error");
    CHECK_FALSE(c.try_get("loop").ok());
    CHECK(c.try_expand("$$x").value() == "$x");
}

TEST_CASE("Config collects main.cf warnings: leading whitespace and overriding entries") {
    Config c = from(" bad = 1\nmyorigin = 1\nmyorigin = 2\n");
    REQUIRE(c.warnings().size() == 2);
    CHECK(c.warnings()[0] == "/etc/postern/main.cf: logical line must not start with whitespace: \" bad = 1\"");
    CHECK(c.warnings()[1] == "/etc/postern/main.cf, line 3: overriding earlier entry: myorigin=1");
    CHECK(c.get("myorigin") == "2");
    CHECK_FALSE(c.is_set("bad"));
}

TEST_CASE("Config warns once per duplicate main.cf entry, naming the later line and the value it replaces") {
    // Debian's postconf -c DIR myhostname: one warning for line 2, none for line 1.
    Config c = from("myhostname = a\nmydomain = x\nmyhostname = b\nmyhostname = c\n");
    REQUIRE(c.warnings().size() == 2);
    CHECK(c.warnings()[0] == "/etc/postern/main.cf, line 3: overriding earlier entry: myhostname=a");
    CHECK(c.warnings()[1] == "/etc/postern/main.cf, line 4: overriding earlier entry: myhostname=b");
    CHECK(c.get("myhostname") == "c");
    // Expanding a derived default (mydomain from myhostname) does not warn again.
    CHECK(c.get("mydomain") == "x");
    CHECK(c.get("myorigin") == "c");
    CHECK(c.warnings().size() == 2);
}

TEST_CASE("unused_names flags names neither known nor referenced, as postconf does") {
    Config c = from(
        "myorigin = $my_domain_alias\nmy_domain_alias = example.com\ntypo_paramter = 1\n"
        "smtpd_restriction_classes = tight\ntight = reject\nloop_a = $loop_b\nloop_b = $loop_a\n"
        "relay_destination_concurrency_limit = 5\nother = ${my_cond?{$in_cond}}\nin_cond = 1\n");
    c.add_master_service("relay", "smtp");
    CHECK(c.raw("relay_destination_rate_delay") == "$default_destination_rate_delay");
    CHECK_FALSE(c.raw("relay_time_limit").has_value());
    c.add_master_service("maildrop", "pipe");
    CHECK(c.raw("maildrop_time_limit") == "$command_time_limit");
    CHECK(c.unused_names() == std::vector<std::string>{"typo_paramter", "other"});
    CHECK(c.undefined_names() == std::vector<std::string>{"my_cond"});
}

TEST_CASE("a bad mynetworks_style is an error from try_get") {
    Config c = from("mynetworks_style = bogus\n");
    auto r = c.try_get("mynetworks");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "unknown mynetworks mask style value \"bogus\" in \"bogus\"");
    CHECK(from("mynetworks = 10.0.0.0/8\nmynetworks_style = bogus\n").get("mynetworks") == "10.0.0.0/8");
}

TEST_CASE("master.cf services feed overrides, per-service names and unused checks") {
    auto cf = parse_master_cf(
        "submission inet n - y - - smtpd -o syslog_name=x -o mine=$helper -o helper=1 -o typo_x=2\n"
        "relay unix - - n - - smtp -o from_master=$in_main\n",
        "master.cf");
    REQUIRE(cf.ok());
    Config c = from("in_main = 1\nunused_main = 2\nsmtpd_restriction_classes = $in_restr\n");
    for (const MasterService& s : cf->services) c.add_master_service(s);
    CHECK(c.unused_names() == std::vector<std::string>{"unused_main"});
    CHECK(c.unused_overrides(cf->services[0]) == std::vector<std::string>{"mine", "typo_x"});
    CHECK(c.unused_overrides(cf->services[1]) == std::vector<std::string>{"from_master"});
    c.apply_master_overrides(cf->services[0]);
    CHECK(c.get("syslog_name") == "x");
    CHECK(c.get("mine") == "1");
    CHECK(c.raw("relay_destination_concurrency_limit") == "$default_destination_concurrency_limit");
}

namespace {

// Runs `fn` in a child with stderr captured; returns (exit status, stderr text).
template <class Fn>
std::pair<int, std::string> run_child(Fn fn) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    std::fflush(nullptr);  // the child must not repeat buffered output
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        fn();
        _exit(0);
    }
    close(fds[1]);
    std::string out;
    char buf[512];
    for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

TEST_CASE("fatal getters exit 1 with Postfix's texts") {
    Config c = from("loop = $loop\nbad_int = 4x\nbad_bool = maybe\nbad_syntax = ${oops\n");
    auto [st1, err1] = run_child([&] { (void)c.get("loop"); });
    CHECK(st1 == 1);
    CHECK(err1.find("warning: unreasonable macro call nesting: \"loop\"\n") != std::string::npos);
    CHECK(err1.find("fatal: dictionary mail_dict: macro processing error\n") != std::string::npos);
    auto [st2, err2] = run_child([&] { (void)c.get_int("bad_int"); });
    CHECK(st2 == 1);
    CHECK(err2.find("fatal: bad numerical configuration: bad_int = 4x\n") != std::string::npos);
    auto [st3, err3] = run_child([&] { (void)c.get_bool("bad_bool"); });
    CHECK(err3.find("fatal: bad boolean configuration: bad_bool = maybe\n") != std::string::npos);
    auto [st4, err4] = run_child([&] { (void)c.get_int("bad_syntax"); });
    CHECK(st4 == 1);
    CHECK(err4.find("warning: truncated macro reference: \"${oops\"\n") != std::string::npos);
}

TEST_CASE("derived defaults that refer to each other end instead of looping") {
    // mydomain = $myhostname: while myhostname's default is computed, it is undefined.
    Config a = from("mydomain = $myhostname\n");
    std::string host = a.get("myhostname");
    CHECK_FALSE(host.empty());
    CHECK(a.get("mydomain") == host);
    Config b = from("mynetworks_style = $mynetworks\n");
    CHECK_FALSE(b.try_get("mynetworks").ok());
    Config c = from("myhostname = $mydomain\n");
    CHECK(c.get("myhostname") == "localdomain");
}

TEST_CASE("errors inside derived defaults reach try_get instead of exiting") {
    Config c = from("mydomain = ${oops\nmyorigin = $myhostname\n");
    auto r = c.try_get("myorigin");
    if (std::string(machine_host()).find('.') == std::string::npos) {
        REQUIRE_FALSE(r.ok());
        CHECK(r.error() == "truncated macro reference: \"${oops\"; macro processing error");
    }
    Config d = from("mynetworks_style = bogus\nmyorigin = $mynetworks\n");
    auto r2 = d.try_get("myorigin");
    REQUIRE_FALSE(r2.ok());
    CHECK(r2.error() == "unknown mynetworks mask style value \"bogus\" in \"bogus\"");
    auto [st, err] = run_child([&] { (void)d.get("myorigin"); });
    CHECK(st == 1);
    CHECK(err.find("fatal: unknown mynetworks mask style value \"bogus\" in \"bogus\"\n") != std::string::npos);
}
