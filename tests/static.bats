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

@test "with no rustup, install.sh from a checkout builds the helper with Debian's cargo-web, static; with no toolchain it names the package" {
    [ -x /usr/bin/cargo ] || skip "needs Debian's cargo-web (tests/run.sh installs it)"
    # A checkout of its own (its own target/), a HOME with no ~/.cargo, and
    # a PATH without rustup's directory.
    mkdir -p "$T/co"
    (cd "$REPO" && git ls-files -z | xargs -0 tar -cf - | tar -C "$T/co" -xf -)
    run env -i HOME="$T/home" PATH=/usr/sbin:/usr/bin:/sbin:/bin CARGO_HOME="$HOME/.cargo" \
        sh "$T/co/tools/build-helper.sh"
    assert_success
    [ "$output" = "$T/co/target/x86_64-unknown-linux-gnu/release/onramp" ]
    run file "$T/co/target/x86_64-unknown-linux-gnu/release/onramp"
    assert_output --regexp "static(-pie)? linked"
    run "$T/co/target/x86_64-unknown-linux-gnu/release/onramp" --version
    assert_output --regexp '^onramp [0-9.]+ \(linux-x86_64\)$'
    # no cargo anywhere, not root: the error names what to install
    mkdir -p "$T/bin"
    for t in sh sed id dirname cat printf; do ln -s "$(command -v "$t")" "$T/bin/$t"; done
    run env -i HOME="$T/home" PATH="$T/bin" ONRAMP_SYSTEM_CARGO="$T/none/cargo" /bin/sh "$T/co/tools/build-helper.sh"
    assert_failure
    assert_output --partial "apt-get install cargo-web rustc-web gcc"
}
