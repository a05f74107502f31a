"""mysql_table(5) against a real MariaDB (tests/e2e/mariadb.py starts a private one).

Lookups go through `postmap -q KEY mysql:FILE`; where Debian's postmap can run against
the same server, both run and their stdout and exit status are compared (differential).
The schema is Postfixadmin's (domain, mailbox, alias) plus small tables for multi-row
results, and the test account has only SELECT/EXECUTE, as a mail server's would.
"""
import os
import signal
import subprocess
import time

import pytest

from conftest import postern, postfix
from mariadb import free_port, shared_server

DB = "postern_mail"

SCHEMA = """
CREATE TABLE domain (
  domain VARCHAR(255) NOT NULL PRIMARY KEY, description VARCHAR(255) NOT NULL DEFAULT '',
  transport VARCHAR(255) DEFAULT NULL, backupmx TINYINT(1) NOT NULL DEFAULT 0,
  active TINYINT(1) NOT NULL DEFAULT 1);
CREATE TABLE mailbox (
  username VARCHAR(255) NOT NULL PRIMARY KEY, password VARCHAR(255) NOT NULL,
  name VARCHAR(255) NOT NULL DEFAULT '', maildir VARCHAR(255) NOT NULL,
  quota BIGINT NOT NULL DEFAULT 0, local_part VARCHAR(255) NOT NULL,
  domain VARCHAR(255) NOT NULL, active TINYINT(1) NOT NULL DEFAULT 1);
CREATE TABLE alias (
  address VARCHAR(255) NOT NULL PRIMARY KEY, goto TEXT NOT NULL,
  domain VARCHAR(255) NOT NULL, active TINYINT(1) NOT NULL DEFAULT 1);
CREATE TABLE multi (k VARCHAR(64), v VARCHAR(64), v2 VARCHAR(64));
INSERT INTO domain (domain, transport, active) VALUES
  ('example.com', 'virtual:', 1), ('example.org', 'smtp:[relay.example.org]', 1),
  ('retired.example', 'virtual:', 0);
INSERT INTO mailbox (username, password, name, maildir, local_part, domain, active) VALUES
  ('alice@example.com', '{SHA512-CRYPT}x', 'Alice', 'example.com/alice/', 'alice', 'example.com', 1),
  ('bob@example.com', '{SHA512-CRYPT}y', 'Bob', 'example.com/bob/', 'bob', 'example.com', 1),
  ('gone@example.com', '{SHA512-CRYPT}z', 'Gone', 'example.com/gone/', 'gone', 'example.com', 0);
INSERT INTO alias (address, goto, domain, active) VALUES
  ('postmaster@example.com', 'alice@example.com', 'example.com', 1),
  ('all@example.com', 'alice@example.com,bob@example.com', 'example.com', 1),
  ('old@example.com', 'bob@example.com', 'example.com', 0),
  ('@example.org', 'catchall@example.com', 'example.org', 1);
INSERT INTO multi VALUES ('m', 'one', 'x@a.example'), ('m', 'two', NULL), ('m', 'three', ''),
  ('e', '', NULL), ('n', NULL, NULL);
CREATE PROCEDURE lookup_alias(IN addr VARCHAR(255)) READS SQL DATA SQL SECURITY INVOKER
  SELECT goto FROM alias WHERE address = addr AND active = '1';
CREATE PROCEDURE no_result(IN addr VARCHAR(255)) READS SQL DATA SQL SECURITY INVOKER
  DO addr;
"""

ALIAS_QUERY = "SELECT goto FROM alias WHERE address='%s' AND active='1'"


@pytest.fixture(scope="module")
def db():
    server = shared_server()
    server.create_database(DB, SCHEMA)
    return server


def write_cf(tmp_path, server, name="map.cf", hosts=None, **params):
    path = tmp_path / name
    path.write_text(server.cf_text(DB, hosts=hosts, **params))
    return path


def mysql_spec(tmp_path, server, name="map.cf", hosts=None, **params):
    return f"mysql:{write_cf(tmp_path, server, name, hosts, **params)}"


def postmap(prog, spec, key, conf, flags=(), input=None, timeout=60):
    argv = [prog, "-c", str(conf), *flags, "-q", key, spec]
    return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)


def both(spec, key, conf, flags=(), input=None):
    """Postern's and Debian's postmap on the same table and key: same stdout and exit
    status. Returns Postern's result."""
    mine = postmap(postern("postmap"), spec, key, conf, flags, input)
    ref = postmap(postfix("postmap"), spec, key, conf, flags, input)
    assert (mine.stdout, mine.returncode) == (ref.stdout, ref.returncode), \
        f"postern: {mine!r}\npostfix: {ref!r}"
    return mine


def warnings(stderr):
    return [l for l in stderr.splitlines() if ": warning: " in l]


# ---- lookups ------------------------------------------------------------------------

def test_postfixadmin_alias_lookup(db, tmp_path, confdir):
    spec = mysql_spec(tmp_path, db, query=ALIAS_QUERY)
    assert both(spec, "postmaster@example.com", confdir).stdout == "alice@example.com\n"
    # The stored value comes back as it is, commas and all.
    assert both(spec, "all@example.com", confdir).stdout == "alice@example.com,bob@example.com\n"
    assert both(spec, "old@example.com", confdir).returncode == 1     # inactive
    assert both(spec, "nobody@example.com", confdir).returncode == 1
    # postmap folds keys to lower case before the query.
    assert both(spec, "PostMaster@Example.COM", confdir).stdout == "alice@example.com\n"


def test_postmap_q_dash_reads_keys_and_prints_hits(db, tmp_path, confdir):
    spec = mysql_spec(tmp_path, db, query=ALIAS_QUERY)
    r = both(spec, "-", confdir,
             input="postmaster@example.com\nnobody@example.com\nall@example.com\n")
    assert r.stdout == ("postmaster@example.com\talice@example.com\n"
                        "all@example.com\talice@example.com,bob@example.com\n")


def test_virtual_mailbox_domains_and_maps(db, tmp_path, confdir):
    domains = mysql_spec(tmp_path, db, "d.cf",
                         query="SELECT domain FROM domain WHERE domain='%s' AND active='1'")
    assert both(domains, "example.com", confdir).stdout == "example.com\n"
    assert both(domains, "retired.example", confdir).returncode == 1
    mailboxes = mysql_spec(tmp_path, db, "m.cf",
                           query="SELECT maildir FROM mailbox WHERE local_part='%u' "
                                 "AND domain='%d' AND active='1'")
    assert both(mailboxes, "alice@example.com", confdir).stdout == "example.com/alice/\n"
    assert both(mailboxes, "gone@example.com", confdir).returncode == 1
    assert both(mailboxes, "alice", confdir).returncode == 1          # no domain: no query
    transport = mysql_spec(tmp_path, db, "t.cf",
                           query="SELECT transport FROM domain WHERE domain='%d'")
    assert both(transport, "x@example.org", confdir).stdout == "smtp:[relay.example.org]\n"


def test_keys_the_query_cannot_use_never_reach_the_server(db, tmp_path, confdir):
    # The only host is a closed port: a query attempt would be a temporary error, so a
    # clean "not found" with no warning proves no connection was tried.
    dead = f"inet:127.0.0.1:{free_port()}"
    spec = mysql_spec(tmp_path, db, hosts=dead, domain="example.com, example.org",
                      query="SELECT 1 FROM mailbox WHERE local_part='%u' AND domain='%d' "
                            "AND x='%2'")
    for key in ("alice", "@example.com", "alice@", "alice@example.net", "alice@com", ""):
        r = both(spec, key, confdir)
        assert r.returncode == 1 and r.stdout == "", key
        assert warnings(r.stderr) == [] or key == "", (key, r.stderr)
    r = both(spec, "alice@example.com", confdir)
    assert r.returncode != 0 and "connect to mysql server" in r.stderr


def test_domain_list_restricts_lookups(db, tmp_path, confdir):
    listfile = tmp_path / "domains"
    listfile.write_text("# searched domains\nexample.org\n")
    spec = mysql_spec(tmp_path, db, query=ALIAS_QUERY, domain=f'Example.COM {listfile}')
    assert both(spec, "postmaster@example.com", confdir).stdout == "alice@example.com\n"
    assert both(spec, "@example.org", confdir).returncode == 1  # no local part: skipped
    unrestricted = mysql_spec(tmp_path, db, 'u.cf', query=ALIAS_QUERY)
    assert both(unrestricted, "@example.org", confdir).stdout == "catchall@example.com\n"


def test_multi_row_results_join_with_commas(db, tmp_path, confdir):
    spec = mysql_spec(tmp_path, db, query="SELECT v FROM multi WHERE k='%s'")
    r = both(spec, "m", confdir)
    assert r.stdout == "one,two,three\n"
    two = mysql_spec(tmp_path, db, 'two.cf', query="SELECT v, v2 FROM multi WHERE k='%s'")
    mine = both(two, "m", confdir)
    # NULL columns are skipped silently; empty strings with Postfix's warning.
    assert mine.stdout == "one,x@a.example,two,three\n"
    ref = postmap(postfix("postmap"), two, "m", confdir)
    assert warnings(mine.stderr) == warnings(ref.stderr) != []
    assert both(two, "e", confdir).returncode == 1
    assert both(two, "n", confdir).returncode == 1


def test_result_format(db, tmp_path, confdir):
    q = "SELECT v, v2 FROM multi WHERE k='%s'"
    cases = {
        "smtp:[%s]": "smtp:[one],smtp:[x@a.example],smtp:[two],smtp:[three]\n",
        "<%u|%d>": "<x|a.example>\n",     # values without a domain are skipped for %d
        "%s for %S": "one for m,x@a.example for m,two for m,three for m\n",
        "100%% %s": "100% one,100% x@a.example,100% two,100% three\n",
    }
    for i, (fmt, want) in enumerate(cases.items()):
        spec = mysql_spec(tmp_path, db, f'r{i}.cf', query=q, result_format=fmt)
        assert both(spec, "m", confdir).stdout == want, fmt
    keyparts = mysql_spec(tmp_path, db, "k.cf", query=ALIAS_QUERY,
                          result_format="%s (%U at %D, %1)")
    assert both(keyparts, "postmaster@example.com", confdir).stdout == \
        "alice@example.com (postmaster at example.com, com)\n"


def test_expansion_limit_turns_too_many_values_into_an_error(db, tmp_path, confdir):
    q = "SELECT v FROM multi WHERE k='%s'"
    spec = mysql_spec(tmp_path, db, query=q, expansion_limit=2)
    r = both(spec, "m", confdir)
    assert r.returncode != 0 and r.stdout == ""
    assert "Expansion limit exceeded for key: 'm'" in r.stderr
    ok = mysql_spec(tmp_path, db, 'ok.cf', query=q, expansion_limit=3)
    assert both(ok, "m", confdir).stdout == "one,two,three\n"


def test_legacy_select_field_form(db, tmp_path, confdir):
    spec = mysql_spec(tmp_path, db, table="alias", select_field="goto",
                      where_field="address", additional_conditions="AND active = '1'")
    assert both(spec, "postmaster@example.com", confdir).stdout == "alice@example.com\n"
    assert both(spec, "old@example.com", confdir).returncode == 1


def test_stored_procedure_and_require_result_set(db, tmp_path, confdir):
    spec = mysql_spec(tmp_path, db, query="CALL lookup_alias('%s')")
    assert both(spec, "postmaster@example.com", confdir).stdout == "alice@example.com\n"
    assert both(spec, "nobody@example.com", confdir).returncode == 1
    strict = mysql_spec(tmp_path, db, 's.cf', query="CALL no_result('%s')")
    r = both(strict, "x", confdir)
    assert r.returncode != 0 and "no result set" in r.stderr
    lax = mysql_spec(tmp_path, db, 'l.cf', query="CALL no_result('%s')", require_result_set='no')
    r = both(lax, "x", confdir)
    assert r.returncode == 1 and r.stderr == ""


def test_tcp_hosts_forms(db, tmp_path, confdir):
    for i, hosts in enumerate((f"inet:127.0.0.1:{db.port}", f"127.0.0.1:{db.port}")):
        spec = mysql_spec(tmp_path, db, f'h{i}.cf', hosts=hosts, query=ALIAS_QUERY)
        assert both(spec, "postmaster@example.com", confdir).stdout == "alice@example.com\n"


def test_bad_configuration_is_a_clear_error(db, tmp_path, confdir):
    nodb = tmp_path / "nodb.cf"
    nodb.write_text(f"hosts = unix:{db.socket}\nquery = {ALIAS_QUERY}\n")
    r = postmap(postern("postmap"), f"mysql:{nodb}", "x", confdir)
    ref = postmap(postfix("postmap"), f"mysql:{nodb}", "x", confdir)
    assert r.returncode == ref.returncode != 0
    assert f"{nodb}: bad string length 0 < 1: dbname = " in r.stderr
    badq = mysql_spec(tmp_path, db, 'q.cf', query='SELECT 1 WHERE x=%x')
    r = postmap(postern("postmap"), badq, "x", confdir)
    assert r.returncode != 0 and "Invalid query template: SELECT 1 WHERE x=%x" in r.stderr
    missing = postmap(postern("postmap"), f"mysql:{tmp_path}/none.cf", "x", confdir)
    assert missing.returncode != 0
    assert f"open {tmp_path}/none.cf: No such file or directory" in missing.stderr


# ---- SQL injection ------------------------------------------------------------------

INJECTIONS = [
    "' OR '1'='1",
    "x' OR 1=1 -- ",
    "x' UNION SELECT password FROM mailbox -- ",
    "postmaster@example.com' OR 'a'='a",
    "\\' OR 1=1 -- ",
    "x\\",
    "x'; DROP TABLE victim; --",
    "x\"; DROP TABLE victim; --",
    "postmaster@example.com'#",
]


def test_sql_injection_finds_nothing_and_runs_no_other_sql(db, tmp_path, confdir):
    # An account that could do damage, so a successful injection would show.
    db.sql(f"CREATE TABLE IF NOT EXISTS {DB}.victim (k INT); "
           f"GRANT ALL ON `{DB}`.* TO '{db.user}'@'localhost';")
    try:
        spec = mysql_spec(tmp_path, db, query=ALIAS_QUERY)
        log = db.general_log(True)
        start = log.stat().st_size if log.exists() else 0
        for key in INJECTIONS:
            r = both(spec, key, confdir)
            assert r.returncode == 1 and r.stdout == "", key
        # %u/%d pieces are escaped too.
        ud = mysql_spec(tmp_path, db, "ud.cf", query="SELECT maildir FROM mailbox "
                                                     "WHERE local_part='%u' AND domain='%d'")
        assert both(ud, "x' OR '1'='1@example.com", confdir).returncode == 1
        assert both(ud, "alice@x' OR '1'='1", confdir).returncode == 1
        db.general_log(False)
        with open(log, "rb") as f:
            f.seek(start)
            queries = [l for l in f.read().decode(errors="replace").splitlines()
                       if " Query\t" in l and "alias WHERE" in l]
        # One SELECT per lookup per program, nothing else.
        assert len(queries) == 2 * len(INJECTIONS)
        assert db.sql(f"SHOW TABLES IN {DB} LIKE 'victim'") == [["victim"]]
        assert db.sql(f"SELECT COUNT(*) FROM {DB}.alias") == [["4"]]
    finally:
        db.general_log(False)
        db.sql(f"REVOKE ALL ON `{DB}`.* FROM '{db.user}'@'localhost'; "
               f"GRANT SELECT, EXECUTE ON `{DB}`.* TO '{db.user}'@'localhost';")


# ---- failover, outages, restarts ----------------------------------------------------

def test_hosts_failover_to_the_live_server(db, tmp_path, confdir):
    # UNIX sockets are tried before TCP, so the dead socket is always tried first.
    hosts = f"unix:{tmp_path}/nothing.sock inet:127.0.0.1:{db.port}"
    spec = mysql_spec(tmp_path, db, hosts=hosts, query=ALIAS_QUERY)
    r = both(spec, "postmaster@example.com", confdir)
    assert r.stdout == "alice@example.com\n"
    assert f"connect to mysql server unix:{tmp_path}/nothing.sock:" in r.stderr
    # Two TCP hosts, one dead: random order, always the answer.
    hosts = f"inet:127.0.0.1:{free_port()} inet:127.0.0.1:{db.port}"
    spec = mysql_spec(tmp_path, db, 'tcp.cf', hosts=hosts, query=ALIAS_QUERY)
    for _ in range(4):
        assert both(spec, "postmaster@example.com", confdir).stdout == "alice@example.com\n"


def test_unreachable_database_is_an_error_not_a_miss(db, tmp_path, confdir):
    spec = mysql_spec(tmp_path, db, hosts=f'inet:127.0.0.1:{free_port()}', query=ALIAS_QUERY)
    r = both(spec, "postmaster@example.com", confdir)
    assert r.returncode == 1 and r.stdout == ""
    assert "connect to mysql server inet:127.0.0.1:" in r.stderr
    assert "fatal:" in r.stderr


def wait_for_client(server, user, timeout=10):
    """Waits until `user` holds a connection to the server (the lookup happened)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = server.sql("SELECT COUNT(*) FROM information_schema.processlist "
                          f"WHERE user = '{server.user}'")
        if rows and rows[0][0] != "0":
            return
        time.sleep(0.05)
    raise AssertionError("the lookup never connected")


def test_server_stop_and_restart(db, tmp_path, confdir):
    spec = mysql_spec(tmp_path, db, query=ALIAS_QUERY)
    try:
        # A long-lived client: one postmap reading keys from a pipe. Its connection
        # goes stale when the server restarts; the next lookup must reconnect.
        p = subprocess.Popen([postern("postmap"), "-c", str(confdir), "-q", "-", spec],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        p.stdin.write("postmaster@example.com\n")
        p.stdin.flush()
        wait_for_client(db, db.user)
        db.restart()
        p.stdin.write("all@example.com\n")
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert out == ("postmaster@example.com\talice@example.com\n"
                       "all@example.com\talice@example.com,bob@example.com\n")

        db.stop()
        mine = postmap(postern("postmap"), spec, "postmaster@example.com", confdir)
        ref = postmap(postfix("postmap"), spec, "postmaster@example.com", confdir)
        assert (mine.stdout, mine.returncode) == (ref.stdout, ref.returncode) == ("", 1)
        assert warnings(mine.stderr) == warnings(ref.stderr)
    finally:
        db.start()
    assert both(spec, "postmaster@example.com", confdir).stdout == "alice@example.com\n"


def test_hung_server_times_out(db, tmp_path, confdir):
    spec = mysql_spec(tmp_path, db, query=ALIAS_QUERY, connect_timeout=2, query_timeout=2)
    os.kill(db.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = postmap(postern("postmap"), spec, "postmaster@example.com", confdir, timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        os.kill(db.proc.pid, signal.SIGCONT)
    assert r.returncode == 1 and r.stdout == ""
    assert elapsed < 15, elapsed
    assert both(spec, "postmaster@example.com", confdir).stdout == "alice@example.com\n"


def test_one_connection_serves_many_lookups(db, tmp_path, confdir):
    spec = mysql_spec(tmp_path, db, query=ALIAS_QUERY)
    log = db.general_log(True)
    start = log.stat().st_size if log.exists() else 0
    try:
        keys = "".join(f"k{i}@example.com\n" for i in range(20)) + "postmaster@example.com\n"
        r = subprocess.run([postern("postmap"), "-c", str(confdir), "-q", "-", spec],
                           input=keys, capture_output=True, text=True, timeout=60)
    finally:
        db.general_log(False)
    assert r.stdout == "postmaster@example.com\talice@example.com\n"
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    assert text.count(f"Connect\t{db.user}@localhost") == 1
    assert text.count("FROM alias WHERE") == 21
