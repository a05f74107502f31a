"""The multi-host fixture (netns.py) proven with real mail servers: Debian's Postfix on
host A finds host B through the fixture's DNS (MX, then A) and delivers to Postfix on B,
which writes a local mbox; a two-MX domain whose primary has no listener (or answers
421) falls back to the secondary; a scripted server in a host drops the connection in
DATA or answers too slowly, and Postfix defers; three Postfix instances run side by
side, each on its own host's port 25;
a host taken down makes mail defer until it is up again; Postfix on A delivers to
Postern's smtpd on B, and Postern's smtp client on A to Postern on B and Postfix on C;
a crashed run's leftovers are removed at the next start."""
import os
import re
import socket
import subprocess

import pytest

from mailsystem import SmtpDialog, wait_for
import netns
from netns import NET, Namespace, PostfixHost, PosternHost, ScriptedSmtp, a, mx
from netns import network  # noqa: F401 (the fixture)

NETNS_RECORDS = [
    *mx("two.test", (10, "mx1.two.test"), (20, "mx2.two.test")),
    a("mx1.two.test", f"{NET}.30"),     # host C: no smtpd there in that test
    a("mx2.two.test", f"{NET}.20"),     # host B
    *mx("drop.test", (10, "mx.c.test")),
]
RCPT_USER = "nobody"    # a local user Postfix's local(8) can deliver to on any Debian


def message(subject, sender):
    return f"From: {sender}\nTo: x\nSubject: {subject}\n\nbody of {subject}\n"


@pytest.fixture
def postfix(network):
    """Starts Debian's Postfix on a host of the network: postfix(network.a, main_cf=...)."""
    started = []

    def start(host, **kw):
        pf = PostfixHost(host, **kw).start()
        started.append(pf)
        return pf
    yield start
    for pf in started:
        pf.stop()


def delivered_with(pf, user, subject):
    return wait_for(lambda: f"Subject: {subject}\n" in pf.mbox(user), 60)


def test_network_is_private_and_resolves(network):
    a_, b = network.a, network.b
    assert b.resolve("mx.b.test") == [f"{NET}.20"]
    assert a_.resolve("mx2.two.test") == [f"{NET}.20"]
    assert a_.resolve("nowhere.test") == []
    assert f"nameserver {NET}.2" in a_.run(["cat", "/etc/resolv.conf"]).stdout
    assert "mx.a.test" in a_.run(["cat", "/etc/hosts"]).stdout
    # The root namespace has no 198.18.0.0/24 address or route.
    for what in ("addr", "route"):
        out = subprocess.run(["ip", "-4", what], capture_output=True, text=True).stdout
        assert "198.18." not in out
    # A host reaches another over the bridge: a listener in B, a connection from A.
    with b.entered():
        srv = socket.create_server((b.address, 2525))
    try:
        with a_.entered():
            c = socket.create_connection((b.address, 2525), timeout=10)
        conn, peer = srv.accept()
        assert peer[0] == a_.address
        conn.close()
        c.close()
    finally:
        srv.close()


def test_postfix_a_delivers_to_postfix_b_by_mx(network, postfix):
    pa, pb = postfix(network.a), postfix(network.b)
    r = pa.sendmail(["-f", "alice@a.test", f"{RCPT_USER}@b.test"],
                    message("a to b by mx", "alice@a.test"))
    assert r.returncode == 0, r.stderr
    assert delivered_with(pb, RCPT_USER, "a to b by mx"), pb.log() + pa.log()
    sent = pa.wait_log_re(rf"to=<{RCPT_USER}@b\.test>, relay=mx\.b\.test\[{NET}\.20\]:25,"
                          r".*status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)")
    # B logged the same queue ID, received from A by its DNS name.
    qid = sent.group(1)
    assert re.search(rf"{qid}: client=mx\.a\.test\[{NET}\.10\]", pb.log()), pb.log()
    pb.wait_log_re(rf"{qid}: to=<{RCPT_USER}@b\.test>, relay=local,.*status=sent")
    mbox = pb.mbox(RCPT_USER)
    assert f"from mx.a.test (mx.a.test [{NET}.10])" in mbox
    assert "by mx.b.test (Postfix)" in mbox


def two_mx_delivery(network, postfix, subject):
    """Postfix on A sends to two.test (MX 10 host C, MX 20 host B) and Postfix on B
    receives it; A's log."""
    pa = postfix(network.a)
    pb = postfix(network.b, main_cf="mydestination = b.test, mx.b.test, two.test, localhost\n")
    r = pa.sendmail(["-f", "alice@a.test", f"{RCPT_USER}@two.test"],
                    message(subject, "alice@a.test"))
    assert r.returncode == 0, r.stderr
    assert delivered_with(pb, RCPT_USER, subject), pb.log() + pa.log()
    return pa.wait_log_re(rf"to=<{RCPT_USER}@two\.test>, relay=mx2\.two\.test\[{NET}\.20\]:25,"
                          r".*status=sent").string


def test_two_mx_domain_falls_back_to_the_secondary(network, postfix):
    assert network.c.listening(25) == []
    log = two_mx_delivery(network, postfix, "two mx fallback")
    assert re.search(rf"connect to mx1\.two\.test\[{NET}\.30\]:25: Connection refused", log), log


def test_two_mx_domain_primary_421_falls_back_to_the_secondary(network, postfix):
    with ScriptedSmtp(network.c, replies={"greeting": "421 4.3.2 busy, try the next one"}) as fake:
        log = two_mx_delivery(network, postfix, "two mx after 421")
        assert f"host mx1.two.test[{NET}.30] refused to talk to me: 421 4.3.2 busy" in log, log
        assert fake.messages == []


def test_connection_dropped_in_data_defers(network, postfix):
    pa = postfix(network.a)
    with ScriptedSmtp(network.c, drop_in_data=True) as fake:
        r = pa.sendmail(["-f", "alice@a.test", "bob@drop.test"],
                        message("dropped in data", "alice@a.test"))
        assert r.returncode == 0, r.stderr
        c_addr = re.escape(f"{NET}.30")
        pa.wait_log_re(rf"to=<bob@drop\.test>, relay=mx\.c\.test\[{c_addr}\]:25, .*"
                       rf"status=deferred \(lost connection with mx\.c\.test\[{c_addr}\] "
                       r"while sending (message body|end of data -- message may be sent more "
                       r"than once)\)")
        assert [c.split(":")[0] for c in fake.commands[:3]] == \
            ["EHLO mx.a.test", "MAIL FROM", "RCPT TO"]
        assert "DATA" in fake.commands and fake.messages == []
    assert "bob@drop.test" in pa.postqueue("-p").stdout


def test_a_server_slower_than_the_timeout_defers(network, postfix):
    """ScriptedSmtp's delay against Postfix's smtp_helo_timeout: the greeting comes 20 s
    late, Postfix gives up after 1 s and defers."""
    pa = postfix(network.a, main_cf="smtp_helo_timeout = 1s\n")
    with ScriptedSmtp(network.c, delay=20):
        r = pa.sendmail(["-f", "alice@a.test", "bob@drop.test"], message("slow", "alice@a.test"))
        assert r.returncode == 0, r.stderr
        pa.wait_log_re(r"to=<bob@drop\.test>, relay=mx\.c\.test\[" + re.escape(f"{NET}.30") +
                       r"\]:25, .*status=deferred \(conversation with mx\.c\.test\["
                       + re.escape(f"{NET}.30") + r"\] timed out while receiving the initial "
                       r"server greeting\)")


def test_three_postfix_instances_side_by_side(network, postfix):
    pa, pb, pc = postfix(network.a), postfix(network.b), postfix(network.c)
    for pf in (pa, pb, pc):
        assert pf.host.listening(25) == [f"{pf.host.address}:25"]
    assert pa.peer.queue != pb.peer.queue != pc.peer.queue
    masters = {pf.peer.master_pid() for pf in (pa, pb, pc)}
    assert len(masters) == 3 and None not in masters
    # Each master lives in its own host's network namespace.
    for pf in (pa, pb, pc):
        assert pf.peer.master_pid() in pf.host.pids()
    routes = [("a", pa, "c", pc), ("c", pc, "b", pb), ("b", pb, "a", pa)]
    for src, spf, dst, dpf in routes:
        subject = f"{src} to {dst} side by side"
        r = spf.sendmail(["-f", f"user@{src}.test", f"{RCPT_USER}@{dst}.test"],
                         message(subject, f"user@{src}.test"))
        assert r.returncode == 0, r.stderr
    for src, spf, dst, dpf in routes:
        assert delivered_with(dpf, RCPT_USER, f"{src} to {dst} side by side"), dpf.log()
        spf.wait_log_re(rf"relay=mx\.{dst}\.test\[{NET}\.\d+\]:25,.*status=sent")


def test_host_down_defers_then_delivers_when_up(network, postfix):
    pa, pb = postfix(network.a), postfix(network.b)
    network.b.down()
    try:
        r = pa.sendmail(["-f", "alice@a.test", f"{RCPT_USER}@b.test"],
                        message("b was down", "alice@a.test"))
        assert r.returncode == 0, r.stderr
        pa.wait_log_re(rf"to=<{RCPT_USER}@b\.test>, relay=none,.*status=deferred "
                       rf"\(connect to mx\.b\.test\[{NET}\.20\]:25: No route to host\)")
        assert "b was down" not in pb.mbox(RCPT_USER)
        listing = pa.postqueue("-p").stdout
        assert f"(connect to mx.b.test[{NET}.20]:25: No route to host)" in listing, listing
    finally:
        network.b.up()
    assert pa.postqueue("-f").returncode == 0
    assert delivered_with(pb, RCPT_USER, "b was down"), pb.log() + pa.log()
    pa.wait_log_re(rf"to=<{RCPT_USER}@b\.test>, relay=mx\.b\.test.*status=sent")


def test_postfix_a_delivers_to_postern_smtpd_b(network, postfix):
    pa = postfix(network.a)
    pt = PosternHost(network.b).start()
    assert network.b.listening(25) == [f"{NET}.20:25"]
    # Postern's master (and so every daemon it starts) runs in B's namespace.
    assert pt.master_pid() in network.b.pids()
    # Postern's smtpd in B greets a client in A.
    with network.a.entered():
        dialog = SmtpDialog(25, host=network.b.address)
    assert dialog.greeting.startswith("220 mx.b.test ESMTP")
    assert dialog.cmd("QUIT").startswith("221")
    dialog.close()
    r = pa.sendmail(["-f", "alice@a.test", f"{pt.user}@b.test"],
                    message("postfix to postern", "alice@a.test"))
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: "Subject: postfix to postern" in pt.mbox(), 60), \
        pt.log() + pa.log()
    sent = pa.wait_log_re(rf"to=<{pt.user}@b\.test>, relay=mx\.b\.test\[{NET}\.20\]:25,"
                          r".*status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)")
    # Postern's smtpd logged the same queue ID, its client named by the fixture's PTR.
    qid = sent.group(1)
    assert re.search(rf"{qid}: client=mx\.a\.test\[{NET}\.10\]", pt.log()), pt.log()
    pt.wait_log_re(rf"{qid}: to=<{pt.user}@b\.test>, relay=local,.*status=sent")
    # Postern's own commands work inside the host too: a local submission, the queue.
    r = pt.sendmail(["-f", f"{pt.user}@b.test", f"{pt.user}@b.test"],
                    message("postern local in b", f"{pt.user}@b.test"))
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: "Subject: postern local in b" in pt.mbox(), 60), pt.log()
    assert wait_for(lambda: pt.command("postqueue", "-p").stdout.strip()
                    == "Mail queue is empty", 30), pt.command("postqueue", "-p").stdout
    pt.stop()
    assert network.b.listening(25) == []


def test_postern_a_delivers_by_mx_to_postern_b_and_postfix_c(network, postfix):
    """Postern's smtp(8) in A finds B and C through the fixture's DNS (MX, then A):
    Postern to Postern, and Postern to Debian's Postfix."""
    pc = postfix(network.c)
    pb = PosternHost(network.b).start()
    pa = PosternHost(network.a).start()
    sender = f"{pa.user}@a.test"
    for rcpt in (f"{pb.user}@b.test", f"{RCPT_USER}@c.test"):
        r = pa.sendmail(["-f", sender, rcpt], message(f"postern a to {rcpt}", sender))
        assert r.returncode == 0, r.stderr
    to_b = pa.wait_log_re(rf"to=<{pb.user}@b\.test>, relay=mx\.b\.test\[{NET}\.20\]:25,"
                          r".*status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)", timeout=60)
    assert re.search(rf"{to_b.group(1)}: client=mx\.a\.test\[{NET}\.10\]", pb.log()), pb.log()
    assert wait_for(lambda: f"Subject: postern a to {pb.user}@b.test" in pb.mbox(), 60), pb.log()
    to_c = pa.wait_log_re(rf"to=<{RCPT_USER}@c\.test>, relay=mx\.c\.test\[{NET}\.30\]:25,"
                          r".*status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)", timeout=60)
    assert delivered_with(pc, RCPT_USER, f"postern a to {RCPT_USER}@c.test"), pc.log()
    assert re.search(rf"{to_c.group(1)}: client=mx\.a\.test\[{NET}\.10\]", pc.log()), pc.log()
    # A asked the fixture's DNS for both MX records.
    assert re.search(r"query\[MX\] b\.test from " + re.escape(f"{NET}.10"), network.dns_log())
    assert re.search(r"query\[MX\] c\.test from " + re.escape(f"{NET}.10"), network.dns_log())


CRASHING_RUN = """
import os, sys
sys.path.insert(0, sys.argv[1])
from netns import Network, PostfixHost
net = Network(hosts=("a",)).start()
PostfixHost(net.a).start()
print(net.tag, flush=True)
sys.stdin.read()
"""


def test_a_crashed_run_is_cleaned_at_the_next_start(network):
    """A run killed by SIGKILL leaves namespaces, a Postfix master in one of them,
    /etc/netns and /var/tmp trees and an alternate_config_directories entry: the next
    clean_stale() (which Network.start calls) removes all of it."""
    child = subprocess.Popen(["/usr/bin/python3", "-c", CRASHING_RUN, os.path.dirname(__file__)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        tag = child.stdout.readline().strip()
        assert tag.startswith("pst-"), tag
    finally:
        child.kill()
        child.wait()
    ns = f"{tag}-a"
    assert ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left = Namespace(ns).pids()
    assert left, "the crashed run's Postfix should still run in its namespace"
    assert f"/var/tmp/{tag}/a/postfix-" in postfixpeer_alternates()
    netns.clean_stale()
    assert ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not os.path.exists(f"/etc/netns/{ns}")
    assert not os.path.exists(f"/var/tmp/{tag}")
    assert f"/var/tmp/{tag}/" not in postfixpeer_alternates()
    assert wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in left), 10), left
    # This module's network, whose pid lives, is untouched.
    assert network.b.resolve("mx.b.test") == [f"{NET}.20"]


def postfixpeer_alternates():
    return subprocess.run(["/usr/sbin/postconf", "-h", "alternate_config_directories"],
                          capture_output=True, text=True).stdout
