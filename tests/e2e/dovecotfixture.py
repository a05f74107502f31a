"""Debian's Dovecot as the SASL server of Postern's smtpd (smtpd_sasl_type = dovecot):
`dovecot -F -c CONF` with a minimal configuration of its own (no IMAP/POP3 listeners,
base_dir and state_dir in a temporary directory, passdb passwd-file), whose auth service
listens on the UNIX sockets the test names.

    with DovecotAuth({"test": "secret"}) as dovecot:
        main_cf = f"smtpd_sasl_type = dovecot\\nsmtpd_sasl_path = {dovecot.socket}\\n"
    dovecot.stop(); dovecot.start()   # Dovecot going away and coming back

Needs root (Dovecot's master starts as root; its auth process runs as the dovecot
user). The directory lives under /var/tmp, which that user can traverse.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

DOVECOT = "/usr/sbin/dovecot"


def available():
    """Why Dovecot cannot run here, or "" when it can."""
    if os.getuid() != 0:
        return "Dovecot's master must start as root"
    if not os.path.exists(DOVECOT):
        return f"{DOVECOT} is not installed"
    return ""


class DovecotAuth:
    def __init__(self, users, mechanisms="plain login cram-md5", failure_delay="0",
                 extra_sockets=(), settings=""):
        self.dir = Path(tempfile.mkdtemp(prefix="postern-dovecot-", dir="/var/tmp"))
        os.chmod(self.dir, 0o755)
        self.socket = str(self.dir / "auth")
        self.sockets = [self.socket, *map(str, extra_sockets)]
        self.log_path = self.dir / "dovecot.log"
        passwd = self.dir / "passwd"
        passwd.write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in users.items()))
        os.chmod(passwd, 0o644)
        listeners = "".join(f"  unix_listener {path} {{\n    mode = 0666\n  }}\n"
                            for path in self.sockets)
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
