"""A full queue file system: submissions fail with a temporary error (EX_TEMPFAIL, so the
caller keeps the message) and nothing already queued is lost.

The queue directory is a 4 MB tmpfs (mounting needs root, as `make check` runs). Mail is
queued while no local delivery agent is configured, so it waits in the queue; then the
file system is filled to the last byte, a submission must fail cleanly, the daemons must
survive the full disk, and once space is back and local is configured, every message
queued before the disk filled is delivered and the refused one is not.
"""
import email
import os
import subprocess

import pytest

from mailsystem import MAIL_SERVICES, MailInstance, wait_for

EX_TEMPFAIL = 75


def fill(directory):
    """Writes a file until the file system is full; returns its path."""
    path = directory / "filler"
    with open(path, "wb", buffering=0) as f:
        block = b"\0" * 65536
        try:
            while True:
                f.write(block)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0")
        except OSError:
            pass
    return path


@pytest.fixture
def tmpfs_instance(tmp_path):
    assert os.getuid() == 0, "the full-disk test mounts a tmpfs and needs root (make check runs as root)"
    root = tmp_path / "disk"
    without_local = [s for s in MAIL_SERVICES if s[0] != "local"]
    inst = MailInstance(root, main_cf=f"mail_spool_directory = {root}/mail/\n",
                        services=without_local)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(inst.queue)],
                   check=True)
    try:
        inst.start()
        yield inst
    finally:
        inst.stop()
        subprocess.run(["umount", "-l", str(inst.queue)])


def subjects(inst):
    new = inst.root / "mail" / inst.user / "new"
    if not new.is_dir():
        return []
    return sorted(email.message_from_bytes(f.read_bytes())["Subject"] for f in new.iterdir())


def test_full_queue_refuses_new_mail_temporarily_and_keeps_queued_mail(tmpfs_instance):
    inst = tmpfs_instance
    for n in range(3):
        r = inst.sendmail([f"{inst.user}@localhost"], f"Subject: queued {n}\n\nbody\n")
        assert r.returncode == 0, r.stderr
    # No local agent: the messages reach the queue and stay there (deferred or active).
    assert wait_for(lambda: len(inst.queue_files("deferred")) + len(inst.queue_files("active")) == 3,
                    timeout=30), inst.log()

    filler = fill(inst.queue)
    r = inst.sendmail([f"{inst.user}@localhost"], "Subject: refused\n\n" + "x" * 100000 + "\n")
    assert r.returncode == EX_TEMPFAIL, (r.returncode, r.stderr)
    assert "No space left on device" in r.stderr, r.stderr
    assert not inst.queue_files("maildrop"), "a refused submission left a file behind"

    # Space comes back and local is configured: everything queued before is delivered.
    filler.unlink()
    with open(inst.conf / "master.cf", "a") as f:
        f.write("  ".join([s for s in MAIL_SERVICES if s[0] == "local"][0]) + "\n")
    os.kill(inst.proc.pid, 1)  # SIGHUP: reload master.cf
    run_flush = inst.command("postqueue", "-f")
    assert run_flush.returncode == 0, run_flush.stderr
    assert wait_for(lambda: len(subjects(inst)) == 3, timeout=60), inst.log()
    assert subjects(inst) == ["queued 0", "queued 1", "queued 2"]
    assert not inst.queue_files("corrupt")
    # The daemons lived through it: a new message still flows.
    r = inst.sendmail([f"{inst.user}@localhost"], "Subject: after\n\nbody\n")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: len(subjects(inst)) == 4, timeout=60), inst.log()
