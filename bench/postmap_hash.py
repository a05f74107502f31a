"""postmap on a 100,000-entry hash table: build it, then look every key up (plus as many
missing keys) through one `postmap -q -` process. Postern and Debian's /usr/sbin/postmap
run the same input side by side; the figures are entries (or lookups) per second of
wall time, CPU seconds (user + system, from getrusage of the child), the fsync and
fdatasync calls of one build (strace -c), and Postern's speed as a multiple of
Postfix's.

Usage: python3 bench/postmap_hash.py ABS_BUILD_DIR   (BENCH_ENTRIES to change the size)
"""
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENTRIES = int(os.environ.get("BENCH_ENTRIES", "100000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))  # best of N


def timed(argv, stdin_path=None, env=None):
    """Runs argv; returns (wall seconds, cpu seconds, stdout bytes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(stdin_path or os.devnull, "rb") as fin:
        p = subprocess.run(argv, stdin=fin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.decode()[:300]}")
    return wall, cpu, p.stdout


def sync_calls(argv, env):
    """fsync + fdatasync calls of one run (strace -c), or None without strace."""
    import shutil
    if not shutil.which("strace"):
        return None
    with tempfile.NamedTemporaryFile(prefix="postern-bench-strace-") as out:
        p = subprocess.run(["strace", "-f", "-qq", "-c", "-e", "trace=fsync,fdatasync",
                            "-o", out.name] + argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        if p.returncode != 0:
            return None
        total = 0
        for line in Path(out.name).read_text().splitlines():
            fields = line.split()
            if fields and fields[-1] in ("fsync", "fdatasync"):
                total += int(fields[3])
        return total


def best(fn):
    runs = [fn() for _ in range(ROUNDS)]
    return min(runs, key=lambda r: r[0])


def bench_side(name, postmap, work):
    conf = work / f"{name}-conf"
    conf.mkdir()
    (conf / "main.cf").write_text("")
    table = work / f"{name}-table"
    table.write_bytes((work / "source").read_bytes())
    env = dict(os.environ)
    env.pop("MAIL_CONFIG", None)
    build = best(lambda: timed([postmap, "-c", str(conf), f"hash:{table}"], env=env))
    look = best(lambda: timed([postmap, "-c", str(conf), "-q", "-", f"hash:{table}"],
                              stdin_path=work / "queries", env=env))
    found = look[2].count(b"\n")
    syncs = sync_calls([postmap, "-c", str(conf), f"hash:{table}"], env)
    return {"build": build[:2], "lookup": look[:2], "found": found,
            "db_bytes": Path(f"{table}.db").stat().st_size, "syncs": syncs}


def main():
    build_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "build")
    ours = build_dir / "sbin" / "postmap"
    theirs = Path("/usr/sbin/postmap")
    with tempfile.TemporaryDirectory(prefix="postern-bench-") as tmp:
        work = Path(tmp)
        with open(work / "source", "w") as f:
            for i in range(ENTRIES):
                f.write(f"user{i}@example{i % 97}.com\trelay{i % 13}.example.net:{i}\n")
        with open(work / "queries", "w") as f:
            for i in range(ENTRIES):
                f.write(f"user{i}@example{i % 97}.com\n")   # present
                f.write(f"nobody{i}@example.org\n")           # absent
        results = {}
        for name, prog in (("postern", ours), ("postfix", theirs)):
            if not prog.exists():
                print(f"  {name}: {prog} not built: skipped")
                continue
            results[name] = bench_side(name, str(prog), work)

    print(f"  {ENTRIES} entries; {2 * ENTRIES} lookups ({ENTRIES} present), best of {ROUNDS}")
    print(f"  {'':10} {'build/s':>10} {'build cpu':>10} {'lookups/s':>10} {'lookup cpu':>10}"
          f" {'found':>7} {'db bytes':>10} {'fsyncs':>6}")
    for name, r in results.items():
        bw, bc = r["build"]
        lw, lc = r["lookup"]
        print(f"  {name:10} {ENTRIES / bw:10.0f} {bc:9.2f}s {2 * ENTRIES / lw:10.0f} {lc:9.2f}s"
              f" {r['found']:7} {r['db_bytes']:10} {r['syncs'] if r['syncs'] is not None else '-':>6}")
    if len(results) == 2:
        a, b = results["postern"], results["postfix"]
        print(f"  postern/postfix speed: build {b['build'][0] / a['build'][0]:.2f}x, "
              f"lookup {b['lookup'][0] / a['lookup'][0]:.2f}x; "
              f"cpu: build {a['build'][1] / max(b['build'][1], 1e-9):.2f}x, "
              f"lookup {a['lookup'][1] / max(b['lookup'][1], 1e-9):.2f}x of postfix's")
        if a["found"] != b["found"]:
            print(f"  MISMATCH: postern found {a['found']} keys, postfix {b['found']}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
