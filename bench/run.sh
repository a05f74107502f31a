#!/bin/sh
# make bench: runs every benchmark in bench/ (bench/*.sh with sh, bench/*.py with
# Debian's python3) against the build in $1 and prints their figures.
#
#   sh bench/run.sh ABS_BUILD_DIR
#
# Each benchmark compares Postern with Debian's Postfix where Postfix has the same
# tool, and reports throughput, CPU seconds and the ratio. It exits non-zero only when
# a benchmark itself fails (a slower figure is information, not a failure).
set -u
BUILD=${1:?usage: sh bench/run.sh ABS_BUILD_DIR}
TOP=$(cd "$(dirname "$0")/.." && pwd)
failed=0
for b in "$TOP"/bench/*.sh "$TOP"/bench/*.py; do
    [ -e "$b" ] || continue
    [ "$(basename "$b")" = run.sh ] && continue
    echo "== $(basename "$b")"
    case "$b" in
        *.sh) sh "$b" "$BUILD" ;;
        *.py) /usr/bin/python3 "$b" "$BUILD" ;;
    esac || { echo "bench: $(basename "$b") failed" >&2; failed=$((failed + 1)); }
    echo
done
[ "$failed" -eq 0 ]
