#!/usr/bin/env bats
# The release helper is static: it runs in an empty chroot, resolving a
# name through the chroot's /etc/hosts and fetching from nginx on loopback.

load lib/common
load lib/nginx

setup() { common_setup; }
teardown() { nginx_stop; common_teardown; }

@test "file(1) says the helper is statically linked" {
    run file -L "$H"
    assert_output --regexp "static(-pie)? linked"
}

@test "the helper runs in an empty chroot: version, plan, a download by name via /etc/hosts" {
    [ "$(id -u)" = 0 ] || skip "chroot needs root"
    R=$T/root
    mkdir -p "$R/etc" "$R/m/artifacts"
    cp "$H" "$R/onramp"
    cp "$DEMO" "$R/m/manifest.json"
    printf '127.0.0.1 artifacts.demo.test\n' >"$R/etc/hosts"
    run chroot "$R" /onramp --version
    assert_success
    run chroot "$R" /onramp plan --manifest /m/manifest.json --prefix /p
    assert_success
    assert_output --partial "model-chat: 12.0 kB"
    nginx_start "$REPO/examples/demo/artifacts"
    sha=$(sha256sum <"$REPO/examples/demo/artifacts/chat-tiny.bin" | cut -c1-64)
    # SSL_CERT_FILE pointing at a file absent in the chroot must not matter
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt run chroot "$R" /onramp download "http://artifacts.demo.test:$NGINX_PORT/chat-tiny.bin" -o /chat.bin \
        --sha256 "$sha" --size 12000 --allow-http --cache-dir /cache
    assert_success
    [ "$(sha256sum <"$R/chat.bin" | cut -c1-64)" = "$sha" ]
}
