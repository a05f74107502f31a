// mysql_table(5) logic that needs no server: '%' templates, escaping of substituted
// pieces, result_format, the domain list, .cf parsing and the choice of host.
// tests/e2e/test_mysql_table.py covers the same table against a real MariaDB.
#include <catch2/catch.hpp>
#include <mysql.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

#include "util/table/mysql_config.h"
#include "util/table/sql_common.h"
#include "util/table/table.h"

using namespace postern;
using namespace postern::table;

namespace {

// The escaping libmariadb applies without a connection (same rules as
// mysql_real_escape_string on a latin1/utf8 connection).
void mysql_quote(std::string_view piece, std::string& out) {
    static const bool initialised = mysql_library_init(0, nullptr, nullptr) == 0;
    REQUIRE(initialised);
    std::string buf(2 * piece.size() + 1, '\0');
    unsigned long n = mysql_escape_string(buf.data(), piece.data(), piece.size());
    out.append(buf.data(), n);
}

// Marks each substituted piece so tests can see what was quoted.
void bracket_quote(std::string_view piece, std::string& out) {
    out += '[';
    out += piece;
    out += ']';
}

sql::TemplateContext context(std::string_view query, std::string_view result = "%s") {
    sql::TemplateContext ctx("mysql:/test.cf");
    REQUIRE(ctx.add(query, true, "/test.cf").ok());
    REQUIRE(ctx.add(result, false, "/test.cf").ok());
    return ctx;
}

std::string expand_q(const sql::TemplateContext& ctx, std::string_view query,
                     std::string_view key) {
    std::string out;
    if (!ctx.expand_query(query, key, bracket_quote, out)) return "<suppressed>";
    return out;
}

mysql::MysqlConfig parse_ok(const std::string& text) {
    auto c = mysql::parse_mysql_config(text, "/etc/postern/m.cf");
    INFO((c.ok() ? std::string() : c.error()));
    REQUIRE(c.ok());
    return c.value();
}

std::string parse_error(const std::string& text) {
    auto c = mysql::parse_mysql_config(text, "/etc/postern/m.cf");
    REQUIRE_FALSE(c.ok());
    return c.error();
}

}  // namespace

TEST_CASE("mysql query template substitutes %s %u %d %S %U %D and %%") {
    const char* q = "s=%s u=%u d=%d S=%S U=%U D=%D p=%%";
    auto ctx = context(q);
    CHECK(expand_q(ctx, q, "john.doe@mail.example.com") ==
          "s=[john.doe@mail.example.com] u=[john.doe] d=[mail.example.com] "
          "S=[john.doe@mail.example.com] U=[john.doe] D=[mail.example.com] p=%");
}

TEST_CASE("mysql query template numbers domain labels from the right") {
    const char* q = "%1|%2|%3";
    auto ctx = context(q);
    CHECK(ctx.domain_labels_needed() == 3);
    CHECK(expand_q(ctx, q, "u@mail.example.com") == "[com]|[example]|[mail]");
    CHECK(expand_q(ctx, q, "u@a.mail.example.com") == "[com]|[example]|[mail]");
    // Too few labels, or empty labels that do not count: no query at all.
    CHECK(expand_q(ctx, q, "u@example.com") == "<suppressed>");
    CHECK(expand_q(ctx, q, "u@.example.com") == "<suppressed>");
    CHECK(expand_q(ctx, q, "u@mail..com") == "<suppressed>");
    CHECK(expand_q(ctx, q, "mail.example.com") == "<suppressed>");
}

TEST_CASE("mysql %d query is not sent for keys without a domain") {
    const char* q = "SELECT 1 FROM domain WHERE domain='%d'";
    auto ctx = context(q);
    CHECK(expand_q(ctx, q, "user@example.com") == "SELECT 1 FROM domain WHERE domain='[example.com]'");
    CHECK(expand_q(ctx, q, "example.com") == "<suppressed>");
    CHECK(expand_q(ctx, q, "user@") == "<suppressed>");
    // The domain part starts after the last '@'.
    CHECK(expand_q(ctx, q, "a@b@example.com") == "SELECT 1 FROM domain WHERE domain='[example.com]'");
}

TEST_CASE("mysql %u query uses the whole key without '@' and skips an empty local part") {
    const char* q = "%u";
    auto ctx = context(q);
    CHECK(expand_q(ctx, q, "alice@example.com") == "[alice]");
    CHECK(expand_q(ctx, q, "alice") == "[alice]");
    CHECK(expand_q(ctx, q, "alice@") == "[alice]");
    CHECK(expand_q(ctx, q, "@example.com") == "<suppressed>");
}

TEST_CASE("mysql result_format's %D suppresses queries for domain-less keys") {
    auto ctx = context("SELECT x FROM t WHERE k='%s'", "%s@%D");
    CHECK(expand_q(ctx, "SELECT x FROM t WHERE k='%s'", "nodomain") == "<suppressed>");
    CHECK(expand_q(ctx, "SELECT x FROM t WHERE k='%s'", "a@b.c") == "SELECT x FROM t WHERE k='[a@b.c]'");
}

TEST_CASE("mysql empty key is never queried") {
    auto ctx = context("%s");
    CHECK(expand_q(ctx, "%s", "") == "<suppressed>");
}

TEST_CASE("mysql templates reject unknown and dangling % sequences") {
    sql::TemplateContext ctx("mysql:/x.cf");
    auto bad = ctx.add("SELECT a FROM b WHERE c='%x'", true, "/x.cf");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error() == "db_common_parse: /x.cf: Invalid query template: SELECT a FROM b WHERE c='%x'");
    auto trailing = ctx.add("abc%", false, "/x.cf");
    REQUIRE_FALSE(trailing.ok());
    CHECK(trailing.error() == "db_common_parse: /x.cf: Invalid result template: abc%");
    CHECK(ctx.add("100%% %s", true, "/x.cf").ok());
}

TEST_CASE("mysql escaping neutralises quotes, backslashes, NULs and control bytes") {
    const char* q = "SELECT goto FROM alias WHERE address='%s'";
    auto ctx = context(q);
    std::string out;
    REQUIRE(ctx.expand_query(q, "' OR '1'='1", mysql_quote, out));
    CHECK(out == "SELECT goto FROM alias WHERE address='\\' OR \\'1\\'=\\'1'");
    REQUIRE(ctx.expand_query(q, std::string_view("a\\b\0c\n\r\x1a\"", 9), mysql_quote, out));
    CHECK(out == "SELECT goto FROM alias WHERE address='a\\\\b\\0c\\n\\r\\Z\\\"'");
    // Every substituted piece is escaped, not just %s.
    const char* q2 = "'%u' '%d' '%1'";
    auto ctx2 = context(q2);
    REQUIRE(ctx2.expand_query(q2, "o'neil@ex'ample.com", mysql_quote, out));
    CHECK(out == "'o\\'neil' 'ex\\'ample.com' 'com'");
}

TEST_CASE("mysql result_format joins values with commas and skips what it cannot use") {
    auto ctx = context("%s", "<%d|%u|%s>");
    std::string out;
    CHECK_FALSE(ctx.expand_result("<%d|%u|%s>", "one", "k", out));
    CHECK(ctx.expand_result("<%d|%u|%s>", "a@x.org", "k", out));
    CHECK_FALSE(ctx.expand_result("<%d|%u|%s>", "", "k", out));
    CHECK(ctx.expand_result("<%d|%u|%s>", "b@y.org", "k", out));
    CHECK(out == "<x.org|a|a@x.org>,<y.org|b|b@y.org>");
}

TEST_CASE("mysql result_format %S %U %D %1 expand the lookup key") {
    auto ctx = context("%s", "%s via %U at %D (%1) for %S, 100%%");
    std::string out;
    REQUIRE(ctx.expand_result("%s via %U at %D (%1) for %S, 100%%", "smtp:[relay]",
                              "bob@example.org", out));
    CHECK(out == "smtp:[relay] via bob at example.org (org) for bob@example.org, 100%");
}

TEST_CASE("mysql result values are not quoted") {
    auto ctx = context("%s", "smtp:[%s]");
    std::string out;
    REQUIRE(ctx.expand_result("smtp:[%s]", "it's\\", "k", out));
    CHECK(out == "smtp:[it's\\]");
}

TEST_CASE("mysql legacy parameters build Postfix's SELECT") {
    CHECK(sql::legacy_query("forw_addr", "mxaliases", "alias", "AND status = 'paid'") ==
          "SELECT forw_addr FROM mxaliases WHERE alias='%s' AND status = 'paid'");
    auto c = parse_ok("dbname = d\ntable = t\nselect_field = f\nwhere_field = w\n");
    CHECK(c.query == "SELECT f FROM t WHERE w='%s' ");
    // An empty query falls back to the legacy form too.
    CHECK(parse_error("dbname = d\nquery =\n") ==
          "/etc/postern/m.cf: bad string length 0 < 1: table = ");
    CHECK(parse_error("dbname = d\ntable = t\nwhere_field = w\n") ==
          "/etc/postern/m.cf: bad string length 0 < 1: select_field = ");
    // query wins over the legacy parameters.
    CHECK(parse_ok("dbname = d\nquery = SELECT 1\ntable = t\n").query == "SELECT 1");
}

TEST_CASE("mysql .cf parsing applies Postfix's defaults") {
    auto c = parse_ok("dbname = mail\nquery = SELECT 1\n");
    CHECK(c.user.empty());
    CHECK(c.password.empty());
    CHECK(c.result_format == "%s");
    CHECK(c.expansion_limit == 0);
    CHECK(c.option_group == "client");
    CHECK_FALSE(c.option_file.has_value());
    CHECK(c.require_result_set);
    CHECK(c.tls_verify_cert == -1);
    REQUIRE(c.hosts.size() == 1);
    CHECK(c.hosts[0].spec == "localhost");
    CHECK(c.hosts[0].unix_socket);
    CHECK(c.hosts[0].default_socket);
    CHECK(c.warnings.empty());
}

TEST_CASE("mysql .cf parsing reads every documented parameter") {
    auto c = parse_ok(
        "hosts = unix:/run/db.sock, inet:db1:3307 db2 127.0.0.1:mysql\n"
        "user = mail\npassword = se cret\ndbname = mail\n"
        "query = SELECT goto FROM alias\n  WHERE address='%s'\n"
        "result_format = smtp:[%s]\ndomain = example.com\nexpansion_limit = 1\n"
        "option_file = /etc/my.cnf\noption_group =\nrequire_result_set = no\n"
        "tls_CAfile = /ca.pem\ntls_verify_cert = YES\nconnect_timeout = 3\nquery_timeout = 4\n");
    REQUIRE(c.hosts.size() == 4);
    CHECK((c.hosts[0].unix_socket && c.hosts[0].name == "/run/db.sock"));
    CHECK((!c.hosts[1].unix_socket && c.hosts[1].name == "db1" && c.hosts[1].port == 3307));
    CHECK(c.hosts[1].spec == "inet:db1:3307");
    CHECK((!c.hosts[2].unix_socket && c.hosts[2].name == "db2" && c.hosts[2].port == 0));
    CHECK((c.hosts[3].name == "127.0.0.1" && c.hosts[3].port == 3306));
    CHECK(c.password == "se cret");
    // The continuation line is appended as main.cf's reader does.
    CHECK(c.query.rfind("SELECT goto FROM alias", 0) == 0);
    CHECK(c.query.find("WHERE address='%s'") != std::string::npos);
    CHECK(c.result_format == "smtp:[%s]");
    CHECK(c.expansion_limit == 1);
    CHECK(c.option_file == "/etc/my.cnf");
    CHECK(c.option_group.empty());
    CHECK_FALSE(c.require_result_set);
    CHECK(c.tls_ca_file == "/ca.pem");
    CHECK(c.tls_verify_cert == 1);
    CHECK(c.connect_timeout == 3);
    CHECK(c.query_timeout == 4);
}

TEST_CASE("mysql .cf errors read as Postfix's") {
    CHECK(parse_error("query = SELECT 1\n") ==
          "/etc/postern/m.cf: bad string length 0 < 1: dbname = ");
    CHECK(parse_error("dbname = d\nquery = x\nresult_format =\n") ==
          "/etc/postern/m.cf: bad string length 0 < 1: result_format = ");
    CHECK(parse_error("dbname = d\nquery = x\nrequire_result_set = maybe\n") ==
          "/etc/postern/m.cf: bad boolean configuration: require_result_set = maybe");
    CHECK(parse_error("dbname = d\nquery = x\nexpansion_limit = 5x\n") ==
          "/etc/postern/m.cf: bad numerical configuration: expansion_limit = 5x");
    CHECK(parse_error("dbname = d\nquery = x\nhosts = inet:db:99999\n") == "bad port number: 99999");
    CHECK(parse_error("dbname = d\nquery = x\nhosts = db:nosuchservice\n") ==
          "unknown service: nosuchservice/tcp");
    CHECK(parse_error("dbname = d\nthis line has no equals\n") ==
          "/etc/postern/m.cf, line 2: missing '=' after attribute name: \"this line has no equals\"");
    // Postfix accepts a negative limit and treats it as "no limit".
    CHECK(parse_ok("dbname = d\nquery = x\nexpansion_limit = -1\n").expansion_limit == -1);
}

TEST_CASE("mysql .cf duplicate entries: the last wins, with a warning") {
    auto c = parse_ok("dbname = d\nquery = x\nuser = a\nuser = b\n");
    CHECK(c.user == "b");
    REQUIRE(c.warnings.size() == 1);
    CHECK(c.warnings[0] == "/etc/postern/m.cf, line 4: overriding earlier entry: user=a");
    CHECK(parse_ok("dbname = d\nquery = x\nuser = a\nuser = a\n").warnings.empty());
}

TEST_CASE("mysql hosts: localhost means the default UNIX socket") {
    for (const char* s : {"localhost", "inet:localhost", "LOCALHOST:3306"}) {
        auto h = mysql::parse_host(s);
        REQUIRE(h.ok());
        CHECK(h->unix_socket);
        CHECK(h->default_socket);
    }
    auto ip = mysql::parse_host("127.0.0.1");
    REQUIRE(ip.ok());
    CHECK_FALSE(ip->unix_socket);
}

TEST_CASE("mysql domain list matches exact names case-insensitively, first match wins") {
    auto f = sql::DomainFilter::parse("Example.com, !bad.example.org bad.example.org, example.org",
                                      "/m.cf");
    REQUIRE(f.ok());
    std::string err;
    using V = sql::DomainFilter::Verdict;
    CHECK(f->check("a@example.com", err) == V::Lookup);
    CHECK(f->check("a@EXAMPLE.COM", err) == V::Lookup);
    CHECK(f->check("a@sub.example.com", err) == V::Skip);  // no parent-domain match
    CHECK(f->check("a@bad.example.org", err) == V::Skip);  // negation listed first
    CHECK(f->check("a@example.org", err) == V::Lookup);
    CHECK(f->check("a@other.net", err) == V::Skip);
    // Only user@domain keys with a local part reach the database.
    CHECK(f->check("example.com", err) == V::Skip);
    CHECK(f->check("@example.com", err) == V::Skip);
    auto none = sql::DomainFilter::parse("", "/m.cf");
    REQUIRE(none.ok());
    CHECK(none->check("anything", err) == V::Lookup);
}

TEST_CASE("mysql domain list reads /files and type:table entries") {
    char dir[] = "/tmp/postern-mysql-test-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    std::string file = std::string(dir) + "/domains";
    std::ofstream(file) << "# comment\nfile.example, other.example\n\n!neg.example\n";
    auto f = sql::DomainFilter::parse("!" + file + " file.example inline:{ table.example=1 }",
                                      "/m.cf");
    REQUIRE(f.ok());
    std::string err;
    using V = sql::DomainFilter::Verdict;
    CHECK(f->check("a@file.example", err) == V::Skip);   // "!file" negates its entries
    CHECK(f->check("a@neg.example", err) == V::Lookup);  // ... and "!!" cancels out
    CHECK(f->check("a@Table.Example", err) == V::Lookup);
    CHECK(f->check("a@nowhere.example", err) == V::Skip);
    auto missing = sql::DomainFilter::parse(std::string(dir) + "/nonexistent", "/m.cf");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().find("No such file or directory") != std::string::npos);
    std::remove(file.c_str());
    rmdir(dir);
}

TEST_CASE("mysql host choice prefers UNIX sockets, then TCP, and pauses dead hosts") {
    std::vector<mysql::HostSpec> hosts;
    for (const char* s : {"inet:db1:3306", "unix:/run/a.sock", "inet:db2:3306"})
        hosts.push_back(mysql::parse_host(s).value());
    long now = 1000;
    mysql::HostPool pool(hosts, [&] { return now; });
    CHECK_FALSE(pool.active().has_value());
    auto first = pool.next_candidate();
    REQUIRE(first);
    CHECK(*first == 1);
    pool.mark_down(1);
    std::set<size_t> seen;
    for (int i = 0; i < 64; ++i) seen.insert(pool.next_candidate().value());
    CHECK(seen == std::set<size_t>{0, 2});  // random order among equals
    pool.mark_down(0);
    pool.mark_down(2);
    CHECK_FALSE(pool.next_candidate().has_value());
    now += mysql::kRetryIntervalSeconds;  // still inside the pause
    CHECK_FALSE(pool.next_candidate().has_value());
    now += 1;
    CHECK(pool.next_candidate() == std::optional<size_t>(1));
    pool.mark_active(2);
    CHECK(pool.active() == std::optional<size_t>(2));
    pool.mark_closed(2);  // a stale connection: retried at once, no pause
    CHECK_FALSE(pool.active().has_value());
    now = 0;  // clock irrelevant for untried hosts
    CHECK(pool.next_candidate() == std::optional<size_t>(2));
}

TEST_CASE("mysql UTF-8 check rejects malformed keys") {
    CHECK(sql::valid_utf8("plain@example.com"));
    CHECK(sql::valid_utf8("j\xC3\xBCrgen@b\xC3\xBC" "cher.de"));
    CHECK(sql::valid_utf8("\xF0\x9F\x93\xA7"));
    CHECK_FALSE(sql::valid_utf8("a\xFF" "b"));
    CHECK_FALSE(sql::valid_utf8("\xC0\xAF"));          // overlong '/'
    CHECK_FALSE(sql::valid_utf8("\xED\xA0\x80"));      // surrogate
    CHECK_FALSE(sql::valid_utf8("\xE2\x82"));          // truncated
    CHECK_FALSE(sql::valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
}

TEST_CASE("mysql table open errors name the file") {
    auto missing = open_table("mysql:/nonexistent/dir/m.cf");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error() == "open /nonexistent/dir/m.cf: No such file or directory");
    auto rw = open_table("mysql:/etc/hostname", kCreate);
    REQUIRE_FALSE(rw.ok());
    CHECK(rw.error() == "mysql:/etc/hostname map requires O_RDONLY access mode");
    auto relname = open_table("mysql:mysqlsource");
    REQUIRE_FALSE(relname.ok());
    CHECK(relname.error().find("mysqlsource_hosts") != std::string::npos);
}

TEST_CASE("mysql table with no reachable server fails the lookup instead of missing") {
    char path[] = "/tmp/postern-mysql-cf-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    // Port 1 on loopback refuses at once; nothing listens there.
    std::ofstream(path) << "hosts = inet:127.0.0.1:1\ndbname = mail\n"
                           "query = SELECT goto FROM alias WHERE address='%s'\n"
                           "domain = example.com\n";
    auto t = open_table(std::string("mysql:") + path);
    REQUIRE(t.ok());
    auto r = (*t)->lookup("user@example.com");
    CHECK(r.status == LookupResult::Status::Error);
    CHECK(r.error.find("127.0.0.1") != std::string::npos);
    // Keys the domain list excludes never need the server, so they are plain misses.
    CHECK((*t)->lookup("user@elsewhere.com").status == LookupResult::Status::NotFound);
    CHECK((*t)->lookup("example.com").status == LookupResult::Status::NotFound);
    std::remove(path);
}
