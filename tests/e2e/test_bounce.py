"""bounce(8) end to end: an original message queued through cleanup, a delivery log
written as qmgr writes it, a request on private/bounce, and the notice that bounce
queues through cleanup, read back with postcat and parsed with Python's email package.

qmgr and pickup are left out of master.cf so the notices stay in incoming/.
"""
import email
import email.policy
import re
import socket
import time

import pytest

from conftest import postern, postfix, run
from mailsystem import MAIL_SERVICES, MailInstance, attr_call, attr_decode, attr_encode, wait_for

HOST = "host.example.test"
NOTIFY_NEVER, NOTIFY_SUCCESS, NOTIFY_FAILURE, NOTIFY_DELAY = 1, 2, 4, 8
RET_HDRS = 2

ORIGINAL = ("From: Alice <alice@example.test>\nTo: bob@remote.test\nSubject: lunch?\n"
            "\nShall we meet at noon?\nAlice\n")


def services(without=("qmgr", "pickup")):
    return [s for s in MAIL_SERVICES if s[0] not in without]


class Bouncer:
    """A running instance plus helpers to queue originals, write logs and read notices."""

    def __init__(self, root, main_cf="", without=("qmgr", "pickup")):
        # defer/ is hashed by default; flat logs let the test write them where bounce
        # (through the same Layout as qmgr) looks for them.
        main_cf = "hash_queue_names = deferred\n" + main_cf
        self.inst = MailInstance(root, main_cf=main_cf, services=services(without))
        self.inst.start()

    def stop(self):
        self.inst.stop()

    def submit(self, sender="alice@example.test", message=ORIGINAL, rcpt="bob@remote.test"):
        """Queues an original through cleanup's record stream; returns its queue ID."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(20)
        s.connect(str(self.inst.queue / "public" / "cleanup"))

        def reply():
            buf = b""
            while b"\n\n" not in buf:
                data = s.recv(65536)
                assert data, "cleanup closed the connection"
                buf += data
            return attr_decode(buf)

        with s:
            s.sendall(attr_encode(request="open", flags=0))
            assert reply()["status"] == ["0"]
            s.sendall(attr_encode(request="envelope", sender=sender, arrival_sec=0,
                                  arrival_usec=0, envid="", ret=0)[:-1]
                      + attr_encode(rcpt=rcpt, rcpt_orig="", rcpt_orcpt="",
                                    rcpt_notify=0))
            s.sendall(attr_encode(request="content", data=message))
            s.sendall(attr_encode(request="end"))
            result = reply()
        assert result["status"] == ["0"], result
        return result["queue_id"][0]

    def write_log(self, logq, qid, *entries):
        """Writes bounce/ID, defer/ID or trace/ID records as qmgr does."""
        d = self.inst.queue / logq
        d.mkdir(exist_ok=True)
        data = b""
        for e in entries:
            rec = dict(recipient="bob@remote.test", orig_rcpt="", dsn_orig_rcpt="",
                       notify_flags=0, offset=0, status="5.1.1", action="failed",
                       reason='unknown user: "bob"', relay="local", time=int(time.time()))
            rec.update(e)
            data += attr_encode(**rec)
        (d / qid).write_bytes(data)
        return d / qid

    def request(self, command, qid, sender="alice@example.test", ret=0, encoding="7bit",
                envid="", smtputf8=0, flags=0):
        return attr_call(self.inst.queue / "private" / "bounce", timeout=30, request=command,
                         queue_name="incoming", queue_id=qid, encoding=encoding,
                         smtputf8=smtputf8, sender=sender, envid=envid, ret=ret, flags=flags)

    def postcat(self, qid, flags):
        r = run([postern("postcat"), "-c", str(self.inst.conf), flags, "-q", qid])
        assert r.returncode == 0, r.stderr
        return r.stdout

    def notice(self, qid):
        """(envelope sender, envelope recipients, parsed message) of a queued notice."""
        env = self.postcat(qid, "-e").splitlines()
        sender = next(l for l in env if l.startswith("sender:"))[len("sender:"):].strip()
        rcpts = [l.split(":", 1)[1].strip() for l in env if l.startswith("recipient:")]
        text = self.postcat(qid, "-bh")
        return sender, rcpts, email.message_from_string(text, policy=email.policy.compat32)


@pytest.fixture(scope="module")
def bouncer(tmp_path_factory):
    b = Bouncer(tmp_path_factory.mktemp("bounce"))
    yield b
    b.stop()


def report_groups(msg):
    """The message/delivery-status part as (per-message fields, [per-recipient fields])."""
    parts = msg.get_payload()
    status = parts[1]
    groups = status.get_payload()
    return groups[0], groups[1:]


def test_flush_queues_an_rfc3464_non_delivery_notice(bouncer):
    qid = bouncer.submit()
    log = bouncer.write_log("bounce", qid, dict(orig_rcpt="staff@example.test"),
                            dict(recipient="carol@remote.test", status="5.2.2",
                                 reason="mailbox full", relay="mx.remote.test[192.0.2.9]:25"))
    reply = bouncer.request("flush", qid)
    assert reply["status"] == ["0"]
    new_id = reply["queue_id"][0]
    assert new_id in bouncer.inst.queue_files("incoming")
    assert f"{qid}: sender non-delivery notification: {new_id}" in bouncer.inst.log()
    assert not log.exists(), "the bounce log is removed once the notice is queued"

    sender, rcpts, msg = bouncer.notice(new_id)
    assert sender == ""
    assert rcpts == ["alice@example.test"]
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["From"] == f"MAILER-DAEMON@{HOST} (Mail Delivery System)"
    assert msg["To"] == "alice@example.test"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Message-Id"].endswith(f".{new_id}@{HOST}>")
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "message/rfc822"]

    human = parts[0].get_payload()
    assert f"This is the mail system at host {HOST}." in human
    assert "I'm sorry to have to inform you that your message could not" in human
    assert ('<bob@remote.test> (expanded from <staff@example.test>): unknown user: "bob"'
            in human)
    assert "<carol@remote.test>: mailbox full" in human

    per_msg, per_rcpt = report_groups(msg)
    assert per_msg["Reporting-MTA"] == f"dns; {HOST}"
    assert per_msg["X-Postern-Queue-ID"] == qid
    assert per_msg["X-Postern-Sender"] == "rfc822; alice@example.test"
    assert per_msg["Arrival-Date"]
    assert len(per_rcpt) == 2
    assert per_rcpt[0]["Final-Recipient"] == "rfc822; bob@remote.test"
    assert per_rcpt[0]["Original-Recipient"] == "rfc822; staff@example.test"
    assert per_rcpt[0]["Action"] == "failed"
    assert per_rcpt[0]["Status"] == "5.1.1"
    assert per_rcpt[0]["Diagnostic-Code"] == 'X-Postfix; unknown user: "bob"'
    assert per_rcpt[1]["Status"] == "5.2.2"
    assert per_rcpt[1]["Remote-MTA"] == "dns; mx.remote.test"

    returned = parts[2].get_payload(0)
    assert returned["Return-Path"] == "<alice@example.test>"
    assert returned["Subject"] == "lunch?"
    assert "Shall we meet at noon?" in returned.get_payload()


def test_notice_texts_are_postfix_default_templates(bouncer, tmp_path):
    """The human-readable part is postconf -b's text of Debian's Postfix, expanded."""
    conf = tmp_path / "pf"
    conf.mkdir()
    (conf / "main.cf").write_text(f"myhostname = {HOST}\n")
    r = run([postfix("postconf"), "-c", str(conf), "-b"])
    assert r.returncode == 0 and r.stdout, r.stderr
    templates = dict(re.findall(r"^(\w+) = <<EOF\n(.*?)^EOF$", r.stdout, re.M | re.S))
    qid = bouncer.submit()
    bouncer.write_log("bounce", qid, {})
    failure = bouncer.notice(bouncer.request("flush", qid)["queue_id"][0])[2]
    assert failure.get_payload()[0].get_payload().startswith(templates["expanded_failure_text"])
    qid = bouncer.submit()
    bouncer.write_log("trace", qid, dict(notify_flags=NOTIFY_SUCCESS, status="2.0.0",
                                         action="delivered", reason="delivered"))
    success = bouncer.notice(bouncer.request("trace", qid)["queue_id"][0])[2]
    assert success.get_payload()[0].get_payload().startswith(templates["expanded_success_text"])
    qid = bouncer.submit()
    bouncer.write_log("defer", qid, dict(status="4.4.1", action="delayed", reason="timed out"))
    delay = bouncer.notice(bouncer.request("warn", qid)["queue_id"][0])[2]
    assert delay.get_payload()[0].get_payload().startswith(templates["expanded_delay_text"])


def test_ret_hdrs_returns_only_the_headers(bouncer):
    qid = bouncer.submit()
    bouncer.write_log("bounce", qid, {})
    reply = bouncer.request("flush", qid, ret=RET_HDRS)
    _, _, msg = bouncer.notice(reply["queue_id"][0])
    part = msg.get_payload()[2]
    assert part.get_content_type() == "text/rfc822-headers"
    assert part["Content-Description"] == "Undelivered Message Headers"
    text = part.get_payload()
    assert "Subject: lunch?" in text
    assert "Shall we meet" not in text


def test_notify_never_and_notify_without_failure_get_no_notice(bouncer):
    qid = bouncer.submit()
    log = bouncer.write_log("bounce", qid, dict(notify_flags=NOTIFY_NEVER),
                            dict(notify_flags=NOTIFY_SUCCESS | NOTIFY_DELAY))
    before = bouncer.inst.queue_files("incoming")
    reply = bouncer.request("flush", qid)
    assert reply == {"status": ["0"], "queue_id": [""]}
    assert bouncer.inst.queue_files("incoming") == before
    assert not log.exists()


def test_only_recipients_that_asked_for_failure_notices_are_listed(bouncer):
    qid = bouncer.submit()
    bouncer.write_log("bounce", qid, dict(notify_flags=NOTIFY_NEVER),
                      dict(recipient="dave@remote.test", notify_flags=NOTIFY_FAILURE))
    reply = bouncer.request("flush", qid)
    _, per_rcpt = report_groups(bouncer.notice(reply["queue_id"][0])[2])
    assert [g["Final-Recipient"] for g in per_rcpt] == ["rfc822; dave@remote.test"]


def test_expired_mail_is_bounced_from_the_defer_log(bouncer):
    qid = bouncer.submit()
    log = bouncer.write_log("defer", qid, dict(status="4.4.1", action="delayed",
                                               reason="connect to mx.remote.test: timed out"))
    reply = bouncer.request("defer_flush", qid)
    assert reply["status"] == ["0"]
    _, per_rcpt = report_groups(bouncer.notice(reply["queue_id"][0])[2])
    assert per_rcpt[0]["Action"] == "failed"
    # the last deferral's status, as Debian's Postfix 3.7 writes it (test_multihost.py)
    assert per_rcpt[0]["Status"] == "4.4.1"
    assert not log.exists()


def test_warn_sends_a_delay_notice_and_keeps_the_log(bouncer):
    qid = bouncer.submit()
    log = bouncer.write_log("defer", qid, dict(status="4.4.1", action="delayed",
                                               reason="connect to mx.remote.test: timed out"))
    reply = bouncer.request("warn", qid)
    new_id = reply["queue_id"][0]
    assert f"{qid}: sender delay notification: {new_id}" in bouncer.inst.log()
    assert log.exists()
    _, _, msg = bouncer.notice(new_id)
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    assert "THIS IS A WARNING ONLY" in msg.get_payload()[0].get_payload()
    _, per_rcpt = report_groups(msg)
    assert per_rcpt[0]["Action"] == "delayed"
    assert per_rcpt[0]["Status"] == "4.4.1"
    assert per_rcpt[0]["Will-Retry-Until"]
    assert msg.get_payload()[2].get_content_type() == "text/rfc822-headers"


def test_trace_sends_a_success_notice(bouncer):
    qid = bouncer.submit()
    log = bouncer.write_log("trace", qid, dict(notify_flags=NOTIFY_SUCCESS, status="2.0.0",
                                               action="delivered",
                                               reason="delivered to mailbox"))
    reply = bouncer.request("trace", qid)
    new_id = reply["queue_id"][0]
    assert f"{qid}: sender delivery status notification: {new_id}" in bouncer.inst.log()
    assert not log.exists()
    _, _, msg = bouncer.notice(new_id)
    assert msg["Subject"] == "Successful Mail Delivery Report"
    _, per_rcpt = report_groups(msg)
    assert per_rcpt[0]["Action"] == "delivered"
    assert per_rcpt[0]["Status"] == "2.0.0"


def test_eight_bit_original_is_declared_8bit(bouncer):
    qid = bouncer.submit(message="Subject: caf\u00e9\n\nna\u00efve body\n")
    bouncer.write_log("bounce", qid, {})
    reply = bouncer.request("flush", qid, encoding="8bit")
    _, _, msg = bouncer.notice(reply["queue_id"][0])
    assert msg["Content-Transfer-Encoding"] == "8bit"
    assert msg.get_payload()[2]["Content-Transfer-Encoding"] == "8bit"


def test_a_bounce_of_a_bounce_is_dropped_by_default(bouncer):
    qid = bouncer.submit(sender="")
    log = bouncer.write_log("bounce", qid, {})
    before = bouncer.inst.queue_files("incoming")
    reply = bouncer.request("flush", qid, sender="")
    assert reply == {"status": ["0"], "queue_id": [""]}
    assert bouncer.inst.queue_files("incoming") == before
    assert not log.exists()


def test_undeliverable_postmaster_notice_is_discarded(bouncer):
    qid = bouncer.submit(sender=f"double-bounce@{HOST}")
    bouncer.write_log("bounce", qid, {})
    reply = bouncer.request("flush", qid, sender=f"double-bounce@{HOST}")
    assert reply == {"status": ["0"], "queue_id": [""]}
    assert f"{qid}: undeliverable postmaster notification discarded" in bouncer.inst.log()


def test_notify_classes_send_postmaster_copies_and_double_bounces(tmp_path):
    b = Bouncer(tmp_path, main_cf="notify_classes = bounce, delay\n")
    try:
        # A single bounce: the sender's notice plus a headers-only postmaster copy.
        qid = b.submit()
        b.write_log("bounce", qid, {})
        reply = b.request("flush", qid)
        assert reply["status"] == ["0"]
        log = b.inst.log()
        assert f"{qid}: sender non-delivery notification: {reply['queue_id'][0]}" in log
        copy_id = log.split(f"{qid}: postmaster non-delivery notification: ")[1].split()[0]
        sender, rcpts, msg = b.notice(copy_id)
        assert sender == f"double-bounce@{HOST}"
        assert rcpts == [f"postmaster@{HOST}"]
        assert msg["Subject"] == "Postmaster Copy: Undelivered Mail"
        assert msg["Auto-Submitted"] == "auto-generated"
        assert msg.get_payload()[2].get_content_type() == "text/rfc822-headers"
        assert "I'm sorry" not in msg.get_payload()[0].get_payload()

        # NOTIFY=NEVER spares the sender, not the postmaster.
        qid4 = b.submit()
        b.write_log("bounce", qid4, dict(notify_flags=NOTIFY_NEVER))
        assert b.request("flush", qid4) == {"status": ["0"], "queue_id": [""]}
        assert f"{qid4}: postmaster non-delivery notification: " in b.inst.log()
        assert f"{qid4}: sender non-delivery notification" not in b.inst.log()

        # A double bounce: the failed notice goes to the postmaster, whole.
        qid2 = b.submit(sender="")
        b.write_log("bounce", qid2, {})
        reply2 = b.request("flush", qid2, sender="")
        new_id = reply2["queue_id"][0]
        assert f"{qid2}: postmaster non-delivery notification: {new_id}" in b.inst.log()
        sender, rcpts, msg = b.notice(new_id)
        assert (sender, rcpts) == (f"double-bounce@{HOST}", [f"postmaster@{HOST}"])
        assert msg.get_payload()[2].get_content_type() == "message/rfc822"
        assert report_groups(msg)[0]["X-Postern-Sender"] == "rfc822; MAILER-DAEMON"

        # A delay warning: the sender's notice plus a postmaster warning.
        qid3 = b.submit()
        b.write_log("defer", qid3, dict(status="4.4.1", action="delayed", reason="timed out"))
        b.request("warn", qid3)
        assert f"{qid3}: postmaster delay notification: " in b.inst.log()
    finally:
        b.stop()


def test_a_notice_that_cannot_be_queued_fails_the_request(tmp_path):
    b = Bouncer(tmp_path, without=("qmgr", "pickup", "cleanup"))
    try:
        (b.inst.queue / "incoming" / "4AbCdEf0001").write_bytes(b"")
        log = b.write_log("bounce", "4AbCdEf0001", {})
        reply = b.request("flush", "4AbCdEf0001")
        assert reply["status"] == ["1"]
        assert log.exists(), "the log stays for the next attempt"
        assert "sender non-delivery notification not sent" in b.inst.log()
    finally:
        b.stop()


def test_mail_to_an_unknown_local_user_comes_back_to_the_sender(tmp_path):
    """The whole path: local bounces, qmgr hands the log to bounce, the notice is
    delivered to the sender's mailbox."""
    b = Bouncer(tmp_path, without=("pickup",))
    try:
        qid = b.submit(sender=f"{b.inst.user}@{HOST}", rcpt=f"nosuchuser@{HOST}")
        mbox = b.inst.mail / b.inst.user
        assert wait_for(lambda: mbox.exists() and "--\n" in mbox.read_text()), b.inst.log()
        log = b.inst.log()
        assert f'{qid}: to=<nosuchuser@{HOST}>, relay=local' in log
        assert f"{qid}: sender non-delivery notification: " in log
        text = mbox.read_text()
        msg = email.message_from_string(text.split("\n", 1)[1], policy=email.policy.compat32)
        assert msg["Return-Path"] == "<>"
        assert msg["Subject"] == "Undelivered Mail Returned to Sender"
        _, per_rcpt = report_groups(msg)
        assert per_rcpt[0]["Final-Recipient"] == f"rfc822; nosuchuser@{HOST}"
        assert per_rcpt[0]["Status"] == "5.1.1"
        assert msg.get_payload()[2].get_payload(0)["Subject"] == "lunch?"
    finally:
        b.stop()


def test_bounce_template_file_changes_the_notice_text(tmp_path):
    templates = tmp_path / "bounce.cf"
    templates.write_text("failure_template = <<EOF\n"
                         "Subject: Returned: $headers are not expanded\n"
                         "\n"
                         "Mail for you at $myhostname bounced; we kept trying for\n"
                         "$maximal_queue_lifetime_days days.\n"
                         "EOF\n")
    b = Bouncer(tmp_path / "inst", main_cf=f"bounce_template_file = {templates}\n")
    try:
        qid = b.submit()
        b.write_log("bounce", qid, {})
        _, _, msg = b.notice(b.request("flush", qid)["queue_id"][0])
        assert msg["Subject"] == "Returned: $headers are not expanded"
        human = msg.get_payload()[0].get_payload()
        assert human.startswith(f"Mail for you at {HOST} bounced; we kept trying for\n5 days.\n")
        assert '<bob@remote.test>: unknown user: "bob"' in human
    finally:
        b.stop()
