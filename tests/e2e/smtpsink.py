"""Postfix's smtp-sink (Debian's postfix package) as a test SMTP/LMTP server: it dumps
each transaction into its own file and can refuse chosen commands with 4xx (-r) or 5xx
(-f) replies, or drop the connection after them (-q).

    sink = SmtpSink("-f", "RCPT")     # every RCPT gets "500 5.3.0 Error: command failed"
    ... relayhost = [127.0.0.1]:{sink.port} ...
    sink.wait_message("body text")
    sink.stop()
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from mailsystem import free_port, wait_for

SMTP_SINK = "/usr/sbin/smtp-sink"


def available():
    return os.path.exists(SMTP_SINK)


class SmtpSink:
    def __init__(self, *options, unix_path=None, host="127.0.0.1", port=None):
        # A world-writable directory: smtp-sink drops to nobody when started as root.
        self.dir = Path(tempfile.mkdtemp(prefix="postern-sink-", dir="/var/tmp"))
        os.chmod(self.dir, 0o777)
        self.host = host
        self.port = None if unix_path else port or free_port()
        self.address = f"unix:{unix_path}" if unix_path else f"{host}:{self.port}"
        argv = [SMTP_SINK, "-d", str(self.dir) + "/%M.", *options]
        if os.getuid() == 0:
            argv += ["-u", "nobody"]
        argv += [self.address, "10"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if unix_path:
            ok = wait_for(lambda: os.path.exists(unix_path), 10)
        else:
            ok = wait_for(self._listening, 10)
        assert ok, "smtp-sink did not start"

    def _listening(self):
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                s.recv(100)
            return True
        except OSError:
            return False

    def messages(self):
        out = []
        for p in sorted(self.dir.iterdir()):
            try:
                out.append(p.read_text(errors="replace"))
            except OSError:
                pass
        return out

    def wait_message(self, text, timeout=60.0):
        ok = wait_for(lambda: any(text in m for m in self.messages()), timeout)
        assert ok, f"{text!r} never reached smtp-sink at {self.address}: {self.messages()}"
        return next(m for m in self.messages() if text in m)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_gone(pid, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.05)
