"""Several mail hosts on this one machine, for multi-host end-to-end tests: Linux network
namespaces joined by a bridge, a DNS server for them, and helpers that run Debian's
Postfix or Postern inside a host.

Topology (all names unique per run: pst-<pid>-<n>-<host>):

    router namespace  pst-…-r : bridge br0 198.18.0.2/24, dnsmasq on 198.18.0.2:53
    host namespace    pst-…-a : eth0 198.18.0.10/24  (veth, its peer v-a on br0)
                      pst-…-b : eth0 198.18.0.20/24
                      pst-…-c : eth0 198.18.0.30/24  ... (host i: 198.18.0.(10*(i+1)))

Addresses in 198.18.0.0/24 exist only inside these namespaces: the root namespace gets no
interface, address or route. Every host has its loopback up, /etc/netns/NAME/resolv.conf
(naming 198.18.0.2) and /etc/netns/NAME/hosts, which `ip netns exec` bind-mounts over
/etc/resolv.conf and /etc/hosts (Host.preexec does the same for preexec_fn users).

DNS (dnsmasq): host x answers as x.test and mx.x.test (A, and PTR to mx.x.test), and
x.test has "MX 10 mx.x.test". A test adds records with mx() and a() (or raw dnsmasq
lines); every other name under .test or in 198.18.0.0/24's reverse zone is NXDOMAIN.

    net = Network(records=[*mx("two.test", (10, "mx1.two.test"), (20, "mx2.two.test")),
                           a("mx1.two.test", "198.18.0.30"), a("mx2.two.test", "198.18.0.20")])
    net.start()
    net.a.run(["getent", "hosts", "mx.b.test"])        # ip netns exec pst-…-a getent …
    p = net.b.popen(["socat", ...])                     # its own process group, killed at stop
    net.b.down(); net.b.up()                            # "cable" pulled / back
    with net.a.entered():                               # this thread in A's network:
        s = socket.create_connection(("198.18.0.20", 25))   # the socket stays there
    pf = PostfixHost(net.a).start()                     # Debian's Postfix in A
    pf.sendmail(["-f", "u@a.test", "nobody@b.test"], "Subject: x\\n\\nhi\\n")
    pt = PosternHost(net.b).start()                     # Postern in B, smtpd on .20:25
    fake = ScriptedSmtp(net.c, replies={"RCPT": "450 4.2.0 busy"})   # faults on demand
    net.stop()                                          # everything above, in reverse

In pytest: `from netns import network` and ask for the `network` fixture (module scope:
one network per test module; daemons per test via PostfixHost/PosternHost, which the
network stops at the end if the test did not). Teardown runs even when a test fails;
an interrupted run (atexit, SIGTERM) too; a crashed one (SIGKILL) is cleaned at the next
start: namespaces, /etc/netns entries, /var/tmp directories and Postfix's
alternate_config_directories entries of pst-<pid>-… whose pid is gone.

Postern instances: PosternHost writes main.cf (myhostname mx.x.test, mydestination x.test,
inet_interfaces the host's address) and master.cf (an smtpd on ADDRESS:25), then runs
`ip netns exec pst-…-x build/sbin/postern -c DIR start`: master and every daemon it
forks live in that namespace. Root only: namespaces, and Postfix's master, need it.
"""
import atexit
import contextlib
import ctypes
import itertools
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import postfixpeer
from conftest import BUILD, postern
from mailsystem import MAIL_SERVICES, MailInstance, serve_in_threads, wait_for

IP = "/usr/sbin/ip"
DNSMASQ = "/usr/sbin/dnsmasq"
PREFIX = "pst"
NET = "198.18.0"
DNS_ADDRESS = f"{NET}.2"
NETNS_ETC = Path("/etc/netns")
NETNS_RUN = Path("/run/netns")
CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_REC, MS_PRIVATE, MS_BIND = 0x4000, 0x40000, 0x1000

_libc = ctypes.CDLL(None, use_errno=True)
_serial = itertools.count(1)


def available():
    """Why namespaces cannot be made here, or "" when they can (then any failure to
    build the network is a failure, not a skip)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not os.path.exists(IP):
        return f"{IP} is not installed"
    probe = f"{PREFIX}-{os.getpid()}-probe"
    r = subprocess.run([IP, "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"`ip netns add` fails here: {r.stderr.strip()}"
    subprocess.run([IP, "netns", "del", probe], capture_output=True)
    return ""


def mx(domain, *targets):
    """dnsmasq lines for MX records: mx("d.test", (10, "mx1.d.test"), (20, "mx2.d.test"))."""
    return [f"mx-host={domain},{host},{pref}" for pref, host in targets]


def a(name, address):
    """A dnsmasq line for an A record of `name` (and of names under it; no PTR)."""
    return f"address=/{name}/{address}"


def _check(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stdout}{r.stderr}")
    return r.stdout


def _setns(fd, kind):
    if _libc.setns(fd, kind) != 0:
        raise OSError(ctypes.get_errno(), "setns")


class Namespace:
    """One named network namespace (`ip netns add`) and the processes started in it."""

    def __init__(self, ns):
        self.ns = ns
        self.etc = NETNS_ETC / ns
        self.procs = []
        self.services = []      # daemons started in it (objects with stop())

    def create(self):
        _check([IP, "netns", "add", self.ns])
        _check([IP, "-n", self.ns, "link", "set", "lo", "up"])

    def ip(self, *args):
        """`ip -n NS ARGS` (checked); its stdout."""
        return _check([IP, "-n", self.ns, *args])

    def argv(self, argv):
        return [IP, "netns", "exec", self.ns, *[str(x) for x in argv]]

    def run(self, argv, input=None, timeout=60, check=False, **kw):
        """Runs argv inside the namespace (ip netns exec); CompletedProcess with text
        output unless input is bytes."""
        text = not isinstance(input, bytes)
        return subprocess.run(self.argv(argv), input=input, capture_output=True, text=text,
                              timeout=timeout, check=check, **kw)

    def popen(self, argv, **kw):
        """Starts argv inside the namespace in its own process group (killed at stop)."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen(self.argv(argv), **kw)
        self.procs.append(p)
        return p

    def preexec(self):
        """For preexec_fn (MailInstance.start, PostfixPeer.start, Popen): the child joins
        the namespace, with /etc/netns/NS/* bind-mounted over /etc/* in a private mount
        namespace, as `ip netns exec` does."""
        fd = os.open(NETNS_RUN / self.ns, os.O_RDONLY)
        try:
            _setns(fd, CLONE_NEWNET)
        finally:
            os.close(fd)
        if _libc.unshare(CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
        if _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
        if self.etc.is_dir():
            for f in sorted(self.etc.iterdir()):
                if _libc.mount(str(f).encode(), f"/etc/{f.name}".encode(), None, MS_BIND,
                               None) != 0:
                    raise OSError(ctypes.get_errno(), f"mount --bind {f}")

    @contextlib.contextmanager
    def entered(self):
        """The calling thread's network namespace is this one inside the block: sockets
        made there stay in it (names are still resolved through the root's files)."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(NETNS_RUN / self.ns, os.O_RDONLY)
        try:
            _setns(target, CLONE_NEWNET)
            try:
                yield self
            finally:
                _setns(home, CLONE_NEWNET)
        finally:
            os.close(target)
            os.close(home)

    def pids(self):
        r = subprocess.run([IP, "netns", "pids", self.ns], capture_output=True, text=True)
        return [int(p) for p in r.stdout.split()]

    def stop_processes(self):
        """Stops the services (their own way), SIGTERMs the process groups popen()
        started, then SIGKILLs whatever still lives in the namespace (daemons that
        detached from every group included)."""
        for service in reversed(self.services):
            with contextlib.suppress(Exception):
                service.stop()
        self.services = []
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs = []
        _kill_all(self.pids)

    def delete(self):
        self.stop_processes()
        subprocess.run([IP, "netns", "del", self.ns], capture_output=True)
        shutil.rmtree(self.etc, ignore_errors=True)


def _kill_all(pids_fn):
    for _ in range(50):
        pids = pids_fn()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


class Host(Namespace):
    """A mail host: eth0 with `address` on the bridge, named x.test / mx.x.test."""

    def __init__(self, ns, name, address, root):
        super().__init__(ns)
        self.name = name
        self.address = address
        self.domain = f"{name}.test"
        self.fqdn = f"mx.{name}.test"
        self.root = root          # per-host directory for daemons' files (0755)
        self.neighbours = []      # the other namespaces on the bridge
        self.router = None

    def attach(self, router):
        self.router = router
        peer = f"v-{self.name}"
        self.ip("link", "add", "eth0", "type", "veth", "peer", "name", peer,
                "netns", router.ns)
        router.ip("link", "set", peer, "master", "br0")
        router.ip("link", "set", peer, "up")
        self.ip("addr", "add", f"{self.address}/24", "dev", "eth0")
        self.ip("link", "set", "eth0", "up")
        self.etc.mkdir(parents=True, exist_ok=True)
        (self.etc / "resolv.conf").write_text(
            f"nameserver {DNS_ADDRESS}\noptions attempts:2 timeout:2\n")
        (self.etc / "hosts").write_text(
            "127.0.0.1\tlocalhost\n::1\tlocalhost\n"
            f"{self.address}\t{self.fqdn} {self.domain}\n")
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)

    def down(self):
        """The host drops off the network as if its cable were pulled: the bridge port
        of its veth goes down (eth0 stays administratively up, so its daemons still
        find their address), and its neighbours forget its MAC address, so that a
        connection fails as to a host that is off: "No route to host" after ARP's
        probes (with a cached MAC address it would take a TCP connect timeout)."""
        self.router.ip("link", "set", f"v-{self.name}", "down")
        for other in self.neighbours:
            other.ip("neigh", "flush", "to", self.address)

    def up(self):
        self.router.ip("link", "set", f"v-{self.name}", "up")

    def listening(self, port=25):
        """Local addresses with a TCP listener on `port` in this namespace."""
        out = self.run(["ss", "-Hltn", f"sport = :{port}"], check=True).stdout
        return [line.split()[3] for line in out.splitlines() if line.strip()]

    def resolve(self, name):
        """IPv4 addresses of `name` as the host's libc sees them ([] if none)."""
        out = self.run(["getent", "ahostsv4", name]).stdout
        return sorted({line.split()[0] for line in out.splitlines() if line.strip()})


class Network:
    """A router namespace with a bridge and DNS, and one Host per name in `hosts`."""

    def __init__(self, hosts=("a", "b", "c"), records=()):
        self.tag = f"{PREFIX}-{os.getpid()}-{next(_serial)}"
        self.root = Path("/var/tmp") / self.tag
        self.router = Namespace(f"{self.tag}-r")
        self.hosts = {n: Host(f"{self.tag}-{n}", n, f"{NET}.{10 * (i + 1)}", self.root / n)
                      for i, n in enumerate(hosts)}
        self.records = list(records)
        for h in self.hosts.values():
            h.neighbours = [self.router] + [o for o in self.hosts.values() if o is not h]
        self.started = False
        self._old_sigterm = None

    def __getattr__(self, name):
        hosts = self.__dict__.get("hosts", {})
        if name in hosts:
            return hosts[name]
        raise AttributeError(name)

    def __getitem__(self, name):
        return self.hosts[name]

    def start(self):
        clean_stale()
        self.started = True
        atexit.register(self.stop)
        self._trap_sigterm()
        try:
            self.root.mkdir(parents=True)
            os.chmod(self.root, 0o755)
            self.router.create()
            self.router.ip("link", "add", "br0", "type", "bridge")
            self.router.ip("addr", "add", f"{DNS_ADDRESS}/24", "dev", "br0")
            self.router.ip("link", "set", "br0", "up")
            for host in self.hosts.values():
                host.create()
                host.attach(self.router)
            self._start_dns()
        except BaseException:
            self.stop()
            raise
        return self

    def dns_config(self):
        reverse = ".".join(reversed(NET.split("."))) + ".in-addr.arpa"
        lines = ["no-resolv", "no-hosts", "local=/test/", f"local=/{reverse}/"]
        for h in self.hosts.values():
            lines.append(f"host-record={h.fqdn},{h.domain},{h.address}")
            lines += mx(h.domain, (10, h.fqdn))
        return lines + self.records

    def _start_dns(self):
        conf = self.root / "dnsmasq.conf"
        conf.write_text("\n".join(self.dns_config()) + "\n")
        log = self.root / "dnsmasq.log"
        self.dns = self.router.popen(
            [DNSMASQ, f"--conf-file={conf}", "--keep-in-foreground", "--bind-interfaces",
             f"--listen-address={DNS_ADDRESS}", "--port=53", "--pid-file=", "--user=root",
             f"--log-facility={log}", "--log-queries"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        probe = next(iter(self.hosts.values()))
        if not wait_for(lambda: self.dns.poll() is None and probe.resolve(probe.fqdn), 20):
            err = self.dns.stderr.read().decode() if self.dns.poll() is not None else ""
            raise RuntimeError(f"dnsmasq in {self.router.ns} does not answer {probe.ns}: "
                               f"{err}{log.read_text() if log.exists() else ''}")

    def dns_log(self):
        path = self.root / "dnsmasq.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self):
        """Idempotent: daemons, processes, namespaces, /etc/netns entries, files."""
        if not self.started:
            return
        self.started = False
        for host in self.hosts.values():
            host.delete()
        self.router.delete()
        shutil.rmtree(self.root, ignore_errors=True)
        _remove_empty(NETNS_ETC)
        atexit.unregister(self.stop)
        if self._old_sigterm is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    def _trap_sigterm(self):
        """A SIGTERM (a CI job cancelled) acts as Ctrl-C: pytest stops, finalizers and
        atexit run."""
        def interrupt(*_):
            raise KeyboardInterrupt("SIGTERM")
        try:
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                self._old_sigterm = signal.signal(signal.SIGTERM, interrupt)
        except ValueError:      # not the main thread
            pass


def _remove_empty(path):
    with contextlib.suppress(OSError):
        path.rmdir()


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(name):
    m = re.fullmatch(rf"{PREFIX}-(\d+)-.*", name)
    return bool(m) and not _pid_alive(int(m.group(1)))


def clean_stale():
    """Removes what a crashed run (its pid gone) left: namespaces and their processes,
    /etc/netns entries, /var/tmp/pst-* trees and their alternate_config_directories."""
    listed = subprocess.run([IP, "netns", "list"], capture_output=True, text=True).stdout
    for name in (line.split()[0] for line in listed.splitlines() if line.strip()):
        if _stale(name):
            Namespace(name).delete()
    for base in (NETNS_ETC, Path("/var/tmp")):
        if base.is_dir():
            for entry in base.iterdir():
                if _stale(entry.name):
                    shutil.rmtree(entry, ignore_errors=True)
    _remove_empty(NETNS_ETC)
    if os.path.exists(postfixpeer.POSTCONF):
        current = subprocess.run([postfixpeer.POSTCONF, "-h", "alternate_config_directories"],
                                 capture_output=True, text=True).stdout
        for d in re.split(r"[\s,]+", current):
            parts = Path(d).parts
            if len(parts) > 3 and parts[1:3] == ("var", "tmp") and _stale(parts[3]):
                postfixpeer._edit_alternate_dirs(d, False)


@pytest.fixture(scope="module")
def network(request):
    """A started Network with hosts a, b, c (or the module-level NETNS_HOSTS names); a
    test module adds DNS records with a module-level NETNS_RECORDS list (mx(), a(), or
    dnsmasq lines)."""
    why = available()
    if why:
        pytest.skip(f"multi-host tests need network namespaces: {why}")
    net = Network(hosts=getattr(request.module, "NETNS_HOSTS", ("a", "b", "c")),
                  records=getattr(request.module, "NETNS_RECORDS", ()))
    request.addfinalizer(net.stop)
    return net.start()


@pytest.fixture
def hosts(network):
    """Starts Postern (hosts.postern(network.a, main_cf=...)) or Debian's Postfix
    (hosts.postfix(network.c)) in a host, stopped at the end of the test: the network
    is the module's, the daemons are the test's. Hosts a test took down are up again
    after it."""
    started = []

    class Starter:
        @staticmethod
        def postern(host, **kw):
            started.append(PosternHost(host, **kw))
            return started[-1].start()

        @staticmethod
        def postfix(host, **kw):
            started.append(PostfixHost(host, **kw))
            return started[-1].start()
    yield Starter
    for instance in reversed(started):
        instance.stop()
    for host in network.hosts.values():
        host.up()


class PostfixHost:
    """Debian's Postfix in a Host: myhostname mx.x.test, mydestination x.test, an smtpd
    on ADDRESS:25, MX lookups through the network's DNS, mail for local users in mbox
    files under self.peer.mail. Each instance has its own directory (queue, log) under
    the host's."""

    def __init__(self, host, main_cf="", master_cf_extra="", smtpd_args=""):
        self.host = host
        root = Path(tempfile.mkdtemp(prefix="postfix-", dir=host.root))
        defaults = (f"myhostname = {host.fqdn}\nmydomain = {host.domain}\n"
                    f"mydestination = {host.domain}, {host.fqdn}, localhost\n"
                    f"inet_interfaces = {host.address}\n"
                    "smtp_dns_support_level = enabled\n"
                    f"smtp_helo_name = {host.fqdn}\n"
                    f"mail_spool_directory = {root / 'mail'}\n")   # mbox files
        self.peer = postfixpeer.PostfixPeer(
            main_cf=postfixpeer.merge_main_cf(defaults, main_cf),
            master_cf_text=postfixpeer.master_cf(smtpd_listen=f"{host.address}:25",
                                                 smtpd_args=smtpd_args,
                                                 extra=master_cf_extra),
            root=root, name=host.name)
        os.chmod(self.peer.root, 0o755)

    def start(self):
        self.host.services.append(self)
        self.peer.start(preexec_fn=self.host.preexec)
        return self

    def stop(self):
        self.peer.stop()
        # An interrupted start() may have added the entry without the peer running.
        postfixpeer._edit_alternate_dirs(str(self.peer.etc), False)

    def log(self):
        return self.peer.log()

    def wait_log(self, text, count=1, timeout=60.0):
        return self.peer.wait_log(text, count, timeout)

    def wait_log_re(self, pattern, timeout=60.0):
        found = wait_for(lambda: re.search(pattern, self.log(), re.M), timeout)
        assert found, f"{pattern!r} not in {self.host.ns}'s Postfix log:\n{self.log()}"
        return found

    def sendmail(self, args, message):
        """Postfix's sendmail -C DIR, run inside the host."""
        data = message.encode() if isinstance(message, str) else message
        return self.host.run([postfixpeer.SENDMAIL, "-C", self.peer.etc, *args], input=data)

    def postqueue(self, *args):
        return self.host.run(["/usr/sbin/postqueue", "-c", self.peer.etc, *args])

    def mbox(self, user):
        path = self.peer.mail / user
        return path.read_text(errors="replace") if path.exists() else ""


# The delivery agents to other hosts, as in Postfix's master.cf (left out while unbuilt).
OUTBOUND_SERVICES = [
    ("smtp", "unix", "-", "-", "n", "-", "-", "smtp"),
    ("relay", "unix", "-", "-", "n", "-", "-", "smtp"),
    ("lmtp", "unix", "-", "-", "n", "-", "-", "lmtp"),
]


class PosternHost(MailInstance):
    """A Postern instance in a Host, started with `ip netns exec NS postern -c DIR start`:
    myhostname mx.x.test, mydestination x.test, inet_interfaces the host's address, an
    smtpd on ADDRESS:25 (plus `master_cf`), the smtp, relay and lmtp delivery agents
    once built, mail for `self.user` in self.mbox(). As root the instance is a
    privileged one (mail_owner postfix, setgid_group postdrop), under the host's 0755
    directory; command_directory is a private empty one, so that nothing changes set-gid
    bits in the build tree (sendmail finds postdrop beside itself)."""

    def __init__(self, host, main_cf="", master_cf="", smtpd_options=None):
        self.host = host
        root = Path(tempfile.mkdtemp(prefix="postern-", dir=host.root))   # one per instance
        os.chmod(root, 0o755)
        smtpd = f"{host.address}:25 inet n - n - - smtpd\n"
        for name, value in (smtpd_options or {}).items():
            smtpd += f"  -o {name}={value}\n"
        super().__init__(root, master_cf=smtpd + master_cf,
                         services=MAIL_SERVICES + OUTBOUND_SERVICES)
        sbin = root / "sbin"
        sbin.mkdir(exist_ok=True)
        owner = ("mail_owner = postfix\nsetgid_group = postdrop\n" if os.geteuid() == 0
                 else "")
        overrides = (owner + f"command_directory = {sbin}\n"
                     f"myhostname = {host.fqdn}\nmydomain = {host.domain}\n"
                     f"mydestination = {host.domain}, {host.fqdn}, localhost\n"
                     f"inet_interfaces = {host.address}\n" + main_cf)
        cf = self.conf / "main.cf"
        cf.write_text(postfixpeer.merge_main_cf(cf.read_text(), overrides))
        os.chmod(self.mail, 0o1777)
        self.maillog.touch()
        if os.geteuid() == 0:
            shutil.chown(self.maillog, "postfix")
            shutil.chown(self.data, "postfix")

    def start(self, preexec_fn=None):
        """`postern -c DIR start` inside the host (preexec_fn: unused, the namespace is
        the host's); returns self once master runs."""
        self.host.services.append(self)
        if (BUILD / "sbin" / "postalias").exists():
            self.postalias()
        r = self.host.run([postern("postern"), "-c", self.conf, "start"])
        if r.returncode != 0:
            raise RuntimeError(f"postern start in {self.host.ns}: {r.stderr}\n{self.log()}")
        if not wait_for(lambda: "daemon started" in self.log(), 30):
            raise RuntimeError(f"Postern master in {self.host.ns} did not start:\n{self.log()}")
        return self

    master_pid = postfixpeer.PostfixPeer.master_pid     # the same queue/pid/master.pid

    def command(self, name, *args, input=None):
        """A Postern command (postqueue, postsuper, ...) with -c DIR, inside the host."""
        return self.host.run([postern(name), "-c", self.conf, *args], input=input,
                             env=_env_without_mail_config())

    def sendmail(self, args, message):
        """Postern's sendmail -C DIR, inside the host."""
        return self.host.run([postern("sendmail"), "-C", self.conf, *args], input=message,
                             env=_env_without_mail_config())

    def stop(self):
        master = self.master_pid()
        if not master or not os.path.exists(f"/proc/{master}"):
            return
        pids = [master] + self.descendants(master)
        self.host.run([postern("postern"), "-c", self.conf, "stop"])
        wait_for(lambda: not os.path.exists(f"/proc/{master}"), 20)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _env_without_mail_config():
    env = dict(os.environ)
    env.pop("MAIL_CONFIG", None)
    return env


class ScriptedSmtp:
    """A scripted SMTP server on ADDRESS:port in a host, for faults real servers do not
    make on demand. `replies` maps "greeting", a command verb ("EHLO", "MAIL", "RCPT",
    "DATA", ...) or "." (end of the message) to the reply to send instead of a plain
    250 (354 for DATA); `drop_in_data` closes the connection after the first line of
    the message body; `drop_after` names keys (as in `replies`) after whose reply the
    server hangs up (it reads what the client still sends, then closes); `delay` waits
    that long before every reply. `hang` names keys
    (as in `replies`) whose reply is held back until release() or until the client
    hangs up (self.hangs counts the holds, for a test to wait on). With `lmtp` the end
    of the message gets one reply per accepted recipient (RFC 2033), from `rcpt_replies`
    (address: reply) or "250 2.0.0 Ok". What clients sent is kept in self.commands and
    self.messages. Stopped with the host, by stop() or at the end of a `with` block."""

    def __init__(self, host, port=25, replies=None, drop_in_data=False, delay=0.0, hang=(),
                 lmtp=False, rcpt_replies=None, drop_after=()):
        self.host, self.port = host, port
        self.replies = {"greeting": f"220 {host.fqdn} ESMTP scripted", **(replies or {})}
        self.drop_in_data, self.delay = drop_in_data, delay
        self.drop_after = set(drop_after)
        self.hang, self.hangs, self.released = set(hang), 0, threading.Event()
        self.lmtp, self.rcpt_replies = lmtp, dict(rcpt_replies or {})
        self.commands, self.messages = [], []
        with host.entered():
            self.sock = socket.create_server((host.address, port))
        host.services.append(self)
        serve_in_threads(self.sock, self._session)

    def _reply(self, conn, key, default):
        time.sleep(self.delay)
        if key in self.hang and not self._held(conn):
            raise OSError("the client hung up")
        reply = self.replies.get(key, default)
        conn.sendall((reply + "\r\n").encode())
        return reply

    def _held(self, conn):
        """Holds the reply until release() (True) or the client's hang-up (False)."""
        self.hangs += 1
        while not self.released.wait(0.2):
            if select.select([conn], [], [], 0)[0]:
                try:
                    if not conn.recv(1, socket.MSG_PEEK):
                        return False
                except OSError:
                    return False
        return True

    def release(self):
        """Sends the held replies, and every later one at once."""
        self.released.set()

    def _session(self, conn):
        accepted = []       # LMTP: this transaction's recipients that got a 2xx
        with conn, conn.makefile("rb") as f:
            try:
                self._reply(conn, "greeting", "")
                while line := f.readline():
                    cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                    self.commands.append(cmd)
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb == "QUIT":
                        self._reply(conn, "QUIT", "221 2.0.0 Bye")
                        return
                    if verb == "DATA":
                        self._reply(conn, "DATA", "354 End data with <CR><LF>.<CR><LF>")
                        if not self._read_message(f):
                            return
                        if not self.lmtp:
                            self._reply(conn, ".", "250 2.0.0 Ok: queued")
                        for rcpt in accepted:
                            self._reply(conn, ".", self.rcpt_replies.get(rcpt, "250 2.0.0 Ok"))
                        accepted = []
                    else:
                        reply = self._reply(conn, verb, "250 Ok")
                        if verb in self.drop_after:
                            conn.shutdown(socket.SHUT_WR)   # EOF for the client, no RST
                            while conn.recv(4096):
                                pass
                            return
                        if verb == "MAIL":
                            accepted = []
                        m = re.match(r"RCPT TO:<([^>]*)>", cmd, re.I)
                        if m and reply.startswith("2"):
                            accepted.append(m.group(1))
            except OSError:
                pass

    def _read_message(self, f):
        """The message up to the lone dot; False when the script drops the connection."""
        lines = []
        while line := f.readline():
            if line in (b".\r\n", b".\n"):
                self.messages.append(b"".join(lines))
                return True
            lines.append(line)
            if self.drop_in_data:
                return False
        return False

    def stop(self):
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)    # wakes accept(): the port is free
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
