"""Debian's Dovecot as a peer: DovecotLmtp (an LMTP server for Postern's lmtp(8)) and
DovecotAuth (the SASL server of Postern's smtpd, smtpd_sasl_type = dovecot).

DovecotLmtp: `dovecot -F -c CONF` in a
directory under /var/tmp, a passwd-file userdb whose users are stored as nobody in
maildir:~/Maildir, and an LMTP unix_listener at `socket`. A user may get a tiny quota so
that its delivery fails after DATA while the others succeed.

    dv = DovecotLmtp(users={"alice": None, "bob": "10B"})   # bob: 10-byte quota
    ... transport_maps = inline:{{dove.test=lmtp:unix:%s}} % dv.socket ...
    dv.wait_maildir("alice", "Subject: x")
    dv.stop()

DovecotAuth: its auth service only (no protocols), a passwd-file passdb, listening on
the UNIX sockets the test names; it can be stopped and started again:

    with DovecotAuth({"test": "secret"}) as dovecot:
        main_cf = f"smtpd_sasl_type = dovecot\\nsmtpd_sasl_path = {dovecot.socket}\\n"
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from mailsystem import wait_for

DOVECOT = "/usr/sbin/dovecot"


def available():
    if not os.path.exists(DOVECOT) or not os.path.exists("/usr/lib/dovecot/lmtp"):
        return "Dovecot's LMTP server (dovecot-lmtpd) is not installed"
    if os.getuid() != 0:
        return "Dovecot's master needs root here"
    return ""


class DovecotLmtp:
    def __init__(self, users):
        self.root = Path(tempfile.mkdtemp(prefix="postern-dovecot-", dir="/var/tmp"))
        os.chmod(self.root, 0o755)
        self.home = self.root / "home"
        self.home.mkdir()
        os.chmod(self.home, 0o777)
        (self.root / "run").mkdir()
        (self.root / "state").mkdir()
        self.socket = str(self.root / "lmtp")
        self.log_path = self.root / "dovecot.log"
        lines = []
        for user, quota in users.items():
            extra = f"userdb_quota_rule=*:storage={quota}" if quota else ""
            lines.append(f"{user}::65534:65534::{self.home / user}::{extra}")
        (self.root / "users").write_text("\n".join(lines) + "\n")
        (self.root / "dovecot.conf").write_text(f"""\
base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = {self.root.name}
protocols = lmtp
ssl = no
log_path = {self.log_path}
mail_location = maildir:~/Maildir
auth_username_format = %Ln
mail_plugins = quota
plugin {{
  quota = maildir:User quota
}}
passdb {{
  driver = passwd-file
  args = {self.root}/users
}}
userdb {{
  driver = passwd-file
  args = {self.root}/users
}}
service lmtp {{
  unix_listener {self.socket} {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
""")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        assert wait_for(lambda: os.path.exists(self.socket), 20), self.log()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def maildir(self, user):
        """The messages in the user's Maildir (new/ and cur/), as text."""
        out = []
        for sub in ("new", "cur"):
            d = self.home / user / "Maildir" / sub
            if d.is_dir():
                out += [p.read_text(errors="replace") for p in sorted(d.iterdir())]
        return out

    def wait_maildir(self, user, text, timeout=60.0):
        ok = wait_for(lambda: any(text in m for m in self.maildir(user)), timeout)
        assert ok, f"{text!r} not in {user}'s Maildir; Dovecot log:\n{self.log()}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def auth_available():
    """Why DovecotAuth cannot run here, or "" when it can."""
    if os.getuid() != 0:
        return "Dovecot's master must start as root"
    if not os.path.exists(DOVECOT):
        return f"{DOVECOT} is not installed"
    return ""


class DovecotAuth:
    def __init__(self, users, mechanisms="plain login cram-md5", failure_delay="0",
                 extra_sockets=(), settings="", inet_port=None):
        self.dir = Path(tempfile.mkdtemp(prefix="postern-dovecot-", dir="/var/tmp"))
        os.chmod(self.dir, 0o755)
        self.socket = str(self.dir / "auth")
        self.sockets = [self.socket, *map(str, extra_sockets)]
        self.inet_port = inet_port
        self.log_path = self.dir / "dovecot.log"
        passwd = self.dir / "passwd"
        passwd.write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in users.items()))
        os.chmod(passwd, 0o644)
        listeners = "".join(f"  unix_listener {path} {{\n    mode = 0666\n  }}\n"
                            for path in self.sockets)
        if inet_port:  # smtpd_sasl_path = inet:127.0.0.1:PORT
            listeners += (f"  inet_listener {{\n    address = 127.0.0.1\n"
                          f"    port = {inet_port}\n  }}\n")
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(
            f"base_dir = {self.dir}/run\n"
            f"state_dir = {self.dir}/state\n"
            f"instance_name = postern-{self.dir.name}\n"
            "protocols =\n"
            "listen = 127.0.0.1\n"        # it may not be empty; no service listens anyway
            f"log_path = {self.log_path}\n"
            "ssl = no\n"
            "disable_plaintext_auth = no\n"
            f"auth_mechanisms = {mechanisms}\n"
            f"auth_failure_delay = {failure_delay}\n"
            "default_internal_user = dovecot\n"
            "default_login_user = dovenull\n"
            "passdb {\n  driver = passwd-file\n"
            f"  args = scheme=PLAIN username_format=%u {passwd}\n}}\n"
            "userdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=/nonexistent\n}\n"
            f"service auth {{\n{listeners}}}\n"
            + settings)
        self.proc = None

    def start(self):
        for path in self.sockets:
            if os.path.exists(path):
                os.unlink(path)
        self.out = open(self.dir / "dovecot.out", "a")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)], stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        end = time.time() + 30
        while not all(os.path.exists(p) for p in self.sockets):
            if self.proc.poll() is not None or time.time() > end:
                raise RuntimeError("dovecot did not start: "
                                   + (self.dir / "dovecot.out").read_text()
                                   + (self.log_path.read_text() if self.log_path.exists() else ""))
            time.sleep(0.05)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        # Its auth process may outlive the master for a moment: wait for the socket files.
        end = time.time() + 30
        while any(os.path.exists(p) for p in self.sockets) and time.time() < end:
            for path in self.sockets:
                if os.path.exists(path):
                    os.unlink(path)
            time.sleep(0.05)

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False
