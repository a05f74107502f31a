"""smtp(8) TLS security levels, smtp_tls_policy_maps, protocols, client certificates and
the session cache, against a second Postern whose smtpd offers STARTTLS with a
certificate for "localhost" (and smtp-sink, which offers no STARTTLS). The failures are
sent through Debian's Postfix smtp client too, and both must defer with the same reason
and log the same verification line."""
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading

import pytest

import postfixpeer
import smtpsink
import tlsfixture
from mailsystem import MailInstance, free_port, smtpd_service, wait_for

pytestmark = pytest.mark.skipif(not smtpsink.available(), reason="smtp-sink (Debian postfix) not installed")

CA_DN = "/O=Postern Test/CN=Postern Test CA"
# the route domains whose mail the receiver takes (the others fail before it)
DELIVERED = ("verify.test", "polok.test", "may.test", "tls12.test", "tls12x.test", "ccert.test", "fp.test", "cache.test",
             "ta.test", "taee.test", "tapol.test", "cchain.test")


def transport(name, **options):
    return f"{name} unix - - n - - smtp\n" + "".join(f"  -o {k}={v}\n" for k, v in options.items())


def fingerprint(cert):
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", cert],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().split("=", 1)[1]


# Routes and transports that both Postern and Debian's Postfix send through (their
# failures are compared in the last test); polbogus.test hits a broken policy entry.
def DIFF_ROUTES(world):
    return {"wrongca.test": f"wrongca:{world.localhost}", "verifyip.test": f"verify:{world.loopback}",
            "secure.test": f"secure:{world.loopback}", "polbogus.test": f"pol:[127.0.0.1]:{world.plain_port}",
            "daneonly.test": f"daneonly:{world.loopback}", "daneonlysec.test": f"daneonlysec:{world.loopback}",
            "tawrong.test": f"tawrong:{world.localhost}"}


DIFF_TRANSPORTS = (transport("daneonly", smtp_tls_security_level="dane-only")
                   + transport("daneonlysec", smtp_tls_security_level="dane-only",
                               smtp_dns_support_level="dnssec", smtp_host_lookup="dns"))


class SniServer:
    """A STARTTLS SMTP server (Python's ssl) that takes every message and records the
    SNI name of each TLS handshake (None when the client sent none)."""

    def __init__(self, certs):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certs.server_cert, certs.server_key)
        self.ctx.sni_callback = lambda sock, name, ctx: self.names.append(name)
        self.names = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        try:
            conn.settimeout(60)
            f = conn.makefile("rwb")
            f.write(b"220 sni.test ESMTP\r\n"), f.flush()
            data = False
            while line := f.readline():
                if data:
                    data = line != b".\r\n"
                    if not data:
                        f.write(b"250 2.0.0 Ok: queued\r\n"), f.flush()
                    continue
                verb = line[:4].upper()
                if verb == b"EHLO":
                    f.write(b"250-sni.test\r\n250 STARTTLS\r\n" if not isinstance(conn, ssl.SSLSocket)
                            else b"250 sni.test\r\n")
                elif verb == b"STAR":
                    f.write(b"220 2.0.0 Ready to start TLS\r\n"), f.flush()
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                    f = conn.makefile("rwb")
                    continue
                elif verb == b"DATA":
                    f.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    data = True
                elif verb == b"QUIT":
                    f.write(b"221 2.0.0 Bye\r\n"), f.flush()
                    break
                else:
                    f.write(b"250 2.0.0 Ok\r\n")
                f.flush()
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def stop(self):
        self.listener.close()


class World:
    """The receiver, a STARTTLS-less sink, certificates (under /var/tmp: Postfix's smtp
    runs as postfix and must read the CA files) and the routes both senders use."""

    def __init__(self, root):
        self.dir = tempfile.mkdtemp(prefix="postern-smtptls-", dir="/var/tmp")
        os.chmod(self.dir, 0o755)
        self.certs = tlsfixture.make_certs(os.path.join(self.dir, "right"), server_name="localhost")
        self.wrong = tlsfixture.make_certs(os.path.join(self.dir, "wrong"), server_name="localhost")
        for d in (self.dir, self.certs.dir, self.wrong.dir):
            os.chmod(d, 0o755)
        # smtp_tls_chain_files: the client key, then its certificate
        self.client_chain = os.path.join(self.dir, "client-chain.pem")
        with open(self.client_chain, "w") as out:
            for part in (self.certs.client_key, self.certs.client_cert):
                with open(part) as f:
                    out.write(f.read())
        self.port = free_port()
        # a second listener with one smtpd process (its ticket keys are per process) for
        # the session-cache test; it asks for client certificates like the first
        self.plain_port = free_port()
        self.receiver = MailInstance(
            root / "b", main_cf=f"mydestination = $myhostname, localhost, {', '.join(DELIVERED)}\n"
                                "myhostname = b.example.test\n"
                                "smtpd_tls_security_level = may\n"
                                f"smtpd_tls_cert_file = {self.certs.server_cert}\n"
                                f"smtpd_tls_key_file = {self.certs.server_key}\n"
                                f"smtpd_tls_CAfile = {self.certs.ca_cert}\n"
                                "smtpd_tls_ask_ccert = yes\nsmtpd_tls_received_header = yes\n",
            master_cf=smtpd_service(self.port) + smtpd_service(self.plain_port, maxproc="1"))
        self.sink = smtpsink.SmtpSink()
        self.sni = SniServer(self.certs)
        self.localhost = f"[localhost]:{self.port}"
        self.loopback = f"[127.0.0.1]:{self.port}"

    def stop(self):
        self.receiver.stop()
        self.sink.stop()
        self.sni.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("smtptls"))
    w.receiver.start()
    yield w
    w.stop()


@pytest.fixture(scope="module")
def sender(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("smtptls-a")
    policy = root / "tls_policy"
    policy.write_text(f"{world.loopback} secure match=nomatch.test\n"
                      f"{world.localhost} secure match=localhost protocols=<=TLSv1.2\n"
                      f"[127.0.0.1]:{world.plain_port} bogus\n")
    routes = {
        "verify.test": f"verify:{world.localhost}",
        "polok.test": f"pol:{world.localhost}",
        "polbad.test": f"pol:{world.loopback}",
        "may.test": f"smtp:{world.loopback}",
        "encrypt.test": f"encrypt:[127.0.0.1]:{world.sink.port}",
        "tls12.test": f"tls12:{world.localhost}",
        "tls12x.test": f"tls12x:{world.localhost}",
        "ccert.test": f"ccert:{world.loopback}",
        "fp.test": f"fp:{world.loopback}",
        "fpbad.test": f"fpbad:{world.loopback}",
        "cache.test": f"cached:[localhost]:{world.plain_port}",
        "ta.test": f"ta:{world.localhost}",
        "taee.test": f"taee:{world.localhost}",
        "tapol.test": f"tapol:{world.localhost}",
        "cchain.test": f"cchain:{world.loopback}",
    }
    sni_hop = f"[localhost]:{world.sni.port}"
    routes.update({"sni-none.test": f"smtp:{sni_hop}", "sni-host.test": f"snihost:{sni_hop}",
                   "sni-literal.test": f"sniliteral:{sni_hop}", "sni-policy.test": f"snipolicy:{sni_hop}",
                   "sni-ip.test": f"snihost:[127.0.0.1]:{world.sni.port}"})
    (root / "sni_policy").write_text(f"{sni_hop} may servername=policy.sni.example\n")
    # tafile= beats smtp_tls_trust_anchor_file (the wrong CA) and smtp_tls_CAfile
    (root / "ta_policy").write_text(f"{world.localhost} verify tafile={world.certs.ca_cert}\n")
    routes.update(DIFF_ROUTES(world))
    agents = ("smtp unix - - n - - smtp\n"
              + transport("verify", smtp_tls_security_level="verify")
              + transport("wrongca", smtp_tls_security_level="verify", smtp_tls_CAfile=world.wrong.ca_cert)
              + transport("secure", smtp_tls_security_level="secure")
              + transport("pol", smtp_tls_policy_maps=f"texthash:{policy}")
              + transport("encrypt", smtp_tls_security_level="encrypt")
              + transport("tls12", smtp_tls_security_level="encrypt", smtp_tls_mandatory_protocols="<=TLSv1.2")
              + transport("tls12x", smtp_tls_security_level="encrypt", smtp_tls_mandatory_protocols="TLSv1.2",
                          smtp_tls_mandatory_ciphers="high", smtp_tls_mandatory_exclude_ciphers="AESGCM:CHACHA20")
              + transport("ccert", smtp_tls_cert_file=world.certs.client_cert,
                          smtp_tls_key_file=world.certs.client_key)
              + transport("fp", smtp_tls_security_level="fingerprint",
                          smtp_tls_fingerprint_cert_match=fingerprint(world.certs.server_cert))
              + transport("fpbad", smtp_tls_security_level="fingerprint",
                          smtp_tls_fingerprint_cert_match=fingerprint(world.wrong.server_cert))
              + DIFF_TRANSPORTS
              + transport("snihost", smtp_tls_servername="hostname")
              + transport("sniliteral", smtp_tls_servername="mx.sni.example")
              + transport("snipolicy", smtp_tls_servername="hostname",
                          smtp_tls_policy_maps=f"texthash:{root / 'sni_policy'}")
              # trust anchors replace CAfile: the right CA (CAfile the wrong one), the
              # server certificate itself, the wrong CA (CAfile the right one)
              + transport("ta", smtp_tls_security_level="verify", smtp_tls_CAfile=world.wrong.ca_cert,
                          smtp_tls_trust_anchor_file=world.certs.ca_cert)
              + transport("taee", smtp_tls_security_level="verify", smtp_tls_CAfile=world.wrong.ca_cert,
                          smtp_tls_trust_anchor_file=world.certs.server_cert)
              + transport("tawrong", smtp_tls_security_level="verify", smtp_tls_trust_anchor_file=world.wrong.ca_cert)
              + transport("tapol", smtp_tls_CAfile=world.wrong.ca_cert, smtp_tls_trust_anchor_file=world.wrong.ca_cert,
                          smtp_tls_policy_maps=f"texthash:{root / 'ta_policy'}")
              + transport("cchain", smtp_tls_chain_files=world.client_chain)
              + transport("cached", smtp_tls_security_level="verify", smtp_tls_loglevel="2",
                          smtp_tls_session_cache_database=f"btree:{root}/smtp_scache",
                          smtp_connection_cache_on_demand="no"))
    m = MailInstance(root, main_cf="transport_maps = inline:{"
                                   + ", ".join("{%s=%s}" % kv for kv in routes.items()) + "}\n"
                                   "inet_protocols = ipv4\n"
                                   "smtp_tls_security_level = may\nsmtp_tls_loglevel = 1\n"
                                   f"smtp_tls_CAfile = {world.certs.ca_cert}\n",
                     master_cf=agents)
    m.start()
    yield m
    m.stop()


def send(inst, domain, subject, local="user"):
    rcpt = f"{local}@{domain}"
    p = inst.sendmail(["-f", "someone@example.test", rcpt], f"Subject: {subject}\n\nx\n")
    assert p.returncode == 0, p.stderr
    return rcpt


def delivery_line(inst, rcpt, status):
    return inst.wait_log_re(r"^.*: (\w+): to=<%s>, relay=(\S+), delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, "
                            r"dsn=(\d\.\d+\.\d+), status=%s \((.*)\)$" % (re.escape(rcpt), status), timeout=90)


def deliver_to_receiver(sender, world, domain, subject):
    """Sends to the receiver's user through the route of `domain` (one of DELIVERED);
    returns the sender's delivery record."""
    m = delivery_line(sender, send(sender, domain, subject, world.receiver.user), "sent")
    assert wait_for(lambda: f"Subject: {subject}" in world.receiver.mbox(), 60), world.receiver.log()
    return m


def received(world, subject):
    assert wait_for(lambda: f"Subject: {subject}" in world.receiver.mbox(), 60), world.receiver.log()
    for msg in re.split(r"\n(?=From )", world.receiver.mbox()):
        if f"Subject: {subject}" in msg:
            return msg
    raise AssertionError(subject)


def deferred(sender, domain, subject, local="user"):
    return delivery_line(sender, send(sender, domain, subject, local), "deferred")


def established(inst, relay, trust, since=0):
    """The first "... TLS connection established" line for `relay` after log offset `since`."""
    pattern = re.compile(r"smtp\[\d+\]: %s TLS connection established to %s: (TLSv1\.[23]) with cipher \S+ "
                         r"\(\d+/\d+ bits\)" % (trust, re.escape(relay)))
    assert wait_for(lambda: pattern.search(inst.log()[since:]), 60), inst.log()
    return pattern.search(inst.log()[since:])


def test_verify_with_the_right_ca_logs_verified(sender, world):
    m = deliver_to_receiver(sender, world, "verify.test", "verify-ok")
    assert m.group(2) == f"localhost[127.0.0.1]:{world.port}"
    established(sender, f"localhost[127.0.0.1]:{world.port}", "Verified")


def test_verify_with_the_wrong_ca_defers(sender, world):
    m = deferred(sender, "wrongca.test", "verify-wrong-ca")
    assert (m.group(3), m.group(4)) == ("4.7.5", "Server certificate not verified")
    sender.wait_log_re(
        r"smtp\[\d+\]: certificate verification failed for localhost\[127\.0\.0\.1\]:%d: untrusted issuer %s$"
        % (world.port, re.escape(CA_DN)))
    established(sender, f"localhost[127.0.0.1]:{world.port}", "Untrusted")
    mailq = sender.command("postqueue", "-p").stdout
    assert "(Server certificate not verified)" in mailq, mailq


def test_verify_by_address_checks_the_address(sender, world):
    m = deferred(sender, "verifyip.test", "verify-ip")
    assert (m.group(3), m.group(4)) == ("4.7.5", "Server certificate not verified")
    sender.wait_log_re(r"smtp\[\d+\]: server certificate verification failed for 127\.0\.0\.1\[127\.0\.0\.1\]:%d: "
                       r"num=64:IP address mismatch$" % world.port)


def test_secure_with_a_nexthop_mismatch_defers(sender, world):
    m = deferred(sender, "secure.test", "secure-mismatch")
    assert (m.group(3), m.group(4)) == ("4.7.5", "Server certificate not verified")
    sender.wait_log_re(r"smtp\[\d+\]: server certificate verification failed for 127\.0\.0\.1\[127\.0\.0\.1\]:%d: "
                       r"num=62:hostname mismatch$" % world.port)


def test_policy_map_beats_the_default_level(sender, world):
    # default level may: the same server is used without checks by the smtp transport
    deliver_to_receiver(sender, world, "may.test", "may-default")
    m = deferred(sender, "polbad.test", "policy-secure-nomatch")
    assert (m.group(3), m.group(4)) == ("4.7.5", "Server certificate not verified")
    # secure match=localhost protocols=<=TLSv1.2
    since = len(sender.log())
    deliver_to_receiver(sender, world, "polok.test", "policy-secure-match")
    assert established(sender, f"localhost[127.0.0.1]:{world.port}", "Verified", since).group(1) == "TLSv1.2"


def test_encrypt_without_starttls_defers(sender, world):
    m = deferred(sender, "encrypt.test", "must-encrypt")
    assert (m.group(3), m.group(4)) == ("4.7.4", "TLS is required, but was not offered by host "
                                                 "127.0.0.1[127.0.0.1]")


def test_mandatory_protocols_and_ciphers_restrict_the_session(sender, world):
    relay = f"localhost[127.0.0.1]:{world.port}"
    since = len(sender.log())
    deliver_to_receiver(sender, world, "tls12.test", "tls12-only")
    assert established(sender, relay, "Trusted", since).group(1) == "TLSv1.2"
    # TLS 1.2 with the AEAD ciphers excluded: the server's preferred GCM cipher is out
    since = len(sender.log())
    deliver_to_receiver(sender, world, "tls12x.test", "tls12-no-gcm")
    line = established(sender, relay, "Trusted", since).group(0)
    cipher = re.search(r"with cipher (\S+)", line).group(1)
    assert "TLSv1.2" in line and "GCM" not in cipher and "CHACHA20" not in cipher, line


def test_client_certificate_is_presented(sender, world):
    deliver_to_receiver(sender, world, "ccert.test", "client-cert")
    msg = received(world, "client-cert")
    assert 'Client CN "client.example.test", Issuer "Postern Test CA" (verified OK)' in msg, msg


def test_client_certificate_from_chain_files(sender, world):
    deliver_to_receiver(sender, world, "cchain.test", "client-chain")
    msg = received(world, "client-chain")
    assert 'Client CN "client.example.test", Issuer "Postern Test CA" (verified OK)' in msg, msg


def test_trust_anchors_replace_the_ca_file(sender, world):
    """smtp_tls_trust_anchor_file: a CA or the server's own certificate as the anchor
    verifies (CAfile names the wrong CA); the wrong CA as the anchor fails although
    CAfile has the right one."""
    relay = f"localhost[127.0.0.1]:{world.port}"
    for domain in ("ta.test", "taee.test", "tapol.test"):
        since = len(sender.log())
        deliver_to_receiver(sender, world, domain, f"anchor {domain}")
        established(sender, relay, "Verified", since)
    m = deferred(sender, "tawrong.test", "anchor-wrong")
    assert (m.group(3), m.group(4)) == ("4.7.5", "Server certificate not verified")


def test_fingerprint_level(sender, world):
    since = len(sender.log())
    deliver_to_receiver(sender, world, "fp.test", "fingerprint-ok")
    established(sender, f"127.0.0.1[127.0.0.1]:{world.port}", "Verified", since)
    m = deferred(sender, "fpbad.test", "fingerprint-bad")
    assert (m.group(3), m.group(4)) == ("4.7.5", "Server certificate not verified")


def test_session_cache_resumes_the_second_session(sender, world):
    relay = f"localhost[127.0.0.1]:{world.plain_port}"
    for n in (1, 2):
        before = sender.log().count(f"setting up TLS connection to {relay}")
        deliver_to_receiver(sender, world, "cache.test", f"cached-{n}")
        assert sender.log().count(f"setting up TLS connection to {relay}") == before + 1
    assert sender.log().count(f"{relay}: Reusing old session") == 1, sender.log()


def test_servername_sets_the_sni_name(sender, world):
    """smtp_tls_servername: empty sends no SNI, "hostname" the server's name, else the
    name itself; a policy entry's servername= wins; an IP address is never sent."""
    for domain, name in (("sni-none.test", None), ("sni-host.test", "localhost"),
                         ("sni-literal.test", "mx.sni.example"), ("sni-policy.test", "policy.sni.example"),
                         ("sni-ip.test", None)):
        before = len(world.sni.names)
        rcpt = send(sender, domain, f"sni {domain}")
        delivery_line(sender, rcpt, "sent")
        assert world.sni.names[before:] == [name], (domain, world.sni.names)


def test_broken_policy_and_dane_only_defer(sender, world):
    m = deferred(sender, "polbogus.test", "policy-bogus")
    assert (m.group(2), m.group(3), m.group(4)) == ("none", "4.7.5", "client TLS configuration problem")
    sender.wait_log_re(r'warning: smtp_tls_policy_maps, next-hop destination "\[127\.0\.0\.1\]:%d": '
                       r'invalid security level "bogus"$' % world.plain_port)
    sender.wait_log_re(r"warning: TLS policy lookup for \[127\.0\.0\.1\]:%d/127\.0\.0\.1: "
                       r"client TLS configuration problem$" % world.plain_port)
    # no DNSSEC: dane-only never sends
    m = deferred(sender, "daneonly.test", "dane-only")
    assert (m.group(3), m.group(4)) == ("4.7.5", "client TLS configuration problem")
    sender.wait_log_re(r"warning: \[127\.0\.0\.1\]:%d: dane-only configured with dnssec lookups disabled$"
                       % world.port)
    m = deferred(sender, "daneonlysec.test", "dane-only-dnssec")
    assert (m.group(3), m.group(4)) == ("4.7.5", "no TLSA records found")


# ---- the same failures through Debian's Postfix -----------------------------------------

@pytest.mark.skipif(postfixpeer.available() != "", reason=postfixpeer.available() or "x")
def test_postfix_defers_with_the_same_reasons_and_log_lines(sender, world):
    routes = DIFF_ROUTES(world)
    extra = (transport("verify", smtp_tls_security_level="verify")
             + transport("wrongca", smtp_tls_security_level="verify", smtp_tls_CAfile=world.wrong.ca_cert)
             + transport("secure", smtp_tls_security_level="secure")
             + transport("pol") + DIFF_TRANSPORTS
             + transport("tawrong", smtp_tls_security_level="verify", smtp_tls_trust_anchor_file=world.wrong.ca_cert))
    peer = postfixpeer.PostfixPeer(
        main_cf="transport_maps = inline:{" + ", ".join("{%s=%s}" % kv for kv in routes.items()) + "}\n"
                f"smtp_tls_policy_maps = inline:{{ {{[127.0.0.1]:{world.plain_port}=bogus}} }}\n"
                f"smtp_tls_CAfile = {world.certs.ca_cert}\nsmtp_host_lookup = native\nsmtp_tls_loglevel = 1\n",
        master_cf_text=postfixpeer.master_cf(extra=extra), name="tlsdiff")
    peer.start()
    try:
        for domain in routes:
            peer.sendmail(["-f", "someone@example.test", f"pf@{domain}"], "Subject: diff\n\nx\n")
        for domain in routes:
            peer.wait_log(f"to=<pf@{domain}>")
        for domain in routes:
            ours = deferred(sender, domain, "diff", local="diff")
            theirs = re.search(r"to=<pf@%s>, relay=(\S+), .*dsn=(\S+), status=deferred \((.*)\)$" % re.escape(domain),
                               peer.log(), re.M)
            assert theirs.groups() == ours.group(2, 3, 4), domain

        def tls_lines(log):
            return {re.sub(r"^.*smtp\[\d+\]: ", "", line) for line in log.splitlines()
                    if re.search(r"certificate verification failed|TLS policy lookup|dnssec lookups disabled|"
                                 r"invalid security level", line)}
        assert tls_lines(peer.log()) == tls_lines(sender.log())

        def established_lines(log):
            return {re.sub(r"^.*smtp\[\d+\]: ", "", line) for line in log.splitlines()
                    if " TLS connection established to " in line}
        # the sender made more connections (the other tests), Postfix's are among them
        assert established_lines(peer.log()) <= established_lines(sender.log())
    finally:
        peer.cleanup()
