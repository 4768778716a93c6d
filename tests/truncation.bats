#!/usr/bin/env bats
# Every byte-prefix of dist/install.sh piped into sh runs no phase and
# changes nothing: the helper is a spy that records any call, and HOME,
# the cache, the state and TMPDIR are snapshotted before and after.
# "Every prefix" means every prefix that lacks at least one byte of the
# last command (a prefix missing only the final newline is the whole script).
# CI samples them (see sweep); ONRAMP_TRUNCATION=full tries every one.

load lib/common

setup() {
    common_setup
    SPY=$T/spy
    printf '#!/bin/sh\necho "$@" >>"%s/helper-ran"\nexit 1\n' "$T" >"$SPY"
    chmod 755 "$SPY"
    mkdir -p "$T/tmp" "$T/cache" "$T/state"
    SCRIPT=$REPO/dist/install.sh
    # bytes up to and excluding the trailing newline(s)
    BODY=$(( $(wc -c <"$SCRIPT") - $(tail -c 16 "$SCRIPT" | tr -cd '\n' | wc -c) ))
}
teardown() { common_teardown; }

# sweep SHELL STEP: run the prefixes OFF, OFF+STEP, OFF+2*STEP ... (OFF a
# random start below STEP, said in the output) and all of the last 64.
# ONRAMP_TRUNCATION=full runs every prefix under dash and every 7th under
# the others; by default (CI) dash takes every 4th, the others every 20th,
# from a different start each run.
sweep() {
    local sh=$1 step=$2 n off
    off=$((RANDOM % step))
    echo "# $sh: 1 prefix in $step from byte $off, and the last 64" >&3
    before=$(snapshot "$T/home" "$T/cache" "$T/state" "$T/tmp")
    for n in $(seq "$off" "$step" $((BODY - 1))) $(seq $((BODY - 64)) $((BODY - 1))); do
        head -c "$n" "$SCRIPT" | ONRAMP_HELPER=$SPY TMPDIR=$T/tmp setsid -w $sh -s -- \
            --manifest "$DEMO" --prefix "$PREFIX" --yes >/dev/null 2>&1 || true
        if [ -e "$T/helper-ran" ]; then
            echo "prefix of $n bytes ran the helper under $sh: $(cat "$T/helper-ran")" >&2
            return 1
        fi
    done
    [ ! -e "$PREFIX" ]
    [ "$(snapshot "$T/home" "$T/cache" "$T/state" "$T/tmp")" = "$before" ]
}

full() { [ "${ONRAMP_TRUNCATION:-}" = full ]; }

@test "dash: byte-prefixes of dist/install.sh run nothing (every one with ONRAMP_TRUNCATION=full)" {
    if full; then sweep dash 1; else sweep dash 4; fi
}

@test "the whole script does run (the spy is called): the sweep can fail" {
    ONRAMP_HELPER=$SPY TMPDIR=$T/tmp setsid -w dash -s -- --manifest "$DEMO" --prefix "$PREFIX" --yes <"$SCRIPT" >/dev/null 2>&1 || true
    [ -e "$T/helper-ran" ]
}

@test "the other shells: sampled byte-prefixes and the last 64 run nothing" {
    local step=20
    full && step=7
    for sh in "bash --posix" "busybox ash" mksh posh yash "zsh --emulate sh"; do
        sweep "$sh" "$step"
    done
}
