"""smtp(8)/lmtp(8) with smtp_chunking_enable = yes (a Postern-only parameter, default no):
the content goes with BDAT (RFC 3030) to servers that offer CHUNKING -- unstuffed, in
bounded chunks, the last one "BDAT n LAST" -- and arrives byte for byte as it does with
DATA. The servers: capturesmtp.CaptureSmtp (keeps the raw chunks, refuses chosen ones),
a second Postern and Debian's Postfix as receiving smtpd (each relays what it took on
to a capture server with DATA, so the two paths can be compared), Dovecot's LMTP."""
import re

import pytest

import dovecotfixture
import postfixpeer
from capturesmtp import CaptureSmtp
from mailsystem import MailInstance, free_port, smtpd_service, wait_for

AGENTS = ("smtp unix - - n - - smtp\n"
          "plain unix - - n - - smtp\n  -o smtp_chunking_enable=no\n"
          "lmtp unix - - n - - lmtp\n")
WAIT = 240  # a loaded two-core machine

# Lines that DATA must stuff (a lone dot, leading dots), a line that is folded at 998,
# 8-bit text.
TRICKY_BODY = ("first line\n.\n..two dots\n.leading dot\n" + "L" * 2500 + "\n"
               "caf\u00e9 cr\u00e8me\n\n.\nlast line\n")


def big_body(size):
    lines, total, i = [], 0, 0
    while total < size:
        line = (".%d " % i if i % 7 == 0 else "%d " % i) + "y" * (i % 300)
        lines.append(line)
        total += len(line) + 1
        i += 1
    return "\n".join(lines) + "\n"


def wire(body, stuffed):
    """The body as smtp(8) sends it (lines below 998 bytes only)."""
    return "".join(("." + ln if stuffed and ln.startswith(".") else ln) + "\r\n"
                   for ln in body.rstrip("\n").split("\n")).encode()


def body_of(data):
    return data.split(b"\r\n\r\n", 1)[1]


def unstuff(data):
    return b"".join(ln[1:] if ln.startswith(b".") else ln for ln in data.splitlines(keepends=True))


def refuse_chosen_chunks(t, last):
    rcpts = " ".join(t.rcpts)
    if "chunk5@" in rcpts and t.chunks == 2:
        return "554 5.6.0 second chunk refused"
    if "chunk4@" in rcpts and t.chunks == 2:
        return "452 4.3.1 out of room for chunk 2"
    if "last5@" in rcpts and last:
        return "550 5.7.1 content refused"
    return None


@pytest.fixture(scope="module")
def servers():
    made = {
        "cap.test": CaptureSmtp(keywords=("PIPELINING", "CHUNKING", "8BITMIME", "SIZE 0")),
        "nopipe.test": CaptureSmtp(keywords=("CHUNKING", "8BITMIME")),
        "refuse.test": CaptureSmtp(keywords=("PIPELINING", "CHUNKING", "8BITMIME"),
                                   bdat_reply=refuse_chosen_chunks),
        "seven.test": CaptureSmtp(keywords=("PIPELINING", "CHUNKING")),  # no 8BITMIME
    }
    yield made
    for s in made.values():
        s.stop()


@pytest.fixture(scope="module")
def inst(tmp_path_factory, servers):
    routes = [f"{{{d}=smtp:[127.0.0.1]:{s.port}}}" for d, s in servers.items()]
    routes.append(f"{{data.test=plain:[127.0.0.1]:{servers['cap.test'].port}}}")
    routes.append(f"{{data7.test=plain:[127.0.0.1]:{servers['seven.test'].port}}}")
    m = MailInstance(tmp_path_factory.mktemp("chunking"),
                     main_cf=f"transport_maps = inline:{{{', '.join(routes)}}}\n"
                             "smtp_chunking_enable = yes\nmessage_size_limit = 0\n",
                     master_cf=AGENTS)
    m.start()
    yield m
    m.stop()


def send(inst, rcpt, subject, body):
    p = inst.sendmail(["-i", "-f", f"{inst.user}@localhost", rcpt], f"Subject: {subject}\n\n{body}")
    assert p.returncode == 0, p.stderr


def delivery(inst, rcpt, status):
    return inst.wait_log_re(r"^.*: (\w+): to=<%s>, relay=(\S+), .*dsn=(\d\.\d+\.\d+), status=%s \((.*)\)$"
                            % (re.escape(rcpt), status), timeout=WAIT)


def captured(server, rcpt):
    return server.wait(lambda t: rcpt in " ".join(t.rcpts), timeout=WAIT)[0]


# ---- the wire, seen by a capturing server ---------------------------------------------

def test_postconf_default_is_no(inst):
    for name in ("smtp_chunking_enable", "lmtp_chunking_enable"):
        assert inst.command("postconf", "-d", name).stdout == f"{name} = no\n"


def test_bdat_sends_the_bytes_data_sends_unstuffed(inst, servers):
    send(inst, "viabdat@cap.test", "tricky", TRICKY_BODY)
    send(inst, "viadata@data.test", "tricky", TRICKY_BODY)
    b = captured(servers["cap.test"], "viabdat@cap.test")
    d = captured(servers["cap.test"], "viadata@data.test")
    # smtp_chunking_enable = no (the "plain" transport): DATA although CHUNKING is offered
    assert (b.mode, d.mode) == ("BDAT", "DATA")
    assert b.chunks == 1  # a small message is one "BDAT n LAST"
    assert b"\r\n...two dots\r\n" in d.data  # stuffed
    assert body_of(b.data) == unstuff(body_of(d.data))
    assert b"\r\n.\r\n..two dots\r\n.leading dot\r\n" + b"L" * 998 + b"\r\n " in b.data
    assert "caf\u00e9".encode() in b.data
    m = delivery(inst, "viabdat@cap.test", "sent")
    assert m.group(4) == "250 2.0.0 Ok: queued as CAPTURED"


def test_bdat_to_a_server_without_8bitmime_carries_the_quoted_printable_downgrade(inst, servers):
    mime = ("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
            "Subject: eight\n\nGr\u00fc\u00dfe = 100 \u20ac\n.leading dot \u00e9\n")
    for rcpt in ("viabdat@seven.test", "viadata@data7.test"):
        p = inst.sendmail(["-i", "-f", f"{inst.user}@localhost", rcpt], mime)
        assert p.returncode == 0, p.stderr
    b = captured(servers["seven.test"], "viabdat@seven.test")
    d = captured(servers["seven.test"], "viadata@data7.test")
    assert (b.mode, d.mode) == ("BDAT", "DATA")
    assert b"Content-Transfer-Encoding: quoted-printable" in b.data
    assert max(b.data) < 128
    assert body_of(b.data) == unstuff(body_of(d.data))
    assert b"\r\n.leading dot =C3=A9\r\n" in b.data


def test_five_megabytes_go_in_bounded_chunks(inst, servers):
    body = big_body(5 * 1024 * 1024)
    send(inst, "big@cap.test", "big-bdat", body)
    t = captured(servers["cap.test"], "big@cap.test")
    assert t.mode == "BDAT"
    assert body_of(t.data) == wire(body, stuffed=False)
    assert t.chunks >= len(t.data) // (1024 * 1024)  # chunks of at most 1 MiB
    assert t.chunks < len(t.data) // 4096
    delivery(inst, "big@cap.test", "sent")


def test_a_large_message_is_streamed_in_chunks_not_held(inst, servers):
    body = big_body(32 * 1024 * 1024)
    send(inst, "huge@cap.test", "huge-bdat", body)
    m = inst.wait_log_re(r"^.*postern/smtp\[(\d+)\]: \w+: to=<huge@cap\.test>, .*status=sent", timeout=WAIT)
    t = captured(servers["cap.test"], "huge@cap.test")
    assert t.mode == "BDAT" and body_of(t.data) == wire(body, stuffed=False)
    # As with DATA (test_smtp_content.py): the agent's peak resident size stays far below
    # the size of the message it sent.
    status = open(f"/proc/{m.group(1)}/status").read()
    peak_kb = int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1))
    assert peak_kb < 24 * 1024, status


def test_without_pipelining_one_chunk_at_a_time(inst, servers):
    body = big_body(600 * 1024)
    send(inst, "np@nopipe.test", "nopipe-bdat", body)
    t = captured(servers["nopipe.test"], "np@nopipe.test")
    assert t.mode == "BDAT" and t.chunks > 1
    assert body_of(t.data) == wire(body, stuffed=False)
    delivery(inst, "np@nopipe.test", "sent")


def test_a_refused_chunk_fails_the_transaction_with_the_reply(inst, servers):
    body = big_body(600 * 1024)  # several chunks
    send(inst, "chunk5@refuse.test", "refused-5", body)
    send(inst, "chunk4@refuse.test", "refused-4", body)
    send(inst, "last5@refuse.test", "refused-last", "short\n")
    m = delivery(inst, "chunk5@refuse.test", "bounced")
    assert m.group(3) == "5.6.0"
    assert m.group(4) == ("host 127.0.0.1[127.0.0.1] said: 554 5.6.0 second chunk refused "
                          "(in reply to BDAT command)")
    m = delivery(inst, "chunk4@refuse.test", "deferred")
    assert m.group(3) == "4.3.1"
    assert m.group(4) == ("host 127.0.0.1[127.0.0.1] said: 452 4.3.1 out of room for chunk 2 "
                          "(in reply to BDAT command)")
    m = delivery(inst, "last5@refuse.test", "bounced")
    assert m.group(4) == ("host 127.0.0.1[127.0.0.1] said: 550 5.7.1 content refused "
                          "(in reply to BDAT LAST command)")
    # the bounce keeps the server's reply
    assert wait_for(lambda: "554 5.6.0 second chunk refused" in inst.mbox(), WAIT), inst.mbox()
    assert wait_for(lambda: "out of room for chunk 2" in inst.command("postqueue", "-p").stdout, WAIT)


def test_no_whole_message_behind_the_rset_of_a_reused_connection(tmp_path):
    # A server that refuses RSET but goes on with the transaction: had the message been
    # pipelined after the RSET, it would arrive twice (once there, once on the fresh
    # connection that a failed RSET leads to).
    odd = CaptureSmtp(keywords=("PIPELINING", "CHUNKING", "8BITMIME"), rset_reply="502 5.5.1 RSET not today")
    inst = MailInstance(tmp_path / "r", master_cf=AGENTS,
                        main_cf=f"relayhost = [127.0.0.1]:{odd.port}\nsmtp_chunking_enable = yes\n"
                                "smtp_connection_cache_destinations = 127.0.0.1\n"
                                "smtp_connection_cache_time_limit = 60s\n")
    inst.start()
    try:
        send(inst, "first@far.test", "first", "one\n")
        delivery(inst, "first@far.test", "sent")
        send(inst, "second@far.test", "second", "two\n")
        delivery(inst, "second@far.test", "sent")
        assert odd.rsets == 1  # the cached connection was tried
        got = odd.wait(lambda t: "second@far.test" in " ".join(t.rcpts))
        assert len(got) == 1 and got[0].mode == "BDAT", [t.rcpts for t in got]
    finally:
        inst.stop()
        odd.stop()


# ---- real receiving servers --------------------------------------------------------------

def relay_cf(capture_port):
    """A receiver that takes far.test and data.test mail from anyone and relays it to
    the capture with DATA."""
    return ("relay_domains = far.test, data.test\nmessage_size_limit = 0\n"
            f"transport_maps = inline:{{{{far.test=smtp:[127.0.0.1]:{capture_port}}}, "
            f"{{data.test=smtp:[127.0.0.1]:{capture_port}}}}}\n")


def sender_instance(root, port, extra=""):
    """far.test goes with BDAT, data.test (the "plain" transport) with DATA."""
    return MailInstance(root, main_cf=f"relayhost = [127.0.0.1]:{port}\nsmtp_chunking_enable = yes\n"
                                      "message_size_limit = 0\n"
                                      f"transport_maps = inline:{{{{data.test=plain:[127.0.0.1]:{port}}}}}\n"
                                      + extra, master_cf=AGENTS)


def compare_paths(sender, capture, tag):
    """The tricky and a 5 MB message, once with BDAT and once with DATA through the same
    receiver: what the receiver passed on is the same."""
    big = big_body(5 * 1024 * 1024)
    for subject, body in ((f"{tag}-tricky", TRICKY_BODY), (f"{tag}-big", big)):
        send(sender, f"{subject}@far.test", subject, body)
        send(sender, f"{subject}@data.test", subject, body)
        via_bdat = captured(capture, f"<{subject}@far.test>")
        via_data = captured(capture, f"<{subject}@data.test>")
        assert body_of(via_bdat.data) == body_of(via_data.data)
        if body is big:
            assert body_of(via_bdat.data) == wire(big, stuffed=True)
        else:
            assert b"\r\n...two dots\r\n" in via_bdat.data  # stuffed again by the receiver's DATA


def test_postern_smtpd_receives_bdat_and_the_connection_is_reused(tmp_path):
    capture = CaptureSmtp()
    port = free_port()
    receiver = MailInstance(tmp_path / "b", main_cf=relay_cf(capture.port),
                            master_cf=smtpd_service(port) + "smtp unix - - n - - smtp\n")
    sender = sender_instance(tmp_path / "a", port,
                             "smtp_connection_cache_destinations = 127.0.0.1\n"
                             "smtp_connection_cache_time_limit = 60s\n"
                             "smtp_destination_concurrency_limit = 1\n")
    receiver.start()
    sender.start()
    try:
        compare_paths(sender, capture, "pst")
        # Two more through the cached connection after a BDAT transaction.
        for n in (1, 2):
            send(sender, f"again{n}@far.test", f"again-{n}", "reused\n")
            captured(capture, f"<again{n}@far.test>")
        assert re.search(r"to=<again2@far\.test>, relay=\S+, conn_use=\d+, ", sender.log()), sender.log()
        # one connection carried several BDAT transactions
        receiver.wait_log_re(r"disconnect from \S+ ehlo=1 mail=([2-9]|\d\d+) rcpt=\1 bdat=\d+ ", timeout=WAIT)
    finally:
        sender.stop()
        receiver.stop()
        capture.stop()


@pytest.mark.skipif(bool(postfixpeer.available()), reason=postfixpeer.available() or "n/a")
def test_debian_postfix_smtpd_receives_bdat(tmp_path):
    capture = CaptureSmtp()
    port = free_port()
    peer = postfixpeer.PostfixPeer(main_cf=relay_cf(capture.port),
                                   master_cf_text=postfixpeer.master_cf(f"127.0.0.1:{port}"), name="chunking")
    sender = sender_instance(tmp_path / "a", port)
    try:
        peer.start()
        sender.start()
        compare_paths(sender, capture, "pfx")
        assert re.search(r"disconnect from \S+ ehlo=1 mail=1 rcpt=1 bdat=\d+ ", peer.log()), peer.log()
    finally:
        sender.stop()
        peer.cleanup()
        capture.stop()


# ---- LMTP -----------------------------------------------------------------------------------

@pytest.mark.skipif(bool(dovecotfixture.available()), reason=dovecotfixture.available() or "n/a")
def test_lmtp_bdat_to_dovecot_per_recipient_replies(tmp_path):
    dv = dovecotfixture.DovecotLmtp(users={"alice": None, "carol": None, "bob": "10B"})
    inst = MailInstance(tmp_path / "l", main_cf="transport_maps = inline:{{dove.test=lmtp:unix:%s}}\n"
                                                "lmtp_chunking_enable = yes\n" % dv.socket,
                        master_cf=AGENTS)
    inst.start()
    try:
        sender = f"{inst.user}@localhost"
        body = f"From: {sender}\nSubject: lmtp-bdat\n\nfirst\n.dotted line\nthe body is longer than ten bytes\n"
        p = inst.sendmail(["-f", sender, "alice@dove.test", "bob@dove.test", "carol@dove.test"], body)
        assert p.returncode == 0, p.stderr
        relay = f"host.example.test[{dv.socket}]"
        for user in ("alice", "carol"):
            m = delivery(inst, f"{user}@dove.test", "sent")
            assert re.fullmatch(r"250 2\.0\.0 <%s@dove\.test> \S+ Saved" % user, m.group(4)), m.group(4)
        m = delivery(inst, "bob@dove.test", "bounced")
        assert m.group(4) == (f"host {relay} said: 552 5.2.2 <bob@dove.test> Quota exceeded (mailbox for user "
                              "is full) (in reply to BDAT LAST command)")
        dv.wait_maildir("alice", "Subject: lmtp-bdat")
        got = dv.maildir("alice")[0]
        assert "\nfirst\n.dotted line\n" in got.replace("\r\n", "\n")
    finally:
        inst.stop()
        dv.stop()
