"""sendmail(1) and postdrop(1): the maildrop file they write, the options real callers
use, exit statuses, -bs, and the commands sendmail hands work to.

Most tests need no running mail system: sendmail + postdrop write maildrop/ID and the
test reads it back with Debian's postcat (the reference reader of the record layout).
Where Debian's sendmail can run (as root, with its set-gid postdrop), the same input goes
through both and the maildrop files must say the same things.
"""
import os
import shutil
import smtplib
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import postern, postfix, run
from mailsystem import queue_record

EX_USAGE, EX_DATAERR, EX_SOFTWARE, EX_UNAVAILABLE, EX_TEMPFAIL = 64, 65, 70, 69, 75


class Drop:
    """A config dir and queue with maildrop/ only: sendmail -> postdrop -> maildrop/ID."""

    def __init__(self, root, extra=""):
        self.root = Path(root)
        self.conf = self.root / "conf"
        self.queue = self.root / "queue"
        self.conf.mkdir(parents=True)
        for d in ("maildrop", "public", "corrupt"):
            (self.queue / d).mkdir(parents=True)
        self.bin = Path(postern("sendmail")).parent
        self.write_main(extra)

    def write_main(self, extra="", command_directory=None):
        (self.conf / "main.cf").write_text(
            f"queue_directory = {self.queue}\n"
            f"command_directory = {command_directory or self.bin}\n"
            f"maillog_file = {self.root / 'maillog'}\n"
            f"maillog_file_prefixes = {self.root}\n" + extra)

    def sendmail(self, args, message="", env=None, binary=None):
        cmd = [binary or postern("sendmail"), "-C", str(self.conf), *args]
        proc = subprocess.run(cmd, input=message.encode() if isinstance(message, str) else message,
                              capture_output=True, env=dict(os.environ, **(env or {})),
                              executable=cmd[0], timeout=60)
        return proc

    def files(self):
        return sorted(os.listdir(self.queue / "maildrop"))

    def postcat(self, name=None):
        names = [name] if name else self.files()
        assert names, "no maildrop file"
        out = subprocess.run([postfix("postcat"), "-c", str(debian_conf(self.root)),
                              str(self.queue / "maildrop" / names[-1])],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout


def debian_conf(root):
    """A main.cf that Debian's postcat accepts (it only needs to read the file)."""
    d = Path(root) / "pfconf"
    if not d.exists():
        d.mkdir()
        (d / "main.cf").write_text("compatibility_level = 3.6\n")
    return d


def sections(postcat_text):
    """postcat output as {section: [lines]}, without the lines that differ by design
    (sizes, times, the writer's create_time)."""
    out, cur = {}, None
    for line in postcat_text.splitlines():
        if line.startswith("*** "):
            cur = line.split(" ")[1] + ("_END" if " FILE END " in line else "")
            out[cur] = []
        elif cur and not line.startswith(("message_size:", "message_arrival_time:",
                                          "create_time:")):
            out[cur].append(line)
    return out


@pytest.fixture
def drop(tmp_path):
    return Drop(tmp_path)


def test_plain_message_becomes_a_maildrop_file(drop):
    r = drop.sendmail(["-f", "me@example.test", "you@example.test"],
                      "Subject: hi\n\nbody\n")
    assert r.returncode == 0, r.stderr
    assert len(drop.files()) == 1
    s = sections(drop.postcat())
    assert "sender: me@example.test" in s["ENVELOPE"]
    assert "recipient: you@example.test" in s["ENVELOPE"]
    assert "named_attribute: rewrite_context=local" in s["ENVELOPE"]
    assert s["MESSAGE"] == ["Subject: hi", "", "body"]
    mode = os.stat(drop.queue / "maildrop" / drop.files()[0]).st_mode & 0o777
    assert mode == 0o744  # complete, and readable by pickup running as mail_owner
    assert b"unable to look up public/pickup" in r.stderr  # no pickup: only a warning


def test_options_land_in_the_envelope(drop):
    msg = ("From someone@old Mon Jan  1 00:00:00 2024\r\nSubject: hi\r\n"
           "To: a@example.test, \"C D\" <c@example.test>\r\nBcc: hidden@example.test\r\n"
           "\r\nbody\r\n")
    r = drop.sendmail(["-t", "-i", "-f", "Me <me@example.test>", "-F", "Full Name",
                       "-N", "success,delay", "-V", "envid123", "-R", "hdrs",
                       "-B", "8BITMIME", "x@example.test, z@example.test",
                       "Name <n@example.test>"], msg)
    assert r.returncode == 0, r.stderr
    s = sections(drop.postcat())
    env = s["ENVELOPE"]
    for line in ("sender_fullname: Full Name", "sender: me@example.test",
                 "named_attribute: envelope_id=envid123", "named_attribute: ret_flags=2",
                 "named_attribute: encoding=8bit", "recipient: x@example.test",
                 "recipient: z@example.test", "recipient: n@example.test"):
        assert line in env
    assert env.count("named_attribute: notify_flags=10") == 3
    assert s["MESSAGE"][0] == "Subject: hi"  # the From_ line is gone, CR LF is LF
    assert s["HEADER"] == ["named_attribute: notify_flags=10", "recipient: a@example.test",
                           "named_attribute: notify_flags=10", "recipient: c@example.test",
                           "named_attribute: notify_flags=10",
                           "recipient: hidden@example.test"]


def test_resent_headers_win_with_t(drop):
    msg = "To: old@example.test\nResent-To: new@example.test\nSubject: x\n\nbody\n"
    r = drop.sendmail(["-t", "-f", "me@example.test"], msg)
    assert r.returncode == 0, r.stderr
    assert sections(drop.postcat())["HEADER"] == ["recipient: new@example.test"]


def test_dot_line_ends_input_unless_i(drop):
    r = drop.sendmail(["-f", "me@example.test", "you@example.test"], "a\n.\nb\n")
    assert r.returncode == 0
    assert sections(drop.postcat())["MESSAGE"] == ["a"]
    r = drop.sendmail(["-oi", "-f", "me@example.test", "you@example.test"], "a\n.\nb\n")
    assert r.returncode == 0
    files = drop.files()
    assert len(files) == 2
    texts = [sections(drop.postcat(f))["MESSAGE"] for f in files]
    assert ["a", ".", "b"] in texts


def test_long_lines_nul_bytes_and_missing_final_newline(drop):
    long_line = "x" * (5 * 2048 + 17)
    data = b"Subject: bin\n\nnul\x00byte\n" + long_line.encode() + b"\nlast"
    r = drop.sendmail(["-f", "me@example.test", "you@example.test"], data)
    assert r.returncode == 0, r.stderr
    raw = (drop.queue / "maildrop" / drop.files()[0]).read_bytes()
    assert b"nul\x00byte" in raw
    # postcat joins continuation records back into one line.
    lines = drop.postcat().splitlines()
    assert long_line in lines
    assert "last" in lines


def test_message_over_size_limit_is_refused(tmp_path):
    drop = Drop(tmp_path, "message_size_limit = 20000\n")
    r = drop.sendmail(["-f", "me@example.test", "you@example.test"], "x" * 100 + "\n" * 30000)
    assert r.returncode == EX_UNAVAILABLE, r.stderr
    assert b"message file too big" in r.stderr
    assert drop.files() == []


@pytest.mark.parametrize("args,message,status,text", [
    (["-f", "me@example.test"], "Subject: x\n\n", EX_USAGE,
     "Recipient addresses must be specified on the command line or via the -t option"),
    (["-t", "-f", "me@example.test"], "Subject: x\n\nbody\n", EX_USAGE,
     "me@example.test(%d): No recipient addresses found in message header" % os.getuid()),
    (["-Z"], "", EX_USAGE, "fatal: usage: sendmail [options]"),
    (["-bz"], "", EX_USAGE, "fatal: unsupported: -bz"),
    (["-B", "foo", "a"], "", EX_USAGE, "fatal: -B option needs 8BITMIME or 7BIT"),
    (["-t", "-bp"], "", EX_USAGE, "fatal: -t can be used only in delivery mode"),
    (["-bp", "x"], "", EX_USAGE, "fatal: display queue mode requires no recipient"),
    (["-qX"], "", EX_USAGE, "fatal: -qX is not implemented"),
    (["-n", "a"], "", EX_USAGE, "fatal: -n option not supported"),
    (["-qR"], "", EX_USAGE, "fatal: specify: -qRsitename"),
    (["-bv", "-t"], "", EX_USAGE, "fatal: -t option cannot be used with -bv"),
])
def test_usage_errors(drop, args, message, status, text):
    r = drop.sendmail(args, message)
    assert r.returncode == status, r.stderr
    assert text.encode() in r.stderr
    assert drop.files() == []


def test_warnings_for_bad_values_keep_the_message(drop):
    r = drop.sendmail(["-N", "bogus", "-R", "bogus", "-V", "x" * 120, "-f", "a@b c@d",
                       "you@example.test"], "Subject: x\n\n")
    assert r.returncode == 0, r.stderr
    for text in ('unknown DSN NOTIFY command value "bogus" in "bogus"',
                 "bad -N option value -- ignored", "bad -R option value -- ignored",
                 "too long -V option value -- ignored",
                 "-f option specified malformed sender: a@b c@d"):
        assert text.encode() in r.stderr
    assert len(drop.files()) == 1


def test_ignored_sendmail_options(drop):
    r = drop.sendmail(["-oem", "-odb", "-odi", "-om", "-oo", "-os", "-ox", "-bm", "-L", "tag",
                       "-h", "30", "-U", "-m", "-Ac", "-O", "x=y", "-o7", "-f", "me@example.test",
                       "you@example.test"], "Subject: x\n\n")
    assert r.returncode == 0, r.stderr
    assert "recipient: you@example.test" in drop.postcat()
    assert drop.sendmail(["-bh"]).returncode == 0
    assert drop.sendmail(["-q1h"]).returncode == 0


def test_bv_writes_a_probe_and_says_so(drop):
    r = drop.sendmail(["-bv", "-f", "me@example.test", "a@example.test", "C <c@example.test>"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Mail Delivery Status Report will be mailed to <me@example.test>.\n"
    s = sections(drop.postcat())
    assert "named_attribute: trace_flags=512" in s["ENVELOPE"]
    assert s["MESSAGE"] == ["From: me@example.test", "Subject: probe",
                            "To:\ta@example.test,", "\tC <c@example.test>"]


def test_single_v_asks_for_a_delivery_report(drop):
    r = drop.sendmail(["-v", "-f", "me@example.test", "a@example.test"], "Subject: x\n\n")
    assert r.returncode == 0, r.stderr
    assert b"Mail Delivery Status Report will be mailed to <me@example.test>." in r.stdout
    assert "named_attribute: trace_flags=1024" in drop.postcat()


def stub_commands(drop, tmp_path):
    """A command_directory whose postqueue/postalias/postern print their arguments."""
    stub = tmp_path / "stubbin"
    stub.mkdir()
    for name in ("postqueue", "postalias", "postern"):
        p = stub / name
        p.write_text('#!/bin/sh\necho "%s $*"\necho "MAIL_CONFIG=$MAIL_CONFIG"\n' % name)
        p.chmod(0o755)
    drop.write_main(f"alias_database = hash:{tmp_path}/a1, hash:{tmp_path}/a2\n",
                    command_directory=stub)
    return stub


@pytest.mark.parametrize("args,expect", [
    (["-bp"], "postqueue -p"),
    (["-q"], "postqueue -f"),
    (["-qRexample.test"], "postqueue -s example.test"),
    (["-qIABC123"], "postqueue -i ABC123"),
    (["-bi"], "postalias hash:{t}/a1 hash:{t}/a2"),
    (["-I"], "postalias hash:{t}/a1 hash:{t}/a2"),
    (["-bi", "-oAhash:/x/y"], "postalias hash:/x/y"),
    (["-bd"], "postern start"),
])
def test_modes_run_the_right_command(drop, tmp_path, args, expect):
    stub_commands(drop, tmp_path)
    r = drop.sendmail(args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0] == expect.format(t=tmp_path)
    assert lines[1] == f"MAIL_CONFIG={drop.conf}"


def test_mailq_and_newaliases_names(drop, tmp_path):
    stub_commands(drop, tmp_path)
    for name, expect in (("mailq", "postqueue -p"),
                         ("newaliases", f"postalias hash:{tmp_path}/a1 hash:{tmp_path}/a2")):
        link = tmp_path / name
        link.symlink_to(postern("sendmail"))
        r = drop.sendmail([], binary=str(link))
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().splitlines()[0] == expect
    # Still finds postdrop beside itself when command_directory has none.
    r = drop.sendmail(["-f", "me@example.test", "you@example.test"], "Subject: x\n\n")
    assert r.returncode == 0, r.stderr
    assert len(drop.files()) == 1


def smtp_over_pipe(drop):
    """smtplib talking to sendmail -bs over a socketpair."""
    ours, theirs = socket.socketpair()
    proc = subprocess.Popen([postern("sendmail"), "-C", str(drop.conf), "-bs"],
                            stdin=theirs, stdout=theirs, stderr=subprocess.PIPE)
    theirs.close()
    client = smtplib.SMTP()
    client.sock = ours
    code, banner = client.getreply()
    assert code == 220, banner
    return client, proc


def test_bs_smtp_dialogue(drop):
    client, proc = smtp_over_pipe(drop)
    code, ehlo = client.ehlo("client.example.test")
    assert code == 250
    assert b"DSN" in ehlo and b"8BITMIME" in ehlo and b"PIPELINING" in ehlo
    refused = client.sendmail("me@example.test", ["a@example.test", "b@example.test"],
                              "Subject: smtp\r\n\r\n.leading dot\r\nline\r\n",
                              rcpt_options=["NOTIFY=SUCCESS"], mail_options=["RET=HDRS"])
    assert refused == {}
    assert client.noop()[0] == 250
    assert client.docmd("FOO")[0] == 502
    assert client.docmd("RCPT TO:<x@example.test>")[0] == 503
    assert client.quit()[0] == 221
    assert proc.wait(timeout=10) == 0
    s = sections(drop.postcat())
    assert "sender: me@example.test" in s["ENVELOPE"]
    assert "named_attribute: ret_flags=2" in s["ENVELOPE"]
    assert s["ENVELOPE"].count("named_attribute: notify_flags=2") == 2
    assert s["MESSAGE"] == ["Subject: smtp", "", ".leading dot", "line"]


def test_bs_two_messages_and_rset(drop):
    client, proc = smtp_over_pipe(drop)
    client.helo("client")
    client.sendmail("a@example.test", ["x@example.test"], "Subject: 1\r\n\r\none\r\n")
    assert client.docmd("MAIL FROM:<b@example.test>")[0] == 250
    assert client.rset()[0] == 250
    client.sendmail("", ["y@example.test"], "Subject: 2\r\n\r\ntwo\r\n")
    client.quit()
    proc.wait(timeout=10)
    senders = sorted(line for f in drop.files() for line in drop.postcat(f).splitlines()
                     if line.startswith("sender:"))
    assert senders == ["sender: ", "sender: a@example.test"]


def test_bs_refuses_oversize_message(tmp_path):
    drop = Drop(tmp_path, "message_size_limit = 1000\n")
    client, proc = smtp_over_pipe(drop)
    client.ehlo("c")
    with pytest.raises(smtplib.SMTPSenderRefused) as e:  # SIZE= declared too big
        client.sendmail("a@example.test", ["x@example.test"], "Subject: big\r\n\r\n" + "y" * 5000)
    assert e.value.smtp_code == 552
    assert client.docmd("MAIL FROM:<a@example.test>")[0] == 250
    assert client.docmd("RCPT TO:<x@example.test>")[0] == 250
    code, text = client.data("Subject: big\r\n\r\n" + "y" * 5000)
    assert (code, text) == (552, b"5.3.4 Error: message file too big")
    client.quit()
    proc.wait(timeout=10)
    assert drop.files() == []


def test_mailutils_mail_command(drop):
    """GNU mailutils' mail(1) with sendmail set to ours (it runs sendmail -oi -t)."""
    r = subprocess.run(["mail", "-E", f"set sendmail=sendmail://{postern('sendmail')}",
                        "-s", "Test subject", "-r", "me@example.test", "user@example.test"],
                       input=b"hello from mail\n", capture_output=True, timeout=60,
                       env=dict(os.environ, MAIL_CONFIG=str(drop.conf), HOME=str(drop.root)))
    assert r.returncode == 0, r.stderr
    s = sections(drop.postcat())
    assert "sender: me@example.test" in s["ENVELOPE"]
    assert "recipient: user@example.test" in s["HEADER"] + s["ENVELOPE"]
    assert "Subject: Test subject" in s["MESSAGE"]
    assert "hello from mail" in s["MESSAGE"]


def test_cron_and_git_send_email_style_calls(drop):
    cron = "To: root\nSubject: Cron <root@host> run-parts\n\noutput\n.\nmore\n"
    assert drop.sendmail(["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "-t"], cron).returncode == 0
    git = "From: Me <me@example.test>\nTo: list@example.test\nCc: a@example.test\n" \
          "Subject: [PATCH] x\n\ndiff\n"
    r = drop.sendmail(["-i", "-f", "me@example.test", "-t", "extra@example.test"], git)
    assert r.returncode == 0, r.stderr
    texts = [sections(drop.postcat(f)) for f in drop.files()]
    cron_s = next(t for t in texts if "sender_fullname: CronDaemon" in t["ENVELOPE"])
    assert cron_s["HEADER"] == ["recipient: root"]
    assert cron_s["MESSAGE"][-2:] == [".", "more"]
    git_s = next(t for t in texts if "sender: me@example.test" in t["ENVELOPE"])
    assert "recipient: extra@example.test" in git_s["ENVELOPE"]
    assert git_s["HEADER"] == ["recipient: list@example.test", "recipient: a@example.test"]


def test_authorized_submit_users(tmp_path):
    import pwd
    user = pwd.getpwuid(os.getuid()).pw_name
    drop = Drop(tmp_path, f"authorized_submit_users = !{user}, static:anyone\n")
    r = drop.sendmail(["-f", "me@example.test", "you@example.test"], "Subject: x\n\n")
    assert r.returncode == 77, r.stderr  # EX_NOPERM
    text = f"fatal: User {user}({os.getuid()}) is not allowed to submit mail"
    assert text.encode() in r.stderr
    assert drop.sendmail(["-bs"]).returncode == 77
    # postdrop enforces it too: sendmail's check is only the friendlier message.
    p = subprocess.run([postern("postdrop"), "-c", str(drop.conf)], input=b"",
                       capture_output=True, timeout=30)
    assert p.returncode == 1 and text.encode() in p.stderr
    assert drop.files() == []


# ---- postdrop on its own -----------------------------------------------------------

rec = queue_record


def postdrop(drop, data):
    return subprocess.run([postern("postdrop"), "-c", str(drop.conf), "-r"], input=data,
                          capture_output=True, timeout=30)


def good_stream(extra_env=b""):
    return (rec("A", "rewrite_context=local") + extra_env + rec("S", "me@example.test") +
            rec("R", "you@example.test") + rec("M") + rec("N", "Subject: x") + rec("N") +
            rec("N", "body") + rec("X") + rec("E"))


def test_postdrop_answers_queue_id_then_status(drop):
    r = postdrop(drop, good_stream())
    assert r.returncode == 0, r.stderr
    files = drop.files()
    assert r.stdout == f"queue_id={files[0]}\n\nstatus=0\nreason=\n\n".encode()


def test_postdrop_drops_forbidden_attributes(drop):
    r = postdrop(drop, good_stream(rec("A", "log_client_name=evil.example")))
    assert r.returncode == 0, r.stderr
    assert b"ignoring attribute record: log_client_name=evil.example" in r.stderr
    assert "log_client_name" not in drop.postcat()


@pytest.mark.parametrize("data,text", [
    (rec("T", "1 0") + good_stream(), b"unexpected record type: 84"),
    (rec("A", "rewrite_context=local") + rec("N", "early"), b"unexpected record type: 78"),
    (b"\x00\xff\xff\xff\xff\xff\xff", b"malformed input"),
])
def test_postdrop_refuses_bad_streams(drop, data, text):
    r = postdrop(drop, data)
    assert r.returncode == 1
    assert text in r.stderr
    assert drop.files() == []


def test_postdrop_cancelled_input_leaves_nothing(drop):
    r = postdrop(drop, good_stream()[:-2])  # no E record
    assert r.returncode == 0
    assert drop.files() == []
    stream = rec("A", "rewrite_context=local") + rec("M") + rec("X") + rec("E")
    r = postdrop(drop, stream)  # no sender, no recipient
    assert r.returncode == 1
    assert r.stdout.endswith(b"status=1\nreason=\n\n")
    assert drop.files() == []


@pytest.mark.skipif(os.getuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root to install a set-gid postdrop")
def test_setgid_postdrop_refuses_unlisted_config_directory(drop, tmp_path):
    import tempfile
    setgid = Path(tempfile.mkdtemp(prefix="postern-sgid-"))  # reachable for nobody
    os.chmod(setgid, 0o755)
    binary = setgid / "postdrop"
    shutil.copy(postern("postdrop"), binary)
    os.chown(binary, 0, 65534)
    os.chmod(binary, 0o2755)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65533", "--clear-groups",
                        str(binary), "-c", str(drop.conf)], input=good_stream(),
                       capture_output=True, timeout=30)
    shutil.rmtree(setgid)
    assert r.returncode == 1
    assert f"untrusted configuration directory name: {drop.conf}".encode() in r.stderr
    assert drop.files() == []


# ---- Debian's Postfix as the reference ----------------------------------------------

@pytest.mark.skipif(os.getuid() != 0, reason="Debian's postdrop needs its set-gid group")
def test_same_maildrop_file_as_postfix(tmp_path):
    import grp
    import pwd
    ours = Drop(tmp_path / "ours")
    pf = tmp_path / "pf"
    (pf / "q" / "maildrop").mkdir(parents=True)
    (pf / "q" / "public").mkdir()
    (pf / "conf").mkdir()
    (pf / "conf" / "main.cf").write_text(
        f"queue_directory = {pf / 'q'}\ncompatibility_level = 3.6\n"
        f"maillog_file = {pf / 'log'}\nmaillog_file_prefixes = {pf}\n")
    os.chown(pf / "q" / "maildrop", pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postdrop").gr_gid)
    os.chmod(pf / "q" / "maildrop", 0o1730)
    msg = ("From x@y Mon\r\nSubject: same\r\nTo: a@example.test, \"C D\" <c@example.test>\r\n"
           "\r\nbody\r\n" + "z" * 5000 + "\r\n.\r\nafter dot\r\n")
    args = ["-t", "-f", "Me <me@example.test>", "-F", "Full N", "-N", "success,delay",
            "-V", "envid123", "-R", "full", "-B", "8BITMIME", "x@example.test, z@example.test",
            "Name <n@example.test>", ""]
    a = ours.sendmail(args, msg)
    b = subprocess.run([postfix("sendmail"), "-C", str(pf / "conf"), *args],
                       input=msg.encode(), capture_output=True, timeout=60)
    assert a.returncode == b.returncode == 0, (a.stderr, b.stderr)
    pf_file = pf / "q" / "maildrop" / os.listdir(pf / "q" / "maildrop")[0]
    theirs = subprocess.run([postfix("postcat"), "-c", str(debian_conf(tmp_path)), str(pf_file)],
                            capture_output=True, text=True).stdout
    mine, ref = sections(ours.postcat()), sections(theirs)
    assert sorted(mine["ENVELOPE"]) == sorted(ref["ENVELOPE"])
    assert mine["MESSAGE"] == ref["MESSAGE"]
    assert mine["HEADER"] == ref["HEADER"]


# ---- through the real pickup and cleanup ---------------------------------------------

def stand_in_rewrite(path, origin):
    """private/rewrite for cleanup: local addresses get @origin, as trivial-rewrite."""
    from mailsystem import RecordServer

    def rewrite(req):
        addr = req.get("address", [""])[0]
        return {"flags": 0, "address": addr + "@" + origin if addr and "@" not in addr else addr}
    return RecordServer(path, rewrite)


@pytest.mark.skipif(not Path(postern("postdrop")).parent.parent.joinpath(
    "libexec", "postern", "cleanup").exists(), reason="cleanup is not built")
def test_sendmail_to_incoming_through_pickup_and_cleanup(tmp_path):
    from mailsystem import MAIL_SERVICES, MailInstance, wait_for
    services = [s for s in MAIL_SERVICES if s[0] in ("pickup", "cleanup")]
    inst = MailInstance(tmp_path, services=services)
    inst.make_queue_tree()
    rewrite = stand_in_rewrite(inst.queue / "private" / "rewrite", "host.example.test")
    inst.start()
    try:
        msg = "Subject: pipeline\nTo: header@example.test\nBcc: secret@example.test\n\nhello\n"
        r = inst.sendmail(["-t", "-i", "-f", "me@example.test", "argv@example.test"], msg)
        assert r.returncode == 0, r.stderr
        assert wait_for(lambda: inst.queue_files("incoming") and not inst.queue_files("maildrop"),
                        timeout=30), inst.log()
        qid = inst.queue_files("incoming")[0]
        uid = os.getuid()
        log = inst.wait_log(f"{qid}: uid={uid} from=<me@example.test>")
        assert f"{qid}: message-id=<" in log
        out = subprocess.run([postfix("postcat"), "-c", str(debian_conf(tmp_path)),
                              str(inst.queue / "incoming" / qid)],
                             capture_output=True, text=True).stdout
        s = sections(out)
        for rcpt in ("argv@example.test", "header@example.test", "secret@example.test"):
            assert f"recipient: {rcpt}" in s["ENVELOPE"] + s["HEADER"]
        # mail_name is cleanup's to choose; the uid is the submitter's, as in Postfix.
        assert s["MESSAGE"][0].startswith("Received: by host.example.test (")
        assert s["MESSAGE"][0].endswith(f", from userid {uid})")
        assert s["MESSAGE"][1].startswith(f"\tid {qid}; ")
        assert "Subject: pipeline" in s["MESSAGE"]
        assert not any(line.startswith("Bcc:") for line in s["MESSAGE"])
    finally:
        inst.stop()
        rewrite.close()


@pytest.mark.skipif(not all(Path(postern("postdrop")).parent.parent.joinpath(
    "libexec", "postern", d).exists() for d in ("cleanup", "qmgr", "local", "trivial-rewrite")),
    reason="the mail flow is not built")
def test_real_callers_reach_the_mailbox(tmp_path):
    """mailutils' mail, sendmail -bs and a cron-style -t -oi call, delivered to a Maildir."""
    import email
    from mailsystem import MailInstance, wait_for
    inst = MailInstance(tmp_path / "i", main_cf=f"mail_spool_directory = {tmp_path}/i/mail/\n")
    inst.start()
    try:
        user = inst.user
        r = subprocess.run(["mail", "-E", f"set sendmail=sendmail://{postern('sendmail')}",
                            "-s", "via mailutils", user], input=b"mailutils body\n",
                           capture_output=True, timeout=60,
                           env=dict(os.environ, MAIL_CONFIG=str(inst.conf), HOME=str(tmp_path)))
        assert r.returncode == 0, r.stderr
        ours, theirs = socket.socketpair()
        proc = subprocess.Popen([postern("sendmail"), "-C", str(inst.conf), "-bs"],
                                stdin=theirs, stdout=theirs)
        theirs.close()
        client = smtplib.SMTP()
        client.sock = ours
        client.getreply()
        client.ehlo("localhost")
        client.sendmail("me@example.test", [user], "Subject: via -bs\r\n\r\nsmtp body\r\n")
        client.quit()
        proc.wait(timeout=10)
        r = inst.sendmail(["-t", "-oi"], f"To: {user}\nSubject: via cron\n\ncron body\n")
        assert r.returncode == 0, r.stderr
        new = inst.root / "mail" / user / "new"
        assert wait_for(lambda: new.is_dir() and len(list(new.iterdir())) == 3, timeout=30), inst.log()
        msgs = [email.message_from_bytes(f.read_bytes()) for f in new.iterdir()]
        assert sorted(m["Subject"] for m in msgs) == ["via -bs", "via cron", "via mailutils"]
        for m in msgs:
            assert m["Received"].startswith("by host.example.test (")
            assert m["Delivered-To"] == f"{user}@host.example.test"
        assert inst.log().count(f": uid={os.getuid()} from=<") == 3
        assert inst.queue_files("maildrop") == []
    finally:
        inst.stop()
