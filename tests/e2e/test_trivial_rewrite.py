"""trivial-rewrite(8) on private/rewrite of a running instance, differential against
Debian's Postfix trivial-rewrite: the same main.cf settings, the same requests; Postfix's
daemon runs in stand-alone mode (-S: one request on stdin, the reply on stdout, in
Postfix's attr_print0 encoding). Transport, nexthop, recipient and flags must agree
(Postern also sets RESOLVE_FLAG_FINAL, which Postfix defines but never sets, and swaps
the meanings of flags 4 and 8 as mail_proto.h defines them)."""
import os
import pwd
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from mailsystem import MAIL_SERVICES, MailInstance, attr_call, wait_for
from conftest import run

POSTFIX_REWRITE = "/usr/lib/postfix/sbin/trivial-rewrite"
FLAG_FINAL = 1

# Settings shared by both sides on top of MailInstance's main.cf.
COMMON = (
    "compatibility_level = 3.6\n"
    "virtual_alias_domains = alias.example\n"
    "virtual_mailbox_domains = vbox.example\n"
    "relay_domains = relay.example\n"
    "recipient_delimiter = +\n"
    "transport_maps = inline:{ remote.example=smtp:[mx.remote.example]:2525, "
    "slow.example=slow:, gw.example=:[gw.example], .sub.example=uucp:sub, "
    "user@list.example=lmtp:unix:private/lmtp, {err.example=error:5.7.1 go away}, "
    "drop.example=discard:, {busy.example=retry:4.7.1 busy}, "
    "port.example=smtp:[port-mx.example]:2526, mx.example=smtp:mx-host.example:25, "
    "noreason.example=error:, bare.example=discard, later.example=retry }\n"
    "relocated_maps = inline:{ old@host.example.test=new@else.example }\n"
    "sender_dependent_relayhost_maps = inline:{ @sender.example=[sd.example] }\n"
)
# MailInstance's identity, repeated for Postfix's main.cf.
IDENTITY = (
    "myhostname = host.example.test\n"
    "mydomain = example.test\n"
    "mydestination = $myhostname, localhost.$mydomain, localhost\n"
    "inet_interfaces = loopback-only\n"
)
VARIANT = (
    "relayhost = [relay.example.net]\n"
    "allow_percent_hack = no\n"
    "append_dot_mydomain = yes\n"
    "resolve_numeric_domain = yes\n"
    "address_verify_relayhost = [verify.example]\n"
    "remote_header_rewrite_domain = example.net\n"
)

RESOLVE = [
    "joe", "joe@host.example.test", "Joe@LOCALHOST", "joe@localhost.example.test",
    "joe@[127.0.0.1]", "joe@[IPv6:::1]", "joe@remote.example", "joe@slow.example",
    "a@gw.example", "a@x.sub.example", "a@sub.example", "user+tag@list.example",
    "user@list.example", "x@alias.example", "x@vbox.example", "x@relay.example",
    "x@sub.relay.example", "user%remote.example@host.example.test",
    "remote.example!user@host.example.test", "user@remote.example@host.example.test",
    "a@b@remote.example", "old@host.example.test", "old", "", "joe@", "joe@1.2.3.4",
    "joe@127.0.0.1", "joe@host.example.test.", "john doe@remote.example", "a!b",
    "@r1,@r2:joe@remote.example", "a b%c@host.example.test", "a%b%c@host.example.test",
    "MAILER-DAEMON", "joe@host", "joe@-bad.example", "joe@[300.1.1.1]", "a%b@-bad.example",
    "x@[1.2.3.4", "a,b@remote.example", "@a,@b:c@host.example.test",
    "a@err.example", "a@drop.example", "a@busy.example", "a@port.example", "a@mx.example",
    "a@elsewhere.example", "joe@[192.0.2.7]", "a!b@host.example.test", '"a@b"@host.example.test',
    '"a@b"@remote.example', "a@a.example", "a@b.example", "joe@x.a.example",
    "a@noreason.example", "a@bare.example", "a@later.example",
]
# The routing parameters of issue 6 that the variants above leave at their defaults.
TRANSPORTS = (
    "relay_transport = relayx:[relay-nh.example]\n"
    "default_transport = defx:[default-nh.example]:2527\n"
    "local_transport = localx:$myhostname\n"
    "virtual_transport = virtx:vnh\n"
    "sender_dependent_default_transport_maps = inline:{ @sdt.example=sdt:[sdt-nh.example], "
    "<>=nulls:[null-nh.example] }\n"
    "sender_dependent_relayhost_maps = inline:{ <>=[null-relay.example], @sdr.example=DUNNO }\n"
    "empty_address_recipient = postmaster\n"
    "swap_bangpath = no\n"
    "resolve_dequoted_address = no\n"
    "proxy_interfaces = 192.0.2.7\n"
    "relayhost = [relayhost.example]:587\n"
)
# transport_maps "*": every address not listed before it, local ones too.
STAR = ("transport_maps = inline:{ a.example=smtp:[a-mx.example], *=star:[star-nh.example], "
        "{b.example=error:5.1.2 b is gone} }\n")
VARIANTS = {"defaults": "", "variant": VARIANT, "transports": TRANSPORTS, "star": STAR}
SENDERS = [("a@sender.example", "joe@remote.example"), ("b@other.example", "joe@remote.example"),
           ("x@sdt.example", "joe@elsewhere.example"), ("x@sdt.example", "joe@host.example.test"),
           ("x@sdt.example", "x@relay.example"), ("", "joe@elsewhere.example"),
           ("x@sdr.example", "joe@elsewhere.example")]
REWRITE = ["joe", "a!b", "a%b", "joe@host", "@r:joe@x", "joe@x.", "", "a b!c", "!", "a!",
           "a%", "%b", "a@", "a@.", "a@b.", "a@b@c", "joe@[1.2.3.4]", "first.last"]


def quote_local(addr):
    """quote_822_local (8-bit clean), as Postfix's rewrite service wants external form."""
    start = addr.index(":") + 1 if addr.startswith("@") and ":" in addr else 0
    at = addr.rfind("@")
    end = at if at >= start else len(addr)
    local = addr[start:end]
    dot_ok = (local and local[0] != "." and local[-1] != "." and ".." not in local
              and not re.search(r'[\x00-\x20\x7f()<>@,;:\\"\[\]]', local))
    if dot_ok:
        return addr
    quoted = '"' + re.sub(r'(["\\\r])', r"\\\1", local) + '"'
    return addr[:start] + quoted + addr[end:]


def unquote_local(addr):
    """unquote_822_local: quotes and backslashes go up to the last unquoted '@'."""
    start = addr.index(":") + 1 if addr.startswith("@") and ":" in addr else 0
    out, in_quote, bare = addr[:start], False, None
    i = start
    while i < len(addr):
        c = addr[i]
        if c == '"':
            in_quote = not in_quote
            i += 1
            continue
        if c == "@" and not in_quote:
            bare = (len(out), i)
        elif c == "\\" and i + 1 < len(addr):
            i += 1
            c = addr[i]
        out += c
        i += 1
    return out[:bare[0]] + addr[bare[1]:] if bare else out


class PostfixRewrite:
    """Debian's trivial-rewrite with its own main.cf, one process per request."""

    def __init__(self, root, main_cf):
        self.conf = root / "postfix"
        queue = root / "postfix-queue"
        for d in (self.conf, queue):
            d.mkdir(parents=True, exist_ok=True)
        owner = "postfix" if os.getuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        if os.getuid() == 0:
            os.chown(queue, pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid)
        (self.conf / "main.cf").write_text(
            f"queue_directory = {queue}\nmail_owner = {owner}\n" + IDENTITY + main_cf)

    def call(self, **attrs):
        data = b"".join(k.encode() + b"\0" + str(v).encode() + b"\0" for k, v in attrs.items())
        p = run([POSTFIX_REWRITE, "-S", "-n", "rewrite", "-t", "unix"],
                input=(data + b"\0").decode("latin-1"), env={"MAIL_CONFIG": str(self.conf)})
        fields = p.stdout.split("\0")
        out = {}
        for i in range(0, len(fields) - 1, 2):
            if fields[i] == "":
                break
            out.setdefault(fields[i], []).append(fields[i + 1])
        assert out, f"Postfix trivial-rewrite gave no reply: {p.stderr}"
        return out


def requests():
    reqs = [dict(request="resolve", sender="", address=a) for a in RESOLVE]
    reqs += [dict(request="verify", sender="", address=a) for a in ("joe@remote.example", "joe")]
    reqs += [dict(request="resolve", sender=s, address=a) for s, a in SENDERS]
    reqs += [dict(request="rewrite", rule=r, address=a) for r in ("local", "remote") for a in REWRITE]
    return reqs


def postern_flags(postfix_flags):
    """Postfix's ERROR (4, bad domain syntax) and FAIL (8, lookup failed) are Postern's
    kResolveFlagFail (8) and kResolveFlagError (4): mail_proto.h names them the other
    way round."""
    swapped = (4 if postfix_flags & 8 else 0) | (8 if postfix_flags & 4 else 0)
    return (postfix_flags & ~12) | swapped


def without_placeholders(answer):
    """With a bad domain Postfix returns its unset placeholders ("CHANNEL NOT
    UPDATED"); Postern leaves transport and nexthop empty."""
    if answer["flags"] & 8:
        answer["transport"] = answer["nexthop"] = ""
    return answer


def postern_answer(inst, req):
    rep = attr_call(inst.socket_path("private/rewrite"), **req)
    if req["request"] == "rewrite":
        return {"address": rep["address"][0]}
    return {"transport": rep["transport"][0], "nexthop": rep["nexthop"][0],
            "recipient": rep["recipient"][0], "flags": int(rep["flags"][0]) & ~FLAG_FINAL}


def postfix_answer(pf, req):
    if req["request"] == "rewrite":
        rep = pf.call(**dict(req, address=quote_local(req["address"])))
        return {"address": unquote_local(rep["address"][-1])}
    rep = pf.call(**req)
    return without_placeholders({"transport": rep["transport"][0], "nexthop": rep["nexthop"][0],
            "recipient": rep["recipient"][0], "flags": postern_flags(int(rep["flags"][-1]))})


def instance(tmp_path, extra):
    m = MailInstance(tmp_path, main_cf=COMMON + extra,
                     services=[s for s in MAIL_SERVICES if s[0] == "rewrite"])
    m.start()
    assert wait_for(lambda: m.socket_path("private/rewrite").exists())
    return m


@pytest.fixture
def start(tmp_path):
    """Starts an instance with the rewrite service (extra main.cf text); stops it after."""
    made = []

    def go(extra=""):
        made.append(instance(tmp_path, extra))
        return made[-1]
    yield go
    for m in made:
        m.stop()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_same_answers_as_postfix(tmp_path, start, variant):
    extra = VARIANTS[variant]
    inst = start(extra)
    pf = PostfixRewrite(tmp_path, COMMON + extra)
    reqs = requests()
    with ThreadPoolExecutor(8) as pool:
        theirs = list(pool.map(lambda r: postfix_answer(pf, r), reqs))
    ours = [postern_answer(inst, r) for r in reqs]
    diffs = [(r, o, t) for r, o, t in zip(reqs, ours, theirs) if o != t]
    assert not diffs, "\n".join(f"{r}\n  postern {o}\n  postfix {t}" for r, o, t in diffs)


def test_classes_and_flags(start):
    inst = start()
    def resolve(addr, sender=""):
        return postern_answer(inst, dict(request="resolve", sender=sender, address=addr))
    joe = attr_call(inst.socket_path("private/rewrite"), request="resolve", sender="", address="joe")
    assert joe["transport"] == ["local"] and joe["nexthop"] == ["host.example.test"]
    assert joe["recipient"] == ["joe@host.example.test"]
    assert int(joe["flags"][0]) == (1 << 8) | FLAG_FINAL
    alias = resolve("x@alias.example")
    assert (alias["transport"], alias["nexthop"]) == ("error", "5.1.1 User unknown in virtual alias table")
    assert resolve("x@sub.relay.example")["transport"] == "relay"
    assert resolve("joe@remote.example")["nexthop"] == "[mx.remote.example]:2525"
    assert resolve("joe@other.example", "a@sender.example")["nexthop"] == "[sd.example]"
    routed = resolve("a@b@remote.example")
    assert routed["flags"] & (1 << 1)
    assert resolve("old")["nexthop"] == "5.1.6 User has moved to new@else.example"
    rw = attr_call(inst.socket_path("private/rewrite"), request="rewrite", rule="local", address="joe")
    assert rw["address"] == ["joe@host.example.test"]


def test_bad_requests_are_refused_without_killing_the_service(start):
    inst = start()
    bad = attr_call(inst.socket_path("private/rewrite"), request="rewrite", rule="bogus", address="x")
    assert bad == {}
    inst.wait_log("warning: unknown context: bogus")
    assert attr_call(inst.socket_path("private/rewrite"), request="nonsense") == {}
    inst.wait_log('unrecognized request: "nonsense"')
    ok = attr_call(inst.socket_path("private/rewrite"), request="rewrite", rule="local", address="a!b")
    assert ok["address"] == ["b@a"]


def test_warns_about_a_domain_in_two_classes(start):
    inst = start("virtual_mailbox_domains = vbox.example, localhost\n")
    attr_call(inst.socket_path("private/rewrite"), request="resolve", sender="", address="a@localhost")
    inst.wait_log("warning: do not list domain localhost in BOTH mydestination and "
                  "virtual_mailbox_domains")


def test_a_rebuilt_transport_table_is_used_at_once(tmp_path, start):
    table = tmp_path / "transport"
    table.write_text("t.example smtp:[one.example]\n")
    inst = start(f"transport_maps = hash:{table}\n")
    inst.command("postmap", str(table))

    def nexthop():
        rep = attr_call(inst.socket_path("private/rewrite"), request="resolve", sender="",
                        address="a@t.example")
        return rep["nexthop"][0]
    assert nexthop() == "[one.example]"
    table.write_text("t.example smtp:[two.example]\n")
    assert inst.command("postmap", str(table)).returncode == 0
    assert nexthop() == "[two.example]"
    inst.wait_log("lookup table has changed -- reopening")
