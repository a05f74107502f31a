"""local(8) end to end: the test plays qmgr. It writes a queue file into active/,
sends a request=deliver record to private/local and checks the reply, the mailbox or
maildir contents and the maillog record, as Postfix's local(8) would leave them."""
import os
import pwd
import shutil
import stat
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD, run, postern
from mailsystem import MAIL_SERVICES, MailInstance, RecordServer, attr_call, queue_record, wait_for

USER = pwd.getpwuid(os.getuid()).pw_name
DOMAIN = "host.example.test"
_counter = [0]


record = queue_record


def queue_file(sender, recipients, lines):
    """A complete queue file in Postfix's record layout (util/queue/record.h)."""
    now = int(time.time())
    env = record("T", f"{now} 0") + record("A", f"create_time={now}") + record("S", sender)
    env += record("A", "rewrite_context=local")
    for r in recipients:
        env += record("O", r) + record("R", r)
    env += record("M", "")
    size_len = 2 + 95
    data_offset = size_len + len(env)
    content = b"".join(record("N", line) for line in lines)
    content_length = sum(len(line.encode()) + 1 for line in lines)
    tail = record("X", "") + record("E", "")
    sizes = "%15d %15d %15d %15d %15d %15d" % (len(content), data_offset, len(recipients),
                                                0, content_length, 0)
    return record("C", sizes) + env + content + tail, data_offset, len(content)


def local_services(*extra):
    names = ("local",) + extra
    return [s for s in MAIL_SERVICES if s[0] in names]


@pytest.fixture
def world_dir():
    """A directory that default_privs (nobody, when the tests run as root) may write."""
    d = Path(tempfile.mkdtemp(prefix="postern-local-"))
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def start(tmp_path, main_cf="", aliases="", extra=()):
    inst = MailInstance(tmp_path, main_cf=main_cf, services=local_services(*extra))
    if aliases:
        (inst.conf / "aliases").write_text(f"postmaster: {USER}\n" + aliases)
    inst.start()
    assert wait_for(lambda: inst.socket_path("private/local").exists())
    return inst


def start_with_forward(tmp_path, text, forward_path="{dir}/fwd.$user"):
    """An instance whose forward_path finds `text` as the user's .forward."""
    fwd = tmp_path / "forward"
    fwd.mkdir()
    (fwd / f"fwd.{USER}").write_text(text)
    return start(tmp_path, "forward_path = %s\n" % forward_path.format(dir=fwd))


def deliver(inst, recipients, lines, sender="sender@example.com", flags=0):
    _counter[0] += 1
    qid = "%X%05X" % (os.getpid() & 0xFFFF, _counter[0])
    data, offset, size = queue_file(sender, recipients, lines)
    path = inst.queue / "active" / qid
    path.write_bytes(data)
    os.chmod(path, 0o700)
    reply = attr_call(inst.socket_path("private/local"), timeout=30,
                      request="deliver", queue_name="active", queue_id=qid,
                      data_offset=offset, data_size=size, nexthop=DOMAIN, encoding="",
                      smtputf8=0, sender=sender, envid="", ret=0, flags=flags,
                      arrival_sec=int(time.time()), arrival_usec=0, client_name="",
                      client_address="", client_protocol="", client_helo="",
                      rcpt=list(recipients), rcpt_orig=list(recipients),
                      rcpt_orcpt=[""] * len(recipients), rcpt_notify=[0] * len(recipients),
                      rcpt_offset=[0] * len(recipients))
    return qid, reply


MESSAGE = ["From: Sender <sender@example.com>", "Subject: test", "",
           "first line", "From the start", ">From already quoted", "last line"]


@pytest.fixture
def inst(tmp_path):
    i = start(tmp_path)
    yield i
    i.stop()


def test_mbox_delivery_writes_envelope_headers_and_quotes_from(inst):
    qid, reply = deliver(inst, [f"{USER}@{DOMAIN}"], MESSAGE)
    assert reply["status"] == ["0"]
    assert reply["result_status"] == ["2.0.0"]
    assert reply["result_reason"] == ["delivered to mailbox"]
    assert reply["result_relay"] == ["local"]
    text = (inst.mail / USER).read_text()
    lines = text.split("\n")
    assert lines[0].startswith("From sender@example.com  ")
    assert time.strptime(lines[0][len("From sender@example.com  "):], "%a %b %d %H:%M:%S %Y")
    assert lines[1:4] == ["Return-Path: <sender@example.com>",
                          f"X-Original-To: {USER}@{DOMAIN}",
                          f"Delivered-To: {USER}@{DOMAIN}"]
    assert lines[4:] == ["From: Sender <sender@example.com>", "Subject: test", "",
                         "first line", ">From the start", ">From already quoted",
                         "last line", "", ""]
    log = inst.wait_log(f"{qid}: to=<{USER}@{DOMAIN}>, relay=local, delay=")
    assert "dsn=2.0.0, status=sent (delivered to mailbox)" in log


def test_second_delivery_appends_and_null_sender_is_mailer_daemon(inst):
    deliver(inst, [f"{USER}@{DOMAIN}"], ["Subject: one", "", "1"])
    deliver(inst, [f"{USER}@{DOMAIN}"], ["Subject: two", "", "2"], sender="")
    text = (inst.mail / USER).read_text()
    assert text.count("\nFrom ") == 1 and text.startswith("From sender@example.com ")
    second = text[text.index("\nFrom ") + 1:]
    assert second.startswith("From MAILER-DAEMON  ")
    assert "Return-Path: <>\n" in second


def test_unknown_user_bounces_with_postfix_text(inst):
    qid, reply = deliver(inst, [f"nosuchuser@{DOMAIN}"], MESSAGE)
    assert reply["result_status"] == ["5.1.1"]
    assert reply["result_reason"] == ['unknown user: "nosuchuser"']
    assert reply["result_action"] == ["failed"]
    inst.wait_log(f'{qid}: to=<nosuchuser@{DOMAIN}>, relay=local')
    assert 'dsn=5.1.1, status=bounced (unknown user: "nosuchuser")' in inst.log()


def test_delivered_to_loop_bounces(inst):
    lines = [f"Delivered-To: {USER}@{DOMAIN}", "Subject: loop", "", "body"]
    qid, reply = deliver(inst, [f"{USER}@{DOMAIN}"], lines)
    assert reply["result_status"] == ["5.4.6"]
    assert reply["result_reason"] == [f"mail forwarding loop for {USER}@{DOMAIN}"]
    assert not (inst.mail / USER).exists()


def test_verify_request_probes_without_delivering(inst):
    qid, reply = deliver(inst, [f"{USER}@{DOMAIN}", f"ghost@{DOMAIN}"], MESSAGE, flags=1)
    assert reply["result_status"] == ["2.0.0", "5.1.1"]
    assert reply["result_reason"][0] == "delivers to mailbox"
    assert not (inst.mail / USER).exists()
    log = inst.wait_log(f"{qid}: to=<ghost@{DOMAIN}>")
    assert "status=deliverable (delivers to mailbox)" in log
    assert 'status=undeliverable (unknown user: "ghost")' in log


def test_two_recipients_get_one_result_each(inst):
    qid, reply = deliver(inst, [f"{USER}@{DOMAIN}", f"nobody-here@{DOMAIN}"], MESSAGE)
    assert reply["result_index"] == ["0", "1"]
    assert reply["result_status"] == ["2.0.0", "5.1.1"]


def test_recipient_delimiter_extension_goes_to_the_user(tmp_path):
    inst = start(tmp_path, "recipient_delimiter = +\n")
    try:
        qid, reply = deliver(inst, [f"{USER}+box@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["2.0.0"]
        assert f"Delivered-To: {USER}+box@{DOMAIN}\n" in (inst.mail / USER).read_text()
    finally:
        inst.stop()


def test_maildir_spool_with_trailing_slash(tmp_path):
    spool = tmp_path / "maildirs"
    inst = start(tmp_path, f"mail_spool_directory = {spool}/\n")
    try:
        qid, reply = deliver(inst, [f"{USER}@{DOMAIN}"], MESSAGE)
        assert reply["result_reason"] == ["delivered to maildir"]
        new = list((spool / USER / "new").iterdir())
        assert len(new) == 1
        name = new[0].name
        assert name.split(".")[0].isdigit() and ".V" in name and "I" in name and "M" in name
        assert name.endswith("." + DOMAIN)
        assert list((spool / USER / "tmp").iterdir()) == []
        assert (spool / USER / "cur").is_dir()
        text = new[0].read_text()
        assert text.startswith(f"Return-Path: <sender@example.com>\nX-Original-To: {USER}@{DOMAIN}\n"
                               f"Delivered-To: {USER}@{DOMAIN}\nFrom: Sender")
        assert "\nFrom the start\n" in text  # no From_ quoting in a maildir
        assert stat.S_IMODE(new[0].stat().st_mode) == 0o600
    finally:
        inst.stop()


def test_mailbox_size_limit_bounces_and_truncates_back(tmp_path):
    inst = start(tmp_path, "mailbox_size_limit = 2000\nmessage_size_limit = 1000\n")
    try:
        (inst.mail / USER).write_text("From old@example  Mon Jan  1 00:00:00 2024\n\nold\n\n")
        before = (inst.mail / USER).read_bytes()
        lines = ["Subject: big", ""] + ["x" * 70] * 40
        qid, reply = deliver(inst, [f"{USER}@{DOMAIN}"], lines)
        assert reply["result_status"] == ["5.2.2"]
        assert reply["result_reason"] == [
            f"cannot update mailbox {inst.mail / USER} for user {USER}. "
            "error writing message: File too large"]
        assert (inst.mail / USER).read_bytes() == before
    finally:
        inst.stop()


def test_aliases_to_file_command_and_user(tmp_path, world_dir):
    out = world_dir / "cmd.out"
    aliases = (f"tofile: {world_dir}/file.mbox\n"
               f"tocmd: \"|/bin/sh -c 'echo $RECIPIENT $SENDER $LOCAL > {out}; cat >> {out}'\"\n"
               f"touser: {USER}\n"
               f"tempfail: \"|exit 75\"\n"
               f"failing: \"|echo broken pipe dream; exit 1\"\n")
    inst = start(tmp_path, aliases=aliases)
    try:
        qid, reply = deliver(inst, [f"tofile@{DOMAIN}"], MESSAGE)
        assert reply["result_reason"] == [f"delivered to file: {world_dir}/file.mbox"]
        text = (world_dir / "file.mbox").read_text()
        assert text.startswith("From sender@example.com  ")
        assert f"X-Original-To: tofile@{DOMAIN}\nDelivered-To: tofile@{DOMAIN}\n" in text

        qid, reply = deliver(inst, [f"tocmd@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["2.0.0"]
        assert reply["result_reason"][0].startswith("delivered to command: /bin/sh -c 'echo")
        got = out.read_text().split("\n")
        assert got[0] == f"tocmd@{DOMAIN} sender@example.com tocmd"
        assert got[1].startswith("From sender@example.com  ")
        assert "\nFrom the start\n" in out.read_text()  # commands get no >From quoting

        qid, reply = deliver(inst, [f"touser@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["2.0.0"]
        log = inst.wait_log(f"{qid}: to=<{USER}@{DOMAIN}>, orig_to=<touser@{DOMAIN}>, relay=local")
        # frozen_delivered_to: Delivered-To keeps the address the delivery started with
        assert f"X-Original-To: touser@{DOMAIN}\nDelivered-To: touser@{DOMAIN}\n" in (
            inst.mail / USER).read_text()

        qid, reply = deliver(inst, [f"tempfail@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["4.3.0"]
        assert reply["result_reason"] == ["temporary failure"]
        assert reply["result_action"] == ["delayed"]

        qid, reply = deliver(inst, [f"failing@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["5.3.0"]
        assert reply["result_reason"] == [
            'Command died with status 1: "echo broken pipe dream; exit 1". '
            "Command output: broken pipe dream "]
        assert "status=bounced (Command died with status 1" in inst.wait_log(f"{qid}: to=<failing@")
    finally:
        inst.stop()


def test_commands_are_restricted_by_allow_mail_to_commands(tmp_path, world_dir):
    inst = start(tmp_path, "allow_mail_to_commands = forward\nallow_mail_to_files = forward\n",
                 aliases=f"tocmd: \"|cat > {world_dir}/x\"\ntofile: {world_dir}/y\n")
    try:
        _, reply = deliver(inst, [f"tocmd@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["5.7.1"]
        assert reply["result_reason"] == ["mail to command is restricted"]
        _, reply = deliver(inst, [f"tofile@{DOMAIN}"], MESSAGE)
        assert reply["result_reason"] == ["mail to file is restricted"]
        assert not (world_dir / "x").exists() and not (world_dir / "y").exists()
    finally:
        inst.stop()


def test_alias_include_and_self_reference(tmp_path, world_dir):
    inc = tmp_path / "list.inc"
    inc.write_text(f"# members\n{world_dir}/inc.mbox\n")
    aliases = (f"list: :include:{inc}\n"
               f"me: \\{USER}, me, {world_dir}/me.mbox\n")
    inst = start(tmp_path, "allow_mail_to_files = alias, forward, include\n", aliases=aliases)
    try:
        _, reply = deliver(inst, [f"list@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["2.0.0"], reply
        assert (world_dir / "inc.mbox").exists()
        # "me" names itself: that means the user "me", who does not exist.
        qid, reply = deliver(inst, [f"me@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["5.1.1"]
        assert reply["result_reason"] == ['unknown user: "me"']
        assert (world_dir / "me.mbox").exists()
        assert (inst.mail / USER).exists()
    finally:
        inst.stop()


def test_dot_forward_through_forward_path(tmp_path, world_dir):
    inst = start_with_forward(tmp_path, f"{world_dir}/fwd.mbox, \\{USER}\n")
    try:
        qid, reply = deliver(inst, [f"{USER}@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["2.0.0"], reply
        assert (world_dir / "fwd.mbox").exists()
        assert "Subject: test" in (inst.mail / USER).read_text()
        log = inst.wait_log("delivered to file:")
        assert f"{qid}: to=<{USER}@{DOMAIN}>, relay=local" in log
    finally:
        inst.stop()


def test_user_named_in_own_forward_gets_the_mailbox(tmp_path, world_dir):
    inst = start_with_forward(tmp_path, f"# keep a copy\n{USER}\n{world_dir}/copy.mbox\n",
                              "{dir}/nonexistent.$user, {dir}/fwd.$user")
    try:
        qid, reply = deliver(inst, [f"{USER}@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["2.0.0"], reply
        assert (inst.mail / USER).read_text().count("Subject: test") == 1
        assert (world_dir / "copy.mbox").exists()
    finally:
        inst.stop()


def test_empty_forward_file_means_mailbox(tmp_path):
    inst = start_with_forward(tmp_path, "\n")
    try:
        _, reply = deliver(inst, [f"{USER}@{DOMAIN}"], MESSAGE)
        assert reply["result_reason"] == ["delivered to mailbox"]
    finally:
        inst.stop()


def test_mailbox_command_gets_the_message(tmp_path, world_dir):
    out = world_dir / "mbcmd.out"
    inst = start(tmp_path, f"mailbox_command = /bin/sh -c 'cat > {out}'\n")
    try:
        _, reply = deliver(inst, [f"{USER}@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["2.0.0"]
        text = out.read_text()
        assert text.startswith("From sender@example.com  ")
        assert f"Delivered-To: {USER}@{DOMAIN}\nFrom: Sender" in text
    finally:
        inst.stop()


def test_command_time_limit(tmp_path):
    inst = start(tmp_path, "command_time_limit = 1s\n", aliases='slow: "|sleep 30"\n')
    try:
        started = time.time()
        _, reply = deliver(inst, [f"slow@{DOMAIN}"], MESSAGE)
        assert time.time() - started < 10
        assert reply["result_status"] == ["5.3.0"]
        assert reply["result_reason"] == ['Command time limit exceeded: "sleep 30"']
    finally:
        inst.stop()


def fake_rewrite(req):
    """trivial-rewrite's answers, until it is built: local for DOMAIN, smtp for the rest,
    @DOMAIN appended to bare names."""
    addr = req.get("address", [""])[0]
    if addr and "@" not in addr:
        addr += "@" + DOMAIN
    if req["request"][0] == "rewrite":
        return {"flags": 0, "address": addr}
    local = addr.lower().endswith("@" + DOMAIN)
    return {"flags": (1 << 8) if local else (1 << 12), "transport": "local" if local else "smtp",
            "nexthop": DOMAIN if local else addr.split("@")[-1], "recipient": addr}


@pytest.mark.skipif(not (BUILD / "libexec" / "postern" / "cleanup").exists(),
                    reason="cleanup is not built")
def test_alias_to_remote_address_is_forwarded_through_cleanup(tmp_path):
    aliases = f"away: someone@remote.example, {USER}\nowner-list: {USER}\nlist: far@remote.example\n"
    inst = MailInstance(tmp_path, services=local_services("cleanup"))
    (inst.conf / "aliases").write_text(f"postmaster: {USER}\n" + aliases)
    inst.make_queue_tree()
    rewrite = RecordServer(inst.socket_path("private/rewrite"), fake_rewrite)
    inst.start()
    try:
        assert wait_for(lambda: inst.socket_path("public/cleanup").exists())
        qid, reply = deliver(inst, [f"away@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["2.0.0"], reply
        log = inst.wait_log(f"{qid}: to=<someone@remote.example>, orig_to=<away@{DOMAIN}>")
        new_id = log.split(f"{qid}: to=<someone@remote.example>")[1].split("forwarded as ")[1].split(")")[0]
        assert f"{qid}: to=<{USER}@{DOMAIN}>, orig_to=<away@{DOMAIN}>, relay=local" in log
        assert log.count("forwarded as") == 1
        assert wait_for(lambda: new_id in inst.queue_files("incoming"))
        out = run([postern("postcat"), "-c", str(inst.conf), "-q", new_id]).stdout
        assert "recipient: someone@remote.example" in out
        assert "sender: sender@example.com" in out
        assert f"Delivered-To: away@{DOMAIN}" in out
        assert "Subject: test" in out

        # A list with an owner-list alias: the owner becomes the sender.
        qid, reply = deliver(inst, [f"list@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["2.0.0"], reply
        log = inst.wait_log(f"{qid}: to=<far@remote.example>, relay=local")
        new_id = log.split(f"{qid}: to=<far@remote.example>")[1].split("forwarded as ")[1].split(")")[0]
        out = run([postern("postcat"), "-c", str(inst.conf), "-q", new_id]).stdout
        assert f"sender: owner-list@{DOMAIN}" in out
    finally:
        inst.stop()
        rewrite.close()


def test_luser_relay_takes_mail_for_unknown_users(tmp_path):
    inst = start(tmp_path, f"luser_relay = {USER}\n")
    try:
        qid, reply = deliver(inst, [f"ghost@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["2.0.0"], reply
        inst.wait_log(f"{qid}: to=<{USER}@{DOMAIN}>, orig_to=<ghost@{DOMAIN}>, relay=local")
        assert f"X-Original-To: ghost@{DOMAIN}\n" in (inst.mail / USER).read_text()
    finally:
        inst.stop()


def test_mailbox_transport_hands_the_recipient_to_another_service(tmp_path):
    other = tmp_path / "other-spool"
    other.mkdir()
    inst = MailInstance(tmp_path, main_cf="mailbox_transport = local2\n",
                        master_cf=f"local2 unix - n n - - local -o mailbox_transport= "
                                  f"-o mail_spool_directory={other}\n",
                        services=local_services())
    inst.start()
    try:
        assert wait_for(lambda: inst.socket_path("private/local").exists())
        qid, reply = deliver(inst, [f"{USER}@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["2.0.0"], reply
        assert reply["result_reason"] == ["delivered to mailbox"]
        assert (other / USER).exists() and not (inst.mail / USER).exists()
        log = inst.wait_log(f"{qid}: to=<{USER}@{DOMAIN}>, relay=local2")
        assert log.count(f"{qid}: to=<{USER}@{DOMAIN}>") == 1  # logged once, by local2
    finally:
        inst.stop()


@pytest.mark.skipif(os.getuid() != 0, reason="the biff port (512) needs root to listen on")
def test_biff_tells_comsat_where_the_new_mail_starts(tmp_path):
    import socket
    comsat = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    comsat.bind(("127.0.0.1", socket.getservbyname("biff", "udp")))
    comsat.settimeout(10)
    inst = start(tmp_path)
    try:
        (inst.mail / USER).write_text("From x  Mon Jan  1 00:00:00 2024\n\nold\n\n")
        size = (inst.mail / USER).stat().st_size
        _, reply = deliver(inst, [f"{USER}@{DOMAIN}"], MESSAGE)
        assert reply["result_status"] == ["2.0.0"]
        # Other instances of a parallel test run may notify too: look for ours.
        want = f"{USER}@{size}\0".encode()
        got = []
        while want not in got:
            got.append(comsat.recv(1024))
    finally:
        inst.stop()
        comsat.close()
