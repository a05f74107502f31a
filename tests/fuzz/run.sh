#!/bin/sh
# make fuzz: builds every tests/fuzz/fuzz_*.cc with clang's libFuzzer, AddressSanitizer
# and UBSan against the src/util sources (compiled with clang into build-fuzz/), then
# runs each target for a bounded time from its seed corpus.
#
#   FUZZ_SECONDS=30   time per target (default 30)
#   FUZZ_TARGETS=...  only these targets (names without .cc, space separated)
#   FUZZ_JOBS=2       parallel compile jobs
#
# Seeds: tests/fuzz/seeds/<target>/ (checked in, small). The corpus that grows while
# fuzzing stays in build-fuzz/corpus/<target>/; a crash leaves its input in
# build-fuzz/artifacts/<target>/ and makes the script exit 1.
# Without clang (or its libFuzzer runtime) the script says so and exits 0.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP"
BUILD=build-fuzz
SECONDS_EACH=${FUZZ_SECONDS:-30}
JOBS=${FUZZ_JOBS:-2}
CXX=${FUZZ_CXX:-clang++}

if ! command -v "$CXX" >/dev/null 2>&1; then
    echo "make fuzz: $CXX not found; skipping the fuzz targets (apt-get install clang)"
    exit 0
fi
mkdir -p "$BUILD"
# build-fuzz/ is shared by everyone working in this checkout: one run at a time.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$BUILD/.lock"
    if ! flock -n 9; then
        echo "make fuzz: another run holds $BUILD/.lock; waiting for it"
        flock 9
    fi
fi
probe=$BUILD/probe.cc
printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
    'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' >"$probe"
if ! "$CXX" -fsanitize=fuzzer,address,undefined "$probe" -o "$BUILD/probe" 2>"$BUILD/probe.log"; then
    echo "make fuzz: $CXX cannot link libFuzzer (libclang-rt-*-dev missing?); skipping"
    sed 's/^/  /' "$BUILD/probe.log" | head -5
    exit 0
fi

targets=${FUZZ_TARGETS:-$(ls tests/fuzz/fuzz_*.cc 2>/dev/null | sed 's|.*/||; s|\.cc$||')}
if [ -z "$targets" ]; then
    echo "make fuzz: no tests/fuzz/fuzz_*.cc targets"
    exit 0
fi
bins=""
for t in $targets; do bins="$bins $BUILD/$t"; done
echo "== building:$(echo " $targets" | tr '\n' ' ')"
# shellcheck disable=SC2086
if ! make --no-print-directory -s -f tests/fuzz/fuzz.mk -j"$JOBS" CXX="$CXX" BUILD="$BUILD" $bins; then
    echo "make fuzz: build failed" >&2
    exit 1
fi

# Seeds that come from files kept elsewhere in the tree.
extra_seeds() {
    case "$1" in
        fuzz_main_cf) echo conf/main.cf ;;
        fuzz_master_cf) echo conf/master.cf ;;
    esac
}

failed=""
for t in $targets; do
    corpus=$BUILD/corpus/$t
    artifacts=$BUILD/artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    [ -d "tests/fuzz/seeds/$t" ] && cp -n tests/fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null
    for f in $(extra_seeds "$t"); do cp -n "$f" "$corpus/seed-$(basename "$f")"; done
    [ -n "$(ls -A "$corpus")" ] || printf '\n' >"$corpus/empty-line"
    echo "== $t: ${SECONDS_EACH}s from $(ls "$corpus" | wc -l) inputs"
    log=$BUILD/$t.log
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
        "$BUILD/$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -max_len=4096 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "$corpus" >"$log" 2>&1
    rc=$?
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$log" | sed 's/^/  /'
    if [ "$rc" -ne 0 ]; then
        echo "  CRASH (exit $rc): see $log and $artifacts/"
        grep -E 'ERROR: |runtime error|SUMMARY' "$log" | head -5 | sed 's/^/  /'
        failed="$failed $t"
    fi
done

if [ -n "$failed" ]; then
    echo "make fuzz: crashes in:$failed"
    exit 1
fi
echo "make fuzz: $(echo $targets | wc -w) target(s) ran ${SECONDS_EACH}s each without a crash"
