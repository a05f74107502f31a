#!/bin/sh
# Queue write benchmark: create + write + commit (fchmod + fsync + directory fsync) of
# 1,000 small queue files, one commit per file and then in group commits, through
# Postern's queue writer (driven by a hidden case of the unit-test binary).
# Also counts the fsync calls per file with strace when it is installed.
#
#   sh bench/queue_write.sh ABS_BUILD_DIR   (QUEUE_BENCH_COUNT=1000 QUEUE_BENCH_BATCH=16)
set -eu
BUILD=${1:?usage: sh bench/queue_write.sh ABS_BUILD_DIR}
COUNT=${QUEUE_BENCH_COUNT:-1000}
BATCH=${QUEUE_BENCH_BATCH:-16}
UNIT="$BUILD/tests/unit_tests"
[ -x "$UNIT" ] || { echo "queue_write: $UNIT is not built" >&2; exit 1; }
# On the disk the queue normally lives on, not tmpfs: fsync must cost what it costs.
BASE=${QUEUE_BENCH_BASE:-/var/tmp}
DIR=$(mktemp -d "$BASE/postern-queue-bench.XXXXXX")
trap 'rm -rf "$DIR"' EXIT INT TERM

POSTERN_QUEUE_BENCH_DIR="$DIR" POSTERN_QUEUE_BENCH_COUNT="$COUNT" \
POSTERN_QUEUE_BENCH_BATCH="$BATCH" "$UNIT" "[.queue-bench]" | grep '^queue_write:'

if command -v strace >/dev/null 2>&1; then
    rm -rf "$DIR"/incoming
    N=100
    POSTERN_QUEUE_BENCH_DIR="$DIR" POSTERN_QUEUE_BENCH_COUNT=$N POSTERN_QUEUE_BENCH_BATCH=$N \
        strace -f -c -e trace=fsync,fdatasync -o "$DIR/strace.out" "$UNIT" "[.queue-bench]" >/dev/null
    CALLS=$(awk '$NF == "fsync" || $NF == "fdatasync" { n += $4 } END { print n + 0 }' "$DIR/strace.out")
    # The run commits N files one by one, then N files in one group commit.
    echo "queue_write: $CALLS fsync calls for $N single + $N grouped commits" \
         "($(awk -v c="$CALLS" -v n="$N" 'BEGIN { printf "%.2f", c / (2 * n) }') per file)"
fi
