"""smtpd restrictions end to end, against a DNS server with test data (dnsfixture: a
private /etc/resolv.conf in a mount namespace): client name lookups, RBL/RHSBL lists,
unknown HELO/sender/recipient domains, access(5) actions, warn_if_reject and
defer_if_permit, restriction classes, smtpd_delay_reject = no, DATA restrictions and
local recipient validation.

Every scenario is an smtpd service with its own -o settings. Each runs against Postern
and against Debian's Postfix 3.7 with the same settings and the same DNS data: the
replies and the smtpd log lines (reject, reject_warning, warn, hold, ...) must be the
same, and the key replies are also spelled out here."""
import re
import smtplib

import pytest

import dnsfixture
import postfixpeer
from mailsystem import MailInstance, free_port, smtpd_service, wait_for

pytestmark = pytest.mark.skipif(
    (dnsfixture.available() or postfixpeer.available()) != "",
    reason=dnsfixture.available() or postfixpeer.available() or "runs")

RECORDS = [
    "host-record=mail.example.test,192.0.2.25",
    "host-record=good.example.test,127.0.0.9",
    "host-record=nomatch.example.test,127.0.0.99",
    "ptr-record=10.0.0.127.in-addr.arpa,nomatch.example.test",
    "mx-host=mxdomain.test,mail.example.test,10",
    "mx-host=nullmx.test,,0",
    "host-record=2.0.0.127.rbl.test,127.0.0.2",
    'txt-record=2.0.0.127.rbl.test,"listed for testing"',
    "host-record=spam.example.test.rhsbl.test,127.0.0.2",
]

# Parameters that -o values refer to ($name): values with blanks cannot be -o values.
MAIN_CF = (
    "mynetworks = 127.0.0.1/32\nsmtpd_soft_error_limit = 1000\nsmtpd_hard_error_limit = 1000\n"
    "smtpd_restriction_classes = t_strict\nt_strict = reject\n"
    "t_access = check_sender_access inline:{{hold@client.example.test=HOLD},"
    " {warn@client.example.test=WARN watch this}, {info@client.example.test=INFO noted},"
    " {strict@client.example.test=t_strict}, {r@client.example.test=REJECT 5.7.9 go away},"
    " {d@client.example.test=DEFER_IF_PERMIT not now}, {c@client.example.test=450 nope}}\n"
    "t_helo = reject_invalid_helo_hostname reject_non_fqdn_helo_hostname reject_unknown_helo_hostname\n"
    "t_domains = reject_unknown_recipient_domain permit_mynetworks reject_unauth_destination\n"
    "t_warn = warn_if_reject reject_non_fqdn_recipient defer_if_permit permit_mynetworks"
    " reject_unauth_destination\n"
)

LOCAL_USER_STEPS = [("mail", "s@client.example.test"), ("rcpt", "root@localhost"),
                    ("rcpt", "nosuchuser@localhost"), ("rcpt", "postmaster@localhost")]

# name: (-o settings, client address, steps)
SCENARIOS = {
    "rbl": ({"smtpd_client_restrictions": "reject_rbl_client,rbl.test"}, "127.0.0.2",
            [("ehlo", "client.example.test"), ("mail", "s@client.example.test"),
             ("rcpt", "root@localhost")]),
    "names": ({"smtpd_client_restrictions": "reject_unknown_client_hostname"}, "127.0.0.10",
              [("ehlo", "client.example.test"), ("mail", "s@client.example.test"),
               ("rcpt", "root@localhost")]),
    "names_ok": ({"smtpd_client_restrictions": "reject_unknown_client_hostname"}, "127.0.0.9",
                 [("ehlo", "client.example.test"), ("mail", "s@client.example.test"),
                  ("rcpt", "root@localhost")]),
    "reverse": ({"smtpd_client_restrictions": "reject_unknown_reverse_client_hostname"},
                "127.0.0.11",
                [("ehlo", "client.example.test"), ("mail", "s@client.example.test"),
                 ("rcpt", "root@localhost")]),
    "rhsbl": ({"smtpd_sender_restrictions": "reject_rhsbl_sender,rhsbl.test"}, "127.0.0.9",
              [("ehlo", "client.example.test"), ("mail", "s@spam.example.test"),
               ("rcpt", "root@localhost")]),
    "helo": ({"smtpd_helo_restrictions": "$t_helo", "smtpd_delay_reject": "no"}, "127.0.0.9",
             [("helo", "bad_name!"), ("helo", "nodots"), ("helo", "[1.2.3]"), ("helo", "nx.test"),
              ("helo", "x.tempfail.test"), ("helo", "mxdomain.test"),
              ("mail", "s@client.example.test")]),
    "domains": ({"smtpd_relay_restrictions": "$t_domains", "mynetworks": "127.0.0.0/8",
                 "smtpd_sender_restrictions": "reject_unknown_sender_domain"}, "127.0.0.9",
                [("ehlo", "client.example.test"), ("mail", "s@nx.test"), ("rcpt", "root@localhost"),
                 ("rset", None), ("mail", "s@mxdomain.test"), ("rcpt", "u@nx.test"),
                 ("rcpt", "u@nullmx.test"), ("rcpt", "u@x.tempfail.test"),
                 ("rcpt", "root@localhost")]),
    "access": ({"smtpd_sender_restrictions": "$t_access"}, "127.0.0.9",
               [("ehlo", "client.example.test")] +
               [step for s in ("hold", "warn", "info", "strict", "r", "d", "c")
                for step in (("mail", f"{s}@client.example.test"), ("rcpt", "root@localhost"),
                             ("rset", None))]),
    "warn": ({"smtpd_relay_restrictions": "$t_warn"}, "127.0.0.9",
             [("ehlo", "client.example.test"), ("mail", "s@client.example.test"),
              ("rcpt", "root"), ("rcpt", "root@localhost")]),
    "nodelay": ({"smtpd_client_restrictions": "reject", "smtpd_delay_reject": "no"}, "127.0.0.9",
                [("ehlo", "client.example.test"), ("mail", "s@client.example.test")]),
    "data": ({"smtpd_data_restrictions": "reject"}, "127.0.0.9",
             [("ehlo", "client.example.test"), ("mail", "s@client.example.test"),
              ("rcpt", "root@localhost"), ("data", None)]),
    "local": ({}, "127.0.0.9", [("ehlo", "client.example.test")] + LOCAL_USER_STEPS),
}

# Key replies, spelled out (the differential test checks everything else).
EXPECTED = {
    "rbl": ["554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using rbl.test; "
            "listed for testing"],
    "names": ["450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.10]"],
    "reverse": ["450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.11]"],
    "rhsbl": ["554 5.7.1 Service unavailable; Sender address [s@spam.example.test] blocked "
              "using rhsbl.test"],
    "helo": ["501 5.5.2 <bad_name!>: Helo command rejected: Invalid name",
             "504 5.5.2 <nodots>: Helo command rejected: need fully-qualified hostname",
             "501 5.5.2 <[1.2.3]>: Helo command rejected: invalid ip address",
             "450 4.7.1 <nx.test>: Helo command rejected: Host not found"],
    "domains": ["450 4.1.8 <s@nx.test>: Sender address rejected: Domain not found",
                "450 4.1.2 <u@nx.test>: Recipient address rejected: Domain not found",
                "556 5.1.10 <u@nullmx.test>: Recipient address rejected: Domain nullmx.test does "
                "not accept mail (nullMX)",
                "450 4.1.2 <u@x.tempfail.test>: Recipient address rejected: Domain not found"],
    "access": ["554 5.7.1 <strict@client.example.test>: Sender address rejected: Access denied",
               "554 5.7.9 <r@client.example.test>: Sender address rejected: go away",
               "450 4.7.1 <d@client.example.test>: Sender address rejected: not now",
               "450 4.7.1 <c@client.example.test>: Sender address rejected: nope"],
    "warn": ["450 4.7.0 <root@localhost>: Recipient address rejected: defer_if_permit requested"],
    "data": ["554 5.7.1 <DATA>: Data command rejected: Access denied"],
    "local": ["550 5.1.1 <nosuchuser@localhost>: Recipient address rejected: User unknown in "
              "local recipient table"],
}

LOG_WORDS = ("reject:", "reject_warning:", "warn:", "info:", "hold:", "discard:",
             "does not resolve", "connect from")


def run_steps(port, source, steps):
    replies = []
    s = smtplib.SMTP(timeout=30, source_address=(source, 0))
    try:
        s.connect("127.0.0.1", port)
        for kind, arg in steps:
            if kind == "ehlo":
                code, _ = s.ehlo(arg)
                replies.append(str(code))  # the keyword lists differ on purpose
                continue
            cmd = {"helo": f"HELO {arg}", "mail": f"MAIL FROM:<{arg}>", "rcpt": f"RCPT TO:<{arg}>",
                   "rset": "RSET", "data": "DATA"}[kind]
            code, text = s.docmd(cmd)
            replies.append(f"{code} {text.decode()}")
            if code == 354:
                s.docmd(".")  # not reached: DATA is refused without recipients
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass
    return replies


def smtpd_lines(log, start, source):
    """The smtpd log lines since offset `start` about client `source`, as comparable
    text: without the time/host/program prefix, queue ids replaced."""
    out = []
    for line in log[start:].splitlines():
        m = re.search(r"/smtpd\[\d+\]: (.*)", line)
        if not m or not any(w in m.group(1) for w in LOG_WORDS) or f"[{source}]" not in line \
                and "does not resolve" not in line:
            continue
        out.append(re.sub(r"^[0-9A-F]{6,}:", "QID:", m.group(1)))
    return out


def start_systems(tmp_path_factory, records, main_cf, scenarios, name):
    """Postern and Debian's Postfix with one smtpd per scenario (its -o settings), both
    on the same DNS data; yields (instance, peer, our ports, their ports)."""
    dns = dnsfixture.DnsFixture(records, root=tmp_path_factory.mktemp("dns")).start()
    ours = {n: free_port() for n in scenarios}
    theirs = {n: free_port() for n in scenarios}
    inst = MailInstance(tmp_path_factory.mktemp(name), main_cf=main_cf,
                        master_cf="".join(smtpd_service(ours[n], s[0]) for n, s in scenarios.items()))
    peer_master = postfixpeer.master_cf() + "".join(
        smtpd_service(theirs[n], s[0]) for n, s in scenarios.items())
    peer = postfixpeer.PostfixPeer(
        main_cf=main_cf + "myhostname = host.example.test\nmydomain = example.test\n"
        "mydestination = $myhostname, localhost.$mydomain, localhost\n"
        "alias_maps = inline:{postmaster=root}\n",
        master_cf_text=peer_master, name=name)
    try:
        inst.start(preexec_fn=dns.preexec)
        peer.start(preexec_fn=dns.preexec)
        yield inst, peer, ours, theirs
    finally:
        inst.stop()
        peer.cleanup()
        dns.stop()


def compare(systems, scenario, name, expected, log_lines=smtpd_lines):
    """Runs one scenario on both systems: the expected replies must be there, and the
    replies and log lines (log_lines(log, start, source)) the same. Returns the replies."""
    inst, peer, ours, theirs = systems
    _, source, steps = scenario
    start_ours, start_theirs = len(inst.log()), len(peer.log())
    got = run_steps(ours[name], source, steps)
    want = run_steps(theirs[name], source, steps)
    for reply in expected:
        assert reply in got, (name, got)
    assert got == want, (name, list(zip(got, want)))
    # The log lines settle once the sessions are over.
    wait_for(lambda: "disconnect from" in inst.log()[start_ours:], 10)
    wait_for(lambda: "disconnect from" in peer.log()[start_theirs:], 10)
    ours_log = log_lines(inst.log(), start_ours, source)
    theirs_log = log_lines(peer.log(), start_theirs, source)
    assert ours_log == theirs_log, "\n".join(["postern:"] + ours_log + ["postfix:"] + theirs_log)
    return got


@pytest.fixture(scope="module")
def systems(tmp_path_factory):
    yield from start_systems(tmp_path_factory, RECORDS, MAIN_CF, SCENARIOS, "restrictions")


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(systems, name):
    compare(systems, SCENARIOS[name], name, EXPECTED.get(name, []))
