"""Relaying: N messages relayed by the SMTP client to Postfix's smtp-sink on loopback
(relayhost = [127.0.0.1]:PORT), through Postern's smtp(8) and through Debian's Postfix,
one after the other. Prints two figures for each and Postern's speed as a multiple of
Postfix's:

- submitted/s: N messages through `sendmail` (BENCH_SUBMITTERS parallel loops) until
  all of them sit in the hold queue;
- relayed/s, the figure the issue asks for: from `postsuper -H ALL` + `postqueue -f`
  to the last "status=sent" in the maillog;
- CPU-ms per message of the relay phase, summed over the master's process tree (its
  daemons, the ones that exited included): a figure other load on the machine hardly
  moves, unlike the throughput ratio.

The hold is the same on both systems: `header_checks` puts every message on hold
(`/^Subject: relay bench/ HOLD`), so the submission path (sendmail, postdrop, pickup,
cleanup and their fsyncs) is done before the clock of the relay figure starts, and that
figure measures qmgr, the smtp client and the sink only. Both systems keep their
default transport limits (smtp destination concurrency 20) and connection caching
defaults; smtp-sink runs without writing the messages anywhere.

Needs root (Postfix's master). Usage: python3 bench/relay.py ABS_BUILD_DIR
  BENCH_MESSAGES (default 1000), BENCH_SUBMITTERS (parallel sendmail loops, default 4)
"""
import os
import subprocess
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
from mailsystem import MailInstance, free_port, wait_for  # noqa: E402

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "1000"))
SUBMITTERS = int(os.environ.get("BENCH_SUBMITTERS", "4"))
BODY = ("Subject: relay bench {n}\nFrom: bench@example.test\n\n"
        + "A line of text in the benchmark message body, about seventy bytes.\n" * 40)
AGENTS = "smtp unix - - n - - smtp\nrelay unix - - n - - smtp\n"


def start_sink():
    """smtp-sink that keeps nothing (SmtpSink dumps every message to a file)."""
    port = free_port()
    argv = [smtpsink.SMTP_SINK, "-c", f"127.0.0.1:{port}", "256"]
    if os.getuid() == 0:
        argv[1:1] = ["-u", "nobody"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    return proc, port


def count_files(queue_dir):
    return sum(len(files) for _d, _s, files in os.walk(queue_dir))


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


def tree_cpu_seconds(root_pid):
    """CPU time (user + system) of a process tree: every live process under root_pid with
    the children it has reaped -- a master's daemons, the ones that exited included."""
    stats = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                text = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            stats[int(entry.name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    tree, total = {root_pid}, 0
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _cpu) in stats.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    for pid in tree:
        total += stats.get(pid, (0, 0))[1]
    return total / os.sysconf("SC_CLK_TCK")


def run(name, sendmail, log, hold_dir, release, master_pid):
    start = time.time()
    submit_all(sendmail)
    if not wait_for(lambda: count_files(hold_dir) >= MESSAGES, timeout=1800, step=0.1):
        raise SystemExit(f"{name}: only {count_files(hold_dir)} of {MESSAGES} on hold")
    submitted = MESSAGES / (time.time() - start)
    start, cpu = time.time(), tree_cpu_seconds(master_pid())
    release()
    ok = wait_for(lambda: log().count("status=sent") >= MESSAGES, timeout=1800, step=0.1)
    elapsed, cpu = time.time() - start, tree_cpu_seconds(master_pid()) - cpu
    if not ok:
        raise SystemExit(f"{name}: only {log().count('status=sent')} of {MESSAGES} relayed")
    rate = MESSAGES / elapsed
    reused = log().count("conn_use=")
    print(f"{name:8s} {MESSAGES} messages: submitted {submitted:.1f}/s; relayed in {elapsed:.2f} s: "
          f"{rate:.1f} messages/s ({reused} on a reused connection); "
          f"{1000 * cpu / MESSAGES:.2f} CPU-ms per message in the master's processes")
    return submitted, rate, cpu


def checks_file(root):
    path = Path(root) / "relay_bench_checks"
    path.write_text("/^Subject: relay bench/ HOLD\n")
    os.chmod(path, 0o644)
    return path


def main():
    why = postfixpeer.available()
    if why or not smtpsink.available():
        print(f"relay bench skipped: {why or 'smtp-sink not installed'}")
        return
    sink, port = start_sink()
    root = Path(tempfile.mkdtemp(prefix="postern-relay-bench-", dir="/var/tmp"))
    os.chmod(root, 0o755)
    checks = checks_file(root)
    main_cf = f"relayhost = [127.0.0.1]:{port}\nheader_checks = regexp:{checks}\n"
    try:
        inst = MailInstance(root / "postern", main_cf=main_cf, master_cf=AGENTS)
        inst.start()

        def release_ours():
            inst.command("postsuper", "-H", "ALL")
            inst.command("postqueue", "-f")
        try:
            ours = run("Postern", inst.sendmail, inst.log, inst.queue / "hold", release_ours,
                       lambda: int((inst.queue / "pid" / "master.pid").read_text()))
        finally:
            inst.stop()
        peer = postfixpeer.PostfixPeer(main_cf=main_cf, name="relaybench")

        def release_theirs():
            subprocess.run(["/usr/sbin/postsuper", "-c", str(peer.etc), "-H", "ALL"], capture_output=True)
            subprocess.run(["/usr/sbin/postqueue", "-c", str(peer.etc), "-f"], capture_output=True)
        try:
            peer.start()
            theirs = run("Postfix", lambda args, msg: peer.sendmail(args, msg), peer.log,
                         peer.queue / "hold", release_theirs,
                         peer.master_pid)
        finally:
            peer.cleanup()
        print(f"Postern/Postfix submission ratio: {ours[0] / theirs[0]:.2f}")
        print(f"Postern/Postfix relay throughput ratio: {ours[1] / theirs[1]:.2f}")
        print(f"Postern/Postfix relay CPU per message: {ours[2] / theirs[2]:.2f}")
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
