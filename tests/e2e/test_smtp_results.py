"""smtp(8) results after the final word of the server: soft_bounce (a 5xx becomes a
deferral logged as status=SOFTBOUNCE, its reason kept in mailq, no bounce sent) and
smtp_delivery_status_filter (status and text replaced, a deferral made a bounce and back)
-- the same settings in Debian's Postfix against the same server give the same log lines."""
import re

import pytest

import postfixpeer
from capturesmtp import CaptureSmtp
from mailsystem import MailInstance, wait_for

AGENTS = "smtp unix - - n - - smtp\n"


def rcpt_reply(cmd):
    if "unknown" in cmd:
        return "550 5.1.1 <unknown>: Recipient address rejected: User unknown"
    if "busy" in cmd:
        return "451 4.3.0 <busy>: Temporary lookup failure"
    if "policy" in cmd:
        return "554 5.7.1 <policy>: Relay access denied"
    return None


@pytest.fixture(scope="module")
def server():
    s = CaptureSmtp(rcpt_reply=rcpt_reply)
    yield s
    s.stop()


def settings(server):
    return (f"transport_maps = inline:{{{{res.test=smtp:[127.0.0.1]:{server.port}}}}}\n"
            "smtp_delivery_status_filter = pcre:{{/^4\\.3\\.0 (.*)/ 5.3.0 made permanent: $$1}, "
            "{/^5\\.7\\.1 (.*)/ 4.7.1 made temporary: $$1}, {/^2\\.0\\.0 (.*)/ 2.0.0 filtered: $$1}}\n")


@pytest.fixture(scope="module")
def inst(tmp_path_factory, server):
    m = MailInstance(tmp_path_factory.mktemp("results"), main_cf=settings(server) + "soft_bounce = yes\n",
                     master_cf=AGENTS)
    m.start()
    yield m
    m.stop()


LINE = r"^.*/smtp\[\d+\]: (\w+): to=<%s>, relay=(\S+), delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, " \
       r"dsn=(\d\.\d+\.\d+), status=(\S+) \((.*)\)$"
RCPTS = ["unknown@res.test", "busy@res.test", "policy@res.test", "fine@res.test"]


def results(log):
    out = {}
    for r in RCPTS:
        m = re.search(LINE % re.escape(r), log, re.M)
        out[r] = m.groups()[2:] if m else None
    return out


def test_soft_bounce_and_status_filter(inst):
    p = inst.sendmail(["-f", f"{inst.user}@localhost", *RCPTS], "Subject: results\n\nx\n")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: None not in results(inst.log()).values(), 240), inst.log()
    got = results(inst.log())
    who = "host 127.0.0.1[127.0.0.1] said:"
    assert got["unknown@res.test"] == ("4.1.1", "SOFTBOUNCE", f"{who} 550 5.1.1 <unknown>: Recipient address "
                                       "rejected: User unknown (in reply to RCPT TO command)")
    # the filter made the 4xx permanent, then soft_bounce made it a deferral again
    assert got["busy@res.test"] == ("4.3.0", "SOFTBOUNCE", f"made permanent: {who} 451 4.3.0 <busy>: Temporary "
                                    "lookup failure (in reply to RCPT TO command)")
    assert got["policy@res.test"] == ("4.7.1", "deferred", f"made temporary: {who} 554 5.7.1 <policy>: Relay "
                                      "access denied (in reply to RCPT TO command)")
    assert got["fine@res.test"] == ("2.0.0", "sent", "filtered: 250 2.0.0 Ok: queued as CAPTURED")
    # Still queued with the reason shown; no bounce reached the sender.
    assert wait_for(lambda: "User unknown (in reply to RCPT TO command)" in inst.command("postqueue", "-p").stdout,
                    30)
    assert "Undelivered Mail" not in inst.mbox()


@pytest.mark.skipif(postfixpeer.available() != "", reason=postfixpeer.available() or "-")
def test_results_match_debian_postfix(inst, server):
    inst.sendmail(["-f", f"{inst.user}@localhost", *RCPTS], "Subject: results-2\n\nx\n")
    peer = postfixpeer.PostfixPeer(main_cf=settings(server) + "soft_bounce = yes\n", name="results")
    try:
        peer.start()
        assert peer.sendmail(["-f", "diff@example.test", *RCPTS], "Subject: results-2\n\nx\n").returncode == 0
        assert wait_for(lambda: None not in results(peer.log()).values(), 240), peer.log()
        assert results(peer.log()) == results(inst.log())
    finally:
        peer.cleanup()
