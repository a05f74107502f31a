"""smtp(8) and lmtp(8): Postern relaying to real servers -- Postfix's smtp-sink (accepting,
or refusing chosen commands with 4xx/5xx), a second Postern instance, Debian's Postfix --
with Postfix's log lines and reasons, deferrals visible in mailq and bounces returned to
the sender. The same refusals are sent through Debian's Postfix smtp client, and the
reasons both log are compared."""
import re

import pytest

import dnsfixture
import dovecotfixture
import postfixpeer
import saslfixture
import smtpsink
import tlsfixture
from mailsystem import MailInstance, free_port, smtpd_service, wait_for

pytestmark = pytest.mark.skipif(not smtpsink.available(), reason="smtp-sink (Debian postfix) not installed")

AGENTS = "smtp unix - - n - - smtp\nrelay unix - - n - - smtp\nlmtp unix - - n - - lmtp\n"

# domain -> smtp-sink options
SINKS = {
    "ok.test": (),
    "rcpt5.test": ("-f", "RCPT"),
    "rcpt4.test": ("-r", "RCPT"),
    "data5.test": ("-f", "."),
    "mail4.test": ("-r", "MAIL"),
    "nopipe.test": ("-p",),           # no PIPELINING: one command at a time
    "dropdot.test": ("-q", "."),      # drops the connection after the final dot
    "slowdata.test": ("-p", "-w", "20"),  # waits 20 s before answering DATA
}
# smtp_data_init_timeout for the slow server, in both Postern and the Postfix peer
TIMEOUTS = "smtp_data_init_timeout = 2s\n"


def bound_route(sinks):  # a transport whose connections come from 127.0.0.2 (smtp_bind_address)
    return [f"bound.test=bound:[127.0.0.1]:{sinks['ok.test'].port}"]


@pytest.fixture(scope="module")
def sinks():
    made = {d: smtpsink.SmtpSink(*opts) for d, opts in SINKS.items()}
    yield made
    for s in made.values():
        s.stop()


@pytest.fixture(scope="module")
def refused_port():
    return free_port()  # nothing listens there


def transport_map(sinks, refused_port, extra=()):
    pairs = [f"{d}=smtp:[127.0.0.1]:{s.port}" for d, s in sinks.items()]
    pairs.append(f"refused.test=smtp:[127.0.0.1]:{refused_port}")
    pairs += extra
    return "inline:{" + ", ".join("{%s}" % p for p in pairs) + "}"


@pytest.fixture(scope="module")
def inst(tmp_path_factory, sinks, refused_port):
    m = MailInstance(tmp_path_factory.mktemp("smtpc"),
                     main_cf=f"transport_maps = {transport_map(sinks, refused_port, bound_route(sinks))}\n"
                             "smtp_connect_timeout = 10s\n" + TIMEOUTS,
                     master_cf=AGENTS + "bound unix - - n - - smtp\n  -o smtp_bind_address=127.0.0.2\n")
    m.start()
    yield m
    m.stop()


def send(inst, rcpt, subject, body="hello there\n", sender=None):
    sender = sender or f"{inst.user}@localhost"
    msg = f"From: {sender}\nTo: {rcpt}\nSubject: {subject}\n\n{body}"
    p = inst.sendmail(["-f", sender, rcpt], msg)
    assert p.returncode == 0, p.stderr
    return subject


def delivery_line(inst, rcpt, status):
    return inst.wait_log_re(r"^.*: (\w+): to=<%s>, relay=(\S+), delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, "
                            r"dsn=(\d\.\d+\.\d+), status=%s \((.*)\)$" % (re.escape(rcpt), status), timeout=90)


def test_relays_to_smtp_sink_with_postfix_log_line(inst, sinks):
    body = "first line\n.leading dot survives\n..two dots\nlast\n"
    send(inst, "alice@ok.test", "relay-ok", body)
    m = delivery_line(inst, "alice@ok.test", "sent")
    assert m.group(2) == f"127.0.0.1[127.0.0.1]:{sinks['ok.test'].port}"
    assert m.group(3) == "2.0.0"
    assert m.group(4) == "250 2.0.0 Ok"  # smtp-sink's reply to the final dot
    got = sinks["ok.test"].wait_message("Subject: relay-ok")
    # dot-stuffing undone by the server: the content arrives as written
    assert "\n.leading dot survives\n..two dots\nlast\n" in got.replace("\r\n", "\n")
    inst.wait_log_re(r": %s: removed$" % m.group(1))


def test_dsn_parameters_pass_through(inst, sinks):
    sender = f"{inst.user}@localhost"
    p = inst.sendmail(["-f", sender, "-N", "success,delay", "-V", "env+id=1", "-R", "hdrs", "dsn@ok.test"],
                      "Subject: dsn-pass\n\nx\n")
    assert p.returncode == 0, p.stderr
    delivery_line(inst, "dsn@ok.test", "sent")
    got = sinks["ok.test"].wait_message("Subject: dsn-pass")
    mail_args = re.search(r"^X-Mail-Args: (.*)$", got, re.M).group(1)
    assert "RET=HDRS" in mail_args and "ENVID=env+2Bid+3D1" in mail_args, mail_args
    rcpt_args = re.search(r"^X-Rcpt-Args: (.*)$", got, re.M).group(1)
    assert "NOTIFY=SUCCESS,DELAY" in rcpt_args and "ORCPT=rfc822;dsn@ok.test" in rcpt_args, rcpt_args


def test_smtp_bind_address(inst, sinks):
    send(inst, "b@bound.test", "bound-source")
    delivery_line(inst, "b@bound.test", "sent")
    got = sinks["ok.test"].wait_message("Subject: bound-source")
    assert "X-Client-Addr: 127.0.0.2" in got, got


def test_several_recipients_in_one_transaction(inst, sinks):
    send(inst, "a1@ok.test", "two-rcpt")
    p = inst.sendmail(["-f", f"{inst.user}@localhost", "b1@ok.test", "b2@ok.test"],
                      "Subject: two-rcpt-b\n\nx\n")
    assert p.returncode == 0
    delivery_line(inst, "b1@ok.test", "sent")
    delivery_line(inst, "b2@ok.test", "sent")
    got = sinks["ok.test"].wait_message("Subject: two-rcpt-b")
    assert got.count("X-Rcpt-Args:") == 2 or ("b1@ok.test" in got and "b2@ok.test" in got)


def test_rcpt_5xx_bounces_with_remote_reply(inst):
    send(inst, "nobody@rcpt5.test", "rcpt5")
    m = delivery_line(inst, "nobody@rcpt5.test", "bounced")
    assert m.group(3) == "5.3.0"
    assert m.group(4) == "host 127.0.0.1[127.0.0.1] said: 500 5.3.0 Error: command failed " \
                         "(in reply to RCPT TO command)"
    # the non-delivery notice reaches the (local) sender with the remote reply in it
    assert wait_for(lambda: "nobody@rcpt5.test" in inst.mbox() and "500 5.3.0" in inst.mbox(), 60), inst.mbox()


def test_rcpt_4xx_defers_and_mailq_shows_the_reply(inst):
    send(inst, "later@rcpt4.test", "rcpt4")
    m = delivery_line(inst, "later@rcpt4.test", "deferred")
    assert m.group(3) == "4.3.0"
    reason = "host 127.0.0.1[127.0.0.1] said: 450 4.3.0 Error: command failed (in reply to RCPT TO command)"
    assert m.group(4) == reason
    assert wait_for(lambda: "(host 127.0.0.1[127.0.0.1] said: 450 4.3.0" in inst.command("postqueue", "-p").stdout, 30)


def test_relays_without_pipelining(inst, sinks):
    p = inst.sendmail(["-f", f"{inst.user}@localhost", "n1@nopipe.test", "n2@nopipe.test"],
                      "Subject: nopipe\n\n.\n")
    assert p.returncode == 0
    delivery_line(inst, "n1@nopipe.test", "sent")
    delivery_line(inst, "n2@nopipe.test", "sent")
    sinks["nopipe.test"].wait_message("Subject: nopipe")


def test_data_5xx_bounces(inst):
    send(inst, "x@data5.test", "data5")
    m = delivery_line(inst, "x@data5.test", "bounced")
    assert m.group(4) == "host 127.0.0.1[127.0.0.1] said: 500 5.3.0 Error: command failed " \
                         "(in reply to end of DATA command)"


def test_mail_4xx_defers(inst):
    send(inst, "y@mail4.test", "mail4")
    m = delivery_line(inst, "y@mail4.test", "deferred")
    assert m.group(4).endswith("(in reply to MAIL FROM command)")


def test_connection_lost_after_the_dot_defers(inst):
    send(inst, "q@dropdot.test", "dropdot")
    m = delivery_line(inst, "q@dropdot.test", "deferred")
    assert (m.group(3), m.group(4)) == ("4.4.2", "lost connection with 127.0.0.1[127.0.0.1] while sending end of "
                                                 "data -- message may be sent more than once")


def test_slow_server_times_out(inst):
    send(inst, "s@slowdata.test", "slowdata")
    m = delivery_line(inst, "s@slowdata.test", "deferred")
    assert (m.group(3), m.group(4)) == ("4.4.2", "conversation with 127.0.0.1[127.0.0.1] timed out while "
                                                 "sending DATA command")


def test_connection_refused_defers_with_postfix_reason(inst, refused_port):
    send(inst, "z@refused.test", "refused")
    m = delivery_line(inst, "z@refused.test", "deferred")
    reason = f"connect to 127.0.0.1[127.0.0.1]:{refused_port}: Connection refused"
    assert (m.group(2), m.group(3), m.group(4)) == ("none", "4.4.1", reason)
    assert re.search(r"\w+/smtp\[\d+\]: " + re.escape(reason) + "$", inst.log(), re.M)
    assert wait_for(lambda: f"({reason})" in inst.command("postqueue", "-p").stdout, 30)


# ---- Postern to Postern ----------------------------------------------------------------

def receiver_instance(root, port, main_cf=""):
    """A second Postern whose smtpd on 127.0.0.1:port takes mail for dest.example.test."""
    return MailInstance(root, main_cf="mydestination = $myhostname, localhost, dest.example.test\n"
                                      "myhostname = b.example.test\n" + main_cf,
                        master_cf=smtpd_service(port))


def send_across(sender, receiver, subject, body="x\n"):
    """Mail from `sender` to the receiver's user; returns the sender's delivery record."""
    rcpt = f"{receiver.user}@dest.example.test"
    p = sender.sendmail(["-f", "someone@example.test", rcpt], f"Subject: {subject}\n\n{body}")
    assert p.returncode == 0, p.stderr
    m = delivery_line(sender, rcpt, "sent")
    assert wait_for(lambda: f"Subject: {subject}" in receiver.mbox(), 60), receiver.log()
    return m


def test_relays_to_a_second_postern_instance(tmp_path):
    port = free_port()
    receiver = receiver_instance(tmp_path / "b", port, "message_size_limit = 4000\n")
    sender = MailInstance(tmp_path / "a", main_cf=f"relayhost = [127.0.0.1]:{port}\n", master_cf=AGENTS)
    receiver.start()
    sender.start()
    try:
        m = send_across(sender, receiver, "postern-to-postern", "across\n")
        assert m.group(2) == f"127.0.0.1[127.0.0.1]:{port}"
        assert m.group(4).startswith("250 2.0.0 Ok: queued as ")
        # the session ends with QUIT, as Postfix's client ends it
        receiver.wait_log_re(r"disconnect from \S+\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5$")
        # too big for the server's SIZE: bounced without being sent
        big = f"{receiver.user}@dest.example.test"
        p = sender.sendmail(["-f", f"{sender.user}@localhost", big], "Subject: too-big\n\n" + "x" * 70 + ("\n" + "y" * 70) * 80)
        assert p.returncode == 0
        m = delivery_line(sender, big, "bounced")
        assert m.group(3) == "5.3.4"
        assert re.fullmatch(r"message size \d+ exceeds size limit 4000 of server 127\.0\.0\.1\[127\.0\.0\.1\]",
                            m.group(4)), m.group(4)
        assert "too-big" not in receiver.mbox()
        assert "across" in receiver.mbox()
    finally:
        sender.stop()
        receiver.stop()


# ---- differential: the same refusals through Debian's Postfix ---------------------------

def reasons(log, rcpts):
    out = {}
    for r in rcpts:
        m = re.search(r"to=<%s>, relay=(\S+), .*dsn=(\S+), status=(\w+) \((.*)\)$" % re.escape(r), log, re.M)
        out[r] = m.groups() if m else None
    return out


@pytest.mark.skipif(bool(postfixpeer.available()), reason=postfixpeer.available() or "n/a")
def test_reasons_match_debian_postfix(inst, sinks, refused_port):
    rcpts = ["d1@ok.test", "d2@rcpt5.test", "d3@rcpt4.test", "d4@data5.test", "d5@refused.test",
             "d6@dropdot.test", "d7@slowdata.test", "d8@mail4.test"]
    peer = postfixpeer.PostfixPeer(main_cf=f"transport_maps = {transport_map(sinks, refused_port)}\n" + TIMEOUTS,
                                   name="smtpc")
    try:
        peer.start()
        for r in rcpts:
            assert peer.sendmail(["-f", "diff@example.test", r], f"Subject: diff {r}\n\nx\n").returncode == 0
            assert inst.sendmail(["-f", f"{inst.user}@localhost", r], f"Subject: diff {r}\n\nx\n").returncode == 0
        for r in rcpts:
            assert wait_for(lambda: reasons(peer.log(), [r])[r] is not None, 90), peer.log()
            delivery_line(inst, r, r"\w+")
        theirs, ours = reasons(peer.log(), rcpts), reasons(inst.log(), rcpts)
        for r in rcpts:
            t, o = list(theirs[r]), list(ours[r])
            # queue IDs differ
            t[3] = re.sub(r"queued as \w+", "queued as X", t[3])
            o[3] = re.sub(r"queued as \w+", "queued as X", o[3])
            assert o == t, (r, o, t)
    finally:
        peer.cleanup()


# ---- LMTP to Dovecot ---------------------------------------------------------------------

@pytest.mark.skipif(bool(dovecotfixture.available()), reason=dovecotfixture.available() or "n/a")
def test_lmtp_to_dovecot_per_recipient_replies(tmp_path):
    dv = dovecotfixture.DovecotLmtp(users={"alice": None, "carol": None, "bob": "10B"})
    inst = MailInstance(tmp_path / "l", main_cf="transport_maps = inline:{{dove.test=lmtp:unix:%s}}\n" % dv.socket,
                        master_cf=AGENTS)
    inst.start()
    try:
        sender = f"{inst.user}@localhost"
        body = "From: %s\nSubject: lmtp-to-dovecot\n\nfirst\n.dotted line\nthe body is longer than ten bytes\n" % sender
        p = inst.sendmail(["-f", sender, "alice@dove.test", "bob@dove.test", "carol@dove.test"], body)
        assert p.returncode == 0, p.stderr
        relay = f"host.example.test[{dv.socket}]"
        for user in ("alice", "carol"):
            m = delivery_line(inst, f"{user}@dove.test", "sent")
            assert m.group(2) == relay
            assert m.group(3) == "2.0.0"
            assert re.fullmatch(r"250 2\.0\.0 <%s@dove\.test> \S+ Saved" % user, m.group(4)), m.group(4)
        # bob's quota fails after DATA: only bob bounces
        m = delivery_line(inst, "bob@dove.test", "bounced")
        assert m.group(3) == "5.2.2"
        assert m.group(4) == (f"host {relay} said: 552 5.2.2 <bob@dove.test> Quota exceeded (mailbox for user "
                              "is full) (in reply to end of DATA command)")
        dv.wait_maildir("alice", "Subject: lmtp-to-dovecot")
        dv.wait_maildir("carol", "Subject: lmtp-to-dovecot")
        got = dv.maildir("alice")[0]
        assert "\n.dotted line\n" in got.replace("\r\n", "\n")
        assert dv.maildir("bob") == []
        assert wait_for(lambda: "Quota exceeded" in inst.mbox(), 60), inst.mbox()
    finally:
        inst.stop()
        dv.stop()


# ---- MX routing through a test DNS server -------------------------------------------------

MX_RECORDS = [
    "mx-host=two.test,mx1.two.test,10", "mx-host=two.test,mx2.two.test,20",
    "host-record=mx1.two.test,127.0.0.21", "host-record=mx2.two.test,127.0.0.22",
    "host-record=amx.test,127.0.0.22",  # no MX: its own address
    "mx-host=nullmx.test,.,0",
]


@pytest.mark.skipif(bool(dnsfixture.available()), reason=dnsfixture.available() or "n/a")
def test_mx_fallback_null_mx_and_no_mx(tmp_path):
    port = free_port()
    primary = smtpsink.SmtpSink("-r", "CONNECT", host="127.0.0.21", port=port)
    secondary = smtpsink.SmtpSink(host="127.0.0.22", port=port)
    (tmp_path / "dns").mkdir()
    dns = dnsfixture.DnsFixture(MX_RECORDS, root=tmp_path / "dns").start()
    routes = ", ".join("{%s=smtp:%s:%d}" % (d, d, port) for d in ("two.test", "amx.test", "nullmx.test", "nosuch.test"))
    inst = MailInstance(tmp_path / "mx", main_cf=f"transport_maps = inline:{{{routes}}}\n", master_cf=AGENTS)
    inst.start(preexec_fn=dns.preexec)
    try:
        send(inst, "u@two.test", "mx-fallback")
        m = delivery_line(inst, "u@two.test", "sent")
        assert m.group(2) == f"mx2.two.test[127.0.0.22]:{port}"
        assert re.search(r"smtp\[\d+\]: %s: host mx1\.two\.test\[127\.0\.0\.21\] refused to talk to me: "
                         r"450 4\.3\.0 Error: command failed$" % m.group(1), inst.log(), re.M), inst.log()
        secondary.wait_message("Subject: mx-fallback")
        assert not any("mx-fallback" in x for x in primary.messages())
        send(inst, "v@amx.test", "a-record")
        m = delivery_line(inst, "v@amx.test", "sent")
        assert m.group(2) == f"amx.test[127.0.0.22]:{port}"
        send(inst, "w@nullmx.test", "null-mx")
        m = delivery_line(inst, "w@nullmx.test", "bounced")
        assert (m.group(2), m.group(3), m.group(4)) == ("none", "5.1.10", "Domain nullmx.test does not accept mail (nullMX)")
        send(inst, "x@nosuch.test", "nxdomain")
        m = delivery_line(inst, "x@nosuch.test", "bounced")
        assert (m.group(3), m.group(4)) == ("5.4.4", "Host or domain name not found. Name service error for "
                                                     "name=nosuch.test type=MX: Host not found")
    finally:
        inst.stop()
        dns.stop()
        primary.stop()
        secondary.stop()


# ---- STARTTLS ----------------------------------------------------------------------------

def test_starttls_to_a_second_postern_and_encrypt_without_starttls(tmp_path, sinks):
    certs = tlsfixture.make_certs(tmp_path / "certs")
    port = free_port()
    receiver = receiver_instance(tmp_path / "b", port, "smtpd_tls_security_level = may\n"
                                                       f"smtpd_tls_cert_file = {certs.server_cert}\n"
                                                       f"smtpd_tls_key_file = {certs.server_key}\n"
                                                       "smtpd_tls_received_header = yes\n")
    ok_port = sinks["ok.test"].port
    sender = MailInstance(tmp_path / "a", main_cf=f"relayhost = [127.0.0.1]:{port}\n"
                                                  "smtp_tls_security_level = may\nsmtp_tls_loglevel = 1\n"
                                                  f"smtp_tls_CAfile = {certs.ca_cert}\n"
                                                  f"transport_maps = inline:{{{{notls.test=smtpenc:[127.0.0.1]:{ok_port}}}}}\n",
                          master_cf=AGENTS + "smtpenc unix - - n - - smtp\n  -o smtp_tls_security_level=encrypt\n")
    receiver.start()
    sender.start()
    try:
        m = send_across(sender, receiver, "over-tls", "secret\n")
        relay = f"127.0.0.1[127.0.0.1]:{port}"
        assert m.group(2) == relay
        assert re.search(r"smtp\[\d+\]: Trusted TLS connection established to %s: TLSv1\.[23] with cipher \S+ "
                         r"\(\d+/\d+ bits\)" % re.escape(relay), sender.log(), re.M), sender.log()
        assert re.search(r"\(using TLSv1\.[23] with cipher", receiver.mbox()), receiver.mbox()
        # encrypt: smtp-sink offers no STARTTLS, so the mail waits
        p = sender.sendmail(["-f", "someone@example.test", "t@notls.test"], "Subject: must-encrypt\n\nx\n")
        assert p.returncode == 0
        m = delivery_line(sender, "t@notls.test", "deferred")
        assert (m.group(3), m.group(4)) == ("4.7.4", "TLS is required, but was not offered by host "
                                                     "127.0.0.1[127.0.0.1]")
    finally:
        sender.stop()
        receiver.stop()


# ---- SASL client -------------------------------------------------------------------------

def test_sasl_auth_to_a_smarthost_that_requires_it(tmp_path):
    port = free_port()
    sasl_dir = saslfixture.make_sasl_dir(tmp_path / "sasl", {"test": "secret"}, realm="b.example.test")
    receiver = receiver_instance(tmp_path / "b", port, f"cyrus_sasl_config_path = {sasl_dir}\n"
                                                       "smtpd_sasl_auth_enable = yes\n"
                                                       "smtpd_recipient_restrictions = permit_sasl_authenticated, reject\n")
    passwords = tmp_path / "sasl_passwd"
    passwords.write_text(f"[127.0.0.1]:{port} test:secret\n[localhost]:{port} test:wrong\n")
    sender = MailInstance(tmp_path / "a", main_cf=f"relayhost = [127.0.0.1]:{port}\n"
                                                  "smtp_sasl_auth_enable = yes\n"
                                                  "smtp_sasl_security_options = noanonymous\n"
                                                  "inet_protocols = ipv4\n"
                                                  f"smtp_sasl_password_maps = texthash:{passwords}\n"
                                                  f"transport_maps = inline:{{{{badauth.test=smtp:[localhost]:{port}}}}}\n",
                          master_cf=AGENTS)
    receiver.start()
    sender.start()
    try:
        send_across(sender, receiver, "with-auth")
        # CRAM-MD5 before PLAIN, as the Cyrus client of Debian's Postfix chooses.
        receiver.wait_log_re(r"client=\S+\[127\.0\.0\.1\], sasl_method=CRAM-MD5, sasl_username=test$")
        # the wrong password: deferred with the server's reply (smtp_sasl_auth_soft_bounce)
        p = sender.sendmail(["-f", "someone@example.test", "x@badauth.test"], "Subject: bad-auth\n\nx\n")
        assert p.returncode == 0
        m = delivery_line(sender, "x@badauth.test", "deferred")
        assert m.group(4).startswith("SASL authentication failed; server localhost[127.0.0.1] said: 535 5.7.8 "), \
            m.group(4)
        assert m.group(3) == "4.7.8"
    finally:
        sender.stop()
        receiver.stop()
