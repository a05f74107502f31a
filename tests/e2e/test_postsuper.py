"""postsuper(1) compared with Debian's postsuper: the same queue tree twice, the same
command on each, then the same messages on stderr, exit status and resulting tree."""
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from conftest import postern, postfix, run
from mailsystem import MailInstance, attr_encode
from test_postqueue import write_queue_file

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="postsuper works as mail_owner: needs root")

QUEUES = ("maildrop", "incoming", "active", "deferred", "hold", "defer", "bounce", "trace",
          "flush", "corrupt", "saved")


def make_side(top, name, extra=""):
    conf, qdir = top / name / "conf", top / name / "queue"
    conf.mkdir(parents=True)
    for q in QUEUES:
        (qdir / q).mkdir(parents=True)
    (conf / "main.cf").write_text(f"queue_directory = {qdir}\nmail_owner = postfix\n"
                                  "setgid_group = postdrop\n" + extra)
    return conf, qdir


def chown_tree(path):
    for dirpath, dirs, files in os.walk(path):
        for n in dirs + files:
            shutil.chown(os.path.join(dirpath, n), "postfix", "postfix")
    shutil.chown(path, "postfix", "postfix")


def tree(qdir):
    """Every file below the queue directory with its permission bits."""
    out = []
    for dirpath, _dirs, files in os.walk(qdir):
        for f in files:
            p = Path(dirpath) / f
            out.append((str(p.relative_to(qdir)), oct(p.stat().st_mode & 0o7777)))
    return sorted(out)


def fill_queue(q):
    """The sample messages, named from their inodes; returns {role: queue id}."""
    ids = {
        "deferred": write_queue_file(q / "deferred", "a@x.test", ["r1@example.org"]),
        "deferred2": write_queue_file(q / "deferred", "b@x.test", ["r2@example.org"]),
        "hold": write_queue_file(q / "hold", "c@x.test", ["r3@example.org"], hashed=False),
        "incoming": write_queue_file(q / "incoming", "", ["r4@example.org"], hashed=False),
        "maildrop": write_queue_file(q / "maildrop", "e@x.test", ["r5@example.org"],
                                     hashed=False),
    }
    d = ids["deferred"]
    (q / "defer" / d[0]).mkdir()
    for log in ("defer/" + d[0], "bounce", "trace"):
        (q / log / d).write_bytes(attr_encode(recipient="r1@example.org"))
    return ids


class Sides:
    """Two queues with the same messages: one for Debian's postsuper, one for Postern's.
    Queue IDs come from inode numbers, so they differ; commands name messages by role
    ("{hold}") and Postern's IDs are mapped to Debian's before outputs are compared."""
    def __init__(self, top):
        self.top = top
        self.pf_conf, self.pf_q = make_side(top, "pf")
        self.pt_conf, self.pt_q = make_side(top, "pt")
        self.pf_ids = fill_queue(self.pf_q)
        self.pt_ids = fill_queue(self.pt_q)
        chown_tree(self.pf_q)
        chown_tree(self.pt_q)

    def normalize(self, text):
        for role, qid in self.pt_ids.items():
            text = text.replace(qid, self.pf_ids[role])
        return text.replace(str(self.pt_q), str(self.pf_q))

    def tree(self, side):
        if side == "pf":
            return tree(self.pf_q)
        return sorted((self.normalize(p), m) for p, m in tree(self.pt_q))


@pytest.fixture
def sides():
    top = Path(tempfile.mkdtemp(prefix="postern-ps-"))
    top.chmod(0o755)
    yield Sides(top)
    shutil.rmtree(top, ignore_errors=True)


def both(sides, *args, input=None):
    """Runs both; returns Postern's result with Debian's queue IDs."""
    def fmt(text, ids):
        return None if text is None else text.format(**ids)
    theirs = run([postfix("postsuper"), "-c", str(sides.pf_conf),
                  *[fmt(a, sides.pf_ids) for a in args]], input=fmt(input, sides.pf_ids))
    ours = run([postern("postsuper"), "-c", str(sides.pt_conf),
                *[fmt(a, sides.pt_ids) for a in args]], input=fmt(input, sides.pt_ids))
    ours.stderr = sides.normalize(ours.stderr)
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr)
    assert ours.stdout == theirs.stdout == ""
    assert sides.tree("pt") == sides.tree("pf")
    return ours


def test_delete_by_id_with_its_logs(sides):
    r = both(sides, "-d", "{deferred}")
    qid = sides.pf_ids["deferred"]
    assert r.stderr == f"postsuper: {qid}: removed\npostsuper: Deleted: 1 message\n"
    assert not any(p.is_file() for d in ("defer", "bounce", "trace")
                   for p in (sides.pt_q / d).rglob("*"))


def test_delete_bad_and_missing_ids_and_stdin(sides):
    r = both(sides, "-d", "bad/id", "-d", "NOSUCH", "-d", "-", "-d", "{hold}",
             input="{incoming}\n\nbad!\n{maildrop}\n")
    assert "postsuper: warning: invalid mail queue id: bad/id\n" in r.stderr
    assert r.stderr.endswith("postsuper: Deleted: 3 messages\n")


def test_delete_all_and_in_one_queue(sides):
    r = both(sides, "-d", "ALL", "deferred")
    assert r.stderr == "postsuper: Deleted: 2 messages\n"
    r = both(sides, "-d", "ALL")
    assert r.stderr == "postsuper: Deleted: 3 messages\n"


def test_hold_and_release_round_trip(sides):
    r = both(sides, "-h", "{deferred}", "-h", "{maildrop}", "-h", "{incoming}")
    assert r.stderr.endswith("postsuper: Placed on hold: 2 messages\n")
    r = both(sides, "-H", "{deferred}")
    qid = sides.pf_ids["deferred"]
    assert r.stderr == (f"postsuper: {qid}: released from hold\n"
                        "postsuper: Released from hold: 1 message\n")
    both(sides, "-h", "ALL")
    r = both(sides, "-H", "ALL")
    assert r.stderr == "postsuper: Released from hold: 4 messages\n"
    both(sides, "-h", "-", input="{deferred}\nNOSUCH\n")
    both(sides, "-H", "NOSUCH")


def test_requeue_moves_to_maildrop_with_fresh_times(sides):
    old = time.time() - 7200
    for q, ids in ((sides.pf_q, sides.pf_ids), (sides.pt_q, sides.pt_ids)):
        os.utime(next((q / "deferred").rglob(ids["deferred"])), (old, old))
    r = both(sides, "-r", "{deferred}", "-r", "{maildrop}")
    assert r.stderr.endswith("postsuper: Requeued: 1 message\n")
    moved = sides.pt_q / "maildrop" / sides.pt_ids["deferred"]
    assert abs(moved.stat().st_mtime - time.time()) < 60
    r = both(sides, "-r", "ALL")
    assert r.stderr == "postsuper: Requeued: 3 messages\n"


def test_expire_and_expire_release(sides):
    both(sides, "-e", "{deferred}")
    both(sides, "-e", "{deferred}", "-e", "NOSUCH")
    r = both(sides, "-f", "{hold}")
    assert "released from hold" in r.stderr
    both(sides, "-e", "ALL")
    both(sides, "-h", "ALL")
    both(sides, "-f", "ALL")


@pytest.mark.parametrize("args", [["-d", "x", "bogusq"], ["-c", "relative"], ["-x"],
                                  ["-d", "x", "saved"]])
def test_errors_match_postfix(sides, args):
    both(sides, *args)


def test_default_run_keeps_recently_changed_temporary_files(sides):
    """-p removes temporary files untouched for a day; an old mtime alone is not enough
    (the inode changed just now). A non-ID name in a log queue is reported."""
    old = time.time() - 2 * 86400
    for q, ids in ((sides.pf_q, sides.pf_ids), (sides.pt_q, sides.pt_ids)):
        for role in ("stale", "fresh"):
            f = q / "incoming" / "tmp"
            f.write_text("partial")
            ids[role] = "%05X%X" % (5, f.stat().st_ino)
            f = f.rename(q / "incoming" / ids[role])
            f.chmod(0o600)
            shutil.chown(f, "postfix", "postfix")
        os.utime(q / "incoming" / ids["stale"], (old, old))
        (q / "flush" / "not.an.id").write_text("x")
        shutil.chown(q / "flush" / "not.an.id", "postfix", "postfix")
    r = both(sides)
    assert r.stderr == "postsuper: warning: bogus file name: flush/not.an.id\n"
    assert (sides.pt_q / "incoming" / sides.pt_ids["stale"]).exists()


def test_structure_fix_files_misplaced_and_misnamed(sides):
    """A file in the wrong hash directory is moved; a file whose name does not match its
    inode (a restored queue) is renamed. The new names come from new inodes, so the two
    results are compared by shape."""
    results = []
    for conf, q, ids, prog in ((sides.pf_conf, sides.pf_q, sides.pf_ids, postfix("postsuper")),
                               (sides.pt_conf, sides.pt_q, sides.pt_ids, postern("postsuper"))):
        d = ids["deferred2"]
        os.rename(next((q / "deferred").rglob(d)), q / "deferred" / d)  # not hashed
        misnamed = q / "hold" / ids["hold"]
        copy = q / "hold" / "tmpcopy"
        shutil.copy2(misnamed, copy)  # a new inode under the old name
        os.unlink(misnamed)
        os.rename(copy, misnamed)
        r = run([prog, "-c", str(conf), "-s"])
        held = [p.name for p in (q / "hold").iterdir()]
        results.append((r.returncode, r.stderr, len(held), held[0] != ids["hold"],
                        int(held[0][5:], 16) == (q / "hold" / held[0]).stat().st_ino,
                        (q / "deferred" / d[0] / d).exists()))
    assert results[0] == results[1]
    assert results[1][1] == ("postsuper: Renamed to match inode number: 1 message\n"
                             "postsuper: warning: QUEUE FILE NAMES WERE CHANGED TO MATCH "
                             "INODE NUMBERS\n")


def test_other_users_are_refused(sides):
    outs = []
    for prog, conf in ((postfix("postsuper"), sides.pf_conf),
                       (postern("postsuper"), sides.pt_conf)):
        r = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", prog,
                 "-c", str(conf), "-d", "ALL"])
        outs.append((r.returncode, r.stderr))
    assert outs[0] == outs[1] == [
        (1, "postsuper: fatal: use of this command is reserved for the superuser\n")][0]


def test_mail_owner_may_run_it_and_it_logs_each_message(tmp_path):
    """A sandbox instance: mail_owner is the invoking user; records go to maillog."""
    inst = MailInstance(tmp_path)
    inst.make_queue_tree()
    qid = write_queue_file(inst.queue / "deferred", "s@x.test", ["r@example.org"])
    r = inst.command("postsuper", "-h", qid)
    assert r.returncode == 0 and r.stderr.endswith("postsuper: Placed on hold: 1 message\n")
    r = inst.command("postsuper", "-d", qid)
    assert r.returncode == 0
    log = inst.log()
    assert f"postsuper[" in log and f"]: {qid}: placed on hold" in log
    assert f"]: {qid}: removed" in log and "]: Deleted: 1 message" in log
