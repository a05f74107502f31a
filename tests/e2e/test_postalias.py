"""postalias and newaliases: the same aliases(5) input through Debian's Postfix postalias
and Postern's, compared byte for byte (stdout, stderr, exit status, resulting table), and
alias .db files built by one read by the other."""
import re
import subprocess

import pytest

from conftest import postern, postfix, run

ALIASES = (
    "# comment\n"
    "Postmaster: root\n"
    'root: Admin@Example.COM, "|/usr/bin/foo bar"\n'
    "  , /var/log/x\n"
    '"Quoted Name": :include:/etc/x\n'
    "bad line\n"
    "foo:\n"
    ": empty\n"
    "root: dup\n"
    "user@dom: x\n"
    "u%v: y\n"
    "Last:val\n"
    "foo bar: x\n"
    "a.b: c  d\n"
    "e: f , g ,h\n"
    "i: j (comment) k\n"
    'l: "m n" <o@p>\n'
    "q: r@s.t, u . v\n"
    "w: [1.2.3.4] x\n"
    'y: \\\\z, \\"q\n'
    "A2: B; C\n"
    "d: :include:/etc/x,:include: /y\n"
    '"p\\"q": 3\n'
    'em: ""\n'
    "pipe: |/bin/cmd, \\root\n"
    "a, b: c\n"
    "   orphan: x\n"
)


def mask_time(lines):
    return [re.sub(r"^YP_LAST_MODIFIED(:?)\t\d{10}$", r"YP_LAST_MODIFIED\1\tTIME", l) for l in lines]


def dump(d, spec):
    p = subprocess.run([postfix("postalias"), "-s", spec], cwd=d, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return sorted(mask_time(p.stdout.splitlines()))


def both(tmp_path, argv, files, stdin=None, prog="postalias", main_cf=""):
    out = []
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "main.cf").write_text(main_cf)
    for name, path in (("postfix", postfix(prog)), ("postern", postern(prog))):
        d = tmp_path / name
        d.mkdir()
        for fname, content in files.items():
            (d / fname).write_bytes(content if isinstance(content, bytes) else content.encode())
        p = subprocess.run([path, "-c", str(conf)] + argv, cwd=d, input=stdin, capture_output=True,
                           timeout=120)
        out.append((p.stdout, p.stderr, p.returncode, d))
    return out


@pytest.mark.parametrize("argv", [
    ["al"], ["hash:al"], ["btree:al"], ["-N", "al"], ["-n", "al"], ["-f", "al"], ["-w", "al"],
    ["-r", "al"], ["nofile"], ["cidr:al"], [], ["-x"], ["-q", "a", "-s", "al"],
])
def test_build_matches_postfix(tmp_path, argv):
    res = both(tmp_path, argv, {"al": ALIASES})
    (o1, e1, r1, d1), (o2, e2, r2, d2) = res
    assert (o2, e2, r2) == (o1, e1, r1)
    if r1 == 0 and argv:  # a successful build: the tables must hold the same entries
        spec = argv[-1] if ":" in argv[-1] else "hash:" + argv[-1]
        assert dump(d1, spec) == dump(d2, spec)


@pytest.mark.parametrize("argv", [
    ["-q", "root", "al"], ["-q", "POSTMASTER", "al"], ["-q", "@", "al"], ["-q", "nope", "al"],
    ["-q", "-", "al"], ["-s", "al"], ["-d", "root", "al"], ["-d", "-", "al"], ["-i", "al"],
    ["-ir", "al"], ["-iw", "al"],
])
def test_queries_and_updates_match_postfix(tmp_path, argv):
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "al").write_text(ALIASES)
    subprocess.run([postfix("postalias"), str(seed / "al")], capture_output=True, check=True)
    files = {"al": ALIASES, "al.db": (seed / "al.db").read_bytes()}
    stdin = b"root\nnope\nLAST\nnew: a, b\npostmaster: other\n"
    res = both(tmp_path, argv, files, stdin=stdin)
    (o1, e1, r1, d1), (o2, e2, r2, d2) = res
    if argv[0] == "-s":
        o1, o2 = (mask_time(o.decode().splitlines()) for o in (o1, o2))
    assert (o2, e2, r2) == (o1, e1, r1)
    assert dump(d1, "hash:al") == dump(d2, "hash:al")


@pytest.mark.parametrize("builder,reader", [("postern", "postfix"), ("postfix", "postern")])
@pytest.mark.parametrize("flags", [[], ["-N"], ["-n"]])
def test_alias_db_files_are_interchangeable(tmp_path, confdir, builder, reader, flags):
    progs = {"postern": postern("postalias"), "postfix": postfix("postalias")}
    (tmp_path / "al").write_text(ALIASES)
    spec = f"hash:{tmp_path}/al"
    assert run([progs[builder], "-c", str(confdir)] + flags + [spec]).returncode == 0
    keys = "root\nPostmaster\nquoted name\n@\nYP_MASTER_NAME\nnope\n"
    a = run([progs[reader], "-c", str(confdir), "-q", "-", spec], input=keys)
    b = run([progs[builder], "-c", str(confdir), "-q", "-", spec], input=keys)
    assert (a.stdout, a.returncode) == (b.stdout, b.returncode)
    assert 'root:\tAdmin@Example.COM, "|/usr/bin/foo bar", /var/log/x\n' in a.stdout
    assert "@:\t@\n" in a.stdout
    s1 = run([progs[reader], "-c", str(confdir), "-s", spec]).stdout.splitlines()
    s2 = run([progs[builder], "-c", str(confdir), "-s", spec]).stdout.splitlines()
    assert sorted(s1) == sorted(s2)


def test_newaliases_rebuilds_alias_database(tmp_path):
    for n in ("a1", "a2", "a3"):
        (tmp_path / n).write_text(f"{n}: root\n")
    main_cf = (f"alias_database = hash:{tmp_path}/a1, {tmp_path}/a2 btree:{tmp_path}/a3\n"
               "default_database_type = hash\n")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "main.cf").write_text(main_cf)
    r = run([postern("newaliases"), "-c", str(conf)])
    assert (r.returncode, r.stderr) == (0, "")
    for n, kind in (("a1", "hash"), ("a2", "hash"), ("a3", "btree")):
        q = run([postfix("postalias"), "-q", n, f"{kind}:{tmp_path}/{n}"])
        assert q.stdout == "root\n"


def test_newaliases_stops_at_a_type_it_cannot_build(tmp_path):
    # Postfix's newaliases (sendmail -bi) hands every alias_database entry to postalias,
    # which builds them in order and stops with a fatal error at the first it cannot.
    for n in ("a1", "a2", "a3"):
        (tmp_path / n).write_text(f"{n}: root\n")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "main.cf").write_text(
        f"alias_database = hash:{tmp_path}/a1, cidr:{tmp_path}/a2, hash:{tmp_path}/a3\n")
    r = run([postern("newaliases"), "-c", str(conf)])
    p = run([postfix("sendmail"), "-bi"], env={"MAIL_CONFIG": str(conf)})
    assert r.returncode == p.returncode == 1
    assert r.stderr.replace("newaliases", "postalias") == p.stderr
    assert (tmp_path / "a1.db").exists() and not (tmp_path / "a3.db").exists()


def test_newaliases_takes_no_map_arguments(tmp_path, confdir):
    r = run([postern("newaliases"), "-c", str(confdir), "/etc/aliases"])
    assert r.returncode == 1
    assert "usage: newaliases" in r.stderr
