"""smtpd AUTH end to end (RFC 4954, Postfix's SASL_README "Cyrus SASL"): smtplib and swaks
log in with PLAIN, LOGIN and CRAM-MD5 against a private sasldb and a private saslauthd;
refusals are checked by reply code and text and by the warnings Debian's Postfix 3.7
logs for the same dialogue (texts compared by hand against Postfix 3.7 with the same
Cyrus configuration); relaying for authenticated clients is checked in the queue log.

One instance serves every case, each special setting on its own smtpd service."""
import base64
import os
import re
import select
import smtplib
import subprocess

import pytest

from mailsystem import MailInstance, SmtpDialog, free_port, smtp_connect, smtpd_service, wait_for
from saslfixture import HeldSaslauthd, Saslauthd, add_sasldb_user, make_sasl_dir, write_app_conf
from tlsfixture import make_certs

HOST = "host.example.test"      # myhostname of MailInstance: Cyrus's default realm
CLIENT = r"\S+\[127\.0\.0\.1\]"  # smtpd's name for 127.0.0.1 is not what these tests check
OUTSIDE = "friend@outside.example"
SAD_USER, SAD_PASSWORD = "posternsasl", "Sad-Secret-1"

SUBMISSION = {  # conf/master.cf's submission entry, unchanged
    "syslog_name": "postern/submission",
    "smtpd_tls_security_level": "encrypt",
    "smtpd_sasl_auth_enable": "yes",
    "smtpd_tls_auth_only": "yes",
    "smtpd_client_restrictions": "permit_sasl_authenticated,reject",
    "smtpd_relay_restrictions": "permit_sasl_authenticated,reject",
    "milter_macro_daemon_name": "ORIGINATING",
}
SUBMISSIONS = {  # and its submissions (smtps) entry
    "syslog_name": "postern/submissions",
    "smtpd_tls_wrappermode": "yes",
    "smtpd_sasl_auth_enable": "yes",
    "smtpd_client_restrictions": "permit_sasl_authenticated,reject",
    "smtpd_relay_restrictions": "permit_sasl_authenticated,reject",
    "milter_macro_daemon_name": "ORIGINATING",
}
SERVICES = {
    "auth": {"smtpd_sasl_auth_enable": "yes"},
    "broken": {"smtpd_sasl_auth_enable": "yes", "broken_sasl_auth_clients": "yes"},
    "header": {"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_authenticated_header": "yes"},
    "authonly": {"smtpd_sasl_auth_enable": "yes", "smtpd_tls_auth_only": "yes"},
    "noplain": {"smtpd_sasl_auth_enable": "yes",
                "smtpd_sasl_security_options": "noanonymous,noplaintext",
                "smtpd_sasl_tls_security_options": "noanonymous"},
    "realm": {"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_local_domain": "example.org"},
    "filter": {"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_mechanism_filter": "login"},
    "saslauthd": {"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_path": "smtpd-saslauthd"},
    "down": {"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_path": "smtpd-down"},
    "held": {"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_path": "smtpd-held"},
    "submission": SUBMISSION,
    "submissions": SUBMISSIONS,
    # Broken settings: smtpd dies at start with Postfix's messages.
    "nomech": {"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_path": "smtpd-nomech"},
    "badtype": {"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_type": "bogus"},
    "nofilter": {"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_mechanism_filter": "gssapi"},
    "badopt": {"smtpd_sasl_auth_enable": "yes",
               "smtpd_sasl_security_options": "noanonymous,bogus"},
}
MECHS = "PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256"


class Auth:
    def __init__(self, inst, ports, certs, held):
        self.inst, self.ports, self.certs, self.held = inst, ports, certs, held

    def wait_log_re(self, pattern):
        return self.inst.wait_log_re(pattern)

    def mbox(self):
        return self.inst.mbox()

    def swaks(self, service, *args):
        return subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                               str(self.ports[service]), "--helo", "client.example",
                               "--from", "sender@example.org", *args],
                              capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def auth(tmp_path_factory):
    root = tmp_path_factory.mktemp("auth")
    certs = make_certs(root / "certs")
    sasl_dir = make_sasl_dir(root / "sasl", {"test": "secret", "other": "pass2"}, realm=HOST)
    add_sasldb_user(sasl_dir / "sasldb2", "realmuser", "realmpass", realm="example.org")
    write_app_conf(sasl_dir, "smtpd-down", pwcheck_method="saslauthd",
                   saslauthd_path=str(root / "nonexistent" / "mux"), mech_list="PLAIN LOGIN")
    write_app_conf(sasl_dir, "smtpd-nomech", pwcheck_method="auxprop", mech_list="BOGUS")
    sad = None
    if os.geteuid() == 0:  # saslauthd -a shadow needs root; CI runs as root
        sad = Saslauthd(root / "saslauthd", SAD_USER, SAD_PASSWORD).__enter__()
        write_app_conf(sasl_dir, "smtpd-saslauthd", pwcheck_method="saslauthd",
                       saslauthd_path=sad.socket, mech_list="PLAIN LOGIN")
    held = HeldSaslauthd(root / "held-mux", "slowuser")
    write_app_conf(sasl_dir, "smtpd-held", pwcheck_method="saslauthd", saslauthd_path=held.path,
                   mech_list="PLAIN LOGIN")
    ports = {name: free_port() for name in SERVICES}
    # "held" runs one smtpd process: every session of its tests shares one event loop.
    master_cf = "".join(smtpd_service(ports[n], o, maxproc="1" if n == "held" else "-")
                        for n, o in SERVICES.items())
    inst = MailInstance(root, master_cf=master_cf, main_cf=(
        "mynetworks = 192.0.2.0/24\n"  # 127.0.0.1 is not trusted: relaying needs AUTH
        f"cyrus_sasl_config_path = {sasl_dir}\n"
        f"smtpd_tls_cert_file = {certs.server_cert}\n"
        f"smtpd_tls_key_file = {certs.server_key}\n"
        "smtpd_tls_security_level = may\n"
        "default_transport = error:outside mail is not deliverable here\n"))
    inst.start()
    yield Auth(inst, ports, certs, held)
    inst.stop()
    held.close()
    if sad is not None:
        sad.__exit__(None, None, None)


def dialog(port):
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.ehlo("client.example")
    return s


def b64(text):
    return base64.b64encode(text.encode()).decode()


def plain(user, password):
    return b64(f"\0{user}\0{password}")


# --- the EHLO keyword -----------------------------------------------------------------

def test_ehlo_offers_the_mechanisms_of_the_app_conf(auth):
    s = dialog(auth.ports["auth"])
    assert s.esmtp_features["auth"] == " " + MECHS
    assert "250-AUTH=" not in str(s.ehlo_resp)
    s.quit()


def test_broken_sasl_auth_clients_adds_the_auth_equals_line(auth):
    s = smtp_connect(auth.ports["broken"])
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO client.example\r\n")
    lines = []
    while True:
        line = f.readline().decode().rstrip("\r\n")
        lines.append(line)
        if line[3] == " ":
            break
    assert f"250-AUTH {MECHS}" in lines
    assert f"250-AUTH={MECHS}" in lines
    s.close()


def test_mechanism_filter_limits_the_offer_and_the_command(auth):
    s = dialog(auth.ports["filter"])
    assert s.esmtp_features["auth"] == " LOGIN"
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret")) == (
        535, b"5.7.8 Error: authentication failed: no mechanism available")
    s.quit()


# --- logging in -----------------------------------------------------------------------

@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_smtplib_login_then_relay_to_an_outside_domain(auth, mechanism):
    s = dialog(auth.ports["auth"])
    s.user, s.password = "test", "secret"
    method = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login, "CRAM-MD5": s.auth_cram_md5}
    assert s.auth(mechanism, method[mechanism]) == (235, b"2.7.0 Authentication successful")
    assert s.mail("sender@example.org") == (250, b"2.1.0 Ok")
    assert s.rcpt(OUTSIDE) == (250, b"2.1.5 Ok")
    code, text = s.data(f"Subject: relayed {mechanism}\r\n\r\nbody\r\n")
    assert code == 250, text
    queue_id = re.search(r"queued as (\w+)", text.decode()).group(1)
    s.quit()
    auth.wait_log_re(rf"postern/smtpd\[\d+\]: {queue_id}: client={CLIENT}, "
                     rf"sasl_method={mechanism}, sasl_username=test$")
    # Accepted and queued; the error transport then returns it to the sender.
    auth.wait_log_re(rf"{queue_id}: to=<{OUTSIDE}>, .*status=bounced")


def test_unauthenticated_relay_is_refused(auth):
    # 454 as Debian's Postfix 3.7 answers for defer_unauth_destination.
    s = dialog(auth.ports["auth"])
    assert s.mail("sender@example.org") == (250, b"2.1.0 Ok")
    assert s.rcpt(OUTSIDE) == (454, f"4.7.1 <{OUTSIDE}>: Relay access denied".encode())
    s.quit()


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_swaks_with_starttls(auth, mechanism):
    p = auth.swaks("auth", "--to", OUTSIDE, "--tls", "--auth", mechanism,
                   "--auth-user", "test", "--auth-password", "secret",
                   "--header", f"Subject: swaks {mechanism}")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "<~  235 2.7.0 Authentication successful" in p.stdout
    queue_id = re.search(r"<~  250 2.0.0 Ok: queued as (\w+)", p.stdout).group(1)
    auth.wait_log_re(rf"{queue_id}: client={CLIENT}, sasl_method={mechanism}, "
                     rf"sasl_username=test$")
    # smtpd_tls_loglevel = 0 (the default) logs no TLS summary line, as Postfix.
    assert "TLS connection established" not in auth.inst.log()


def test_scram_and_digest_are_offered_and_work_with_cyrus_mechanisms(auth):
    # swaks and smtplib do not speak SCRAM/DIGEST-MD5; the unit tests drive them with
    # Cyrus's client. Here: the server side starts them with a challenge.
    s = dialog(auth.ports["auth"])
    code, challenge = s.docmd("AUTH", "DIGEST-MD5")
    assert code == 334
    assert f'realm="{HOST}"' in base64.b64decode(challenge).decode()
    assert s.docmd("*") == (501, b"5.7.0 Authentication aborted")
    s.quit()


# --- refusals -------------------------------------------------------------------------

def test_bad_password_is_535_and_logged_as_postfix_does(auth):
    s = dialog(auth.ports["auth"])
    assert s.docmd("AUTH", "PLAIN " + plain("test", "wrong")) == (
        535, b"5.7.8 Error: authentication failed: authentication failure")
    # An unknown user reads the same: no probing for user names.
    assert s.docmd("AUTH", "PLAIN " + plain("nobody", "wrong")) == (
        535, b"5.7.8 Error: authentication failed: authentication failure")
    s.quit()
    auth.wait_log_re(r"postern/smtpd\[\d+\]: warning: SASL authentication failure: "
                     r"Password verification failed$")
    auth.wait_log_re(rf"warning: {CLIENT}: SASL PLAIN authentication failed: "
                     r"authentication failure, sasl_username=test$")
    auth.wait_log_re(rf"warning: {CLIENT}: SASL PLAIN authentication failed: "
                     r"authentication failure, sasl_username=nobody$")


def test_unknown_mechanism_is_535_and_logged_without_a_user_name(auth):
    s = dialog(auth.ports["auth"])
    assert s.docmd("AUTH", "FOO") == (
        535, b"5.7.8 Error: authentication failed: no mechanism available")
    s.quit()
    # Debian's Postfix 3.7 logs the same, "(unavailable)" included.
    auth.wait_log_re(rf"warning: {CLIENT}: SASL FOO authentication failed: "
                     r"no mechanism available, sasl_username=\(unavailable\)$")


def test_cancel_with_star(auth):
    s = dialog(auth.ports["auth"])
    assert s.docmd("AUTH", "LOGIN") == (334, b"VXNlcm5hbWU6")
    assert s.docmd(b64("test")) == (334, b"UGFzc3dvcmQ6")
    assert s.docmd("*") == (501, b"5.7.0 Authentication aborted")
    # The session goes on: a new AUTH works.
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret")) == (
        235, b"2.7.0 Authentication successful")
    s.quit()
    auth.wait_log_re(rf"warning: {CLIENT}: SASL LOGIN authentication aborted$")


def test_auth_twice_and_auth_syntax(auth):
    s = dialog(auth.ports["auth"])
    assert s.docmd("AUTH") == (501, b"5.5.4 Syntax: AUTH mechanism")
    assert s.docmd("AUTH", "PLAIN !!!") == (501, b"5.5.2 Cannot decode response")
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret")) == (
        235, b"2.7.0 Authentication successful")
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret")) == (
        503, b"5.5.1 Error: already authenticated")
    s.quit()


def test_plaintext_auth_refused_when_tls_auth_only(auth):
    s = dialog(auth.ports["authonly"])
    assert "auth" not in s.esmtp_features
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret")) == (
        503, b"5.5.1 Error: authentication not enabled")
    s.starttls()
    s.ehlo("client.example")
    assert s.esmtp_features["auth"] == " " + MECHS
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret")) == (
        235, b"2.7.0 Authentication successful")
    s.quit()


def test_noplaintext_hides_plain_and_login_until_tls(auth):
    s = dialog(auth.ports["noplain"])
    assert s.esmtp_features["auth"] == " CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256"
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret")) == (
        535, b"5.7.8 Error: authentication failed: no mechanism available")
    s.starttls()
    s.ehlo("client.example")
    assert s.esmtp_features["auth"] == " " + MECHS
    s.user, s.password = "test", "secret"
    assert s.auth("LOGIN", s.auth_login) == (235, b"2.7.0 Authentication successful")
    s.quit()


def test_local_domain_is_the_realm(auth):
    s = dialog(auth.ports["realm"])
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret"))[0] == 535  # realm HOST
    assert s.docmd("AUTH", "PLAIN " + plain("realmuser", "realmpass")) == (
        235, b"2.7.0 Authentication successful")
    assert s.mail("sender@example.org")[0] == 250
    assert s.rcpt(OUTSIDE)[0] == 250  # the queue file, and the client= line, start here
    s.quit()
    # Cyrus names the user with the realm, as in Postfix 3.7 with the same setting.
    auth.wait_log_re(rf"client={CLIENT}, sasl_method=PLAIN, "
                     r"sasl_username=realmuser@example\.org$")


# --- the submission service and the Received: header ---------------------------------

def test_submission_entry_of_the_seed_master_cf(auth):
    p = auth.swaks("submission", "--to", OUTSIDE, "--quit-after", "MAIL")
    assert "<** 530 5.7.0 Must issue a STARTTLS command first" in p.stdout, p.stdout
    p = auth.swaks("submission", "--to", OUTSIDE, "--tls", "--quit-after", "RCPT")
    assert re.search(r"<~\* 554 5\.7\.1 <\S+\[127\.0\.0\.1\]>: Client host rejected: "
                     r"Access denied", p.stdout), p.stdout
    p = auth.swaks("submission", "--to", OUTSIDE, "--tls", "--auth", "PLAIN",
                   "--auth-user", "test", "--auth-password", "secret")
    assert p.returncode == 0, p.stdout + p.stderr
    queue_id = re.search(r"<~  250 2.0.0 Ok: queued as (\w+)", p.stdout).group(1)
    auth.wait_log_re(rf"postern/submission/smtpd\[\d+\]: {queue_id}: client={CLIENT}, "
                     r"sasl_method=PLAIN, sasl_username=test$")


def test_submissions_entry_of_the_seed_master_cf(auth):
    p = auth.swaks("submissions", "--to", OUTSIDE, "--tls-on-connect", "--auth", "LOGIN",
                   "--auth-user", "test", "--auth-password", "secret")
    assert p.returncode == 0, p.stdout + p.stderr
    queue_id = re.search(r"<~  250 2.0.0 Ok: queued as (\w+)", p.stdout).group(1)
    auth.wait_log_re(rf"postern/submissions/smtpd\[\d+\]: {queue_id}: client={CLIENT}, "
                     r"sasl_method=LOGIN, sasl_username=test$")


def test_authenticated_header_names_the_login(auth):
    marker = "authenticated-header-marker"
    for service in ("header", "auth"):
        s = dialog(auth.ports[service])
        s.user, s.password = "test", "secret"
        s.auth("PLAIN", s.auth_plain)
        s.sendmail("sender@example.org", [f"{auth.inst.user}@localhost"],
                   f"Subject: {marker} {service}\r\n\r\nbody\r\n")
        s.quit()
    assert wait_for(lambda: auth.mbox().count(marker) == 2), auth.inst.log()
    entries = re.split(r"\n(?=From )", auth.mbox())
    header = next(e for e in entries if f"{marker} header" in e)
    plain_entry = next(e for e in entries if f"{marker} auth" in e)
    assert re.search(r"^Received: from client\.example \(\S+ \[127\.0\.0\.1\]\)\n"
                     r"\t\(Authenticated sender: test\)\n\tby host\.example\.test", header,
                     re.M), header
    assert "Authenticated sender" not in plain_entry


# --- saslauthd ------------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="saslauthd -a shadow needs root")
def test_saslauthd_checks_a_system_password(auth):
    s = dialog(auth.ports["saslauthd"])
    assert s.esmtp_features["auth"] == " PLAIN LOGIN"
    assert s.docmd("AUTH", "PLAIN " + plain(SAD_USER, "wrong")) == (
        535, b"5.7.8 Error: authentication failed: authentication failure")
    s.user, s.password = SAD_USER, SAD_PASSWORD
    assert s.auth("LOGIN", s.auth_login) == (235, b"2.7.0 Authentication successful")
    s.quit()


def test_unreachable_saslauthd_is_a_temporary_failure(auth):
    s = dialog(auth.ports["down"])
    assert s.docmd("AUTH", "PLAIN " + plain("test", "secret")) == (
        454, b"4.7.0 Temporary authentication failure: generic failure")
    s.quit()
    auth.wait_log_re(r"warning: SASL authentication failure: cannot connect to saslauthd "
                     r"server: No such file or directory$")
    auth.wait_log_re(rf"warning: {CLIENT}: SASL PLAIN authentication failed: generic failure, "
                     r"sasl_username=test$")


def test_a_step_waiting_for_saslauthd_stalls_no_other_session(auth):
    # One smtpd process; A's password check hangs in saslauthd (the worker thread waits).
    a = SmtpDialog(auth.ports["held"])
    a.sock.settimeout(120)
    assert a.cmd("EHLO a.example").startswith("250")
    a.send(f"AUTH PLAIN {plain('slowuser', 'any')}\r\n")
    assert auth.held.held.wait(60)
    # B is served meanwhile by the same process (its loop is free).
    b = SmtpDialog(auth.ports["held"])
    assert b.cmd("EHLO b.example").startswith("250")
    assert b.cmd("MAIL FROM:<sender@example.org>").startswith("250")
    assert b.cmd(f"RCPT TO:<{auth.inst.user}@localhost>").startswith("250")
    assert b.cmd("RSET").startswith("250")
    assert select.select([a.sock], [], [], 0)[0] == []  # A still waits for saslauthd
    auth.held.release()
    assert a.reply() == "235 2.7.0 Authentication successful"
    # Two LOGIN exchanges interleaved in the one process.
    assert a.cmd("QUIT").startswith("221")
    c = SmtpDialog(auth.ports["held"])
    assert c.cmd("EHLO c.example").startswith("250")
    assert b.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    assert c.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    assert b.cmd(b64("bee")) == "334 UGFzc3dvcmQ6"
    assert c.cmd(b64("sea")) == "334 UGFzc3dvcmQ6"
    assert c.cmd(b64("pw")) == "235 2.7.0 Authentication successful"
    assert b.cmd(b64("pw")) == "235 2.7.0 Authentication successful"
    for s in (a, b, c):
        s.close()
    auth.wait_log_re(rf"postern/smtpd\[\d+\]: disconnect from {CLIENT} ehlo=1 auth=1 mail=1 "
                     r"rcpt=1 rset=1 commands=5")


# --- broken settings ------------------------------------------------------------------

@pytest.mark.parametrize("service, messages", [
    ("nomech", [r"fatal: no SASL authentication mechanisms$"]),
    ("badtype", [r"warning: unsupported SASL server implementation: bogus$",
                 r"fatal: SASL per-process initialization failed$"]),
    ("nofilter", [rf"warning: smtpd_sasl_mechanism_filter discards all mechanisms in '{MECHS}'$",
                  r"fatal: no SASL authentication mechanisms$"]),
    ("badopt", [r'warning: unknown SASL security options value "bogus" in '
                r'"noanonymous,bogus"$',
                r"warning: bad per-session SASL security properties$",
                r"fatal: SASL per-connection initialization failed$"]),
])
def test_broken_sasl_settings_are_fatal_at_start(auth, service, messages):
    # master starts smtpd for the connection; smtpd dies before it greets (master
    # keeps the connection waiting for the next smtpd).
    s = smtp_connect(auth.ports[service])
    for message in messages:
        auth.wait_log_re(rf"postern/smtpd\[\d+\]: {message}")
    s.close()
