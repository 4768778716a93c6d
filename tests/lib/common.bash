# Shared by the bats suites: an isolated HOME/cache/state per test, the shell
# and form of install.sh under test, and helpers that look at real outcomes
# (trees, state files, events).
#
# ONRAMP_TEST_SHELL  the shell command running install.sh (default: dash)
# ONRAMP_TEST_FORM   checkout (install.sh + lib/) or dist (dist/install.sh)
# ONRAMP_TEST_HELPER the static helper (tests/run.sh builds it)
# ONRAMP_TEST_HELPER_DYN a dynamically linked build (for faketime)

REPO=$(cd "$(dirname "${BATS_TEST_FILENAME}")/.." && pwd)
DEMO=$REPO/examples/demo/manifest.json

load_libs() {
    bats_load_library bats-support
    bats_load_library bats-assert
}

common_setup() {
    load_libs
    : "${ONRAMP_TEST_SHELL:=dash}"
    : "${ONRAMP_TEST_FORM:=checkout}"
    : "${ONRAMP_TEST_HELPER:?run the suites through tests/run.sh, or set ONRAMP_TEST_HELPER}"
    T=$BATS_TEST_TMPDIR
    chmod 755 "$T"
    export HOME=$T/home XDG_CACHE_HOME=$T/cache XDG_STATE_HOME=$T/state
    mkdir -p "$HOME"
    unset ONRAMP_STATE_DIR ONRAMP_CACHE_DIR ONRAMP_HELPER ONRAMP_DIST_URL ONRAMP_MANIFEST ONRAMP_STATE_TTL_HOURS
    PREFIX=$T/prefix
    H=$ONRAMP_TEST_HELPER
}

# fails CMD...: CMD must fail (a plain `! CMD` never fails a bats test).
fails() {
    if "$@"; then
        echo "unexpectedly succeeded: $*" >&2
        return 1
    fi
}

# The command line that runs install.sh in the form and shell under test.
# shellcheck disable=SC2206
install_argv() {
    INSTALL=($ONRAMP_TEST_SHELL)
    if [ "$ONRAMP_TEST_FORM" = dist ]; then
        INSTALL+=("$REPO/dist/install.sh" --from "$REPO/dist")
    else
        INSTALL+=("$REPO/install.sh")
    fi
}

# onramp_install ARGS...: install.sh without a controlling terminal.
onramp_install() {
    install_argv
    if [ "$ONRAMP_TEST_FORM" = dist ]; then
        setsid -w "${INSTALL[@]}" "$@" </dev/null
    else
        ONRAMP_HELPER=$H setsid -w "${INSTALL[@]}" "$@" </dev/null
    fi
}

# The state file of PREFIX, as the helper says.
state_file() {
    "$H" state --prefix "${1:-$PREFIX}" | head -n 1
}

# A listing of a tree that is equal for byte-identical trees: type, mode,
# path, and the sha256 of files or the target of links.
# Files whose bytes differ by machine or time (a compiled worker, a
# timestamp) are listed with "*" for a hash; tests check them by running or
# parsing them instead.
VOLATILE_RE='^\./(capabilities\.json|workers/worker-hello/bin/hello-worker)$'

tree_listing() {
    (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r p; do
        if [ -L "$p" ]; then
            printf 'l %s -> %s\n' "$p" "$(readlink "$p")"
        elif [ -d "$p" ]; then
            printf 'd %s %s\n' "$(stat -c %a "$p")" "$p"
        elif [[ $p =~ $VOLATILE_RE ]]; then
            printf 'f %s %s *\n' "$(stat -c %a "$p")" "$p"
        else
            printf 'f %s %s %s\n' "$(stat -c %a "$p")" "$p" "$(sha256sum <"$p" | cut -c1-64)"
        fi
    done)
}

# schema_valid FILE [SCHEMA]: FILE validates against the JSON Schema
# (default schema/manifest.schema.json), by python3-jsonschema.
schema_valid() {
    /usr/bin/python3 -c 'import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))' \
        "${2:-$REPO/schema/manifest.schema.json}" "$1"
}

# A snapshot of everything under DIRS with mtimes, for "changed nothing".
snapshot() {
    for d in "$@"; do
        [ -e "$d" ] || { echo "absent $d"; continue; }
        find "$d" -printf '%y %m %s %T@ %p %l\n' | LC_ALL=C sort
    done
}

# Link the demo's artifacts, config and catalog into DIR, so a manifest
# written there finds the files the demo's relative paths name.
link_demo_dirs() {
    local d
    for d in artifacts config catalog; do
        ln -sfn "$REPO/examples/demo/$d" "$1/$d"
    done
}

# jq edit of the demo manifest into FILE (artifact paths stay valid).
demo_variant() {
    local out=$1 filter=$2
    mkdir -p "$(dirname "$out")"
    jq "$filter" "$DEMO" >"$out"
    link_demo_dirs "$(dirname "$out")"
}

# The demo plus an optional extra that blocks in the extras phase until
# $T/release exists, and says it started by creating $T/extra-started.
slow_manifest() {
    demo_variant "$T/m/manifest.json" '.components += [{"id":"slow","kind":"extra","optional":true,
      "command":["sh","-c","touch \"$ONRAMP_PREFIX/../extra-started\"; while [ ! -f \"$ONRAMP_PREFIX/../release\" ]; do sleep 0.05; done"],
      "timeout_s":120}]'
    SLOW=$T/m/manifest.json
}

wait_for_file() {
    local i=0
    while [ ! -e "$1" ]; do
        i=$((i + 1))
        [ "$i" -lt 600 ] || { echo "timed out waiting for $1" >&2; return 1; }
        sleep 0.05
    done
}

# Start install.sh in its own session (process group) in the background.
start_install_bg() {
    install_argv
    if [ "$ONRAMP_TEST_FORM" = dist ]; then
        setsid "${INSTALL[@]}" "$@" </dev/null >"$T/bg.out" 2>&1 &
    else
        ONRAMP_HELPER=$H setsid "${INSTALL[@]}" "$@" </dev/null >"$T/bg.out" 2>&1 &
    fi
    BG=$!
}

# Kill the background install's whole process group with SIGKILL.
kill_bg() {
    kill -9 -- "-$BG" 2>/dev/null || true
    wait "$BG" 2>/dev/null || true
}

# Install the slow demo and kill it while the extra runs: completed through
# phase 6 (workers), resumable.
interrupted_install() {
    slow_manifest
    start_install_bg --manifest "$SLOW" --prefix "$PREFIX" "$@"
    wait_for_file "$T/extra-started"
    kill_bg
    rm -f "$T/extra-started"
    touch "$T/release"
}

# The capabilities announced in an event stream, in order, must be the
# demo's, smallest model first.
assert_demo_unlock_order() {
    run jq -r 'select(.type == "capability") | .new_capability' "$1"
    assert_output "server
chat
embeddings
vision
workers
rag"
}

common_teardown() {
    touch "${T:-/nonexistent}/release" 2>/dev/null || true
}
