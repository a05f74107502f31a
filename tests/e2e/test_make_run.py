"""scripts/run.sh (make run): builds an instance for the invoking user, shows the
commands working on it, starts the mail system, and can run again over its own result
(reloading the running instance). The test stops the instance it started."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import BUILD, TOP, run

STARTS = (BUILD / "sbin" / "postern").exists() and (BUILD / "libexec" / "postern" / "master").exists()
# What the local mail flow needs, so that the instructions make run prints can be followed.
PIPELINE = STARTS and all((BUILD / "sbin" / p).exists() for p in ("sendmail", "postdrop")) and \
    all((BUILD / "libexec" / "postern" / d).exists()
        for d in ("pickup", "cleanup", "trivial-rewrite", "qmgr", "local"))


def run_script(tmp_path):
    return run(["sh", str(TOP / "scripts" / "run.sh"), str(BUILD)],
               env={"POSTERN_RUN_DIR": str(tmp_path / "run")})


def postern_ctl(tmp_path, verb):
    return run([str(BUILD / "sbin" / "postern"), "-c", str(tmp_path / "run" / "etc"), verb])


@pytest.fixture
def run_base(tmp_path):
    """As root the daemons run as postfix, which must reach the queue: a 0755 tree."""
    if os.geteuid() != 0:
        yield tmp_path
        return
    base = Path(tempfile.mkdtemp(prefix="postern-run-"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_make_run_sets_up_an_instance_and_runs_twice(run_base):
    tmp_path = run_base
    try:
        check_runs_twice(tmp_path)
    finally:
        if STARTS and postern_ctl(tmp_path, "status").returncode == 0:
            assert postern_ctl(tmp_path, "stop").returncode == 0


def check_runs_twice(tmp_path):
    first = run_script(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    second = run_script(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "WRONG" not in first.stderr + second.stderr
    etc = tmp_path / "run" / "etc"
    main_cf = (etc / "main.cf").read_text().splitlines()
    # One line per instance setting, however often the script ran.
    for name in ("queue_directory", "maillog_file", "mail_owner", "command_directory"):
        assert sum(1 for l in main_cf if l.startswith(name + " =")) == 1, name
    assert f"queue_directory = {tmp_path}/run/spool" in main_cf
    assert f"command_directory = {BUILD}/sbin" in main_cf
    # The round trips that ran report ok; the ones for commands that are built ran.
    for prog, marker in (("postmap", "ok: postmap -q alice@example.com"),
                         ("postalias", "ok: postalias -q abuse -> postmaster")):
        if (BUILD / "sbin" / prog).exists():
            assert marker in second.stdout, second.stdout
    if (BUILD / "sbin" / "postlog").exists():
        log = (tmp_path / "run" / "log" / "maillog").read_text().splitlines()
        # postlog's line once per run (the mail system logs there too).
        assert sum("postlog" in l and "make run: instance ready" in l for l in log) == 2
    assert "127.0.0.1:2525 inet" in (etc / "master.cf").read_text()
    # The mail system was started by the first run and reloaded by the second.
    if STARTS:
        assert "postern/postern-script: starting the Postern mail system" in first.stderr
        assert "postern/postern-script: refreshing the Postern mail system" in second.stderr
        assert "the Postern mail system is running: PID:" in second.stderr
        assert postern_ctl(tmp_path, "status").returncode == 0
    assert f"sendmail -C {etc} " in second.stdout
    if PIPELINE:
        follow_the_printed_instructions(tmp_path, second.stdout)


def follow_the_printed_instructions(tmp_path, stdout):
    """Sends a message the way make run says, and finds it where make run says."""
    import pwd
    import time
    me = pwd.getpwuid(os.getuid()).pw_name
    etc = tmp_path / "run" / "etc"
    assert f"{BUILD}/sbin/sendmail -C {etc} {me}@localhost" in stdout
    mailbox = tmp_path / "run" / "mail" / me
    assert f"cat {mailbox}" in stdout
    r = run([str(BUILD / "sbin" / "sendmail"), "-C", str(etc), f"{me}@localhost"],
            input="Subject: hello from make run\n\nhi\n")
    assert r.returncode == 0, r.stderr
    maillog = tmp_path / "run" / "log" / "maillog"

    def delivered():
        # local(8) logs after it has written the mailbox.
        return mailbox.exists() and "hello from make run" in mailbox.read_text() and \
            "status=sent (delivered to mailbox)" in maillog.read_text()
    end = time.time() + 30
    while time.time() < end and not delivered():
        time.sleep(0.1)
    log = maillog.read_text()
    assert mailbox.exists() and "Subject: hello from make run" in mailbox.read_text(), log
    assert "status=sent (delivered to mailbox)" in log
