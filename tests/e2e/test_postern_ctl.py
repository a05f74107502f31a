"""postern(1), the control command: start/stop/status/reload/abort/flush/check/
set-permissions on real instances, and Debian's postfix(1) for the wording.

Run as root (as CI does), every instance is a privileged one: master runs as root and
the unprivileged daemons as mail_owner = postfix, setgid_group = postdrop, in a tree
under /tmp that postfix can reach. Run by another user, every instance is a sandbox
owned by that user. Each test asserts the mode it runs in; nothing is skipped.
"""
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD, postern, run
from mailsystem import MAIL_SERVICES, MailInstance, attr_call, wait_for

ROOT = os.geteuid() == 0
ANVIL = "anvil     unix  -       -       n       -       1       anvil\n"


def proc_uids(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(l for l in status.splitlines() if l.startswith("Uid:"))
    return {int(x) for x in line.split()[1:]}


def children_of(pid):
    return MailInstance.descendants(pid)


class Ctl:
    """One instance under `root`, driven only through `postern`."""

    def __init__(self, root, master_cf=ANVIL, main_cf=""):
        self.root = Path(root)
        self.conf = self.root / "conf"
        self.queue = self.root / "queue"
        self.data = self.root / "data"
        self.sbin = self.root / "sbin"        # command_directory: postdrop checks only
        self.maillog = self.root / "maillog"
        for d in (self.conf, self.sbin):
            d.mkdir(parents=True, exist_ok=True)
        if ROOT:
            self.owner, self.group = "postfix", "postdrop"
        else:
            self.owner = pwd.getpwuid(os.getuid()).pw_name
            self.group = grp.getgrgid(os.getgid()).gr_name
        self.uid = pwd.getpwnam(self.owner).pw_uid
        (self.conf / "main.cf").write_text(
            f"queue_directory = {self.queue}\n"
            f"data_directory = {self.data}\n"
            f"daemon_directory = {BUILD / 'libexec' / 'postern'}\n"
            f"command_directory = {self.sbin}\n"
            f"mail_owner = {self.owner}\n"
            f"setgid_group = {self.group}\n"
            f"maillog_file = {self.maillog}\n"
            f"maillog_file_prefixes = {self.root}\n"
            "myhostname = host.example.test\nmydomain = example.test\n"
            "mydestination = $myhostname, localhost\n"
            "inet_interfaces = loopback-only\n" + main_cf)
        (self.conf / "master.cf").write_text(master_cf)
        # Daemons running as mail_owner append to the log themselves.
        self.maillog.touch()
        if ROOT:
            os.chown(self.maillog, self.uid, -1)

    def __call__(self, *args, env=None):
        return run([postern("postern"), "-c", str(self.conf), *args], env=env)

    def log(self):
        return self.maillog.read_text(errors="replace")

    def master_pid(self):
        r = self("status")
        if r.returncode != 0:
            return None
        return int(r.stderr.rsplit("PID: ", 1)[1].split()[0])

    def cleanup(self):
        pid = self.master_pid()
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            wait_for(lambda: self.master_pid() is None, 20)


@pytest.fixture
def make_ctl(tmp_path):
    """Creates instances; as root under a 0755 tree that mail_owner can reach."""
    base = Path(tempfile.mkdtemp(prefix="postern-ctl-")) if ROOT else tmp_path
    os.chmod(base, 0o755)
    made = []

    def make(name="i1", **kw):
        c = Ctl(base / name, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.cleanup()
    if ROOT:
        shutil.rmtree(base, ignore_errors=True)


def postfix_with_tty(*args):
    """Debian's postfix(1) under script(1): postfix-script logs to stderr only on a tty."""
    r = subprocess.run(["script", "-qec", " ".join(["/usr/sbin/postfix", *args]), "/dev/null"],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout.replace("\r", "").strip()


# ---- differential: wording and exit codes of postfix(1) -------------------------------

def test_status_and_unknown_command_as_postfix(make_ctl):
    c = make_ctl()
    mine = c("status")
    assert mine.returncode == 1
    assert mine.stderr == "postern/postern-script: the Postern mail system is not running\n"
    bad = c("bogus")
    assert bad.returncode == 1
    if not ROOT:
        # postfix(1) is reserved for the superuser; postern runs a sandbox instead
        # (tests/DIFFERENCES.md, postern command).
        rc, out = postfix_with_tty("status")
        assert rc == 1 and "reserved for the superuser" in out
        return
    rc, out = postfix_with_tty("status")
    if rc == 0:   # a Postfix runs on this host: compare the running wording instead
        assert c("start").returncode == 0
        mine = c("status")
        out = out.split(": PID:")[0]
    assert mine.returncode == rc
    assert mine.stderr.split(": PID:")[0].strip() == \
        out.replace("postfix/postfix-script", "postern/postern-script").replace("Postfix", "Postern")
    rc, out = postfix_with_tty("bogus")
    assert rc == bad.returncode == 1
    assert bad.stderr.split("Usage:")[0] == \
        out.replace("postfix/postfix-script", "postern/postern-script").split("Usage:")[0]
    assert "Usage: postern start (or stop, reload, abort, flush, check, status" in bad.stderr


def test_missing_config_directory_is_fatal(tmp_path):
    r = run([postern("postern"), "-c", str(tmp_path / "nowhere"), "status"])
    assert r.returncode == 1
    assert r.stderr == f"postern: fatal: open {tmp_path}/nowhere/main.cf: No such file or directory\n"


# ---- start / stop / status -----------------------------------------------------------

def test_start_stop_start_keeps_queue_files(make_ctl):
    c = make_ctl()
    assert not c.queue.exists()
    r = c("start")
    assert r.returncode == 0, r.stderr
    assert "postern/postern-script: starting the Postern mail system" in r.stderr
    # start created the queue tree as postfix-script's check-fatal does.
    assert oct(os.stat(c.queue / "maildrop").st_mode & 0o7777) == "0o1730"
    assert oct(os.stat(c.queue / "public").st_mode & 0o7777) == "0o2710"
    assert os.stat(c.queue / "deferred").st_uid == c.uid
    pid = c.master_pid()
    assert pid and int((c.queue / "pid" / "master.pid").read_text()) == pid
    # master is ready when start returns: anvil answers at once.
    assert attr_call(c.queue / "private" / "anvil", request="connect", ident="s:p")["count"] == ["1"]
    (c.queue / "deferred" / "A").mkdir()
    qfile = c.queue / "deferred" / "A" / "4ABCDEF1234"
    qfile.write_bytes(b"C     123      45       0        1     37      0     0\nTdata\n")
    os.chown(qfile, c.uid, -1)
    r = c("stop")
    assert r.returncode == 0, r.stderr
    assert "stopping the Postern mail system" in r.stderr
    assert c("status").returncode == 1
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert c("start").returncode == 0
    assert qfile.read_bytes().startswith(b"C     123")
    assert c("stop").returncode == 0
    log = c.log()
    assert log.index("starting the Postern mail system") < log.index("stopping the Postern") \
        < log.rindex("starting the Postern mail system")
    assert "postern/postern-script[" in log


def test_start_refuses_a_second_master(make_ctl):
    c = make_ctl()
    assert c("start").returncode == 0
    pid = c.master_pid()
    r = c("start")
    assert r.returncode == 1
    assert r.stderr.endswith(
        "postern/postern-script: fatal: the Postern mail system is already running\n")
    assert c.master_pid() == pid
    assert c("stop").returncode == 0
    r = c("stop")
    assert r.returncode == 1
    assert "fatal: the Postern mail system is not running" in r.stderr


def test_stale_pid_file_after_kill_9(make_ctl):
    c = make_ctl()
    assert c("start").returncode == 0
    pid = c.master_pid()
    os.killpg(pid, signal.SIGKILL)
    assert wait_for(lambda: c("status").returncode == 1, 20)
    # The pid file is still there, naming a dead process: it holds no lock, so it counts
    # for nothing.
    assert int((c.queue / "pid" / "master.pid").read_text()) == pid
    assert "is not running" in c("status").stderr
    r = c("start")
    assert r.returncode == 0, r.stderr
    new = c.master_pid()
    assert new and new != pid
    assert int((c.queue / "pid" / "master.pid").read_text()) == new
    assert attr_call(c.queue / "private" / "anvil", request="connect", ident="s:p")["count"] == ["1"]
    assert c("stop").returncode == 0


def test_two_instances_side_by_side(make_ctl):
    a, b = make_ctl("a"), make_ctl("b")
    assert a("start").returncode == 0 and b("start").returncode == 0
    pa, pb = a.master_pid(), b.master_pid()
    assert pa and pb and pa != pb
    assert a("stop").returncode == 0
    assert a("status").returncode == 1 and b.master_pid() == pb
    assert attr_call(b.queue / "private" / "anvil", request="connect", ident="s:p")["count"] == ["1"]
    assert "stopping" not in b.log()
    assert b("stop").returncode == 0


def test_mail_config_environment_names_the_instance(make_ctl):
    c = make_ctl()
    r = run([postern("postern"), "start"], env={"MAIL_CONFIG": str(c.conf)})
    assert r.returncode == 0, r.stderr
    assert c.master_pid()
    r = run([postern("postern"), "status"], env={"MAIL_CONFIG": str(c.conf)})
    assert r.returncode == 0 and f"PID: {c.master_pid()}" in r.stderr
    assert c("stop").returncode == 0


def test_reload_abort_and_flush(make_ctl):
    c = make_ctl()
    r = c("reload")
    assert r.returncode == 1 and "fatal: the Postern mail system is not running" in r.stderr
    r = c("flush")
    assert r.returncode == 1 and "Cannot flush mail queue - mail system is down" in r.stderr
    assert c("start").returncode == 0
    pid = c.master_pid()
    r = c("reload")
    assert r.returncode == 0 and "refreshing the Postern mail system" in r.stderr
    wait_for(lambda: "reload -- version" in c.log())
    assert "master[%d]: reload -- version" % pid in c.log()
    # flush: Postfix's mail_flush_deferred() trigger bytes on public/qmgr (flush dead
    # destinations, all time stamps, deferred, incoming); a stand-in qmgr listens there.
    qmgr = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    qmgr.bind(str(c.queue / "public" / "qmgr"))
    qmgr.listen(1)
    qmgr.settimeout(30)
    r = c("flush")
    assert r.returncode == 0, r.stderr
    conn, _ = qmgr.accept()
    data = b""
    while chunk := conn.recv(16):
        data += chunk
    assert data == b"FADI"
    qmgr.close()
    r = c("abort")
    assert r.returncode == 0 and "aborting the Postern mail system" in r.stderr
    assert wait_for(lambda: c("status").returncode == 1, 20)


def test_start_fg_keeps_master_in_the_foreground(make_ctl):
    c = make_ctl()
    env = dict(os.environ)
    env.pop("MAIL_CONFIG", None)
    p = subprocess.Popen([postern("postern"), "-c", str(c.conf), "start-fg"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert wait_for(lambda: c.master_pid() == p.pid, 30)   # postern became master
        assert c("stop").returncode == 0
        assert p.wait(timeout=30) == 0
        assert "starting the Postern mail system" in p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# ---- check and set-permissions ---------------------------------------------------------

def warnings_of(r):
    return [l for l in r.stderr.splitlines() if ": warning: " in l or ": fatal: " in l]


def test_check_clean_instance_then_wrong_owner_and_domain_overlap(make_ctl):
    c = make_ctl(main_cf="virtual_mailbox_domains = Host.Example.test, other.test\n"
                         "virtual_alias_domains = localhost\n")
    r = c("check")
    assert r.returncode == 0, r.stderr
    assert warnings_of(r) == [
        "postern/postern-script: warning: do not list domain localhost in BOTH mydestination "
        "and virtual_alias_domains (remove it from one of them: postconf -e to edit main.cf)",
        "postern/postern-script: warning: do not list domain Host.Example.test in BOTH "
        "mydestination and virtual_mailbox_domains (remove it from one of them: postconf -e "
        "to edit main.cf)"]
    (c.conf / "main.cf").write_text((c.conf / "main.cf").read_text().replace(
        "virtual_mailbox_domains = Host.Example.test, ", "virtual_mailbox_domains = ").replace(
        "virtual_alias_domains = localhost\n", ""))
    assert warnings_of(c("check")) == []
    deferred = c.queue / "deferred"
    if ROOT:
        os.chown(deferred, 0, 0)
        want = (f"postern/postern-script: warning: {deferred}: owner is uid 0 (root), should "
                f"be uid {c.uid} (postfix) (run 'postern set-permissions')")
    else:
        os.chmod(deferred, 0o755)
        want = (f"postern/postern-script: warning: {deferred}: mode is 0755, should be 0700 "
                "(run 'postern set-permissions')")
    r = c("check")
    assert r.returncode == 0 and warnings_of(r) == [want]
    # start shows the same warning, then starts.
    r = c("start")
    assert r.returncode == 0 and want in r.stderr.splitlines()
    assert c("stop").returncode == 0
    r = c("set-permissions")
    assert r.returncode == 0, r.stderr
    assert warnings_of(c("check")) == []
    assert os.stat(deferred).st_uid == c.uid and os.stat(deferred).st_mode & 0o7777 == 0o700


def test_check_fatal_problems_stop_start(make_ctl):
    c = make_ctl()
    (c.conf / "master.cf").unlink()
    r = c("check")
    assert r.returncode == 1
    assert f"postern/postern-script: fatal: no {c.conf}/master.cf file found" in r.stderr
    r = c("start")
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == \
        "postern/postern-script: fatal: Postern integrity check failed!"
    assert c.master_pid() is None
    (c.conf / "master.cf").write_text(ANVIL + "ghost     unix  -       -       n       -       -       ghostd\n")
    r = c("check")
    assert r.returncode == 0
    assert (f"warning: master.cf line 2: service ghost/unix: program "
            f"{BUILD}/libexec/postern/ghostd is missing (build it, or comment out the service)"
            ) in r.stderr


def test_check_account_rules(make_ctl):
    c = make_ctl()
    main = (c.conf / "main.cf").read_text()
    if not ROOT:
        # A sandbox runs everything as the invoking user whatever mail_owner says.
        (c.conf / "main.cf").write_text(main.replace(f"mail_owner = {c.owner}", "mail_owner = postfix"))
        r = c("check")
        assert r.returncode == 0
        assert f"mail_owner = postfix, but without root everything of this instance runs as " \
               f"and belongs to {c.owner}" in r.stderr
        # Someone else's queue (root's): refused before master could fail on it.
        (c.conf / "main.cf").write_text(main + "queue_directory = /\n")
        r = c("start")
        assert r.returncode == 1
        assert (f"fatal: queue_directory / belongs to uid 0, not to {c.owner} (run postern as "
                "root for a system instance, or use a queue_directory of your own)") in r.stderr
        assert r.stderr.splitlines()[-1].endswith("fatal: Postern integrity check failed!")
        return
    cf = c.conf / "main.cf"
    cf.write_text(main.replace("mail_owner = postfix", "mail_owner = root"))
    r = c("check")
    assert r.returncode == 1
    assert (f"fatal: file {cf}: parameter mail_owner: user root has privileged user ID"
            in r.stderr)
    cf.write_text(main.replace("setgid_group = postdrop", "setgid_group = postfix"))
    r = c("check")
    assert r.returncode == 1
    assert (f"fatal: file {cf}: parameters mail_owner and setgid_group: user postfix and group "
            f"postfix have the same group ID: {grp.getgrnam('postfix').gr_gid}") in r.stderr
    cf.write_text(main.replace("mail_owner = postfix", "mail_owner = nosuchuser"))
    r = c("check")
    assert r.returncode == 1 and "mail_owner: unknown user name value: nosuchuser" in r.stderr
    # A queue the daemons could not reach.
    cf.write_text(main)
    os.chmod(c.root, 0o700)
    r = c("start")
    assert r.returncode == 1
    assert (f"fatal: mail_owner postfix cannot reach queue_directory {c.queue}: {c.root} has "
            f"mode 0700 (chmod o+x {c.root}, or move the queue)") in r.stderr
    os.chmod(c.root, 0o755)


def test_set_permissions_recreates_the_tree(make_ctl):
    c = make_ctl()
    assert c("set-permissions").returncode == 0
    for d in ("saved", "public"):
        os.rmdir(c.queue / d)
    os.rmdir(c.data)
    postdrop = c.sbin / "postdrop"
    postdrop.write_text("#!/bin/sh\n")
    os.chmod(postdrop, 0o755)
    if ROOT:
        r = c("check")
        assert f"warning: not set-gid or not owner+group+world executable: {postdrop}" in r.stderr
    r = c("set-permissions")
    assert r.returncode == 0, r.stderr
    st = os.stat(c.queue / "public")
    assert st.st_mode & 0o7777 == 0o2710 and st.st_uid == c.uid
    assert st.st_gid == grp.getgrnam(c.group).gr_gid
    assert os.stat(c.queue / "saved").st_mode & 0o7777 == 0o700
    assert os.stat(c.data).st_uid == c.uid and os.stat(c.data).st_mode & 0o777 == 0o700
    if ROOT:
        st = os.stat(postdrop)
        assert st.st_mode & 0o7777 == 0o2755 and st.st_gid == grp.getgrnam("postdrop").gr_gid
    else:
        assert os.stat(postdrop).st_mode & 0o7777 == 0o755   # set-gid needs root
    assert warnings_of(c("check")) == []


# ---- privileges ------------------------------------------------------------------------

def wake(path):
    """Connects to a service socket and sends a wake-up byte, so master spawns it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(str(path))
        s.sendall(b"W")
    except OSError:
        pass
    finally:
        s.close()


def test_privileges_of_master_and_daemons(make_ctl):
    """Root: master as root, unprivileged services as postfix. Sandbox: all as the user."""
    built = [s for s in MAIL_SERVICES
             if (BUILD / "libexec" / "postern" / s[7]).exists() and s[0] != "anvil"]
    c = make_ctl(master_cf=ANVIL + "".join("  ".join(s) + "\n" for s in built))
    r = c("start")
    assert r.returncode == 0, r.stderr
    pid = c.master_pid()
    assert attr_call(c.queue / "private" / "anvil", request="connect", ident="s:p")["count"] == ["1"]
    # The trigger services (pickup, qmgr) start when woken; their queues are empty.
    triggered = [s for s in built if s[0] in ("pickup", "qmgr")]
    for svc in triggered:
        wake(c.queue / "public" / svc[0])

    def names():
        out = {}
        for k in children_of(pid):
            try:
                argv = Path(f"/proc/{k}/cmdline").read_bytes().split(b"\0")
                out[Path(argv[0].decode()).name] = proc_uids(k)
            except OSError:
                pass
        return out
    want = pwd.getpwnam("postfix").pw_uid if ROOT else os.getuid()
    assert c.uid == want
    expect = {"anvil": {want}}
    for svc in built:   # unprivileged services as mail_owner, "n" ones as root
        expect.setdefault(svc[7], {0} if ROOT and svc[3] == "n" else {want})

    def settled():
        # A daemon starts as root and drops privileges once initialised, as Postfix's do.
        uids = names()
        ready = all(s[7] in uids for s in triggered) and "anvil" in uids
        return ready and all(uids[n] == expect[n] for n in uids if n in expect) and uids
    uids = wait_for(settled, 20) or names()
    assert proc_uids(pid) == ({0} if ROOT else {os.getuid()})
    assert uids["anvil"] == {want}
    for name, u in uids.items():
        assert u == expect.get(name), (name, uids)
    assert os.stat(c.queue / "private").st_uid == want
    assert c("stop").returncode == 0
    assert not children_of(pid)


def test_check_world_writable_queue_directory(make_ctl):
    c = make_ctl()
    assert c("set-permissions").returncode == 0
    os.chmod(c.queue, 0o777)
    r = c("check")
    assert r.returncode == 0
    assert warnings_of(r) == [f"postern/postern-script: warning: {c.queue}: mode is 0777, should "
                              "be 0755 (run 'postern set-permissions')"]
    assert c("set-permissions").returncode == 0
    assert os.stat(c.queue).st_mode & 0o7777 == 0o755


STUCK_MASTER = """#!/usr/bin/python3
# A master that never stops on SIGTERM: it holds the pid file lock as master does.
import fcntl, os, signal, sys, time
conf = sys.argv[sys.argv.index("-c") + 1]
qdir = [l.split("=", 1)[1].strip() for l in open(conf + "/main.cf")
        if l.startswith("queue_directory")][-1]
r, w = os.pipe()
if os.fork():
    os.close(w)
    os._exit(0 if os.read(r, 1) else 1)      # -w: exit once the child is ready
os.setsid()
signal.signal(signal.SIGTERM, signal.SIG_IGN)
fd = os.open(qdir + "/pid/master.pid", os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, b"%d\\n" % os.getpid())
null = os.open("/dev/null", os.O_RDWR)
for i in (0, 1, 2):
    os.dup2(null, i)
os.write(w, b"r")
time.sleep(600)
"""


def test_stop_kills_a_master_that_does_not_terminate(make_ctl):
    c = make_ctl(master_cf="")
    libexec = c.root / "libexec"
    libexec.mkdir()
    (libexec / "master").write_text(STUCK_MASTER)
    os.chmod(libexec / "master", 0o755)
    cf = c.conf / "main.cf"
    cf.write_text(cf.read_text().replace(f"daemon_directory = {BUILD / 'libexec' / 'postern'}",
                                         f"daemon_directory = {libexec}"))
    assert c("start").returncode == 0
    pid = c.master_pid()
    assert pid
    r = c("stop")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == "postern/postern-script: stopping the Postern mail system"
    assert lines.count("postern/postern-script: waiting for the Postern mail system to terminate") == 7
    assert lines[-1] == "postern/postern-script: warning: stopping the Postern mail system with force"
    assert c("status").returncode == 1
    assert not Path(f"/proc/{pid}").exists() or " Z " in Path(f"/proc/{pid}/stat").read_text()
