"""Relaying: N messages submitted with `sendmail` and relayed by the SMTP client to
Postfix's smtp-sink on loopback (relayhost = [127.0.0.1]:PORT), through Postern's
smtp(8) and through Debian's Postfix, one after the other. Prints messages/second for
each (first submission to the last "status=sent" in the maillog) and Postern's speed as
a multiple of Postfix's.

Needs root (Postfix's master). Usage: python3 bench/relay.py ABS_BUILD_DIR
  BENCH_MESSAGES (default 500), BENCH_SUBMITTERS (parallel sendmail loops, default 4)
"""
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

BUILD = Path(sys.argv[1] if len(sys.argv) > 1 else "build").resolve()
os.environ["POSTERN_BUILD"] = str(BUILD)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

import postfixpeer  # noqa: E402
import smtpsink  # noqa: E402
from mailsystem import MailInstance, wait_for  # noqa: E402

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "500"))
SUBMITTERS = int(os.environ.get("BENCH_SUBMITTERS", "4"))
BODY = ("Subject: relay bench {n}\nFrom: bench@example.test\n\n"
        + "A line of text in the benchmark message body, about seventy bytes.\n" * 40)
AGENTS = "smtp unix - - n - - smtp\nrelay unix - - n - - smtp\n"


def submit_all(sendmail):
    def loop(k):
        for n in range(k, MESSAGES, SUBMITTERS):
            p = sendmail(["-f", "bench@example.test", f"rcpt{n}@far.example"], BODY.format(n=n))
            assert p.returncode == 0, p.stderr
    threads = [threading.Thread(target=loop, args=(k,)) for k in range(SUBMITTERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run(name, sendmail, log):
    start = time.time()
    submit_all(sendmail)
    ok = wait_for(lambda: log().count("status=sent") >= MESSAGES, timeout=1800, step=0.2)
    elapsed = time.time() - start
    if not ok:
        raise SystemExit(f"{name}: only {log().count('status=sent')} of {MESSAGES} relayed")
    rate = MESSAGES / elapsed
    print(f"{name:8s} {MESSAGES} messages relayed in {elapsed:.2f} s: {rate:.1f} messages/s")
    return rate


def main():
    why = postfixpeer.available()
    if why or not smtpsink.available():
        print(f"relay bench skipped: {why or 'smtp-sink not installed'}")
        return
    sink = smtpsink.SmtpSink()
    root = Path(tempfile.mkdtemp(prefix="postern-relay-bench-"))
    try:
        inst = MailInstance(root / "postern", main_cf=f"relayhost = [127.0.0.1]:{sink.port}\n", master_cf=AGENTS)
        inst.start()
        try:
            ours = run("Postern", inst.sendmail, inst.log)
        finally:
            inst.stop()
        peer = postfixpeer.PostfixPeer(main_cf=f"relayhost = [127.0.0.1]:{sink.port}\n", name="relaybench")
        try:
            peer.start()
            theirs = run("Postfix", lambda args, msg: peer.sendmail(args, msg), peer.log)
        finally:
            peer.cleanup()
        print(f"Postern/Postfix relay throughput ratio: {ours / theirs:.2f}")
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
