"""Faults on the way out (issue 6), on the multi-host fixture (netns.py), with Postern
on host A as the sender and, where Postfix defines the words, Debian's Postfix on host
D as the sender in the same situation (the same assertions run against both): a
two-MX domain whose primary (a scripted server on B) answers 4xx at the greeting, to
MAIL or to RCPT falls back to the secondary (Postern on C), which gets the message
once; a server that drops the connection in the middle of the message body defers it
with Postfix's reason, and the next attempt to a good server delivers one copy; a
server that stalls after the greeting or after the end of the message defers it when
smtp_*_timeout runs out, while mail to another host goes out meanwhile; an LMTP
server that refuses one of three recipients after the message bounces that one only."""
import re

import pytest

from mailsystem import wait_for
from netns import NET, ScriptedSmtp, a, mx
from netns import hosts, network  # noqa: F401 (the fixtures)

NETNS_HOSTS = ("a", "b", "c", "d")
NETNS_RECORDS = [
    *mx("two.test", (10, "mx1.two.test"), (20, "mx2.two.test")),
    a("mx1.two.test", f"{NET}.20"),     # host B: the faulty primary
    a("mx2.two.test", f"{NET}.30"),     # host C: the good secondary
]
B_ADDR, C_ADDR = f"{NET}.20", f"{NET}.30"
LMTP_MAP = "transport_maps = inline:{ lm.test=lmtp:[mx.b.test]:24 }\n"
SENDERS = ["postern", "postfix"]


def message(subject, sender, size=0):
    """A message; with size, a body of about that many bytes (to be cut short)."""
    body = f"body of {subject}\n"
    if size:
        body += ("x" * 76 + "\n") * (size // 77)
    return f"From: {sender}\nTo: x\nSubject: {subject}\n\n{body}"


class Sender:
    """Postern on A or Debian's Postfix on D, with one interface for the tests."""

    def __init__(self, kind, instance):
        self.kind, self.instance = kind, instance
        self.address = (f"{instance.user}@a.test" if kind == "postern" else "nobody@d.test")

    def send(self, rcpts, subject, size=0, notify=None):
        args = ["-f", self.address] + (["-N", notify] if notify else []) + list(rcpts)
        r = self.instance.sendmail(args, message(subject, self.address, size))
        assert r.returncode == 0, r.stderr

    def log(self):
        return self.instance.log()

    def wait_log_re(self, pattern, timeout=60):
        return self.instance.wait_log_re(pattern, timeout=timeout)

    def postqueue(self, *args):
        if self.kind == "postern":
            return self.instance.command("postqueue", *args)
        return self.instance.postqueue(*args)

    def mbox(self):
        return self.instance.mbox() if self.kind == "postern" else self.instance.mbox("nobody")


def start_sender(network, hosts, kind, main_cf=""):
    """Postern on A or Debian's Postfix on D, started for this test."""
    if kind == "postern":
        return Sender(kind, hosts.postern(network.a, main_cf=main_cf))
    return Sender(kind, hosts.postfix(network.d, main_cf=main_cf))


def queue_empties(sender):
    return wait_for(lambda: "Mail queue is empty" in sender.postqueue("-p").stdout, 60)


# ---- a two-MX domain whose primary says 4xx ------------------------------------------

def falls_back(network, hosts, kind, fault, subject, **script):
    """The primary MX (a scripted server on B with `fault` replies, and `script`'s
    other ScriptedSmtp options) refuses; the secondary (Postern on C) gets the message
    once. The sender's log."""
    secondary = hosts.postern(network.c, main_cf="mydestination = c.test, two.test, "
                              "mx.c.test, localhost\n")
    with ScriptedSmtp(network.b, replies=fault, **script) as primary:
        sender = start_sender(network, hosts, kind)
        rcpt = f"{secondary.user}@two.test"
        sender.send([rcpt], subject)
        sender.wait_log_re(rf"to=<{re.escape(rcpt)}>, relay=mx2\.two\.test\[{re.escape(C_ADDR)}\]"
                           r":25, .*status=sent \(250 2\.0\.0 Ok: queued as \w+\)")
        assert primary.messages == []
    assert wait_for(lambda: f"Subject: {subject}\n" in secondary.mbox(), 60), secondary.log()
    secondary.wait_log_re(r"relay=local, .*status=sent")
    assert secondary.mbox().count(f"Subject: {subject}\n") == 1, secondary.mbox()
    assert queue_empties(sender), sender.postqueue("-p").stdout
    return sender.log()


@pytest.mark.parametrize("kind", SENDERS)
@pytest.mark.parametrize("step,fault,logged", [
    ("greeting", "421 4.3.2 mx1 is busy", "refused to talk to me: 421 4.3.2 mx1 is busy"),
    ("MAIL", "451 4.3.0 mx1 cannot take mail now",
     "said: 451 4.3.0 mx1 cannot take mail now (in reply to MAIL FROM command)"),
    ("RCPT", "450 4.2.0 mx1 mailbox busy",
     "said: 450 4.2.0 mx1 mailbox busy (in reply to RCPT TO command)"),
])
def test_a_4xx_from_the_primary_mx_falls_back_to_the_secondary(network, hosts, kind, step,
                                                                fault, logged):
    """The primary's reply is logged as an info line of its own, as Postfix does for
    every server but the last."""
    log = falls_back(network, hosts, kind, {step: fault}, f"{kind} after 4xx to {step}")
    assert re.search(rf"^.*: host mx1\.two\.test\[{re.escape(B_ADDR)}\] {re.escape(logged)}$",
                     log, re.M), log


@pytest.mark.parametrize("kind", SENDERS)
@pytest.mark.parametrize("after,during", [("MAIL", "sending RCPT TO"), ("RCPT", "sending DATA command")])
def test_a_connection_lost_after_mail_falls_back_to_the_secondary(network, hosts, kind, after, during):
    """The primary accepts MAIL FROM (and RCPT TO), then hangs up: as Postfix, the loss is
    logged as an info line and the recipient goes to the next MX at once."""
    log = falls_back(network, hosts, kind, {}, f"{kind} dropped after {after}", drop_after=[after])
    assert re.search(rf"^.*: \w+: lost connection with mx1\.two\.test\[{re.escape(B_ADDR)}\] while {during}$",
                     log, re.M), log


# ---- the connection dropped in the middle of the message body ---------------------------

@pytest.mark.parametrize("kind", SENDERS)
def test_connection_dropped_in_the_body_defers_then_one_copy_arrives(network, hosts, kind):
    """A 3 MB message: the server hangs up after its first body line, while the client
    still writes (Postfix: "while sending message body"). Then a real server on B:
    postqueue -f delivers it once."""
    sender = start_sender(network, hosts, kind)
    subject = f"{kind} dropped in the body"
    rcpt = "root@b.test"
    with ScriptedSmtp(network.b, drop_in_data=True) as fake:
        sender.send([rcpt], subject, size=3_000_000)
        sender.wait_log_re(rf"to=<{re.escape(rcpt)}>, relay=mx\.b\.test\[{re.escape(B_ADDR)}\]"
                           rf":25, .*status=deferred \(lost connection with mx\.b\.test\["
                           rf"{re.escape(B_ADDR)}\] while sending message body\)")
        assert fake.messages == [] and "DATA" in fake.commands, fake.commands
    listing = sender.postqueue("-p").stdout
    assert f"(lost connection with mx.b.test[{B_ADDR}] while sending message body)" in listing, \
        listing
    good = hosts.postern(network.b)
    r = sender.postqueue("-f")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: f"Subject: {subject}\n" in good.mbox(), 60), good.log()
    sender.wait_log_re(rf"to=<{re.escape(rcpt)}>, relay=mx\.b\.test\[{re.escape(B_ADDR)}\]"
                       r":25, .*status=sent")
    good.wait_log_re(r"relay=local, .*status=sent")
    assert queue_empties(sender), sender.postqueue("-p").stdout
    mbox = good.mbox()
    assert mbox.count(f"Subject: {subject}\n") == 1, good.log()
    assert mbox.count("x" * 76 + "\n") == 3_000_000 // 77, "the body arrived whole"


# ---- slow servers ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", SENDERS)
@pytest.mark.parametrize("held,timeout,during", [
    ("EHLO", "smtp_helo_timeout", "performing the EHLO handshake"),
    (".", "smtp_data_done_timeout", "sending end of data -- message may be sent more than once"),
])
def test_a_server_that_stalls_defers_when_the_timeout_runs_out(network, hosts, kind, held,
                                                                timeout, during):
    sender = start_sender(network, hosts, kind, main_cf=f"{timeout} = 3s\n")
    rcpt = "root@b.test"
    with ScriptedSmtp(network.b, hang={held}) as fake:
        sender.send([rcpt], f"{kind} stalled at {held}")
        sender.wait_log_re(rf"to=<{re.escape(rcpt)}>, relay=mx\.b\.test\[{re.escape(B_ADDR)}\]"
                           rf":25, .*status=deferred \(conversation with mx\.b\.test\["
                           rf"{re.escape(B_ADDR)}\] timed out while {re.escape(during)}\)")
        assert fake.hangs >= 1
    assert "root@b.test" in sender.postqueue("-p").stdout


def test_a_stalled_server_does_not_hold_up_mail_to_another_host(network, hosts):
    """Postern on A (default timeouts) sends to B, whose server holds its EHLO reply,
    then to Postern on C: C's mail is delivered while B's conversation still hangs; once
    B answers, its mail goes too."""
    pc = hosts.postern(network.c)
    sender = start_sender(network, hosts, "postern")
    with ScriptedSmtp(network.b, hang={"EHLO"}) as fake:
        sender.send(["root@b.test"], "to the stalled host")
        assert wait_for(lambda: fake.hangs >= 1, 60), sender.log()
        sender.send([f"{pc.user}@c.test"], "to the good host")
        sender.wait_log_re(rf"to=<{pc.user}@c\.test>, relay=mx\.c\.test.*status=sent")
        assert wait_for(lambda: "Subject: to the good host\n" in pc.mbox(), 60), pc.log()
        assert "to=<root@b.test>" not in sender.log(), sender.log()
        assert fake.hangs == 1 and fake.messages == []
        fake.release()
        sender.wait_log_re(r"to=<root@b\.test>, relay=mx\.b\.test.*status=sent")
        assert len(fake.messages) == 1


# ---- LMTP: one recipient refused after the message -------------------------------------

@pytest.mark.parametrize("kind", SENDERS)
def test_lmtp_refusal_after_data_bounces_that_recipient_only(network, hosts, kind):
    sender = start_sender(network, hosts, kind, main_cf=LMTP_MAP)
    rcpts = ["alice@lm.test", "bob@lm.test", "carol@lm.test"]
    with ScriptedSmtp(network.b, port=24, replies={"greeting": "220 mx.b.test LMTP scripted"},
                      lmtp=True, rcpt_replies={"bob@lm.test": "552 5.2.2 bob is over quota"}
                      ) as fake:
        sender.send(rcpts, f"{kind} lmtp per recipient")
        relay = rf"relay=mx\.b\.test\[{re.escape(B_ADDR)}\]:24"
        for rcpt in ("alice@lm.test", "carol@lm.test"):
            sender.wait_log_re(rf"to=<{rcpt}>, {relay}, .*dsn=2\.0\.0, status=sent \(250 2\.0\.0 "
                               r"Ok\)")
        sender.wait_log_re(rf"to=<bob@lm\.test>, {relay}, .*dsn=5\.2\.2, status=bounced \(host "
                           rf"mx\.b\.test\[{re.escape(B_ADDR)}\] said: 552 5\.2\.2 bob is over "
                           r"quota \(in reply to end of DATA command\)\)")
        assert len(fake.messages) == 1
        assert [c for c in fake.commands if c.startswith("RCPT")] == \
            [f"RCPT TO:<{r}>" for r in rcpts]
    assert wait_for(lambda: "Undelivered Mail Returned to Sender" in sender.mbox(), 60), \
        sender.log()
    bounce = re.sub(r"\n[ \t]+", " ", sender.mbox())
    assert re.findall(r"^Final-Recipient: rfc822; ?(\S+)$", bounce, re.M) == ["bob@lm.test"], \
        bounce
    assert re.search(r"^Diagnostic-Code: smtp; 552 5\.2\.2 bob is over quota$", bounce, re.M), \
        bounce
    assert queue_empties(sender), sender.postqueue("-p").stdout
