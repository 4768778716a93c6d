#!/usr/bin/env bash
# Download benchmarks, all measured in the same run against nginx on
# loopback (a private config on a high port), printing figures and ratios:
#   1. per-connection cap (limit_rate 20m, like a CDN): onramp vs
#      aria2c -x8 -s8 -k1M vs curl; target onramp <= 0.9 x aria2c and within
#      10 % of N x 20 MiB/s
#   2. no cap: onramp vs curl (curl with and without a final fsync)
#   3. kill -9 after 4 s at 8 connections, then resume: bytes fetched twice,
#      onramp vs aria2c with its default settings
#   4. sha256 of the file: onramp vs openssl dgst -sha256 vs sha256sum
#   5. last byte received -> verified file published (onramp's own report)
#   6. peak RSS of each tool (GNU time)
# Usage: bench/download.sh [SIZE_MIB (default 1024)] [N connections (default 8)]
# Needs: nginx, aria2c, curl, openssl, GNU time (apt-get install nginx-light aria2 curl time).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
MIB=${1:-1024}
N=${2:-8}
W=$(mktemp -d "${TMPDIR:-/tmp}/onramp-bench.XXXXXX")
chmod 755 "$W"
trap 'nginx_stop; rm -rf "$W"' EXIT

need() { command -v "$1" >/dev/null || { echo "bench: needs $1 ($2)" >&2; exit 2; }; }
need nginx nginx-light; need aria2c aria2; need curl curl; need openssl openssl
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (apt-get install time)" >&2; exit 2; }

PORT=$((20000 + RANDOM % 12000)) # below the ephemeral range
nginx_start() {
    cat >"$W/nginx.conf" <<CONF
worker_processes 2; daemon on; pid $W/nginx.pid; error_log $W/error.log;
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
events { worker_connections 256; }
http {
    client_body_temp_path $W/b; proxy_temp_path $W/p; fastcgi_temp_path $W/f; uwsgi_temp_path $W/u; scgi_temp_path $W/s;
    log_format bytes '\$uri \$status \$body_bytes_sent';
    access_log $W/access.log bytes;
    server { listen 127.0.0.1:$PORT; root $W/www; }
    server { listen 127.0.0.1:$((PORT + 1)); root $W/www; limit_rate 20m; }
}
CONF
    nginx -c "$W/nginx.conf" -e "$W/error.log"
    sleep 0.3
}
nginx_stop() { [ -s "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true; }

# timed NAME CMD...: wall seconds and peak RSS (KiB) into $SECS and $RSS.
timed() {
    local name=$1; shift
    /usr/bin/time -f '%e %M' -o "$W/time.$name" "$@" >/dev/null 2>"$W/err.$name" || {
        echo "bench: $name failed: $(tail -n 3 "$W/err.$name")" >&2; exit 1; }
    read -r SECS RSS <"$W/time.$name"
}

fetched() { awk -v f="/$1" '$1 == f { s += $3 } END { print s + 0 }' "$W/access.log"; }

main() {
    echo "building the static helper ..." >&2
    H=$(sh "$REPO/tools/build-helper.sh")
    mkdir -p "$W/www"
    head -c $((MIB * 1024 * 1024)) /dev/urandom >"$W/www/f.bin"
    chmod -R a+rX "$W"
    SIZE=$((MIB * 1024 * 1024))
    SHA=$(sha256sum "$W/www/f.bin" | cut -c1-64)
    nginx_start
    local cap=http://127.0.0.1:$((PORT + 1))/f.bin free=http://127.0.0.1:$PORT/f.bin
    printf '\nonramp download benchmark: %s MiB, %s connections, nginx on loopback, %s\n' "$MIB" "$N" "$(date -u +%F)"
    printf '%-44s %9s %10s %10s\n' case seconds MiB/s "RSS MiB"
    row() { printf '%-44s %9.2f %10.1f %10.1f\n' "$1" "$SECS" "$(echo "$MIB / $SECS" | bc -l)" "$(echo "$RSS / 1024" | bc -l)"; }

    ob() { rm -rf "$W/cache" "$W/o.bin"; timed "$1" "$H" download "$2" -o "$W/o.bin" --sha256 "$SHA" --size "$SIZE" --allow-http --connections "$N" --cache-dir "$W/cache"; }
    ob onramp_cap "$cap"; row "capped 20 MiB/s/conn: onramp -x$N"; local t_on=$SECS
    rm -f "$W/a.bin"; timed aria_cap aria2c -q -x"$N" -s"$N" -k1M --file-allocation=falloc -d "$W" -o a.bin "$cap"
    row "capped: aria2c -x$N -s$N -k1M"; local t_ar=$SECS
    rm -f "$W/c.bin"; timed curl_cap curl -s -o "$W/c.bin" "$cap"; row "capped: curl (one connection)"
    local ideal; ideal=$(echo "$MIB / ($N * 20)" | bc -l)
    printf '  onramp / aria2c wall time: %.2f (target <= 0.90); onramp / ideal %d x 20 MiB/s: %.2f (target <= 1.10)\n' \
        "$(echo "$t_on / $t_ar" | bc -l)" "$N" "$(echo "$t_on / $ideal" | bc -l)"

    ob onramp_free "$free"; row "no cap: onramp -x$N (fsync + verify included)"; local t_of=$SECS
    grep -o "published [0-9]* ms after the last byte" "$W/err.onramp_free" | sed "s/^/  onramp, no cap: /" || true
    grep -o "published [0-9]* ms after the last byte" "$W/err.onramp_cap" | sed "s/^/  onramp, capped: /" || true
    rm -f "$W/c.bin"; timed curl_free curl -s -o "$W/c.bin" "$free"; row "no cap: curl"; local t_cf=$SECS
    rm -f "$W/c.bin"; timed curl_sync sh -c "curl -s -o '$W/c.bin' '$free' && sync '$W/c.bin'"; row "no cap: curl + fsync"
    printf '  onramp / curl wall time: %.2f (target <= 1.00)\n' "$(echo "$t_of / $t_cf" | bc -l)"

    # kill -9 after 4 s, then resume
    rm -rf "$W/cache" "$W/o.bin"; : >"$W/access.log"
    setsid "$H" download "$cap" -o "$W/o.bin" --sha256 "$SHA" --size "$SIZE" --allow-http --connections "$N" --cache-dir "$W/cache" >/dev/null 2>&1 &
    local p=$!; sleep 4; kill -9 -- "-$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
    "$H" download "$cap" -o "$W/o.bin" --sha256 "$SHA" --size "$SIZE" --allow-http --connections "$N" --cache-dir "$W/cache" >/dev/null 2>&1
    local on_waste=$(( $(fetched f.bin) - SIZE ))
    rm -f "$W/a.bin" "$W/a.bin.aria2"; : >"$W/access.log"
    setsid aria2c -q -x"$N" -s"$N" -d "$W" -o a.bin "$cap" >/dev/null 2>&1 &
    p=$!; sleep 4; kill -9 -- "-$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
    aria2c -q -x"$N" -s"$N" -c -d "$W" -o a.bin "$cap" >/dev/null 2>&1
    local ar_waste=$(( $(fetched f.bin) - SIZE ))
    printf '  kill -9 after 4 s, resume: fetched twice: onramp %.1f MiB (target <= %d MiB = %d x 1 s x 20 MiB/s), aria2c defaults %.1f MiB\n' \
        "$(echo "$on_waste / 1048576" | bc -l)" "$((N * 20))" "$N" "$(echo "$ar_waste / 1048576" | bc -l)"

    timed sha_onramp "$H" sha256 "$W/www/f.bin"; row "sha256: onramp (sha2 crate, SHA-NI)"; local s1=$SECS
    timed sha_openssl openssl dgst -sha256 "$W/www/f.bin"; row "sha256: openssl dgst -sha256"; local s2=$SECS
    timed sha_coreutils sha256sum "$W/www/f.bin"; row "sha256: sha256sum"; local s3=$SECS
    printf '  onramp hashing vs openssl: %.2f, vs sha256sum: %.2f (lower is faster)\n' "$(echo "$s1 / $s2" | bc -l)" "$(echo "$s1 / $s3" | bc -l)"
}

main "$@"
