#!/usr/bin/env bats
# The helper built for Linux aarch64 by tools/build-targets.sh (Debian's
# toolchain, std from source), run under qemu-user through the wrapper
# tests/run.sh writes ($ONRAMP_TEST_HELPER_AARCH64). tests/run.sh also runs
# kill-resume.bats with that wrapper as the helper: the whole demo through
# install.sh, the golden tree, kill -9 and resume.

load lib/common

setup() {
    common_setup
    : "${ONRAMP_TEST_HELPER_AARCH64:?tests/run.sh sets it: the qemu wrapper of the aarch64 helper}"
    A=$ONRAMP_TEST_HELPER_AARCH64
}

@test "the aarch64 helper is a static aarch64 program, and under qemu it says so" {
    bin=$(sed -n 's/.*qemu-aarch64-static \([^ ]*\) .*/\1/p' "$A")
    run file "$bin"
    assert_output --partial "ARM aarch64"
    assert_output --partial "statically linked"
    run "$A" target
    assert_success
    assert_output "linux-aarch64"
    run "$A" --version
    assert_output --regexp '^onramp [0-9.]+ \(linux-aarch64\)$'
}

@test "under qemu the aarch64 helper hashes and downloads as the x86_64 one does" {
    head -c 3000000 /dev/urandom >"$T/blob"
    want=$(sha256sum <"$T/blob" | cut -c1-64)
    run "$A" sha256 "$T/blob"
    assert_output "$want  $T/blob"
    run "$A" download "$T/blob" -o "$T/out" --sha256 "$want" --cache-dir "$T/c"
    assert_success
    cmp "$T/blob" "$T/out"
    run "$A" download "$T/blob" -o "$T/bad" --sha256 "$(printf '0%.0s' $(seq 64))" --cache-dir "$T/c"
    assert_equal "$status" 7
    [ ! -e "$T/bad" ]
}
