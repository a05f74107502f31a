"""Debian's Dovecot as an LMTP server for Postern's lmtp(8): `dovecot -F -c CONF` in a
directory under /var/tmp, a passwd-file userdb whose users are stored as nobody in
maildir:~/Maildir, and an LMTP unix_listener at `socket`. A user may get a tiny quota so
that its delivery fails after DATA while the others succeed.

    dv = DovecotLmtp(users={"alice": None, "bob": "10B"})   # bob: 10-byte quota
    ... transport_maps = inline:{{dove.test=lmtp:unix:%s}} % dv.socket ...
    dv.wait_maildir("alice", "Subject: x")
    dv.stop()
"""
import os
import shutil
import subprocess
import tempfile
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
