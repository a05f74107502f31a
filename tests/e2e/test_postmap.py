"""postmap: the same input through Debian's Postfix postmap and Postern's, compared byte
for byte (stdout, stderr, exit status, resulting table), and .db files built by one read
by the other."""
import shutil
import subprocess
import time

import pytest

from conftest import postern, postfix, run

SOURCE = (
    "Foo bar\n"
    "Baz  qux  quux  \n"
    "# comment\n"
    "  continued\n"
    "foo duplicate\n"
    "novalue\n"
    '"a b" quoted key\n'
    "k: v\n"
    "cr value\r\n"
    "x@Example.COM y\n"
    '"unbalanced x\n'
    "  orphan\n"
    "last nonewline"
)


def both(tmp_path, argv, files, stdin=None):
    """Runs argv (after the program name) in two copies of `files`; returns the results
    of Postfix and Postern as (stdout, stderr, rc, dir)."""
    out = []
    for name, prog in (("postfix", postfix("postmap")), ("postern", postern("postmap"))):
        d = tmp_path / name
        d.mkdir()
        for fname, content in files.items():
            mode = "wb" if isinstance(content, bytes) else "w"
            with open(d / fname, mode) as f:
                f.write(content)
        conf = tmp_path / "conf"
        conf.mkdir(exist_ok=True)
        (conf / "main.cf").write_text("")
        p = subprocess.run([prog, "-c", str(conf)] + argv, cwd=d, input=stdin,
                           capture_output=True, timeout=120)
        out.append((p.stdout, p.stderr, p.returncode, d))
    return out


def dump(d, spec):
    """The table's entries, sorted, as Postfix's postmap -s sees them."""
    p = subprocess.run([postfix("postmap"), "-s", spec], cwd=d, capture_output=True)
    assert p.returncode == 0, p.stderr
    return sorted(p.stdout.splitlines())


def assert_same(results):
    (o1, e1, r1, _), (o2, e2, r2, _) = results
    assert (o2, e2, r2) == (o1, e1, r1)


@pytest.mark.parametrize("argv", [
    ["m"], ["hash:m"], ["btree:m"], ["-N", "m"], ["-n", "m"], ["-f", "m"], ["-r", "m"],
    ["-w", "m"], ["nofile"], ["-q", "x", "foo:m"], ["texthash:m"],
    ["cidr:m"], ["static:m"], ["fail:m"], [], ["-q"], ["-x", "m"], ["-q", "a", "-s", "m"],
    ["-s", "-q", "a", "m"], ["-q", "x", "nofile"], ["-s", "nofile"], ["-d", "x", "nofile"],
    ["-b", "m"], ["-m", "-q", "-", "m"],
])
def test_build_and_errors_match_postfix(tmp_path, argv):
    res = both(tmp_path, argv, {"m": SOURCE})
    assert_same(res)
    if res[0][2] == 0 and argv and not argv[0].startswith("-q"):
        spec = argv[-1] if ":" in argv[-1] else "hash:" + argv[-1]
        if spec.startswith(("hash:", "btree:")):
            assert dump(res[0][3], spec) == dump(res[1][3], spec)


@pytest.mark.parametrize("argv", [
    ["-q", "FOO", "m"], ["-f", "-q", "FOO", "m"], ["-q", "nope", "m"], ["-s", "m"],
    ["-q", "-", "m"], ["-q", "-", "m", "static:S"], ["-d", "foo", "m"], ["-d", "nope", "m"],
    ["-d", "-", "m"], ["-i", "m"], ["-ir", "m"], ["-iw", "m"], ["-i", "new"],
    ["-q", "foo", "inline:{ Foo=bar, { a = b c } }"], ["-s", "inline:{a=b}"],
    ["-q", "x", "static:{ text with spaces }"], ["-q", "x", "fail:oops"], ["-s", "static:x"],
    ["-q", "a", "inline:{}"], ["-q", "a", "inline:{ a }"], ["-q", "a", "static:{a b"],
    ["-q", "root", "unix:passwd.byname"], ["-q", "ROOT", "unix:group.byname"],
    ["-q", "x", "unix:nosuch"], ["-s", "unix:passwd.byname"], ["-q", "a", "static:"],
])
def test_queries_and_updates_match_postfix(tmp_path, argv):
    src = "Foo bar\nbaz 1\nempty \"\"\n"
    stdin = b"A b\nfoo new\nc d\nBAZ\nnope\n"
    # Both sides start from the same .db, built by Postfix.
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "m").write_text(src)
    subprocess.run([postfix("postmap"), str(seed / "m")], check=True)
    files = {"m": src, "m.db": (seed / "m.db").read_bytes()}
    res = both(tmp_path, argv, files, stdin=stdin)
    assert_same(res)
    for spec in ("hash:m", "hash:new"):
        if (res[0][3] / (spec[5:] + ".db")).exists():
            assert dump(res[0][3], spec) == dump(res[1][3], spec)


@pytest.mark.parametrize("message", [
    b"Subject: hi\n there\nFrom: a\n\nbody1\nfoo\n",
    b"Subject: hi\nnot a header\nX: y\n\nfoo",
])
@pytest.mark.parametrize("opts", [["-h"], ["-b"], ["-h", "-b"], ["-b", "-m"]])
def test_header_and_body_keys_match_postfix(tmp_path, message, opts):
    assert_same(both(tmp_path, opts + ["-q", "-", "static:X"], {}, stdin=message))


@pytest.mark.parametrize("build_flags", [[], ["-N"], ["-n"], ["-f"]])
@pytest.mark.parametrize("kind", ["hash", "btree"])
@pytest.mark.parametrize("builder,reader", [("postern", "postfix"), ("postfix", "postern")])
def test_db_files_are_interchangeable(tmp_path, build_flags, kind, builder, reader, confdir):
    progs = {"postern": postern("postmap"), "postfix": postfix("postmap")}
    (tmp_path / "m").write_text("Foo bar\nUPPER Val\nx@Example.com y\n\"a b\" c\nlong " + "v" * 5000 + "\n")
    spec = f"{kind}:{tmp_path}/m"
    r = run([progs[builder], "-c", str(confdir)] + build_flags + [spec])
    assert r.returncode == 0, r.stderr
    keys = "foo\nX@EXAMPLE.COM\nupper\nFoo\nnone\n\"a b\"\nlong\n"
    a = run([progs[reader], "-c", str(confdir), "-q", "-", spec], input=keys)
    b = run([progs[builder], "-c", str(confdir), "-q", "-", spec], input=keys)
    assert (a.stdout, a.returncode) == (b.stdout, b.returncode)
    assert "foo\tbar" in a.stdout or build_flags == ["-f"]
    s1 = run([progs[reader], "-c", str(confdir), "-s", spec])
    s2 = run([progs[builder], "-c", str(confdir), "-s", spec])
    assert sorted(s1.stdout.splitlines()) == sorted(s2.stdout.splitlines())
    assert len(s1.stdout.splitlines()) == 5


def test_postfix_incremental_update_of_postern_table(tmp_path, confdir):
    (tmp_path / "m").write_text("a 1\n")
    spec = f"hash:{tmp_path}/m"
    assert run([postern("postmap"), "-c", str(confdir), spec]).returncode == 0
    assert run([postfix("postmap"), "-c", str(confdir), "-i", spec], input="b 2\n").returncode == 0
    assert run([postern("postmap"), "-c", str(confdir), "-i", spec], input="c 3\n").returncode == 0
    assert run([postern("postmap"), "-c", str(confdir), "-d", "a", spec]).returncode == 0
    r = run([postfix("postmap"), "-c", str(confdir), "-s", spec])
    assert sorted(r.stdout.splitlines()) == ["b\t2", "c\t3"]


def test_corrupt_db_is_a_clear_error(tmp_path, confdir):
    (tmp_path / "bad.db").write_text("not a database at all\n")
    for prog in (postern("postmap"), postfix("postmap")):
        r = run([prog, "-c", str(confdir), "-q", "x", f"hash:{tmp_path}/bad"])
        assert r.returncode == 1
        assert f"fatal: open database {tmp_path}/bad.db: Invalid argument" in r.stderr


def test_readers_see_old_or_new_table_during_rebuild(tmp_path, confdir):
    spec = f"hash:{tmp_path}/big"
    (tmp_path / "big").write_text("probe old\n")
    assert run([postern("postmap"), "-c", str(confdir), spec]).returncode == 0
    with open(tmp_path / "big", "w") as f:
        f.write("probe new\n")
        for i in range(200000):
            f.write(f"key{i} value{i}\n")
    builder = subprocess.Popen([postern("postmap"), "-c", str(confdir), spec])
    seen = set()
    while builder.poll() is None:
        for prog in (postern("postmap"), postfix("postmap")):
            r = run([prog, "-c", str(confdir), "-q", "probe", spec])
            assert r.returncode == 0, r.stderr
            seen.add(r.stdout)
    assert builder.wait() == 0
    assert seen <= {"old\n", "new\n"}
    assert run([postfix("postmap"), "-c", str(confdir), "-q", "key199999", spec]).stdout == "value199999\n"
    assert not list(tmp_path.glob("big.db.*")), "temporary build file left behind"


def test_result_inherits_source_permissions(tmp_path, confdir):
    (tmp_path / "m").write_text("a b\n")
    (tmp_path / "m").chmod(0o640)
    assert run([postern("postmap"), "-c", str(confdir), f"hash:{tmp_path}/m"]).returncode == 0
    assert (tmp_path / "m.db").stat().st_mode & 0o777 == 0o640


def test_unsupported_type_for_build(tmp_path, confdir):
    # Debian's postmap adds "Is the postfix-foo package installed?" (its dynamic-map
    # packaging); Postern has no such packages, so the message stops at the type.
    (tmp_path / "m").write_text("a b\n")
    r = run([postern("postmap"), "-c", str(confdir), f"foo:{tmp_path}/m"])
    assert r.returncode == 1
    assert r.stderr == "postmap: fatal: unsupported dictionary type: foo\n"


UTF8_SOURCE = ("\u00c4bc value\nBAD\udcff x\nplain \u00e9t\u00e9\n\u03a3\u03a3 sigma\nSTRASSE x\n"
               "stra\u00dfe y\n").encode("utf-8", "surrogateescape")
UTF8_KEYS = "\u00e4BC\n\u00c4bc\nbad\udcff\n\u03c3\u03c3\nSTRA\u00dfE\n".encode("utf-8", "surrogateescape")


@pytest.mark.parametrize("argv", [["u"], ["-q", "-", "u"], ["-q", "-", "texthash:u"], ["-u", "u"]])
def test_smtputf8_checks_and_folding_match_postfix(tmp_path, argv):
    # compatibility_level >= 1 turns smtputf8_enable on: non-UTF-8 lines and keys are
    # refused and non-ASCII keys are case-folded (ß folds to ss, as ICU does).
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "u").write_bytes(UTF8_SOURCE)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "main.cf").write_text("compatibility_level = 3.6\n")
    subprocess.run([postfix("postmap"), "-c", str(conf), str(seed / "u")], capture_output=True, check=True)
    out = []
    for name, prog in (("postfix", postfix("postmap")), ("postern", postern("postmap"))):
        d = tmp_path / name
        d.mkdir()
        shutil.copy2(seed / "u", d / "u")
        shutil.copy2(seed / "u.db", d / "u.db")
        p = subprocess.run([prog, "-c", str(conf)] + argv, cwd=d, input=UTF8_KEYS, capture_output=True)
        out.append((p.stdout, p.stderr, p.returncode, dump(d, "hash:u")))
    assert out[1] == out[0]


@pytest.mark.parametrize("argv", [[], ["-i"], ["-d", "a"], ["-q", "a"]])
def test_permission_errors_match_postfix_for_an_unprivileged_user(tmp_path, argv):
    # A directory the user may read but not write: builds and updates must fail with
    # Postfix's messages (naming NAME.db, never a temporary file).
    tmp_path.chmod(0o755)
    d = tmp_path / "ro"
    d.mkdir()
    (d / "m").write_text("a b\n")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "main.cf").write_text("")
    if argv:
        subprocess.run([postfix("postmap"), str(d / "m")], check=True)
        (d / "m.db").chmod(0o644)
    out = []
    for prog in (postfix("postmap"), postern("postmap")):
        p = subprocess.run(["runuser", "-u", "nobody", "--", prog, "-c", str(conf)] + argv + [str(d / "m")],
                           input="", capture_output=True, text=True)
        out.append((p.stdout, p.stderr, p.returncode))
    assert out[1] == out[0]
