"""smtpd TLS end to end (RFC 3207, Postfix's TLS_README): STARTTLS with smtplib, swaks and
openssl s_client, smtps wrapper mode, session resumption, security level encrypt, the
STARTTLS command-injection defence, client certificates, the Received: clause and log
lines (worded as Debian's Postfix 3.7 writes them), and a broken certificate setting.

One instance serves every case on its own smtpd service (master.cf -o overrides)."""
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess

import pytest

from mailsystem import MailInstance, free_port, smtp_connect, smtpd_service, wait_for
from tlsfixture import make_certs

# What Debian's Postfix 3.7 logs for a TLS 1.3 handshake with an RSA server key.
TLS13_SUMMARY = ("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
                 "server-signature RSA-PSS (2048 bits) server-digest SHA256")
# The client's name is smtpd's reverse lookup of 127.0.0.1 (not what these tests check).
CLIENT = r"\S+\[127\.0\.0\.1\]"
SERVICES = ("plain", "wrapper", "encrypt", "ccert", "badcert", "tls13only", "resume", "resumeccert", "relaycert")


class Tls:
    """The instance, its certificates and one port per service."""

    def __init__(self, inst, certs, ports):
        self.inst, self.certs, self.ports = inst, certs, ports

    def client_context(self, cert=False):
        ctx = ssl.create_default_context(cafile=self.certs.ca_cert)
        ctx.check_hostname = False  # we connect to 127.0.0.1; the CA chain is still checked
        if cert:
            ctx.load_cert_chain(self.certs.client_cert, self.certs.client_key)
        return ctx

    def wait_log_re(self, pattern):
        """Waits until the regular expression matches a maillog line; returns the match."""
        found = wait_for(lambda: re.search(pattern, self.inst.log(), re.M))
        assert found, f"{pattern!r} not logged:\n{self.inst.log()}"
        return found

    def mbox(self):
        path = self.inst.mail / self.inst.user
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    root = tmp_path_factory.mktemp("tls")
    certs = make_certs(root / "certs")
    ports = {name: free_port() for name in SERVICES}
    # permit_tls_clientcerts: the client certificate's sha256 fingerprint (level 3.6).
    (root / "clientcerts").write_text(certs.client_fingerprint("sha256") + " client\n")
    master_cf = "".join([
        smtpd_service(ports["plain"]),
        smtpd_service(ports["wrapper"], {"smtpd_tls_wrappermode": "yes"}),
        smtpd_service(ports["encrypt"], {"smtpd_tls_security_level": "encrypt"}),
        smtpd_service(ports["ccert"], {"smtpd_tls_ask_ccert": "yes",
                                       "smtpd_tls_CAfile": certs.ca_cert}),
        smtpd_service(ports["badcert"], {"smtpd_tls_cert_file": str(root / "missing.pem")}),
        smtpd_service(ports["tls13only"], {"smtpd_tls_protocols": ">=TLSv1.3"}),
        # Ticket keys live in each smtpd process (there is no tlsmgr): one process.
        smtpd_service(ports["resume"], maxproc="1"),
        smtpd_service(ports["resumeccert"], {"smtpd_tls_ask_ccert": "yes", "smtpd_tls_CAfile": certs.ca_cert},
                      maxproc="1"),
        smtpd_service(ports["relaycert"], {
            "smtpd_tls_ask_ccert": "yes", "smtpd_tls_CAfile": certs.ca_cert,
            "relay_clientcerts": f"texthash:{root / 'clientcerts'}",
            "smtpd_relay_restrictions": "permit_tls_clientcerts,reject_unauth_destination"}),
    ])
    inst = MailInstance(root, master_cf=master_cf, main_cf=(
        f"smtpd_tls_cert_file = {certs.server_cert}\n"
        f"smtpd_tls_key_file = {certs.server_key}\n"
        "smtpd_tls_security_level = may\n"
        "smtpd_tls_loglevel = 1\n"
        "smtpd_tls_received_header = yes\n"
        "mynetworks = 127.0.0.0/8\n"))
    inst.start()
    yield Tls(inst, certs, ports)
    inst.stop()


def test_starttls_smtplib_delivers_with_received_clause(tls):
    rcpt = f"{tls.inst.user}@localhost"
    with smtplib.SMTP("127.0.0.1", tls.ports["plain"], timeout=20) as s:
        code, text = s.ehlo("client.example.test")
        assert code == 250 and b"STARTTLS" in text.split(b"\n")
        code, text = s.starttls(context=tls.client_context())
        assert (code, text) == (220, b"2.0.0 Ready to start TLS")
        code, text = s.ehlo("client.example.test")
        # RFC 3207 4.2: no STARTTLS offered once TLS is active.
        assert code == 250 and b"STARTTLS" not in text.split(b"\n")
        s.sendmail("sender@example.test", [rcpt], "Subject: tls smtplib\r\n\r\nbody\r\n")
    tls.inst.wait_log("status=sent")
    tls.wait_log_re("Anonymous TLS connection established from " + CLIENT + ": "
                    + re.escape(TLS13_SUMMARY) + "$")
    mbox = wait_for(lambda: "Subject: tls smtplib" in tls.mbox() and tls.mbox())
    received = re.search(r"^Received: from client\.example\.test .*?\n(?=\S)", mbox,
                         re.M | re.S).group(0)
    assert ("\t(using " + TLS13_SUMMARY.replace(" key-exchange", "\n\t key-exchange")
            + ")\n\t(No client certificate requested)\n\tby host.example.test") in received
    assert "with ESMTPS id" in received


def test_starttls_injection_is_discarded(tls):
    """RFC 3207 section 6 / CVE-2011-0411: plaintext pipelined after STARTTLS is dropped."""
    sock = smtp_connect(tls.ports["plain"])
    f = sock.makefile("rb")
    assert f.readline().startswith(b"220 ")
    sock.sendall(b"EHLO client.example.test\r\n")
    while f.readline()[3:4] == b"-":
        pass
    sock.sendall(b"STARTTLS\r\nRSET\r\n")  # one packet
    assert f.readline() == b"220 2.0.0 Ready to start TLS\r\n"
    tsock = tls.client_context().wrap_socket(sock)
    tsock.sendall(b"NOOP\r\nQUIT\r\n")
    replies = b""
    while True:
        chunk = tsock.recv(4096)
        if not chunk:
            break
        replies += chunk
    tsock.close()
    # Only NOOP and QUIT are answered: RSET, sent in plaintext, never reached the session.
    assert replies == b"250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"
    tls.inst.wait_log("ehlo=1 starttls=1 noop=1 quit=1 commands=4")


def test_swaks_tls_and_wrapper_mode(tls):
    if shutil.which("swaks") is None:
        pytest.fail("swaks is not installed (scripts/deps.sh installs it)")
    rcpt = f"{tls.inst.user}@localhost"
    for flag, port, subject in (("--tls", tls.ports["plain"], "swaks starttls"),
                                ("--tlsc", tls.ports["wrapper"], "swaks wrapper")):
        p = subprocess.run(["swaks", flag, "--server", "127.0.0.1", "--port", str(port),
                            "--from", "sender@example.test", "--to", rcpt,
                            "--header", f"Subject: {subject}", "--body", "x",
                            "--helo", "client.example.test"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "250 2.0.0 Ok: queued as" in p.stdout
    assert wait_for(lambda: "Subject: swaks wrapper" in tls.mbox() and "Subject: swaks starttls" in tls.mbox())
    # Wrapper mode: TLS before the greeting, so the banner itself comes encrypted.
    assert "STARTTLS" not in p.stdout.split("~> EHLO")[1].split("~> MAIL")[0]


def s_client(port, *extra, input=b"QUIT\r\n", starttls=True):
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-ign_eof", *extra]
    if starttls:
        argv += ["-starttls", "smtp"]
    return subprocess.run(argv, input=input, capture_output=True, timeout=30)


def test_openssl_s_client_session_resumption(tls, tmp_path):
    sess = str(tmp_path / "sess.pem")
    first = s_client(tls.ports["resume"], "-sess_out", sess)
    assert b"New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" in first.stdout
    assert b"221 2.0.0 Bye" in first.stdout
    assert os.path.getsize(sess) > 0
    second = s_client(tls.ports["resume"], "-sess_in", sess)
    assert b"Reused, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" in second.stdout, second.stdout
    # A resumed TLS 1.3 session signs nothing: Postfix logs no server-digest then.
    tls.wait_log_re("Anonymous TLS connection established from " + CLIENT + ": " + re.escape(
        "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
        "server-signature RSA-PSS (2048 bits)") + "$")


def test_session_resumption_when_asking_for_a_client_certificate(tls, tmp_path):
    sess = str(tmp_path / "sess.pem")
    first = s_client(tls.ports["resumeccert"], "-sess_out", sess)
    assert b"New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" in first.stdout, first.stdout
    assert b"221 2.0.0 Bye" in first.stdout
    second = s_client(tls.ports["resumeccert"], "-sess_in", sess)
    assert b"Reused, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" in second.stdout, second.stdout
    assert b"221 2.0.0 Bye" in second.stdout


def test_security_level_encrypt_requires_starttls(tls):
    with smtplib.SMTP("127.0.0.1", tls.ports["encrypt"], timeout=20) as s:
        s.ehlo("client.example.test")
        assert s.mail("sender@example.test") == (530, b"5.7.0 Must issue a STARTTLS command first")
        s.starttls(context=tls.client_context())
        s.ehlo("client.example.test")
        assert s.mail("sender@example.test") == (250, b"2.1.0 Ok")
        s.rset()


def test_protocol_floor_refuses_tls12(tls):
    low = s_client(tls.ports["tls13only"], "-tls1_2")
    assert b"Cipher is (NONE)" in low.stdout or low.returncode != 0
    tls.wait_log_re("SSL_accept error from " + CLIENT + ": -1$")
    ok = s_client(tls.ports["tls13only"])
    assert b"New, TLSv1.3" in ok.stdout


def test_client_certificate_is_asked_verified_and_logged(tls):
    rcpt = f"{tls.inst.user}@localhost"
    with smtplib.SMTP("127.0.0.1", tls.ports["ccert"], timeout=20) as s:
        s.starttls(context=tls.client_context(cert=True))
        s.sendmail("sender@example.test", [rcpt], "Subject: tls ccert\r\n\r\nbody\r\n")
    tls.wait_log_re("Trusted TLS connection established from " + CLIENT + ": " + re.escape(
        TLS13_SUMMARY + " client-signature RSA-PSS (2048 bits) client-digest SHA256") + "$")
    mbox = wait_for(lambda: "Subject: tls ccert" in tls.mbox() and tls.mbox())
    block = mbox[mbox.rindex("Received: from", 0, mbox.index("Subject: tls ccert")):]
    # Postfix 3.7's layout: the client's signature on a line of its own.
    assert ("\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256\n"
            "\t client-signature RSA-PSS (2048 bits) client-digest SHA256)\n"
            '\t(Client CN "client.example.test", Issuer "Postern Test CA" (verified OK))\n'
            in block)
    # Without a certificate the same service says it asked for one.
    with smtplib.SMTP("127.0.0.1", tls.ports["ccert"], timeout=20) as s:
        s.starttls(context=tls.client_context())
        s.sendmail("sender@example.test", [rcpt], "Subject: tls noccert\r\n\r\nbody\r\n")
    mbox = wait_for(lambda: "Subject: tls noccert" in tls.mbox() and tls.mbox())
    block = mbox[mbox.rindex("Received: from", 0, mbox.index("Subject: tls noccert")):]
    assert "\t(Client did not present a certificate)\n" in block


def test_permit_tls_clientcerts_uses_the_certificate_fingerprint(tls):
    for cert, want in ((True, (250, b"2.1.5 Ok")),
                       (False, (554, b"5.7.1 <far@example.net>: Relay access denied"))):
        with smtplib.SMTP("127.0.0.1", tls.ports["relaycert"], timeout=20) as s:
            s.starttls(context=tls.client_context(cert=cert))
            s.ehlo("client.example.test")
            assert s.mail("sender@example.test") == (250, b"2.1.0 Ok")
            assert s.rcpt("far@example.net") == want
            s.rset()


def test_bad_certificate_file_means_starttls_fails_with_454(tls):
    """As Debian's Postfix 3.7: STARTTLS is still offered and answered 454."""
    missing = str(tls.inst.root / "missing.pem")
    with smtplib.SMTP("127.0.0.1", tls.ports["badcert"], timeout=20) as s:
        code, text = s.ehlo("client.example.test")
        assert code == 250 and b"STARTTLS" in text.split(b"\n")
        assert s.docmd("STARTTLS") == (454, b"4.7.0 TLS not available due to local problem")
    log = tls.inst.wait_log(f'warning: cannot get RSA certificate from file "{missing}": '
                            "disabling TLS support")
    assert re.search(r"warning: TLS library problem: error:80000002:system library::"
                     r"No such file or directory:.*calling fopen\(" + re.escape(missing), log)


def test_no_smtpd_process_crashed(tls):
    """Runs last: every session above ended without an smtpd dying (the TLS filter once
    ran the write callback from inside write() and freed a session still in use)."""
    assert "killed by signal" not in tls.inst.log()
