"""The open-relay battery: from a client outside mynetworks (mynetworks = 127.0.0.1/32,
the client binds 127.0.0.9), every classic relay trick is refused -- percent hack,
quoted local parts, source routes, double '@', bang paths, bracketed addresses, trailing
dots, mixed case -- with allow_percent_hack and swap_bangpath on and off, and the
addresses that name a local user through those same tricks are delivered locally.

Each case is also sent to Debian's Postfix 3.7 with the same main.cf settings (when it
can run here, i.e. as root) and the RCPT replies must be identical, code and text."""
import smtplib

import pytest

import postfixpeer
from mailsystem import MailInstance, free_port, smtpd_service, wait_for

CLIENT = "127.0.0.9"
LOCAL = "host.example.test"
# MailInstance already sets myhostname = host.example.test, mydomain = example.test and
# mydestination = $myhostname, localhost.$mydomain, localhost.
MAIN_CF = ("mynetworks = 127.0.0.1/32\nrelay_domains =\nsmtpd_peername_lookup = no\n"
           # Every refusal counts as an error: no sleeping, no hanging up in the battery.
           "smtpd_soft_error_limit = 1000\nsmtpd_hard_error_limit = 1000\n")
PEER_CF = (f"myhostname = {LOCAL}\nmydomain = example.test\n"
           "mydestination = $myhostname, localhost.$mydomain, localhost\n")
STRICT = {"smtpd_relay_restrictions": "permit_mynetworks,reject_unauth_destination"}

# Addresses that must never be relayed, whatever the hack settings.
RELAY_TRICKS = [
    "user@other.example",
    "user@OTHER.Example",
    "user@other.example.",
    "user%other.example@" + LOCAL,
    "user%other.example@localhost",
    "user%other.example@[127.0.0.1]",
    '"user@other.example"@' + LOCAL,
    '"user%other.example"@' + LOCAL,
    "user@other.example@" + LOCAL,
    "@" + LOCAL + ":user@other.example",
    "@" + LOCAL + ",@localhost:user@other.example",
    "other.example!user@" + LOCAL,
    "other.example!user",
    "user%other.example",
    "user%other.example%" + LOCAL + "@" + LOCAL,
    "other.example!user%" + LOCAL + "@" + LOCAL,
    "user@[192.0.2.1]",
    "user@[127.0.0.2]",
    "user@other.example@[127.0.0.1]",
    '"user@other.example"@[127.0.0.1]',
    "user%other.example@" + LOCAL.upper() + ".",
]


def rcpt_replies(port, addresses, source=CLIENT):
    """{address: "code text"} for RCPT TO of each address in one session."""
    out = {}
    with smtplib.SMTP(timeout=30, source_address=(source, 0)) as s:
        s.connect("127.0.0.1", port)
        s.ehlo("client.example.test")
        for addr in addresses:
            code, _ = s.docmd("MAIL FROM:<sender@client.example.test>")
            assert code == 250
            code, text = s.docmd(f"RCPT TO:<{addr}>")
            out[addr] = f"{code} {text.decode()}"
            s.docmd("RSET")
    return out


@pytest.fixture(scope="module", params=["hacks_on", "hacks_off"])
def relay(request, tmp_path_factory):
    hacks = "yes" if request.param == "hacks_on" else "no"
    main_cf = MAIN_CF + f"allow_percent_hack = {hacks}\nswap_bangpath = {hacks}\n"
    ports = {"default": free_port(), "strict": free_port()}
    root = tmp_path_factory.mktemp("relay-" + request.param)
    inst = MailInstance(root, main_cf=main_cf,
                        master_cf=smtpd_service(ports["default"]) + smtpd_service(ports["strict"], STRICT))
    inst.start()
    yield inst, ports, hacks == "yes", main_cf
    inst.stop()


def test_tricks_are_refused(relay):
    inst, ports, _, _ = relay
    for service, code in (("default", "454 4.7.1"), ("strict", "554 5.7.1")):
        replies = rcpt_replies(ports[service], RELAY_TRICKS)
        for addr, reply in replies.items():
            # Refused either as relaying or as an unknown local user; never accepted.
            refusals = (code, "550 5.1.1")
            assert reply.startswith(refusals), (service, addr, reply)
    assert "554 5.7.1 <user@other.example>: Relay access denied" in inst.log()
    assert ("NOQUEUE: reject: RCPT from unknown[127.0.0.9]: 554 5.7.1 <user@other.example>: "
            "Relay access denied; from=<sender@client.example.test> to=<user@other.example> "
            "proto=ESMTP helo=<client.example.test>") in inst.log()


def test_plain_relay_texts(relay):
    _, ports, _, _ = relay
    multi_hop = "@" + LOCAL + ",@localhost:user@other.example"
    replies = rcpt_replies(ports["strict"], ["user@other.example", "@" + LOCAL + ":user@other.example",
                                             multi_hop, '"user@other.example"@' + LOCAL])
    assert replies["user@other.example"] == "554 5.7.1 <user@other.example>: Relay access denied"
    # The source route is dropped; the quoted local part is shown as received.
    assert replies["@" + LOCAL + ":user@other.example"] == "554 5.7.1 <user@other.example>: Relay access denied"
    assert replies[multi_hop] == "554 5.7.1 <user@other.example>: Relay access denied"
    assert (replies['"user@other.example"@' + LOCAL] ==
            "554 5.7.1 <user@other.example@host.example.test>: Relay access denied")


def test_mynetworks_client_may_relay(relay):
    _, ports, _, _ = relay
    replies = rcpt_replies(ports["strict"], ["user@other.example"], source="127.0.0.1")
    assert replies["user@other.example"].startswith("250 ")


def local_forms(user, hacks):
    """Addresses that reach `user` locally: always, or only with the hacks on."""
    always = [f"{user}@{LOCAL}", f"{user.upper()}@{LOCAL.upper()}", f"{user}@{LOCAL}.",
              f"{user}@[127.0.0.1]", f"{user}@localhost"]
    hacked = [f"{user}%localhost@{LOCAL}", f"localhost!{user}@{LOCAL}", f"{user}%{LOCAL}@localhost"]
    return always, hacked


def test_local_forms_are_delivered(relay):
    inst, ports, hacks, _ = relay
    always, hacked = local_forms(inst.user, hacks)
    replies = rcpt_replies(ports["strict"], always + hacked)
    for addr in always:
        assert replies[addr].startswith("250 2.1.5"), (addr, replies[addr])
    for addr in hacked:
        if hacks:
            assert replies[addr].startswith("250 2.1.5"), (addr, replies[addr])
        else:
            # Without the hacks the local part keeps its '%' or '!': a sender-specified
            # route, refused as relaying (Postfix's RESOLVE_FLAG_ROUTED), or no such user.
            assert replies[addr] in (f"554 5.7.1 <{addr}>: Relay access denied",
                                     f"550 5.1.1 <{addr}>: Recipient address rejected: "
                                     "User unknown in local recipient table"), addr
    # And the mail really arrives in the local user's mailbox.
    targets = always + (hacked if hacks else [])
    with smtplib.SMTP(timeout=30, source_address=(CLIENT, 0)) as s:
        s.connect("127.0.0.1", ports["strict"])
        s.ehlo("client.example.test")
        s.sendmail("sender@client.example.test", targets,
                   f"Subject: relay battery {hacks}\r\n\r\nlocal forms\r\n")
    mbox = inst.mail / inst.user
    assert wait_for(lambda: mbox.exists() and f"relay battery {hacks}".encode() in mbox.read_bytes()), inst.log()
    assert wait_for(lambda: inst.log().count("status=sent") >= 1), inst.log()
    assert "relay=" in inst.log()


@pytest.mark.skipif(postfixpeer.available() != "", reason=postfixpeer.available() or "peer available")
def test_same_replies_as_postfix(relay):
    inst, ports, hacks, main_cf = relay
    always, hacked = local_forms(inst.user, hacks)
    addresses = RELAY_TRICKS + always + hacked
    ours = rcpt_replies(ports["strict"], addresses)
    port = free_port()
    peer = postfixpeer.PostfixPeer(
        main_cf=PEER_CF + main_cf + "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n"
        "inet_protocols = ipv4\nsmtpd_peername_lookup = no\n",
        master_cf_text=postfixpeer.master_cf(f"127.0.0.1:{port}"), name="relay")
    try:
        peer.start()
        wait_for(lambda: _listening(port), 10)
        theirs = rcpt_replies(port, addresses)
    finally:
        peer.cleanup()
    diffs = {a: (ours[a], theirs[a]) for a in addresses if ours[a] != theirs[a]}
    assert not diffs


def _listening(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
