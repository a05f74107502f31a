"""postqueue(1): the mailq and JSON listings compared byte for byte with Debian's postqueue
(through a private Postfix instance's showq daemon) on the very same queue files, plus
option errors and the flush requests against a Postern instance."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import postern, postfix, run
from mailsystem import MailInstance, attr_encode, wait_for, queue_record

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="a private Postfix instance needs root")

PF_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_ctl(conf, *args):
    r = run([postfix("postfix"), "-c", str(conf), *args])
    log = conf.parent / "maillog"
    assert r.returncode == 0, r.stdout + r.stderr + (log.read_text() if log.exists() else "")


def listening(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


def listing(conf, flag, prog):
    r = run([prog, "-c", str(conf), flag])
    assert r.returncode == 0, r.stderr
    return r.stdout


def blocks(text):
    """The mailq text as (heading, sorted message blocks, summary): Postfix lists a queue
    in directory order, Postern in queue ID order."""
    lines = text.split("\n")
    heading, body = lines[0], "\n".join(lines[1:])
    parts = body.split("\n\n")
    return heading, sorted(parts[:-1]), parts[-1]


@pytest.fixture(scope="module")
def pf_queue(tmp_path_factory):
    """A Debian Postfix instance with deferred (two reasons), held, force-expired and
    maildrop mail; yields its config directory once the queue is settled."""
    if not ROOT:
        pytest.skip("a private Postfix instance needs root")
    # Postfix's daemons run as postfix: the tree must be reachable for that user.
    top = Path(tempfile.mkdtemp(prefix="postern-pf-"))
    top.chmod(0o755)
    conf, qdir, data = top / "conf", top / "queue", top / "data"
    for d in (conf, qdir, data):
        d.mkdir()
    shutil.chown(data, "postfix")
    (conf / "transport").write_text("retry.example retry:4.4.1 remote server said no\n")
    (conf / "main.cf").write_text(
        f"queue_directory = {qdir}\ndata_directory = {data}\n"
        "mail_owner = postfix\nsetgid_group = postdrop\ncompatibility_level = 3.6\n"
        "inet_interfaces = loopback-only\nmyhostname = pf.example.test\nmydestination =\n"
        "defer_transports = smtp\n"
        f"maillog_file = {top / 'maillog'}\nmaillog_file_prefixes = {top}\n"
        f"transport_maps = texthash:{conf / 'transport'}\n")
    (conf / "master.cf").write_text(PF_SERVICES)
    postfix_ctl(conf, "start")
    try:
        send = [postfix("sendmail"), "-C", str(conf)]
        msgs = [(["-f", "sender@example.com", "a@example.org", '"odd user"@example.net'], 1),
                (["-f", "", "x@retry.example", "y@other.example", "z@retry.example"], 2),
                (["-f", "long.sender.address.for.wrapping@example.com", "b@retry.example"], 3),
                (["-f", "caf\u00e9@example.com", "c@example.org"], 4)]
        for args, n in msgs:
            body = f"Subject: message {n}\n\n" + "line of text\n" * (n * 300)
            assert run(send + args, input=body).returncode == 0
        def settled():
            out = listing(conf, "-j", postfix("postqueue"))
            return (out.count('"deferred"') == 4 and
                    out.count('"address"') == out.count("delay_reason"))
        assert wait_for(settled, 30), listing(conf, "-p", postfix("postqueue"))
        ids = [l.split()[0] for l in listing(conf, "-p", postfix("postqueue")).splitlines()
               if l[:1].isalnum() and not l.startswith("-")]
        run([postfix("postsuper"), "-c", str(conf), "-h", ids[0]], check=True)
        run([postfix("postsuper"), "-c", str(conf), "-e", ids[1]], check=True)
        # Without pickup, the next submission stays in maildrop.
        (conf / "master.cf").write_text(PF_SERVICES.replace("pickup ", "#pickup "))
        postfix_ctl(conf, "reload")
        assert wait_for(lambda: not listening(qdir / "public" / "pickup"), 10)
        run(send + ["-f", "dropped@example.com", "d@example.org"], input="Subject: m\n\nx\n")
        assert wait_for(lambda: any((qdir / "maildrop").iterdir()), 10)
        yield conf, qdir
    finally:
        postfix_ctl(conf, "stop")
        shutil.rmtree(top, ignore_errors=True)


def postern_copy(tmp_path, qdir, long_ids=False):
    """The Postfix queue tree copied for Postern (modes and times kept)."""
    ours = tmp_path / "queue"
    shutil.copytree(qdir, ours, symlinks=True,
                    ignore=shutil.ignore_patterns("public", "private", "pid"))
    conf = tmp_path / "conf"
    conf.mkdir()
    # The same compatibility level: smtputf8_enable decides whether UTF-8 shows.
    (conf / "main.cf").write_text(f"queue_directory = {ours}\ncompatibility_level = 3.6\n")
    return conf, ours


@needs_root
def test_mailq_listing_matches_postfix_byte_for_byte(pf_queue, tmp_path):
    pf_conf, qdir = pf_queue
    conf, _ = postern_copy(tmp_path, qdir)
    theirs = listing(pf_conf, "-p", postfix("postqueue"))
    ours = listing(conf, "-p", postern("postqueue"))
    assert "!" in theirs and "#" in theirs and "(remote server said no)" in theirs
    assert "MAILER-DAEMON" in theirs and '"odd user"@example.net' in theirs
    assert blocks(ours) == blocks(theirs)


@needs_root
def test_json_listing_matches_postfix_byte_for_byte(pf_queue, tmp_path):
    pf_conf, qdir = pf_queue
    conf, _ = postern_copy(tmp_path, qdir)
    theirs = listing(pf_conf, "-j", postfix("postqueue"))
    ours = listing(conf, "-j", postern("postqueue"))
    assert '"queue_name": "maildrop"' in theirs and '"forced_expire": true' in theirs
    assert sorted(ours.splitlines()) == sorted(theirs.splitlines())


def postern_defer_entry(recipient, reason):
    return attr_encode(recipient=recipient, orig_rcpt=recipient, dsn_orig_rcpt="",
                       notify_flags=0, offset=0, status="4.4.1", action="delayed",
                       reason=reason, relay="", time=0)


@needs_root
def test_postern_defer_logs_give_the_same_reason_lines(pf_queue, tmp_path):
    """Postern's own defer-log format (recipients in internal form) lists like Postfix's."""
    pf_conf, qdir = pf_queue
    conf, ours = postern_copy(tmp_path, qdir)
    for log in (ours / "defer").rglob("*"):
        if not log.is_file():
            continue
        entries = []
        for block in log.read_text().split("\n\n"):
            kv = dict(l.split("=", 1) for l in block.splitlines() if "=" in l)
            if "recipient" in kv:
                rcpt = kv["recipient"].replace('"', "")  # internal form: quotes removed
                entries.append(postern_defer_entry(rcpt, kv["reason"]))
        log.write_bytes(b"".join(entries))
    theirs = listing(pf_conf, "-p", postfix("postqueue"))
    assert blocks(listing(conf, "-p", postern("postqueue"))) == blocks(theirs)


@needs_root
def test_long_queue_id_layout_matches_postfix(pf_queue, tmp_path):
    pf_conf, qdir = pf_queue
    main_cf = pf_conf / "main.cf"
    saved = main_cf.read_text()
    conf, _ = postern_copy(tmp_path, qdir)
    try:
        main_cf.write_text(saved + "enable_long_queue_ids = yes\n")
        postfix_ctl(pf_conf, "reload")
        with open(conf / "main.cf", "a") as f:
            f.write("enable_long_queue_ids = yes\n")
        theirs = wait_for(lambda: (lambda t: t if t.startswith("----Queue ID") else "")(
            listing(pf_conf, "-p", postfix("postqueue"))), 10)
        assert blocks(listing(conf, "-p", postern("postqueue"))) == blocks(theirs)
    finally:
        main_cf.write_text(saved)
        postfix_ctl(pf_conf, "reload")


def test_empty_queue(tmp_path):
    inst = MailInstance(tmp_path)
    inst.make_queue_tree()
    r = inst.command("postqueue", "-p")
    assert (r.returncode, r.stdout, r.stderr) == (0, "Mail queue is empty\n", "")
    r = inst.command("postqueue", "-j")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_incomplete_and_odd_files_are_not_listed(tmp_path):
    inst = MailInstance(tmp_path)
    inst.make_queue_tree()
    ids = [write_queue_file(inst.queue / "deferred", "s@x.test", [f"r{i}@example.org"])
           for i in range(3)]
    before = inst.command("postqueue", "-p").stdout
    next((inst.queue / "deferred").rglob(ids[1])).chmod(0o600)  # still being written
    (inst.queue / "incoming" / "NOTANID.x").write_text("junk")
    after = inst.command("postqueue", "-p").stdout
    assert ids[1] in before and ids[1] not in after
    assert after.endswith("-- 0 Kbytes in 2 Requests.\n")


@pytest.mark.parametrize("args,err", [
    ([], "postqueue: fatal: usage: postqueue -f | postqueue -i queueid | postqueue -j | "
         "postqueue -p | postqueue -s site\n"),
    (["-p", "-f"], None),
    (["-p", "extra"], None),
    (["-s", "bad..site"], 'postqueue: fatal: Cannot flush mail queue - invalid destination: '
                          '"bad..site"\n'),
    (["-s", "[300.1.1.1]"], 'postqueue: fatal: Cannot flush mail queue - invalid '
                            'destination: "[300.1.1.1]"\n'),
    (["-s", "x" * 120], 'postqueue: fatal: Cannot flush mail queue - invalid destination: '
                        '"' + "x" * 100 + '..."\n'),
    (["-i", "bad/id"], 'postqueue: fatal: Cannot flush queue ID - invalid name: "bad/id"\n'),
])
def test_option_errors_match_postfix(tmp_path, args, err):
    inst = MailInstance(tmp_path)
    inst.make_queue_tree()
    ours = inst.command("postqueue", *args)
    theirs = run([postfix("postqueue"), *args])
    assert ours.returncode == theirs.returncode == 69
    assert ours.stderr == theirs.stderr
    if err:
        assert ours.stderr == err


def test_flush_without_mail_system_fails_like_postfix(tmp_path):
    inst = MailInstance(tmp_path)
    inst.make_queue_tree()
    r = inst.command("postqueue", "-f")
    assert r.returncode == 69
    assert r.stderr == "postqueue: fatal: Cannot flush mail queue - mail system is down\n"


def test_flush_site_not_in_fast_flush_domains(tmp_path):
    inst = MailInstance(tmp_path)
    inst.make_queue_tree()
    r = inst.command("postqueue", "-s", "example.org")
    assert r.returncode == 69
    assert r.stderr == ('postqueue: fatal: Flush service is not configured for destination '
                        '"example.org"\n')


class TriggerListener:
    """A stand-in qmgr/pickup socket that records the trigger bytes it receives."""
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.sock.settimeout(5)

    def take(self):
        conn, _ = self.sock.accept()
        data = b""
        with conn:
            while chunk := conn.recv(64):
                data += chunk
        return data


def write_queue_file(qdir_queue, sender, rcpts, hashed=True):
    """A minimal Postfix-layout queue file, named like a short queue ID from its inode."""
    rec = queue_record
    body = rec("N", "Subject: test") + rec("N", "") + rec("N", "hello")
    head = (rec("T", "%d 0" % time.time()) + rec("S", sender) +
            b"".join(rec("R", r) for r in rcpts) + rec("M", ""))
    size = "%15d %15d %15d %15d %15d %15d" % (len(body), 0, len(rcpts), 0, 20, 0)
    data = rec("C", size) + head + body + rec("X", "") + rec("E", "")
    tmp = qdir_queue / "tmp.file"
    tmp.write_bytes(data)
    qid = "%05X%X" % (12345, tmp.stat().st_ino)
    dest = qdir_queue / qid[0] / qid if hashed else qdir_queue / qid
    dest.parent.mkdir(exist_ok=True)
    tmp.rename(dest)
    dest.chmod(0o700)
    return qid


def test_flush_sends_postfix_trigger_bytes(tmp_path):
    inst = MailInstance(tmp_path)
    inst.make_queue_tree()
    qmgr = TriggerListener(inst.queue / "public" / "qmgr")
    pickup = TriggerListener(inst.queue / "public" / "pickup")
    proc = subprocess.Popen([postern("postqueue"), "-c", str(inst.conf), "-f"],
                            stderr=subprocess.PIPE, text=True)
    assert qmgr.take() == b"FADI"
    assert pickup.take() == b"W"
    assert proc.wait(10) == 0 and proc.stderr.read() == ""


def test_flush_one_message_moves_it_to_incoming(tmp_path):
    inst = MailInstance(tmp_path)
    inst.make_queue_tree()
    qid = write_queue_file(inst.queue / "deferred", "s@example.com", ["r@example.org"])
    path = next((inst.queue / "deferred").rglob(qid))
    os.utime(path, (time.time() + 3600, time.time() + 3600))  # next retry in an hour
    qmgr = TriggerListener(inst.queue / "public" / "qmgr")
    proc = subprocess.Popen([postern("postqueue"), "-c", str(inst.conf), "-i", qid],
                            stderr=subprocess.PIPE, text=True)
    assert qmgr.take() == b"I"
    assert proc.wait(10) == 0 and proc.stderr.read() == ""
    moved = inst.queue / "incoming" / qid
    assert moved.exists() and not path.exists()
    assert abs(moved.stat().st_mtime - time.time()) < 60
    # Not deferred (any more): nothing to do, and no error, as Postfix's flush service.
    r = inst.command("postqueue", "-i", qid)
    assert (r.returncode, r.stderr) == (0, "")


def flush_site(inst, site):
    qmgr = TriggerListener(inst.queue / "public" / "qmgr")
    proc = subprocess.Popen([postern("postqueue"), "-c", str(inst.conf), "-s", site],
                            stderr=subprocess.PIPE, text=True)
    assert qmgr.take() == b"I"
    assert proc.wait(10) == 0, proc.stderr.read()
    qmgr.sock.close()
    os.unlink(inst.queue / "public" / "qmgr")


def test_flush_site_moves_only_that_sites_mail(tmp_path):
    """A site is one destination; fast_flush_domains lists it (or a parent domain)."""
    inst = MailInstance(tmp_path, main_cf="fast_flush_domains = example.org\n")
    inst.make_queue_tree()
    mine = write_queue_file(inst.queue / "deferred", "s@x.test", ["r@example.org"])
    sub = write_queue_file(inst.queue / "deferred", "s@x.test", ["r@mx.example.org"])
    other = write_queue_file(inst.queue / "deferred", "s@x.test", ["r@example.net"])
    flush_site(inst, "Example.ORG")
    assert inst.queue_files("incoming") == [mine]
    flush_site(inst, "mx.example.org")
    assert sorted(inst.queue_files("incoming")) == sorted([mine, sub])
    assert inst.queue_files("deferred") == [other]
    r = inst.command("postqueue", "-s", "example.net")
    assert r.returncode == 69 and "not configured" in r.stderr


def test_listing_of_postern_written_queue_files(tmp_path):
    inst = MailInstance(tmp_path)
    inst.make_queue_tree()
    qid = write_queue_file(inst.queue / "deferred", "", ["user@example.org"])
    held = write_queue_file(inst.queue / "hold", "me@example.com", ["a@b.example"],
                            hashed=False)
    out = inst.command("postqueue", "-p").stdout
    assert f"\n{held}!" in out and f"\n{qid} " in out.replace("\n\n", "\n")
    assert "MAILER-DAEMON" in out and out.endswith("-- 0 Kbytes in 2 Requests.\n")


@needs_root
@pytest.mark.parametrize("param,flag,what", [("authorized_mailq_users", "-p", "view"),
                                             ("authorized_flush_users", "-f", "flush")])
def test_user_acls_as_postfix(param, flag, what):
    top = Path(tempfile.mkdtemp(prefix="postern-pq-"))
    try:
        top.chmod(0o755)
        (top / "main.cf").write_text(f"queue_directory = {top}\n{param} = root, !nobody\n")
        r = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                 postern("postqueue"), "-c", str(top), flag])
        assert r.returncode == 69
        assert r.stderr == (f"postqueue: fatal: User nobody(65534) is not allowed to {what} "
                            "the mail queue\n")
    finally:
        shutil.rmtree(top)


def test_with_a_running_postern_instance(tmp_path):
    """The whole loop: mail deferred by qmgr (Postern's defer log) is listed with its
    reason, held and released by postsuper, retried at once by postqueue -i, deleted."""
    inst = MailInstance(tmp_path, main_cf=f"transport_maps = texthash:{tmp_path}/transport\n")
    (tmp_path / "transport").write_text("retry.example retry:4.4.1 remote server said no\n")
    inst.start()
    try:
        r = inst.sendmail(["-f", "me@example.test", "x@retry.example",
                           '"odd user"@retry.example'], "Subject: q\n\nbody\n")
        assert r.returncode == 0, r.stderr
        inst.wait_log("status=deferred", count=2)
        assert wait_for(lambda: inst.queue_files("deferred"), 10)
        qid = inst.queue_files("deferred")[0]
        out = inst.command("postqueue", "-p").stdout
        # mailq (a link to sendmail) runs postqueue -p.
        assert run([postern("mailq")], env={"MAIL_CONFIG": str(inst.conf)}).stdout == out
        assert out.startswith("-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient")
        assert " " * 53 + "(remote server said no)\n" in out
        assert " " * 41 + '"odd user"@retry.example\n' in out
        assert out.count("\n" + " " * 41 + "x@retry.example\n") == 1
        js = inst.command("postqueue", "-j").stdout
        assert f'"queue_name": "deferred", "queue_id": "{qid}"' in js
        assert '"address": "\\"odd user\\"@retry.example", "delay_reason": ' in js
        assert inst.command("postsuper", "-h", qid).returncode == 0
        assert f"\n{qid}!" in inst.command("postqueue", "-p").stdout
        assert inst.command("postsuper", "-H", qid).returncode == 0
        assert not inst.queue_files("hold")
        r = inst.command("postqueue", "-i", qid)
        assert (r.returncode, r.stderr) == (0, "")
        inst.wait_log("status=deferred", count=4)
        # Requeued: pickup and cleanup make a new queue file of it, which defers again.
        r = inst.command("postsuper", "-r", qid)
        assert r.stderr == f"postsuper: {qid}: requeued\npostsuper: Requeued: 1 message\n"
        inst.wait_log("status=deferred", count=6)
        assert wait_for(lambda: inst.queue_files("deferred"), 10)
        qid = inst.queue_files("deferred")[0]
        r = inst.command("postsuper", "-d", qid)
        assert r.stderr.endswith("postsuper: Deleted: 1 message\n"), r.stderr
        assert inst.command("postqueue", "-p").stdout == "Mail queue is empty\n"
    finally:
        inst.stop()


@needs_root
def test_a_user_who_cannot_read_the_queue_lists_it_through_showq():
    """As with Postfix, mailq works for any user: postqueue asks the showq service,
    which runs as mail_owner. The queue stays unreadable to the user."""
    root = Path(tempfile.mkdtemp(prefix="postern-showq-"))
    try:
        os.chmod(root, 0o755)
        inst = MailInstance(root, main_cf="defer_transports = smtp\n")
        inst.start()
        try:
            for d in (inst.root, inst.conf, inst.queue):
                os.chmod(d, 0o755)
            # What the setgid postqueue gets in Postfix: passage to public/, nothing more.
            os.chmod(inst.queue / "public", 0o711)
            r = inst.sendmail(["-f", "alice@example.test", "bob@example.test"], "Subject: s\n\nx\n")
            assert r.returncode == 0, r.stderr
            inst.wait_log("deferred transport")
            as_root = inst.command("postqueue", "-p")
            nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            r = run(nobody + [postern("postqueue"), "-c", str(inst.conf), "-p"])
            assert r.returncode == 0, r.stderr
            assert r.stdout == as_root.stdout
            assert "bob@example.test" in r.stdout and "(deferred transport)" in r.stdout
            r = run(nobody + [postern("postqueue"), "-c", str(inst.conf), "-j"])
            assert '"recipients": [{"address": "bob@example.test"' in r.stdout, r.stdout
            # The queue itself stays closed to the user.
            r = run(nobody + ["ls", str(inst.queue / "deferred")])
            assert r.returncode != 0
            # With the mail system down, postqueue says so and tries the queue itself.
            inst.stop()
            r = run(nobody + [postern("postqueue"), "-c", str(inst.conf), "-p"])
            assert r.returncode != 0
            assert "warning: Mail system is down -- accessing queue directly" in r.stderr
        finally:
            inst.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
