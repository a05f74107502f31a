"""A running sandbox Postern mail system for end-to-end tests of the mail flow.

MailInstance(root) writes main.cf/master.cf under root/conf (every service as the
invoking user), creates the queue tree, starts `master -d` and stops it (SIGKILLing
leftovers) in stop(). Services whose daemon is not built yet are left out of master.cf.

    inst = MailInstance(tmp_path, main_cf="mydestination = localhost\\n")
    inst.start()
    inst.sendmail(["-f", "me@localhost", "user@localhost"], "Subject: x\\n\\nhi\\n")
    inst.wait_log("status=sent")
    inst.stop()
"""
import grp
import os
import pwd
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from conftest import BUILD, postern, run

QUEUES = ("maildrop", "incoming", "active", "deferred", "hold", "corrupt", "bounce",
          "defer", "trace", "saved", "flush", "pid", "public", "private")

# service type private unpriv chroot wakeup maxproc command [args]
MAIL_SERVICES = [
    ("pickup", "unix", "n", "-", "n", "60", "1", "pickup"),
    ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
    ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
    ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
    ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
    ("local", "unix", "-", "n", "n", "-", "-", "local"),
    ("error", "unix", "-", "-", "n", "-", "-", "error"),
    ("retry", "unix", "-", "-", "n", "-", "-", "error"),
    ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
    ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
]


def wait_for(cond, timeout=20.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        value = cond()
        if value:
            return value
        time.sleep(step)
    return cond()


def queue_record(rtype, data=b""):
    """One queue-file record (util/queue/record.h): type byte, length in 7-bit groups
    (low group first, high bit = more), data."""
    data = data.encode() if isinstance(data, str) else data
    out = bytearray(rtype.encode())
    n = len(data)
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes(out) + data


def attr_encode(**attrs):
    """One record of Postern's attribute protocol (values with control bytes %XX)."""
    def esc(v):
        raw = v.encode() if isinstance(v, str) else str(v).encode()
        return "".join(chr(b) if 0x20 <= b < 0x7f and b != 0x25 else "%%%02X" % b
                       for b in raw)
    out = []
    for k, v in attrs.items():
        for item in (v if isinstance(v, list) else [v]):
            out.append(f"{k}={esc(item)}\n")
    return ("".join(out) + "\n").encode()


def attr_decode(data):
    """Decodes one record (bytes up to the empty line) into {name: [values]}."""
    rec = {}
    for line in data.decode("latin-1").split("\n"):
        if not line:
            continue
        k, v = line.split("=", 1)
        b = bytearray()
        i = 0
        while i < len(v):
            if v[i] == "%" and i + 3 <= len(v):
                b.append(int(v[i + 1:i + 3], 16))
                i += 3
            else:
                b.append(ord(v[i]))
                i += 1
        rec.setdefault(k, []).append(b.decode("utf-8", "replace"))
    return rec


def attr_call(path, timeout=10.0, **attrs):
    """Sends one record to a UNIX socket service, returns the reply {name: [values]}."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(path))
    try:
        s.sendall(attr_encode(**attrs))
        buf = b""
        while b"\n\n" not in buf and buf != b"\n":
            data = s.recv(65536)
            if not data:
                break
            buf += data
        return attr_decode(buf.split(b"\n\n")[0])
    finally:
        s.close()


def free_port():
    """A TCP port on 127.0.0.1 that is free now (bind port 0, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def smtpd_service(port, options=None, command="smtpd", maxproc="-"):
    """A master.cf line for an smtpd listening on 127.0.0.1:port, with -o overrides:
        MailInstance(tmp, master_cf=smtpd_service(port, {"smtpd_timeout": "5s"}))"""
    line = f"127.0.0.1:{port} inet n - n - {maxproc} {command}"
    for name, value in (options or {}).items():
        line += f"\n  -o {name}={value}"
    return line + "\n"


def smtp_connect(port, timeout=10.0, source=None, host="127.0.0.1"):
    """A raw socket to host:port, from `source` (a 127/8 address) if given (retries
    briefly: master may still be binding)."""
    end = time.time() + timeout
    while True:
        try:
            return socket.create_connection((host, port), timeout=timeout,
                                            source_address=(source, 0) if source else None)
        except OSError:
            if time.time() >= end:
                raise
            time.sleep(0.05)


class SmtpDialog:
    """A raw SMTP client: send anything, read replies one at a time."""

    def __init__(self, port, greet=True, source=None, host="127.0.0.1"):
        self.sock = smtp_connect(port, source=source, host=host)
        self.sock.settimeout(15)
        self.buf = b""
        self.greeting = self.reply() if greet else None

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def reply(self):
        """One reply, its lines joined with "\\n" (without CRLF)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("connection closed; got %r" % lines)
                self.buf += data
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def starttls(self):
        """STARTTLS and, after a 220, the handshake (no verification); the reply."""
        import ssl
        reply = self.cmd("STARTTLS")
        if reply.startswith("220"):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock)
        return reply

    def closed(self):
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self):
        self.sock.close()


class MailInstance:
    def __init__(self, root, main_cf="", master_cf="", services=None):
        self.root = Path(root)
        self.conf = self.root / "conf"
        self.queue = self.root / "queue"
        self.data = self.root / "data"
        self.mail = self.root / "mail"          # mail_spool_directory (mbox files)
        self.maillog = self.root / "maillog"
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.group = grp.getgrgid(os.getgid()).gr_name
        for d in (self.conf, self.queue, self.data, self.mail):
            d.mkdir(parents=True, exist_ok=True)
        (self.conf / "aliases").write_text("postmaster: %s\n" % self.user)
        (self.conf / "main.cf").write_text(
            f"queue_directory = {self.queue}\n"
            f"data_directory = {self.data}\n"
            f"daemon_directory = {BUILD / 'libexec' / 'postern'}\n"
            f"command_directory = {BUILD / 'sbin'}\n"
            f"mail_owner = {self.user}\n"
            f"setgid_group = {self.group}\n"
            f"maillog_file = {self.maillog}\n"
            f"maillog_file_prefixes = {self.root}\n"
            "compatibility_level = 3.6\n"
            "myhostname = host.example.test\n"
            "mydomain = example.test\n"
            "mydestination = $myhostname, localhost.$mydomain, localhost\n"
            "inet_interfaces = loopback-only\n"
            f"mail_spool_directory = {self.mail}\n"
            f"alias_maps = hash:{self.conf / 'aliases'}\n"
            f"alias_database = hash:{self.conf / 'aliases'}\n"
            "service_throttle_time = 2s\n"
            "queue_run_delay = 2s\nminimal_backoff_time = 2s\nmaximal_backoff_time = 4s\n"
            + main_cf)
        lines = ["# generated by tests/e2e/mailsystem.py"]
        for svc in (services or MAIL_SERVICES):
            if (BUILD / "libexec" / "postern" / svc[7].split()[0]).exists():
                lines.append("  ".join(svc))
        (self.conf / "master.cf").write_text("\n".join(lines) + "\n" + master_cf)
        self.proc = None
        self.env = dict(os.environ, MAIL_CONFIG=str(self.conf))

    def make_queue_tree(self):
        for q in QUEUES:
            (self.queue / q).mkdir(exist_ok=True)
            os.chmod(self.queue / q, 0o700)

    def postalias(self):
        run([postern("postalias"), "-c", str(self.conf), str(self.conf / "aliases")],
            check=True)

    def start(self, preexec_fn=None):
        """preexec_fn runs in master's process before exec (e.g. dnsfixture's private
        /etc/resolv.conf in a mount namespace)."""
        self.make_queue_tree()
        if (BUILD / "sbin" / "postalias").exists():
            self.postalias()
        self.stderr = open(self.root / "master.stderr", "w")
        env = dict(self.env)
        env.pop("MAIL_CONFIG", None)
        self.proc = subprocess.Popen([postern("master"), "-c", str(self.conf), "-d"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, env=env, preexec_fn=preexec_fn)
        assert wait_for(lambda: "daemon started" in self.log()), self.log()

    def log(self):
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def wait_log(self, text, count=1, timeout=30.0):
        """Waits until `text` occurs `count` times in the maillog; returns the log."""
        ok = wait_for(lambda: self.log().count(text) >= count, timeout)
        assert ok, f"{text!r} x{count} not logged:\n{self.log()}"
        return self.log()

    def wait_log_re(self, pattern, timeout=30.0):
        """Waits until the regular expression matches a maillog line (re.M); returns
        the match."""
        found = wait_for(lambda: re.search(pattern, self.log(), re.M), timeout)
        assert found, f"{pattern!r} not logged:\n{self.log()}"
        return found

    def mbox(self):
        """The invoking user's mbox under mail_spool_directory, as text ("" if none)."""
        path = self.mail / self.user
        return path.read_text(errors="replace") if path.exists() else ""

    def command(self, name, *args, input=None):
        return run([postern(name), "-c", str(self.conf), *args], input=input)

    def sendmail(self, args, message):
        return run([postern("sendmail"), "-C", str(self.conf), *args], input=message)

    def socket_path(self, name):
        return self.queue / name

    def queue_files(self, queue):
        """IDs of the files in one queue (hashed subdirectories included)."""
        out = []
        base = self.queue / queue
        for dirpath, _dirs, files in os.walk(base):
            out.extend(files)
        return sorted(out)

    def queue_file_complete(self, queue, queue_id):
        """True when the file's writer committed it (owner-execute bit, as Postfix)."""
        for dirpath, _dirs, files in os.walk(self.queue / queue):
            if queue_id in files:
                try:
                    return bool(os.stat(os.path.join(dirpath, queue_id)).st_mode & 0o100)
                except OSError:
                    return False
        return False

    def stop(self):
        if self.proc is None:
            return
        pids = self.descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.stderr.close()
        self.proc = None

    @staticmethod
    def descendants(pid):
        kids = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                kids.setdefault(int(fields[1]), []).append(int(entry.name))
        out, todo = [], [pid]
        while todo:
            p = todo.pop()
            for c in kids.get(p, []):
                out.append(c)
                todo.append(c)
        return out


def serve_in_threads(sock, serve):
    """Accepts connections on the listening `sock` in a daemon thread and runs
    serve(conn) for each in a thread of its own, until the socket is closed."""
    import threading

    def accept():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()


class RecordServer:
    """A stand-in service on a UNIX socket for tests of one daemon without its peers:
    handler(record) gets each request as {name: [values]} and returns the reply as a
    dict for attr_encode, or None for no reply. Close it before the instance stops.
    path may also be a (host, port) pair: a TCP service (port 0: any; see .port).
    .connections counts the connections accepted."""

    def __init__(self, path, handler):
        self.handler = handler
        self.connections = 0
        if isinstance(path, tuple):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(path)
            self.port = self.sock.getsockname()[1]
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(str(path))
        self.sock.listen(16)
        serve_in_threads(self.sock, self._serve)

    def _serve(self, conn):
        self.connections += 1
        buf = b""
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n\n" in buf:
                    raw, buf = buf.split(b"\n\n", 1)
                    reply = self.handler(attr_decode(raw + b"\n"))
                    if reply is not None:
                        conn.sendall(attr_encode(**reply))

    def close(self):
        self.sock.close()
