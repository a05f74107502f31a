"""The shipped conf/main.cf and conf/master.cf: Debian's Postfix and Postern read them
without a warning, and print the same postconf -n / -M / -F listings."""
import shutil

import pytest

from conftest import TOP, postern, postfix, run


@pytest.fixture
def shipped(tmp_path):
    d = tmp_path / "etc"
    d.mkdir()
    for name in ("main.cf", "master.cf"):
        shutil.copy(TOP / "conf" / name, d / name)
    return d


@pytest.mark.parametrize("flags", [["-n"], ["-M"], ["-F"], ["-x", "-n"]])
def test_shipped_files_list_the_same_as_postfix(shipped, flags):
    ours = run([postern("postconf"), "-c", str(shipped)] + flags)
    theirs = run([postfix("postconf"), "-c", str(shipped)] + flags)
    assert theirs.returncode == 0 and theirs.stderr == ""
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, theirs.stdout, "")


def test_master_cf_lists_every_postern_service(shipped):
    p = run([postern("postconf"), "-c", str(shipped), "-M"])
    services = {tuple(line.split()[:2]) for line in p.stdout.splitlines()}
    for name in ("pickup", "cleanup", "qmgr", "tlsmgr", "rewrite", "bounce", "defer",
                 "trace", "verify", "flush", "proxymap", "proxywrite", "smtp", "relay",
                 "showq", "error", "retry", "discard", "local", "virtual", "lmtp", "anvil",
                 "scache", "auth"):
        assert (name, "unix") in services, name
    for name in ("smtp", "pop3", "imap"):
        assert (name, "inet") in services, name
    text = (shipped / "master.cf").read_text()
    for commented in ("#submission inet", "#submissions inet", "#postlog   unix-dgram"):
        assert commented in text
