"""postlog(1) and maillog_file logging, run side by side with Debian's Postfix postlog."""
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import postern, postfix, run

STAMP = re.compile(r"^[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} (\S+) (\S+?)\[(\d+)\]: (.*)$")


def make_conf(tmp_path, name, maillog):
    d = tmp_path / name
    d.mkdir()
    # syslog_name = postfix on both sides so the tags compare equal.
    (d / "main.cf").write_text(
        f"syslog_name = postfix\nmaillog_file = {maillog}\n"
        f"maillog_file_prefixes = {tmp_path}, /dev/stdout\n")
    return d


def records(text):
    """(host, tag, text) of every maillog line; the time and PID are dropped."""
    out = []
    for line in text.splitlines():
        m = STAMP.match(line)
        assert m, f"not a maillog line: {line!r}"
        out.append((m.group(1), m.group(2), m.group(4)))
    return out


def both(tmp_path, args, input=None):
    """Runs Postern's and Postfix's postlog with the same arguments, each with its own
    maillog_file; returns [(CompletedProcess, records), ...] (Postern first)."""
    results = []
    for side, prog in (("postern", postern("postlog")), ("postfix", postfix("postlog"))):
        log = tmp_path / f"{side}.log"
        conf = make_conf(tmp_path, f"{side}-conf", log)
        p = run([prog, "-c", str(conf)] + args, input=input)
        results.append((p, records(log.read_text()) if log.exists() else None))
    return results


@pytest.mark.parametrize("args,input", [
    (["hello", "world"], None),
    (["-p", "warn", "disk", "almost", "full"], None),
    (["-p", "ERROR", "upper-case severity"], None),
    (["-p", "crit", "logged as fatal"], None),
    (["-p", "panic", "logged as panic"], None),
    (["-t", "backup-job", "-i", "tagged"], None),
    ([], "first line\n\nthird line after an empty one\nno newline at the end"),
    (["-p", "warning"], "tab\there\n"),
])
def test_postlog_records_match_postfix(tmp_path, args, input):
    (ours, our_recs), (theirs, their_recs) = both(tmp_path, args, input)
    assert ours.returncode == theirs.returncode == 0
    assert our_recs == their_recs
    assert our_recs  # something was logged
    # Not a terminal: nothing on stderr.
    assert ours.stderr == ""


def test_postlog_fatal_severity_logs_and_succeeds(tmp_path):
    (ours, our_recs), (theirs, _) = both(tmp_path, ["-p", "fatal", "stop"])
    assert ours.returncode == theirs.returncode == 0
    assert our_recs[-1][2] == "fatal: stop"


def test_postlog_bad_severity_fails_like_postfix(tmp_path):
    (ours, our_recs), (theirs, their_recs) = both(tmp_path, ["-p", "loud", "x"])
    assert ours.returncode == theirs.returncode == 1
    assert our_recs is None and their_recs is None


def test_maillog_file_outside_prefixes_is_refused(tmp_path):
    results = []
    for prog in (postern("postlog"), postfix("postlog")):
        conf = tmp_path / ("c" + str(len(results)))
        conf.mkdir()
        target = tmp_path / f"elsewhere{len(results)}.log"
        (conf / "main.cf").write_text(
            f"maillog_file = {target}\nmaillog_file_prefixes = /var, /dev/stdout\n")
        p = run([prog, "-c", str(conf), "text"])
        results.append(p.returncode)
        assert not target.exists()
    assert results == [1, 1]


def test_postlog_to_dev_stdout(tmp_path):
    outs = []
    for prog in (postern("postlog"), postfix("postlog")):
        conf = tmp_path / ("s" + str(len(outs)))
        conf.mkdir()
        (conf / "main.cf").write_text("syslog_name = postfix\nmaillog_file = /dev/stdout\n")
        p = run([prog, "-c", str(conf), "-p", "warn", "to", "stdout"])
        assert p.returncode == 0
        outs.append(records(p.stdout))
    assert outs[0] == outs[1] == [(outs[0][0][0], "postfix/postlog", "warning: to stdout")]


def test_missing_main_cf_is_fatal(tmp_path):
    p = run([postern("postlog"), "-c", str(tmp_path / "nowhere"), "x"])
    assert p.returncode == 1


def test_maillog_file_is_created_private_and_appended(tmp_path):
    log = tmp_path / "m.log"
    conf = make_conf(tmp_path, "conf", log)
    for i in range(3):
        assert run([postern("postlog"), "-c", str(conf), f"line {i}"]).returncode == 0
    assert [r[2] for r in records(log.read_text())] == ["line 0", "line 1", "line 2"]
    assert os.stat(log).st_mode & 0o777 == 0o600


def test_symlinked_maillog_file_is_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("")
    log = tmp_path / "link.log"
    log.symlink_to(victim)
    conf = make_conf(tmp_path, "conf", log)
    p = run([postern("postlog"), "-c", str(conf), "redirected?"])
    assert p.returncode == 1
    assert victim.read_text() == ""
    assert "open logfile" in p.stderr


def test_concurrent_writers_keep_lines_whole(tmp_path):
    log = tmp_path / "busy.log"
    conf = make_conf(tmp_path, "conf", log)
    n_lines, writers = 300, 6
    procs = []
    for w in range(writers):
        text = "".join(f"writer {w} line {i} " + "x" * 200 + "\n" for i in range(n_lines))
        p = subprocess.Popen([postern("postlog"), "-c", str(conf)], stdin=subprocess.PIPE)
        p.stdin.write(text.encode())
        procs.append(p)
    for p in procs:
        p.stdin.close()
        assert p.wait(timeout=60) == 0
    recs = records(log.read_text())
    assert len(recs) == n_lines * writers
    seen = {r[2] for r in recs}
    for w in range(writers):
        for i in range(n_lines):
            assert f"writer {w} line {i} " + "x" * 200 in seen


def test_long_record_is_cut_at_2000_bytes(tmp_path):
    (ours, our_recs), (theirs, their_recs) = both(tmp_path, ["y" * 5000])
    assert ours.returncode == theirs.returncode == 0
    assert len(our_recs[0][2]) == 2000
    assert our_recs == their_recs


# --- syslog -------------------------------------------------------------------------
# Each program runs in a private mount namespace whose /dev holds a datagram socket of
# the test's own at /dev/log, so the records syslog(3) sends can be read back, with
# their priority, without touching the machine's logging.

DEV_SETUP = r'''set -e
d=$(mktemp -d)
mount -t tmpfs none "$d"
for n in null zero random urandom; do touch "$d/$n"; mount --bind /dev/$n "$d/$n"; done
touch "$d/log"; mount --bind "$SOCK" "$d/log"
mount --rbind "$d" /dev
exec "$@"
'''

SYSLOG = re.compile(r"^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} (\S+?)\[(\d+)\]: (.*)$")


def syslog_records(tmp_path, argv, input=None):
    import socket
    sock_path = tmp_path / f"log{len(list(tmp_path.iterdir()))}.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(sock_path))
    s.setblocking(False)  # read after the program exits: its datagrams are queued
    try:
        p = run(["unshare", "-m", "sh", "-c", DEV_SETUP, "sh"] + argv, input=input,
                env={"SOCK": str(sock_path)})
        got = []
        while True:
            try:
                data = s.recv(8192).decode()
            except OSError:
                break
            m = SYSLOG.match(data)
            assert m, f"not a syslog record: {data!r}"
            pri = int(m.group(1))
            got.append((pri >> 3, pri & 7, m.group(2), m.group(4)))
        return p, got
    finally:
        s.close()


def can_fake_dev_log(tmp_path):
    if os.geteuid() != 0:
        return False
    p = run(["unshare", "-m", "true"])
    return p.returncode == 0


@pytest.mark.parametrize("args,input", [
    (["-p", "warn", "to", "syslog"], None),
    (["-p", "err", "an", "error"], None),
    (["-p", "fatal", "fatal", "one"], None),
    (["-t", "custom", "tagged"], None),
    ([], "one\ntwo\n"),
])
def test_syslog_records_match_postfix(tmp_path, args, input):
    if not can_fake_dev_log(tmp_path):
        pytest.skip("needs root and unshare -m to give the program its own /dev/log")
    seen = []
    for side, prog in (("postern", postern("postlog")), ("postfix", postfix("postlog"))):
        conf = tmp_path / f"{side}-conf"
        conf.mkdir()
        (conf / "main.cf").write_text("syslog_name = postfix\nsyslog_facility = local3\n")
        p, recs = syslog_records(tmp_path, [prog, "-c", str(conf)] + args, input)
        assert p.returncode == 0, p.stderr
        seen.append(recs)
    assert seen[0] == seen[1]
    assert seen[0] and all(r[0] == 19 for r in seen[0])  # local3


def test_maillog_file_replaces_syslog(tmp_path):
    if not can_fake_dev_log(tmp_path):
        pytest.skip("needs root and unshare -m to give the program its own /dev/log")
    log = tmp_path / "m.log"
    conf = make_conf(tmp_path, "conf", log)
    p, recs = syslog_records(tmp_path, [postern("postlog"), "-c", str(conf), "only", "file"])
    assert p.returncode == 0
    assert recs == []
    assert [r[2] for r in records(log.read_text())] == ["only file"]


def stderr_on_terminal(argv):
    """Runs argv with stderr on a pseudo-terminal; returns (exit status, what it wrote)."""
    import pty
    master, slave = pty.openpty()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=slave, timeout=60)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return p.returncode, out.decode().replace("\r\n", "\n")
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)


@pytest.mark.parametrize("args", [
    ["-p", "warn", "on", "the", "terminal"],
    ["-t", "mytag", "-p", "error", "tagged"],
    ["-p", "bogus", "x"],
])
def test_postlog_writes_stderr_only_to_a_terminal_like_postfix(tmp_path, args):
    outs = []
    for side, prog in (("postern", postern("postlog")), ("postfix", postfix("postlog"))):
        log = tmp_path / f"{side}.log"
        conf = make_conf(tmp_path, f"{side}-conf", log)
        outs.append(stderr_on_terminal([prog, "-c", str(conf)] + args))
    # Before main.cf is read the tag has the built-in syslog_name, which differs on
    # purpose (tests/DIFFERENCES.md: syslog_name).
    ours = (outs[0][0], outs[0][1].replace("postern/postlog:", "postfix/postlog:"))
    assert ours == outs[1]
    assert outs[1][1]  # something was shown


def test_unwritable_maillog_file_is_fatal_for_postlog_like_postfix(tmp_path):
    codes = []
    for side, prog in (("postern", postern("postlog")), ("postfix", postfix("postlog"))):
        conf = make_conf(tmp_path, f"{side}-conf", tmp_path / "no-such-dir" / "log")
        codes.append(run([prog, "-c", str(conf), "lost?"]).returncode)
    assert codes == [1, 1]


def test_commands_name_themselves_by_the_basename_of_argv0(tmp_path, confdir):
    """Postfix's commands print "name: fatal: ..." with the basename of argv[0], whatever
    path or link name they were started by; Postern's logging does the same."""
    outs = []
    for side, prog in (("postern", postern("postmap")), ("postfix", postfix("postmap"))):
        link = tmp_path / side / "mapper"
        link.parent.mkdir()
        link.symlink_to(prog)
        p = run([str(link), "-c", str(confdir), "-q", "x", f"hash:{tmp_path}/none"])
        outs.append((p.returncode, p.stderr))
    assert outs[0] == outs[1]
    assert outs[0][1].startswith("mapper: fatal: ")
