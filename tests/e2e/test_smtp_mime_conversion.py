"""smtp(8)/lmtp(8) and 8-bit mail: BODY=8BITMIME to a server that announces 8BITMIME,
and to one that does not, Postfix's conversion (disable_mime_output_conversion = no):
8-bit MIME entities become quoted-printable with a rewritten Content-Transfer-Encoding
header, multipart and message/rfc822 entities 7bit; 8-bit headers and undeclared 8-bit
bodies pass unchanged. Differential: the same messages, submitted over SMTP with
BODY=8BITMIME to Postern and to Debian's Postfix, reach capture servers as the same bytes
(apart from the Received header), over SMTP, LMTP, and a transport with the conversion
turned off (-o disable_mime_output_conversion=yes)."""
import base64
import smtplib

import pytest

import postfixpeer
from capturesmtp import CaptureSmtp
from mailsystem import MailInstance, free_port, smtpd_service

RAW_TRANSPORT = "rawsmtp unix - - n - - smtp\n  -o disable_mime_output_conversion=yes\n"
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
                        for dom, (name, transport) in DOMAINS.items())
    return f"transport_maps = inline:{{{entries}}}\n"


def submit(port, who):
    with smtplib.SMTP("127.0.0.1", port, timeout=180) as s:
        s.ehlo("client.example.test")
        for case, text in MESSAGES.items():
            for dom in DOMAINS:
                s.sendmail(SENDER, [f"{case}-{who}@{dom}"], text.encode(), mail_options=["BODY=8BITMIME"])


def received(servers, who):
    """{(case, domain): transaction} once all have arrived."""
    out = {}
    for case in MESSAGES:
        for dom, (name, _) in DOMAINS.items():
            rcpt = f"<{case}-{who}@{dom}>"
            out[case, dom] = servers[name].wait(lambda t: any(rcpt in r for r in t.rcpts), timeout=240)[0]
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
        submit(port, "ours")
        yield received(servers, "ours")
    finally:
        inst.stop()


def test_8bitmime_server_gets_body_8bitmime_and_unchanged_content(ours):
    for case, text in MESSAGES.items():
        t = ours[case, "eight.test"]
        assert mail_params(t) == "BODY=8BITMIME", case
        # as sent, but for dot-stuffing and smtp_line_length_limit folding
        wire = without_received(t.data).replace(b"\r\n.", b"\r\n").replace(b"\r\n ", b"")
        assert wire == text.encode(), case


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
        submit(peer_port, "theirs")
        theirs = received(servers, "theirs")
        for key, t in theirs.items():
            assert mail_params(ours[key]) == mail_params(t), key
            assert without_received(ours[key].data) == without_received(t.data), key
    finally:
        peer.cleanup()
