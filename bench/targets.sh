#!/usr/bin/env bash
# The helpers of other targets against the native one, in the same run:
# each downloads SIZE MiB from nginx on loopback (8 connections, no rate
# cap) into an empty cache, verified; prints the seconds, MiB/s and the
# ratio to the native helper. Emulation costs are expected (wine for the
# Windows helper, qemu-user for the aarch64 one); a failure or a stall is
# not, and fails the bench.
# Usage: bench/targets.sh [SIZE_MIB (default 256)]
# Needs: nginx, wine, qemu-user-static, mingw-w64 and the cross toolchain
# (tests/run.sh installs them); builds what is missing with
# tools/build-helper.sh, tools/build-targets.sh and tests/windows/wine-setup.sh.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
MIB=${1:-256}
W=$(mktemp -d "${TMPDIR:-/tmp}/onramp-bench-targets.XXXXXX")
chmod 755 "$W"
# nginx_start DIR / nginx_stop: the test suites' (a private config on a
# free loopback port; sets NGINX_PORT).
# shellcheck source=tests/lib/nginx.bash
. "$REPO/tests/lib/nginx.bash"
trap 'nginx_stop; rm -rf "$W" "$REPO/target/wine/prefix/drive_c/bench-$$"' EXIT

helpers() {
    NATIVE=$(sh "$REPO/tools/build-helper.sh")
    local arm win
    arm=$(sh "$REPO/tools/build-targets.sh" aarch64-unknown-linux-gnu)
    ARM=$W/onramp-aarch64
    printf '#!/bin/sh\nexec qemu-aarch64-static %s "$@"\n' "${arm%% *}" >"$ARM"
    chmod 755 "$ARM"
    win=$(sh "$REPO/tools/build-targets.sh" x86_64-pc-windows-gnu)
    WIN=$(sh "$REPO/tests/windows/wine-setup.sh" "$REPO/target/wine" "${win%% *}")
}

main() {
    helpers
    mkdir -p "$W/www"
    head -c $((MIB * 1024 * 1024)) /dev/urandom >"$W/www/big.bin"
    local sha size=$((MIB * 1024 * 1024))
    sha=$(sha256sum <"$W/www/big.bin" | cut -c1-64)
    nginx_start "$W/www"
    local url=http://127.0.0.1:$NGINX_PORT/big.bin base=""
    echo "bench/targets.sh: $MIB MiB from nginx on loopback, 8 connections, verified ($(nproc) cores)"
    printf '%-28s %9s %9s %8s\n' helper seconds "MiB/s" ratio
    local name bin out cache t0 t1 secs
    for name in native aarch64-qemu windows-wine; do
        case $name in
        native) bin=$NATIVE out=$W/out-$name cache=$W/cache-$name ;;
        aarch64-qemu) bin=$ARM out=$W/out-$name cache=$W/cache-$name ;;
        windows-wine)
            bin=$WIN
            mkdir -p "$REPO/target/wine/prefix/drive_c/bench-$$"
            out="C:\\bench-$$\\out" cache="C:\\bench-$$\\cache"
            ;;
        esac
        t0=$(date +%s%N)
        timeout 600 "$bin" download "$url" -o "$out" --sha256 "$sha" --size "$size" \
            --cache-dir "$cache" --allow-http --connections 8 </dev/null >/dev/null 2>"$W/err" ||
            { echo "$name: failed or stalled: $(tail -n 3 "$W/err")" >&2; exit 1; }
        t1=$(date +%s%N)
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
        [ -n "$base" ] || base=$secs
        printf '%-28s %9s %9s %7sx\n' "$name" "$secs" \
            "$(awk -v m="$MIB" -v s="$secs" 'BEGIN { printf "%.0f", m / s }')" \
            "$(awk -v s="$secs" -v b="$base" 'BEGIN { printf "%.1f", s / b }')"
    done
}

main "$@"
