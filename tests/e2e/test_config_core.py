"""Differential tests of the configuration core (main.cf reading, $name expansion,
derived defaults) through `postconf -c DIR -h NAME`, against Debian's Postfix.

stdout and the exit status must match exactly; stderr must hold the same distinct
lines once the program prefix is removed (Postfix repeats some warnings because it
reads main.cf several times).
"""
import re

import pytest

from conftest import postern, postfix, run


def distinct_messages(stderr):
    lines = []
    for line in stderr.splitlines():
        line = re.sub(r"^\S*postconf: ", "", line)
        if line not in lines:
            lines.append(line)
    return lines


def compare(confdir, main_cf, names):
    (confdir / "main.cf").write_bytes(main_cf)
    (confdir / "master.cf").write_text("")
    ours = run([postern("postconf"), "-c", str(confdir), "-h", *names])
    theirs = run([postfix("postconf"), "-c", str(confdir), "-h", *names])
    assert ours.returncode == theirs.returncode, (ours.stderr, theirs.stderr)
    assert ours.stdout == theirs.stdout
    assert distinct_messages(ours.stderr) == distinct_messages(theirs.stderr)


EXPANSIONS = [
    b"myorigin = ${myhostname?{yes}:{no}} ${nosuch?{yes}:{no}}\n",
    b"myorigin = ${nosuch:fallback text}|${myhostname:x}|$$|$(mydomain)\n",
    b"myorigin = ${{$mydomain} == {localdomain} ? {eq} : {ne}} ${{a}!={b}}\n",
    b"myorigin = ${{10}<={10}?{le}} ${{10} < {9}?{lt}:{ge}} ${{abc} > {abd} ? {gt} : {le}}\n",
    b"myorigin = ${{3.7.1} >level {3.7} ? {newer} : {older}} ${{$compatibility_level} <level {2}?{old}}\n",
    b"myorigin = ${myhostname?{a}:b c d} ${nosuch?{a}:b c d}\n",
    b"myorigin = $a-$b\na = x${b}\nb = y\n",
    b"myorigin = ${foo\n",
    b"myorigin = $ x\n",
    b"myorigin = ${a b}\n",
    b"myorigin = ${{x}<>{y}}\n",
    b"myorigin = $loop\nloop = $loop\n",
    b"myorigin = ${{x} <level {2}}\n",
]


@pytest.mark.parametrize("main_cf", EXPANSIONS)
def test_expansion_matches_postfix(confdir, main_cf):
    compare(confdir, main_cf, ["myorigin"])


MAIN_CF_SYNTAX = [
    b"foo bar\n",
    b"= c\n",
    b"a b = c\n",
    b" a = b\nmyorigin = x\n",
    b"myorigin = a\n  # comment\n#c\n\n  b\n",
    b"myorigin = a\r\nmydomain = d.example\r\n",
    b"myorigin = a\x00b\n",
    b"myorigin\x00 = a\n",
    b"myorigin = " + b"x" * 5000 + b"\n",
]


@pytest.mark.parametrize("main_cf", MAIN_CF_SYNTAX)
def test_main_cf_syntax_matches_postfix(confdir, main_cf):
    compare(confdir, main_cf, ["myorigin", "mydomain"])


@pytest.mark.parametrize("main_cf", [
    b"",
    b"mynetworks_style = host\n",
    b"mynetworks_style = subnet\n",
    b"mynetworks_style = class\n",
    b"mynetworks_style = class\ninet_protocols = ipv4\n",
    b"compatibility_level = 2\n",
    b"mynetworks_style = bogus\n",
    b"myhostname = mail.example\n",
    b"myhostname = mail.example.com\n",
    b"mydomain = foo.org\n",
])
def test_derived_defaults_match_postfix(confdir, main_cf):
    compare(confdir, main_cf, ["myhostname", "mydomain", "mynetworks_style", "mynetworks"])
