"""scripts/run.sh (make run): builds an instance for the invoking user, shows the
commands working on it, and can run again over its own result."""
import os

from conftest import BUILD, TOP, run


def run_script(tmp_path):
    return run(["sh", str(TOP / "scripts" / "run.sh"), str(BUILD)],
               env={"POSTERN_RUN_DIR": str(tmp_path / "run")})


def test_make_run_sets_up_an_instance_and_runs_twice(tmp_path):
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
        assert len(log) == 2 and all("make run: instance ready" in l for l in log)
    assert "127.0.0.1:2525 inet" in (etc / "master.cf").read_text()
