"""smtpd AUTH with smtpd_sasl_type = dovecot against Debian's real Dovecot auth service
(Postfix's SASL_README "Dovecot SASL"): PLAIN, LOGIN and CRAM-MD5 with smtplib and swaks,
good and bad passwords, the security options against Dovecot's MECH flags, the socket
relative to queue_directory, Dovecot unreachable or restarted (454), a submission-like
service, and sessions whose exchanges overlap on the one connection to Dovecot. Reply
and log texts are Postfix 3.7's (xsasl_dovecot_server.c, smtpd_sasl_glue.c); the bad
password case is compared with Debian's Postfix on the same Dovecot."""
import base64
import os
import re
import select
import smtplib
import subprocess

import pytest

import dovecotfixture
import postfixpeer
from dovecotfixture import DovecotAuth
from mailsystem import MailInstance, SmtpDialog, free_port, smtpd_service

pytestmark = pytest.mark.skipif(dovecotfixture.auth_available() != "",
                                reason=dovecotfixture.auth_available() or "ok")

CLIENT = r"\S+\[127\.0\.0\.1\]"
OUTSIDE = "friend@outside.example"
USERS = {"test": "secret", "other": "pass2"}
RELATIVE = "private/dovecot-auth"


def services(dovecot, slow):
    common = {"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_type": "dovecot"}
    return {
        "auth": {**common, "smtpd_sasl_path": dovecot.socket},
        "relative": {**common, "smtpd_sasl_path": RELATIVE},
        "inet": {**common, "smtpd_sasl_path": f"inet:127.0.0.1:{dovecot.inet_port}"},
        "noplain": {**common, "smtpd_sasl_path": dovecot.socket,
                    "smtpd_sasl_security_options": "noanonymous,noplaintext",
                    "smtpd_sasl_tls_security_options": "noanonymous"},
        "filter": {**common, "smtpd_sasl_path": dovecot.socket,
                   "smtpd_sasl_mechanism_filter": "login"},
        "down": {**common, "smtpd_sasl_path": "/nonexistent/auth"},
        "slow": {**common, "smtpd_sasl_path": slow.socket},
        "submission": {**common, "smtpd_sasl_path": dovecot.socket,
                       "syslog_name": "postern/submission",
                       "smtpd_tls_auth_only": "yes",
                       "smtpd_client_restrictions": "permit_sasl_authenticated,reject",
                       "smtpd_relay_restrictions": "permit_sasl_authenticated,reject"},
    }


class Env:
    pass


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from tlsfixture import make_certs
    root = tmp_path_factory.mktemp("dovecot-auth")
    certs = make_certs(root / "certs")
    e = Env()
    queue_private = root / "queue" / "private"
    queue_private.mkdir(parents=True, exist_ok=True)
    e.dovecot = DovecotAuth(USERS, extra_sockets=[queue_private / "dovecot-auth"],
                            inet_port=free_port()).start()
    # Failures wait 5 s (below smtpd's 10 s limit for a reply, Postfix's AUTH_TIMEOUT): the
    # overlap test sees another session finish meanwhile.
    e.slow = DovecotAuth(USERS, failure_delay="5 secs").start()
    conf = services(e.dovecot, e.slow)
    e.ports = {name: free_port() for name in conf}
    master_cf = "".join(smtpd_service(e.ports[n], o) for n, o in conf.items())
    e.inst = MailInstance(root, master_cf=master_cf, main_cf=(
        "mynetworks = 192.0.2.0/24\n"
        f"smtpd_tls_cert_file = {certs.server_cert}\n"
        f"smtpd_tls_key_file = {certs.server_key}\n"
        "smtpd_tls_security_level = may\n"
        "default_transport = error:outside mail is not deliverable here\n"))
    e.inst.start()
    yield e
    e.inst.stop()
    e.dovecot.cleanup()
    e.slow.cleanup()


def dialog(env, service):
    s = smtplib.SMTP("127.0.0.1", env.ports[service], timeout=60)
    s.ehlo("client.example")
    return s


def b64(text):
    return base64.b64encode(text.encode()).decode()


def plain(user, password):
    return b64(f"\0{user}\0{password}")


def test_ehlo_offers_dovecots_mechanisms(env):
    s = dialog(env, "auth")
    assert s.esmtp_features["auth"] == " PLAIN LOGIN CRAM-MD5"
    s.quit()


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_smtplib_login_then_relay(env, mechanism):
    s = dialog(env, "auth")
    s.user, s.password = "test", "secret"
    method = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login, "CRAM-MD5": s.auth_cram_md5}
    assert s.auth(mechanism, method[mechanism]) == (235, b"2.7.0 Authentication successful")
    assert s.mail("sender@example.org") == (250, b"2.1.0 Ok")
    assert s.rcpt(OUTSIDE) == (250, b"2.1.5 Ok")
    code, text = s.data(f"Subject: dovecot {mechanism}\r\n\r\nbody\r\n")
    assert code == 250, text
    queue_id = re.search(r"queued as (\w+)", text.decode()).group(1)
    s.quit()
    env.inst.wait_log_re(rf"postern/smtpd\[\d+\]: {queue_id}: client={CLIENT}, "
                         rf"sasl_method={mechanism}, sasl_username=test$")


def test_swaks_plain_initial_response_and_login(env):
    for mechanism in ("PLAIN", "LOGIN"):
        p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(env.ports["auth"]),
                            "--helo", "client.example", "--from", "sender@example.org",
                            "--to", OUTSIDE, "--auth", mechanism, "--auth-user", "other",
                            "--auth-password", "pass2"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "<-  235 2.7.0 Authentication successful" in p.stdout


def test_bad_password_is_535_with_postfixs_log_line(env):
    s = dialog(env, "auth")
    # Dovecot gives no reason for a wrong password: Postfix 3.7's reply and log line say
    # "(reason unavailable)".
    assert s.docmd("AUTH", "PLAIN " + plain("test", "wrong")) == (
        535, b"5.7.8 Error: authentication failed: (reason unavailable)")
    assert s.docmd("AUTH", "PLAIN " + plain("nobody", "wrong"))[0] == 535
    s.user, s.password = "test", "secret"
    assert s.auth("LOGIN", s.auth_login) == (235, b"2.7.0 Authentication successful")
    s.quit()
    env.inst.wait_log_re(rf"warning: {CLIENT}: SASL PLAIN authentication failed: "
                         r"\(reason unavailable\), sasl_username=test$")
    env.inst.wait_log_re(rf"warning: {CLIENT}: SASL PLAIN authentication failed: "
                         r"\(reason unavailable\), sasl_username=nobody$")


def test_unknown_mechanism_and_cancel(env):
    s = dialog(env, "auth")
    assert s.docmd("AUTH", "FOO") == (
        535, b"5.7.8 Error: authentication failed: Invalid authentication mechanism")
    assert s.docmd("AUTH", "LOGIN") == (334, b"VXNlcm5hbWU6")
    assert s.docmd("*") == (501, b"5.7.0 Authentication aborted")
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret")) == (
        235, b"2.7.0 Authentication successful")
    s.quit()
    env.inst.wait_log_re(rf"warning: {CLIENT}: SASL FOO authentication failed: "
                         r"Invalid authentication mechanism, sasl_username=\(unavailable\)$")


def test_socket_relative_to_queue_directory(env):
    s = dialog(env, "relative")
    assert s.esmtp_features["auth"] == " PLAIN LOGIN CRAM-MD5"
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret"))[0] == 235
    s.quit()


def test_inet_socket(env):
    s = dialog(env, "inet")
    assert s.esmtp_features["auth"] == " PLAIN LOGIN CRAM-MD5"
    s.user, s.password = "other", "pass2"
    assert s.auth("CRAM-MD5", s.auth_cram_md5) == (235, b"2.7.0 Authentication successful")
    s.quit()


def test_noplaintext_follows_dovecots_mech_flags(env):
    s = dialog(env, "noplain")
    assert s.esmtp_features["auth"] == " CRAM-MD5"
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret")) == (
        535, b"5.7.8 Error: authentication failed: Invalid authentication mechanism")
    s.starttls()
    s.ehlo("client.example")
    assert s.esmtp_features["auth"] == " PLAIN LOGIN CRAM-MD5"
    s.user, s.password = "test", "secret"
    assert s.auth("PLAIN", s.auth_plain) == (235, b"2.7.0 Authentication successful")
    s.quit()


def test_mechanism_filter(env):
    s = dialog(env, "filter")
    assert s.esmtp_features["auth"] == " LOGIN"
    s.quit()


def test_submission_like_service_needs_tls_first(env):
    s = dialog(env, "submission")
    assert "auth" not in s.esmtp_features
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret")) == (
        503, b"5.5.1 Error: authentication not enabled")
    s.starttls()
    s.ehlo("client.example")
    assert s.esmtp_features["auth"] == " PLAIN LOGIN CRAM-MD5"
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret")) == (
        235, b"2.7.0 Authentication successful")
    assert s.mail("sender@example.org")[0] == 250
    assert s.rcpt(OUTSIDE)[0] == 250
    s.quit()
    env.inst.wait_log_re(rf"postern/submission/smtpd\[\d+\]: \w+: client={CLIENT}, "
                         r"sasl_method=PLAIN, sasl_username=test$")


def test_unreachable_dovecot_offers_no_auth_and_answers_454(env):
    s = dialog(env, "down")
    assert "auth" not in s.esmtp_features
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret")) == (
        454, b"4.7.0 Temporary authentication failure: Can't connect to authentication server")
    s.quit()
    env.inst.wait_log_re(r"warning: SASL: Connect to Dovecot auth socket '/nonexistent/auth' "
                         r"failed: No such file or directory$")
    env.inst.wait_log_re(rf"warning: {CLIENT}: SASL PLAIN authentication failed: "
                         r"Can't connect to authentication server, sasl_username=\(unavailable\)$")


def test_exchanges_overlap_on_one_connection(env):
    # A's wrong password waits in Dovecot's failure delay; B logs in meanwhile through
    # the same smtpd's one connection to Dovecot.
    a = SmtpDialog(env.ports["slow"])
    a.sock.settimeout(120)
    assert a.cmd("EHLO a.example").startswith("250")
    a.send(f"AUTH PLAIN {plain('test', 'wrong')}\r\n")
    b = SmtpDialog(env.ports["slow"])
    assert b.cmd("EHLO b.example").startswith("250")
    assert b.cmd(f"AUTH PLAIN {plain('other', 'pass2')}").startswith("235 2.7.0")
    assert b.cmd("QUIT").startswith("221")
    assert select.select([a.sock], [], [], 0)[0] == []  # A still waits
    assert a.reply().startswith("535 5.7.8")
    a.close()
    b.close()


def test_dovecot_restart_is_454_then_works_again(tmp_path):
    dovecot = DovecotAuth(USERS).start()
    port = free_port()
    inst = MailInstance(tmp_path, master_cf=smtpd_service(port, {
        "smtpd_sasl_auth_enable": "yes", "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": dovecot.socket}))
    inst.start()
    try:
        s = SmtpDialog(port)
        assert s.cmd("EHLO client.example").startswith("250")
        assert s.cmd(f"AUTH PLAIN {plain('test', 'secret')}").startswith("235")
        s.close()
        dovecot.stop()
        s = SmtpDialog(port)
        ehlo = s.cmd("EHLO client.example")
        assert "AUTH PLAIN LOGIN CRAM-MD5" in ehlo  # what the last handshake said
        reply = s.cmd(f"AUTH PLAIN {plain('test', 'secret')}")
        assert reply.startswith("454 4.7.0 Temporary authentication failure: "), reply
        s.close()
        dovecot.start()
        s = SmtpDialog(port)
        assert s.cmd("EHLO client.example").startswith("250")
        assert s.cmd(f"AUTH PLAIN {plain('test', 'secret')}").startswith("235")
        s.close()
    finally:
        inst.stop()
        dovecot.cleanup()


@pytest.mark.skipif(postfixpeer.available() != "", reason=postfixpeer.available() or "ok")
def test_replies_and_log_lines_match_debians_postfix(env):
    # The same dialogue with Debian's Postfix 3.7 on the same Dovecot, then with Postern.
    def dialogue(port):
        s = smtplib.SMTP("127.0.0.1", port, timeout=60)
        s.ehlo("client.example")
        out = [s.esmtp_features["auth"],
               s.docmd("AUTH", "PLAIN " + plain("test", "wrong")),
               s.docmd("AUTH", "LOGIN"), s.docmd(b64("test")), s.docmd(b64("secret"))]
        s.quit()
        return out

    port = postfixpeer.free_port()
    peer = postfixpeer.PostfixPeer(
        main_cf="smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\n"
                f"smtpd_sasl_path = {env.dovecot.socket}\n",
        master_cf_text=postfixpeer.master_cf(f"127.0.0.1:{port}"))
    peer.start()
    try:
        expected = dialogue(port)
        peer.wait_log("SASL PLAIN authentication failed")
        postfix_line = re.search(r"warning: \S+: (SASL PLAIN authentication failed: .*)$",
                                 peer.log(), re.M).group(1)
    finally:
        peer.cleanup()
    assert dialogue(env.ports["auth"]) == expected
    env.inst.wait_log_re(rf"warning: {CLIENT}: {re.escape(postfix_line)}$")
