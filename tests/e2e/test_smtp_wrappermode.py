"""smtp_tls_wrappermode (SMTPS, TLS before the greeting): Postern's smtp client sends to
Postern's smtpd in wrapper mode and to Debian's Postfix smtpd with
`-o smtpd_tls_wrappermode=yes`; both take the mail over TLS (Received: ... with ESMTPS).
A level weaker than encrypt skips the server with Postfix's warning, and a port-465 next
hop without wrapper mode gets Postfix's hint: both compared with Debian's Postfix as the
sender on the same routes."""
import os
import re
import shutil
import tempfile

import pytest

import postfixpeer
import saslfixture
import tlsfixture
from mailsystem import MailInstance, free_port, smtpd_service, wait_for

pytestmark = pytest.mark.skipif(postfixpeer.available() != "", reason=postfixpeer.available() or "x")

AGENTS = ("wrap unix - - n - - smtp\n  -o smtp_tls_wrappermode=yes\n  -o smtp_tls_security_level=encrypt\n"
          "wrapmay unix - - n - - smtp\n  -o smtp_tls_wrappermode=yes\n  -o smtp_tls_security_level=may\n")


def routes(world):
    return {"wrap.test": f"wrap:[127.0.0.1]:{world.wrap_port}",
            "pfwrap.test": f"wrap:[127.0.0.1]:{world.peer_port}",
            "wrapmay.test": f"wrapmay:[127.0.0.1]:{world.wrap_port}",
            "port465.test": "smtp:[127.0.0.1]:465",
            "auth.test": f"wrapauth:[127.0.0.1]:{world.wrap_port}"}


def transport_maps(world):
    return "transport_maps = inline:{" + ", ".join("{%s=%s}" % kv for kv in routes(world).items()) + "}\n"


class World:
    """The receiver (Postern, an smtpd in wrapper mode and a plain one) and Debian's
    Postfix with a wrapper-mode smtpd that relays into the receiver's plain port."""

    def __init__(self, root):
        self.dir = tempfile.mkdtemp(prefix="postern-wrapper-", dir="/var/tmp")
        os.chmod(self.dir, 0o755)
        self.certs = tlsfixture.make_certs(os.path.join(self.dir, "certs"), server_name="localhost")
        os.chmod(self.certs.dir, 0o755)
        self.wrap_port, self.plain_port, self.peer_port = free_port(), free_port(), free_port()
        sasl_dir = saslfixture.make_sasl_dir(root / "sasl", {"test": "secret"}, realm="b.example.test",
                                             mech_list="PLAIN LOGIN CRAM-MD5")
        self.passwords = os.path.join(self.dir, "sasl_passwd")
        with open(self.passwords, "w") as f:
            f.write(f"[127.0.0.1]:{self.wrap_port} test:secret\n")
        self.receiver = MailInstance(
            root / "recv", main_cf="mydestination = $myhostname, localhost, wrap.test, pfwrap.test, auth.test\n"
                                   "myhostname = b.example.test\n"
                                   f"cyrus_sasl_config_path = {sasl_dir}\n"
                                   f"smtpd_tls_cert_file = {self.certs.server_cert}\n"
                                   f"smtpd_tls_key_file = {self.certs.server_key}\n"
                                   "smtpd_tls_loglevel = 1\n",
            master_cf=smtpd_service(self.wrap_port, {"smtpd_tls_wrappermode": "yes", "smtpd_sasl_auth_enable": "yes"})
            + smtpd_service(self.plain_port))
        self.peer = postfixpeer.PostfixPeer(
            main_cf="relay_domains = pfwrap.test\nmynetworks = 127.0.0.0/8\n"
                    f"transport_maps = inline:{{pfwrap.test=smtp:[127.0.0.1]:{self.plain_port}}}\n"
                    f"smtpd_tls_cert_file = {self.certs.server_cert}\n"
                    f"smtpd_tls_key_file = {self.certs.server_key}\nsmtpd_tls_loglevel = 1\n",
            master_cf_text=postfixpeer.master_cf(f"127.0.0.1:{self.peer_port}",
                                                 "-o smtpd_tls_wrappermode=yes"), name="wrapsrv")

    def start(self):
        self.receiver.start()
        self.peer.start()

    def stop(self):
        self.peer.cleanup()
        self.receiver.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("wrapper"))
    w.start()
    yield w
    w.stop()


@pytest.fixture(scope="module")
def sender(world, tmp_path_factory):
    m = MailInstance(tmp_path_factory.mktemp("wrapper-a"),
                     main_cf=transport_maps(world) + "inet_protocols = ipv4\nsmtp_tls_loglevel = 1\n",
                     master_cf="smtp unix - - n - - smtp\n" + AGENTS
                     + "wrapauth unix - - n - - smtp\n  -o smtp_tls_wrappermode=yes\n"
                       "  -o smtp_tls_security_level=encrypt\n  -o smtp_sasl_auth_enable=yes\n"
                       f"  -o smtp_sasl_password_maps=texthash:{world.passwords}\n"
                       "  -o smtp_sasl_security_options=noanonymous\n")
    m.start()
    yield m
    m.stop()


def send(inst, rcpt, subject):
    p = inst.sendmail(["-f", "someone@example.test", rcpt], f"Subject: {subject}\n\nx\n")
    assert p.returncode == 0, p.stderr


def delivery(inst, rcpt, status):
    return inst.wait_log_re(r"^.*: \w+: to=<%s>, relay=(\S+), .*dsn=(\S+), status=%s \((.*)\)$"
                            % (re.escape(rcpt), status), timeout=240)


def delivered_wrapped(sender, world, domain, subject, port):
    """Sends through the wrapper-mode route of `domain`; returns the message as the
    receiver's mailbox has it, after checking the sender's record and TLS line."""
    rcpt = f"{world.receiver.user}@{domain}"
    send(sender, rcpt, subject)
    m = delivery(sender, rcpt, "sent")
    assert m.group(1) == f"127.0.0.1[127.0.0.1]:{port}"
    # Postfix's client line (no CAfile: Untrusted)
    assert re.search(r"smtp\[\d+\]: Untrusted TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:%d: "
                     r"TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)" % port, sender.log()), sender.log()
    assert wait_for(lambda: f"Subject: {subject}" in world.receiver.mbox(), 240), world.receiver.log()
    return next(m for m in re.split(r"\n(?=From )", world.receiver.mbox()) if f"Subject: {subject}" in m)


def test_wrappermode_to_postern_smtpd(sender, world):
    msg = delivered_wrapped(sender, world, "wrap.test", "wrap-postern", world.wrap_port)
    assert re.search(r"by b\.example\.test \(\w+\) with ESMTPS id", msg), msg
    assert re.search(r"TLS connection established from localhost\[127\.0\.0\.1\]", world.receiver.log())


def test_wrappermode_with_auth_is_esmtpsa(sender, world):
    msg = delivered_wrapped(sender, world, "auth.test", "wrap-auth", world.wrap_port)
    assert re.search(r"by b\.example\.test \(\w+\) with ESMTPSA id", msg), msg
    world.receiver.wait_log_re(r"client=localhost\[127\.0\.0\.1\], sasl_method=CRAM-MD5, sasl_username=test$")


def test_wrappermode_to_postfix_smtpd(sender, world):
    msg = delivered_wrapped(sender, world, "pfwrap.test", "wrap-postfix", world.peer_port)
    # the Postfix peer's smtpd recorded the wrapped session
    assert re.search(r"by peer\.example\.test \(Postfix\) with ESMTPS id", msg), msg
    world.peer.wait_log("TLS connection established from localhost[127.0.0.1]")


def test_weaker_level_and_port_465_hint_as_postfix(sender, world):
    """wrapmay.test: level may with wrapper mode is skipped with Postfix's warning and
    deferred; port465.test: Postfix's hint (and a refused connection)."""
    ours = {}
    for domain in ("wrapmay.test", "port465.test"):
        send(sender, f"x@{domain}", "weak")
        ours[domain] = delivery(sender, f"x@{domain}", "deferred").groups()
    assert ours["wrapmay.test"] == ("none", "4.3.0", "server unavailable or unable to receive mail"), sender.log()
    peer = postfixpeer.PostfixPeer(main_cf=transport_maps(world) + "smtp_tls_loglevel = 1\n",
                                   master_cf_text=postfixpeer.master_cf(extra=AGENTS), name="wrapdiff")
    peer.start()
    try:
        for domain in ("wrapmay.test", "port465.test"):
            peer.sendmail(["-f", "someone@example.test", f"x@{domain}"], "Subject: weak\n\nx\n")
        for domain in ("wrapmay.test", "port465.test"):
            peer.wait_log(f"to=<x@{domain}>", timeout=240)
            theirs = re.search(r"to=<x@%s>, relay=(\S+), .*dsn=(\S+), status=deferred \((.*)\)$" % re.escape(domain),
                               peer.log(), re.M)
            assert theirs.groups() == ours[domain], domain

        def lines(log):
            return {re.sub(r"^.*smtp\[\d+\]: ", "", line) for line in log.splitlines()
                    if "wrappermode" in line}
        assert lines(peer.log()) == lines(sender.log())
        assert len(lines(sender.log())) == 2, sender.log()
    finally:
        peer.cleanup()
