"""Postern between hosts (issue 6), on the multi-host fixture (netns.py): Postern's
sendmail on host A reaches a user of Postern on host B by MX; NOTIFY=SUCCESS brings B's
"delivered" notice back to A (B announces DSN), and a server without DSN makes A send
its own "relayed" notice; with B down the mail defers with Postfix's connection error in
mailq and goes out after B is up and `postqueue -f`; with maximal_queue_lifetime = 0
(one attempt) the sender gets a bounce naming the connection error; Debian's Postfix on
C and Postern on A and B exchange mail and both sides log the same queue ID. Where a
test says "in Postfix words" it was compared with Debian's Postfix under the same
conditions."""
import re

from mailsystem import wait_for
from netns import NET, ScriptedSmtp
from netns import hosts, network  # noqa: F401 (the fixtures)

B_ADDR = re.escape(f"{NET}.20")
RCPT_USER = "nobody"    # a local user Debian's Postfix can deliver to


def message(subject, sender):
    return f"From: {sender}\nTo: x\nSubject: {subject}\n\nbody of {subject}\n"


def mailbox_has(instance, subject, timeout=60):
    return wait_for(lambda: f"Subject: {subject}\n" in instance.mbox(), timeout)


def send_with_notify_success(pa, rcpt, subject):
    sender = f"{pa.user}@a.test"
    r = pa.sendmail(["-f", sender, "-N", "success", rcpt], message(subject, sender))
    assert r.returncode == 0, r.stderr


def success_notices(instance):
    """The DSN success notices in instance's mbox, one text each."""
    return [m for m in re.split(r"^From ", instance.mbox(), flags=re.M)
            if "Subject: Successful Mail Delivery Report" in m]


def test_sendmail_on_a_reaches_a_user_on_b_by_mx(network, hosts):
    pb = hosts.postern(network.b)
    pa = hosts.postern(network.a)
    rcpt = f"{pb.user}@b.test"
    send_with_notify_success(pa, rcpt, "a to b notify")
    sent = pa.wait_log_re(rf"to=<{re.escape(rcpt)}>, relay=mx\.b\.test\[{B_ADDR}\]:25,"
                          r".*status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)", timeout=60)
    assert mailbox_has(pb, "a to b notify"), pb.log() + pa.log()
    mbox_b = pb.mbox()
    assert f"from mx.a.test (mx.a.test [{NET}.10])" in mbox_b, mbox_b
    assert "body of a to b notify" in mbox_b
    qid = sent.group(1)
    assert re.search(rf"{qid}: client=mx\.a\.test\[{NET}\.10\]", pb.log()), pb.log()
    pb.wait_log_re(rf"{qid}: to=<{re.escape(rcpt)}>, relay=local,.*status=sent")
    # B announces DSN, so A passed NOTIFY=SUCCESS on and B, the final MTA, sends the
    # "delivered" notice back to the sender on A (by MX, through A's smtpd).
    pb.wait_log_re(rf"{qid}: sender delivery status notification: \w+")
    assert wait_for(lambda: any("Action: delivered" in m for m in success_notices(pa)), 60), \
        pa.log() + pb.log()
    notice = next(m for m in success_notices(pa) if "Action: delivered" in m)
    assert "Reporting-MTA: dns; mx.b.test" in notice, notice
    assert f"<{rcpt}>: delivery via local: delivered to mailbox" in notice, notice  # trace_append()
    assert re.search(rf"^Final-Recipient: rfc822; {re.escape(rcpt)}$", notice, re.M), notice


def test_no_relayed_notice_when_the_next_hop_announces_dsn(network, hosts):
    pb = hosts.postern(network.b)
    pa = hosts.postern(network.a)
    rcpt = f"{pb.user}@b.test"
    send_with_notify_success(pa, rcpt, "dsn passed on")
    pa.wait_log_re(rf"to=<{re.escape(rcpt)}>, relay=mx\.b\.test.*status=sent", timeout=60)
    assert wait_for(lambda: any("Action: delivered" in m for m in success_notices(pa)), 60), \
        pa.log() + pb.log()
    # Everything A queued has been delivered: no notice of A's own is still coming.
    assert queue_empties(pa), pa.command("postqueue", "-p").stdout
    notices = success_notices(pa)
    assert len(notices) == 1 and "Reporting-MTA: dns; mx.b.test" in notices[0], notices
    assert not re.search(r"sender delivery status notification", pa.log()), pa.log()


def relayed_notice(network, pa):
    """Postern on A sends with NOTIFY=SUCCESS to a server on C that announces no DSN:
    A's own success notice, action relayed."""
    rcpt = "bob@c.test"
    with ScriptedSmtp(network.c) as fake:
        send_with_notify_success(pa, rcpt, "relayed to c")
        sent = pa.wait_log_re(rf"to=<{rcpt}>, relay=mx\.c\.test\[{NET}\.30\]:25,"
                              r".*status=sent \(250 2\.0\.0 Ok: queued\)", timeout=60)
        assert [c for c in fake.commands if c.startswith("RCPT")] == [f"RCPT TO:<{rcpt}>"]
    qid = re.search(r"(\w+): to=<", sent.string[:sent.end()].splitlines()[-1]).group(1)
    pa.wait_log_re(rf"{qid}: sender delivery status notification: \w+", timeout=60)
    assert wait_for(lambda: success_notices(pa), 60), pa.log()
    return rcpt, success_notices(pa)[0]


def test_success_notice_for_a_relayed_recipient(network, hosts):
    pa = hosts.postern(network.a)
    rcpt, notice = relayed_notice(network, pa)
    assert "Your message was successfully delivered to the destination(s)" in notice, notice
    assert re.search(r"^Action: relayed$", notice, re.M), notice
    assert re.search(rf"^Final-Recipient: rfc822; {rcpt}$", notice, re.M), notice
    assert re.search(r"^Status: 2\.0\.0$", notice, re.M), notice
    assert re.search(r"^Remote-MTA: dns; mx\.c\.test$", notice, re.M), notice
    assert "Reporting-MTA: dns; mx.a.test" in notice, notice


def test_relayed_notice_in_postfix_words(network, hosts):
    """Compared with Debian's Postfix 3.7 sending to the same scripted server."""
    pa = hosts.postern(network.a)
    rcpt, notice = relayed_notice(network, pa)
    assert f"<{rcpt}>: delivery via mx.c.test[{NET}.30]:25: 250 2.0.0 Ok: queued" in notice, \
        notice
    assert re.search(r"^Diagnostic-Code: smtp; 250 2\.0\.0 Ok: queued$", notice, re.M), notice


def test_relayed_notice_original_recipient_in_postfix_words(network, hosts):
    """As Debian's Postfix: cleanup gives a recipient without ORCPT the DSN original
    recipient "rfc822;ADDR", which the notice shows as it is."""
    pa = hosts.postern(network.a)
    rcpt, notice = relayed_notice(network, pa)
    assert re.search(rf"^Original-Recipient: rfc822;{rcpt}$", notice, re.M), notice


def send_and_see_deferral(pa, sender, rcpt, subject):
    """Sends while B is down; A defers with Postfix's words for a host that is off."""
    r = pa.sendmail(["-f", sender, rcpt], message(subject, sender))
    assert r.returncode == 0, r.stderr
    pa.wait_log_re(rf"to=<{re.escape(rcpt)}>, relay=none,.*status=deferred "
                   rf"\(connect to mx\.b\.test\[{B_ADDR}\]:25: No route to host\)",
                   timeout=60)


def queue_empties(instance):
    return wait_for(lambda: instance.command("postqueue", "-p").stdout.strip()
                    == "Mail queue is empty", 60)


def test_b_down_defers_then_postqueue_f_delivers(network, hosts):
    pb = hosts.postern(network.b)
    pa = hosts.postern(network.a)
    sender, rcpt = f"{pa.user}@a.test", f"{pb.user}@b.test"
    network.b.down()
    try:
        send_and_see_deferral(pa, sender, rcpt, "b was down")
        listing = pa.command("postqueue", "-p").stdout
        assert f"(connect to mx.b.test[{NET}.20]:25: No route to host)" in listing, listing
        assert rcpt in listing, listing
        assert "b was down" not in pb.mbox()
    finally:
        network.b.up()
    r = pa.command("postqueue", "-f")
    assert r.returncode == 0, r.stderr
    assert mailbox_has(pb, "b was down"), pb.log() + pa.log()
    pa.wait_log_re(rf"to=<{re.escape(rcpt)}>, relay=mx\.b\.test\[{B_ADDR}\]:25,.*status=sent")
    assert queue_empties(pa), pa.command("postqueue", "-p").stdout


def expired_bounce(network, hosts):
    """Postern on A with maximal_queue_lifetime = 0 (Postfix: "delivery should be tried
    only once") sends to B while B is down: one deferral, then the message expires and
    goes back to the sender on A. The bounce, unfolded."""
    pb = hosts.postern(network.b)
    pa = hosts.postern(network.a, main_cf="maximal_queue_lifetime = 0\n"
                       "bounce_queue_lifetime = 0\n")
    sender, rcpt = f"{pa.user}@a.test", f"{pb.user}@b.test"
    network.b.down()
    try:
        send_and_see_deferral(pa, sender, rcpt, "b never came back")
        pa.wait_log_re(rf"from=<{re.escape(sender)}>, status=expired, returned to sender",
                       timeout=60)
        pa.wait_log_re(r"sender non-delivery notification: \w+", timeout=60)
        assert wait_for(lambda: "Undelivered Mail Returned to Sender" in pa.mbox(), 60), \
            pa.log() + pa.mbox()
    finally:
        network.b.up()
    assert queue_empties(pa), pa.command("postqueue", "-p").stdout
    assert "b never came back" not in pb.mbox()
    return rcpt, re.sub(r"\n[ \t]+", " ", pa.mbox())


def test_queue_lifetime_expiry_bounces_with_the_connection_error(network, hosts):
    rcpt, bounce = expired_bounce(network, hosts)
    assert f"<{rcpt}>: connect to mx.b.test[{NET}.20]:25: No route to host" in bounce, bounce
    assert re.search(r"^Action: failed$", bounce, re.M), bounce
    assert re.search(rf"^Diagnostic-Code: X-Postfix; connect to mx\.b\.test\[{B_ADDR}\]:25: "
                     r"No route to host$", bounce, re.M), bounce
    assert "Subject: b never came back" in bounce     # the returned message


def test_expired_bounce_keeps_the_deferral_status(network, hosts):
    """Compared with Debian's Postfix under the same settings and the same dead host."""
    rcpt, bounce = expired_bounce(network, hosts)
    assert re.search(r"^Status: 4\.4\.1$", bounce, re.M), bounce


def test_postfix_c_to_postern_b_and_postern_a_to_postfix_c_logs_agree(network, hosts):
    pc = hosts.postfix(network.c)
    pb = hosts.postern(network.b)
    pa = hosts.postern(network.a)
    # Postfix on C to Postern on B.
    to_b = f"{pb.user}@b.test"
    r = pc.sendmail(["-f", "carol@c.test", to_b], message("postfix c to postern b",
                                                          "carol@c.test"))
    assert r.returncode == 0, r.stderr
    sent = pc.wait_log_re(rf"to=<{re.escape(to_b)}>, relay=mx\.b\.test\[{B_ADDR}\]:25,"
                          r".*status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)")
    qid_b = sent.group(1)
    assert mailbox_has(pb, "postfix c to postern b"), pb.log() + pc.log()
    assert re.search(rf"{qid_b}: client=mx\.c\.test\[{NET}\.30\]", pb.log()), pb.log()
    pb.wait_log_re(rf"{qid_b}: to=<{re.escape(to_b)}>, relay=local,.*status=sent")
    c_qid = re.search(r"(\w+): to=<" + re.escape(to_b), sent.string[:sent.end()]
                      .splitlines()[-1]).group(1)
    assert re.search(rf"{c_qid}: from=<carol@c\.test>", pc.log()), pc.log()
    # Postern on A to Postfix on C.
    sender, to_c = f"{pa.user}@a.test", f"{RCPT_USER}@c.test"
    r = pa.sendmail(["-f", sender, to_c], message("postern a to postfix c", sender))
    assert r.returncode == 0, r.stderr
    sent = pa.wait_log_re(rf"to=<{re.escape(to_c)}>, relay=mx\.c\.test\[{NET}\.30\]:25,"
                          r".*status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)", timeout=60)
    qid_c = sent.group(1)
    assert wait_for(lambda: "Subject: postern a to postfix c\n" in pc.mbox(RCPT_USER), 60), \
        pc.log()
    assert re.search(rf"{qid_c}: client=mx\.a\.test\[{NET}\.10\]", pc.log()), pc.log()
    pc.wait_log_re(rf"{qid_c}: to=<{re.escape(to_c)}>, relay=local,.*status=sent")
    a_qid = re.search(r"(\w+): to=<" + re.escape(to_c), sent.string[:sent.end()]
                      .splitlines()[-1]).group(1)
    assert re.search(rf"{a_qid}: from=<{re.escape(sender)}>", pa.log()), pa.log()
    # Received headers name the other side's queue ID as "with ESMTP id".
    assert f"id {qid_b}" in pb.mbox(), pb.mbox()
    assert f"id {qid_c}" in pc.mbox(RCPT_USER), pc.mbox(RCPT_USER)
    # Each client said QUIT: both servers log the whole session alike.
    pb.wait_log_re(rf"disconnect from mx\.c\.test\[{NET}\.30\] ehlo=1 mail=1 rcpt=1 data=1 "
                   r"quit=1 commands=5")
    pc.wait_log_re(rf"disconnect from mx\.a\.test\[{NET}\.10\] ehlo=1 mail=1 rcpt=1 data=1 "
                   r"quit=1 commands=5")


def test_postern_client_says_quit(network, hosts):
    """As Debian's Postfix, Postern's smtp(8) sends QUIT after the message."""
    pa = hosts.postern(network.a)
    sender = f"{pa.user}@a.test"
    with ScriptedSmtp(network.c) as fake:
        r = pa.sendmail(["-f", sender, "bob@c.test"], message("quit after data", sender))
        assert r.returncode == 0, r.stderr
        pa.wait_log_re(r"to=<bob@c\.test>, relay=mx\.c\.test.*status=sent", timeout=60)
        assert wait_for(lambda: "QUIT" in fake.commands, 30), fake.commands
