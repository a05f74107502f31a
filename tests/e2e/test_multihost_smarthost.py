"""A smart host between hosts (issue 6), on the multi-host fixture (netns.py): Postern on
host A relays everything (relayhost = [smarthost.c.test]:587) through Debian's Postfix on
host C, whose submission service demands STARTTLS and then AUTH (Dovecot SASL) before it
relays, and C delivers to Postern on host B (Maildir). Without credentials, with a wrong
password and with a mechanism filter that leaves nothing, A defers with the very reason
Debian's Postfix gives on A in the same set-up; with smtp_sasl_password_maps (a hash:
table built by Postern's postmap) the mail reaches B, C's log shows the TLS session and
sasl_username=; smtp_sender_dependent_authentication picks the sender's account. Then
Postfix C -> Postern B and Postern A -> Postfix C with TLS on both ways: the client's and
the server's TLS lines name the same protocol and cipher, and the queue IDs agree."""
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from dovecotfixture import DovecotAuth, auth_available
from mailsystem import wait_for
from netns import NET, PosternHost, a
from netns import hosts, network  # noqa: F401 (the fixtures)
from tlsfixture import make_certs

NETNS_RECORDS = [a("smarthost.c.test", f"{NET}.30")]
A_ADDR, B_ADDR, C_ADDR = (re.escape(f"{NET}.{n}") for n in (10, 20, 30))
RELAY = rf"smarthost\.c\.test\[{C_ADDR}\]:587"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}
TLS_LINE = r"TLS connection established (?:to|from) {}: (TLSv[\d.]+) with cipher (\S+ \(\d+/\d+ bits\))"


@pytest.fixture(scope="module")
def shared(network):
    """Certificates and Dovecot's auth service (root namespace; Postfix on C reaches its
    UNIX socket through the file system) for the whole module."""
    why = auth_available()
    if why:
        pytest.skip(why)
    certs_dir = tempfile.mkdtemp(prefix="postern-smarthost-certs-", dir="/var/tmp")
    os.chmod(certs_dir, 0o755)
    dovecot = DovecotAuth(USERS).start()

    class Shared:
        certs = make_certs(certs_dir)
        auth = dovecot
    yield Shared
    dovecot.cleanup()
    shutil.rmtree(certs_dir, ignore_errors=True)


def smarthost_on_c(hosts, network, shared):
    """Debian's Postfix on C: port 25 as usual, port 587 a submission service that wants
    STARTTLS, then AUTH, then relays (defer_unauth_destination otherwise, Postfix's default)."""
    certs = shared.certs
    main_cf = (f"smtpd_tls_cert_file = {certs.server_cert}\n"
               f"smtpd_tls_key_file = {certs.server_key}\n"
               "smtpd_tls_loglevel = 1\n"
               "smtp_tls_security_level = may\nsmtp_tls_loglevel = 1\n"
               f"smtpd_sasl_type = dovecot\nsmtpd_sasl_path = {shared.auth.socket}\n")
    submission = (f"{NET}.30:587 inet n - n - - smtpd\n"
                  "  -o smtpd_tls_security_level=encrypt\n"
                  "  -o smtpd_sasl_auth_enable=yes\n"
                  "  -o smtpd_tls_auth_only=yes\n"
                  "  -o smtpd_relay_restrictions=permit_sasl_authenticated,defer_unauth_destination\n")
    return hosts.postfix(network.c, main_cf=main_cf, master_cf_extra=submission)


def maildir_b(hosts, network):
    """Postern on B, delivering to Maildirs (mail_spool_directory ending in '/')."""
    return hosts.postern(network.b, main_cf="mail_spool_directory = $queue_directory/../maildir/\n")


def maildir_has(pb, subject, timeout=90):
    new = Path(pb.root) / "maildir" / pb.user / "new"

    def found():
        return any(f"Subject: {subject}\n" in p.read_text(errors="replace")
                   for p in new.glob("*")) if new.is_dir() else False
    return wait_for(found, timeout)


def password_map(instance, lines):
    """A hash: table made with Postern's postmap in the instance's directory."""
    source = Path(instance.root) / "sasl_passwd"
    source.write_text("".join(f"{k} {v}\n" for k, v in lines.items()))
    r = instance.command("postmap", f"hash:{source}")
    assert r.returncode == 0, r.stderr
    os.chmod(f"{source}.db", 0o644)
    return f"hash:{source}"


CLIENT_CF = ("relayhost = [smarthost.c.test]:587\n"
             "smtp_tls_security_level = encrypt\nsmtp_tls_loglevel = 1\n"
             "smtp_sasl_auth_enable = yes\n")


def message(subject, sender):
    return f"From: {sender}\nTo: x\nSubject: {subject}\n\nbody of {subject}\n"


def send(client, sender, rcpt, subject):
    r = client.sendmail(["-f", sender, rcpt], message(subject, sender))
    assert r.returncode == 0, r.stderr


def outcome(client, rcpt):
    """(dsn, status, reason) of the first delivery attempt of rcpt."""
    m = client.wait_log_re(rf"to=<{re.escape(rcpt)}>, relay=\S+, .*dsn=(\d\.\d+\.\d+), "
                           r"status=(deferred|bounced) \((.*)\)$", timeout=90)
    return m.groups()


def postern_and_postfix_outcomes(network, hosts, extra_cf, passwords, subject):
    """Postern on A, then Debian's Postfix on A, each sending one message through C with
    the same settings; both outcomes as (dsn, status, reason, AUTH-list warning)."""
    results = []
    for kind in ("postern", "postfix"):
        client = getattr(hosts, kind)(network.a, main_cf=CLIENT_CF + extra_cf)
        maps = password_map_for(client, passwords)
        reconfigure(client, kind, f"smtp_sasl_password_maps = {maps}\n")
        send(client, "alice@a.test", "bob@b.test", f"{subject} via {kind}")
        result = outcome(client, "bob@b.test")
        warning = re.search(r"warning: (.* offered no supported AUTH mechanisms: .*)$", client.log(), re.M)
        results.append((*result, warning and warning.group(1)))
        client.stop()
    return results


def password_map_for(client, passwords):
    if isinstance(client, PosternHost):
        return password_map(client, passwords)
    source = Path(client.peer.root) / "sasl_passwd"
    source.write_text("".join(f"{k} {v}\n" for k, v in passwords.items()))
    r = client.host.run(["/usr/sbin/postmap", "-c", client.peer.etc, f"hash:{source}"])
    assert r.returncode == 0, r.stderr
    return f"hash:{source}"


def reconfigure(client, kind, text):
    """Adds main.cf lines to a started client; the smtp process starts at the first
    delivery and reads them then."""
    cf = (Path(client.conf) if kind == "postern" else Path(client.peer.etc)) / "main.cf"
    cf.write_text(cf.read_text() + text)


@pytest.mark.parametrize("case", ["no credentials", "wrong password", "no mechanism left",
                                  "wrong password, no soft bounce", "filter leaves nothing"])
def test_smarthost_failures_match_debian_postfix(network, hosts, shared, case):
    smarthost_on_c(hosts, network, shared)
    passwords, extra = {
        "no credentials": ({"[elsewhere.test]:587": "alice:alice-secret"}, ""),
        "wrong password": ({"[smarthost.c.test]:587": "alice:wrong"}, ""),
        "wrong password, no soft bounce": ({"[smarthost.c.test]:587": "alice:wrong"},
                                           "smtp_sasl_auth_soft_bounce = no\n"),
        # PLAIN and LOGIN only, and the default noplaintext: the Cyrus client of Postfix
        # finds no mechanism, and so does Postern.
        "no mechanism left": ({"[smarthost.c.test]:587": "alice:alice-secret"},
                              "smtp_sasl_mechanism_filter = plain, login\n"),
        "filter leaves nothing": ({"[smarthost.c.test]:587": "alice:alice-secret"},
                                  "smtp_sasl_mechanism_filter = gssapi\n"),
    }[case]
    postern_outcome, postfix_outcome = postern_and_postfix_outcomes(network, hosts, extra, passwords, case)
    assert postern_outcome == postfix_outcome
    dsn, status, postern_reason, warning = postern_outcome
    assert bool(warning) == (case == "filter leaves nothing"), warning
    assert (dsn[0], status) == (("5", "bounced") if "no soft bounce" in case else ("4", "deferred"))
    expected = {
        "no credentials": rf"host smarthost\.c\.test\[{C_ADDR}\] said: 454 4\.7\.1 <bob@b\.test>: "
                          r"Relay access denied \(in reply to RCPT TO command\)",
        "wrong password": rf"SASL authentication failed; server smarthost\.c\.test\[{C_ADDR}\] "
                          r"said: 535 5\.7\.8 Error: authentication failed",
        "wrong password, no soft bounce": r"SASL authentication failed; server smarthost\.c\.test",
        "filter leaves nothing": rf"SASL authentication failed: server smarthost\.c\.test\[{C_ADDR}\] "
                                 r"offered no compatible authentication mechanisms",
        "no mechanism left": r"SASL authentication failed; cannot authenticate to server "
                             rf"smarthost\.c\.test\[{C_ADDR}\]: no mechanism available",
    }[case]
    assert re.match(expected, postern_reason), postern_reason


def tls_session(log, peer):
    m = re.search(TLS_LINE.format(peer), log, re.M)
    assert m, f"no TLS line for {peer}:\n{log}"
    return m.group(1), m.group(2)


def test_relay_through_the_smarthost_with_tls_and_auth(network, hosts, shared):
    pc = smarthost_on_c(hosts, network, shared)
    pb = maildir_b(hosts, network)
    pa = hosts.postern(network.a, main_cf=CLIENT_CF)
    maps = password_map(pa, {"[smarthost.c.test]:587": "alice:alice-secret"})
    reconfigure(pa, "postern", f"smtp_sasl_password_maps = {maps}\n")
    rcpt = f"{pb.user}@b.test"
    send(pa, f"{pa.user}@a.test", rcpt, "through the smart host")
    sent = pa.wait_log_re(rf"to=<{re.escape(rcpt)}>, relay={RELAY}, .*status=sent "
                          r"\(250 2\.0\.0 Ok: queued as (\w+)\)", timeout=90)
    qid_c = sent.group(1)
    assert maildir_has(pb, "through the smart host"), pb.log() + pc.log() + pa.log()
    # C saw TLS, then AUTH: CRAM-MD5 under Postfix's default noplaintext, as Debian's
    # Postfix (Cyrus) would choose.
    pc.wait_log_re(rf"{qid_c}: client=mx\.a\.test\[{A_ADDR}\], sasl_method=CRAM-MD5, "
                   r"sasl_username=alice$")
    assert tls_session(pa.log(), RELAY) == tls_session(pc.log(), rf"mx\.a\.test\[{A_ADDR}\]")
    # C relayed to B by MX; B logs C as the client of the queue ID C named.
    relayed = pc.wait_log_re(rf"{qid_c}: to=<{re.escape(rcpt)}>, relay=mx\.b\.test\[{B_ADDR}\]:25,"
                             r".*status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)")
    qid_b = relayed.group(1)
    assert re.search(rf"{qid_b}: client=mx\.c\.test\[{C_ADDR}\]", pb.log()), pb.log()


@pytest.mark.parametrize("mech_filter, method", [("!cram-md5, static:rest", "PLAIN"), ("login", "LOGIN")])
def test_mechanism_filter_and_tls_security_options(network, hosts, shared, mech_filter, method):
    """Dovecot offers PLAIN LOGIN CRAM-MD5; without CRAM-MD5 the first plaintext one of the
    server's list is taken, which smtp_sasl_tls_security_options (no noplaintext) allows."""
    pc = smarthost_on_c(hosts, network, shared)
    pb = maildir_b(hosts, network)
    pa = hosts.postern(network.a, main_cf=CLIENT_CF + f"smtp_sasl_mechanism_filter = {mech_filter}\n"
                       "smtp_sasl_tls_security_options = noanonymous\n")
    maps = password_map(pa, {"[smarthost.c.test]:587": "bob:bob-secret"})
    reconfigure(pa, "postern", f"smtp_sasl_password_maps = {maps}\n")
    send(pa, f"{pa.user}@a.test", f"{pb.user}@b.test", f"{method} over tls")
    sent = pa.wait_log_re(rf"relay={RELAY}, .*status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)", timeout=90)
    pc.wait_log_re(rf"{sent.group(1)}: client=mx\.a\.test\[{A_ADDR}\], sasl_method={method}, "
                   r"sasl_username=bob$")
    assert maildir_has(pb, f"{method} over tls"), pb.log()


def server_fingerprint(certs):
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", certs.server_cert],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().split("=", 1)[1]


def test_a_matched_certificate_applies_the_verified_security_options(network, hosts, shared):
    """smtp_tls_security_level = fingerprint matches C's certificate, so
    smtp_sasl_tls_verified_security_options (noanonymous) applies and PLAIN may go, where
    smtp_sasl_tls_security_options (the default noplaintext) would leave no mechanism."""
    pc = smarthost_on_c(hosts, network, shared)
    pb = maildir_b(hosts, network)
    pa = hosts.postern(network.a, main_cf=CLIENT_CF.replace("encrypt", "fingerprint") +
                       f"smtp_tls_fingerprint_cert_match = {server_fingerprint(shared.certs)}\n"
                       "smtp_sasl_mechanism_filter = plain\n"
                       "smtp_sasl_tls_verified_security_options = noanonymous\n")
    maps = password_map(pa, {"[smarthost.c.test]:587": "bob:bob-secret"})
    reconfigure(pa, "postern", f"smtp_sasl_password_maps = {maps}\n")
    send(pa, f"{pa.user}@a.test", f"{pb.user}@b.test", "verified plain")
    sent = pa.wait_log_re(rf"relay={RELAY}, .*status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)", timeout=90)
    assert re.search(rf"Verified TLS connection established to {RELAY}", pa.log()), pa.log()
    pc.wait_log_re(rf"{sent.group(1)}: client=mx\.a\.test\[{A_ADDR}\], sasl_method=PLAIN, sasl_username=bob$")
    assert maildir_has(pb, "verified plain"), pb.log()


def test_sender_dependent_credentials_choose_the_account(network, hosts, shared):
    pc = smarthost_on_c(hosts, network, shared)
    pb = maildir_b(hosts, network)
    pa = hosts.postern(network.a, main_cf=CLIENT_CF + "smtp_sender_dependent_authentication = yes\n")
    maps = password_map(pa, {"alice@a.test": "alice:alice-secret",
                             "@a.test": "bob:bob-secret",
                             "[smarthost.c.test]:587": "alice:wrong"})
    reconfigure(pa, "postern", f"smtp_sasl_password_maps = {maps}\n")
    rcpt = f"{pb.user}@b.test"
    for sender in ("alice@a.test", "carol@a.test"):
        send(pa, sender, rcpt, f"sent by {sender}")
    for sender, account in (("alice@a.test", "alice"), ("carol@a.test", "bob")):
        pa_line = pa.wait_log_re(rf"^.*: from=<{re.escape(sender)}>", timeout=60).group(0)
        qid_a = re.search(r"(\w+): from=<", pa_line).group(1)
        sent = pa.wait_log_re(rf"{qid_a}: to=<{re.escape(rcpt)}>, relay={RELAY}, .*status=sent "
                              r"\(250 2\.0\.0 Ok: queued as (\w+)\)", timeout=90)
        qid_c = sent.group(1)
        pc.wait_log_re(rf"{qid_c}: client=mx\.a\.test\[{A_ADDR}\], sasl_method=CRAM-MD5, "
                       rf"sasl_username={account}$")
        pc.wait_log_re(rf"{qid_c}: from=<{re.escape(sender)}>")
        assert maildir_has(pb, f"sent by {sender}"), pb.log()


def test_tls_both_ways_postfix_c_to_postern_b_and_postern_a_to_postfix_c(network, hosts, shared):
    certs = shared.certs
    pc = hosts.postfix(network.c, main_cf=(
        "smtpd_tls_security_level = may\n"
        f"smtpd_tls_cert_file = {certs.server_cert}\nsmtpd_tls_key_file = {certs.server_key}\n"
        "smtpd_tls_loglevel = 1\nsmtp_tls_security_level = may\nsmtp_tls_loglevel = 1\n"))
    pb = hosts.postern(network.b, main_cf=(
        "smtpd_tls_security_level = may\n"
        f"smtpd_tls_cert_file = {certs.server_cert}\nsmtpd_tls_key_file = {certs.server_key}\n"
        "smtpd_tls_loglevel = 1\n"))
    pa = hosts.postern(network.a, main_cf="smtp_tls_security_level = may\nsmtp_tls_loglevel = 1\n")
    # Debian's Postfix on C to Postern on B.
    to_b = f"{pb.user}@b.test"
    r = pc.sendmail(["-f", "carol@c.test", to_b], message("tls c to b", "carol@c.test"))
    assert r.returncode == 0, r.stderr
    sent = pc.wait_log_re(rf"(\w+): to=<{re.escape(to_b)}>, relay=mx\.b\.test\[{B_ADDR}\]:25,"
                          r".*status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)")
    qid_c, qid_b = sent.group(1), sent.group(2)
    pb.wait_log_re(rf"{qid_b}: to=<{re.escape(to_b)}>, relay=local,.*status=sent")
    assert re.search(rf"{qid_b}: client=mx\.c\.test\[{C_ADDR}\]", pb.log()), pb.log()
    assert re.search(rf"{qid_c}: from=<carol@c\.test>", pc.log()), pc.log()
    client_side = tls_session(pc.log(), rf"mx\.b\.test\[{B_ADDR}\]:25")
    assert client_side == tls_session(pb.log(), rf"mx\.c\.test\[{C_ADDR}\]")
    assert client_side[0] in ("TLSv1.2", "TLSv1.3"), client_side
    # Postern on A to Debian's Postfix on C.
    sender, to_c = f"{pa.user}@a.test", "nobody@c.test"
    r = pa.sendmail(["-f", sender, to_c], message("tls a to c", sender))
    assert r.returncode == 0, r.stderr
    sent = pa.wait_log_re(rf"(\w+): to=<{re.escape(to_c)}>, relay=mx\.c\.test\[{C_ADDR}\]:25,"
                          r".*status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)", timeout=90)
    qid_a, qid_c = sent.group(1), sent.group(2)
    pc.wait_log_re(rf"{qid_c}: to=<{re.escape(to_c)}>, relay=local,.*status=sent")
    assert re.search(rf"{qid_c}: client=mx\.a\.test\[{A_ADDR}\]", pc.log()), pc.log()
    assert re.search(rf"{qid_a}: from=<{re.escape(sender)}>", pa.log()), pa.log()
    assert tls_session(pa.log(), rf"mx\.c\.test\[{C_ADDR}\]:25") == \
        tls_session(pc.log(), rf"mx\.a\.test\[{A_ADDR}\]")
    # The Received: headers say TLS too (Postfix's "using TLSv1.3 with cipher ...").
    assert re.search(rf"with ESMTPS id {qid_b}", pb.mbox()), pb.mbox()
    assert wait_for(lambda: "Subject: tls a to c" in pc.mbox("nobody"), 60), pc.log()
    assert re.search(rf"with ESMTPS id {qid_c}", pc.mbox("nobody")), pc.mbox("nobody")
