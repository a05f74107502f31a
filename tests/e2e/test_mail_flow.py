"""The whole local mail flow on a running sandbox instance: sendmail -> postdrop ->
maildrop -> pickup -> cleanup -> incoming -> qmgr -> local -> Maildir/mbox, with the
log records pflogsumm reads, mailq on the way, and a stop/start that keeps the queue.
"""
import email
import os
import subprocess

import pytest

from conftest import postern, run
from mailsystem import MailInstance, wait_for


@pytest.fixture
def inst(tmp_path):
    i = MailInstance(tmp_path / "flow", main_cf=f"mail_spool_directory = {tmp_path}/flow/mail/\n")
    i.start()
    yield i
    i.stop()


def maildir_messages(inst):
    new = inst.root / "mail" / inst.user / "new"
    if not new.is_dir():
        return []
    return [email.message_from_bytes(f.read_bytes()) for f in sorted(new.iterdir())]


def test_echo_to_sendmail_lands_in_the_maildir_with_correct_headers(inst):
    r = inst.sendmail([inst.user], "hi\n")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: maildir_messages(inst))
    [msg] = maildir_messages(inst)
    addr = f"{inst.user}@host.example.test"
    assert msg["Return-Path"] == f"<{addr}>"
    assert msg["Delivered-To"] == addr
    assert msg["Received"].startswith("by host.example.test (Postern, from userid %d)"
                                      % os.getuid())
    assert msg["Message-Id"].endswith("@host.example.test>")
    assert msg["Date"]
    assert addr in msg["From"]
    assert msg.get_payload() == "hi\n"
    log = inst.wait_log("removed")
    # pickup logs the sender as submitted (unqualified), as Postfix does.
    for record in ("pickup[", "uid=%d from=<%s>" % (os.getuid(), inst.user), "message-id=<",
                   f"from=<{addr}>, size=", "nrcpt=1 (queue active)",
                   f"to=<{addr}>, orig_to=<{inst.user}>, relay=local",
                   "status=sent (delivered to maildir)"):
        assert record in log, log


def test_sendmail_t_takes_recipients_from_headers_and_strips_bcc(inst):
    message = (f"From: Sender <{inst.user}@localhost>\nTo: {inst.user}@localhost\n"
               f"Bcc: {inst.user}@host.example.test\nSubject: extract\n\nbody\n")
    r = inst.sendmail(["-t", "-i"], message)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: len(maildir_messages(inst)) == 2)
    for msg in maildir_messages(inst):
        assert msg["Subject"] == "extract"
        assert msg["Bcc"] is None
    assert {m["Delivered-To"] for m in maildir_messages(inst)} == {
        f"{inst.user}@localhost", f"{inst.user}@host.example.test"}


def test_unknown_local_user_bounces_to_the_sender(inst):
    r = inst.sendmail(["-f", f"{inst.user}@localhost", "nosuchuser-xyz@localhost"],
                      "Subject: lost\n\ntext\n")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: maildir_messages(inst), timeout=30)
    [notice] = maildir_messages(inst)
    assert notice["Subject"] == "Undelivered Mail Returned to Sender"
    assert notice.get_content_type() == "multipart/report"
    log = inst.log()
    assert "nosuchuser-xyz@localhost" in log and "status=bounced" in log
    assert "sender non-delivery notification:" in log


def test_mailq_shows_queued_mail_and_then_an_empty_queue(inst):
    inst.stop()
    r = inst.sendmail(["-f", f"{inst.user}@localhost", f"{inst.user}@localhost"],
                      "Subject: queued\n\nwhile stopped\n")
    assert r.returncode == 0, r.stderr
    q = run([postern("mailq")], env={"MAIL_CONFIG": str(inst.conf)})
    assert q.returncode == 0, q.stderr
    assert q.stdout.startswith("-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n")
    assert f"{inst.user}@localhost" in q.stdout
    assert "in 1 Request." in q.stdout
    inst.start()
    assert wait_for(lambda: maildir_messages(inst))
    assert wait_for(lambda: "Mail queue is empty" in run(
        [postern("mailq")], env={"MAIL_CONFIG": str(inst.conf)}).stdout)


def test_pflogsumm_counts_what_the_maillog_records(inst):
    for n in range(3):
        assert inst.sendmail([inst.user], f"Subject: n{n}\n\nx\n").returncode == 0
    inst.wait_log("removed", count=3)
    # Postern logs as "postern/..." (syslog_name); pflogsumm is told so, as for any
    # Postfix instance with its own syslog_name.
    out = subprocess.run(["/usr/sbin/pflogsumm", "--syslog-name=postern", str(inst.maillog)],
                         capture_output=True, text=True, timeout=60).stdout
    lines = {" ".join(l.split()[1:]): l.split()[0] for l in out.splitlines()
             if l.strip() and l.split()[0].isdigit()}
    assert lines.get("received") == "3", out
    assert lines.get("delivered") == "3", out


def test_sendmail_bv_mails_a_status_report_and_delivers_nothing(inst):
    me = f"{inst.user}@localhost"
    r = inst.sendmail(["-bv", "-f", me, me, "nosuchuser-xyz@localhost"], "")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: maildir_messages(inst), timeout=30)
    log = inst.wait_log("removed")
    [report] = maildir_messages(inst)
    assert report["Subject"] == "Mail Delivery Status Report"
    assert report.get_content_type() == "multipart/report"
    status = next(p for p in report.walk() if p.get_content_type() == "message/delivery-status")
    text = status.as_string()
    assert "Action: deliverable" in text and "Action: undeliverable" in text, text
    assert "status=deliverable (delivers to maildir)" in log
    assert "status=undeliverable" in log
    assert "sender delivery status notification:" in log
    # What-if only: neither a delivery nor a bounce happened.
    assert "status=sent" not in log.split("sender delivery status notification")[0]
    assert "sender non-delivery notification" not in log


def test_sendmail_v_delivers_and_mails_a_report_of_the_attempt(inst):
    me = f"{inst.user}@localhost"
    r = inst.sendmail(["-v", "-f", me, me], "Subject: traced\n\nbody\n")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: len(maildir_messages(inst)) == 2, timeout=30)
    subjects = sorted(m["Subject"] for m in maildir_messages(inst))
    assert subjects == ["Mail Delivery Status Report", "traced"]
    report = next(m for m in maildir_messages(inst) if m.get_content_type() == "multipart/report")
    status = next(p for p in report.walk() if p.get_content_type() == "message/delivery-status")
    assert "Action: delivered" in status.as_string()


def test_locally_submitted_mail_that_checks_reject_bounces_to_the_sender(tmp_path):
    """Postfix's cleanup_bounce: sendmail has already exited 0, so a header_checks or
    body_checks rejection becomes a non-delivery notice, not a stuck maildrop file."""
    checks = tmp_path / "header_checks"
    checks.write_text("/^Subject: forbidden/ REJECT 5.7.1 no forbidden subjects here\n")
    (tmp_path / "body_checks").write_text("/^attack at dawn/ REJECT\n")
    inst = MailInstance(tmp_path / "rej", main_cf=(
        f"mail_spool_directory = {tmp_path}/rej/mail/\n"
        f"header_checks = regexp:{checks}\nbody_checks = regexp:{tmp_path}/body_checks\n"))
    inst.start()
    try:
        me = f"{inst.user}@localhost"
        assert inst.sendmail(["-f", me, me], "Subject: forbidden fruit\n\nbody\n").returncode == 0
        assert inst.sendmail(["-f", me, me], "Subject: plans\n\nattack at dawn\n").returncode == 0
        assert wait_for(lambda: len(maildir_messages(inst)) == 2, timeout=30)
        log = inst.wait_log("removed", count=4)
        notices = maildir_messages(inst)
        assert [m["Subject"] for m in notices] == ["Undelivered Mail Returned to Sender"] * 2
        texts = [n.as_string() for n in notices]
        assert any("no forbidden subjects here" in t for t in texts), texts
        assert "dsn=5.7.1, status=bounced (no forbidden subjects here)" in log
        assert "dsn=5.7.1, status=bounced (message content rejected)" in log
        assert not list((inst.queue / "maildrop").iterdir())
    finally:
        inst.stop()
