"""smtpd(8) end to end: real clients (smtplib, raw pipelined sockets, swaks) against a
running instance, every accepted message checked in the mailbox, every refusal checked
by reply code and text (Postfix's), and the log lines Postfix writes (connect, client=,
lost connection, timeout, too many errors, disconnect with command counters).

One instance serves all tests; each special setting has its own smtpd service on its
own port (master.cf -o overrides), as an admin would configure submission or smtps."""
import re
import subprocess
import time

import pytest

from mailsystem import MailInstance, SmtpDialog, free_port, smtpd_service, wait_for

SERVICES = {
    "plain": {},
    "small": {"message_size_limit": "2000", "smtpd_recipient_limit": "1000"},
    "strict": {"smtpd_helo_required": "yes", "disable_vrfy_command": "yes",
               "strict_rfc821_envelopes": "yes"},
    "slow": {"smtpd_timeout": "2s"},
    "errors": {"smtpd_hard_error_limit": "3", "smtpd_soft_error_limit": "2",
               "smtpd_error_sleep_time": "1s"},
    "smuggle": {"smtpd_forbid_bare_newline": "normalize",
                "smtpd_forbid_bare_newline_exclusions": ""},
    "reject_lf": {"smtpd_forbid_bare_newline": "reject",
                  "smtpd_forbid_bare_newline_exclusions": ""},
    "lf_excluded": {"smtpd_forbid_bare_newline": "reject"},  # mynetworks is excluded
    "discard": {"smtpd_discard_ehlo_keywords": "chunking,silent-discard,dsn"},
    "eod_hold": {"smtpd_end_of_data_restrictions": "$t_eod_hold"},
    "nosleep": {"smtpd_error_sleep_time": "0", "smtpd_hard_error_limit": "100",
                "smtpd_peername_lookup": "no"},  # as the Postfix it is compared with
    # 100 connections: no PTR lookups, whose speed is the test host's DNS server's
    "bulk": {"smtpd_peername_lookup": "no"},
}


def client_names(text):
    """127.0.0.1 is "localhost" when the name lookup reads /etc/hosts (as Postfix's
    getnameinfo does), "unknown" without one; the tests say CLIENT for either."""
    return re.sub(r"\b(?:localhost|unknown)\[127\.0\.0\.1\]", "CLIENT", text)


class Instance(MailInstance):
    def log(self):
        return client_names(super().log())


class Smtpd:
    def __init__(self, inst, ports):
        self.inst, self.ports = inst, ports
        self.user = inst.user
        self.rcpt = f"{inst.user}@localhost"

    def mbox(self):
        path = self.inst.mail / self.inst.user
        return path.read_bytes() if path.exists() else b""

    def wait_mail(self, marker, count=1):
        marker = marker.encode() if isinstance(marker, str) else marker
        assert wait_for(lambda: self.mbox().count(marker) >= count, 20), self.inst.log()
        return self.mbox()

    def message_with(self, marker):
        """The mbox entry (bytes) that contains `marker`."""
        marker = marker.encode() if isinstance(marker, str) else marker
        for entry in re.split(rb"\n(?=From )", self.wait_mail(marker)):
            if marker in entry:
                return entry
        raise AssertionError(marker)


@pytest.fixture(scope="module")
def smtpd(tmp_path_factory):
    root = tmp_path_factory.mktemp("smtpd")
    ports = {name: free_port() for name in SERVICES}
    master_cf = "".join(smtpd_service(ports[n], o) for n, o in SERVICES.items())
    inst = Instance(root, master_cf=master_cf, main_cf=(
        "mynetworks = 127.0.0.0/8\n"
        # access(5) actions the session carries into the queue file, keyed by sender
        "smtpd_sender_restrictions = check_sender_access inline:{"
        "{prepend@example.org=PREPEND X-Tagged: by access map}, "
        "{hold@example.org=HOLD held by test}, {discard@example.org=DISCARD dropped by test}, "
        "{redirect@example.org=REDIRECT postmaster@localhost}}\n"
        # HOLD after the queue file was opened (at its first RCPT)
        "smtpd_recipient_restrictions = check_recipient_access"
        " inline:{{postmaster@localhost=HOLD held at rcpt}}, permit_mynetworks, reject_unauth_destination\n"
        "t_eod_hold = check_sender_access inline:{{late@example.org=HOLD held at end of data}}\n"))
    inst.start()
    yield Smtpd(inst, ports)
    inst.stop()


Dialog = SmtpDialog


def queue_id(reply):
    m = re.search(r"queued as ([0-9A-Za-z]+)", reply)
    assert m, reply
    return m.group(1)


# --- the basic flow ---------------------------------------------------------------

def test_smtplib_message_lands_in_the_mailbox_with_received_header_and_logs(smtpd):
    import smtplib
    with smtplib.SMTP("127.0.0.1", smtpd.ports["plain"], timeout=20) as s:
        code, banner = s.ehlo("client.example.test")
        assert code == 250
        assert banner.decode().split("\n") == [
            "host.example.test", "PIPELINING", "SIZE 10240000", "VRFY", "ETRN",
            "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING"]
        s.sendmail("sender@example.org", [smtpd.rcpt],
                   "Subject: basic flow\r\n\r\nline one\r\n.leading dot\r\n")
    entry = smtpd.message_with("Subject: basic flow")
    m = re.search(rb"Received: from client\.example\.test \((?:unknown|localhost) \[127\.0\.0\.1\]\)\n"
                  rb"\tby host\.example\.test \(Postern\) with ESMTP id ([0-9A-F]+)\n"
                  rb"\tfor <" + smtpd.rcpt.encode() + rb">; \w{3}, [ \d]\d \w{3} \d{4} "
                  rb"\d\d:\d\d:\d\d [+-]\d{4} \(\w+\)\n", entry)
    assert m, entry
    assert b"\n\nline one\n.leading dot\n" in entry
    qid = m.group(1).decode()
    log = smtpd.inst.wait_log(f"{qid}: removed")
    assert "connect from CLIENT" in log
    assert f"{qid}: client=CLIENT\n" in log
    assert f"{qid}: from=<sender@example.org>, size=" in log
    assert ("disconnect from CLIENT ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
            in smtpd.inst.wait_log("commands=5"))


def test_greeting_and_helo_replies(smtpd):
    d = Dialog(smtpd.ports["plain"])
    assert d.greeting == "220 host.example.test ESMTP Postfix"
    assert d.cmd("HELO") == "501 Syntax: HELO hostname"
    assert d.cmd("EHLO") == "501 Syntax: EHLO hostname"
    assert d.cmd("HELO client.example") == "250 host.example.test"
    assert d.cmd("NOOP") == "250 2.0.0 Ok"
    assert d.cmd("QUIT") == "221 2.0.0 Bye"
    assert d.closed()


def test_wrong_sequences_and_unknown_commands(smtpd):
    d = Dialog(smtpd.ports["nosleep"])
    d.cmd("EHLO client.example")
    assert d.cmd("RCPT TO:<a@localhost>") == "503 5.5.1 Error: need MAIL command"
    assert d.cmd("DATA") == "503 5.5.1 Error: need RCPT command"
    assert d.cmd("FOO bar") == "500 5.5.2 Error: command not recognized"
    assert d.cmd("") == "500 5.5.2 Error: bad syntax"
    assert d.cmd("MAIL FROM:<a@example.org>") == "250 2.1.0 Ok"
    assert d.cmd("MAIL FROM:<a@example.org>") == "503 5.5.1 Error: nested MAIL command"
    assert d.cmd("DATA") == "554 5.5.1 Error: no valid recipients"
    assert d.cmd("RSET x") == "501 5.5.4 Syntax: RSET"
    assert d.cmd("DATA x") == "501 5.5.4 Syntax: DATA"
    assert d.cmd("MAIL FROM:<a@example.org>") == "503 5.5.1 Error: nested MAIL command"
    assert d.cmd("RSET") == "250 2.0.0 Ok"
    assert d.cmd("MAIL TO:<a@example.org>") == "501 5.5.4 Syntax: MAIL FROM:<address>"
    assert d.cmd("MAIL FROM:<a b@example.org>") == "501 5.1.7 Bad sender address syntax"
    assert d.cmd("MAIL FROM:<a@example.org> FOO=bar") == "555 5.5.4 Unsupported option: FOO=bar"
    assert d.cmd("MAIL FROM:<a@example.org> SIZE=x") == "501 5.5.4 Bad message size syntax"
    assert d.cmd("MAIL FROM:<a@example.org> RET=NONE") == "501 5.5.4 Bad RET parameter syntax"
    assert d.cmd("MAIL FROM:<a@example.org> ENVID=a+zz") == "501 5.5.4 Bad ENVID parameter syntax"
    assert d.cmd("QUIT") == "221 2.0.0 Bye"
    log = smtpd.inst.wait_log("unknown=0/2")
    assert re.search(r"disconnect from CLIENT ehlo=1 mail=1/9 rcpt=0/1 "
                     r"data=0/3 rset=1/2 quit=1 unknown=0/2 commands=4/19\n", log), log
    d = Dialog(smtpd.ports["nosleep"])
    d.cmd("EHLO client.example")
    assert d.cmd("MAIL FROM:<a@example.org>") == "250 2.1.0 Ok"
    assert d.cmd("RCPT FROM:<x@localhost>") == "501 5.5.4 Syntax: RCPT TO:<address>"
    assert d.cmd("RCPT TO:<>") == "501 5.1.3 Bad recipient address syntax"
    assert d.cmd(f"RCPT TO:<{smtpd.rcpt}> NOTIFY=SOMETIMES") == \
        "501 5.5.4 Error: Bad NOTIFY parameter syntax"
    assert d.cmd(f"RCPT TO:<{smtpd.rcpt}> ORCPT=nosemicolon") == \
        "501 5.5.4 Error: Bad ORCPT parameter syntax"
    assert d.cmd(f"RCPT TO:<{smtpd.rcpt}> BAR") == "555 5.5.4 Unsupported option: BAR"
    assert d.cmd("VRFY") == "501 5.5.4 Syntax: VRFY address"
    assert d.cmd("ETRN") == "503 Error: MAIL transaction in progress"
    assert d.cmd("QUIT") == "221 2.0.0 Bye"
    assert re.search(r"disconnect from CLIENT ehlo=1 mail=1 rcpt=0/5 "
                     r"vrfy=0/1 etrn=0/1 quit=1 commands=3/10\n",
                     smtpd.inst.wait_log("commands=3/10")), smtpd.inst.log()


def test_pipelined_transactions_with_errors_in_the_middle(smtpd):
    d = Dialog(smtpd.ports["plain"])
    d.send("EHLO client.example\r\n"
           "MAIL FROM:<p1@example.org>\r\n"
           "RCPT TO:<nosuchuser@localhost>\r\n"
           f"RCPT TO:<{smtpd.rcpt}>\r\n"
           "RCPT TO:<bad address@localhost>\r\n"
           "DATA\r\n"
           "Subject: pipelined one\r\n\r\nfirst\r\n.\r\n"
           "MAIL FROM:<p2@example.org>\r\n"
           f"RCPT TO:<{smtpd.rcpt}> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+2By@example.org\r\n"
           "DATA\r\n"
           "Subject: pipelined two\r\n\r\nsecond\r\n.\r\n"
           "QUIT\r\n")
    r = d.replies(11)
    assert r[0].startswith("250-host.example.test\n250-PIPELINING")
    assert r[1] == "250 2.1.0 Ok"
    assert r[2].startswith("550 5.1.1 <nosuchuser@localhost>: Recipient address rejected:"), r
    assert r[3] == "250 2.1.5 Ok"
    assert r[4] == "501 5.1.3 Bad recipient address syntax"
    assert r[5] == "354 End data with <CR><LF>.<CR><LF>"
    assert r[6].startswith("250 2.0.0 Ok: queued as ")
    assert r[7:10] == ["250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"]
    assert r[10].startswith("250 2.0.0 Ok: queued as ")
    assert d.reply() == "221 2.0.0 Bye"
    smtpd.wait_mail("Subject: pipelined two")
    assert b"Subject: pipelined one" in smtpd.mbox()


def test_rset_mid_transaction_forgets_the_envelope(smtpd):
    d = Dialog(smtpd.ports["plain"])
    d.cmd("EHLO client.example")
    assert d.cmd("MAIL FROM:<forgotten@example.org>") == "250 2.1.0 Ok"
    assert d.cmd(f"RCPT TO:<{smtpd.rcpt}>") == "250 2.1.5 Ok"
    assert d.cmd("RSET") == "250 2.0.0 Ok"
    assert d.cmd("DATA") == "503 5.5.1 Error: need RCPT command"
    assert d.cmd("MAIL FROM:<kept@example.org>") == "250 2.1.0 Ok"
    assert d.cmd(f"RCPT TO:<{smtpd.rcpt}>") == "250 2.1.5 Ok"
    assert d.cmd("DATA").startswith("354")
    assert d.cmd("Subject: after rset\r\n\r\nbody\r\n.").startswith("250 2.0.0 Ok: queued as")
    d.cmd("QUIT")
    entry = smtpd.message_with("Subject: after rset")
    assert entry.startswith(b"From kept@example.org ")


def test_helo_resets_the_transaction(smtpd):
    d = Dialog(smtpd.ports["plain"])
    d.cmd("EHLO client.example")
    d.cmd("MAIL FROM:<a@example.org>")
    assert d.cmd("EHLO again.example").startswith("250-host.example.test")
    assert d.cmd(f"RCPT TO:<{smtpd.rcpt}>") == "503 5.5.1 Error: need MAIL command"
    d.close()


# --- limits -----------------------------------------------------------------------

def test_thousand_recipients_then_too_many(smtpd):
    d = Dialog(smtpd.ports["small"])
    d.cmd("EHLO client.example")
    d.cmd("MAIL FROM:<many@example.org>")
    d.send("".join(f"RCPT TO:<{smtpd.rcpt}>\r\n" for _ in range(1001)))
    replies = d.replies(1001)
    assert replies[:1000] == ["250 2.1.5 Ok"] * 1000
    assert replies[1000] == "452 4.5.3 Error: too many recipients"
    assert d.cmd("DATA").startswith("354")
    assert d.cmd("Subject: thousand\r\n\r\nx\r\n.").startswith("250 2.0.0 Ok: queued as")
    d.cmd("QUIT")
    # cleanup's duplicate filter: one delivery for the one address
    smtpd.wait_mail("Subject: thousand")
    time.sleep(0.5)
    assert smtpd.mbox().count(b"Subject: thousand") == 1


def send_sized(port, body_bytes, marker):
    """A message whose size as smtpd counts it (each line + CRLF) is body_bytes."""
    header = f"Subject: {marker}\r\n\r\n"
    lines = [header.encode()]
    size = len(header)
    while size < body_bytes:
        n = min(78, body_bytes - size - 2)
        if n < 0:
            raise ValueError("cannot hit that size")
        lines.append(b"y" * n + b"\r\n")
        size += n + 2
    msg = b"".join(lines)
    assert len(msg) == body_bytes
    d = Dialog(port)
    d.cmd("EHLO client.example")
    d.cmd("MAIL FROM:<size@example.org>")
    d.cmd("RCPT TO:<%s@localhost>" % __import__("getpass").getuser())
    assert d.cmd("DATA").startswith("354")
    d.send(msg + b".\r\n")
    reply = d.reply()
    d.cmd("QUIT")
    return reply


def test_message_at_the_size_limit_and_one_byte_over(smtpd):
    port = smtpd.ports["small"]
    assert send_sized(port, 2000, "at limit").startswith("250 2.0.0 Ok: queued as")
    assert send_sized(port, 2001, "over limit") == "552 5.3.4 Message size exceeds fixed limit"
    smtpd.wait_mail("Subject: at limit")
    assert b"over limit" not in smtpd.mbox()
    assert "warning: " in smtpd.inst.wait_log("queue file size limit exceeded")
    d = Dialog(port)
    d.cmd("EHLO client.example")
    assert d.cmd("MAIL FROM:<a@example.org> SIZE=2001") == \
        "552 5.3.4 Message size exceeds fixed limit"
    assert d.cmd("MAIL FROM:<a@example.org> SIZE=2000") == "250 2.1.0 Ok"
    d.close()


def test_a_message_larger_than_the_cleanup_backlog_arrives_whole(smtpd):
    """3 MB: more than smtpd lets queue up for cleanup (1 MB), so the session stops
    reading its client until cleanup has caught up, then goes on (it used to wait
    forever when a partial chunk was left over at the pause)."""
    import smtplib
    line = "y" * 76 + "\r\n"
    with smtplib.SMTP("127.0.0.1", smtpd.ports["plain"], timeout=60) as s:
        s.sendmail("big@example.org", [smtpd.rcpt],
                   "Subject: three megabytes\r\n\r\n" + line * 40000)
    entry = smtpd.message_with("Subject: three megabytes")
    assert entry.count(b"y" * 76 + b"\n") == 40000


# --- message content --------------------------------------------------------------

def data_dialog(port, content, marker=None):
    d = Dialog(port)
    d.cmd("EHLO client.example")
    d.cmd("MAIL FROM:<content@example.org>")
    d.cmd("RCPT TO:<%s@localhost>" % __import__("getpass").getuser())
    assert d.cmd("DATA").startswith("354")
    d.send(content)
    return d


def test_bare_lf_bare_cr_nul_and_8bit_content_without_8bitmime(smtpd):
    d = data_dialog(smtpd.ports["plain"],
                    b"Subject: odd bytes\r\n\r\nbare lf\nbare\rcr\r\nnul\x00byte\r\n"
                    b"8bit \xc3\xa9t\xc3\xa9\r\n.\r\n")
    assert d.reply().startswith("250 2.0.0 Ok: queued as")
    d.cmd("QUIT")
    entry = smtpd.message_with("Subject: odd bytes")
    assert b"bare lf\nbare\rcr\n" in entry
    assert "8bit \u00e9t\u00e9".encode() in entry


def test_header_only_and_empty_messages(smtpd):
    d = data_dialog(smtpd.ports["plain"], b"Subject: header only\r\n.\r\n")
    assert d.reply().startswith("250 2.0.0 Ok: queued as")
    d.close()
    smtpd.message_with("Subject: header only")
    d = data_dialog(smtpd.ports["plain"], b".\r\n")
    qid = queue_id(d.reply())
    d.close()
    smtpd.inst.wait_log(f"{qid}: removed")


def test_lines_over_1000_bytes_are_delivered_whole(smtpd):
    long_line = b"L" * 5000
    d = data_dialog(smtpd.ports["plain"], b"Subject: long lines\r\n\r\n" + long_line + b"\r\n.\r\n")
    assert d.reply().startswith("250 2.0.0 Ok: queued as")
    d.close()
    assert long_line in smtpd.message_with("Subject: long lines")


def test_smuggling_defence_lf_dot_lf_does_not_end_data(smtpd):
    d = data_dialog(smtpd.ports["smuggle"],
                    b"Subject: smuggle outer\r\n\r\ntext\n.\nMAIL FROM:<evil@example.org>\r\n"
                    b"RCPT TO:<root@localhost>\r\nDATA\r\nSubject: smuggled\r\n\r\n.\r\n")
    assert d.reply().startswith("250 2.0.0 Ok: queued as")
    assert d.cmd("QUIT") == "221 2.0.0 Bye"
    entry = smtpd.message_with("Subject: smuggle outer")
    assert b"text\n\nMAIL FROM:<evil@example.org>\n" in entry
    # Without the defence (Postfix < 3.9 default) <LF>.<LF> ends the message.
    d = data_dialog(smtpd.ports["plain"], b"Subject: classic\r\n\r\ntext\n.\nNOOP\r\n")
    assert d.reply().startswith("250 2.0.0 Ok: queued as")
    assert d.reply() == "250 2.0.0 Ok"
    d.close()


def test_forbid_bare_newline_reject(smtpd):
    d = data_dialog(smtpd.ports["reject_lf"], b"Subject: bare reject\r\n\r\nx\ny\r\n.\r\n")
    assert d.reply() == "550 5.5.2 host.example.test Error: bare <LF> received"
    assert d.cmd("NOOP") == "250 2.0.0 Ok"
    # A command line with a bare LF: rejected and the connection closed, as Postfix.
    d.send("NOOP\n")
    assert d.reply() == "550 5.5.2 host.example.test Error: bare <LF> received"
    assert d.closed()
    log = smtpd.inst.wait_log("NOQUEUE: reject: NOOP from")
    assert re.search(r"\w+: reject: END-OF-MESSAGE from CLIENT: bare <LF> "
                     r"received; from=<content@example\.org> to=<\w+@localhost> proto=ESMTP "
                     r"helo=<client\.example>\n", log), log
    assert ("NOQUEUE: reject: NOOP from CLIENT: bare <LF> received; "
            "proto=ESMTP helo=<client.example>\n") in log
    assert "ehlo=1 mail=1 rcpt=1 data=0/1 noop=1 commands=4/5\n" in log
    # Clients in smtpd_forbid_bare_newline_exclusions ($mynetworks) are exempt.
    d = data_dialog(smtpd.ports["lf_excluded"], b"Subject: bare excluded\r\n\r\nx\ny\r\n.\r\n")
    assert d.reply().startswith("250 2.0.0 Ok: queued as")
    d.close()


def test_disconnect_in_the_middle_of_data_queues_nothing(smtpd):
    d = data_dialog(smtpd.ports["plain"], b"Subject: lost\r\n\r\n" + b"z" * 100 + b"\r\n")
    time.sleep(0.2)  # let smtpd read the content before the connection goes
    d.close()
    log = smtpd.inst.wait_log("lost connection after DATA (")
    m = re.search(r"lost connection after DATA \((\d+) bytes\) from CLIENT", log)
    assert m and int(m.group(1)) == len("Subject: lost\r\n\r\n") + 102, log
    qid = re.findall(r"(\w+): client=CLIENT", log)[-1]
    time.sleep(0.5)
    assert qid not in smtpd.inst.queue_files("incoming") + smtpd.inst.queue_files("active")
    assert f"{qid}: from=" not in smtpd.inst.log()
    assert b"Subject: lost" not in smtpd.mbox()


# --- BDAT (RFC 3030) --------------------------------------------------------------

def test_bdat_chunks_and_last(smtpd):
    d = Dialog(smtpd.ports["plain"])
    d.cmd("EHLO client.example")
    d.cmd("MAIL FROM:<chunky@example.org> BODY=8BITMIME")
    d.cmd(f"RCPT TO:<{smtpd.rcpt}>")
    part1 = b"Subject: bdat chunks\r\n\r\nfirst "
    part2 = b"half\r\n.not stuffed\r\n"
    d.send(b"BDAT %d\r\n" % len(part1) + part1)
    assert d.reply() == f"250 2.0.0 Ok: {len(part1)} bytes"
    d.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    r = d.reply()
    assert re.match(r"250 2\.0\.0 Ok: %d bytes queued as \w+$" % (len(part1) + len(part2)), r), r
    assert d.cmd("DATA") == "503 5.5.1 Error: need RCPT command"
    d.cmd("QUIT")
    entry = smtpd.message_with("Subject: bdat chunks")
    assert b"\n\nfirst half\n.not stuffed\n" in entry


def test_bdat_errors(smtpd):
    # As Postfix: a failed BDAT fails the rest of the transaction until RSET or BDAT LAST.
    d = Dialog(smtpd.ports["plain"])
    d.cmd("EHLO client.example")
    d.send(b"BDAT 3\r\nabc")
    assert d.reply() == "503 5.5.1 Error: need RCPT command"
    assert d.cmd("MAIL FROM:<a@example.org>") == "503 5.5.1 Error: MAIL after BDAT"
    d.send(b"BDAT 1 LAST\r\nz")
    assert d.reply() == "551 5.0.0 Discarded 1 bytes after earlier error"
    assert d.cmd("MAIL FROM:<a@example.org>") == "250 2.1.0 Ok"
    d.cmd(f"RCPT TO:<{smtpd.rcpt}>")
    d.send(b"BDAT 1\r\nz")
    assert d.reply() == "250 2.0.0 Ok: 1 bytes"
    assert d.cmd("BDAT 0") == "551 5.7.1 Null BDAT request"
    assert d.cmd("MAIL FROM:<a@example.org>") == "503 5.5.1 Error: nested MAIL command"
    assert d.cmd(f"RCPT TO:<{smtpd.rcpt}>") == "503 5.5.1 Error: RCPT after BDAT"
    assert d.cmd("DATA") == "503 5.5.1 Error: DATA after BDAT"
    d.send(b"BDAT 2\r\nxy")
    assert d.reply() == "551 5.0.0 Discarded 2 bytes after earlier error"
    assert d.cmd("RSET") == "250 2.0.0 Ok"
    assert d.cmd("MAIL FROM:<a@example.org>") == "250 2.1.0 Ok"
    assert d.cmd("BDAT x") == "521 5.5.4 Syntax: BDAT count [LAST]"
    assert d.closed()


# --- policy switches --------------------------------------------------------------

def test_helo_required_vrfy_disabled_strict_envelopes(smtpd):
    d = Dialog(smtpd.ports["strict"])
    # smtpd_helo_required: MAIL (and AUTH) only, as Postfix
    assert d.cmd("NOOP") == "250 2.0.0 Ok"
    assert d.cmd("VRFY x") == "502 5.5.1 VRFY command is disabled"
    assert d.cmd("MAIL FROM:<a@example.org>") == "503 5.5.1 Error: send HELO/EHLO first"
    assert d.cmd("AUTH PLAIN") == "503 5.5.1 Error: send HELO/EHLO first"
    assert d.cmd(f"RCPT TO:<{smtpd.rcpt}>") == "503 5.5.1 Error: need MAIL command"
    ehlo = d.cmd("EHLO client.example")
    assert "VRFY" not in ehlo.split("\n")[1:] and "250-VRFY" not in ehlo
    assert d.cmd("VRFY root") == "502 5.5.1 VRFY command is disabled"
    assert d.cmd("MAIL FROM:a@example.org") == "501 5.1.7 Bad sender address syntax"
    assert d.cmd("MAIL FROM:<a@example.org>") == "250 2.1.0 Ok"
    d.close()
    d = Dialog(smtpd.ports["plain"])
    d.cmd("EHLO client.example")
    assert d.cmd("VRFY <root@localhost>") == "252 2.0.0 root@localhost"
    assert d.cmd("MAIL FROM:a@example.org") == "250 2.1.0 Ok"
    d.close()


def test_discarded_ehlo_keywords(smtpd):
    d = Dialog(smtpd.ports["discard"])
    lines = d.cmd("EHLO client.example").split("\n")
    assert "250-DSN" not in lines and "250 CHUNKING" not in lines
    assert lines[-1] == "250 SMTPUTF8"
    d.close()


def test_silent_client_times_out(smtpd):
    start = time.time()
    d = Dialog(smtpd.ports["slow"])
    d.cmd("EHLO client.example")
    assert d.reply() == "421 4.4.2 host.example.test Error: timeout exceeded"
    assert d.closed()
    assert 1.5 < time.time() - start < 10
    assert "timeout after EHLO from CLIENT" in smtpd.inst.wait_log("timeout after EHLO")


def test_hard_error_limit_disconnects(smtpd):
    d = Dialog(smtpd.ports["errors"])
    start = time.time()
    assert d.cmd("XYZZY") == "500 5.5.2 Error: command not recognized"
    assert d.cmd("XYZZY") == "500 5.5.2 Error: command not recognized"
    d.send("XYZZY\r\n")
    assert d.replies(2) == ["500 5.5.2 Error: command not recognized",
                            "421 4.7.0 host.example.test Error: too many errors"]
    assert d.closed()
    # the soft limit (2 errors) made smtpd pause before the later replies
    assert time.time() - start >= 1.0
    assert "too many errors after UNKNOWN from CLIENT" in \
        smtpd.inst.wait_log("too many errors after")


def test_etrn_and_dsn_parameters_reach_the_queue(smtpd):
    d = Dialog(smtpd.ports["plain"])
    assert d.cmd("ETRN example.org") == "503 Error: send HELO/EHLO first"
    d.cmd("EHLO client.example")
    assert d.cmd("ETRN") == "500 Syntax: ETRN domain"
    assert d.cmd("MAIL FROM:<dsn@example.org> RET=HDRS ENVID=env+2Bid") == "250 2.1.0 Ok"
    assert d.cmd(f"RCPT TO:<{smtpd.rcpt}> NOTIFY=NEVER ORCPT=rfc822;orig+40example.org") == \
        "250 2.1.5 Ok"
    d.cmd("DATA")
    qid = queue_id(d.cmd("Subject: dsn params\r\n\r\nx\r\n."))
    d.cmd("QUIT")
    smtpd.message_with("Subject: dsn params")
    assert f"{qid}: removed" in smtpd.inst.wait_log(f"{qid}: removed")


def test_swaks_delivers(smtpd):
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(smtpd.ports["plain"]),
                        "--from", "swaks@example.org", "--to", smtpd.rcpt,
                        "--header", "Subject: swaks plain", "--body", "swaks body",
                        "--pipeline"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "<** " not in p.stdout
    assert "250 2.0.0 Ok: queued as" in p.stdout
    assert b"swaks body" in smtpd.message_with("Subject: swaks plain")


def send_from(port, sender, marker, rcpt):
    d = Dialog(port)
    d.cmd("EHLO client.example")
    assert d.cmd(f"MAIL FROM:<{sender}>") == "250 2.1.0 Ok"
    assert d.cmd(f"RCPT TO:<{rcpt}>") == "250 2.1.5 Ok"
    assert d.cmd("DATA").startswith("354")
    reply = d.cmd(f"Subject: {marker}\r\n\r\nx\r\n.")
    d.cmd("QUIT")
    return queue_id(reply)


def test_access_actions_prepend_hold_discard_redirect(smtpd):
    port = smtpd.ports["plain"]
    send_from(port, "prepend@example.org", "prepended", smtpd.rcpt)
    entry = smtpd.message_with("Subject: prepended")
    # PREPEND goes above our Received: header, as in Postfix
    assert re.search(rb"\nX-Tagged: by access map\nReceived: from client\.example ", entry), entry
    held = send_from(port, "hold@example.org", "held", smtpd.rcpt)
    assert wait_for(lambda: held in smtpd.inst.queue_files("hold"))
    dropped = send_from(port, "discard@example.org", "discarded", smtpd.rcpt)
    redirected = send_from(port, "redirect@example.org", "redirected", smtpd.rcpt)
    smtpd.message_with("Subject: redirected")  # postmaster -> the test user (aliases)
    log = smtpd.inst.wait_log(f"{redirected}: removed")
    # the alias postmaster -> user rewrote the recipient; the original one is kept
    assert f"{redirected}: to=<{smtpd.user}@host.example.test>, orig_to=<{smtpd.rcpt}>" in log
    assert f"{dropped}: from=" not in log
    assert "warning" not in "".join(l for l in log.splitlines() if dropped in l)
    assert b"Subject: discarded" not in smtpd.mbox()
    assert b"Subject: held" not in smtpd.mbox()


def test_hold_decided_after_the_queue_file_was_opened(smtpd):
    # at the second RCPT: the queue file was opened at the first one
    d = Dialog(smtpd.ports["plain"])
    d.cmd("EHLO client.example")
    assert d.cmd("MAIL FROM:<late@example.org>") == "250 2.1.0 Ok"
    assert d.cmd(f"RCPT TO:<{smtpd.rcpt}>") == "250 2.1.5 Ok"
    assert d.cmd("RCPT TO:<postmaster@localhost>") == "250 2.1.5 Ok"
    assert d.cmd("DATA").startswith("354")
    at_rcpt = queue_id(d.cmd("Subject: held at rcpt\r\n\r\nx\r\n."))
    d.cmd("QUIT")
    # in the end-of-data restrictions
    at_end = send_from(smtpd.ports["eod_hold"], "late@example.org", "held at end of data", smtpd.rcpt)
    assert wait_for(lambda: {at_rcpt, at_end} <= set(smtpd.inst.queue_files("hold"))), smtpd.inst.log()
    log = smtpd.inst.log()
    assert re.search(rf"{at_rcpt}: hold: RCPT from \S+: <postmaster@localhost>: Recipient address "
                     r"held at rcpt; from=<late@example\.org> to=<postmaster@localhost>", log), log
    assert re.search(rf"{at_end}: hold: END-OF-MESSAGE from \S+: <late@example\.org>: Sender address "
                     r"held at end of data; from=<late@example\.org>", log), log
    assert f"{at_rcpt}: removed" not in log and f"{at_end}: removed" not in log
    assert b"Subject: held at" not in smtpd.mbox()


# --- differential: the same dialogue against Debian's Postfix smtpd -----------------

DIFF_DIALOGUE = [
    "NOOP", "HELO", "EHLO client.example", "RCPT TO:<root@localhost>", "DATA", "HELP",
    "MAIL FROM:<a@example.org> SIZE=x", "MAIL FROM:<a@example.org> BODY=BINARYMIME",
    "MAIL FROM:<a@example.org> RET=NONE", "MAIL FROM:<a b@example.org>",
    "MAIL FROM:<a@example.org> ENVID=x ENVID=y", "MAIL FROM: <a@example.org> SMTPUTF8",
    "MAIL FROM:<a@example.org>", "RCPT TO:<>", "RCPT TO:<root@localhost> NOTIFY=BAD",
    "RCPT TO:<root@localhost> ORCPT=rfc822", "RCPT TO:<root@localhost> NOTIFY=NEVER",
    "ETRN example.org", "VRFY root", "STARTTLS", "AUTH PLAIN", "BDAT 0", b"NOOP \xc3(\r\n",
    "NOOP " + "n" * 2100, "MAIL FROM:<unclosed@example.org", "RCPT TO:<root@localhost> Foo=x",
    b"BDAT 2\r\nxy", "RSET", "MAIL FROM:<a@example.org>", "RCPT TO:<root@localhost>",
    b"BDAT 5\r\nab\r\nc", b"BDAT 3 LAST\r\n\r\nx", "MAIL FROM:<a@example.org>",
    "RCPT TO:<root@localhost>", "DATA", b"Subject: diff\r\n\r\n..x\r\n.\r\n",
    b"EHLO again\r\nNOOP\r\n", None, "QUIT",
]


def run_dialogue(port):
    d = Dialog(port)
    out = [d.greeting]
    for step in DIFF_DIALOGUE:
        if step is None:
            out.append(d.reply())
        elif isinstance(step, bytes):
            d.send(step)
            out.append(d.reply())
        else:
            out.append(d.cmd(step))
    d.close()
    return [re.sub(r"queued as \w+", "queued as QID", r) for r in out]


def test_replies_and_log_lines_match_debian_postfix(smtpd, tmp_path):
    from postfixpeer import PostfixPeer, available, master_cf
    assert not available(), available()
    port = free_port()
    peer = PostfixPeer(main_cf="myhostname = host.example.test\nmydestination = localhost\n"
                               "mynetworks = 127.0.0.0/8\nsmtpd_peername_lookup = no\n"
                               "smtpd_error_sleep_time = 0\nsmtpd_hard_error_limit = 100\n",
                       master_cf_text=master_cf(f"127.0.0.1:{port}"))
    peer.start()
    try:
        postfix = run_dialogue(port)
        peer_log = client_names(peer.wait_log("disconnect from"))
    finally:
        peer.cleanup()
    ours = run_dialogue(smtpd.ports["nosleep"])
    assert ours == postfix
    log = smtpd.inst.wait_log("bdat=2/4 rset=1 noop=3 vrfy=1 etrn=0/1 quit=1 unknown=0/1")

    def session_lines(text):
        keep = ("improper command pipelining", "disconnect from", "null BDAT", "request longer")
        lines = [re.sub(r"^.*?\]: ", "", l) for l in text.splitlines() if any(k in l for k in keep)]
        return [re.sub(r"^(warning: )[0-9A-F]+: ", r"\1QID: ", l) for l in lines]
    assert session_lines(log)[-4:] == session_lines(peer_log)[-4:], (log, peer_log)


# --- concurrency ------------------------------------------------------------------

def test_a_slow_session_does_not_hold_up_others(smtpd):
    slow = data_dialog(smtpd.ports["plain"], b"Subject: slow one\r\n\r\nstarted\r\n")
    fast = data_dialog(smtpd.ports["plain"], b"Subject: fast one\r\n\r\nx\r\n.\r\n")
    assert fast.reply().startswith("250 2.0.0 Ok: queued as")
    fast.cmd("QUIT")
    slow.send(b"finished\r\n.\r\n")
    assert slow.reply().startswith("250 2.0.0 Ok: queued as")
    slow.cmd("QUIT")
    assert b"started\nfinished\n" in smtpd.message_with("Subject: slow one")


def test_smtp_source_parallel_sessions_all_delivered(smtpd):
    before = smtpd.inst.log().count("status=sent")
    p = subprocess.run(["smtp-source", "-s", "10", "-m", "100", "-l", "2000", "-c",
                        "-f", "source@example.org", "-t", smtpd.rcpt,
                        f"127.0.0.1:{smtpd.ports['bulk']}"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    smtpd.inst.wait_log("status=sent", count=before + 100, timeout=60)
    assert smtpd.inst.log().count("from=<source@example.org>") == 100
