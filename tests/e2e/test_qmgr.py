"""qmgr(8) end to end: the real qmgr under master, with Python stand-ins for the
services it talks to (private/rewrite, private/local, private/bounce), so each test
decides what the delivery agent answers. Messages are queue files written here in
Postfix's record layout (util/queue/record.h) and announced with a trigger, as cleanup
does.

The stand-in agent answers by the recipient's local part: ok* delivered (2.0.0),
soft* deferred (4.2.0), hard* bounced (5.1.1), crash* closes the connection without a
reply, slow* is delivered after a second.
"""
import os
import signal
import socket
import threading
import time

import pytest

from conftest import BUILD
from mailsystem import MAIL_SERVICES, MailInstance, attr_decode, attr_encode, queue_record, wait_for

pytestmark = pytest.mark.skipif(not (BUILD / "libexec" / "postern" / "qmgr").exists(),
                                reason="qmgr is not built")

QMGR_ONLY = [s for s in MAIL_SERVICES if s[0] == "qmgr"]


# ---- queue files ------------------------------------------------------------------

record = queue_record


_seq = [0]


def write_queue_file(queue_dir, sender, recipients, body="Subject: test\n\nhello\n",
                     arrival=None, warn=None, queue="incoming", complete=True,
                     notify=None):
    """Writes a committed queue file (mode 0700) and returns its queue ID."""
    now = time.time() if arrival is None else arrival
    sec, usec = int(now), int((now % 1) * 1e6)
    _seq[0] += 1
    qid = "%05X%06X" % (usec, (os.getpid() << 8 | _seq[0]) & 0xFFFFFF)
    env = bytearray()
    env += record("T", f"{sec} {usec}") + record("A", f"create_time={sec}") + record("S", sender)
    if warn is not None:
        env += record("W", "%15d" % warn)
    for r in recipients:
        if notify:
            env += record("A", f"notify_flags={notify}")
        env += record("R", r)
    size_len = len(record("C", "%15d %15d %15d %15d %15d %15d" % (0, 0, 0, 0, 0, 0)))
    head = size_len + len(env) + len(record("M"))
    content = b"".join(record("N", line) for line in body.rstrip("\n").split("\n"))
    c = record("C", "%15d %15d %15d %15d %15d %15d" % (len(content), head, len(recipients),
                                                     0, len(body), 0))
    data = c + bytes(env) + record("M") + content + record("X") + record("E")
    d = queue_dir / queue
    if queue in ("deferred",):
        d = d / qid[0]
    d.mkdir(parents=True, exist_ok=True)
    path = d / qid
    path.write_bytes(data)
    os.chmod(path, 0o700 if complete else 0o600)
    return qid


def parse_records(data):
    out, i = [], 0
    while i < len(data):
        rtype = chr(data[i])
        i += 1
        n, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        out.append((rtype, data[i:i + n]))
        i += n
    return out


def find_file(inst, queue, qid):
    for dirpath, _dirs, files in os.walk(inst.queue / queue):
        if qid in files:
            return os.path.join(dirpath, qid)
    return None


# ---- stand-in services --------------------------------------------------------------

class FakeService:
    """A UNIX socket server: handler(request dict) -> reply dict, or None to hang up."""

    def __init__(self, path, handler):
        self.path = str(path)
        self.handler = handler
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(64)
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        buf = b""
        with conn:
            while True:
                while b"\n\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                raw, buf = buf.split(b"\n\n", 1)
                req = attr_decode(raw + b"\n")
                with self.lock:
                    self.requests.append(req)
                reply = self.handler(req)
                if reply is None:
                    return
                conn.sendall(attr_encode(**reply))

    def close(self):
        self.sock.close()


def resolve_local(req):
    addr = req["address"][0]
    return {"flags": 1 << 8, "transport": "local", "nexthop": addr.split("@")[-1],
            "recipient": addr}


def agent_answer(req):
    results = {"result_index": [], "result_status": [], "result_action": [],
               "result_reason": [], "result_relay": []}
    for i, rcpt in enumerate(req.get("rcpt", [])):
        local = rcpt.split("@")[0]
        if local.startswith("crash"):
            return None
        if local.startswith("slow"):
            time.sleep(1.0)
            local = "ok"
        status, action, reason = {
            "ok": ("2.0.0", "delivered", "delivered to mailbox"),
            "soft": ("4.2.0", "delayed", "mailbox busy"),
            "hard": ("5.1.1", "failed", "unknown user"),
        }[local.rstrip("0123456789")]
        results["result_index"].append(i)
        results["result_status"].append(status)
        results["result_action"].append(action)
        results["result_reason"].append(reason)
        results["result_relay"].append("local")
    return {"status": 0, **results}


class QmgrWorld:
    def __init__(self, tmp_path, main_cf="", agent=True):
        self.inst = MailInstance(tmp_path, main_cf=main_cf, services=QMGR_ONLY)
        self.inst.make_queue_tree()
        self.rewrite = FakeService(self.inst.queue / "private" / "rewrite", resolve_local)
        self.agent_handler = agent_answer
        self.local = FakeService(self.inst.queue / "private" / "local",
                                 lambda req: self.agent_handler(req)) if agent else None
        self.bounce = FakeService(self.inst.queue / "private" / "bounce",
                                  lambda req: {"status": 0, "queue_id": ""})

    def start(self):
        self.inst.start()

    def trigger(self, data=b"I"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(self.inst.queue / "public" / "qmgr"))
        s.sendall(data)
        s.close()

    def message(self, sender, recipients, **kw):
        return write_queue_file(self.inst.queue, sender, recipients, **kw)

    def bounce_requests(self, qid):
        with self.bounce.lock:
            return [r["request"][0] for r in self.bounce.requests if r["queue_id"][0] == qid]

    def stop(self):
        self.inst.stop()
        for svc in (self.rewrite, self.local, self.bounce):
            if svc:
                svc.close()


@pytest.fixture
def world(tmp_path):
    worlds = []

    def make(**kw):
        w = QmgrWorld(tmp_path / f"w{len(worlds)}", **kw)
        worlds.append(w)
        return w
    yield make
    for w in worlds:
        w.stop()


# ---- tests ------------------------------------------------------------------------------

def test_delivered_message_is_logged_and_removed(world):
    w = world()
    w.start()
    qid = w.message("sender@example.test", ["ok1@localhost", "ok2@localhost"])
    w.trigger()
    log = w.inst.wait_log(f"{qid}: removed")
    assert f"{qid}: from=<sender@example.test>, size=" in log
    assert "nrcpt=2 (queue active)" in log
    # local: one recipient per request
    reqs = [r for r in w.local.requests if r["queue_id"][0] == qid]
    assert sorted(r["rcpt"][0] for r in reqs) == ["ok1@localhost", "ok2@localhost"]
    assert all(len(r["rcpt"]) == 1 for r in reqs)
    assert reqs[0]["queue_name"] == ["active"]
    for q in ("incoming", "active", "deferred"):
        assert find_file(w.inst, q, qid) is None
    assert w.bounce_requests(qid) == []


def test_agent_connections_are_kept_between_messages(world):
    w = world()
    w.start()
    ids = [w.message("s@example.test", ["ok@localhost"]) for _ in range(6)]
    w.trigger()
    for qid in ids:
        w.inst.wait_log(f"{qid}: removed")
    assert len(w.local.requests) == 6
    # local_destination_concurrency_limit = 2 for one recipient: two agents at most
    assert w.local.connections <= 2


def test_mixed_outcomes_bounce_now_and_defer_the_rest(world):
    w = world()
    w.start()
    before = time.time()
    qid = w.message("sender@example.test", ["ok@localhost", "soft@localhost", "hard@localhost"])
    w.trigger()
    assert wait_for(lambda: find_file(w.inst, "deferred", qid)), w.inst.log()
    path = find_file(w.inst, "deferred", qid)
    assert w.bounce_requests(qid) == ["flush"]
    recs = parse_records(open(path, "rb").read())
    rcpts = [(t, d.decode()) for t, d in recs if t in "RD"]
    assert rcpts == [("D", "ok@localhost"), ("R", "soft@localhost"), ("D", "hard@localhost")]
    # next retry: minimal_backoff_time (2s) after now
    assert os.stat(path).st_mtime >= before + 2 - 1
    assert find_file(w.inst, "defer", qid) and find_file(w.inst, "bounce", qid)
    assert f"{qid}: removed" not in w.inst.log()
    # The retry delivers only the deferred recipient.
    w.agent_handler = lambda req: agent_answer(
        {**req, "rcpt": [r.replace("soft", "ok") for r in req["rcpt"]]})
    w.inst.wait_log(f"{qid}: removed", timeout=20)
    retried = [r["rcpt"] for r in w.local.requests if r["queue_id"][0] == qid]
    assert retried.count(["soft@localhost"]) == 2 and retried.count(["ok@localhost"]) == 1
    assert find_file(w.inst, "defer", qid) is None


@pytest.mark.parametrize("sender, main_cf", [
    ("sender@example.test", "maximal_queue_lifetime = 0\n"),
    ("", "bounce_queue_lifetime = 0\n"),  # bounces give up after their own lifetime
])
def test_expired_message_is_returned_to_sender(world, sender, main_cf):
    w = world(main_cf=main_cf)
    w.start()
    qid = w.message(sender, ["soft@localhost"])
    w.trigger()
    log = w.inst.wait_log(f"{qid}: removed")
    assert f"{qid}: from=<{sender}>, status=expired, returned to sender" in log
    assert w.bounce_requests(qid) == ["defer_flush"]


def test_delay_warning_is_sent_once(world):
    w = world()
    w.start()
    qid = w.message("sender@example.test", ["soft@localhost"], warn=int(time.time()) - 10)
    w.trigger()
    assert wait_for(lambda: find_file(w.inst, "deferred", qid)), w.inst.log()
    assert w.bounce_requests(qid) == ["warn"]
    recs = parse_records(open(find_file(w.inst, "deferred", qid), "rb").read())
    assert [int(d) for t, d in recs if t == "W"] == [0]


def test_active_files_are_requeued_at_start_and_corrupt_ones_quarantined(world):
    w = world()
    left = w.message("s@example.test", ["ok@localhost"], queue="active")
    bad = w.inst.queue / "incoming" / "ABCDE0123"
    bad.write_bytes(b"garbage that is no queue file")
    os.chmod(bad, 0o700)
    half = w.message("s@example.test", ["ok@localhost"], complete=False)
    w.start()
    # Postfix's master wakes qmgr at once at start; Postern's master waits for the first
    # wakeup period, so the test wakes it.
    w.trigger(b"W")
    log = w.inst.wait_log(f"{left}: removed")
    wait_for(lambda: find_file(w.inst, "corrupt", "ABCDE0123"))
    assert find_file(w.inst, "corrupt", "ABCDE0123")
    assert 'saving corrupt file "ABCDE0123"' in w.inst.log()
    # a file that was never committed is not touched
    assert find_file(w.inst, "incoming", half)
    assert f"{half}: from=" not in log


def test_unavailable_transport_defers_with_postfix_reason(world):
    w = world(agent=False)
    w.start()
    qid = w.message("s@example.test", ["ok@localhost"])
    w.trigger()
    log = w.inst.wait_log("status=deferred (mail transport unavailable)")
    assert f"{qid}: to=<ok@localhost>, relay=none, delay=" in log
    assert "dsn=4.3.0" in log
    assert wait_for(lambda: find_file(w.inst, "deferred", qid))


def test_agent_crash_defers_recipient(world):
    w = world()
    w.start()
    qid = w.message("s@example.test", ["crash@localhost"])
    w.trigger()
    log = w.inst.wait_log("status=deferred (unknown mail transport error)")
    assert f"{qid}: to=<crash@localhost>, relay=none" in log
    assert wait_for(lambda: find_file(w.inst, "deferred", qid))


def test_success_notify_is_traced(world):
    w = world()
    w.start()
    qid = w.message("s@example.test", ["ok@localhost"], notify=2)
    w.trigger()
    w.inst.wait_log(f"{qid}: removed")
    assert w.bounce_requests(qid) == ["trace"]


def test_deferred_mail_waits_for_its_retry_time_unless_flushed(world):
    w = world()
    # The waiting message gets its future retry time before qmgr runs: a scan between
    # writing it and setting the time would find it due.
    w.inst.make_queue_tree()
    waiting = w.message("s@example.test", ["ok@localhost"], queue="deferred")
    held = w.message("s@example.test", ["ok@localhost"], queue="hold")
    future = time.time() + 3600
    os.utime(find_file(w.inst, "deferred", waiting), (future, future))
    w.start()
    w.trigger(b"D")
    due = w.message("s@example.test", ["ok@localhost"], queue="deferred")
    # Written now, it is due at once: a periodic scan may take it before the trigger.
    w.trigger(b"D")
    w.inst.wait_log(f"{due}: removed")
    assert find_file(w.inst, "deferred", waiting)
    # postqueue -f: flush dead transports, scan everything ignoring retry times
    w.trigger(b"FA")
    w.inst.wait_log(f"{waiting}: removed")
    assert find_file(w.inst, "hold", held)
    assert f"{held}:" not in w.inst.log()


def test_stopping_qmgr_waits_for_running_deliveries(world):
    w = world()
    w.start()
    qid = w.message("s@example.test", ["slow@localhost"])
    w.trigger()
    assert wait_for(lambda: w.local.requests)
    pids = [p for p in MailInstance.descendants(w.inst.proc.pid)
            if open(f"/proc/{p}/comm").read().strip() == "qmgr"]
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGTERM)
    # The answer that comes after the signal still settles the message: no second
    # delivery after the restart.
    w.inst.wait_log(f"{qid}: removed")
    assert find_file(w.inst, "active", qid) is None


def test_mail_to_the_local_double_bounce_address_is_discarded(world):
    w = world()
    w.start()
    qid = w.message("", ["double-bounce@localhost"])
    w.trigger()
    log = w.inst.wait_log(f"{qid}: removed")
    assert (f"{qid}: to=<double-bounce@localhost>, relay=none, delay=") in log
    assert "dsn=2.0.0, status=sent (undeliverable postmaster notification discarded)" in log
    assert not w.local.requests
