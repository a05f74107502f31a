#!/bin/sh
# Runs every test suite against the build in $1 (default: build) and ends with one
# summary line of its own, "N passed, M failed", adding up every suite it ran.
# Exits non-zero when anything failed.
set -u
BUILD=${1:-build}
BUILD_ABS=$(cd "$BUILD" && pwd)
TOP=$(cd "$(dirname "$0")/.." && pwd)
LOGDIR=$BUILD_ABS/test-logs
mkdir -p "$LOGDIR"
passed=0
failed=0

# Unit tests (Catch2 v2). Its closing line is either "All tests passed (A assertions in
# N test cases)" or "test cases: N | P passed | F failed".
echo "== unit tests ($BUILD/tests/unit_tests)"
"$BUILD_ABS/tests/unit_tests" >"$LOGDIR/unit.log" 2>&1
unit_rc=$?
tail -n 40 "$LOGDIR/unit.log"
summary=$(grep -E '^(All tests passed|test cases:)' "$LOGDIR/unit.log" | tail -n 1)
case "$summary" in
    "All tests passed"*)
        n=$(echo "$summary" | sed -E 's/.* in ([0-9]+) test case.*/\1/')
        passed=$((passed + n)) ;;
    "test cases:"*)
        p=$(echo "$summary" | sed -nE 's/.*\| *([0-9]+) passed.*/\1/p')
        f=$(echo "$summary" | sed -nE 's/.*\| *([0-9]+) failed.*/\1/p')
        passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})) ;;
    *)
        echo "unit tests did not finish (exit $unit_rc)"; failed=$((failed + 1)) ;;
esac
[ "$unit_rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1

# End-to-end tests (pytest from Debian's python3-pytest).
echo "== end-to-end tests (tests/e2e)"
POSTERN_BUILD=$BUILD_ABS /usr/bin/python3 -m pytest -q -p no:cacheprovider --durations=25 \
    "$TOP/tests/e2e" >"$LOGDIR/e2e.log" 2>&1
e2e_rc=$?
tail -n 60 "$LOGDIR/e2e.log"
last=$(grep -E '^=*.*[0-9]+ (passed|failed|errors?)' "$LOGDIR/e2e.log" | tail -n 1)
count() { echo "$last" | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' | head -n 1; }
p=$(count passed)
f=$(count failed)
e=$(count 'errors?')
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0} + ${e:-0}))
if [ "$e2e_rc" -ne 0 ] && [ "$e2e_rc" -ne 5 ] && [ -z "$f$e" ]; then
    echo "end-to-end tests did not finish (exit $e2e_rc)"; failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
