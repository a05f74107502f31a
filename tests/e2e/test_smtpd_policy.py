"""check_policy_service end to end: a small policy server (mailsystem.RecordServer) on
TCP and on a UNIX socket, answering access(5) actions chosen by the
recipient; a server that never answers (timeout, default_action) and a closed port
(connection refused, retries).

Each scenario runs against Postern and against Debian's Postfix 3.7 with the same
settings, each with its own policy server: the SMTP replies, the smtpd log lines
(warnings, rejects) and the requests the policy servers received must be the same
(ports and instance values aside; Postern also sends Postfix 3.8's compatibility_level
and mail_version)."""
import os
import re

import pytest

import postfixpeer
from mailsystem import MailInstance, RecordServer, SmtpDialog, free_port, smtpd_service, wait_for

pytestmark = pytest.mark.skipif(postfixpeer.available() != "",
                                reason=postfixpeer.available() or "runs")

ACTIONS = {
    "rejected@localhost": "REJECT not welcome here",
    "deferred@localhost": "DEFER_IF_PERMIT Greylisted, try later",
    "code@localhost": "451 4.7.1 Service unavailable - try again",
    "defer@localhost": "DEFER",
    "root@localhost": "PREPEND X-Policy-Test: checked",
    "ok@localhost": "OK",
}


class PolicyServer:
    """Answers each request by its recipient (ACTIONS, else DUNNO); mode "hang" never
    answers. Keeps every request (a dict); .server.connections counts connections."""

    def __init__(self, mode="answer", path=None):
        self.mode, self.requests = mode, []
        if path and os.path.exists(path):
            os.unlink(path)
        self.server = RecordServer(path or ("127.0.0.1", 0), self._answer)
        if path:
            os.chmod(path, 0o666)  # Postfix's smtpd runs as postfix
        self.address = path or "inet:127.0.0.1:%d" % self.server.port

    def _answer(self, record):
        req = {name: values[0] for name, values in record.items()}
        self.requests.append(req)
        if self.mode == "hang":
            return None
        return {"action": ACTIONS.get(req.get("recipient"), "DUNNO")}

    def close(self):
        self.server.close()


MAIN_CF = ("mynetworks = 127.0.0.0/8\nlocal_recipient_maps =\n"
           "smtpd_soft_error_limit = 1000\nsmtpd_hard_error_limit = 1000\n")


def scenarios(servers, refused_port):
    """name: (-o settings, main.cf additions); values with blanks go through main.cf."""
    inet, hang = servers["inet"].address, servers["hang"].address
    tail = ",permit_mynetworks,reject_unauth_destination"
    return {
        "inet": ({"smtpd_recipient_restrictions": f"check_policy_service,{inet}{tail}",
                  "smtpd_data_restrictions": f"check_policy_service,{inet}",
                  "smtpd_end_of_data_restrictions": f"check_policy_service,{inet}",
                  "smtpd_policy_service_policy_context": "inet-test"}, ""),
        "unix": ({"smtpd_recipient_restrictions": f"check_policy_service,unix:private/testpolicy{tail}"}, ""),
        "timeout": ({"smtpd_recipient_restrictions": f"check_policy_service,{hang}{tail}",
                     "smtpd_policy_service_timeout": "2s"}, ""),
        "override": ({"smtpd_recipient_restrictions": "$t_override"},
                     "t_override = check_policy_service { %s, timeout=1s, try_limit=1,"
                     " {default_action=DEFER_IF_PERMIT policy down} }%s\n" % (hang, tail.replace(",", " "))),
        "refused": ({"smtpd_recipient_restrictions":
                     f"check_policy_service,inet:127.0.0.1:{refused_port}{tail}"}, ""),
    }


DIALOGS = {
    "inet": ["EHLO client.example.test", "MAIL FROM:<sender@example.test> SIZE=100",
             "RCPT TO:<rejected@localhost>", "RCPT TO:<deferred@localhost>",
             "RCPT TO:<code@localhost>", "RCPT TO:<defer@localhost>", "RCPT TO:<root@localhost>",
             "RCPT TO:<ok@localhost>", "DATA", "MESSAGE",
             "MAIL FROM:<second@example.test>", "RCPT TO:<ok@localhost>", "RSET", "QUIT"],
    "unix": ["EHLO client.example.test", "MAIL FROM:<sender@example.test>",
             "RCPT TO:<rejected@localhost>", "RCPT TO:<ok@localhost>", "QUIT"],
    "timeout": ["EHLO client.example.test", "MAIL FROM:<sender@example.test>",
                "RCPT TO:<ok@localhost>", "QUIT"],
    "override": ["EHLO client.example.test", "MAIL FROM:<sender@example.test>",
                 "RCPT TO:<ok@localhost>", "QUIT"],
    "refused": ["EHLO client.example.test", "MAIL FROM:<sender@example.test>",
                "RCPT TO:<ok@localhost>", "QUIT"],
}

EXPECTED = {
    "inet": ["554 5.7.1 <rejected@localhost>: Recipient address rejected: not welcome here",
             "450 4.7.1 <deferred@localhost>: Recipient address rejected: Greylisted, try later",
             "451 4.7.1 <code@localhost>: Recipient address rejected: Service unavailable - try again",
             "450 4.7.1 <defer@localhost>: Recipient address rejected: Access denied",
             "250 2.1.5 Ok"],
    "unix": ["554 5.7.1 <rejected@localhost>: Recipient address rejected: not welcome here"],
    "timeout": ["451 4.3.5 <ok@localhost>: Recipient address rejected: Server configuration problem"],
    "override": ["450 4.7.1 <ok@localhost>: Recipient address rejected: policy down"],
    "refused": ["451 4.3.5 <ok@localhost>: Recipient address rejected: Server configuration problem"],
}

# Key warnings, spelled out (normalized ports).
EXPECTED_LOG = {
    "timeout": ["warning: problem talking to server 127.0.0.1:PORT: Connection timed out"] * 2,
    "override": ["warning: problem talking to server 127.0.0.1:PORT: Connection timed out"],
    "refused": ["warning: connect to 127.0.0.1:PORT: Connection refused",
                "warning: problem talking to server 127.0.0.1:PORT: Connection refused"] * 2,
}


def run_dialog(port, lines):
    d = SmtpDialog(port)
    d.sock.settimeout(60)
    replies = []
    try:
        for line in lines:
            if line == "MESSAGE":
                d.send("Subject: policy test\r\n\r\nhello\r\n.\r\n")
                replies.append(d.reply())
            else:
                replies.append(d.cmd(line))
    finally:
        d.close()
    # EHLO's keywords and the queue IDs differ between the two systems.
    return [r[:3] if r.startswith("250-") else re.sub(r"queued as \w+", "queued as QID", r)
            for r in replies]


def log_lines(log, start):
    out = []
    for line in log[start:].splitlines():
        m = re.search(r"/smtpd\[\d+\]: (.*)", line)
        if not m or not any(w in m.group(1) for w in ("warning:", "reject:")):
            continue
        text = re.sub(r"^[0-9A-F]{6,}:", "QID:", m.group(1))
        out.append(re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text))
    return out


VARYING = ("client_port", "server_port", "instance")


def comparable(requests):
    out = []
    for r in requests:
        r = {k: v for k, v in r.items() if k not in VARYING + ("compatibility_level", "mail_version")}
        if r.get("queue_id"):
            r["queue_id"] = "QID"
        out.append(r)
    return out


class System:
    def __init__(self, root, peer):
        self.servers = {"inet": PolicyServer(), "hang": PolicyServer("hang")}
        self.refused = free_port()
        self.scen = scenarios(self.servers, self.refused)
        self.ports = {name: free_port() for name in self.scen}
        main = MAIN_CF + "".join(extra for _, extra in self.scen.values())
        master = "".join(smtpd_service(self.ports[n], o, maxproc="1") for n, (o, _) in self.scen.items())
        if peer:
            self.inst = postfixpeer.PostfixPeer(
                main_cf=main + "mydestination = localhost\nalias_maps =\n",
                master_cf_text=postfixpeer.master_cf() + master, name="policy")
            self.queue = self.inst.queue
        else:
            self.inst = MailInstance(root, main_cf=main, master_cf=master)
            self.queue = self.inst.queue
        self.inst.start()
        self.servers["unix"] = PolicyServer(path=str(self.queue / "private" / "testpolicy"))

    def stop(self):
        if isinstance(self.inst, postfixpeer.PostfixPeer):
            self.inst.cleanup()
        else:
            self.inst.stop()
        for s in self.servers.values():
            s.close()


@pytest.fixture(scope="module")
def systems(tmp_path_factory):
    ours = theirs = None
    try:
        ours = System(tmp_path_factory.mktemp("policy"), peer=False)
        theirs = System(None, peer=True)
        yield ours, theirs
    finally:
        for s in (ours, theirs):
            if s:
                s.stop()


def run_both(systems, name):
    ours, theirs = systems
    results = []
    for sys_ in (ours, theirs):
        start, before = len(sys_.inst.log()), {k: len(s.requests) for k, s in sys_.servers.items()}
        replies = run_dialog(sys_.ports[name], DIALOGS[name])
        assert wait_for(lambda: "disconnect from" in sys_.inst.log()[start:], 30)
        new = {k: s.requests[before[k]:] for k, s in sys_.servers.items()}
        results.append((replies, log_lines(sys_.inst.log(), start), new))
    return results


@pytest.mark.parametrize("name", list(DIALOGS))
def test_policy_scenario(systems, name):
    (got, got_log, got_req), (want, want_log, want_req) = run_both(systems, name)
    for reply in EXPECTED[name]:
        assert reply in got, (name, got)
    assert got == want, (name, list(zip(got, want)))
    warnings = [line for line in got_log if line.startswith("warning:")]
    assert warnings == EXPECTED_LOG.get(name, []), got_log
    assert got_log == want_log, "\n".join(["postern:"] + got_log + ["postfix:"] + want_log)
    for server in got_req:
        assert comparable(got_req[server]) == comparable(want_req[server]), (server, got_req[server],
                                                                              want_req[server])


def test_requests_carry_the_session(systems):
    """The attributes of one transaction: the same instance throughout, DATA and
    END-OF-MESSAGE with the recipient count, the size received, the queue ID."""
    ours, _ = systems
    server = ours.servers["inet"]
    before = len(server.requests)
    run_dialog(ours.ports["inet"], DIALOGS["inet"])
    reqs = server.requests[before:]
    states = [r["protocol_state"] for r in reqs]
    assert states == ["RCPT"] * 6 + ["DATA", "END-OF-MESSAGE", "RCPT"], states
    first = reqs[0]
    assert first["request"] == "smtpd_access_policy" and first["protocol_name"] == "ESMTP"
    assert first["client_address"] == "127.0.0.1" and first["helo_name"] == "client.example.test"
    assert first["sender"] == "sender@example.test" and first["recipient"] == "rejected@localhost"
    assert first["size"] == "100" and first["queue_id"] == "" and first["policy_context"] == "inet-test"
    assert first["mail_version"] and first["compatibility_level"] == "3.6"
    assert int(first["client_port"]) > 0 and first["server_port"] == str(ours.ports["inet"])
    assert re.fullmatch(r"[0-9a-f]+\.[0-9a-f]+\.[0-9a-f]+\.[0-9a-f]+", first["instance"])
    assert len({r["instance"] for r in reqs[:8]}) == 1 and reqs[8]["instance"] != first["instance"]
    data, eom = reqs[6], reqs[7]
    assert data["recipient"] == "" and data["recipient_count"] == "2"  # root and ok
    assert re.fullmatch(r"[0-9A-F]{6,}", data["queue_id"]) and eom["queue_id"] == data["queue_id"]
    assert int(eom["size"]) > 0 and eom["size"] != "100"
    # One smtpd process, one kept connection to the policy server for both sessions.
    assert server.server.connections == 1


def test_prepend_reaches_the_message(systems):
    ours, _ = systems
    assert wait_for(lambda: "X-Policy-Test: checked" in ours.inst.mbox(), 30), ours.inst.mbox()
