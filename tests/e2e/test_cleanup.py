"""cleanup(8) end to end: a sandbox instance (master, cleanup, trivial-rewrite when built,
anvil; no qmgr, so queue files stay in incoming/), driven over public/cleanup with the
attribute protocol, checking the queue files with the build's postcat and the log."""
import os
import re
import socket
import stat
import subprocess
import threading
import time

import pytest

from conftest import BUILD, postern, run
from mailsystem import MAIL_SERVICES, MailInstance, RecordServer, wait_for

FILTER, BCC_OK, MAP_OK, EXTRACT, LOCAL = 2, 16, 32, 64, 128
DEFAULT = FILTER | BCC_OK | MAP_OK
STAT_SIZE, STAT_CONT, STAT_HOPS, STAT_RCPT, STAT_DEFER = 4, 8, 16, 32, 128

HAVE_REWRITE = (BUILD / "libexec" / "postern" / "trivial-rewrite").exists()
SERVICES = [s for s in MAIL_SERVICES if s[0] in ("cleanup", "rewrite", "anvil")]


def encode(pairs):
    out = bytearray()
    for name, value in pairs:
        raw = value if isinstance(value, bytes) else str(value).encode()
        out += name.encode() + b"="
        for b in raw:
            out += bytes([b]) if 0x20 <= b < 0x7f and b != 0x25 else b"%%%02X" % b
        out += b"\n"
    return bytes(out + b"\n")


def decode(data):
    rec = {}
    for line in data.split(b"\n"):
        if line:
            k, v = line.split(b"=", 1)
            rec[k.decode()] = re.sub(rb"%([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), v).decode(
                "utf-8", "replace")
    return rec


class Client:
    def __init__(self, inst):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(15)
        self.sock.connect(str(inst.queue / "public" / "cleanup"))
        self.buf = b""

    def send(self, pairs):
        self.sock.sendall(encode(pairs))

    def reply(self):
        while b"\n\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        rec, self.buf = self.buf.split(b"\n\n", 1)
        return decode(rec)

    def submit(self, sender, rcpts, message, flags=DEFAULT, attrs=(), fullname=None, chunk=4096):
        self.send([("request", "open"), ("flags", flags)])
        opened = self.reply()
        assert opened["status"] == "0", opened
        env = [("request", "envelope"), ("sender", sender)]
        if fullname is not None:
            env.append(("fullname", fullname))
        env += [("arrival_sec", 0), ("arrival_usec", 0), ("envid", ""), ("ret", 0)]
        for name, value in attrs:
            env += [("attr_name", name), ("attr_value", value)]
        for r in rcpts:
            env += [("rcpt", r), ("rcpt_orig", ""), ("rcpt_orcpt", ""), ("rcpt_notify", 0)]
        self.send(env)
        data = message.encode() if isinstance(message, str) else message
        for i in range(0, len(data), chunk):
            self.send([("request", "content"), ("data", data[i:i + chunk])])
        self.send([("request", "end")])
        result = self.reply()
        assert result["queue_id"] == opened["queue_id"]
        return result

    def close(self):
        self.sock.close()


def fake_rewrite(path, origin="host.example.test"):
    """trivial-rewrite's "rewrite" for builds without it: append @myorigin."""
    def handle(rec):
        addr = rec["address"][0]
        return {"flags": 0, "address": addr if "@" in addr else addr + "@" + origin}
    return RecordServer(path, handle)


@pytest.fixture
def make(tmp_path):
    made = []

    def start(main_cf="", rewrite=True):
        services = SERVICES if rewrite else [s for s in SERVICES if s[0] != "rewrite"]
        inst = MailInstance(tmp_path / f"i{len(made)}", main_cf=main_cf, services=services)
        inst.start()
        if rewrite and not HAVE_REWRITE:
            fake_rewrite(inst.queue / "private" / "rewrite")
        assert wait_for(lambda: (inst.queue / "public" / "cleanup").exists())
        made.append(inst)
        return inst

    yield start
    for inst in made:
        inst.stop()


def postcat(inst, queue_id, queue="incoming"):
    path = inst.queue / queue / queue_id
    res = subprocess.run([postern("postcat"), "-c", str(inst.conf), str(path)], capture_output=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.decode("latin-1")


def content(inst, queue_id, queue="incoming"):
    text = postcat(inst, queue_id, queue)
    body = text.split("*** MESSAGE CONTENTS", 1)[1].split("\n", 1)[1]
    return body.split("*** HEADER EXTRACTED", 1)[0]


def test_local_submission_gets_missing_headers_and_rewritten_addresses(make):
    inst = make()
    c = Client(inst)
    r = c.submit("joe", ["ann"], "Subject: hello\n\nbody line\n", flags=DEFAULT | LOCAL,
                 attrs=[("submit_uid", "1234"), ("rewrite_context", "local")], fullname="Joe User")
    qid = r["queue_id"]
    assert r["status"] == "0" and r["reason"] == ""
    text = postcat(inst, qid)
    assert "sender: joe@host.example.test" in text
    assert "recipient: ann@host.example.test" in text
    body = content(inst, qid)
    lines = body.splitlines()
    assert lines[0] == "Received: by host.example.test (Postern, from userid 1234)"
    assert re.match(rf"\tid {qid}; \w{{3}}, [ \d]\d \w{{3}} \d{{4}} \d\d:\d\d:\d\d [+-]\d{{4}} \(.+\)$", lines[1])
    assert lines[2] == "Subject: hello"
    msgid = re.search(rf"^Message-Id: <(\d{{14}})\.{qid}@host\.example\.test>$", body, re.M)
    assert msgid, body
    assert re.search(r"^Date: ", body, re.M)
    assert "From: Joe User <joe@host.example.test>\n" in body
    assert "\n\nbody line\n" in body
    inst.wait_log(f"{qid}: message-id=<{msgid.group(1)}.{qid}@host.example.test>")
    mode = os.stat(inst.queue / "incoming" / qid).st_mode
    assert stat.S_IMODE(mode) == 0o700


def test_existing_headers_kept_bcc_and_return_path_removed(make):
    inst = make()
    msg = ("Return-Path: <x@y>\nFrom: Someone <s@example.com>\nTo: a@example.com\n"
           "Bcc: secret@example.com\nMessage-ID: <abc@example.com>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
           "Subject: folded\n  continued\n\nhi\n")
    r = Client(inst).submit("s@example.com", ["a@example.com"], msg)
    assert r["status"] == "0"
    body = content(inst, r["queue_id"])
    assert "Bcc" not in body and "Return-Path" not in body
    assert "Subject: folded\n  continued\n" in body
    assert body.count("Message-ID:") == 1 and "Message-Id:" not in body
    inst.wait_log(f"{r['queue_id']}: message-id=<abc@example.com>")


def test_sendmail_t_extracts_recipients_from_to_cc_bcc(make):
    inst = make()
    msg = "To: a@example.com, \"B x\" <b@example.com>\nCc: c\nBcc: d@example.com\nSubject: t\n\nx\n"
    r = Client(inst).submit("me", [], msg, flags=DEFAULT | EXTRACT)
    assert r["status"] == "0", r
    text = postcat(inst, r["queue_id"])
    rcpts = re.findall(r"^recipient: (.*)$", text, re.M)
    assert rcpts == ["a@example.com", "b@example.com", "c@host.example.test", "d@example.com"]
    assert "Bcc:" not in content(inst, r["queue_id"])


def test_resent_headers_select_resent_recipients_and_added_headers(make):
    inst = make()
    msg = ("From: a@example.com\nTo: old@example.com\nMessage-Id: <m1@x>\n"
           "Resent-From: r@example.com\nResent-To: new@example.com\n\nbody\n")
    r = Client(inst).submit("r@example.com", [], msg, flags=DEFAULT | EXTRACT | LOCAL)
    assert r["status"] == "0", r
    text = postcat(inst, r["queue_id"])
    assert re.findall(r"^recipient: (.*)$", text, re.M) == ["new@example.com"]
    body = content(inst, r["queue_id"])
    assert re.search(rf"^Resent-Message-Id: <\d{{14}}\.{r['queue_id']}@host\.example\.test>$", body, re.M)
    assert re.search(r"^Resent-Date: ", body, re.M)
    inst.wait_log(f"{r['queue_id']}: resent-message-id=<")


def test_header_and_body_checks_actions(make, tmp_path):
    checks = tmp_path / "header_checks"
    checks.write_text("/^Subject: reject me/ REJECT no thanks\n"
                      "/^Subject: hold me/ HOLD\n"
                      "/^Subject: drop me/ DISCARD\n"
                      "/^X-Ignore:/ IGNORE\n"
                      "/^X-Replace:/ REPLACE X-Replaced: yes\n"
                      "/^X-Prepend:/ PREPEND X-Added: before\n"
                      "/^Subject: warn me/ WARN watch this\n"
                      "/^Subject: redirect me/ REDIRECT other@example.com\n"
                      "/^Subject: filter me/ FILTER smtp:[127.0.0.1]:10025\n")
    bchecks = tmp_path / "body_checks"
    bchecks.write_text("/^bad body/ REJECT 4.7.0 try later\n/^strip this/ IGNORE\n")
    inst = make(f"header_checks = regexp:{checks}\nbody_checks = regexp:{bchecks}\n")
    c = Client(inst)
    attrs = [("log_message_origin", "local")]

    r = c.submit("a@example.com", ["c@example.com"], "Subject: reject me\n\nx\n", attrs=attrs)
    assert r["status"] == str(STAT_CONT) and r["reason"] == "5.7.1 no thanks"
    qid = r["queue_id"]
    inst.wait_log(f"{qid}: reject: header Subject: reject me from local; from=<a@example.com> "
                  f"to=<c@example.com>: 5.7.1 no thanks")
    assert inst.queue_files("incoming") == []

    r = c.submit("a@example.com", ["c@example.com"], "Subject: hold me\n\nx\n", attrs=attrs)
    assert r["status"] == "0"
    assert inst.queue_files("hold") == [r["queue_id"]]
    inst.wait_log(f"{r['queue_id']}: hold: header Subject: hold me from local; from=<a@example.com> to=<c@example.com>")

    r = c.submit("a@example.com", ["c@example.com"], "Subject: drop me\n\nx\n", attrs=attrs)
    assert r["status"] == "0"
    assert inst.queue_files("incoming") == []
    inst.wait_log(f"{r['queue_id']}: discard: header Subject: drop me from local;")

    msg = "Subject: warn me\nX-Ignore: 1\nX-Replace: 2\nX-Prepend: 3\n\nstrip this\nkeep this\n"
    r = c.submit("a@example.com", ["c@example.com"], msg, attrs=attrs)
    assert r["status"] == "0"
    body = content(inst, r["queue_id"])
    assert "X-Ignore" not in body and "X-Replaced: yes\n" in body
    assert "X-Added: before\nX-Prepend: 3\n" in body
    assert "strip this" not in body and "keep this" in body
    inst.wait_log(f"{r['queue_id']}: warning: header Subject: warn me from local; from=<a@example.com> "
                  "to=<c@example.com>: watch this")

    r = c.submit("a@example.com", ["c@example.com"], "Subject: redirect me\n\nx\n", attrs=attrs)
    assert re.findall(r"^recipient: (.*)$", postcat(inst, r["queue_id"]), re.M) == ["other@example.com"]

    r = c.submit("a@example.com", ["c@example.com"], "Subject: filter me\n\nx\n", attrs=attrs)
    assert "content_filter: smtp:[127.0.0.1]:10025" in postcat(inst, r["queue_id"])

    r = c.submit("a@example.com", ["c@example.com"], "Subject: x\n\nbad body\n", attrs=attrs)
    assert r["status"] == str(STAT_DEFER) and r["reason"] == "4.7.0 try later"


def test_size_hops_and_no_recipients_are_refused_without_files(make):
    inst = make("message_size_limit = 2000\nhopcount_limit = 3\n")
    c = Client(inst)
    r = c.submit("a@example.com", ["b@example.com"], "Subject: big\n\n" + "x" * 3000 + "\n")
    assert r["status"] == str(STAT_SIZE) and r["reason"] == "5.3.4 message file too big"
    r = c.submit("a@example.com", ["b@example.com"], "Received: 1\nReceived: 2\nReceived: 3\n\nx\n")
    assert r["status"] == str(STAT_HOPS) and r["reason"] == "5.4.0 too many hops"
    r = c.submit("a@example.com", [], "Subject: nobody\n\nx\n")
    assert r["status"] == str(STAT_RCPT)
    assert inst.queue_files("incoming") == []
    # the same connection still works after refusals
    assert c.submit("a@example.com", ["b@example.com"], "Subject: ok\n\nx\n")["status"] == "0"


def test_virtual_alias_and_canonical_maps(make, tmp_path):
    virtual = tmp_path / "virtual"
    virtual.write_text("list@example.com a@example.com, b@example.com, list@example.com\n"
                       "b@example.com real-b@example.net\n"
                       "user@example.com mailbox@example.net\n"
                       "loop1@example.com loop2@example.com\nloop2@example.com loop1@example.com\n")
    canonical = tmp_path / "sender_canonical"
    canonical.write_text("joe@host.example.test Joe.User@example.com\n")
    pmconf = tmp_path / "pmconf"
    pmconf.mkdir()
    (pmconf / "main.cf").write_text("")
    for f in (virtual, canonical):
        assert run([postern("postmap"), "-c", str(pmconf), f"hash:{f}"]).returncode == 0
    inst = make(f"virtual_alias_maps = hash:{virtual}\nsender_canonical_maps = hash:{canonical}\n"
                "recipient_delimiter = +\n")
    c = Client(inst)
    r = c.submit("joe", ["list@example.com", "user+tag@example.com"], "From: joe\nTo: list@example.com\n\nx\n")
    assert r["status"] == "0", r
    text = postcat(inst, r["queue_id"])
    assert "sender: Joe.User@example.com" in text
    assert re.findall(r"^recipient: (.*)$", text, re.M) == [
        "a@example.com", "real-b@example.net", "list@example.com", "mailbox+tag@example.net"]
    assert "original_recipient: list@example.com" in text
    # As Debian's Postfix: without ORCPT, the DSN original recipient is "rfc822;" and
    # the address as rewritten, before the alias expansion.
    assert re.findall(r"^named_attribute: dsn_orig_rcpt=(.*)$", text, re.M) == [
        "rfc822;list@example.com"] * 3 + ["rfc822;user+tag@example.com"]
    assert "From: Joe.User@example.com\n" in content(inst, r["queue_id"])
    r = c.submit("a@example.com", ["loop1@example.com"], "Subject: loop\n\nx\n")
    assert r["status"] == str(STAT_DEFER) and r["reason"] == "4.6.0 Alias expansion error"
    inst.wait_log(f"{r['queue_id']}: unreasonable virtual_alias_maps map nesting for loop1@example.com")


def test_8bit_nul_and_long_lines_pass_unchanged(make):
    inst = make()
    long_line = "y" * 70000
    msg = b"Subject: \xe4\xf6\xfc\n\nbin\x00ary \xff\n" + long_line.encode() + b"\nlast line without newline"
    r = Client(inst).submit("a@example.com", ["b@example.com"], msg, chunk=1000)
    assert r["status"] == "0"
    data = (inst.queue / "incoming" / r["queue_id"]).read_bytes()
    assert b"\xe4\xf6\xfc" in data and b"bin\x00ary \xff" in data
    body = content(inst, r["queue_id"])
    assert long_line in body and "last line without newline" in body


def test_bad_input_is_abandoned_and_daemon_keeps_serving(make):
    inst = make()
    # content before open, garbage record, then EOF in the middle of a message
    c = Client(inst)
    c.send([("request", "content"), ("data", "x")])
    assert c.reply() is None
    c = Client(inst)
    c.sock.sendall(b"\x00\x01garbage without structure\n\n")
    assert c.reply() is None
    c = Client(inst)
    c.send([("request", "open"), ("flags", DEFAULT)])
    qid = c.reply()["queue_id"]
    c.send([("request", "envelope"), ("sender", "a@b"), ("arrival_sec", 0), ("arrival_usec", 0),
            ("envid", ""), ("ret", 0)])
    c.send([("request", "content"), ("data", "Subject: x\n\npartial")])
    c.close()
    # The unfinished file goes. (Whether cleanup warns "client disconnected before the end
    # of the message" depends on whether it read the content before the hang-up: requests
    # that arrive with the end of input are not started.)
    assert wait_for(lambda: qid not in inst.queue_files("incoming"))
    assert wait_for(lambda: inst.queue_files("incoming") == [])
    # a client that leaves after the envelope (smtpd after RSET or QUIT without DATA) is
    # routine: the file goes, and nothing is said of it, as with Postfix's cleanup
    c = Client(inst)
    c.send([("request", "open"), ("flags", DEFAULT)])
    quiet_qid = c.reply()["queue_id"]
    c.send([("request", "envelope"), ("sender", "a@b"), ("arrival_sec", 0), ("arrival_usec", 0),
            ("envid", ""), ("ret", 0)])
    c.close()
    assert wait_for(lambda: inst.queue_files("incoming") == [])
    assert "warning" in inst.log() and "fatal" not in inst.log() and "panic" not in inst.log()
    r = Client(inst).submit("a@example.com", ["b@example.com"], "Subject: after\n\nx\n")
    assert r["status"] == "0"
    assert f"{quiet_qid}: client disconnected" not in inst.log()


def test_concurrent_clients_share_group_commits(make):
    inst = make()
    results = []

    def one(i):
        c = Client(inst)
        results.append(c.submit("a@example.com", [f"r{i}@example.com"], f"Subject: {i}\n\nx\n"))
        c.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20 and all(r["status"] == "0" for r in results)
    ids = sorted(r["queue_id"] for r in results)
    assert inst.queue_files("incoming") == ids
    for qid in ids:
        assert stat.S_IMODE(os.stat(inst.queue / "incoming" / qid).st_mode) == 0o700


def test_blind_copies_from_always_bcc_and_sender_bcc_maps(make, tmp_path):
    sbcc = tmp_path / "sender_bcc"
    sbcc.write_text("boss@example.com archive@example.com\n")
    pmconf = tmp_path / "pmconf"
    pmconf.mkdir()
    (pmconf / "main.cf").write_text("")
    assert run([postern("postmap"), "-c", str(pmconf), f"hash:{sbcc}"]).returncode == 0
    inst = make(f"always_bcc = audit@example.com\nsender_bcc_maps = hash:{sbcc}\n")
    c = Client(inst)
    r = c.submit("boss@example.com", ["a@example.com"], "Subject: x\n\nx\n")
    text = postcat(inst, r["queue_id"])
    assert re.findall(r"^recipient: (.*)$", text, re.M) == [
        "a@example.com", "archive@example.com", "audit@example.com"]
    # Blind copies get no DSN original recipient (Postfix's NO_DSN_ORCPT) and, as in
    # Debian's Postfix, NOTIFY=NEVER (notify_flags=1) each.
    assert re.findall(r"^named_attribute: dsn_orig_rcpt=(.*)$", text, re.M) == [
        "rfc822;a@example.com"]
    assert re.findall(r"^named_attribute: notify_flags=(.*)$", text, re.M) == ["1", "1"]
    # without the BCC flag (e.g. a forwarded copy) nothing is added; blind copies alone
    # are no recipients
    r = c.submit("boss@example.com", ["a@example.com"], "Subject: x\n\nx\n", flags=FILTER | MAP_OK)
    assert re.findall(r"^recipient: (.*)$", postcat(inst, r["queue_id"]), re.M) == ["a@example.com"]
    assert c.submit("boss@example.com", [], "Subject: x\n\nx\n")["status"] == str(STAT_RCPT)


def test_rewrite_service_down_defers_without_a_file(make):
    inst = make(rewrite=False)
    r = Client(inst).submit("a", ["b"], "Subject: x\n\nx\n")
    assert r["status"] == "2" and r["reason"].startswith("4.3.0 ")
    inst.wait_log(f"{r['queue_id']}: problem talking to service rewrite")
    assert inst.queue_files("incoming") == []


def test_masquerading_and_header_canonical_rewriting(make, tmp_path):
    canonical = tmp_path / "canonical"
    canonical.write_text("old@example.com new@example.com\n")
    pmconf = tmp_path / "pmconf"
    pmconf.mkdir()
    (pmconf / "main.cf").write_text("")
    assert run([postern("postmap"), "-c", str(pmconf), f"hash:{canonical}"]).returncode == 0
    inst = make(f"canonical_maps = hash:{canonical}\nmasquerade_domains = example.org\n"
                "masquerade_exceptions = root\n")
    msg = ("From: Joe <joe@mail.sub.example.org>\nTo: \"Old Name\" <old@example.com>, other@example.com\n"
           "Cc: root@box.example.org\nSubject: m\n\nx\n")
    r = Client(inst).submit("joe@mail.sub.example.org", ["old@example.com"], msg)
    assert r["status"] == "0", r
    text = postcat(inst, r["queue_id"])
    assert "sender: joe@example.org" in text
    assert re.findall(r"^recipient: (.*)$", text, re.M) == ["new@example.com"]
    body = content(inst, r["queue_id"])
    assert "From: Joe <joe@example.org>\n" in body
    assert "To: \"Old Name\" <new@example.com>, other@example.com\n" in body
    assert "Cc: root@box.example.org\n" in body
    assert "Subject: m\n" in body


def test_rewritten_long_address_header_is_folded(make):
    inst = make()
    to = ", ".join(f"user{i}" for i in range(8))
    r = Client(inst).submit("a@example.com", ["b@example.com"], f"To: {to}\nSubject: fold\n\nx\n")
    assert r["status"] == "0"
    body = content(inst, r["queue_id"])
    header = body.split("\nSubject:", 1)[0]
    assert header.startswith("To: user0@host.example.test,")
    assert "\n\t" in header and all(f"user{i}@host.example.test" in header for i in range(8))
    assert all(len(line) < 80 for line in header.split("\n"))


MIME_MESSAGE = (
    "Subject: outer\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n"
    "--b1\nContent-Type: text/plain\n\nSubject: not a header here\n"
    "--b1\nContent-Type: application/octet-stream\n"
    "Content-Disposition: attachment; filename=\"{name}\"\n\nAAAA\n"
    "--b1\nContent-Type: message/rfc822\n\nSubject: {inner}\nFrom: x@example.com\n\ninner body\n"
    "--b1--\n")


def test_mime_and_nested_header_checks_see_part_and_attachment_headers(make, tmp_path):
    (tmp_path / "mime").write_text('/^Content-Disposition:.*filename="?.*\\.exe"?$/ REJECT attachment type not allowed\n')
    (tmp_path / "nested").write_text("/^Subject: forwarded spam/ REJECT nested spam\n")
    (tmp_path / "header").write_text("/^Subject: not a header here/ REJECT body text is no header\n"
                                     "/^Subject: forwarded spam/ REJECT primary table saw a nested header\n")
    inst = make(f"header_checks = regexp:{tmp_path}/header\nmime_header_checks = regexp:{tmp_path}/mime\n"
                f"nested_header_checks = regexp:{tmp_path}/nested\n")
    c = Client(inst)
    r = c.submit("a@example.com", ["c@example.com"], MIME_MESSAGE.format(name="report.pdf", inner="hello"))
    assert r["status"] == "0", r
    body = content(inst, r["queue_id"])
    assert 'filename="report.pdf"' in body and "Subject: hello" in body
    r = c.submit("a@example.com", ["c@example.com"], MIME_MESSAGE.format(name="run.exe", inner="hello"))
    assert r["status"] == str(STAT_CONT) and r["reason"] == "5.7.1 attachment type not allowed"
    inst.wait_log(f'{r["queue_id"]}: reject: header Content-Disposition: attachment; filename="run.exe" from ')
    r = c.submit("a@example.com", ["c@example.com"], MIME_MESSAGE.format(name="a.pdf", inner="forwarded spam"))
    assert r["status"] == str(STAT_CONT) and r["reason"] == "5.7.1 nested spam"


def test_mime_nesting_limit_rejects_when_content_is_checked(make, tmp_path):
    (tmp_path / "header").write_text("/^X-Never:/ REJECT\n")
    inst = make(f"header_checks = regexp:{tmp_path}/header\nmime_nesting_limit = 3\n")
    c = Client(inst)
    # Postfix counts multipart levels only and rejects the sixth with a limit of 3
    # (measured with Debian's Postfix 3.7); attached messages do not count.
    levels = ["Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(6)]
    deep = "".join(levels) + "Subject: deep\n\nbody\n"
    assert c.submit("a@example.com", ["c@example.com"], "".join(levels[:5]) + "Subject: deep\n\nbody\n")["status"] == "0"
    assert c.submit("a@example.com", ["c@example.com"],
                    "Content-Type: message/rfc822\n\n" * 8 + "Subject: deep\n\nbody\n")["status"] == "0"
    r = c.submit("a@example.com", ["c@example.com"], deep)
    assert r["status"] == str(STAT_CONT) and r["reason"] == "5.6.0 MIME nesting exceeds safety limit"
    inst.wait_log(f'{r["queue_id"]}: reject: mime-error MIME nesting exceeds safety limit from ')
    # Without content checks the same message is accepted, as with Postfix.
    inst2 = make("mime_nesting_limit = 3\n")
    assert Client(inst2).submit("a@example.com", ["c@example.com"], deep)["status"] == "0"
