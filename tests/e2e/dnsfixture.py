"""A DNS server for end-to-end tests: dnsmasq on port 53 of a private loopback address
(127.53.x.y), serving records from a file, and a preexec_fn that gives a daemon tree a
private /etc/resolv.conf naming it (a mount namespace with a bind mount; the network is
shared, so loopback clients still reach the daemons). Needs root. Postfix has no
parameter for a DNS server, so this is how Postern (and Debian's Postfix, for
differential tests) are pointed at test data.

    dns = DnsFixture(["host-record=mx.example.test,127.0.0.9", ...])
    dns.start()
    instance.start(preexec_fn=dns.preexec)
    ...
    dns.stop()

Names under .test and in-addr.arpa are answered locally (unknown ones: NXDOMAIN); names
under tempfail.test go to a closed port, so they fail temporarily.
"""
import ctypes
import os
import random
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DNSMASQ = "/usr/sbin/dnsmasq"
CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE, MS_BIND = 0x4000, 0x40000, 0x1000


def available():
    """Why the fixture cannot run here, or "" when it can."""
    if os.getuid() != 0:
        return "a private /etc/resolv.conf needs root (mount namespace)"
    if not os.path.exists(DNSMASQ):
        return f"{DNSMASQ} is not installed (dnsmasq-base)"
    return ""


class DnsFixture:
    def __init__(self, records=(), root=None):
        self.root = Path(root or tempfile.mkdtemp(prefix="postern-dns-"))
        self.address = None
        self.records = ["no-resolv", "no-hosts", "local=/test/", "local=/in-addr.arpa/",
                        "server=/tempfail.test/127.0.0.1#9", *records]
        self.proc = None

    def start(self):
        conf = self.root / "dnsmasq.conf"
        conf.write_text("\n".join(self.records) + "\n")
        # A random 127.53.x.y: parallel test runs must not share port 53 of one address.
        for _ in range(20):
            address = f"127.53.{random.randint(0, 255)}.{random.randint(1, 254)}"
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((address, 53))
            except OSError:
                continue
            finally:
                s.close()
            self.proc = subprocess.Popen(
                [DNSMASQ, f"--conf-file={conf}", "--keep-in-foreground", "--bind-interfaces",
                 f"--listen-address={address}", "--port=53", "--pid-file=", "--user=root",
                 "--log-facility=" + str(self.root / "dnsmasq.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if self._wait_ready(address):
                self.address = address
                break
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        assert self.address, "dnsmasq did not start"
        self.resolv_conf = self.root / "resolv.conf"
        self.resolv_conf.write_text(f"nameserver {self.address}\noptions attempts:1 timeout:1\n")
        return self

    def _wait_ready(self, address):
        end = time.time() + 5
        while time.time() < end:
            if self.proc.poll() is not None:
                return False
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((address, 53))
            except OSError:
                return True  # dnsmasq holds it
            finally:
                s.close()
            time.sleep(0.02)
        return False

    def preexec(self):
        """For subprocess.Popen(preexec_fn=...): a private mount namespace in which
        /etc/resolv.conf is this fixture's."""
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
        if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
        if libc.mount(str(self.resolv_conf).encode(), b"/etc/resolv.conf", None, MS_BIND, None) != 0:
            raise OSError(ctypes.get_errno(), "mount --bind resolv.conf")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
