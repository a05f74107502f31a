"""regexp:, pcre: and cidr: tables: the same rule files and keys through Debian's postmap
and Postern's, compared byte for byte (stdout, stderr with the rule warnings, exit
status)."""
import subprocess

import pytest

from conftest import postern, postfix

REGEXP = r"""# regexp_table(5)
/^(.*)@example\.com$/	local ${1} at $(1) cost $$5
!/^postmaster@/i	not-postmaster
/^postmaster@(.*)$/	pm $1
if /^admin/
/^admin(\+.*)?@/i	OK admin
endif
/a/!/b/	a-not-b
/(c)(d)?/	[$1][$2]
|x/y|	delimiter
/multi/	first
	continued   line
/(e)/	$1x
/(f)/	$0
/(g)/	$2
!/(h)/	$1
/(bad/	x
/q/z	x
/unterminated	x
/empty/
endif
IF /^if-block/ extra
/./	in-if
ENDIF junk
junk line
"""

PCRE = r"""# pcre_table(5)
/^(?!owner-)(.*)-outgoing@(.*)/	550 Use ${1}@${2} instead
/^(\d+)$/	number $1
/^ABC$/i	case-sensitive
/a.b/s	no-dotall
/^(q.+)/U	ungreedy [$1]
/x y z/x	extended
/obsolete/X	ex
/(unclosed/	x
/b/!/c/	bang
if !/\.example$/
/^host/	foreign host
endif
/^(a)|(b)$/	[$1][$2]
/./	fallback
"""

CIDR = """# cidr_table(5)
192.168.1.1   OK one
192.168.0.0/16  REJECT two
10.1.2.3/8   hostbits
[10.0.0.0]/8  brackets
!172.16.0.0/12  notprivate
if 2001:db8::/32
2001:db8::1   v6one
 continued line
endif
if !1.0.0.0/8
endif extra
endif
[::1]  loop6
foo bar
1.2.3.4
01.2.3.4 octal
1.2.3.4/33 x
1.2.3.4/8x y
/8 y
[1.2.3.4 y
[1.2.3.4]x y
::ffff:1.2.3.0/120 mapped
::/0 all6
"""

KEYS = {
    "regexp": ["joe@example.com", "JOE@EXAMPLE.COM", "postmaster@x.org", "admin@x", "admin+1@x",
               "ab", "cad", "c", "x/y", "multi", "e", "f", "g", "h", "empty", "if-block",
               "nothing-at-all", ""],
    "pcre": ["list-outgoing@example.com", "owner-list-outgoing@example.com", "12345", "abc", "ABC",
             "a\nb", "axb", "qxyz", "xyz", "obsolete", "bc", "host.other", "host.example",
             "a", "b", ""],
    "cidr": ["192.168.1.1", "192.168.5.5", "10.1.1.1", "2001:db8::1", "2001:DB8:0::1", "::1",
             "[::1]", "8.8.8.8", "172.16.1.1", "abc", "1.2.3.4", "::ffff:1.2.3.4", " 192.168.1.1",
             "1.1.1.1", "[1.1.1.1]", "1.2.3", ""],
}
SOURCES = {"regexp": REGEXP, "pcre": PCRE, "cidr": CIDR}


def run_both(tmp_path, argv, files, stdin=None):
    """Runs postmap argv in two copies of `files`: Postfix's, then Postern's result."""
    out = []
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "main.cf").write_text("")
    for name, prog in (("postfix", postfix("postmap")), ("postern", postern("postmap"))):
        d = tmp_path / name
        d.mkdir(exist_ok=True)
        for fname, content in files.items():
            (d / fname).write_bytes(content.encode())
        p = subprocess.run([prog, "-c", str(conf)] + argv, cwd=d, input=stdin,
                           capture_output=True, timeout=120)
        out.append((p.stdout, p.stderr.replace(b"postern/", b"postfix/"), p.returncode))
    return out


@pytest.fixture(autouse=True)
def need_postmap():
    try:
        postern("postmap")
    except FileNotFoundError:
        pytest.skip("postmap is not built")


@pytest.mark.parametrize("kind", ["regexp", "pcre", "cidr"])
def test_single_queries_match_postfix(tmp_path, kind):
    # Exit status per key: found (0) and not found (1); -q - covers the whole key list.
    for i, key in enumerate(KEYS[kind][:8]):
        if "\n" in key or key == "":
            continue
        sub = tmp_path / f"k{i}"
        sub.mkdir()
        postfix_result, postern_result = run_both(sub, ["-q", key, f"{kind}:t"],
                                                  {"t": SOURCES[kind]})
        assert postern_result == postfix_result, f"key {key!r}"


@pytest.mark.parametrize("kind", ["regexp", "pcre", "cidr"])
def test_stdin_queries_match_postfix(tmp_path, kind):
    keys = "".join(k + "\n" for k in KEYS[kind] if "\n" not in k)
    postfix_result, postern_result = run_both(tmp_path, ["-q", "-", f"{kind}:t"],
                                              {"t": SOURCES[kind]}, stdin=keys.encode())
    assert postern_result == postfix_result


@pytest.mark.parametrize("spec,key", [
    ("regexp:{ {/a(b)/ x$1}, { /c/ d } }", "abc"),
    ("regexp:{ {/a(b/ x$1}, {/c/ d} }", "abc"),
    ("regexp:{ {/a/ x}, /c/ d }", "abc"),
    ("regexp:{ {/a/ x}", "a"),
    ("regexp:{ {/a/ x} } junk", "a"),
    ("pcre:{ {/^(\\d+)$/ n$1} }", "42"),
    ("cidr:{{1.2.3.4 x},{1.2.3.5/8 y}}", "1.2.3.4"),
    ("cidr:{{1.2.3.4   sp  ace }}", "1.2.3.4"),
])
def test_inline_specs_match_postfix(tmp_path, spec, key):
    postfix_result, postern_result = run_both(tmp_path, ["-q", key, spec], {})
    assert postern_result == postfix_result


@pytest.mark.parametrize("kind", ["regexp", "pcre", "cidr"])
def test_missing_file_matches_postfix(tmp_path, kind):
    postfix_result, postern_result = run_both(tmp_path, ["-q", "x", f"{kind}:nofile"], {})
    assert postern_result == postfix_result


def test_leading_whitespace_warning_matches_postfix(tmp_path):
    files = {"t": "  orphan continuation\n/a/ x\n"}
    postfix_result, postern_result = run_both(tmp_path, ["-q", "a", "regexp:t"], files)
    assert postern_result == postfix_result


@pytest.mark.parametrize("spec,key", [
    ("regexp:u", "\udcff\udcfeabc"),
    ("regexp:u", "ÜBER"),
    ("pcre:u", "ÜBER"),
    ("cidr:c", "\udcff1.2.3.4"),
    ("cidr:c", "1.2.3.4"),
])
def test_smtputf8_checks_match_postfix(tmp_path, spec, key):
    """With smtputf8_enable (compatibility_level 3.6), non-UTF-8 keys are refused and a
    result cut in the middle of a character is a query error, as in Postfix."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "main.cf").write_text("compatibility_level = 3.6\n")
    files = {"u": b"/^(.)(.*)$/\tfirst=$1 rest=$2\n", "c": b"1.2.3.4\tcaf\xe9\n"}
    results = []
    for prog in (postfix("postmap"), postern("postmap")):
        d = tmp_path / prog.replace("/", "_")
        d.mkdir()
        for name, content in files.items():
            (d / name).write_bytes(content)
        p = subprocess.run([prog, "-c", str(conf), "-q", key.encode("utf-8", "surrogateescape"), spec],
                           cwd=d, capture_output=True, timeout=120)
        results.append((p.stdout, p.stderr, p.returncode))
    assert results[1] == results[0]
