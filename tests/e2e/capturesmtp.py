"""A loopback SMTP server that keeps what clients send byte for byte: each transaction's
MAIL FROM and RCPT TO lines and the raw message as it came over the wire (dot-stuffing
and line folding left in place, the final dot and BDAT framing taken out), so that the
output of Postern's smtp(8) can be compared with Debian's Postfix sending the same mail.
The EHLO keywords it offers are chosen per server (8BITMIME, CHUNKING, SMTPUTF8, ...).

    srv = CaptureSmtp(keywords=("PIPELINING", "CHUNKING"))
    ... transport_maps = inline:{{x.test=smtp:[127.0.0.1]:%d}} % srv.port ...
    t = srv.wait(lambda t: b"Subject: x" in t.data)
    t.mode    # "DATA" or "BDAT"
    srv.stop()
"""
import contextlib
import socket
import threading

from mailsystem import serve_in_threads, wait_for


class Transaction:
    def __init__(self):
        self.mail, self.rcpts, self.data, self.mode, self.chunks = "", [], b"", "", 0


class CaptureSmtp:
    def __init__(self, keywords=("PIPELINING", "8BITMIME", "SIZE 0"), rcpt_reply=None, bdat_reply=None,
                 rset_reply=None):
        self.keywords = list(keywords)
        self.rcpt_reply = rcpt_reply  # function(address) -> reply line, or None for 250
        # function(transaction, last) -> reply line to the chunk just read (t.chunks is
        # its number), or None for 250; a refused transaction is not kept.
        self.bdat_reply = bdat_reply
        self.rset_reply = rset_reply  # the reply to RSET instead of 250 (the state is kept)
        self.rsets = 0  # RSET commands received
        self.transactions = []
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        serve_in_threads(self.sock, self._session)

    def _session(self, conn):
        with conn, conn.makefile("rb") as f:
            try:
                self._serve(conn, f)
            except OSError:
                pass

    def _serve(self, conn, f):
        def reply(text):
            conn.sendall(text.encode() + b"\r\n")
        reply("220 capture.test ESMTP")
        t = Transaction()
        while line := f.readline():
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "LHLO"):
                lines = ["capture.test"] + self.keywords
                for i, k in enumerate(lines):
                    reply(("250 " if i == len(lines) - 1 else "250-") + k)
            elif verb == "HELO":
                reply("250 capture.test")
            elif verb == "MAIL":
                t = Transaction()
                t.mail = cmd
                reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                r = self.rcpt_reply(cmd) if self.rcpt_reply else None
                if r is None:
                    t.rcpts.append(cmd)
                reply(r or "250 2.1.5 Ok")
            elif verb == "DATA":
                reply("354 End data with <CR><LF>.<CR><LF>")
                chunks = []
                while (body := f.readline()) not in (b".\r\n", b""):
                    chunks.append(body)
                if not body:
                    return
                t.data, t.mode = b"".join(chunks), "DATA"
                self._done(t)
                reply("250 2.0.0 Ok: queued as CAPTURED")
            elif verb == "BDAT":
                words = cmd.split()
                t.data += f.read(int(words[1]))
                t.mode, t.chunks = "BDAT", t.chunks + 1
                last = len(words) > 2 and words[2].upper() == "LAST"
                if (r := self.bdat_reply(t, last) if self.bdat_reply else None) is not None:
                    reply(r)
                elif last:
                    self._done(t)
                    reply("250 2.0.0 Ok: queued as CAPTURED")
                else:
                    reply(f"250 2.0.0 Ok: {words[1]} octets")
            elif verb == "RSET":
                with self.lock:
                    self.rsets += 1
                reply(self.rset_reply or "250 2.0.0 Ok")
            elif verb == "QUIT":
                reply("221 2.0.0 Bye")
                return
            else:
                reply("250 2.0.0 Ok")

    def _done(self, t):
        with self.lock:
            self.transactions.append(t)

    def wait(self, match, timeout=90.0, count=1):
        """The transactions for which match(t) holds, once there are `count` of them."""
        def found():
            with self.lock:
                return [t for t in self.transactions if match(t)]
        assert wait_for(lambda: len(found()) >= count, timeout), \
            f"{count} matching transaction(s) never came: {len(self.transactions)} seen"
        return found()

    def stop(self):
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
