"""smtp(8)/lmtp(8) and 8-bit mail: BODY=8BITMIME to a server that announces 8BITMIME,
and to one that does not, Postfix's conversion (disable_mime_output_conversion = no):
8-bit MIME entities become quoted-printable with a rewritten Content-Transfer-Encoding
header, multipart and message/rfc822 entities 7bit; 8-bit headers and undeclared 8-bit
bodies pass unchanged. Differential: the same messages, submitted over SMTP with
BODY=8BITMIME to Postern and to Debian's Postfix, reach capture servers as the same bytes
(apart from the Received header), over SMTP, LMTP, and a transport with the conversion
turned off (-o disable_mime_output_conversion=yes); mail that only its Content-Transfer-
Encoding header declares 8-bit (detect_8bit_encoding_header), BODY=7BIT, MIME nesting
beyond mime_nesting_limit (bounced by both), and a 20 MB message converted without
holding it in memory."""
import base64
import quopri
import re
import smtplib

import pytest

import postfixpeer
from capturesmtp import CaptureSmtp
from mailsystem import MailInstance, free_port, smtpd_service, wait_for

RAW_TRANSPORT = ("rawsmtp unix - - n - - smtp\n  -o disable_mime_output_conversion=yes\n"
                 "deepsmtp unix - - n - - smtp\n  -o mime_nesting_limit=1\n")
AGENTS = "smtp unix - - n - - smtp\nlmtp unix - - n - - lmtp\n" + RAW_TRANSPORT
SENDER = "sender@example.test"
# The domains: (capture server, transport)
DOMAINS = {"plain.test": ("plain", "smtp"), "eight.test": ("eight", "smtp"),
           "lm.test": ("plain", "lmtp"), "raw.test": ("plain", "rawsmtp")}


def head(case, extra):
    return (f"Date: Sat, 5 Dec 2026 12:00:00 +0000\r\nMessage-ID: <{case}@example.test>\r\n"
            f"From: {SENDER}\r\nTo: someone@example.test\r\nSubject: {case}\r\n" + extra + "\r\n")


LONG_8BIT = "".join("é" if i % 10 == 0 else "x" for i in range(2500))
MESSAGES = {
    "plain": head("plain", "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                           "Content-Transfer-Encoding: 8bit\r\n")
    + "Grüße aus Köln = 100 €\r\ntrailing blank \r\n.leading dot é\r\n\r\nend\tof text\t\r\n",
    "multipart": head("multipart", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_b1\"\r\n"
                                   "Content-Transfer-Encoding: 8bit\r\n")
    + "prolog à laisser\r\n--=_b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
      "Content-Transfer-Encoding: 8bit\r\n\r\nTexte accentué: çà et là\r\n"
      "--=_b1\r\nContent-Type: application/octet-stream; name=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.b64encode(bytes(range(256))).decode() + "\r\n"
      "--=_b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8BIT\r\n"
      "Content-Disposition: inline\r\n\r\n<p>Ärger</p>\r\n--=_b1--\r\népilogue\r\n",
    "nested": head("nested", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n")
    + "--outer\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
      "--outer\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
      "Subject: inner é\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
      "--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
      "innen drin: ö\r\n--inner--\r\n--outer--\r\n",
    "header8": head("header8", "X-Note: Grüße im Kopf\r\nContent-Type: text/plain; charset=utf-8\r\n"
                               "Content-Transfer-Encoding: binary\r\n")
    + "Körper\r\n",
    "nonmime": head("nonmime", "") + "kein MIME: Grüße\r\n" + LONG_8BIT + "\r\n",
    "quirks": head("quirks", "X-Spaced : value \u00e9\r\nMIME-Version: 1.0\r\n"
                             "Content-Type: multipart/digest; boundary=dig\r\nContent-Transfer-Encoding: 8bit (c)\r\n")
    + "--dig\r\n\r\nSubject: digest default message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nd\u00e9\r\n"
      "--dig  trailing cruft\r\nContent-Type: text/plain\r\n\r\nundeclared \u00e9\r\n"
      "--dig\r\nContent-Type: message/partial; id=x\r\nContent-Transfer-Encoding: binary\r\n\r\np\u00e9\r\n"
      "--dig\r\nContent-Transfer-Encoding: 8bit\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n"
      "--dig\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nq\u00e9\r\n"
      "--dig--\r\n",
    # The header ends at a line that is no header; a multipart part likewise.
    "garbage": head("garbage", "Content-Type: multipart/mixed; boundary=g\r\n"
                               "Content-Transfer-Encoding: 8bit\r\n")[:-2]
    + "no header \u00e9\r\n--g\r\nContent-Transfer-Encoding: 8bit\r\nno header either \u00e9\r\n--g--\r\n",
    "long": head("long", "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: 8bit\r\n")
    + LONG_8BIT + "\r\n" + "=" * 80 + "\r\n" + "y" * 72 + "é\r\n",
}


@pytest.fixture(scope="module")
def servers():
    s = {"plain": CaptureSmtp(keywords=("PIPELINING",)), "eight": CaptureSmtp(keywords=("PIPELINING", "8BITMIME"))}
    yield s
    for srv in s.values():
        srv.stop()


def routes(servers):
    entries = ", ".join(f"{{{dom}={transport}:[127.0.0.1]:{servers[name].port}}}"
                        for dom, (name, transport) in {**DOMAINS, "deep.test": ("plain", "deepsmtp")}.items())
    return f"transport_maps = inline:{{{entries}}}\n"


# Not declared 8-bit by the client (sendmail; BODY=7BIT): detect_8bit_encoding_header
# makes mail with an 8bit Content-Transfer-Encoding 8-bit all the same (no 8-bit headers:
# sendmail mail with those needs SMTPUTF8, smtputf8_autodetect_classes).
UNDECLARED = [(case, how, dom) for case in ("plain", "multipart", "nonmime") for how in ("sm", "7bit")
              for dom in ("plain.test", "eight.test")]


def submit(port, sendmail, who):
    with smtplib.SMTP("127.0.0.1", port, timeout=180) as s:
        s.ehlo("client.example.test")
        for case, text in MESSAGES.items():
            for dom in DOMAINS:
                s.sendmail(SENDER, [f"{case}-{who}@{dom}"], text.encode(), mail_options=["BODY=8BITMIME"])
        for case, how, dom in UNDECLARED:
            if how == "7bit":
                s.sendmail(SENDER, [f"{case}-7bit-{who}@{dom}"], MESSAGES[case].encode(), mail_options=["BODY=7BIT"])
        for levels in DEEP:
            s.sendmail(SENDER, [f"deep{levels}-{who}@deep.test"], deep_message(levels).encode(),
                       mail_options=["BODY=8BITMIME"])
    for case, how, dom in UNDECLARED:
        if how == "sm":
            p = sendmail(["-f", SENDER, f"{case}-sm-{who}@{dom}"], MESSAGES[case].replace("\r\n", "\n"))
            assert p.returncode == 0, p.stderr


def received(servers, who):
    """{(case, domain): transaction} once all have arrived."""
    out = {}
    wanted = [(case, case, dom) for case in MESSAGES for dom in DOMAINS]
    wanted += [(f"{case}-{how}", case, dom) for case, how, dom in UNDECLARED]
    for key, case, dom in wanted:
        rcpt = f"<{key}-{who}@{dom}>"
        server = servers[DOMAINS[dom][0]]
        out[key, dom] = server.wait(lambda t: any(rcpt in r for r in t.rcpts), timeout=240)[0]
    return out


# Multipart levels: the deepsmtp transport (mime_nesting_limit = 1) sends 3, not 4,
# as Postfix counts them (only multipart levels, limit + 2 of them).
DEEP = (3, 4)


def deep_message(levels):
    inner = "".join(f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n" for i in range(1, levels))
    return (head(f"deep{levels}", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0\r\n")
            + "--b0\r\n" + inner + "Content-Transfer-Encoding: 8bit\r\n\r\ntief \u00e9\r\n")


def deep_results(log, who):
    """{levels: (dsn, status, reason)} of the deeply nested messages, once all are logged."""
    out = {}
    for levels in DEEP:
        m = re.search(r"to=<deep%d-%s@deep\.test>, relay=\S+, .*dsn=(\S+), status=(\S+) \((.*)\)$"
                      % (levels, who), log, re.M)
        if not m:
            return None
        out[levels] = m.groups()[:2] + (m.group(3) if m.group(2) == "bounced" else "",)
    return out


def without_received(data):
    """The message without its Received: header (the one field that names the system)."""
    lines = data.split(b"\r\n")
    out, skipping = [], False
    for i, line in enumerate(lines):
        if line == b"":
            return b"\r\n".join(out + lines[i:])
        if skipping and line[:1] in (b" ", b"\t"):
            continue
        skipping = line.lower().startswith(b"received:")
        if not skipping:
            out.append(line)
    return b"\r\n".join(out)


def mail_params(t):
    return t.mail.split(">", 1)[1].strip()


@pytest.fixture(scope="module")
def ours(tmp_path_factory, servers):
    port = free_port()
    inst = MailInstance(tmp_path_factory.mktemp("mime8"), main_cf=routes(servers),
                        master_cf=AGENTS + smtpd_service(port))
    inst.start()
    try:
        submit(port, inst.sendmail, "ours")
        got = received(servers, "ours")
        assert wait_for(lambda: deep_results(inst.log(), "ours"), 240), inst.log()
        got["deep"] = deep_results(inst.log(), "ours")
        yield got
    finally:
        inst.stop()


def test_8bitmime_server_gets_body_8bitmime_and_unchanged_content(ours):
    for case, text in MESSAGES.items():
        t = ours[case, "eight.test"]
        assert mail_params(t) == "BODY=8BITMIME", case
        # as sent, but for dot-stuffing and smtp_line_length_limit folding
        wire = without_received(t.data).replace(b"\r\n.", b"\r\n").replace(b"\r\n ", b"")
        # as Postfix's cleanup: "name :" normalized, an empty line after a primary header
        # that ends at a line that is no header
        expected = text.replace("X-Spaced : ", "X-Spaced: ").replace("\r\nno header \u00e9", "\r\n\r\nno header \u00e9")
        assert wire == expected.encode(), case


def test_server_without_8bitmime_gets_quoted_printable(ours):
    t = ours["plain", "plain.test"]
    assert mail_params(t) == ""
    assert b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" \
           b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln =3D 100 =E2=82=AC\r\ntrailing blank=20\r\n" \
           b"..leading dot =C3=A9\r\n\r\nend\tof text=09\r\n" in t.data
    assert all(b < 128 for b in t.data)
    m = ours["multipart", "plain.test"].data
    assert b"Content-Transfer-Encoding: 7bit\r\n\r\nprolog \xc3\xa0 laisser" in m  # the prolog is not converted
    assert b"Texte accentu=C3=A9: =C3=A7=C3=A0 et l=C3=A0" in m
    assert b"Content-Disposition: inline\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>=C3=84rger" in m
    assert base64.b64encode(bytes(range(256))) in m
    n = ours["nested", "plain.test"].data
    assert b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\nSubject: inner \xc3\xa9" in n
    assert b"innen drin: =C3=B6" in n
    # Undeclared 8-bit content and 8-bit headers pass as they are.
    assert "kein MIME: Grüße".encode() in ours["nonmime", "plain.test"].data
    assert "X-Note: Grüße im Kopf".encode() in ours["header8", "plain.test"].data
    assert b"K=C3=B6rper" in ours["header8", "plain.test"].data
    # Soft line breaks keep every converted line within 76 bytes.
    body = ours["long", "plain.test"].data.split(b"\r\n\r\n", 1)[1]
    assert max(len(x) for x in body.split(b"\r\n")) <= 76
    assert b"=C3=A9" in body


def test_undeclared_8bit_encoding_header_makes_the_message_8bit(ours):
    for case, how, _ in UNDECLARED:
        eight, plain = ours[f"{case}-{how}", "eight.test"], ours[f"{case}-{how}", "plain.test"]
        if case == "nonmime":  # no Content-Transfer-Encoding: nothing says 8-bit
            assert "BODY=8BITMIME" not in mail_params(eight), (case, how)
        else:
            assert mail_params(eight) == "BODY=8BITMIME", (case, how)
            assert b"quoted-printable" in plain.data and b"quoted-printable" not in eight.data, (case, how)


def test_mime_nesting_beyond_the_limit_is_not_sent(ours):
    assert ours["deep"] == {3: ("2.0.0", "sent", ""), 4: ("5.6.0", "bounced", "MIME nesting exceeds safety limit")}


def test_lmtp_converts_too_and_the_conversion_can_be_turned_off(ours):
    for case, text in MESSAGES.items():
        lm, plain = ours[case, "lm.test"], ours[case, "plain.test"]
        assert without_received(lm.data) == without_received(plain.data), case
        raw, eight = ours[case, "raw.test"], ours[case, "eight.test"]
        assert mail_params(raw) == ""
        assert without_received(raw.data) == without_received(eight.data), case


@pytest.mark.skipif(postfixpeer.available() != "", reason=postfixpeer.available() or "-")
def test_conversion_matches_debian_postfix(ours, servers):
    peer_port = free_port()
    peer = postfixpeer.PostfixPeer(main_cf=routes(servers) + "mynetworks = 127.0.0.0/8\n",
                                   master_cf_text=postfixpeer.master_cf(f"127.0.0.1:{peer_port}",
                                                                        extra=RAW_TRANSPORT),
                                   name="mime8")
    try:
        peer.start()
        submit(peer_port, peer.sendmail, "theirs")
        theirs = received(servers, "theirs")
        differ = {}
        for key, t in theirs.items():
            a, b = without_received(ours[key].data).split(b"\r\n"), without_received(t.data).split(b"\r\n")
            if mail_params(ours[key]) != mail_params(t) or a != b:
                differ[key] = (mail_params(ours[key]), mail_params(t), [x for x in a if x not in b],
                               [x for x in b if x not in a])
        assert not differ, differ
        assert wait_for(lambda: deep_results(peer.log(), "theirs"), 240), peer.log()
        assert ours["deep"] == deep_results(peer.log(), "theirs")
    finally:
        peer.cleanup()


def test_large_8bit_message_is_converted_as_it_streams(tmp_path, servers):
    inst = MailInstance(tmp_path / "big", main_cf=routes(servers) + "message_size_limit = 0\n", master_cf=AGENTS)
    inst.start()
    try:
        # 20 MB of 8-bit text (sendmail: declared by its header only), about 30 MB once converted.
        lines = [("Grüße %d " % i) * (i % 40 + 1) for i in range(200000)]
        body = "\n".join(lines) + "\n"
        p = inst.sendmail(["-f", SENDER, "big@plain.test"],
                          "Subject: big\nContent-Type: text/plain; charset=utf-8\n"
                          "Content-Transfer-Encoding: 8bit\n\n" + body)
        assert p.returncode == 0, p.stderr
        m = inst.wait_log_re(r"^.*postern/smtp\[(\d+)\]: \w+: to=<big@plain\.test>, .*status=sent", timeout=240)
        t = servers["plain"].wait(lambda t: any("<big@plain.test>" in r for r in t.rcpts), timeout=240)[0]
        head_part, wire = t.data.split(b"\r\n\r\n", 1)
        assert b"Content-Transfer-Encoding: quoted-printable" in head_part
        assert all(len(x) <= 76 for x in wire.split(b"\r\n"))
        assert quopri.decodestring(wire.replace(b"\r\n", b"\n")) == body.encode()
        # The agent converted a line at a time: its peak resident size stays far below
        # the 30 MB it sent.
        status = open(f"/proc/{m.group(1)}/status").read()
        peak_kb = int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1))
        assert peak_kb < 24 * 1024, status
    finally:
        inst.stop()
