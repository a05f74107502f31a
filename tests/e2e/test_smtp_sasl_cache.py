"""smtp_sasl_auth_cache_name: a 535 reply to AUTH is remembered per server, user and
password; the next delivery with the same credentials defers from the cache without a
new AUTH (the server logs one failure), with Postfix's "SASL [CACHED] authentication
failed" reason. Debian's Postfix (its cache through proxywrite) sends the same two
messages to the same server and must give the same reasons.

The two messages take two transports (auth1, auth2) so that each is a queue of its own:
the queue manager's throttling after the first deferral plays no part."""
import re

import pytest

import postfixpeer
import saslfixture
from mailsystem import MailInstance, free_port, smtpd_service

pytestmark = pytest.mark.skipif(postfixpeer.available() != "", reason=postfixpeer.available() or "x")

AGENTS = "auth1 unix - - n - - smtp\nauth2 unix - - n - - smtp\n"


def client_cf(port, passwords, cache):
    return ("smtp_sasl_auth_enable = yes\nsmtp_sasl_security_options = noanonymous\n"
            f"smtp_sasl_password_maps = texthash:{passwords}\n"
            f"smtp_sasl_auth_cache_name = proxy:btree:{cache}\n"
            f"transport_maps = inline:{{{{first.test=auth1:[localhost]:{port}}}, "
            f"{{second.test=auth2:[localhost]:{port}}}}}\n")


def failures(receiver):
    return len(re.findall(r"SASL \S+ authentication failed", receiver.log()))


def deferral(log, rcpt):
    m = re.search(r"to=<%s>, relay=(\S+), .*dsn=(\S+), status=deferred \((.*)\)$" % re.escape(rcpt), log, re.M)
    return m.groups() if m else None


def test_a_535_is_cached_and_the_second_delivery_sends_no_auth(tmp_path):
    port = free_port()
    sasl_dir = saslfixture.make_sasl_dir(tmp_path / "sasl", {"test": "secret"}, realm="b.example.test",
                                         mech_list="PLAIN LOGIN CRAM-MD5")  # what both clients speak
    receiver = MailInstance(tmp_path / "b", main_cf="mydestination = $myhostname, localhost\n"
                                                    "myhostname = b.example.test\n"
                                                    f"cyrus_sasl_config_path = {sasl_dir}\n"
                                                    "smtpd_sasl_auth_enable = yes\n"
                                                    "smtpd_recipient_restrictions = permit_sasl_authenticated, reject\n",
                            master_cf=smtpd_service(port))
    passwords = tmp_path / "sasl_passwd"
    passwords.write_text(f"[localhost]:{port} test:wrong\n")
    sender = MailInstance(tmp_path / "a", main_cf="inet_protocols = ipv4\n"
                                                  + client_cf(port, passwords, tmp_path / "sasl_auth_cache"),
                          master_cf=AGENTS)
    receiver.start()
    sender.start()
    ours = {}
    try:
        for n, domain in enumerate(("first.test", "second.test"), 1):
            p = sender.sendmail(["-f", "someone@example.test", f"x@{domain}"], "Subject: cache\n\nx\n")
            assert p.returncode == 0, p.stderr
            sender.wait_log_re(r"to=<x@%s>, .*status=deferred" % re.escape(domain), timeout=240)
            ours[domain] = deferral(sender.log(), f"x@{domain}")
            # one AUTH failure at the server: the second delivery did not try again
            receiver.wait_log_re(r"SASL \S+ authentication failed")
            assert failures(receiver) == 1, receiver.log()
        relay = f"localhost[127.0.0.1]:{port}"
        assert ours["first.test"][:2] == (relay, "4.7.8")
        assert ours["first.test"][2].startswith(f"SASL authentication failed; server localhost[127.0.0.1] said: "
                                                "535 5.7.8 "), ours
        assert ours["second.test"] == (relay, "4.7.8", "SASL [CACHED] authentication failed; server localhost said: "
                                       + ours["first.test"][2].split(" said: ", 1)[1])
        # the client connected and said EHLO, then QUIT without AUTH
        assert len(re.findall(r"connect from localhost\[127\.0\.0\.1\]", receiver.log())) >= 2

        peer = postfixpeer.PostfixPeer(main_cf="", master_cf_text=postfixpeer.master_cf(extra=AGENTS), name="sasl")
        (peer.etc / "sasl_passwd").write_text(passwords.read_text())
        (peer.etc / "main.cf").write_text((peer.etc / "main.cf").read_text()
                                          + client_cf(port, peer.etc / "sasl_passwd", peer.data / "sasl_auth_cache"))
        peer.start()
        try:
            for n, domain in enumerate(("first.test", "second.test"), 2):
                peer.sendmail(["-f", "someone@example.test", f"x@{domain}"], "Subject: cache\n\nx\n")
                peer.wait_log(f"to=<x@{domain}>", timeout=240)
                assert deferral(peer.log(), f"x@{domain}") == ours[domain], peer.log() + receiver.log()
                assert failures(receiver) == 2, receiver.log()
        finally:
            peer.cleanup()
    finally:
        sender.stop()
        receiver.stop()
