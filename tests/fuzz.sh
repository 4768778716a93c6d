#!/usr/bin/env bash
# Runs onramp's cargo-fuzz targets (helper/fuzz), each for SECONDS, two at a
# time, from the committed seeds (helper/fuzz/seeds/TARGET; the PKGBUILD
# target also from tests/pkgbuild/corpus). A crash, a timeout or a leak
# fails the run; what libFuzzer found is left in helper/fuzz/artifacts/ and
# should become a regression test. Prints "N passed, N failed".
#   tests/fuzz.sh [SECONDS] [TARGET...]     (default 60 s, every target)
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(manifest state sidecar catalog headers pkgbuild archive)
cd "$REPO/helper"

cargo +nightly fuzz build -O >&2
mkdir -p fuzz/logs
run_one() {
    local t=$1 extra=()
    mkdir -p "fuzz/corpus/$t"
    [ "$t" = pkgbuild ] && extra=("$REPO/tests/pkgbuild/corpus")
    if cargo +nightly fuzz run -O "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" "${extra[@]}" -- \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
        >"fuzz/logs/$t.log" 2>&1; then
        echo "fuzz $t: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "fuzz/logs/$t.log" | grep -o '[0-9]*$') runs in ${SECONDS_EACH} s, no crash"
        return 0
    fi
    echo "fuzz $t: FAILED (see helper/fuzz/logs/$t.log and helper/fuzz/artifacts/$t/)"
    tail -n 30 "fuzz/logs/$t.log" | sed 's/^/    /'
    return 1
}

passed=0 failed=0
i=0
while [ $i -lt ${#TARGETS[@]} ]; do
    pids=() names=()
    for t in "${TARGETS[@]:$i:2}"; do
        run_one "$t" >"fuzz/logs/$t.result" &
        pids+=($!) names+=("$t")
    done
    for k in "${!pids[@]}"; do
        if wait "${pids[$k]}"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
        cat "fuzz/logs/${names[$k]}.result"
    done
    i=$((i + 2))
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
