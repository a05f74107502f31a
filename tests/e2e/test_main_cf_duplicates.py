"""A main.cf that sets a parameter twice: every program that reads main.cf logs
Postfix's "overriding earlier entry" warning once, naming the later line and the value
it replaces (postconf's own output is compared with Debian's in test_postconf.py)."""

import re
import smtplib

from mailsystem import MailInstance, free_port, smtpd_service

WARNING = re.compile(r"^.*? (\S+)\[(\d+)\]: warning: (.*overriding earlier entry.*)$", re.M)


def test_each_daemon_warns_once_about_a_duplicate_entry(tmp_path):
    port = free_port()
    inst = MailInstance(tmp_path, main_cf="myhostname = dup.example.test\n",
                        master_cf=smtpd_service(port))
    line = (inst.conf / "main.cf").read_text().splitlines().index("myhostname = dup.example.test") + 1
    expected = f"{inst.conf}/main.cf, line {line}: overriding earlier entry: myhostname=host.example.test"
    inst.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            code, banner = s.ehlo("client.example.test")
            assert code == 250
            # the later entry wins
            assert banner.decode().split("\n")[0] == "dup.example.test"
            s.sendmail("sender@example.org", [inst.user + "@localhost"], "Subject: dup\r\n\r\nbody\r\n")
        inst.wait_log_re(r"status=sent")
        inst.wait_log("disconnect from")
        found = WARNING.findall(inst.log())
        programs = {prog.rsplit("/", 1)[-1] for prog, _, _ in found}
        # Postfix's daemons log it to the maillog too; its master (to syslog) does not
        assert {"smtpd", "cleanup", "qmgr", "local"} <= programs, found
        assert {text for _, _, text in found} == {expected}
        pids = [pid for _, pid, _ in found]
        assert len(pids) == len(set(pids)), found
        # master -d: on its stderr, once
        assert (tmp_path / "master.stderr").read_text().count("overriding earlier entry") == 1
    finally:
        inst.stop()
