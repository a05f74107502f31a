"""smtpd's anvil limits end to end (smtpd(8) RESOURCE AND RATE CONTROLS): connection
count and rate, message and recipient rates, smtpd_client_event_limit_exceptions
($mynetworks by default). The limited client connects from 127.0.0.2, outside
mynetworks = 127.0.0.1/32; 127.0.0.1 is the trusted one.

Each scenario runs against Postern and, with the same settings, against Debian's Postfix
(tests/e2e/postfixpeer.py): replies and warning lines must be the same, so admins'
scripts and log parsers see no difference. Every limit has its own smtpd service, so
its anvil counters (per service and client address) start from zero."""
import socket

import pytest

import postfixpeer
from mailsystem import MailInstance, SmtpDialog, free_port, smtpd_service, wait_for
from saslfixture import REALM, make_sasl_dir
from tlsfixture import make_certs

HOST = "host.example.test"
LIMITED, TRUSTED = "127.0.0.2", "127.0.0.1"
SERVICES = {
    "count": {"smtpd_client_connection_count_limit": "2"},
    "crate": {"smtpd_client_connection_rate_limit": "2"},
    "mail": {"smtpd_client_message_rate_limit": "2"},
    "rcpt": {"smtpd_client_recipient_rate_limit": "3"},
    "trusted": {"smtpd_client_connection_count_limit": "1",
                "smtpd_client_message_rate_limit": "1"},
    "listed": {"smtpd_client_connection_count_limit": "1",
               "smtpd_client_event_limit_exceptions": "!127.0.0.3,127.0.0.0/29"},
    "newtls": {"smtpd_client_new_tls_session_rate_limit": "1",
               "smtpd_tls_security_level": "may"},  # + the certificate (fixture)
    "auth": {"smtpd_client_auth_rate_limit": "1", "smtpd_sasl_auth_enable": "yes",
             "smtpd_sasl_local_domain": REALM},  # + cyrus_sasl_config_path (fixture)
}
MAIN_CF = f"mynetworks = 127.0.0.1/32\nmyhostname = {HOST}\nmydestination = $myhostname, localhost\n"


class Servers:
    def __init__(self, postern_ports, postern_log, postfix_ports, postfix_log):
        self.ports = {"Postern": postern_ports, "Postfix": postfix_ports}
        self.logs = {"Postern": postern_log, "Postfix": postfix_log}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    why = postfixpeer.available()
    assert not why, why
    certs = make_certs(tmp_path_factory.mktemp("anvil-certs"))
    SERVICES["newtls"].update(smtpd_tls_cert_file=certs.server_cert,
                              smtpd_tls_key_file=certs.server_key)
    SERVICES["auth"]["cyrus_sasl_config_path"] = str(make_sasl_dir(
        tmp_path_factory.mktemp("anvil-sasl"), {"user": "secret"}))
    pt_ports = {n: free_port() for n in SERVICES}
    inst = MailInstance(tmp_path_factory.mktemp("anvil"), main_cf=MAIN_CF,
                        master_cf="".join(smtpd_service(pt_ports[n], o) for n, o in SERVICES.items()))
    pf_ports = {n: free_port() for n in SERVICES}
    extra = "".join(smtpd_service(pf_ports[n], o) for n, o in SERVICES.items())
    peer = postfixpeer.PostfixPeer(main_cf=MAIN_CF, master_cf_text=postfixpeer.master_cf(extra=extra),
                                   name="anvil")
    inst.start()
    try:
        peer.start()
        yield Servers(pt_ports, inst.log, pf_ports, peer.log)
    finally:
        peer.cleanup()
        inst.stop()


class Client(SmtpDialog):
    """A raw SMTP client bound to a source address."""

    def __init__(self, port, source):
        super().__init__(port, source=source)


def warnings(servers, system, service, text):
    """The warning lines with `text` for `service`, the service name made generic."""
    port = servers.ports[system][service]
    out = []
    for line in servers.logs[system]().splitlines():
        if "warning: " in line and text in line and line.endswith(f"for service 127.0.0.1:{port}"):
            out.append(line.split("warning: ", 1)[1].replace(f"127.0.0.1:{port}", "SERVICE"))
    return out


def both(fn):
    """Runs scenario fn(system, port) against both systems; returns {system: result}."""
    return {system: fn(system) for system in ("Postern", "Postfix")}


def test_connection_count_limit_421_then_room_after_a_disconnect(servers):
    def scenario(system):
        port = servers.ports[system]["count"]
        held = [Client(port, LIMITED), Client(port, LIMITED)]
        third = Client(port, LIMITED)
        out = [c.greeting.split()[0] for c in held] + [third.greeting, third.closed()]
        held.pop().close()
        # The disconnect reaches anvil when the server notices the close: retry briefly.
        fourth = wait_for(lambda: _greets(port), 10)
        out.append(fourth)
        for c in held:
            c.close()
        return out

    got = both(scenario)
    assert got["Postern"] == got["Postfix"]
    assert got["Postern"] == ["220", "220",
                              f"421 4.7.0 {HOST} Error: too many connections from {LIMITED}", True,
                              "220"]
    want = f"Connection concurrency limit exceeded: 3 from {_namaddr()} for service SERVICE"
    for system in got:
        assert wait_for(lambda: warnings(servers, system, "count", "concurrency"))
        # A retry that raced the server's disconnect report logs the same line again.
        assert set(warnings(servers, system, "count", "concurrency")) == {want}, system


def _greets(port):
    """A client from LIMITED that got 220 (then QUIT), or None when refused."""
    c = Client(port, LIMITED)
    try:
        if c.greeting.startswith("220"):
            c.cmd("QUIT")
            return "220"
        return None
    finally:
        c.close()


def _namaddr():
    """How both servers name 127.0.0.2 (forward-confirmed name or unknown)."""
    try:
        name = socket.gethostbyaddr(LIMITED)[0]
        if LIMITED in socket.gethostbyname_ex(name)[2]:
            return f"{name}[{LIMITED}]"
    except OSError:
        pass
    return f"unknown[{LIMITED}]"


def test_connection_rate_limit(servers):
    def scenario(system):
        port = servers.ports[system]["crate"]
        out = []
        for _ in range(3):
            c = Client(port, LIMITED)
            out.append(c.greeting)
            c.close()
        return out

    got = both(scenario)
    assert got["Postern"] == got["Postfix"]
    assert got["Postern"][2] == f"421 4.7.0 {HOST} Error: too many connections from {LIMITED}"
    assert [g.split()[0] for g in got["Postern"][:2]] == ["220", "220"]
    for system in got:
        assert wait_for(lambda: warnings(servers, system, "crate", "rate limit"))
    assert warnings(servers, "Postern", "crate", "rate limit") == \
        warnings(servers, "Postfix", "crate", "rate limit") == \
        [f"Connection rate limit exceeded: 3 from {_namaddr()} for service SERVICE"]


def test_message_rate_limit_450_and_the_session_goes_on(servers):
    def scenario(system):
        c = Client(servers.ports[system]["mail"], LIMITED)
        out = [c.cmd("EHLO client.example.test").split("\n")[0][:3]]
        for _ in range(3):
            out.append(c.cmd("MAIL FROM:<sender@example.test>"))
            out.append(c.cmd("RSET"))
        out.append(c.cmd("NOOP"))
        c.cmd("QUIT")
        c.close()
        return out

    got = both(scenario)
    assert got["Postern"] == got["Postfix"]
    assert got["Postern"][5] == f"450 4.7.1 Error: too much mail from {LIMITED}"
    assert got["Postern"][1] == "250 2.1.0 Ok" and got["Postern"][-1] == "250 2.0.0 Ok"
    for system in got:
        assert wait_for(lambda: warnings(servers, system, "mail", "Message delivery"))
    assert warnings(servers, "Postern", "mail", "Message delivery") == \
        warnings(servers, "Postfix", "mail", "Message delivery") == \
        [f"Message delivery request rate limit exceeded: 3 from {_namaddr()} for service SERVICE"]


def test_recipient_rate_limit(servers):
    def scenario(system):
        c = Client(servers.ports[system]["rcpt"], LIMITED)
        c.cmd("EHLO client.example.test")
        out = [c.cmd("MAIL FROM:<sender@example.test>")]
        for n in range(5):
            out.append(c.cmd(f"RCPT TO:<postmaster@{HOST}>"))
        c.cmd("QUIT")
        c.close()
        return out

    got = both(scenario)
    assert got["Postern"] == got["Postfix"]
    assert got["Postern"][1:4] == ["250 2.1.5 Ok"] * 3
    assert got["Postern"][4:] == [f"450 4.7.1 Error: too many recipients from {LIMITED}"] * 2
    for system in got:
        assert wait_for(lambda: len(warnings(servers, system, "rcpt", "Recipient address")) == 2)
    assert warnings(servers, "Postern", "rcpt", "Recipient address") == \
        warnings(servers, "Postfix", "rcpt", "Recipient address") == \
        [f"Recipient address rate limit exceeded: {n} from {_namaddr()} for service SERVICE"
         for n in (4, 5)]


def test_mynetworks_clients_are_exempt_by_default(servers):
    for system in ("Postern", "Postfix"):
        port = servers.ports[system]["trusted"]
        held = [Client(port, TRUSTED) for _ in range(3)]
        assert [c.greeting[:3] for c in held] == ["220"] * 3
        held[0].cmd("EHLO client.example.test")
        for _ in range(3):
            assert held[0].cmd("MAIL FROM:<a@example.test>") == "250 2.1.0 Ok"
            assert held[0].cmd("RSET") == "250 2.0.0 Ok"
        for c in held:
            c.close()
        # The same service limits a client outside mynetworks.
        a = Client(port, LIMITED)
        b = Client(port, LIMITED)
        assert b.greeting == f"421 4.7.0 {HOST} Error: too many connections from {LIMITED}"
        a.close()
        b.close()


def test_event_limit_exceptions_list_with_negation(servers):
    for system in ("Postern", "Postfix"):
        port = servers.ports[system]["listed"]
        exempt = [Client(port, LIMITED) for _ in range(3)]
        assert [c.greeting[:3] for c in exempt] == ["220"] * 3, system
        a = Client(port, "127.0.0.3")
        b = Client(port, "127.0.0.3")
        assert b.greeting == f"421 4.7.0 {HOST} Error: too many connections from 127.0.0.3", system
        for c in exempt + [a, b]:
            c.close()
        assert not [w for w in warnings(servers, system, "listed", "limit exceeded")
                    if f"[{LIMITED}]" in w], system


def test_new_tls_session_rate_421_after_the_handshake_then_454_at_starttls(servers):
    def scenario(system):
        port, out = servers.ports[system]["newtls"], []
        for _ in range(3):
            c = Client(port, LIMITED)
            c.cmd("EHLO client.example.test")
            out.append(c.starttls())
            if out[-1].startswith("220"):
                # Over the limit the server speaks first: 421 and hang up.
                c.sock.settimeout(2)
                try:
                    out.append(c.reply())
                except (TimeoutError, socket.timeout):
                    out.append(c.cmd("EHLO client.example.test").split("\n")[0][:3])
            c.sock.close()
        return out

    got = both(scenario)
    assert got["Postern"] == got["Postfix"]
    assert got["Postern"] == [
        "220 2.0.0 Ready to start TLS", "250",
        "220 2.0.0 Ready to start TLS",
        f"421 4.7.0 {HOST} Error: too many new TLS sessions from {_namaddr()}",
        f"454 4.7.0 Error: too many new TLS sessions from {_namaddr()}"]
    for system in got:
        assert wait_for(lambda: warnings(servers, system, "newtls", "STARTTLS request"))
    for text in ("New TLS session rate", "Refusing STARTTLS"):
        assert warnings(servers, "Postern", "newtls", text) == warnings(servers, "Postfix", "newtls", text)


def test_auth_rate_limit_450(servers):
    plain = "AUTH PLAIN AHVzZXIAd3Jvbmc="  # user / wrong
    def scenario(system):
        c = Client(servers.ports[system]["auth"], LIMITED)
        ehlo = c.cmd("EHLO client.example.test")
        assert "250-AUTH " in ehlo, (system, ehlo)
        out = [c.cmd(plain)[:1], c.cmd(plain)]
        c.cmd("QUIT")
        c.close()
        return out

    got = both(scenario)
    # The first AUTH fails (wrong password; Postfix's unprivileged smtpd may not even
    # read the sasldb): a 4xx or 5xx. The second one is over the rate.
    for system, out in got.items():
        assert out[0] in ("4", "5"), (system, out)
        assert out[1] == f"450 4.7.1 Error: too many AUTH commands from {LIMITED}", system
        assert wait_for(lambda: warnings(servers, system, "auth", "AUTH command rate"))
    assert warnings(servers, "Postern", "auth", "AUTH command rate") == \
        warnings(servers, "Postfix", "auth", "AUTH command rate") == \
        [f"AUTH command rate limit exceeded: 2 from {_namaddr()} for service SERVICE"]
