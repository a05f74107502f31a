"""The restrictions about the hosts behind a name, and the remaining small ones, end to
end against a DNS server with test data: check_sender_{mx,a}_access (MX host names and
addresses, the implicit MX, an address literal, OK refused), permit_mx_backup (with
and without permit_mx_backup_networks), permit_inet_interfaces, check_relay_domains,
the *_tempfail_action parameters, smtpd_reject_footer, smtpd_log_access_permit_actions
and sleep.

As in test_smtpd_restrictions.py, every scenario runs against Postern and Debian's
Postfix 3.7 with the same settings and DNS data: replies and smtpd log lines must be
the same."""
import re

import pytest

import dnsfixture
import postfixpeer
from test_smtpd_restrictions import compare, smtpd_lines, start_systems

pytestmark = pytest.mark.skipif(
    (dnsfixture.available() or postfixpeer.available()) != "",
    reason=dnsfixture.available() or postfixpeer.available() or "runs")

RECORDS = [
    "host-record=mail.example.test,192.0.2.25",
    "host-record=mx2.example.test,192.0.2.26",
    "host-record=good.example.test,127.0.0.9",
    "host-record=okmx.example.test,127.0.0.9",
    "host-record=host.example.test,127.0.0.1",
    "mx-host=mxname.test,mail.example.test,10",
    "mx-host=mxaddr.test,mx2.example.test,10",
    "mx-host=clean.test,good.example.test,10",
    "mx-host=okmx.test,okmx.example.test,10",
    "host-record=nomx.test,192.0.2.26",
    "host-record=aaddr.test,192.0.2.26",
    # permit_mx_backup: this host (host.example.test) as backup, as primary, absent.
    "mx-host=backup.test,mail.example.test,10",
    "mx-host=backup.test,host.example.test,20",
    "mx-host=primary.test,host.example.test,10",
    "mx-host=primary.test,mail.example.test,20",
    "mx-host=elsewhere.test,mail.example.test,10",
    "mx-host=elsewhere.test,mx2.example.test,20",
]

MAIN_CF = (
    "mynetworks = 127.0.0.1/32\nsmtpd_soft_error_limit = 1000\nsmtpd_hard_error_limit = 1000\n"
    "relay_domains = example.org\n"
    "t_mx = check_sender_mx_access inline:{{mail.example.test=REJECT blocked mx name},"
    " {192.0.2.26=REJECT blocked mx address}, {okmx.example.test=OK}}\n"
    "t_a = check_sender_a_access inline:{{192.0.2.26=REJECT blocked address}}\n"
    "t_backup = permit_mx_backup reject_unauth_destination\n"
)

RCPT = ("rcpt", "root@localhost")

# name: (-o settings, client address, steps)
SCENARIOS = {
    "sender_mx": ({"smtpd_sender_restrictions": "$t_mx"}, "127.0.0.9",
                  [("ehlo", "client.example.test")] +
                  [step for d in ("mxname.test", "mxaddr.test", "nomx.test", "clean.test",
                                  "[192.0.2.26]", "okmx.test", "nx.test")
                   for step in (("mail", f"s@{d}"), RCPT, ("rset", None))]),
    "sender_a": ({"smtpd_sender_restrictions": "$t_a"}, "127.0.0.9",
                 [("ehlo", "client.example.test")] +
                 [step for d in ("aaddr.test", "mxaddr.test", "nx.test")
                  for step in (("mail", f"s@{d}"), RCPT, ("rset", None))]),
    "mx_backup": ({"smtpd_relay_restrictions": "$t_backup"}, "127.0.0.9",
                  [("ehlo", "client.example.test"), ("mail", "s@clean.test"),
                   ("rcpt", "u@backup.test"), ("rcpt", "u@primary.test"),
                   ("rcpt", "u@elsewhere.test"), ("rcpt", "u@example.org")]),
    "mx_backup_networks": ({"smtpd_relay_restrictions": "$t_backup",
                            "permit_mx_backup_networks": "10.0.0.0/8"}, "127.0.0.9",
                           [("ehlo", "client.example.test"), ("mail", "s@clean.test"),
                            ("rcpt", "u@backup.test")]),
    "inet_interfaces": ({"smtpd_relay_restrictions": "permit_inet_interfaces,reject_unauth_destination"},
                        "127.0.0.1",
                        [("ehlo", "client.example.test"), ("mail", "s@clean.test"),
                         ("rcpt", "u@far.example.com")]),
    "inet_interfaces_other": ({"smtpd_relay_restrictions":
                               "permit_inet_interfaces,reject_unauth_destination"}, "127.0.0.9",
                              [("ehlo", "client.example.test"), ("mail", "s@clean.test"),
                               ("rcpt", "u@far.example.com")]),
    "relay_domains": ({"smtpd_relay_restrictions": "check_relay_domains"}, "127.0.0.9",
                      [("ehlo", "client.example.test"), ("mail", "s@clean.test"),
                       ("rcpt", "u@example.org"), ("rcpt", "root@localhost"),
                       ("rcpt", "u@far.example.com")]),
    # A temporary DNS failure: defer_if_permit lets the later relay check reject; with
    # *_tempfail_action = defer the 450 comes at once.
    "tempfail_default": ({"smtpd_sender_restrictions": "reject_unknown_sender_domain"}, "127.0.0.9",
                         [("ehlo", "client.example.test"), ("mail", "s@x.tempfail.test"),
                          ("rcpt", "u@far.example.com")]),
    "tempfail_defer": ({"smtpd_sender_restrictions": "reject_unknown_sender_domain",
                        "unknown_address_tempfail_action": "defer"}, "127.0.0.9",
                       [("ehlo", "client.example.test"), ("mail", "s@x.tempfail.test"),
                        ("rcpt", "u@far.example.com")]),
    "tempfail_helo_defer": ({"smtpd_helo_restrictions": "reject_unknown_helo_hostname",
                             "reject_tempfail_action": "defer"}, "127.0.0.9",
                            [("ehlo", "x.tempfail.test"), ("mail", "s@clean.test"),
                             ("rcpt", "u@far.example.com")]),
    "footer": ({"smtpd_client_restrictions": "reject",
                "smtpd_reject_footer": "\\c.Ask($client_address)\\nServer:$server_name"}, "127.0.0.9",
               [("ehlo", "client.example.test"), ("mail", "s@clean.test"), RCPT, ("data", None)]),
    "permit_log": ({"smtpd_relay_restrictions": "permit_mynetworks,permit_auth_destination,reject",
                    "smtpd_log_access_permit_actions": "static:all"}, "127.0.0.1",
                   [("ehlo", "client.example.test"), ("mail", "s@clean.test"),
                    ("rcpt", "u@far.example.com")]),
    "permit_log_some": ({"smtpd_relay_restrictions": "permit_auth_destination,permit_mynetworks,reject",
                         "smtpd_log_access_permit_actions": "permit_auth_destination"}, "127.0.0.1",
                        [("ehlo", "client.example.test"), ("mail", "s@clean.test"),
                         ("rcpt", "u@far.example.com"), ("rcpt", "u@example.org")]),
    "sleep": ({"smtpd_client_restrictions": "sleep,1,reject"}, "127.0.0.9",
              [("ehlo", "client.example.test"), ("mail", "s@clean.test"), RCPT]),
}

EXPECTED = {
    "sender_mx": ["554 5.7.1 <s@mxname.test>: Sender address rejected: blocked mx name",
                  "554 5.7.1 <s@mxaddr.test>: Sender address rejected: blocked mx address",
                  "554 5.7.1 <s@nomx.test>: Sender address rejected: blocked mx address",
                  "554 5.7.1 <s@[192.0.2.26]>: Sender address rejected: blocked mx address",
                  "451 4.3.5 Server configuration error"],
    "sender_a": ["554 5.7.1 <s@aaddr.test>: Sender address rejected: blocked address"],
    "mx_backup": ["554 5.7.1 <u@primary.test>: Relay access denied",
                  "554 5.7.1 <u@elsewhere.test>: Relay access denied"],
    "mx_backup_networks": ["554 5.7.1 <u@backup.test>: Relay access denied"],
    "inet_interfaces_other": ["554 5.7.1 <u@far.example.com>: Relay access denied"],
    "relay_domains": ["554 5.7.1 <u@far.example.com>: Recipient address rejected: Relay access denied"],
    "tempfail_default": ["454 4.7.1 <u@far.example.com>: Relay access denied"],
    "tempfail_defer": ["450 4.1.8 <s@x.tempfail.test>: Sender address rejected: Domain not found"],
    "tempfail_helo_defer": ["450 4.7.1 <x.tempfail.test>: Helo command rejected: Host not found"],
    "footer": ["554 5.7.1 <good.example.test[127.0.0.9]>: Client host rejected: Access denied.Ask(127.0.0.9)"
               "\n5.7.1 Server:host.example.test",
               "554 5.5.1 Error: no valid recipients.Ask(127.0.0.9)\n5.5.1 Server:host.example.test"],
    "sleep": ["554 5.7.1 <good.example.test[127.0.0.9]>: Client host rejected: Access denied"],
}

# The replies that must be accepted (each scenario's list, in order of appearance).
ACCEPTED = {
    "sender_mx": 2,      # clean.test, nx.test (no MX host address: a warning)
    "sender_a": 2,       # mxaddr.test (no address of its own), nx.test
    "mx_backup": 2,      # backup.test, example.org
    "inet_interfaces": 1,
    "relay_domains": 2,  # example.org, localhost
    "permit_log": 1,
    "permit_log_some": 2,
}

LOG_EXTRA = ("warning: restriction", "warning: this is not allowed", "warning: use DUNNO",
             "warning: support for restriction", "Unable to look up")


def lines(log, start, source):
    out = smtpd_lines(log, start, source)
    for line in log[start:].splitlines():
        m = re.search(r"/smtpd\[\d+\]: (warning: .*)", line)
        if m and any(w in m.group(1) for w in LOG_EXTRA):
            out.append(m.group(1))
        m = re.search(r"/smtpd\[\d+\]: \w+: (permit: .*)", line)
        if m:
            out.append(m.group(1))
    return out


@pytest.fixture(scope="module")
def systems(tmp_path_factory):
    yield from start_systems(tmp_path_factory, RECORDS, MAIN_CF, SCENARIOS, "servers")


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(systems, name):
    got = compare(systems, SCENARIOS[name], name, EXPECTED.get(name, []), log_lines=lines)
    steps = SCENARIOS[name][2]
    rcpt_ok = [r for r, (kind, _) in zip(got, steps) if kind == "rcpt" and r.startswith("250")]
    assert len(rcpt_ok) == ACCEPTED.get(name, 0), (name, got)
