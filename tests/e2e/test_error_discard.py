"""error(8), its retry service, and discard(8): a DeliveryRequest on private/error,
private/retry and private/discard gets one result per recipient and one Postfix delivery
record per recipient in the log."""
import re
import socket
import time

import pytest

from mailsystem import MAIL_SERVICES, MailInstance, attr_call, attr_decode, attr_encode

AGENTS = ("error", "retry", "discard")


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    m = MailInstance(tmp_path_factory.mktemp("agents"),
                     services=[s for s in MAIL_SERVICES if s[0] in AGENTS])
    m.start()
    yield m
    m.stop()


def deliver(inst, service, nexthop, rcpts, qid="4AbCdEf0ERR1"):
    """Sends one DeliveryRequest; rcpts are (address, original) pairs."""
    head = attr_encode(request="deliver", queue_name="active", queue_id=qid, data_offset=0,
                       data_size=0, nexthop=nexthop, encoding="", smtputf8=0,
                       sender="alice@example.test", envid="", ret=0, flags=0,
                       arrival_sec=int(time.time()) - 3, arrival_usec=0, client_name="",
                       client_address="", client_protocol="", client_helo="")[:-1]
    # The recipient fields go out grouped per recipient, as DeliveryRequest writes them.
    for i, (addr, orig) in enumerate(rcpts):
        head += attr_encode(rcpt=addr, rcpt_orig=orig, rcpt_orcpt="", rcpt_notify=0,
                            rcpt_offset=100 + i)[:-1]
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(str(inst.queue / "private" / service))
    with s:
        s.sendall(head + b"\n")
        buf = b""
        while b"\n\n" not in buf:
            chunk = s.recv(65536)
            assert chunk, f"{service} closed the connection"
            buf += chunk
    return attr_decode(buf)


def results(reply):
    keys = ("result_index", "result_status", "result_action", "result_reason", "result_relay")
    return list(zip(*(reply[k] for k in keys)))


def test_error_bounces_every_recipient_with_the_nexthop_reason(inst):
    reply = deliver(inst, "error", "5.1.1 User unknown in virtual alias table",
                    [("bob@example.test", "bob@example.test"),
                     ("carol@example.test", "staff@example.test")])
    assert reply["status"] == ["0"]
    assert results(reply) == [
        ("0", "5.1.1", "failed", "User unknown in virtual alias table", "none"),
        ("1", "5.1.1", "failed", "User unknown in virtual alias table", "none")]
    log = inst.wait_log("to=<carol@example.test>")
    assert re.search(r"postern/error\[\d+\]: 4AbCdEf0ERR1: to=<bob@example.test>, relay=none, "
                     r"delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=5\.1\.1, "
                     r"status=bounced \(User unknown in virtual alias table\)", log), log
    assert "to=<carol@example.test>, orig_to=<staff@example.test>, relay=none" in log


def test_error_without_a_code_uses_5_0_0(inst):
    reply = deliver(inst, "error", "mail for this domain is not accepted",
                    [("dave@example.test", "")], qid="4AbCdEf0ERR2")
    assert results(reply) == [("0", "5.0.0", "failed", "mail for this domain is not accepted",
                                "none")]


def test_retry_defers_and_ignores_a_permanent_code(inst):
    reply = deliver(inst, "retry", "5.1.1 User unknown", [("erin@example.test", "")],
                    qid="4AbCdEf0ERR3")
    assert results(reply) == [("0", "4.0.0", "delayed", "User unknown", "none")]
    log = inst.wait_log("4AbCdEf0ERR3: to=<erin@example.test>")
    assert "dsn=4.0.0, status=deferred (User unknown)" in log
    reply = deliver(inst, "retry", "4.3.2 try again later", [("erin@example.test", "")],
                    qid="4AbCdEf0ERR4")
    assert results(reply) == [("0", "4.3.2", "delayed", "try again later", "none")]


def test_discard_reports_every_recipient_sent(inst):
    reply = deliver(inst, "discard", "example.test",
                    [("frank@example.test", ""), ("gina@example.test", "")],
                    qid="4AbCdEf0DIS1")
    assert results(reply) == [("0", "2.0.0", "delivered", "example.test", "none"),
                              ("1", "2.0.0", "delivered", "example.test", "none")]
    log = inst.wait_log("4AbCdEf0DIS1: to=<gina@example.test>")
    assert re.search(r"postern/discard\[\d+\]: 4AbCdEf0DIS1: to=<frank@example.test>, "
                     r"relay=none, delay=[\d.]+, delays=[\d./]+, dsn=2\.0\.0, "
                     r"status=sent \(example.test\)", log), log


def test_a_malformed_request_gets_no_reply_and_the_agent_carries_on(inst):
    reply = attr_call(inst.queue / "private" / "error", request="deliver", queue_id="x")
    assert reply == {}
    assert "malformed delivery request" in inst.wait_log("malformed delivery request")
    reply = deliver(inst, "error", "5.7.1 go away", [("hank@example.test", "")],
                    qid="4AbCdEf0ERR5")
    assert results(reply)[0][1] == "5.7.1"
