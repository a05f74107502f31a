"""Cyrus SASL set-up for end-to-end AUTH tests: a private sasldb and <app>.conf
(cyrus_sasl_config_path points smtpd at the directory), and a private saslauthd.

    sasl_dir = make_sasl_dir(tmp_path / "sasl", {"test": "secret"})
    main_cf = f"cyrus_sasl_config_path = {sasl_dir}\\nsmtpd_sasl_auth_enable = yes\\n"

Users are made in the realm REALM; smtpd's realm is smtpd_sasl_local_domain or, when
that is empty, $myhostname, so a test sets one of them to REALM.
"""
import os
import pwd
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

REALM = "mail.example.com"
MECHANISMS = "PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256"


def add_sasldb_user(db, user, password, realm=REALM):
    """saslpasswd2 -c: creates `db` when missing; the password goes on stdin."""
    subprocess.run(["saslpasswd2", "-p", "-c", "-f", str(db), "-u", realm, user],
                   input=password + "\n", text=True, check=True, timeout=30)


def write_app_conf(directory, app="smtpd", **options):
    """DIR/<app>.conf with Cyrus options (pwcheck_method=..., mech_list=...)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{name}: {value}\n" for name, value in options.items())
    (directory / f"{app}.conf").write_text(text)
    return directory


def make_sasl_dir(directory, users, app="smtpd", mech_list=MECHANISMS, realm=REALM):
    """A cyrus_sasl_config_path directory: sasldb2 with `users` ({name: password}) and
    <app>.conf that checks passwords against it (auxprop)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "sasldb2"
    for user, password in users.items():
        add_sasldb_user(db, user, password, realm)
    # smtpd may run as another user than the test (mail_owner): let it read the db.
    os.chmod(db, 0o644)
    return write_app_conf(directory, app, pwcheck_method="auxprop", auxprop_plugin="sasldb",
                          sasldb_path=str(db), mech_list=mech_list)


class Saslauthd:
    """A private saslauthd (-a shadow) on DIR/mux for one test, with a system user
    made for it (needs root: useradd, and saslauthd reads /etc/shadow).

        with Saslauthd(tmp_path / "saslauthd", "posternsasl", "Secret123") as sad:
            write_app_conf(d, pwcheck_method="saslauthd", saslauthd_path=sad.socket, ...)
    """

    def __init__(self, run_dir, user, password):
        self.run_dir = Path(run_dir)
        self.user = user
        self.password = password
        self.socket = str(self.run_dir / "mux")
        self.proc = None
        self.made_user = False

    def __enter__(self):
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            pwd.getpwnam(self.user)
        except KeyError:
            subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", self.user],
                           check=True, timeout=30)
            self.made_user = True
        subprocess.run(["chpasswd"], input=f"{self.user}:{self.password}\n", text=True,
                       check=True, timeout=30)
        self.log = open(self.run_dir / "saslauthd.log", "w")
        self.proc = subprocess.Popen(
            ["saslauthd", "-a", "shadow", "-m", str(self.run_dir), "-n", "1", "-d"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.time() + 10
        while not os.path.exists(self.socket) and time.time() < end:
            time.sleep(0.05)
        # Directly, before smtpd depends on it.
        check = subprocess.run(["testsaslauthd", "-f", self.socket, "-u", self.user,
                                "-p", self.password], capture_output=True, text=True, timeout=30)
        if 'OK "Success."' not in check.stdout:
            self.__exit__(None, None, None)
            raise RuntimeError(f"saslauthd does not work: {check.stdout} {check.stderr}")
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        if self.made_user:
            subprocess.run(["userdel", self.user], timeout=30)
        return False


class HeldSaslauthd:
    """A stand-in for saslauthd on `path` (its protocol: login, password, service and
    realm as counted strings; the answer "OK" or "NO" counted too) that accepts every
    password, but holds the answer for `held_user` until release(): a Cyrus step that
    hangs in saslauthd, as behind a slow PAM or LDAP.

        sad = HeldSaslauthd(tmp / "mux", "slow")
        write_app_conf(d, pwcheck_method="saslauthd", saslauthd_path=sad.path, ...)
        sad.held.wait(60)   # the held request arrived
        sad.release()
    """

    def __init__(self, path, held_user):
        self.path = str(path)
        self.held_user = held_user
        self.held = threading.Event()
        self._released = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def release(self):
        self._released.set()

    def close(self):
        self.release()
        self.sock.close()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            conn.settimeout(60)
            data, fields = b"", []
            while len(fields) < 4:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
                fields, rest = [], data
                while len(rest) >= 2 and len(fields) < 4:
                    (n,) = struct.unpack("!H", rest[:2])
                    if len(rest) < 2 + n:
                        break
                    fields.append(rest[2:2 + n])
                    rest = rest[2 + n:]
            if fields[0].decode() == self.held_user:
                self.held.set()
                # A bound, so that a broken smtpd fails the test rather than hangs it.
                self._released.wait(120)
            conn.sendall(struct.pack("!H", 2) + b"OK")
