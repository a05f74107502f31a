"""smtpd against SMTP clients nobody here wrote, each message followed end to end into
the mailbox: swaks (pipelining, 8-bit body, attachment), Python's smtplib
(send_message, BODY=8BITMIME), Postfix's smtp-source (many sessions, many messages) and
Debian's Postfix itself as the relaying client (relayhost = [127.0.0.1]:PORT), whose
log must name the queue ID under which Postern logged the same Message-ID."""
import base64
import re
import smtplib
import subprocess
from email.message import EmailMessage

import pytest

import postfixpeer
from mailsystem import MailInstance, free_port, smtpd_service, wait_for

HOST = "host.example.test"


class Server:
    def __init__(self, inst, port):
        self.inst, self.port = inst, port
        self.rcpt = f"{inst.user}@localhost"

    def mbox(self):
        path = self.inst.mail / self.inst.user
        return path.read_bytes() if path.exists() else b""

    def messages(self):
        """The mbox split into messages (each starts with its "From " line)."""
        return [m for m in re.split(rb"(?m)^(?=From \S+ )", self.mbox()) if m]

    def message_with(self, marker):
        marker = marker.encode() if isinstance(marker, str) else marker
        assert wait_for(lambda: any(marker in m for m in self.messages()), 30), self.inst.log()
        return next(m for m in self.messages() if marker in m)

    def client(self):
        """How smtpd names 127.0.0.1 in its logs and Received: ("localhost" under Postfix,
        which reads /etc/hosts; Postern's resolver asks DNS only)."""
        m = re.search(r"connect from (\S+)\[127\.0\.0\.1\]", self.inst.log())
        assert m, self.inst.log()
        return m.group(1)

    def logged_queue_id(self, message_id):
        """The queue ID whose cleanup logged `message_id`."""
        m = wait_for(lambda: re.search(r"([0-9A-Za-z]+): message-id=<" + re.escape(message_id) + ">",
                                       self.inst.log()), 30)
        assert m, self.inst.log()
        return m.group(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    inst = MailInstance(tmp_path_factory.mktemp("interop"), master_cf=smtpd_service(port),
                        main_cf="mynetworks = 127.0.0.0/8\n")
    inst.start()
    yield Server(inst, port)
    inst.stop()


def swaks(server, *args):
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(server.port),
                        "--from", "swaks@example.org", "--to", server.rcpt, *args],
                       capture_output=True, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out + p.stderr.decode()
    return out


def test_swaks_pipelined_8bit_body(server):
    out = swaks(server, "--pipeline", "--header", "Subject: swaks interop pipelined",
                "--body", "Grüße aus Köln, 8-bit body line\n.leading dot line\n")
    # swaks saw PIPELINING and sent MAIL, RCPT and DATA in one go.
    assert "250-PIPELINING" in out
    assert re.search(r"-> MAIL FROM:<swaks@example.org>\n -> RCPT TO:<[^>]+>\n -> DATA\n", out), out
    m = re.search(r"<[-~]*\s+250 2\.0\.0 Ok: queued as (\w+)", out)
    assert m, out
    qid = m.group(1)
    msg = server.message_with("Subject: swaks interop pipelined")
    assert "Grüße aus Köln, 8-bit body line\n.leading dot line\n".encode() in msg
    assert f"with ESMTP id {qid}".encode() in msg
    log = server.inst.wait_log(f"{qid}: removed")
    assert f"{qid}: client={server.client()}[127.0.0.1]" in log
    assert re.search(rf"{qid}: to=<{server.rcpt}>.*status=sent", log)


def test_swaks_attachment_arrives_intact(server, tmp_path):
    payload = bytes(range(256)) * 40
    f = tmp_path / "blob.bin"
    f.write_bytes(payload)
    swaks(server, "--header", "Subject: swaks interop attachment", "--attach-type",
          "application/octet-stream", "--attach-name", "blob.bin", "--attach", f"@{f}",
          "--body", "see attachment")
    msg = server.message_with("Subject: swaks interop attachment").decode("latin-1")
    assert 'name="blob.bin"' in msg or "name=blob.bin" in msg
    b64 = re.search(r"Content-Transfer-Encoding: BASE64\n(?:.*\n)*?\n((?:[A-Za-z0-9+/=]+\n)+)", msg,
                    re.IGNORECASE)
    assert b64, msg[:2000]
    assert base64.b64decode(b64.group(1)) == payload


def test_smtplib_send_message_with_8bitmime(server):
    msg = EmailMessage()
    msg["From"] = "smtplib@example.org"
    msg["To"] = server.rcpt
    msg["Subject"] = "smtplib interop"
    msg["Message-ID"] = "<smtplib-interop@example.org>"
    msg.set_content("Ünïcödé body via smtplib\n", cte="8bit")
    msg.add_attachment(b"\x00\x01binary", maintype="application", subtype="octet-stream",
                       filename="x.bin")
    with smtplib.SMTP("127.0.0.1", server.port, local_hostname="smtplib.example.org") as s:
        code, text = s.ehlo()
        assert code == 250 and b"8BITMIME" in text
        refused = s.send_message(msg, mail_options=["BODY=8BITMIME"])
        assert refused == {}
    stored = server.message_with("Message-ID: <smtplib-interop@example.org>")
    assert "Ünïcödé body via smtplib".encode() in stored
    assert f"from smtplib.example.org ({server.client()} [127.0.0.1])".encode() in stored
    qid = server.logged_queue_id("smtplib-interop@example.org")
    assert f"with ESMTP id {qid}".encode() in stored


def test_smtp_source_200_messages_in_10_sessions(server):
    before = len(server.messages())
    p = postfixpeer.smtp_source(server.port, 10, 200, recipient=server.rcpt,
                                sender="source@example.org", extra=["-c"], timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip().endswith("200"), p.stdout  # -c: running count of messages sent
    assert wait_for(lambda: len(server.messages()) - before >= 200, 60), \
        f"{len(server.messages()) - before} of 200 delivered"
    assert len(server.messages()) - before == 200
    log = server.inst.log()
    assert log.count("from=<source@example.org>") == 200


def test_postfix_relays_into_postern_and_both_logs_agree(server):
    why = postfixpeer.available()
    assert not why, why
    peer = postfixpeer.PostfixPeer(main_cf=f"relayhost = [127.0.0.1]:{server.port}\n", name="relay")
    try:
        peer.start()
        body = ("From: peer@example.org\nTo: %s\nSubject: relayed by Postfix\n"
                "Message-ID: <relay-interop@example.org>\n\nrelayed body\n" % server.rcpt)
        p = peer.sendmail(["-f", "peer@example.org", server.rcpt], body)
        assert p.returncode == 0, p.stderr
        log = peer.wait_log("status=sent")
        m = re.search(r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*status=sent "
                      r"\(250 2\.0\.0 Ok: queued as (\w+)\)" % server.port, log)
        assert m, log
        qid = m.group(1)
        # Postern logged the same message under the queue ID that Postfix reported.
        assert server.logged_queue_id("relay-interop@example.org") == qid
        stored = server.message_with("Message-ID: <relay-interop@example.org>")
        assert b"relayed body" in stored
        assert f"from peer.example.test ({server.client()} [127.0.0.1])".encode() in stored
        assert f"with ESMTP id {qid}".encode() in stored
        # Postfix's own Received: line is below Postern's.
        assert stored.index(b"by peer.example.test (Postfix") > stored.index(f"id {qid}".encode())
        plog = server.inst.wait_log(f"{qid}: removed")
        assert f"{qid}: client={server.client()}[127.0.0.1]" in plog
        assert re.search(rf"{qid}: from=<peer@example.org>, size=\d+, nrcpt=1", plog)
    finally:
        peer.cleanup()
