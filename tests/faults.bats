#!/usr/bin/env bats
# "Run it again" converges, proven the way SQLite proves its durability:
# every durable operation of a demo install (counted by the helper's fault
# hook, the cargo feature `fault-hook` of the dynamic test build) is made to
# crash (SIGKILL), to fail with EIO, or to fail with ENOSPC; after each, the
# state parses, the helper never panicked, the exit code is a documented
# one, and a plain rerun (--yes) ends with the clean install's tree without
# importing a verified artifact twice.
#
# ONRAMP_FAULT_SWEEP=full tries every operation (about 350 each way, ~25
# minutes); by default a spread sample runs (CI).

load lib/common

setup_file() {
    export FH=${ONRAMP_TEST_HELPER_DYN:-}
}

setup() {
    common_setup
    [ -n "$FH" ] || skip "needs the fault-hook build (tests/run.sh builds it)"
}

# fault_install SPEC [ARGS...]: the demo install with the hook counting,
# and the fault SPEC (kind@N, or "" for none); ARGS go to install.sh.
fault_install() {
    local spec=$1
    shift
    install_argv
    ONRAMP_HELPER=$FH ONRAMP_FAULT_COUNTER=$T/count ONRAMP_FAULT=$spec setsid -w "${INSTALL[@]}" \
        --manifest "$DEMO" --prefix "$PREFIX" "$@" </dev/null
}

# The documented exit codes (README, lib/exitcodes.sh).
documented() {
    case $1 in 0 | [1-9] | 1[0-5] | 130) return 0 ;; esac
    echo "undocumented exit code $1" >&2
    return 1
}

# The operations of a clean install, once: "N op path" lines.
clean_ops() {
    if [ ! -s "$BATS_FILE_TMPDIR/ops.log" ]; then
        local d=$BATS_FILE_TMPDIR/clean
        mkdir -p "$d/home"
        HOME=$d/home XDG_CACHE_HOME=$d/cache XDG_STATE_HOME=$d/state ONRAMP_HELPER=$FH \
            ONRAMP_FAULT_COUNTER=$d/count setsid -w dash "$REPO/install.sh" \
            --manifest "$DEMO" --prefix "$d/p" </dev/null >/dev/null 2>&1
        cp "$d/count.log" "$BATS_FILE_TMPDIR/ops.log"
    fi
    cat "$BATS_FILE_TMPDIR/ops.log"
}

# The operation numbers to try: all of them, or a spread of about 14.
sample() {
    local total
    total=$(clean_ops | wc -l)
    if [ "${ONRAMP_FAULT_SWEEP:-}" = full ]; then
        seq 1 "$total"
    else
        seq 1 $((total / 13 + 1)) "$total"
        echo "$total"
    fi
}

# One case: fault KIND at N, check, rerun, check. Prints one line.
one_case() {
    local kind=$1 n=$2 rc=0 rc2=0 sf
    rm -rf "$PREFIX" "$XDG_CACHE_HOME" "$XDG_STATE_HOME" "$T"/count*
    fault_install "$kind@$n" >"$T/out1" 2>&1 || rc=$?
    local op
    op=$(sed -n "${n}p" "$T/count.log" | cut -d' ' -f2-)
    if [ "$rc" = 101 ] || grep -q "panicked\|internal error" "$T/out1"; then
        echo "$kind@$n ($op): the helper panicked" >&2
        cat "$T/out1" >&2
        return 1
    fi
    documented "$rc"
    if [ "$kind" != crash ] && [ "$rc" != 0 ] && [ "$rc" != 9 ]; then
        # an I/O error names the path it happened on and the OS error
        grep -qE "(Input/output error|No space left on device) \(os error" "$T/out1" || {
            echo "$kind@$n ($op): exit $rc without the OS error" >&2
            cat "$T/out1" >&2
            return 1
        }
    fi
    sf=$("$FH" state --prefix "$PREFIX" | head -n 1)
    if [ -e "$sf" ]; then
        jq -e . "$sf" >/dev/null || {
            echo "$kind@$n ($op): the state does not parse" >&2
            return 1
        }
    fi
    # what was verified before the fault is not imported again
    local before=""
    [ -d "$XDG_CACHE_HOME/onramp/sha256" ] && before=$(cd "$XDG_CACHE_HOME/onramp/sha256" && find . -type f -printf '%i %p\n' | sort)
    fault_install "" --yes >"$T/out2" 2>&1 || rc2=$?
    if [ "$rc2" != 0 ]; then
        echo "$kind@$n ($op): first exit $rc, rerun exit $rc2" >&2
        cat "$T/out1" "$T/out2" >&2
        return 1
    fi
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX") >&2 || {
        echo "$kind@$n ($op): the rerun's tree differs" >&2
        return 1
    }
    if [ -n "$before" ]; then
        local after
        after=$(cd "$XDG_CACHE_HOME/onramp/sha256" && find . -type f -printf '%i %p\n' | sort)
        [ "$(comm -23 <(echo "$before") <(echo "$after"))" = "" ] || {
            echo "$kind@$n ($op): a verified artifact was imported again" >&2
            return 1
        }
    fi
    echo "$kind@$n ($op): first exit $rc, rerun ok"
}

sweep() {
    local kind=$1 n count=0
    for n in $(sample); do
        one_case "$kind" "$n" >>"$T/cases"
        count=$((count + 1))
    done
    echo "# $kind: $count of $(clean_ops | wc -l) operations, every rerun converged" >&3
}

@test "the hook counts a clean demo install's durable operations" {
    run clean_ops
    [ "${#lines[@]}" -gt 100 ]
    for op in create write fsync fsync-dir rename mkdir; do
        grep -q " $op " <<<"$output"
    done
}

@test "crash (SIGKILL) at a durable operation, then a rerun: state parses, the tree is the clean one, nothing fetched twice" {
    sweep crash
}

@test "EIO at a durable operation: no panic, a documented exit code naming the path, state parses, a rerun without the fault converges" {
    sweep eio
}

@test "ENOSPC at a durable operation: the same" {
    sweep enospc
}

@test "a model whose fsync failed is installed by the rerun; what was done stays untouched (inode and mtime)" {
    local sha n
    sha=$(jq -r '.components[] | select(.id == "model-chat") | .artifacts.any.sha256' "$DEMO")
    n=$(clean_ops | awk -v p="/partial/$sha.part" '$2 == "fsync" && index($3, p) { print $1; exit }')
    [ -n "$n" ]
    rc=0
    fault_install "eio@$n" >"$T/out1" 2>&1 || rc=$?
    assert_equal "$rc" 4
    grep -q "cannot sync .*$sha.part: Input/output error (os error 5)" "$T/out1"
    jq -e '.steps[] | select(.id == "model-chat") | .status != "done"' "$(state_file)"
    files() { (cd "$PREFIX" && find . -type f ! -name capabilities.json -printf '%i %T@ %p\n' | sort); }
    before=$(files)
    run fault_install "" --yes
    assert_success
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX")
    # everything that was there is the same file, unchanged
    [ -z "$(comm -23 <(echo "$before") <(files))" ]
}

@test "the lock: an I/O error opening or taking it is an I/O error (exit 12, path named), never 'another install is running'" {
    local op n what
    for op in create lock; do
        n=$(clean_ops | awk -v op="$op" '$2 == op && $3 ~ /\/lock$/ { print $1; exit }')
        [ -n "$n" ]
        rc=0
        fault_install "eio@$n" >"$T/out1" 2>&1 || rc=$?
        assert_equal "$rc" 12
        what="cannot lock"
        [ "$op" = create ] && what="cannot open lock"
        grep -q "$what .*/lock: Input/output error (os error 5)" "$T/out1"
        run grep -i "another" "$T/out1"
        assert_failure
        rm -rf "$XDG_STATE_HOME" "$T"/count*
    done
    # and with a second live installer, the message names it (lock contention)
    slow_manifest
    start_install_bg --manifest "$SLOW" --prefix "$PREFIX"
    wait_for_file "$T/extra-started"
    run onramp_install --manifest "$SLOW" --prefix "$PREFIX" --yes
    touch "$T/release"
    wait "$BG" || true
    assert_equal "$status" 8
    assert_output --regexp "another onramp \(PID [0-9]+\) is working on this install|another install of .* is running \(PID [0-9]+\)"
}
