"""postcat(1) on queue files written by Postern's queue writer, compared with Debian's
postcat reading the very same files (the record layout is Postfix's)."""
import os
import subprocess

import pytest

from conftest import BUILD, postern, postfix, run

UNIT = BUILD / "tests" / "unit_tests"


def write_sample(qdir, queue="deferred"):
    """Writes one sample queue file through the unit-test binary; returns its id."""
    for q in ("incoming", "active", "deferred", "hold", "maildrop", "saved", "corrupt"):
        (qdir / q).mkdir(exist_ok=True)
    env = {"POSTERN_QUEUE_SAMPLE_DIR": str(qdir), "POSTERN_QUEUE_SAMPLE_QUEUE": queue}
    r = run([str(UNIT), "[.queue-sample]"], env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    ids = [l for l in r.stdout.split() if len(l) > 10 and "z" in l]
    assert ids, r.stdout
    return ids[-1]


@pytest.fixture
def spool(tmp_path, confdir):
    qdir = tmp_path / "queue"
    qdir.mkdir()
    (confdir / "main.cf").write_text(f"queue_directory = {qdir}\n")
    qid = write_sample(qdir)
    path = next(p for p in (qdir / "deferred").rglob(qid))
    return qdir, qid, path


def run_bytes(argv, input=None):
    """Runs with bytes output: the sample holds 8-bit text that is not UTF-8."""
    env = dict(os.environ)
    env.pop("MAIL_CONFIG", None)
    r = subprocess.run(argv, input=input, capture_output=True, env=env, timeout=60)
    r.stderr = r.stderr.decode("utf-8", "replace")
    return r


def both(args, confdir, input=None):
    ours = run_bytes([postern("postcat"), "-c", str(confdir)] + args, input=input)
    theirs = run_bytes([postfix("postcat"), "-c", str(confdir)] + args, input=input)
    return ours, theirs


@pytest.mark.parametrize("flags", [[], ["-e"], ["-h"], ["-b"], ["-hb"], ["-eb"], ["-o"],
                                   ["-d"], ["-od"], ["-v", "-b"], ["-r"]])
def test_postcat_matches_postfix_on_postern_queue_file(spool, confdir, flags):
    _, _, path = spool
    ours, theirs = both(flags + [str(path)], confdir)
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout == theirs.stdout


def test_envelope_shows_sender_recipients_and_done_mark(spool, confdir):
    _, _, path = spool
    r = run_bytes([postern("postcat"), "-c", str(confdir), "-e", str(path)])
    out = r.stdout.decode("utf-8", "replace")
    assert out.startswith(f"*** ENVELOPE RECORDS {path} ***\n")
    assert "\nsender: sender@example.com\n" in out
    assert "\nrecipient: alice@example.com\n" in out
    assert "\ndone_recipient: carol@example.com\n" in out
    assert "\nmessage_arrival_time: " in out
    assert f"*** MESSAGE FILE END {path} ***\n" in out


def test_postcat_q_finds_the_file_in_any_queue(spool, confdir):
    qdir, qid, path = spool
    ours, theirs = both(["-q", qid], confdir)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    assert ours.stdout.startswith(b"*** ENVELOPE RECORDS deferred/")
    held = write_sample(qdir, "hold")
    ours, theirs = both(["-q", held], confdir)
    assert ours.stdout == theirs.stdout
    assert f"*** ENVELOPE RECORDS hold/{held} ***".encode() in ours.stdout


def test_postcat_rejects_bad_and_missing_ids(spool, confdir):
    for arg in ("../../etc/passwd", "NOSUCHID123"):
        ours, theirs = both(["-q", arg], confdir)
        assert ours.returncode == theirs.returncode == 1
        assert ours.stderr.split(": ", 1)[1] == theirs.stderr.split(": ", 1)[1]


def test_postcat_reads_stdin(spool, confdir):
    _, _, path = spool
    # A file on stdin: same output as Postfix's.
    outs = []
    for prog in (postern("postcat"), postfix("postcat")):
        with open(path, "rb") as f:
            outs.append(subprocess.run([prog, "-c", str(confdir)], stdin=f,
                                       capture_output=True))
    assert outs[0].returncode == outs[1].returncode == 0
    assert outs[0].stdout == outs[1].stdout
    assert outs[0].stdout.startswith(b"*** ENVELOPE RECORDS stdin ***")
    # A pipe: Postfix's postcat dies at the end record ("seek error after reading END
    # record: Illegal seek"); Postern's reads the whole stream and exits 0.
    ours, theirs = both([], confdir, input=path.read_bytes())
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == outs[0].stdout


def test_postcat_not_a_queue_file(confdir, tmp_path):
    f = tmp_path / "text"
    f.write_text("hello\n")
    ours, theirs = both([str(f)], confdir)
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout == theirs.stdout == b""
    assert "input is not a valid queue file" in ours.stderr


def test_postcat_truncated_file_is_an_error_not_a_crash(spool, confdir, tmp_path):
    _, _, path = spool
    data = path.read_bytes()
    for cut in (len(data) // 3, len(data) - 5):
        f = tmp_path / f"cut{cut}"
        f.write_bytes(data[:cut])
        ours, theirs = both([str(f)], confdir)
        assert ours.returncode == theirs.returncode
        assert ours.stdout == theirs.stdout
        if theirs.returncode:
            assert "record read error" in ours.stderr


def test_postcat_usage(confdir):
    ours, theirs = both(["-x"], confdir)
    assert ours.returncode == theirs.returncode == 1
    assert "fatal: usage:" in ours.stderr
