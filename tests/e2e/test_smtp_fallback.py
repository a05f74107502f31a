"""smtp_fallback_relay: a destination that cannot be found (NXDOMAIN) or reached
(connection refused) passes the mail to the fallback relay; a fallback relay that
itself cannot be found is a configuration problem (a warning, and the mail deferred
with 4.3.5 rather than bounced). Debian's Postfix with the same settings and the same
DNS data logs the same delivery lines."""
import re

import pytest

import dnsfixture
import postfixpeer
from capturesmtp import CaptureSmtp
from mailsystem import MailInstance, free_port, wait_for

pytestmark = pytest.mark.skipif(bool(dnsfixture.available()), reason=dnsfixture.available() or "n/a")

AGENTS = "smtp unix - - n - - smtp\nbadfb unix - - n - - smtp\n  -o smtp_fallback_relay=[nosuch-relay.test]\n"
RCPTS = ["a@nosuch.test", "b@refused.test", "c@badfb.test"]
LINE = r"^.*/smtp\[\d+\]: (\w+): to=<%s>, relay=(\S+), delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, " \
       r"dsn=(\d\.\d+\.\d+), status=(\S+) \((.*)\)$"


def settings(server, refused):
    return ("inet_protocols = ipv4\n"
            f"smtp_fallback_relay = [127.0.0.1]:{server.port}\n"
            "transport_maps = inline:{{nosuch.test=smtp:nosuch.test}, "
            f"{{refused.test=smtp:[127.0.0.1]:{refused}}}, {{badfb.test=badfb:[127.0.0.1]:{refused}}}}}\n")


def results(log):
    out = {}
    for r in RCPTS:
        m = re.search(LINE % re.escape(r), log, re.M)
        out[r] = m.groups()[1:] if m else None
    return out


@pytest.fixture
def env(tmp_path):
    server, refused = CaptureSmtp(), free_port()
    (tmp_path / "dns").mkdir()
    dns = dnsfixture.DnsFixture([], root=tmp_path / "dns").start()
    yield server, refused, dns
    dns.stop()
    server.stop()


def test_fallback_relay_takes_what_cannot_be_found_or_reached(tmp_path, env):
    server, refused, dns = env
    inst = MailInstance(tmp_path / "fb", main_cf=settings(server, refused), master_cf=AGENTS)
    inst.start(preexec_fn=dns.preexec)
    try:
        p = inst.sendmail(["-f", f"{inst.user}@localhost", *RCPTS], "Subject: fallback\n\nx\n")
        assert p.returncode == 0, p.stderr
        assert wait_for(lambda: None not in results(inst.log()).values(), 240), inst.log()
        got = results(inst.log())
        fallback = f"127.0.0.1[127.0.0.1]:{server.port}"
        assert got["a@nosuch.test"][:3] == (fallback, "2.0.0", "sent")
        assert got["b@refused.test"][:3] == (fallback, "2.0.0", "sent")
        assert f"connect to 127.0.0.1[127.0.0.1]:{refused}: Connection refused" in inst.log()
        assert got["c@badfb.test"] == ("none", "4.3.5", "deferred", "Host or domain name not found. Name service "
                                       "error for name=nosuch-relay.test type=A: Host not found")
        assert re.search(r"smtp\[\d+\]: warning: smtp_fallback_relay configuration problem$", inst.log(), re.M)
        t = server.wait(lambda t: b"Subject: fallback" in t.data)
        assert sorted(r for x in t for r in x.rcpts) == ["RCPT TO:<a@nosuch.test>", "RCPT TO:<b@refused.test>"]
    finally:
        inst.stop()


@pytest.mark.skipif(postfixpeer.available() != "", reason=postfixpeer.available() or "-")
def test_fallback_results_match_debian_postfix(tmp_path, env):
    server, refused, dns = env
    inst = MailInstance(tmp_path / "fb2", main_cf=settings(server, refused), master_cf=AGENTS)
    peer = postfixpeer.PostfixPeer(main_cf=settings(server, refused) + "smtp_dns_support_level = enabled\n",
                                   master_cf_text=postfixpeer.master_cf(extra=AGENTS.split("\n", 1)[1]),
                                   name="fallback")
    inst.start(preexec_fn=dns.preexec)
    try:
        peer.start(preexec_fn=dns.preexec)
        for mta, sender in ((inst, f"{inst.user}@localhost"), (peer, "diff@example.test")):
            assert mta.sendmail(["-f", sender, *RCPTS], "Subject: fallback-diff\n\nx\n").returncode == 0
        assert wait_for(lambda: None not in results(peer.log()).values(), 240), peer.log()
        assert wait_for(lambda: None not in results(inst.log()).values(), 240), inst.log()
        assert results(inst.log()) == results(peer.log())
        assert "warning: smtp_fallback_relay configuration problem" in peer.log()
    finally:
        peer.cleanup()
        inst.stop()
