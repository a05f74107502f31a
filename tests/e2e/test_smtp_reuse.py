"""smtp(8) connection caching: messages to one relay host share connections (on demand,
when qmgr has a backlog for the destination, or always for
smtp_connection_cache_destinations), the delivery lines say conn_use=N as Postfix's do,
a reused connection starts with RSET, smtp_connection_reuse_count_limit is kept, and a
cached connection that the server closed (while idle, or by refusing the RSET) costs
nothing: the message goes out on a new connection."""
import socket
import threading

from mailsystem import MailInstance, free_port, serve_in_threads, wait_for

AGENTS = "smtp unix - - n - - smtp\nrelay unix - - n - - smtp\n"


class CountingSmtp:
    """An ESMTP server with PIPELINING on 127.0.0.1 that keeps the commands of every
    connection (self.sessions: one list per connection, in accept order) and the number
    of messages taken. close_after_message: hang up right after the reply to the end of
    data; rset_reply: the reply to RSET instead of 250 (a 421 also hangs up)."""

    def __init__(self, close_after_message=False, rset_reply=None):
        self.port = free_port()
        self.close_after_message, self.rset_reply = close_after_message, rset_reply
        self.sessions, self.messages = [], 0
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", self.port))
        serve_in_threads(self.sock, self._session)

    def _session(self, conn):
        with self.lock:
            commands = []
            self.sessions.append(commands)
        with conn, conn.makefile("rb") as f:
            conn.sendall(b"220 counting.test ESMTP\r\n")
            while line := f.readline():
                cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                commands.append(cmd)
                verb = cmd.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    conn.sendall(b"250-counting.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb == "QUIT":
                    conn.sendall(b"221 2.0.0 Bye\r\n")
                    return
                elif verb == "RSET" and self.rset_reply:
                    conn.sendall((self.rset_reply + "\r\n").encode())
                    if self.rset_reply.startswith("421"):
                        return
                elif verb == "DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    with self.lock:
                        self.messages += 1
                    conn.sendall(b"250 2.0.0 Ok: queued\r\n")
                    if self.close_after_message:
                        return
                else:
                    conn.sendall(b"250 2.0.0 Ok\r\n")

    def stop(self):
        self.sock.close()


def instance(tmp_path, server, extra=""):
    m = MailInstance(tmp_path / "postern", master_cf=AGENTS,
                     main_cf=f"relayhost = [127.0.0.1]:{server.port}\n"
                             "smtp_destination_concurrency_limit = 1\n" + extra)
    m.start()
    return m


def send(inst, n):
    p = inst.sendmail(["-f", "sender@example.test", f"rcpt{n}@far.example"],
                      f"Subject: reuse {n}\nFrom: sender@example.test\n\nmessage {n}\n")
    assert p.returncode == 0, p.stderr


def sent_count(inst):
    return inst.log().count("status=sent")


def send_one_by_one(inst, count):
    """Each message is delivered before the next one is sent."""
    for n in range(count):
        send(inst, n)
        assert wait_for(lambda: sent_count(inst) == n + 1, 60), inst.log()


# Every delivery keeps its connection (no backlog needed), and long enough for the test.
ALWAYS = "smtp_connection_cache_destinations = 127.0.0.1\nsmtp_connection_cache_time_limit = 60s\n"


def test_backlog_shares_connections_with_rset_and_conn_use(tmp_path):
    server = CountingSmtp()
    checks = tmp_path / "checks"
    checks.write_text("/^Subject: reuse/ HOLD\n")
    inst = instance(tmp_path, server, f"header_checks = regexp:{checks}\n")
    try:
        for n in range(12):
            send(inst, n)
        assert wait_for(lambda: len(inst.queue_files("hold")) == 12, 60), inst.log()
        inst.command("postsuper", "-H", "ALL")
        inst.command("postqueue", "-f")
        assert wait_for(lambda: sent_count(inst) == 12, 90), inst.log()
        assert server.messages == 12
        # qmgr had a backlog for the relay host: the agent kept its connection.
        assert len(server.sessions) < 12, server.sessions
        assert "conn_use=2, delay=" in inst.log()
        reused = [s for s in server.sessions if sum(c.startswith("MAIL FROM") for c in s) > 1]
        assert reused
        for s in reused:
            # Before each MAIL after the first: RSET, which checks the connection.
            mails = [i for i, c in enumerate(s) if c.startswith("MAIL FROM")]
            for i in mails[1:]:
                assert s[i - 1] == "RSET", s
    finally:
        inst.stop()
        server.stop()


def test_reuse_count_limit(tmp_path):
    server = CountingSmtp()
    inst = instance(tmp_path, server, ALWAYS + "smtp_connection_reuse_count_limit = 2\n")
    try:
        send_one_by_one(inst, 6)
        log = inst.log()
        # Reused twice at most: three deliveries per connection, the third logs conn_use=3.
        assert log.count("conn_use=2,") == 2 and log.count("conn_use=3,") == 2, log
        assert "conn_use=4" not in log
        assert [sum(c.startswith("MAIL FROM") for c in s) for s in server.sessions] == [3, 3]
    finally:
        inst.stop()
        server.stop()


def test_server_closing_the_idle_connection_is_no_failure(tmp_path):
    server = CountingSmtp(close_after_message=True)
    inst = instance(tmp_path, server, ALWAYS)
    try:
        send_one_by_one(inst, 3)
        assert server.messages == 3 and len(server.sessions) == 3
        log = inst.log()
        assert "conn_use=" not in log and "status=deferred" not in log, log
    finally:
        inst.stop()
        server.stop()


def test_refused_rset_sends_the_message_on_a_new_connection(tmp_path):
    server = CountingSmtp(rset_reply="421 4.3.2 going down")
    inst = instance(tmp_path, server, ALWAYS)
    try:
        send_one_by_one(inst, 3)
        assert server.messages == 3 and len(server.sessions) == 3
        # The second and third connections follow a RSET that the server refused.
        assert [s.count("RSET") for s in server.sessions] == [1, 1, 0], server.sessions
        log = inst.log()
        assert "conn_use=" not in log and "status=deferred" not in log, log
    finally:
        inst.stop()
        server.stop()
