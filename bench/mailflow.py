"""Local mail flow: N messages submitted with `sendmail` and delivered by local(8) into a
Maildir, through Postern and through Debian's Postfix, each started on its own
configuration and queue under one temporary directory, one after the other on the same
machine. Prints, for each: messages/second (first submission to last file in new/), CPU
seconds per message of the whole instance (daemons and submitting commands, from a
cpuacct cgroup), fsyncs per message (strace -f of the instance during a small extra
run), and Postern's speed as a multiple of Postfix's.

Needs root (Postfix's master must be root; the recipient is a dedicated user that both
systems deliver to). Usage: python3 bench/mailflow.py ABS_BUILD_DIR
  BENCH_MESSAGES (default 500), BENCH_SUBMITTERS (parallel sendmail loops, default 4)
"""
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "500"))
SUBMITTERS = int(os.environ.get("BENCH_SUBMITTERS", "4"))
USER = "posternbench"
PF_DIRS = "/var/tmp/postern-bench-postfix"
BODY = ("Subject: bench message {n}\nFrom: bench@localhost\n\n"
        + "A line of text in the benchmark message body, about seventy bytes.\n" * 40)


def ensure_user():
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", USER],
                       check=True)


class Cgroup:
    """A cpuacct cgroup (v1) that a process tree joins; reads its CPU time."""

    def __init__(self, name):
        self.path = Path("/sys/fs/cgroup/cpuacct") / name
        self.path.mkdir(exist_ok=True)

    def preexec(self):
        path = self.path / "tasks"
        return lambda: path.write_text(str(os.getpid()))

    def cpu_seconds(self):
        try:
            return int((self.path / "cpuacct.usage").read_text()) / 1e9
        except OSError:
            return float("nan")

    def remove(self):
        try:
            pids = (self.path / "tasks").read_text().split()
        except OSError:
            return
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


class System:
    """One mail system under test: how to configure, start, submit and stop it."""
    name = ""

    def __init__(self, root):
        self.root = Path(root)
        self.etc = self.root / "etc"
        self.mail = self.root / "mail"
        for d in (self.etc, self.mail, self.root / "queue", self.root / "data"):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.mail, 0o1777)

    def common_main_cf(self):
        return ("compatibility_level = 3.6\n"
                f"queue_directory = {self.root / 'queue'}\n"
                f"data_directory = {self.root / 'data'}\n"
                "mail_owner = postfix\nsetgid_group = postdrop\n"
                "myhostname = bench.example.test\nmydomain = example.test\n"
                "mydestination = localhost\ninet_interfaces = loopback-only\n"
                "inet_protocols = ipv4\n"
                f"mail_spool_directory = {self.mail}/\n"
                "alias_maps =\nalias_database =\nmailbox_size_limit = 0\n"
                f"maillog_file = {self.root / 'maillog'}\n")

    def maildir_count(self):
        new = self.mail / USER / "new"
        try:
            return len(os.listdir(new))
        except OSError:
            return 0

    def submit(self, n, cg=None):
        argv = self.sendmail_argv() + ["-f", "bench@localhost", f"{USER}@localhost"]
        p = subprocess.run(argv, input=BODY.format(n=n).encode(), capture_output=True,
                           preexec_fn=cg.preexec() if cg else None)
        if p.returncode != 0:
            raise RuntimeError(f"{self.name} sendmail exit {p.returncode}: {p.stderr.decode()[:300]}")


class Postfix(System):
    name = "Postfix"

    def configure(self):
        (self.etc / "main.cf").write_text(self.common_main_cf())
        master = Path("/etc/postfix/master.cf").read_text()
        # No SMTP listener: the benchmark is the local path only.
        lines = [l for l in master.splitlines() if not l.startswith("smtp      inet")]
        (self.etc / "master.cf").write_text("\n".join(lines) + "\n")
        allow_alternate_config(str(self.etc))
        # Postfix wants data_directory owned by mail_owner before it starts.
        shutil.chown(self.root / "data", "postfix")

    def start(self, cg):
        subprocess.run(["/usr/sbin/postfix", "-c", str(self.etc), "start"], check=True,
                       capture_output=True, preexec_fn=cg.preexec())

    def stop(self):
        subprocess.run(["/usr/sbin/postfix", "-c", str(self.etc), "stop"], capture_output=True)

    def sendmail_argv(self):
        return ["/usr/sbin/sendmail", "-C", str(self.etc)]


class Postern(System):
    name = "Postern"

    def __init__(self, root, build):
        super().__init__(root)
        self.build = Path(build)

    def configure(self):
        (self.etc / "main.cf").write_text(
            self.common_main_cf()
            + f"daemon_directory = {self.build / 'libexec/postern'}\n"
            + f"command_directory = {self.build / 'sbin'}\n"
            + f"maillog_file_prefixes = {self.root}\n")
        master = (Path(__file__).resolve().parents[1] / "conf/master.cf").read_text()
        lines = [l for l in master.splitlines() if " inet " not in l]
        (self.etc / "master.cf").write_text("\n".join(lines) + "\n")

    def start(self, cg):
        postern_control(self.build, self.etc, "start", cg)

    def stop(self):
        postern_control(self.build, self.etc, "stop")

    def sendmail_argv(self):
        return [str(self.build / "sbin/sendmail"), "-C", str(self.etc)]


def postern_control(build, etc, verb, cg=None):
    """`postern -c ETC start|stop`; start runs inside the cgroup and must succeed."""
    subprocess.run([str(Path(build) / "sbin/postern"), "-c", str(etc), verb],
                   check=verb == "start", capture_output=True,
                   preexec_fn=cg.preexec() if cg else None)


def allow_alternate_config(path):
    """postfix -c DIR needs DIR in alternate_config_directories of the default main.cf."""
    current = subprocess.run(["/usr/sbin/postconf", "-h", "alternate_config_directories"],
                             capture_output=True, text=True).stdout.split()
    if path not in [p.rstrip(",") for p in current]:
        value = " ".join([p.rstrip(",") for p in current] + [path])
        subprocess.run(["/usr/sbin/postconf", "-e", f"alternate_config_directories = {value}"],
                       check=True)


def wait_delivered(system, want, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if system.maildir_count() >= want:
            return True
        time.sleep(0.02)
    return False


def run_flow(system, cg, count, first):
    """Submits `count` messages from SUBMITTERS threads; returns wall seconds until the
    last one is in the Maildir."""
    errors = []

    def loop(k):
        try:
            for n in range(first + k, first + count, SUBMITTERS):
                system.submit(n, cg)
        except Exception as e:  # reported after the join
            errors.append(e)

    already = system.maildir_count()
    start = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(k,)) for k in range(SUBMITTERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    if not wait_delivered(system, already + count, 300):
        raise RuntimeError(f"{system.name}: only {system.maildir_count() - already} of {count} "
                           f"delivered; see {system.root / 'maillog'}")
    return time.perf_counter() - start


def fsyncs_per_message(system, cg, count=20):
    """strace -f on every process of the instance while `count` messages flow."""
    if not shutil.which("strace"):
        return None
    pids = (cg.path / "tasks").read_text().split()
    out = system.root / "strace.out"
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-c", "-e", "trace=fsync,fdatasync",
                               "-o", str(out)] + sum((["-p", p] for p in pids), []),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    base = system.maildir_count()
    argv = ["strace", "-f", "-qq", "-c", "-e", "trace=fsync,fdatasync", "-o",
            str(system.root / "strace.submit")] + system.sendmail_argv() + [
        "-f", "bench@localhost", f"{USER}@localhost"]
    for n in range(count):
        subprocess.run(argv, input=BODY.format(n=n).encode(), capture_output=True)
    wait_delivered(system, base + count, 60)
    time.sleep(0.5)
    tracer.send_signal(signal.SIGINT)
    tracer.wait(timeout=30)
    total = 0
    for f in (out, system.root / "strace.submit"):
        if f.exists():
            for line in f.read_text().splitlines():
                fields = line.split()
                if fields and fields[-1] in ("fsync", "fdatasync"):
                    total += int(fields[3])
    return total / count


def measure(system):
    cg = Cgroup(f"postern-bench-{system.name.lower()}")
    try:
        system.configure()
        system.start(cg)
        run_flow(system, cg, 20, 0)  # warm-up: processes started, Maildir created
        cpu0 = cg.cpu_seconds()
        wall = run_flow(system, cg, MESSAGES, 20)
        cpu = cg.cpu_seconds() - cpu0
        syncs = fsyncs_per_message(system, cg)
        return {"rate": MESSAGES / wall, "wall": wall, "cpu": cpu / MESSAGES, "fsync": syncs}
    finally:
        system.stop()
        cg.remove()


def main():
    if os.getuid() != 0:
        print("mailflow: needs root (Postfix's master runs as root); not measured")
        return 0
    build = sys.argv[1]
    ensure_user()
    with tempfile.TemporaryDirectory(prefix="postern-bench-") as tmp:
        os.chmod(tmp, 0o755)
        results = {}
        pf_root = Path(PF_DIRS)
        shutil.rmtree(pf_root, ignore_errors=True)
        for system in (Postfix(pf_root), Postern(Path(tmp) / "postern", build)):
            results[system.name] = measure(system)
            r = results[system.name]
            fs = "n/a" if r["fsync"] is None else f"{r['fsync']:.2f}"
            print(f"{system.name:8s} {MESSAGES} messages, {SUBMITTERS} submitters: "
                  f"{r['rate']:8.1f} msg/s  {r['cpu'] * 1000:6.2f} ms CPU/msg  "
                  f"{fs} fsync/msg")
        shutil.rmtree(pf_root, ignore_errors=True)
    ratio = results["Postern"]["rate"] / results["Postfix"]["rate"]
    print(f"Postern/Postfix speed: {ratio:.2f}x   CPU per message: "
          f"{results['Postern']['cpu'] / results['Postfix']['cpu']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
