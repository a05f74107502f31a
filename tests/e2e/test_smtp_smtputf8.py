"""SMTPUTF8 end to end: smtpd records the client's SMTPUTF8 request, cleanup notes where
non-ASCII text is (and, for sendmail submissions, detects it: smtputf8_autodetect_classes),
qmgr passes the flags to smtp(8), which sends MAIL FROM ... SMTPUTF8 to a server that
offers it and bounces with Postfix's 5.6.7 reason when the server does not; mail that
asked for SMTPUTF8 but is all ASCII goes to any server. Debian's Postfix, given the same
mail over SMTP and sendmail, logs the same results."""
import re
import smtplib

import pytest

import postfixpeer
from capturesmtp import CaptureSmtp
from mailsystem import MailInstance, free_port, smtpd_service, wait_for

AGENTS = "smtp unix - - n - - smtp\n"
LINE = r"^.*/smtp\[\d+\]: (\w+): to=<%s>, relay=(\S+), delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, " \
       r"dsn=(\d\.\d+\.\d+), status=(\S+) \((.*)\)$"
# (recipient, SMTPUTF8 in MAIL FROM, how it is sent)
CASES = [("jö@plain.test", True, "smtp"), ("ascii@plain.test", True, "smtp"), ("jö@utf8.test", True, "smtp"),
         ("hdr@plain.test", False, "sendmail")]


@pytest.fixture(scope="module")
def servers():
    plain, utf8 = CaptureSmtp(), CaptureSmtp(keywords=("PIPELINING", "8BITMIME", "SMTPUTF8"))
    yield plain, utf8
    plain.stop()
    utf8.stop()


def routes(servers):
    plain, utf8 = servers
    return (f"transport_maps = inline:{{{{plain.test=smtp:[127.0.0.1]:{plain.port}}}, "
            f"{{utf8.test=smtp:[127.0.0.1]:{utf8.port}}}}}\n")


def results(log):
    out = {}
    for rcpt, _, _ in CASES:
        m = re.search(LINE % re.escape(rcpt), log, re.M)
        out[rcpt] = m.groups()[1:] if m else None
    return out


def submit(port, sendmail, sender):
    for rcpt, utf8, how in CASES:
        if how == "smtp":
            with smtplib.SMTP("127.0.0.1", port, timeout=180) as s:
                s.ehlo("client.example.test")
                s.sendmail(sender, [rcpt], f"Subject: utf8 {rcpt}\r\n\r\nx\r\n".encode(),
                           mail_options=["SMTPUTF8"] if utf8 else [])
        else:
            assert sendmail(["-f", sender, rcpt], f"Subject: Grüße {rcpt}\n\nx\n").returncode == 0


def test_smtputf8_flags_reach_the_smtp_client(tmp_path, servers):
    port = free_port()
    inst = MailInstance(tmp_path / "u", main_cf=routes(servers), master_cf=AGENTS + smtpd_service(port))
    inst.start()
    try:
        submit(port, inst.sendmail, f"{inst.user}@localhost")
        assert wait_for(lambda: None not in results(inst.log()).values(), 240), inst.log()
        got = results(inst.log())
        refusal = ("5.6.7", "bounced", "SMTPUTF8 is required, but was not offered by host 127.0.0.1[127.0.0.1]")
        assert got["jö@plain.test"][1:] == refusal
        assert got["hdr@plain.test"][1:] == refusal  # sendmail with a UTF-8 header: autodetected
        assert got["ascii@plain.test"][1:3] == ("2.0.0", "sent")
        assert got["jö@utf8.test"][1:3] == ("2.0.0", "sent")
        plain, utf8 = servers
        t = utf8.wait(lambda t: "jö@utf8.test" in " ".join(t.rcpts))[0]
        assert t.mail.endswith(" SMTPUTF8"), t.mail
        t = plain.wait(lambda t: "ascii@plain.test" in " ".join(t.rcpts))[0]
        assert "SMTPUTF8" not in t.mail
        # the sender is told, with the reason
        assert wait_for(lambda: "SMTPUTF8 is required" in inst.mbox(), 60), inst.mbox()
    finally:
        inst.stop()


@pytest.mark.skipif(postfixpeer.available() != "", reason=postfixpeer.available() or "-")
def test_smtputf8_results_match_debian_postfix(tmp_path, servers):
    port, peer_port = free_port(), free_port()
    inst = MailInstance(tmp_path / "u2", main_cf=routes(servers), master_cf=AGENTS + smtpd_service(port))
    peer = postfixpeer.PostfixPeer(main_cf=routes(servers) + "mynetworks = 127.0.0.0/8\n",
                                   master_cf_text=postfixpeer.master_cf(f"127.0.0.1:{peer_port}"), name="utf8")
    inst.start()
    try:
        peer.start()
        submit(port, inst.sendmail, f"{inst.user}@localhost")
        submit(peer_port, peer.sendmail, "diff@example.test")
        assert wait_for(lambda: None not in results(peer.log()).values(), 240), peer.log()
        assert wait_for(lambda: None not in results(inst.log()).values(), 240), inst.log()
        ours, theirs = results(inst.log()), results(peer.log())
        for rcpt, _, _ in CASES:  # the sent lines' queue IDs differ ("queued as" is the server's: same)
            assert ours[rcpt] == theirs[rcpt], rcpt
    finally:
        peer.cleanup()
        inst.stop()
