"""smtp(8): what goes over the wire after DATA -- the message streamed from the queue file
(a large message arrives intact and never sits in the agent's memory), lines longer than
smtp_line_length_limit folded byte for byte as Debian's Postfix folds them, and
smtp_destination_recipient_limit splitting many recipients over several transactions.
The server is capturesmtp.CaptureSmtp, which keeps the raw bytes it was sent."""
import re

import pytest

import postfixpeer
from capturesmtp import CaptureSmtp
from mailsystem import MailInstance

AGENTS = "smtp unix - - n - - smtp\n"


@pytest.fixture(scope="module")
def server():
    s = CaptureSmtp()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def inst(tmp_path_factory, server):
    m = MailInstance(tmp_path_factory.mktemp("content"),
                     main_cf=f"transport_maps = inline:{{{{cap.test=smtp:[127.0.0.1]:{server.port}}}}}\n"
                             "message_size_limit = 0\n",
                     master_cf=AGENTS)
    m.start()
    yield m
    m.stop()


def sent_line(inst, rcpt):
    return inst.wait_log_re(r"^.*postern/smtp\[(\d+)\]: (\w+): to=<%s>, relay=\S+, .*status=sent" % re.escape(rcpt),
                            timeout=240)


def body_of(data):
    """The message after its header (the headers differ between two mail systems)."""
    return data.split(b"\r\n\r\n", 1)[1]


def test_large_message_arrives_intact_and_is_streamed(inst, server):
    # 40 MB in lines of varying length, some starting with a dot (stuffed on the wire).
    lines = []
    size = 0
    i = 0
    while size < 40 * 1024 * 1024:
        line = (".%d " % i if i % 5 == 0 else "%d " % i) + "x" * (i % 900)
        lines.append(line)
        size += len(line) + 1
        i += 1
    body = "\n".join(lines) + "\n"
    p = inst.sendmail(["-f", f"{inst.user}@localhost", "big@cap.test"], "Subject: big-one\n\n" + body)
    assert p.returncode == 0, p.stderr
    m = sent_line(inst, "big@cap.test")
    t = server.wait(lambda t: "big@cap.test" in " ".join(t.rcpts))[0]
    wire = "".join(("." + ln if ln.startswith(".") else ln) + "\r\n" for ln in lines).encode()
    assert body_of(t.data) == wire
    # The agent read the file a piece at a time: its peak resident size stays far below
    # the 40 MB it sent (reading the message whole would put it above).
    status = open(f"/proc/{m.group(1)}/status").read()
    peak_kb = int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1))
    assert peak_kb < 24 * 1024, status


LONG_BODY = ("short\n" + "a" * 2500 + "\n" + "." + "b" * 998 + "\n" + "c" * 998 + "\n" + "d" * 999 + "\n"
             + "e" * 1995 + "\n" + "f" * 1996 + "\nend\n")


def folded(line, limit=998):
    out, room = [], limit
    while len(line) > room:
        out.append(line[:room])
        line, room = " " + line[room:], limit  # the space counts against the limit
    return out + [line]


def test_long_lines_are_folded_at_smtp_line_length_limit(inst, server):
    p = inst.sendmail(["-f", f"{inst.user}@localhost", "fold@cap.test"], "Subject: fold-me\n\n" + LONG_BODY)
    assert p.returncode == 0, p.stderr
    sent_line(inst, "fold@cap.test")
    t = server.wait(lambda t: "fold@cap.test" in " ".join(t.rcpts))[0]
    expected = []
    for ln in LONG_BODY.rstrip("\n").split("\n"):
        pieces = folded(ln)
        if pieces[0].startswith("."):
            pieces[0] = "." + pieces[0]  # the stuffed dot is not counted
        expected += pieces
    assert body_of(t.data) == ("\r\n".join(expected) + "\r\n").encode()
    assert max(len(x) for x in body_of(t.data).split(b"\r\n")) <= 999  # 998 + a stuffed dot


@pytest.mark.skipif(postfixpeer.available() != "", reason=postfixpeer.available() or "-")
def test_folding_and_stuffing_match_debian_postfix(inst, server):
    peer = postfixpeer.PostfixPeer(
        main_cf=f"transport_maps = inline:{{{{cap.test=smtp:[127.0.0.1]:{server.port}}}}}\n", name="content")
    try:
        peer.start()
        msg = "Subject: fold-diff\n\n" + LONG_BODY
        assert peer.sendmail(["-f", "diff@example.test", "theirs@cap.test"], msg).returncode == 0
        assert inst.sendmail(["-f", f"{inst.user}@localhost", "ours@cap.test"], msg).returncode == 0
        theirs = server.wait(lambda t: "theirs@cap.test" in " ".join(t.rcpts))[0]
        ours = server.wait(lambda t: "ours@cap.test" in " ".join(t.rcpts))[0]
        assert body_of(ours.data) == body_of(theirs.data)
    finally:
        peer.cleanup()


def test_recipient_limit_splits_into_transactions(tmp_path, server):
    m = MailInstance(tmp_path / "limit",
                     main_cf=f"transport_maps = inline:{{{{lim.test=smtp:[127.0.0.1]:{server.port}}}}}\n"
                             "smtp_destination_recipient_limit = 50\n",
                     master_cf=AGENTS)
    m.start()
    try:
        rcpts = [f"r{i}@lim.test" for i in range(120)]
        p = m.sendmail(["-f", f"{m.user}@localhost", *rcpts], "Subject: limit-120\n\nx\n")
        assert p.returncode == 0, p.stderr
        got = server.wait(lambda t: b"Subject: limit-120" in t.data, count=3)
        for r in rcpts:
            sent_line(m, r)
        got = server.wait(lambda t: b"Subject: limit-120" in t.data, count=3)
        assert sorted(len(t.rcpts) for t in got) == [20, 50, 50]
        seen = sorted(re.search(r"<(.*)>", r).group(1) for t in got for r in t.rcpts)
        assert seen == sorted(rcpts)
    finally:
        m.stop()
