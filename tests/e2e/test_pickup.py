"""pickup(8) against a fake cleanup service.

master runs only pickup; a Python thread listens on public/cleanup and speaks the
cleanup stream of util/ipc/mail_proto.h (open -> opened, envelope, content..., end ->
result). The tests check what pickup sends, what it logs, and what happens to the
maildrop file (removed only after cleanup's OK, kept on trouble, corrupt/ when broken).
"""
import os
import socket

import pytest

from mailsystem import MailInstance, RecordServer, queue_record, wait_for

PICKUP = [("pickup", "unix", "n", "-", "n", "60", "1", "pickup")]


class FakeCleanup:
    """Records every message it is sent; answers with `status` at the end. pickup uses
    one connection per file, one file at a time, so one current message is enough."""

    def __init__(self, path, status=0, reason=""):
        self.status = status
        self.reason = reason
        self.messages = []  # dicts: flags, envelope, content, id
        self.count = 0
        self.msg = None
        self.server = RecordServer(path, self.handle)

    def handle(self, rec):
        req = rec.get("request", [""])[0]
        if req == "open":
            self.count += 1
            self.msg = {"flags": int(rec["flags"][0]), "content": "", "id": "FAKE%d" % self.count}
            return {"status": 0, "queue_id": self.msg["id"]}
        if req == "envelope":
            self.msg["envelope"] = rec
        elif req == "content":
            self.msg["content"] += rec["data"][0]
        elif req == "end":
            self.messages.append(self.msg)
            return {"status": self.status, "reason": self.reason, "queue_id": self.msg["id"]}
        return None

    def close(self):
        self.server.close()


@pytest.fixture
def pickup_system(tmp_path):
    inst = MailInstance(tmp_path, services=PICKUP)
    inst.make_queue_tree()
    fake = FakeCleanup(inst.queue / "public" / "cleanup")
    inst.start()
    yield inst, fake
    inst.stop()
    fake.close()


def maildrop(inst):
    return inst.queue_files("maildrop")


def test_pickup_hands_message_to_cleanup_and_removes_file(pickup_system):
    inst, fake = pickup_system
    msg = "Subject: hello\nTo: Someone <someone@example.test>\n\nline one\n"
    r = inst.sendmail(["-f", "Me <me@example.test>", "-F", "Me Myself", "-N", "success",
                       "-V", "env42", "-R", "hdrs", "-t", "argv@example.test"], msg)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: fake.messages and not maildrop(inst)), (fake.messages, inst.log())
    m = fake.messages[0]
    flags = 1 | 2 | 16 | 32 | 128  # bounce, filter, bcc ok, map ok, local submit
    assert m["flags"] == flags
    env = m["envelope"]
    assert env["sender"] == ["me@example.test"]
    assert env["fullname"] == ["Me Myself"]
    assert env["envid"] == ["env42"]
    assert env["ret"] == ["2"]
    assert env["rcpt"] == ["argv@example.test", "someone@example.test"]
    assert env["rcpt_notify"] == ["2", "2"]
    uid = os.getuid()
    # cleanup writes the Received: header from submit_uid (kCleanupLocalSubmit).
    assert dict(zip(env["attr_name"], env["attr_value"])) == {
        "rewrite_context": "local", "submit_uid": str(uid)}
    assert m["content"] == "Subject: hello\nTo: Someone <someone@example.test>\n\nline one\n"
    inst.wait_log(f"{m['id']}: uid={uid} from=<me@example.test>")


def test_pickup_keeps_file_when_cleanup_fails(pickup_system):
    inst, fake = pickup_system
    fake.status = 2  # queue file write error
    r = inst.sendmail(["-f", "me@example.test", "you@example.test"], "Subject: x\n\nbody\n")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: fake.messages)
    assert len(maildrop(inst)) == 1
    assert "error writing" in inst.wait_log("error writing")
    # A later wake-up with cleanup healthy delivers the kept file exactly once more.
    fake.status = 0
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(inst.queue / "public" / "pickup"))
    sock.sendall(b"W")
    sock.close()
    assert wait_for(lambda: not maildrop(inst)), inst.log()
    assert len(fake.messages) == 2


def test_pickup_moves_malformed_file_to_corrupt(pickup_system):
    inst, fake = pickup_system
    bad = inst.queue / "maildrop" / "BADFILE1234"
    bad.write_bytes(b"C\x05junkXgarbage that is no queue file")
    os.chmod(bad, 0o744)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(inst.queue / "public" / "pickup"))
    sock.sendall(b"W")
    sock.close()
    assert wait_for(lambda: inst.queue_files("corrupt") == ["BADFILE1234"]), inst.log()
    assert not maildrop(inst)
    log = inst.wait_log("malformed queue file maildrop/BADFILE1234")
    assert f"warning: uid={os.getuid()}: malformed queue file" in log
    assert fake.messages == []


def test_pickup_leaves_incomplete_file_alone(pickup_system):
    inst, fake = pickup_system
    partial = inst.queue / "maildrop" / "PARTIAL1234"
    partial.write_bytes(b"")
    os.chmod(partial, 0o600)  # no owner-execute bit: still being written
    r = inst.sendmail(["-f", "me@example.test", "you@example.test"], "Subject: x\n\nbody\n")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: maildrop(inst) == ["PARTIAL1234"]), inst.log()
    assert len(fake.messages) == 1


record = queue_record


def test_pickup_drops_forged_attributes(pickup_system):
    """A user's maildrop file that claims a remote client is not believed."""
    inst, fake = pickup_system
    size = " ".join("%15d" % 0 for _ in range(6))
    body = b"".join([
        record("C", size), record("T", "1700000000 0"), record("S", "me@example.test"),
        record("A", "log_client_name=evil.example"), record("A", "rewrite_context=local"),
        record("A", "submit_uid=0"),
        record("R", "you@example.test"), record("M", ""), record("N", "Subject: x"),
        record("N", ""), record("N", "body"), record("X", ""), record("E", "")])
    path = inst.queue / "maildrop" / "FORGED12345"
    path.write_bytes(body)
    os.chmod(path, 0o744)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(inst.queue / "public" / "pickup"))
    sock.sendall(b"W")
    sock.close()
    assert wait_for(lambda: fake.messages and not maildrop(inst)), inst.log()
    env = fake.messages[0]["envelope"]
    assert dict(zip(env["attr_name"], env["attr_value"])) == {
        "rewrite_context": "local", "submit_uid": str(os.getuid())}
    assert env["rcpt"] == ["you@example.test"]
    assert env["arrival_sec"] == ["1700000000"]
