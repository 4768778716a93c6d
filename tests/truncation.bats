#!/usr/bin/env bats
# Every byte-prefix of dist/install.sh piped into sh runs no phase and
# changes nothing: the helper is a spy that records any call, and HOME,
# the cache, the state and TMPDIR are snapshotted before and after.
# "Every prefix" means every prefix that lacks at least one byte of the
# last command (a prefix missing only the final newline is the whole script).

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

# sweep SHELL STEP: run the prefixes 0, STEP, 2*STEP ... and all of the last 64.
sweep() {
    local sh=$1 step=$2 n
    before=$(snapshot "$T/home" "$T/cache" "$T/state" "$T/tmp")
    for n in $(seq 0 "$step" $((BODY - 1))) $(seq $((BODY - 64)) $((BODY - 1))); do
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

@test "dash: every byte-prefix of dist/install.sh runs nothing" {
    sweep dash 1
}

@test "the whole script does run (the spy is called): the sweep can fail" {
    ONRAMP_HELPER=$SPY TMPDIR=$T/tmp setsid -w dash -s -- --manifest "$DEMO" --prefix "$PREFIX" --yes <"$SCRIPT" >/dev/null 2>&1 || true
    [ -e "$T/helper-ran" ]
}

@test "the other shells: every 7th byte-prefix and the last 64 run nothing" {
    for sh in "bash --posix" "busybox ash" mksh posh yash "zsh --emulate sh"; do
        sweep "$sh" 7
    done
}
