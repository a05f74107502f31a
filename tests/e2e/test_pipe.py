"""pipe(8): master.cf `pipe` transports (and error:, retry:, discard: in transport_maps), run side by side on Postern and on Debian's
Postfix with the same master.cf lines and main.cf routing: the expanded argument vector
each command receives, the headers the flags add, the delivery records and reasons for
exit statuses 0, 75 (deferred, shown by mailq), 67 (bounced 5.1.1) and an unknown one, the
time limit, and the seed's Dovecot example (flags=DRhu ... argv=/usr/lib/dovecot/deliver
-f ${sender} -d ${recipient}) ending in Dovecot's Maildir.

Needs root: the commands run as `nobody`, and Postfix's master starts as root."""
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

import dovecotfixture
import postfixpeer
from mailsystem import MailInstance, wait_for
from postfixpeer import PostfixPeer

pytestmark = pytest.mark.skipif(os.getuid() != 0 or postfixpeer.available() != "",
                                reason="pipe(8) runs commands as nobody and Postfix's master "
                                       "starts as root: needs root and Debian's Postfix")

RECORD = """#!/bin/sh
# One file per recipient ($2): the arguments, one per line, then the message.
out="$(dirname "$0")/out/$2"
{ for a in "$@"; do printf '%s\\n' "$a"; done; echo ----; cat; } > "$out"
"""
EXIT = """#!/bin/sh
# exit.sh CODE [OUTPUT]
cat >/dev/null
[ -n "$2" ] && echo "$2"
exit "$1"
"""

ARGS = ("${sender} ${recipient} ${nexthop} ${user} ${extension} ${domain} ${mailbox} "
        "${original_recipient} ${size} ${queue_id} ${client_address} $$literal {x y}")


def master_lines(d, lda_conf):
    return (
        f"argtest unix - n n - - pipe flags=DORXhu user=nobody argv={d}/record.sh {ARGS}\n"
        f"multi unix - n n - - pipe flags=R user=nobody:nogroup argv={d}/record.sh "
        "-f ${sender} -- ${recipient}\n"
        f"tempfail unix - n n - - pipe user=nobody argv={d}/exit.sh 75\n"
        f"nouser unix - n n - - pipe user=nobody argv={d}/exit.sh 67\n"
        f"status3 unix - n n - - pipe user=nobody argv={d}/exit.sh 3 {{out put}}\n"
        f"dsntext unix - n n - - pipe user=nobody argv={d}/exit.sh 1 {{4.2.2 mailbox full}}\n"
        "slow unix - n n - - pipe user=nobody argv=/bin/sleep 60\n"
        f"bigonly unix - n n - - pipe size=10 user=nobody argv={d}/exit.sh 0\n"
        f"okout unix - n n - - pipe user=nobody argv={d}/exit.sh 0 {{all (well) done}}\n"
        "dovecot unix - n n - - pipe flags=DRhu user=nobody:nogroup "
        f"argv=/usr/lib/dovecot/deliver -c {lda_conf} -f ${{sender}} -d ${{recipient}}\n")


MAIN_CF = """\
transport_maps = inline:{ {args.test=argtest}, {multi.test=multi}, {defer.test=tempfail},
  {nouser.test=nouser}, {status3.test=status3}, {dsn.test=dsntext}, {slow.test=slow},
  {big.test=bigonly}, {sender.test=discard}, {busy.test=retry:4.7.1 busy},
  {err.test=error:5.7.1 go away}, {drop.test=discard:dropped here}, {noreason.test=error:},
  {okout.test=okout} }
argtest_destination_recipient_limit = 1
dovecot_destination_recipient_limit = 1
virtual_mailbox_domains = dove.test
virtual_transport = dovecot
slow_time_limit = 3s
recipient_delimiter = +
"""

RCPTS = ["Joe+Ext@Args.Test", "a@multi.test b@multi.test", "x@defer.test", "x@nouser.test",
         "x@status3.test", "x@dsn.test", "x@slow.test", "x@big.test", "alice@dove.test",
         "x@busy.test", "x@err.test", "x@drop.test", "x@noreason.test", "x@okout.test"]


def script_dir(root):
    d = Path(root)
    d.mkdir()
    (d / "out").mkdir()
    shutil.chown(d / "out", "nobody")
    for name, text in (("record.sh", RECORD), ("exit.sh", EXIT)):
        (d / name).write_text(text)
        os.chmod(d / name, 0o755)
    return d


@pytest.fixture(scope="module")
def dovecot():
    if dovecotfixture.available():
        pytest.skip(dovecotfixture.available())
    dv = dovecotfixture.DovecotLmtp(users={"alice": None})
    # dovecot-lda runs as nobody: its own log file, no stats socket, the server's userdb.
    os.chmod(dv.root / "dovecot.conf", 0o644)
    (dv.root / "lda.log").touch()
    shutil.chown(dv.root / "lda.log", "nobody")
    dv.lda_conf = dv.root / "lda.conf"
    dv.lda_conf.write_text(f"!include {dv.root}/dovecot.conf\nlog_path = {dv.root}/lda.log\n"
                           "stats_writer_socket_path =\n")
    os.chmod(dv.lda_conf, 0o644)
    yield dv
    dv.stop()


@pytest.fixture(scope="module")
def systems(dovecot, tmp_path_factory):
    """Both mail systems with the same transports; each got the same messages."""
    base = Path(tempfile.mkdtemp(prefix="postern-pipe-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    pd, fd = script_dir(base / "postern"), script_dir(base / "postfix")
    inst = MailInstance(tmp_path_factory.mktemp("pipe"), main_cf=MAIN_CF,
                        master_cf=master_lines(pd, dovecot.lda_conf))
    peer = PostfixPeer(main_cf=MAIN_CF, master_cf_text=postfixpeer.master_cf(
        extra=master_lines(fd, dovecot.lda_conf)), name="pipe")
    inst.start()
    peer.start()
    try:
        for rcpt in RCPTS:
            msg = f"Subject: pipe {rcpt}\nFrom: s@sender.test\n\nbody line\n.dot line\n"
            assert inst.sendmail(["-f", "s@sender.test", *rcpt.split()], msg).returncode == 0
            assert peer.sendmail(["-f", "s@sender.test", *rcpt.split()], msg).returncode == 0
        for system in (inst, peer):
            for rcpt in " ".join(RCPTS).split():
                wait_for(lambda: f"to=<{rcpt.lower() if 'dove' in rcpt else rcpt}>" in system.log(), 60)
        yield {"postern": (inst, pd), "postfix": (peer, fd)}
    finally:
        inst.stop()
        peer.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def record(system, rcpt, dirs):
    """(relay, dsn, status, reason) of the recipient's first delivery record, with the
    script directory written as DIR."""
    log, d = system.log(), str(dirs)
    m = re.search(r"to=<%s>,(?: orig_to=<[^>]*>,)? relay=(\S+), delay=[\d.]+, "
                  r"delays=[\d./]+, dsn=(\S+), status=(\w+) \((.*)\)$" % re.escape(rcpt), log, re.M)
    assert m, f"no record for {rcpt}:\n{log}"
    return (m.group(1), m.group(2), m.group(3), m.group(4).replace(d, "DIR"))


@pytest.mark.parametrize("rcpt", " ".join(RCPTS).split())
def test_delivery_records_match_postfix(systems, rcpt):
    (inst, pd), (peer, fd) = systems["postern"], systems["postfix"]
    wait_for(lambda: f"to=<{rcpt}>" in inst.log() and f"to=<{rcpt}>" in peer.log(), 30)
    ours, theirs = record(inst, rcpt, pd), record(peer, rcpt, fd)
    assert ours == theirs


def test_expected_outcomes(systems):
    inst, pd = systems["postern"]
    assert record(inst, "Joe+Ext@Args.Test", pd) == (
        "argtest", "2.0.0", "sent", "delivered via argtest service")
    assert record(inst, "x@defer.test", pd) == ("tempfail", "4.3.0", "deferred", "temporary failure")
    assert record(inst, "x@nouser.test", pd) == ("nouser", "5.1.1", "bounced", "user unknown")
    assert record(inst, "x@status3.test", pd) == (
        "status3", "5.3.0", "bounced", 'Command died with status 3: "DIR/exit.sh". Command output: out put ')
    assert record(inst, "x@dsn.test", pd)[1:] == ("4.2.2", "deferred", "mailbox full ")
    assert record(inst, "x@slow.test", pd)[2:] == ("bounced", 'Command time limit exceeded: "/bin/sleep"')
    assert record(inst, "x@big.test", pd)[1:] == ("5.2.3", "bounced", "message too large")
    # error, retry and discard through transport_maps
    assert record(inst, "x@busy.test", pd) == ("none", "4.7.1", "deferred", "busy")
    assert record(inst, "x@err.test", pd) == ("none", "5.7.1", "bounced", "go away")
    assert record(inst, "x@drop.test", pd) == ("none", "2.0.0", "sent", "dropped here")
    assert record(inst, "x@noreason.test", pd) == ("none", "5.0.0", "bounced", "Address is undeliverable")


def args_of(dirs, rcpt):
    text = (dirs / "out" / rcpt).read_text()
    args, _, message = text.partition("----\n")
    return args.splitlines(), message


def test_argv_expansion_matches_postfix(systems):
    (inst, pd), (peer, fd) = systems["postern"], systems["postfix"]
    ours, _ = args_of(pd, "joe+ext@args.test")
    theirs, _ = args_of(fd, "joe+ext@args.test")
    qid = re.search(r"(\w+): to=<Joe\+Ext@Args.Test>", inst.log()).group(1)
    # flags h and u fold the whole recipient and original recipient
    assert ours[:8] == ["s@sender.test", "joe+ext@args.test", "args.test", "joe", "ext",
                        "args.test", "joe+ext", "joe+ext@args.test"]
    assert ours[9:] == [qid, "", "$literal", "x y"]
    assert int(ours[8]) > 0
    # Everything but the size and the queue ID is the same as Postfix's.
    assert ours[:8] + ours[10:] == theirs[:8] + theirs[10:]


def test_flags_add_postfix_headers(systems):
    for name in ("postern", "postfix"):
        _, d = systems[name]
        _, message = args_of(d, "joe+ext@args.test")
        head = message.split("\n\n")[0].splitlines()
        assert head[:3] == ["Return-Path: <s@sender.test>", "X-Original-To: Joe+Ext@Args.Test",
                            "Delivered-To: Joe+Ext@Args.Test"], (name, message)
        assert message.endswith("\nbody line\n.dot line\n"), (name, message)


def test_one_command_for_many_recipients(systems):
    """Without a recipient limit both recipients of multi.test go to one command, which
    sees one argument per recipient."""
    for name in ("postern", "postfix"):
        _, d = systems[name]
        args, _ = args_of(d, "s@sender.test")   # $2 of "-f s@sender.test -- a b" names the file
        assert args == ["-f", "s@sender.test", "--", "a@multi.test", "b@multi.test"], (name, args)


def test_deferred_reason_in_mailq(systems):
    inst, _ = systems["postern"]
    def listing():
        return inst.command("postqueue", "-p").stdout
    assert wait_for(lambda: "(temporary failure)" in listing() and "(mailbox full )" in listing()
                    and "(busy)" in listing(), 30), listing()
    assert re.search(r"\(temporary failure\)\n +x@defer\.test\n", listing())


def test_dovecot_deliver_writes_the_maildir(systems, dovecot):
    # One message from each system, each with the headers of flags D and R on top.
    assert wait_for(lambda: len(dovecot.maildir("alice")) >= 2, 60), dovecot.log()
    for m in dovecot.maildir("alice"):
        assert "Delivered-To: alice@dove.test\n" in m
        assert "Return-Path: <s@sender.test>\n" in m
        assert "Subject: pipe alice@dove.test" in m
    inst, pd = systems["postern"]
    assert record(inst, "alice@dove.test", pd) == ("dovecot", "2.0.0", "sent",
                                                    "delivered via dovecot service")


BAD_MASTER = (
    "rootcmd unix - n n - - pipe user=root argv=/bin/true\n"
    "nousercmd unix - n n - - pipe flags=R argv=/bin/true\n"
    "macrocmd unix - n n - - pipe user=nobody argv=/bin/echo ${colour}\n"
    "dflag unix - n n - - pipe flags=D user=nobody argv=/bin/true\n"
    "unprivcmd unix - - n - - pipe user=nobody argv=/bin/true\n"
)
BAD_MAIN = ("transport_maps = inline:{ root.test=rootcmd, nouser.test=nousercmd, "
            "macro.test=macrocmd, dflag.test=dflag, unpriv.test=unprivcmd }\n")
# What each transport's pipe logs, and the recipients' fate when it answers at all.
BAD_LOGS = [
    r"pipe\[\d+\]: fatal: user= command-line attribute specifies root privileges",
    r"pipe\[\d+\]: fatal: missing user= command-line attribute",
    r'pipe\[\d+\]: warning: file \S+/master.cf: service macrocmd: unknown macro name: "colour"',
    r"pipe\[\d+\]: warning: pipe flag `D' requires dflag_destination_recipient_limit = 1",
    r"pipe\[\d+\]: fatal: service unprivcmd requires privileged operation",
]


def test_refusals_and_configuration_errors_match_postfix(tmp_path):
    inst = MailInstance(tmp_path / "postern", main_cf=BAD_MAIN, master_cf=BAD_MASTER)
    peer = PostfixPeer(main_cf=BAD_MAIN, master_cf_text=postfixpeer.master_cf(extra=BAD_MASTER),
                       name="pipebad")
    inst.start()
    peer.start()
    try:
        for system in (inst, peer):
            for rcpts in (["a@root.test"], ["a@nouser.test"], ["a@macro.test"],
                          ["a@dflag.test", "b@dflag.test"], ["a@unpriv.test"]):
                assert system.sendmail(["-f", "", *rcpts], "Subject: bad\n\nx\n").returncode == 0
        for system in (inst, peer):
            for pattern in BAD_LOGS:
                assert wait_for(lambda: re.search(pattern, system.log()), 60), (pattern, system.log())
            for rcpt in ("a@macro.test", "a@dflag.test", "b@dflag.test"):
                assert wait_for(lambda: re.search(
                    r"to=<%s>, relay=\w+, .*dsn=4\.3\.5, status=deferred "
                    r"\(mail system configuration error\)" % re.escape(rcpt), system.log()), 60), system.log()
    finally:
        inst.stop()
        peer.cleanup()
