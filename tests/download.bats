#!/usr/bin/env bats
# The download engine against nginx on loopback: kill -9 during an
# 8-connection download of 256 MiB (rate-limited per connection, like a
# CDN), disk full, two downloaders on one cache, TLS with a test CA.

load lib/common
load lib/nginx

setup_file() {
    export BIG=$BATS_FILE_TMPDIR/www/big.bin
    mkdir -p "$BATS_FILE_TMPDIR/www"
    chmod 755 "$BATS_FILE_TMPDIR" "$BATS_FILE_TMPDIR/www"
    head -c $((256 * 1024 * 1024)) /dev/urandom >"$BIG"
    chmod 644 "$BIG"
    BIG_SHA=$(sha256sum "$BIG" | cut -c1-64)
    export BIG_SHA BIG_SIZE=$((256 * 1024 * 1024))
}

setup() { common_setup; }
teardown() { nginx_stop; common_teardown; }

dl() {
    "$H" download "$@" --sha256 "$BIG_SHA" --size "$BIG_SIZE" --cache-dir "$T/cache"
}

# Body bytes nginx sent for big.bin since log line $1.
sent_since() {
    tail -n "+$(($1 + 1))" "$NGINX_LOG" | awk '$1 == "/big.bin" { s += $3 } END { print s + 0 }'
}

@test "${DL_KILLS:-100} random kill -9 during an 8-connection 256 MiB download: each resume is byte-exact and re-fetches at most ~1 s per connection" {
    nginx_start "$BATS_FILE_TMPDIR/www" 20m
    url=http://127.0.0.1:$NGINX_PORT/big.bin
    local kills=${DL_KILLS:-100} i worst=0 total_waste=0
    for i in $(seq "$kills"); do
        rm -rf "$T/cache" "$T/out.bin"
        local n0 at
        n0=$(wc -l <"$NGINX_LOG")
        at=$((200 + (RANDOM % 1300)))
        setsid "$H" download "$url" -o "$T/out.bin" --sha256 "$BIG_SHA" --size "$BIG_SIZE" \
            --cache-dir "$T/cache" --allow-http --connections 8 </dev/null >/dev/null 2>&1 &
        local pid=$!
        sleep "$(awk -v ms="$at" 'BEGIN { printf "%.3f", ms / 1000 }')"
        kill -9 -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        [ ! -e "$T/out.bin" ] || [ "$(sha256sum <"$T/out.bin" | cut -c1-64)" = "$BIG_SHA" ]
        run dl "$url" -o "$T/out.bin" --allow-http --connections 8
        assert_success
        [ "$(sha256sum <"$T/out.bin" | cut -c1-64)" = "$BIG_SHA" ]
        local waste=$(( $(sent_since "$n0") - BIG_SIZE ))
        [ "$waste" -gt "$worst" ] && worst=$waste
        total_waste=$((total_waste + waste))
        # 8 connections x 20 MiB/s x ~1 s of unsaved progress, plus what was in flight
        if [ "$waste" -gt $((8 * 20 * 1024 * 1024 + 32 * 1024 * 1024)) ]; then
            echo "kill $i at ${at} ms: $waste bytes fetched twice" >&2
            return 1
        fi
    done
    echo "# $kills kills: worst $((worst / 1048576)) MiB fetched twice, mean $((total_waste / kills / 1048576)) MiB" >&3
}

@test "disk full: a clear error naming the filesystem and bytes, then it completes once space is freed (root only)" {
    [ "$(id -u)" = 0 ] || skip "needs root to mount a tmpfs"
    nginx_start "$BATS_FILE_TMPDIR/www"
    mkdir -p "$T/small"
    mount -t tmpfs -o size=64m tmpfs "$T/small" || skip "cannot mount tmpfs"
    run "$H" download "http://127.0.0.1:$NGINX_PORT/big.bin" -o "$T/small/out.bin" --sha256 "$BIG_SHA" \
        --size "$BIG_SIZE" --allow-http --cache-dir "$T/small/cache"
    local st=$status out=$output
    [ ! -e "$T/small/out.bin" ]
    mount -o remount,size=600m "$T/small"
    run "$H" download "http://127.0.0.1:$NGINX_PORT/big.bin" -o "$T/small/out.bin" --sha256 "$BIG_SHA" \
        --size "$BIG_SIZE" --allow-http --cache-dir "$T/small/cache"
    local st2=$status sha2
    sha2=$(sha256sum <"$T/small/out.bin" | cut -c1-64)
    umount "$T/small"
    [ "$st" = 4 ] || { echo "$out"; false; }
    [[ "$out" == *"disk full"*"268.4 MB"*"$T/small/cache"* ]] || { echo "$out"; false; }
    [ "$st2" = 0 ] && [ "$sha2" = "$BIG_SHA" ]
}

@test "two downloaders on one cache: the second waits, nothing is fetched twice, both files are exact" {
    nginx_start "$BATS_FILE_TMPDIR/www" 50m
    url=http://127.0.0.1:$NGINX_PORT/big.bin
    dl "$url" -o "$T/a.bin" --allow-http >"$T/a.log" 2>&1 &
    local a=$!
    sleep 0.3
    run dl "$url" -o "$T/b.bin" --allow-http
    wait "$a"
    assert_success
    assert_output --partial "another onramp is downloading it into the same cache; waiting"
    [ "$(sha256sum <"$T/a.bin" | cut -c1-64)" = "$BIG_SHA" ]
    [ "$(sha256sum <"$T/b.bin" | cut -c1-64)" = "$BIG_SHA" ]
    [ "$(sent_since 0)" -le $((BIG_SIZE + 8 * 1024 * 1024)) ]
}

@test "TLS: refused without the test CA (naming the fix), accepted with SSL_CERT_FILE or --ca-file; https->http redirect refused" {
    mkdir -p "$T/tls" "$T/www"
    make_ca "$T/tls"
    head -c 100000 /dev/urandom >"$T/www/small.bin"
    chmod -R a+rX "$T"
    local sha
    sha=$(sha256sum <"$T/www/small.bin" | cut -c1-64)
    NGINX_EXTRA="server { listen 127.0.0.1:@PORT2@ ssl; ssl_certificate $T/tls/srv.pem; ssl_certificate_key $T/tls/srv.key; root $T/www;
        location /down/ { return 302 http://127.0.0.1:\$server_port/small.bin; } }"
    nginx_start "$T/www"
    local port2=$NGINX_PORT2 url=https://127.0.0.1:$NGINX_PORT2/small.bin
    run "$H" download "$url" -o "$T/a.bin" --sha256 "$sha" --size 100000 --cache-dir "$T/c1"
    assert_equal "$status" 6
    assert_output --partial "TLS failure"
    assert_output --partial "--ca-file"
    [ ! -e "$T/a.bin" ]
    SSL_CERT_FILE=$T/tls/ca.pem run "$H" download "$url" -o "$T/a.bin" --sha256 "$sha" --size 100000 --cache-dir "$T/c2"
    assert_success
    cmp "$T/a.bin" "$T/www/small.bin"
    run "$H" download "$url" -o "$T/b.bin" --sha256 "$sha" --size 100000 --cache-dir "$T/c3" --ca-file "$T/tls/ca.pem"
    assert_success
    run "$H" download "https://127.0.0.1:$port2/down/x" -o "$T/c.bin" --sha256 "$sha" --size 100000 \
        --cache-dir "$T/c4" --ca-file "$T/tls/ca.pem" --allow-http
    assert_equal "$status" 6
    assert_output --partial "redirects to plain http"
    [ ! -e "$T/c.bin" ]
}
