"""SMTP server throughput and memory: Postfix's smtp-source against Postern's smtpd and
against Debian's Postfix smtpd, each with its own queue and configuration under /var/tmp,
delivering with local(8) into a Maildir, both with their default fsync durability (the
queue file is fsynced before 250, the Maildir file before it is moved into new/).

For each system it prints
  accepted/s   messages / smtp-source wall time (all sessions done, every 250 received)
  delivered/s  messages / time from the start until the last file is in Maildir/new
  CPU ms/msg   CPU time of the whole instance (cpuacct cgroup: master and every daemon,
               not smtp-source) during the run, per message
  RSS@N        peak total VmRSS of the instance's processes while N sessions run
               (PSS too: shared pages divided among the processes that share them)
  idle RSS     total VmRSS/PSS with IDLE sessions open, each after EHLO, held
and Postern's ratios to Postfix. Postfix's default_process_limit (100) would queue the
idle sessions behind 100 smtpd processes: it is raised to IDLE + 100 here, for both.

Needs root (Postfix's master runs as root). Usage: python3 bench/smtp.py ABS_BUILD_DIR
  BENCH_SMTP_MESSAGES (default 2000; the issue's full run is 5000)
  BENCH_SMTP_SESSIONS (default 50), BENCH_SMTP_SIZE (default 2048 bytes)
  BENCH_SMTP_IDLE (default 1000 idle sessions; 0 skips the idle test)
  BENCH_SMTP_MAX_USE (default 100000, for both systems; see below)
  BENCH_SMTP_EXTRA_CF (main.cf lines for both, e.g. "smtpd_peername_lookup = no",
  to find out what limits a system)

max_use: both systems run with a max_use that is never reached by default, so that
neither restarts processes during the measurement; BENCH_SMTP_MAX_USE=100 (Postfix's
default) runs too: Postern's multi servers keep accepting past max_use while they have
clients (trivial-rewrite's kept clients no longer stall new cleanup processes).
"""
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

from mailflow import USER, Cgroup, ensure_user, postern_control, wait_delivered  # noqa: E402
import postfixpeer as pp  # noqa: E402

MESSAGES = int(os.environ.get("BENCH_SMTP_MESSAGES", "2000"))
SESSIONS = int(os.environ.get("BENCH_SMTP_SESSIONS", "50"))
SIZE = int(os.environ.get("BENCH_SMTP_SIZE", "2048"))
IDLE = int(os.environ.get("BENCH_SMTP_IDLE", "1000"))
MAX_USE = int(os.environ.get("BENCH_SMTP_MAX_USE", "100000"))
TOP = Path(__file__).resolve().parents[1]
RECIPIENT = f"{USER}@localhost"
# The same knobs for both: no per-client limits (the idle test opens IDLE sessions from
# one address) and enough processes for Postfix's process-per-session smtpd.
COMMON_CF = (f"default_process_limit = {IDLE + 100}\nmax_use = {MAX_USE}\n"
             "smtpd_client_connection_count_limit = 0\n"
             "mydestination = localhost\n"
             + os.environ.get("BENCH_SMTP_EXTRA_CF", "").replace("\\n", "\n") + "\n")


class PostfixSystem:
    name = "Postfix"

    def __init__(self, root, port):
        self.port = port
        self.peer = pp.PostfixPeer(main_cf=COMMON_CF, root=root, name="bench",
                                   master_cf_text=pp.master_cf(f"127.0.0.1:{port}"))
        self.mail = self.peer.mail

    def start(self, cg):
        self.peer.start(preexec_fn=cg.preexec())

    def stop(self):
        self.peer.stop()

    def log(self):
        return self.peer.log()

    def maildir_count(self):
        return self.peer.maildir_count(USER)


class PosternSystem:
    name = "Postern"

    def __init__(self, root, port, build):
        self.root, self.port, self.build = Path(root), port, Path(build)
        self.etc, self.mail = self.root / "etc", self.root / "mail"
        for d in (self.etc, self.mail, self.root / "queue", self.root / "data"):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        os.chmod(self.mail, 0o1777)
        (self.etc / "main.cf").write_text(
            "compatibility_level = 3.6\n"
            f"queue_directory = {self.root / 'queue'}\n"
            f"data_directory = {self.root / 'data'}\n"
            "mail_owner = postfix\nsetgid_group = postdrop\n"
            "myhostname = bench.example.test\nmydomain = example.test\n"
            "inet_interfaces = loopback-only\ninet_protocols = ipv4\n"
            f"mail_spool_directory = {self.mail}/\n"
            "alias_maps =\nalias_database =\nmailbox_size_limit = 0\n"
            f"maillog_file = {self.root / 'maillog'}\n"
            f"daemon_directory = {self.build / 'libexec/postern'}\n"
            f"command_directory = {self.build / 'sbin'}\n"
            f"maillog_file_prefixes = {self.root}\n" + COMMON_CF)
        master = (TOP / "conf/master.cf").read_text().splitlines()
        lines = [line for line in master if " inet " not in line]
        lines.append(f"127.0.0.1:{port} inet n - n - - smtpd")
        (self.etc / "master.cf").write_text("\n".join(lines) + "\n")

    def start(self, cg):
        postern_control(self.build, self.etc, "start", cg)

    def stop(self):
        postern_control(self.build, self.etc, "stop")

    def log(self):
        p = self.root / "maillog"
        return p.read_text(errors="replace") if p.exists() else ""

    def maildir_count(self):
        try:
            return len(os.listdir(self.mail / USER / "new"))
        except OSError:
            return 0


def memory_kb(cg):
    """(RSS, PSS) totals in kB over every process of the instance's cgroup."""
    pids = (cg.path / "tasks").read_text().split()
    return pp.rss_kb(pids), pp.pss_kb(pids)


class PeakSampler:
    """Samples the instance's memory every 0.2 s in a thread; keeps the peak."""

    def __init__(self, cg):
        self.cg, self.peak, self.stop_flag = cg, (0, 0), threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        while not self.stop_flag.wait(0.2):
            rss, pss = memory_kb(self.cg)
            if rss > self.peak[0]:
                self.peak = (rss, pss)

    def stop(self):
        self.stop_flag.set()
        self.thread.join()
        return self.peak


def source(system, sessions, messages):
    r = pp.smtp_source(system.port, sessions, messages, SIZE, recipient=RECIPIENT,
                       timeout=max(300, messages // 5))
    if r.returncode != 0:
        raise RuntimeError(f"{system.name}: smtp-source exit {r.returncode}: {r.stderr[-500:]}")


def throughput(system, cg):
    source(system, 5, 50)  # warm-up: processes started, Maildir created
    if not wait_delivered(system, 50, 120):
        raise RuntimeError(f"{system.name}: warm-up not delivered:\n{system.log()[-3000:]}")
    base = system.maildir_count()
    cpu0 = cg.cpu_seconds()
    sampler = PeakSampler(cg)
    start = time.perf_counter()
    try:
        source(system, SESSIONS, MESSAGES)
        accepted = time.perf_counter() - start
    finally:
        peak = sampler.stop()
    if not wait_delivered(system, base + MESSAGES, 600):
        raise RuntimeError(f"{system.name}: only {system.maildir_count() - base} of {MESSAGES} "
                           f"delivered:\n{system.log()[-3000:]}")
    delivered = time.perf_counter() - start
    cpu = cg.cpu_seconds() - cpu0
    return {"accepted": MESSAGES / accepted, "delivered": MESSAGES / delivered,
            "cpu_ms": cpu * 1000 / MESSAGES, "rss": peak[0], "pss": peak[1]}


def open_idle_sessions(port, count, timeout=600, window=50):
    """`count` sessions that got the greeting and a 250 to EHLO, held open. At most
    `window` are opened but not yet through EHLO at a time, so the listen queue never
    overflows into SYN retries (Postfix forks a process per session)."""
    sel = selectors.DefaultSelector()
    socks, done, opened = [], 0, 0
    end = time.time() + timeout
    while done < count and time.time() < end:
        while opened < count and opened - done < window:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
            sel.register(s, selectors.EVENT_READ, {"buf": b"", "state": "greeting"})
            opened += 1
        for key, _ in sel.select(timeout=1):
            if idle_step(key.fileobj, key.data):
                sel.unregister(key.fileobj)
                done += 1
    if done < count:
        raise RuntimeError(f"only {done} of {count} idle sessions got through EHLO")
    return socks


def idle_step(s, st):
    """Reads what arrived on an idle session; True once EHLO got its 250."""
    data = s.recv(4096)
    if not data:
        raise RuntimeError(f"idle session closed in state {st['state']}: {st['buf'][-200:]!r}")
    st["buf"] += data
    if not any(len(line) > 3 and line[3:4] == b" " for line in st["buf"].split(b"\r\n")):
        return False
    code = st["buf"][:3]
    if st["state"] == "greeting":
        if code != b"220":
            raise RuntimeError(f"greeting: {st['buf']!r}")
        st["state"], st["buf"] = "ehlo", b""
        s.sendall(b"EHLO idle.example.test\r\n")
        return False
    if code != b"250":
        raise RuntimeError(f"EHLO: {st['buf']!r}")
    return True


def idle_memory(system, cg):
    socks = open_idle_sessions(system.port, IDLE)
    try:
        time.sleep(1)  # let forked processes settle (copy-on-write faults done)
        return memory_kb(cg)
    finally:
        for s in socks:
            s.close()


def measure(system):
    cg = Cgroup(f"postern-bench-smtp-{system.name.lower()}")
    try:
        system.start(cg)
        result = throughput(system, cg)
        result["idle"] = idle_memory(system, cg) if IDLE else (0, 0)
        return result
    finally:
        system.stop()
        cg.remove()


def report(name, r):
    print(f"{name:8s} accepted {r['accepted']:8.1f}/s  delivered {r['delivered']:8.1f}/s  "
          f"{r['cpu_ms']:6.2f} ms CPU/msg  RSS@{SESSIONS} {r['rss'] / 1024:7.1f} MB "
          f"(PSS {r['pss'] / 1024:6.1f} MB)  idle {IDLE}: RSS {r['idle'][0] / 1024:7.1f} MB "
          f"(PSS {r['idle'][1] / 1024:6.1f} MB)", flush=True)


def main():
    why = pp.available()
    if why:
        print(f"smtp: {why}; not measured")
        return 0
    build = sys.argv[1]
    if not (Path(build) / "libexec/postern/smtpd").exists():
        print(f"smtp: {build}/libexec/postern/smtpd is not built; not measured")
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, IDLE + 1024)), hard))
    ensure_user()
    print(f"smtp-source -s {SESSIONS} -m {MESSAGES} -l {SIZE} -> {RECIPIENT} (local Maildir); "
          f"{IDLE} idle sessions; default_process_limit = {IDLE + 100}, max_use = {MAX_USE} "
          "for both", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="postern-bench-smtp-", dir="/var/tmp") as tmp:
        os.chmod(tmp, 0o755)
        systems = (PostfixSystem(Path(tmp) / "postfix", pp.free_port()),
                   PosternSystem(Path(tmp) / "postern", pp.free_port(), build))
        for system in systems:
            results[system.name] = measure(system)
            report(system.name, results[system.name])
    pf, pt = results["Postfix"], results["Postern"]

    def ratio(a, b):
        return a / b if b else float("nan")
    print(f"Postern/Postfix: accepted {ratio(pt['accepted'], pf['accepted']):.2f}x  "
          f"delivered {ratio(pt['delivered'], pf['delivered']):.2f}x (target >= 1.5x)  "
          f"CPU/msg {ratio(pt['cpu_ms'], pf['cpu_ms']):.2f}x  "
          f"RSS@{SESSIONS} {ratio(pt['rss'], pf['rss']):.2f}x (target <= 0.5x)  "
          f"idle RSS {ratio(pt['idle'][0], pf['idle'][0]):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
