"""Debian's Postfix as a peer of a Postern instance: its own config, queue and maillog in
a temporary directory, started with `postfix -c DIR start` and stopped again. Tests use
it as the SMTP client that relays into Postern (relayhost = [127.0.0.1]:PORT), as the
reference server for differential checks, and the benchmarks as the system to compare
with. Stand-alone (no pytest imports) so bench/ can import it too.

    peer = PostfixPeer(main_cf=f"relayhost = [127.0.0.1]:{port}\\n")
    peer.start()
    peer.sendmail(["-f", "a@example.test", "b@example.test"], "Subject: x\\n\\nhi\\n")
    peer.wait_log("status=sent")
    peer.cleanup()   # stop() and remove the temporary directory

or `with PostfixPeer(...) as peer:` (start, then cleanup at the end).

Needs root: Postfix's master starts as root and drops to mail_owner = postfix. The
instance lives under /var/tmp (world-traversable) rather than pytest's 0700 tmp dirs,
so that the unprivileged daemons and local(8)'s recipients can reach it. Its config
directory is added to alternate_config_directories in /etc/postfix/main.cf while it runs
(the set-gid postdrop insists) and removed again in stop().
"""
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from mailsystem import MailInstance, free_port  # noqa: F401 (free_port: for users of this module)

descendants = MailInstance.descendants

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
SENDMAIL = "/usr/sbin/sendmail"
SMTP_SOURCE = "/usr/sbin/smtp-source"
LOCK = "/var/tmp/postern-postfixpeer.lock"


def available():
    """Why a peer cannot run here, or "" when it can."""
    if os.getuid() != 0:
        return "Postfix's master must start as root"
    if not os.path.exists(POSTFIX):
        return f"{POSTFIX} is not installed"
    return ""


def _edit_alternate_dirs(path, add):
    """Adds or removes `path` in alternate_config_directories of the default main.cf,
    under a lock (tests and benchmarks may run side by side)."""
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = subprocess.run([POSTCONF, "-h", "alternate_config_directories"],
                                 capture_output=True, text=True).stdout
        dirs = [d for d in re.split(r"[\s,]+", current) if d]
        if add and path not in dirs:
            dirs.append(path)
        elif not add and path in dirs:
            dirs.remove(path)
        else:
            return
        subprocess.run([POSTCONF, "-e", "alternate_config_directories = " + " ".join(dirs)],
                       check=True, capture_output=True)


def merge_main_cf(defaults, overrides):
    """main.cf text: `defaults` without the parameters that `overrides` sets, then
    `overrides` (Postfix warns about a parameter set twice)."""
    names = {line.split("=", 1)[0].strip() for line in overrides.splitlines()
             if "=" in line and not line[:1].isspace() and not line.startswith("#")}
    kept = [line for line in defaults.splitlines()
            if "=" not in line or line.split("=", 1)[0].strip() not in names]
    return "\n".join(kept) + "\n" + overrides


def master_cf(smtpd_listen=None, smtpd_args="", extra=""):
    """Debian's master.cf without chroot (a temporary queue has no chroot files) and
    without the port-25 listener; `smtpd_listen` ("127.0.0.1:2525") adds one there."""
    out = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        fields = line.split()
        if line.startswith(("#", " ", "\t")) or len(fields) < 8:
            out.append(line)
            continue
        if fields[1] == "inet":
            out.append("#" + line)
            continue
        fields[4] = "n"
        out.append("  ".join(fields))
    if smtpd_listen:
        out.append(f"{smtpd_listen} inet n - n - - smtpd {smtpd_args}".rstrip())
    return "\n".join(out) + "\n" + extra


class PostfixPeer:
    def __init__(self, main_cf="", master_cf_text=None, root=None, name="peer"):
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix=f"postern-{name}-",
                                                                  dir="/var/tmp"))
        self.own_root = root is None
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.etc = self.root / "etc"
        self.queue = self.root / "queue"
        self.data = self.root / "data"
        self.mail = self.root / "mail"
        self.maillog = self.root / "maillog"
        for d in (self.etc, self.queue, self.data, self.mail):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.mail, 0o1777)
        shutil.chown(self.data, "postfix")
        defaults = ("compatibility_level = 3.6\n"
                    f"queue_directory = {self.queue}\n"
                    f"data_directory = {self.data}\n"
                    "mail_owner = postfix\nsetgid_group = postdrop\n"
                    f"syslog_name = postfix-{name}\n"
                    "myhostname = peer.example.test\nmydomain = example.test\n"
                    "mydestination =\ninet_interfaces = loopback-only\ninet_protocols = ipv4\n"
                    f"mail_spool_directory = {self.mail}/\n"
                    "alias_maps =\nalias_database =\nmailbox_size_limit = 0\n"
                    "smtp_dns_support_level = disabled\n"
                    f"maillog_file = {self.maillog}\n")
        (self.etc / "main.cf").write_text(merge_main_cf(defaults, main_cf))
        (self.etc / "master.cf").write_text(master_cf_text if master_cf_text is not None
                                            else master_cf())
        self.running = False
        self.preexec_fn = None

    def start(self, preexec_fn=None):
        """preexec_fn (e.g. netns.Host.preexec) runs before `postfix start` and is kept
        for `postfix stop`: a peer in another network namespace is stopped from there."""
        self.preexec_fn = preexec_fn
        _edit_alternate_dirs(str(self.etc), True)
        p = subprocess.run([POSTFIX, "-c", str(self.etc), "start"], capture_output=True,
                           text=True, preexec_fn=preexec_fn)
        if p.returncode != 0:
            _edit_alternate_dirs(str(self.etc), False)
            raise RuntimeError(f"postfix start: {p.stdout}{p.stderr}")
        self.running = True
        if not _wait(lambda: "daemon started" in self.log(), 20):
            raise RuntimeError(f"Postfix peer did not start:\n{self.log()}")

    def master_pid(self):
        try:
            return int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def pids(self):
        """The master and all its descendants (for RSS and CPU accounting)."""
        master = self.master_pid()
        return [master] + descendants(master) if master else []

    def stop(self):
        if self.running:
            master = self.master_pid()
            pids = self.pids()
            subprocess.run([POSTFIX, "-c", str(self.etc), "stop"], capture_output=True,
                           preexec_fn=self.preexec_fn)
            if master:
                _wait(lambda: not os.path.exists(f"/proc/{master}"), 15)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.running = False
            _edit_alternate_dirs(str(self.etc), False)

    def cleanup(self):
        """stop() and, when the peer made its own directory, remove it (stop() alone
        leaves it for a look at the maillog)."""
        self.stop()
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def log(self):
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def wait_log(self, text, count=1, timeout=30.0):
        ok = _wait(lambda: self.log().count(text) >= count, timeout)
        assert ok, f"{text!r} x{count} not in the Postfix peer's log:\n{self.log()}"
        return self.log()

    def sendmail(self, args, message):
        data = message.encode() if isinstance(message, str) else message
        return subprocess.run([SENDMAIL, "-C", str(self.etc), *args], input=data,
                              capture_output=True, timeout=60)

    def maildir_count(self, user):
        try:
            return len(os.listdir(self.mail / user / "new"))
        except OSError:
            return 0


def smtp_source(port, sessions, messages, size=None, recipient="user@localhost",
                sender="source@example.test", extra=(), timeout=600):
    """Postfix's smtp-source against 127.0.0.1:port; returns CompletedProcess."""
    argv = [SMTP_SOURCE, "-s", str(sessions), "-m", str(messages), "-f", sender,
            "-t", recipient, *extra]
    if size:
        argv += ["-l", str(size)]
    return subprocess.run(argv + [f"127.0.0.1:{port}"], capture_output=True, text=True,
                          timeout=timeout)


def memory_kb(pids, field="VmRSS:", source="status"):
    """Total of one /proc/PID/<source> field over `pids` in kB: VmRSS from status (shared
    pages count in each process, as ps and top show them) or Pss from smaps_rollup
    (shared pages divided among their sharers)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
                if line.startswith(field):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def rss_kb(pids):
    return memory_kb(pids)


def pss_kb(pids):
    return memory_kb(pids, "Pss:", "smaps_rollup")


def _wait(cond, timeout, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())
