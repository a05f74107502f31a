"""postconf, differentially: the same config directory through Debian's Postfix 3.7
postconf and Postern's, comparing stdout byte for byte, stderr line by line (after the
program-name prefix) and exit codes; for edits, the resulting files byte for byte.
"""
import re
import shutil
from pathlib import Path

import pytest

from conftest import postern, postfix, run

MASTER_DIST = Path("/usr/share/postfix/master.cf.dist")

# The main.cf of a classic Postfix + Dovecot + MySQL guide: TLS, Dovecot SASL, MySQL
# virtual domains, restriction lists over continuation lines, $name references, comments.
MAIN_CF = """\
# See /usr/share/postfix/main.cf.dist for a commented, more complete version

smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
biff = no

# appending .domain is the MUA's job.
append_dot_mydomain = no

compatibility_level = 3.6

# TLS parameters
smtpd_tls_cert_file=/etc/letsencrypt/live/mail.example.com/fullchain.pem
smtpd_tls_key_file=/etc/letsencrypt/live/mail.example.com/privkey.pem
smtpd_tls_security_level=may
smtpd_tls_auth_only = yes
smtp_tls_CApath=/etc/ssl/certs
smtp_tls_security_level=may

# SASL through Dovecot
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sasl_auth_enable = yes

smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination
smtpd_recipient_restrictions =
        permit_sasl_authenticated,
        permit_mynetworks,
        reject_unauth_destination,
        # SPF through a policy daemon
        reject_non_fqdn_recipient,
        check_policy_service unix:private/policyd-spf
mua_client_restrictions = permit_sasl_authenticated, reject
myhostname = mail.example.com
mydomain = example.com
alias_maps = hash:/etc/aliases
alias_database = hash:/etc/aliases
myorigin = $mydomain
mydestination = $myhostname, localhost.$mydomain, localhost
relayhost =
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128
mailbox_size_limit = 0
recipient_delimiter = +
inet_interfaces = all
inet_protocols = all

# Virtual domains, users, and aliases
virtual_transport = lmtp:unix:private/dovecot-lmtp
virtual_mailbox_domains = mysql:@DIR@/mysql-virtual-mailbox-domains.cf
virtual_mailbox_maps = proxy:mysql:@DIR@/mysql-virtual-mailbox-maps.cf
virtual_alias_maps = mysql:@DIR@/mysql-virtual-alias-maps.cf,
        mysql:@DIR@/mysql-virtual-email2email.cf
message_size_limit = 52428800
local_recipient_maps = $alias_maps
dovecot_destination_recipient_limit = 1
my_unused_list = $mydomain, ${myhostname}
"""

MYSQL_CF = """\
user = mailuser
password = secret
hosts = 127.0.0.1
dbname = mailserver
query = SELECT 1 FROM virtual_domains WHERE name='%s'
"""

MASTER_EXTRA = """\
submission inet n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o { smtpd_tls_auth_only = yes }
  -o smtpd_reject_unlisted_recipient=no
  -o smtpd_client_restrictions=$mua_client_restrictions
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
  -o milter_macro_daemon_name=ORIGINATING
  -o submission_unused_thing=1
dovecot   unix  -       n       n       -       -       pipe
  flags=DRhu user=vmail:vmail argv=/usr/lib/dovecot/deliver -f ${sender} -d ${recipient}
"""


def make_confdir(path):
    path.mkdir()
    (path / "main.cf").write_text(MAIN_CF.replace("@DIR@", str(path)))
    (path / "master.cf").write_text(MASTER_DIST.read_text() + MASTER_EXTRA)
    for name in ("mailbox-domains", "mailbox-maps", "alias-maps"):
        (path / f"mysql-virtual-{name}.cf").write_text(MYSQL_CF)
    (path / "mysql-virtual-email2email.cf").write_text(MYSQL_CF + "bogus_setting = 1\n")
    return path


@pytest.fixture
def dirs(tmp_path):
    """Two identical config directories: one for Postfix, one for Postern."""
    return make_confdir(tmp_path / "postfix"), make_confdir(tmp_path / "postern")


PREFIX = re.compile(r"^\S*postconf: ", re.M)


def stderr_lines(text, confdir):
    """Stderr without the program-name prefix, config dir generic, sorted: Postfix reports
    unused parameters in hash-table order."""
    text = PREFIX.sub("postconf: ", text).replace(str(confdir), "DIR")
    text = re.sub(r"usage: \S*postconf ", "usage: postconf ", text)
    return sorted(text.splitlines())


def both(dirs, *args):
    pf = run([postfix("postconf"), "-c", str(dirs[0]), *args])
    pt = run([postern("postconf"), "-c", str(dirs[1]), *args])
    return pf, pt


def assert_same_files(dirs):
    for name in ("main.cf", "master.cf"):
        ours = (dirs[1] / name).read_bytes().replace(bytes(dirs[1]), b"DIR")
        theirs = (dirs[0] / name).read_bytes().replace(bytes(dirs[0]), b"DIR")
        assert ours == theirs, name


def assert_same(dirs, *args):
    pf, pt = both(dirs, *args)
    assert pt.stdout.replace(str(dirs[1]), "DIR") == pf.stdout.replace(str(dirs[0]), "DIR")
    assert stderr_lines(pt.stderr, dirs[1]) == stderr_lines(pf.stderr, dirs[0])
    assert pt.returncode == pf.returncode
    return pf, pt


@pytest.mark.parametrize("args", [
    ["-n"],
    ["-nf"],
    ["-h", "-n"],
    ["myhostname", "mydomain", "smtpd_recipient_restrictions", "relayhost"],
    ["-h", "myorigin", "mydestination"],
    ["-x", "myorigin", "mydestination", "mua_client_restrictions", "local_recipient_maps"],
    ["-x", "-h", "smtpd_relay_restrictions", "virtual_alias_maps"],
    ["-f", "smtpd_recipient_restrictions", "mynetworks"],
    ["-n", "-H"],
    ["no_such_parameter", "myhostname"],
    ["dovecot_destination_recipient_limit", "relay_destination_concurrency_limit"],
    ["-C", "user"],
    ["-M"],
    ["-Mf"],
    ["-M", "smtp/inet"],
    ["-M", "smtp"],
    ["-Mf", "submission/inet", "dovecot"],
    ["-M", "nosuch/unix"],
    ["-F"],
    ["-F", "submission/inet", "relay/unix/command", "*/*/maxproc"],
    ["-Fh", "smtp/inet/command"],
    ["-P"],
    ["-P", "submission/inet/syslog_name", "*/*/milter_macro_daemon_name"],
    ["-Px", "submission"],
    ["-Mfx"],
    ["-Fx", "relay/unix/command"],
    ["-Ph", "relay/unix"],
    ["-PH"],
    ["-FH", "smtp/inet"],
    ["-l"],
    ["-a"],
    ["-A"],
])
def test_show_matches_postfix(dirs, args):
    assert_same(dirs, *args)


def test_table_types_are_postfix_names(dirs):
    pf, pt = both(dirs, "-m")
    assert pt.returncode == 0
    ours = pt.stdout.split()
    assert ours == sorted(ours)
    assert {"hash", "btree", "mysql", "cidr", "regexp", "pcre"} & set(ours)
    assert set(ours) <= set(pf.stdout.split()) | {"memory"}


def documented_default_differences():
    """The documented default differences and the Postern-only parameters."""
    text = (Path(__file__).resolve().parents[1] / "DIFFERENCES.md").read_text()
    names = set()
    for heading in ("## postconf -d defaults", "## Postern-only parameters"):
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        names |= set(re.findall(r"^- ([a-z0-9_]+):", section, re.M))
    return names


def test_full_listing_lines_match_postfix(dirs):
    # Every parameter line Postern prints must be Postfix's line, unless its default is a
    # documented difference; process_id is each process's own.
    pf, pt = both(dirs)
    assert pt.returncode == pf.returncode == 0
    theirs = set(pf.stdout.replace(str(dirs[0]), "DIR").splitlines())
    allowed = documented_default_differences() | {"process_id"}
    ours = pt.stdout.replace(str(dirs[1]), "DIR").splitlines()
    assert ours == sorted(ours, key=lambda line: line.split(" = ")[0])
    unexplained = [line for line in ours if line not in theirs and line.split(" = ")[0] not in allowed]
    assert unexplained == []
    # User-defined and service-defined names are listed too.
    assert "mua_client_restrictions = permit_sasl_authenticated, reject" in ours
    assert "dovecot_time_limit = $command_time_limit" in ours
    assert "relay_destination_concurrency_limit = $default_destination_concurrency_limit" in ours


@pytest.mark.parametrize("name", [
    "mail_name", "biff", "smtpd_banner", "mydestination", "relay_domains",
    "smtpd_recipient_restrictions", "message_size_limit", "smtpd_tls_security_level",
])
def test_fixed_defaults_match_postfix(dirs, name):
    assert_same(dirs, "-d", name)


@pytest.mark.parametrize("args", [
    ["-e", "myhostname=mx.example.org", "new_b = 2"],
    ["myhostname = mx.example.org", "relayhost=[smtp.example.net]:587"],
    ["-e", "smtpd_recipient_restrictions=permit_mynetworks, reject"],
    ["-X", "smtpd_recipient_restrictions", "biff", "nonexistent"],
    ["-#", "smtpd_recipient_restrictions", "myorigin"],
    ["-Me", "smtp/inet=smtp inet n - y - 1 postscreen"],
    ["-Me", "new/unix=new unix - n n - - pipe flags=R user=nobody argv=/bin/cat {a b}"],
    ["-MX", "relay/unix", "submission/inet"],
    ["-M#", "maildrop/unix", "dovecot/unix"],
    ["-Fe", "pickup/unix/wakeup=120", "submission/inet/command=smtpd -o syslog_name=x"],
    ["-Pe", "submission/inet/syslog_name=postfix/msa", "relay/unix/smtp_helo_timeout=10s"],
    ["-PX", "submission/inet/smtpd_tls_auth_only"],
    ["-Fe", "nosuch/unix/maxproc=3"],
])
def test_edit_matches_postfix(dirs, args):
    assert_same(dirs, *args)
    assert_same_files(dirs)
    assert_same(dirs, "-n")


@pytest.mark.parametrize("args", [
    ["-e"],
    ["-e", "novalue"],
    ["-e", "=x"],
    ["-e", "#a=1"],
    ["-X"],
    ["-X", "a=1"],
    ["-e", "a=1", "a=2"],
    ["-M", "a/b/c"],
    ["-F", "a/b/c"],
    ["-Pe", "smtp/inet/a=b c"],
    ["-Me", "x/unix=x bogus - - - - cmd"],
    ["-M", "-n"],
    ["-d", "-n"],
    ["-Z"],
    ["-T", "bogus"],
    ["-o", "foo", "myhostname"],
    ["-o", "myhostname=z.example.org", "-x", "myorigin", "mydestination"],
])
def test_errors_match_postfix(dirs, args):
    assert_same(dirs, *args)
    assert_same_files(dirs)


def test_read_only_parameters(tmp_path):
    # service_name and process_name are per service, process_id per process: assignments
    # are dropped with a warning, and $service_name expands to the master.cf service.
    pair = []
    for side in ("postfix", "postern"):
        d = tmp_path / side
        d.mkdir()
        (d / "main.cf").write_text("myhostname = h.example\nprocess_name = x\nservice_name = y\n")
        (d / "master.cf").write_text(
            "relay     unix  -       -       y       -       -       smtp\n"
            "  -o syslog_name=$service_name/$process_name/$mail_name -o process_id=4\n"
            "  -o mail_version=2\n")
        pair.append(d)
    for args in (["-n"], ["-P"], ["-Px"], ["-Mx"], ["process_name", "service_name"]):
        assert_same(tuple(pair), *args)


@pytest.mark.parametrize("master_cf", [
    "  continuation without an entry\nsmtp inet n - y - - smtpd\n",
    "   a very long continuation line that has no start at all\nsmtp inet n - y - - smtpd\n",
    "smtp inet n - y - - smtpd -o {a = b\n",
    "smtp inet n - y - - smtpd -o { = x }\n",
    "x unix\n",
    "smtp inet n - y 5x - smtpd\n",
])
def test_odd_master_cf_matches_postfix(tmp_path, master_cf):
    pair = []
    for side in ("postfix", "postern"):
        d = tmp_path / side
        d.mkdir()
        (d / "main.cf").write_text("myhostname = h.example\n")
        (d / "master.cf").write_text(master_cf)
        pair.append(d)
    for args in (["-M"], ["-n"], ["-P"]):
        assert_same(tuple(pair), *args)


def test_missing_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["-n"], ["-M"], ["-e", "a=b"], ["-Me", "a/unix=a unix - - - - - x"], ["-d", "mail_name"],
                 ["-m"], ["-l"], ["-a"]):
        pf = run([postfix("postconf"), "-c", str(empty), *args])
        pt = run([postern("postconf"), "-c", str(empty), *args])
        assert PREFIX.sub("", pt.stderr) == PREFIX.sub("", pf.stderr), args
        assert pt.returncode == pf.returncode, args
        if args != ["-m"]:
            assert pt.stdout == pf.stdout, args
    nodir = tmp_path / "nodir"
    pf = run([postfix("postconf"), "-c", str(nodir), "-e", "a=b"])
    pt = run([postern("postconf"), "-c", str(nodir), "-e", "a=b"])
    assert PREFIX.sub("", pt.stderr) == PREFIX.sub("", pf.stderr)
    assert pt.returncode == pf.returncode == 1


def test_mail_config_environment(dirs):
    pf = run([postfix("postconf"), "-n"], env={"MAIL_CONFIG": str(dirs[0])})
    pt = run([postern("postconf"), "-n"], env={"MAIL_CONFIG": str(dirs[1])})
    assert pt.stdout.replace(str(dirs[1]), "DIR") == pf.stdout.replace(str(dirs[0]), "DIR")
    assert "config_directory = DIR\n" in pt.stdout.replace(str(dirs[1]), "DIR")


def test_edit_is_atomic_and_keeps_comments(dirs):
    d = dirs[1]
    before = (d / "main.cf").read_text()
    r = run([postern("postconf"), "-c", str(d), "-e", "biff=yes"])
    assert r.returncode == 0
    after = (d / "main.cf").read_text()
    assert after == before.replace("biff = no\n", "biff = yes\n")
    assert sorted(p.name for p in d.iterdir()) == sorted(
        ["main.cf", "master.cf", "mysql-virtual-mailbox-domains.cf", "mysql-virtual-mailbox-maps.cf",
         "mysql-virtual-alias-maps.cf", "mysql-virtual-email2email.cf"])


def test_new_names_are_appended_sorted(dirs):
    # Postfix 3.7 appends several new names in its hash table's randomized order; Postern
    # appends them sorted, as later Postfix releases do (tests/DIFFERENCES.md).
    args = ["-e", "zz_new=1", "aa_new = 2", "mm_new=3", "biff=yes"]
    pf, pt = both(dirs, *args)
    assert pt.returncode == pf.returncode == 0
    ours = (dirs[1] / "main.cf").read_text().splitlines()
    theirs = (dirs[0] / "main.cf").read_text().splitlines()
    assert ours[-3:] == ["aa_new = 2", "mm_new = 3", "zz_new = 1"]
    assert sorted(ours[-3:]) == sorted(theirs[-3:])
    assert ours[:-3] == [line.replace(str(dirs[0]), str(dirs[1])) for line in theirs[:-3]]


def test_file_without_final_newline(tmp_path):
    # Postfix 3.7 glues the appended entry onto an unterminated last line; Postern ends
    # that line first (tests/DIFFERENCES.md, "postconf output").
    d = tmp_path / "c"
    d.mkdir()
    (d / "main.cf").write_text("myhostname = a.example")
    r = run([postern("postconf"), "-c", str(d), "-e", "relayhost=b"])
    assert r.returncode == 0
    assert (d / "main.cf").read_text() == "myhostname = a.example\nrelayhost = b\n"



DUP_MAIN_CF = "myhostname = a.example\nmyhostname = b.example\nmydomain = x.example\nmyhostname = c.example\n"
DUP_WARNINGS = ["postconf: warning: DIR/main.cf, line 2: overriding earlier entry: myhostname=a.example",
                "postconf: warning: DIR/main.cf, line 4: overriding earlier entry: myhostname=b.example"]


def dup_dirs(tmp_path):
    pair = []
    for side in ("postfix", "postern"):
        d = tmp_path / side
        d.mkdir()
        (d / "main.cf").write_text(DUP_MAIN_CF)
        (d / "master.cf").write_text(MASTER_DIST.read_text())
        pair.append(d)
    return tuple(pair)


def first_read(lines):
    """Postfix 3.7's warnings of its first read of DUP_MAIN_CF: it re-reads main.cf for
    derived defaults into the filled dictionary, repeating the warnings and adding one for
    line 1 (tests/DIFFERENCES.md); Postern reads once."""
    return sorted(set(line for line in lines if ", line 1: overriding" not in line))


@pytest.mark.parametrize("args", [
    ["-n"],
    ["myhostname"],
    ["mail_owner", "mydomain"],
    ["-e", "myhostname=d.example"],
    ["-e", "relayhost=r.example"],
    ["-X", "myhostname"],
    ["-#", "myhostname"],
])
def test_duplicate_entries_match_postfix(tmp_path, args):
    # One "overriding earlier entry" warning per later duplicate, naming its line and the
    # value it replaces; postconf -e/-X/-# edit every copy and warn "multiple entries".
    pair = dup_dirs(tmp_path)
    pf, pt = both(pair, *args)
    assert pt.returncode == pf.returncode == 0
    assert pt.stdout.replace(str(pair[1]), "DIR") == pf.stdout.replace(str(pair[0]), "DIR")
    ours = stderr_lines(pt.stderr, pair[1])
    assert ours == first_read(stderr_lines(pf.stderr, pair[0]))
    assert len(ours) == len(set(ours))
    if args[0] not in ("-e", "-X", "-#"):
        assert ours == DUP_WARNINGS
    assert_same_files(pair)
