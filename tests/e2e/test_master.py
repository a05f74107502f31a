"""End-to-end tests of master(8), the daemon skeleton and anvil(8).

Each test builds a sandbox instance in a tmp dir (every service runs as the invoking
user), starts `master -c DIR -d`, talks to anvil over private/anvil with a small client
of Postern's attribute protocol, and tears the whole instance down even when it fails.
"""
import grp
import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import postern, run
from mailsystem import free_port, wait_for

CRASHER = """#!/bin/sh
echo run >> {count}
exit 1
"""


def attr_call(sock, **attrs):
    """Sends one attribute record, returns the reply as a dict (None on EOF)."""
    sock.sendall(("".join(f"{k}={v}\n" for k, v in attrs.items()) + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n\n"):
        data = sock.recv(4096)
        if not data:
            return None
        buf += data
    return dict(line.split("=", 1) for line in buf.decode().split("\n") if line)


def connect_unix(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(path))
    return s


def children_of(pid):
    """PIDs whose parent is `pid`."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Instance:
    """A sandbox Postern instance under one tmp dir."""

    def __init__(self, root, extra_master_cf="", extra_main_cf=""):
        self.root = root
        self.conf = root / "conf"
        self.queue = root / "queue"
        self.libexec = root / "libexec"
        self.maillog = root / "maillog"
        self.crash_count = root / "crash.count"
        for d in (self.conf, self.queue, root / "data", self.libexec):
            d.mkdir(parents=True)
        # daemon_directory holds the build's daemons plus a service that always fails.
        os.symlink(postern("anvil"), self.libexec / "anvil")
        crasher = self.libexec / "crasher"
        crasher.write_text(CRASHER.format(count=self.crash_count))
        crasher.chmod(0o755)
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        (self.conf / "main.cf").write_text(
            f"queue_directory = {self.queue}\n"
            f"data_directory = {root / 'data'}\n"
            f"daemon_directory = {self.libexec}\n"
            f"command_directory = {root / 'sbin'}\n"
            f"mail_owner = {user}\n"
            f"setgid_group = {group}\n"
            f"maillog_file = {self.maillog}\n"
            f"maillog_file_prefixes = {root}\n"
            "service_throttle_time = 60s\n" + extra_main_cf)
        (self.conf / "master.cf").write_text(
            "# service type private unpriv chroot wakeup maxproc command\n"
            "anvil     unix  -       -       n       -       1       anvil\n"
            "crashy    unix  -       -       n       -       -       crasher\n"
            "smtpd     inet  n       -       n       -       -       smtpd\n" + extra_master_cf)
        self.proc = None
        self.pid = None

    def start(self):
        self.stderr = open(self.root / "master.stderr", "w")
        env = dict(os.environ)
        env.pop("MAIL_CONFIG", None)
        self.proc = subprocess.Popen([postern("master"), "-c", str(self.conf), "-d"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, env=env)
        self.pid = self.proc.pid
        # master logs this once every endpoint is open.
        assert wait_for(lambda: "daemon started" in self.log()), self.log()

    def log(self):
        return self.maillog.read_text() if self.maillog.exists() else ""

    def socket(self, name="anvil"):
        return connect_unix(self.queue / "private" / name)

    def master(self, *args):
        return run([postern("master"), "-c", str(self.conf), *args])

    def stop(self):
        """SIGTERM to master; then SIGKILL anything of the instance still alive."""
        if self.proc is None:
            return
        kids = children_of(self.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in kids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.stderr.close()
        self.proc = None


@pytest.fixture
def instance(tmp_path):
    inst = Instance(tmp_path / "i1")
    inst.start()
    yield inst
    inst.stop()


def test_master_writes_locked_pid_file_and_refuses_a_second_master(instance):
    pid_file = instance.queue / "pid" / "master.pid"
    text = pid_file.read_text()
    assert text == f"{instance.pid:>32}\n"
    # -t: exit 1 while a master runs for the instance.
    assert instance.master("-t").returncode == 1
    second = instance.master("-d")
    assert second.returncode == 1
    assert "unable to set exclusive lock" in second.stderr
    assert instance.proc.poll() is None
    instance.stop()
    assert instance.master("-t").returncode == 0


def test_missing_daemon_program_is_skipped_with_a_warning(instance):
    assert ("warning: master.cf: line 4: service smtpd: daemon program "
            f"{instance.libexec}/smtpd: No such file or directory -- skipped") in instance.log()
    assert instance.proc.poll() is None


def test_anvil_counts_connections_and_rates(instance):
    a = instance.socket()
    b = instance.socket()
    assert attr_call(a, request="connect", ident="smtpd:192.0.2.1") == \
        {"status": "0", "count": "1", "rate": "1"}
    assert attr_call(b, request="connect", ident="smtpd:192.0.2.1") == \
        {"status": "0", "count": "2", "rate": "2"}
    assert attr_call(a, request="message", ident="smtpd:192.0.2.1") == {"status": "0", "rate": "1"}
    assert attr_call(a, request="recipient", ident="smtpd:192.0.2.1") == {"status": "0", "rate": "1"}
    assert attr_call(a, request="recipient", ident="smtpd:192.0.2.1") == {"status": "0", "rate": "2"}
    assert attr_call(a, request="auth", ident="smtpd:192.0.2.1") == {"status": "0", "rate": "1"}
    assert attr_call(a, request="disconnect", ident="smtpd:192.0.2.1") == {"status": "0"}
    assert attr_call(b, request="lookup", ident="smtpd:192.0.2.1") == {
        "status": "0", "count": "1", "rate": "2", "mail": "1", "rcpt": "2", "newtls": "0", "auth": "1"}
    # A client that goes away without "disconnect" gives its connection back.
    b.close()
    c = instance.socket()
    assert wait_for(lambda: attr_call(c, request="lookup", ident="smtpd:192.0.2.1")["count"] == "0")
    assert attr_call(c, request="lookup", ident="smtpd:other") == {
        "status": "0", "count": "0", "rate": "0", "mail": "0", "rcpt": "0", "newtls": "0", "auth": "0"}
    assert attr_call(c, request="explode", ident="x") == {"status": "-1"}
    assert 'warning: unrecognized request: "explode", ignored' in instance.log()
    # Unknown fields are a protocol error: anvil hangs up.
    assert attr_call(c, request="lookup", ident="x", bogus="1") is None
    assert "warning: malformed request" in instance.log()


def test_anvil_killed_by_sigkill_is_restarted_on_demand(instance):
    s = instance.socket()
    assert attr_call(s, request="connect", ident="smtpd:a")["count"] == "1"
    kids = children_of(instance.pid)
    assert len(kids) == 1
    os.kill(kids[0], signal.SIGKILL)
    assert wait_for(lambda: "killed by signal 9" in instance.log())
    s2 = instance.socket()
    # A new process with fresh state answers.
    assert attr_call(s2, request="connect", ident="smtpd:a") == {"status": "0", "count": "1", "rate": "1"}
    new = children_of(instance.pid)
    assert len(new) == 1 and new[0] != kids[0]
    assert "bad command startup" not in instance.log()


def test_service_that_exits_at_once_is_throttled_not_fork_stormed(instance):
    end = time.time() + 2.0
    while time.time() < end:
        try:
            s = connect_unix(instance.queue / "private" / "crashy", timeout=0.2)
            try:
                s.recv(10)
            except OSError:
                pass
            s.close()
        except OSError:
            pass
    assert wait_for(lambda: "bad command startup -- throttling" in instance.log())
    assert f"warning: process {instance.libexec}/crasher pid" in instance.log()
    assert "exit status 1" in instance.log()
    # Throttled for service_throttle_time (60s): one start in two seconds of clients.
    assert instance.crash_count.read_text().count("run") == 1
    assert instance.proc.poll() is None


def test_sighup_adds_a_service_and_keeps_unchanged_ones(instance):
    s = instance.socket()
    assert attr_call(s, request="connect", ident="smtpd:b")["count"] == "1"
    before = children_of(instance.pid)
    with open(instance.conf / "master.cf", "a") as f:
        f.write("anvil2    unix  -       -       n       -       1       anvil\n")
    os.kill(instance.pid, signal.SIGHUP)
    assert wait_for(lambda: (instance.queue / "private" / "anvil2").exists())
    assert "reload -- version" in instance.log()
    t = instance.socket("anvil2")
    assert attr_call(t, request="connect", ident="smtpd:b") == {"status": "0", "count": "1", "rate": "1"}
    # The old anvil kept its process and its counts.
    assert attr_call(s, request="lookup", ident="smtpd:b")["count"] == "1"
    assert set(before) <= set(children_of(instance.pid))


def test_sighup_removes_a_deleted_service_and_stops_its_children(instance):
    s = instance.socket()
    attr_call(s, request="connect", ident="smtpd:c")
    kid = children_of(instance.pid)[0]
    text = (instance.conf / "master.cf").read_text()
    (instance.conf / "master.cf").write_text(
        "\n".join(l for l in text.splitlines() if not l.startswith("anvil")) + "\n")
    os.kill(instance.pid, signal.SIGHUP)
    assert wait_for(lambda: not (instance.queue / "private" / "anvil").exists())
    assert wait_for(lambda: not alive(kid))


def test_sigterm_stops_every_child_and_anvil_logs_its_statistics(instance):
    sockets = [instance.socket() for _ in range(2)]
    for s in sockets:
        attr_call(s, request="connect", ident="smtpd:198.51.100.7")
    kids = children_of(instance.pid)
    assert kids
    instance.proc.send_signal(signal.SIGTERM)
    assert instance.proc.wait(timeout=10) == 0
    for pid in kids:
        assert not alive(pid)
    log = instance.log()
    assert "terminating on signal 15" in log
    assert "statistics: max connection rate 2/60s for (smtpd:198.51.100.7) at " in log
    assert "statistics: max connection count 2 for (smtpd:198.51.100.7) at " in log
    assert "statistics: max cache size 1 at " in log


def test_idle_daemon_exits_after_max_idle_and_is_started_again(tmp_path):
    inst = Instance(tmp_path / "idle", extra_master_cf=(
        "quick     unix  -       -       n       -       1       anvil\n"
        "  -o anvil_rate_time_unit=1s -o max_idle=1s\n"))
    inst.start()
    try:
        assert wait_for(lambda: (inst.queue / "private" / "quick").exists())
        s = connect_unix(inst.queue / "private" / "quick")
        assert attr_call(s, request="connect", ident="x:y")["count"] == "1"
        s.close()
        kids = children_of(inst.pid)
        assert len(kids) == 1
        assert wait_for(lambda: not alive(kids[0]), timeout=8)
        assert "warning: process" not in inst.log()
        s = connect_unix(inst.queue / "private" / "quick")
        assert attr_call(s, request="lookup", ident="x:y")["count"] == "0"
    finally:
        inst.stop()


def test_two_instances_run_side_by_side(tmp_path):
    one = Instance(tmp_path / "one")
    two = Instance(tmp_path / "two")
    one.start()
    try:
        two.start()
        try:
            a, a2, b = one.socket(), one.socket(), two.socket()
            assert attr_call(a, request="connect", ident="s:x")["count"] == "1"
            assert attr_call(a2, request="connect", ident="s:x")["count"] == "2"
            assert attr_call(b, request="connect", ident="s:x")["count"] == "1"
            assert one.master("-t").returncode == 1 and two.master("-t").returncode == 1
            assert (one.queue / "pid/master.pid").read_text().strip() == str(one.pid)
            assert (two.queue / "pid/master.pid").read_text().strip() == str(two.pid)
        finally:
            two.stop()
            # Stopping one instance leaves the other serving.
            two.stop()
            assert attr_call(one.socket(), request="lookup", ident="s:x")["count"] == "2"
    finally:
        one.stop()


def test_detached_master_with_w_is_ready_when_the_command_returns(tmp_path):
    inst = Instance(tmp_path / "det")
    r = inst.master("-w")
    try:
        assert r.returncode == 0, r.stderr
        pid = int((inst.queue / "pid/master.pid").read_text())
        assert alive(pid)
        assert (inst.queue / "private" / "anvil").exists()
        s = inst.socket()
        assert attr_call(s, request="connect", ident="s:d")["count"] == "1"
    finally:
        if (inst.queue / "pid/master.pid").exists():
            pid = int((inst.queue / "pid/master.pid").read_text())
            kids = children_of(pid)
            if alive(pid):
                os.kill(pid, signal.SIGTERM)
                wait_for(lambda: not alive(pid))
            for k in kids:
                if alive(k):
                    os.kill(k, signal.SIGKILL)
    assert not alive(pid)


@pytest.mark.skipif(os.geteuid() != 0, reason="the privilege model needs root")
def test_as_root_unprivileged_services_run_as_mail_owner(tmp_path):
    import tempfile
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    # A root-owned tree that mail_owner may traverse (pytest's tmp dirs are 0700).
    root = Path(tempfile.mkdtemp(prefix="postern-priv-"))
    os.chmod(root, 0o755)
    # A supplementary group of mail_owner must survive the privilege drop, as with
    # Postfix's chroot_uid() (Debian: "adduser postfix sasl" to read a root:sasl sasldb).
    extra = "postern-suppl"
    subprocess.run(["groupadd", "-f", extra], check=True)
    subprocess.run(["usermod", "-a", "-G", extra, "nobody"], check=True)
    try:
        inst = Instance(root / "inst", extra_master_cf=(
            "rootsvc   unix  -       n       n       -       1       anvil\n"))
        os.chmod(inst.root, 0o755)
        text = (inst.conf / "main.cf").read_text()
        text = text.replace(f"mail_owner = {pwd.getpwuid(0).pw_name}", "mail_owner = nobody")
        text = text.replace(f"setgid_group = {grp.getgrgid(0).gr_name}", f"setgid_group = {group}")
        (inst.conf / "main.cf").write_text(text)
        # Daemons append to the maillog themselves, so mail_owner must be able to.
        inst.maillog.touch()
        os.chown(inst.maillog, nobody.pw_uid, nobody.pw_gid)
        inst.start()
        try:
            s = inst.socket()
            assert attr_call(s, request="connect", ident="s:p")["count"] == "1"
            r = connect_unix(inst.queue / "private" / "rootsvc")
            assert attr_call(r, request="connect", ident="s:p")["count"] == "1"
            uids = {}
            for pid in children_of(inst.pid):
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                status = Path(f"/proc/{pid}/status").read_text()
                uid_line = next(l for l in status.splitlines() if l.startswith("Uid:"))
                uids[cmd[2].decode()] = {int(x) for x in uid_line.split()[1:]}
            assert uids["anvil"] == {nobody.pw_uid}   # unpriv "-" means y
            assert uids["rootsvc"] == {0}            # unpriv n keeps root
            anvil = next(p for p in children_of(inst.pid)
                         if Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[2] == b"anvil")
            groups_line = next(l for l in Path(f"/proc/{anvil}/status").read_text().splitlines()
                               if l.startswith("Groups:"))
            assert grp.getgrnam(extra).gr_gid in {int(g) for g in groups_line.split()[1:]}
            assert 0 not in {int(g) for g in groups_line.split()[1:]}
            assert os.stat(inst.queue / "private").st_mode & 0o777 == 0o700
            assert os.stat(inst.queue / "private").st_uid == nobody.pw_uid
        finally:
            inst.stop()
    finally:
        subprocess.run(["rm", "-rf", str(root)])
        subprocess.run(["gpasswd", "-d", "nobody", extra], capture_output=True)
        subprocess.run(["groupdel", extra])


def test_inet_service_gets_its_listening_socket(tmp_path):
    port = free_port()
    inst = Instance(tmp_path / "inet", extra_master_cf=(
        f"127.0.0.1:{port} inet n  -       n       -       -       anvil\n"))
    inst.start()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert attr_call(s, request="connect", ident="inet:x") == {"status": "0", "count": "1", "rate": "1"}
        cmd = [Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0") for p in children_of(inst.pid)]
        assert [b"-t", b"inet"] in [c[3:5] for c in cmd]
    finally:
        inst.stop()


WAKER = """#!/bin/sh
# A fifo service: read one wake-up request from the listening fd and log it.
dd bs=1 count=1 <&6 >> {out} 2>/dev/null
exit 0
"""


def test_wakeup_timer_writes_to_a_fifo_service_which_master_starts(tmp_path):
    inst = Instance(tmp_path / "wake", extra_master_cf=(
        "waker     fifo  n       -       n       1       1       waker\n"))
    out = inst.root / "wakeups"
    waker = inst.libexec / "waker"
    waker.write_text(WAKER.format(out=out))
    waker.chmod(0o755)
    inst.start()
    try:
        assert (inst.queue / "public" / "waker").is_fifo()
        assert oct(os.stat(inst.queue / "public" / "waker").st_mode & 0o777) == "0o622"
        assert wait_for(lambda: out.exists() and out.read_text().count("W") >= 2, timeout=8)
        # Each run read its request and exited normally: no throttling.
        assert "bad command startup" not in inst.log()
    finally:
        inst.stop()


def test_daemons_leave_when_master_is_killed(instance):
    s = instance.socket()
    assert attr_call(s, request="connect", ident="s:k")["count"] == "1"
    kids = children_of(instance.pid)
    assert kids
    instance.proc.kill()
    instance.proc.wait()
    # The status pipe tells each daemon that master is gone.
    for pid in kids:
        assert wait_for(lambda: not alive(pid), timeout=5), f"daemon {pid} outlived master"


def test_sighup_after_main_cf_change_replaces_daemons_without_dropping_clients(instance):
    s = instance.socket()
    assert attr_call(s, request="connect", ident="smtpd:d")["count"] == "1"
    old = children_of(instance.pid)
    assert len(old) == 1
    with open(instance.conf / "main.cf", "a") as f:
        f.write("anvil_rate_time_unit = 120s\n")
    os.kill(instance.pid, signal.SIGHUP)
    assert wait_for(lambda: instance.log().count("reload -- version") == 1)
    time.sleep(0.3)
    # The old process finishes its live client ...
    assert alive(old[0])
    assert attr_call(s, request="lookup", ident="smtpd:d")["count"] == "1"
    # ... while a new client gets a new process with the new settings.
    t = instance.socket()
    assert attr_call(t, request="lookup", ident="smtpd:d")["count"] == "0"
    new = [p for p in children_of(instance.pid) if p != old[0]]
    assert len(new) == 1
    s.close()
    assert wait_for(lambda: not alive(old[0]))
    assert "warning: process" not in instance.log()


def test_multi_server_keeps_accepting_past_max_use_while_clients_stay(tmp_path):
    """Postfix's multi_server counts uses as clients leave and exits only when it has
    none left: persistent clients (qmgr and cleanup of trivial-rewrite) must not make it
    stop accepting while master still counts it available."""
    inst = Instance(tmp_path / "maxuse", extra_master_cf=(
        "keeper    unix  -       -       n       -       1       trivial-rewrite -o max_use=2\n"),
        extra_main_cf="myorigin = host.example.test\n")
    os.symlink(postern("trivial-rewrite"), inst.libexec / "trivial-rewrite")
    inst.start()
    try:
        path = inst.queue / "private" / "keeper"
        assert wait_for(lambda: path.exists())
        held = [connect_unix(path) for _ in range(4)]
        for i, s in enumerate(held):
            reply = attr_call(s, request="rewrite", rule="local", address=f"u{i}")
            assert reply["address"] == f"u{i}@host.example.test", reply
        pids = {p for p in children_of(inst.pid)
                if Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[2] == b"keeper"}
        assert len(pids) == 1
        for s in held:
            s.close()
        # All gone after max_use: the process leaves and master starts a fresh one.
        [old] = pids
        assert wait_for(lambda: not Path(f"/proc/{old}").exists() or
                        Path(f"/proc/{old}/status").read_text().find("State:\tZ") >= 0)
        s = connect_unix(path)
        assert attr_call(s, request="rewrite", rule="local", address="v")["address"] == "v@host.example.test"
        s.close()
    finally:
        inst.stop()
