#!/usr/bin/env bats
# Issue 8's findings, each as the attack itself: hostile recipes, archives,
# caches, manifests and directories, run as root where the attack needs
# root, checking the concrete effect is gone (files outside unchanged with
# their owners, no tampered byte placed, no process left, no connect() off
# loopback, bounded memory, no escape byte on the terminal).

load lib/common
load lib/nginx
load lib/recipes

setup() {
    common_setup
    recipes_setup
    OUT=$T/outside
    mkdir -p "$OUT"
}

teardown() {
    nginx_stop
    pkill -9 -f 'sleep 30[0-9][0-9]' 2>/dev/null || true
    common_teardown
}

need_root() {
    [ "$(id -u)" = 0 ] || skip "the attack needs root (onramp as root is what it targets)"
}

# Everything under DIRS with type, mode, owner, size, mtime and link target.
owners() {
    local d
    for d in "$@"; do
        find "$d" -printf '%y %m %U:%G %s %T@ %p -> %l\n' | LC_ALL=C sort
    done
}

# A recipe around the demo worker, built, with extra lines for build().
hello_with_build() {
    hello_body
    cat <<EOF
source=("hello-worker-1.0.0.tar.gz")
sha256sums=('$TARBALL_SHA')
build() {
  cd "\$pkgname-\$pkgver"; make
$1
}
package() {
  cd "\$pkgname-\$pkgver"; install -Dm755 hello-worker "\$pkgdir/bin/hello-worker"
$2
}
EOF
}

# No live process whose command line holds $1.
no_process() {
    if pgrep -af "$1"; then
        echo "a process survived: $1" >&2
        return 1
    fi
}


@test "1: a recipe that swaps \$startdir/pkg (or its pkgdir) for a link cannot make root chown or write outside" {
    need_root
    mkdir -p "$OUT/victimdir"
    echo keep >"$OUT/victimdir/file"
    before=$(owners "$OUT")
    { cat <<EOF
pkgname=victimdir
pkgver=1
pkgrel=1
arch=('any')
source=()
build() {
  rm -rf "\$startdir/pkg" 2>/dev/null || true
  ln -sfn "$OUT" "\$startdir/pkg" 2>/dev/null || true
  rm -rf "\$pkgdir" 2>/dev/null || true
  ln -sfn "$OUT/victimdir" "\$pkgdir" 2>/dev/null || true
  echo 'package() { echo hijacked >"\\\$pkgdir/hijacked"; }' >>"\$startdir/PKGBUILD" 2>/dev/null || true
}
package() { echo ok >"\$pkgdir/ok"; ln -s ok "\$pkgdir/link"; }
EOF
    } | recipe swap
    manifest "$T/m.json" w "$W/swap"
    run onramp_install --manifest "$T/m.json" --prefix "$PREFIX"
    diff <(echo "$before") <(owners "$OUT")
    # ln -sfn into the real pkgdir left a link to outside in the package:
    # the package is refused whole (round two, class 2)
    assert_equal "$status" 9
    run reason w
    assert_output --partial "package() made the link victimdir -> $OUT/victimdir, which leaves the install dir"
    [ ! -e "$PREFIX/workers/w" ]
    # without that link, it installs: the recipe could not rewrite the
    # PKGBUILD root runs package() from, and a link inside stays a link
    sed -i "s|ln -sfn \"$OUT/victimdir\" \"\\\$pkgdir\"|true|" "$W/swap/PKGBUILD"
    manifest "$T/m.json" w "$W/swap"
    run onramp_install --manifest "$T/m.json" --prefix "$PREFIX" --yes
    diff <(echo "$before") <(owners "$OUT")
    assert_success
    [ "$(cat "$PREFIX/workers/w/ok")" = ok ]
    [ ! -e "$PREFIX/workers/w/hijacked" ]
    [ "$(readlink "$PREFIX/workers/w/link")" = ok ]
    [ "$(stat -c %U "$PREFIX/workers/w/ok")" = root ]
}

@test "1: a build in progress is private to its build uid: another account's process (nginx runs as nobody) can neither read nor write it" {
    need_root
    hello_with_build 'touch "$srcdir/started"; while [ ! -e "$srcdir/release" ]; do sleep 0.05; done' '' | recipe slow
    manifest "$T/m.json" w "$W/slow"
    start_install_bg --manifest "$T/m.json" --prefix "$PREFIX"
    local r i=0
    until r=$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'onramp-build-w-*' | head -n 1) && [ -n "$r" ] && [ -e "$r/build/src/started" ]; do
        i=$((i + 1)); [ "$i" -lt 600 ] || { cat "$T/bg.out"; false; }; sleep 0.05
    done
    as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c "$1" 2>/dev/null; }
    fails as_nobody "ls '$r'"
    fails as_nobody "touch '$r/build/src/nobody-was-here'"
    fails as_nobody "cat '$r/build/PKGBUILD'"
    fails as_nobody "rm -rf '$r/build/src'"
    touch "$r/build/src/release"
    wait "$BG"
    [ ! -e "$PREFIX/workers/w/nobody-was-here" ]
    "$PREFIX/workers/w/bin/hello-worker" --ping
    # a named build user that another process runs as is not private: refused
    setpriv --reuid=nobody --regid=nogroup --clear-groups sleep 3099 &
    local pid=$!
    sleep 0.2
    hello_recipe | recipe ok
    manifest "$T/m2.json" w "$W/ok"
    run onramp_install --manifest "$T/m2.json" --prefix "$T/p2" --build-user nobody
    kill "$pid"
    assert_equal "$status" 9
    run reason w "$T/p2"
    assert_output --partial "build user nobody (uid $(id -u nobody)) has running processes (PID"
    assert_output --partial "$pid"
    [ ! -e "$T/p2/workers" ]
}

@test "6: nothing a build or --eval starts survives it (setsid, double fork), as root and as a user" {
    hello_with_build '(setsid sleep 3011 </dev/null >/dev/null 2>&1 &)
setsid sh -c "sleep 3012 & exit" </dev/null >/dev/null 2>&1
sleep 0.3' '' | recipe daemon
    manifest "$T/m.json" w "$W/daemon"
    run onramp_install --manifest "$T/m.json" --prefix "$PREFIX"
    assert_success
    no_process "sleep 3011"
    no_process "sleep 3012"
    # --eval: the recipe is sourced, and leaves a daemon while being read
    mkdir -p "$T/e"
    printf '%s\n' 'pkgname=e' 'pkgver=$(setsid sleep 3013 </dev/null >/dev/null 2>&1 & echo 1)' 'pkgrel=1' 'arch=(any)' >"$T/e/PKGBUILD"
    run "$H" pkgbuild srcinfo "$T/e/PKGBUILD" --eval
    assert_success
    assert_output --partial "pkgver = 1"
    no_process "sleep 3013"
    if [ "$(id -u)" = 0 ]; then
        # the same as a user: onramp reaps what its children leave
        local d
        d=$(mktemp -d /tmp/onramp-sec-user.XXXXXX)
        cp "$H" "$T/e/PKGBUILD" "$d/"
        chmod -R a+rX "$d"
        chmod 755 "$d"
        run setpriv --reuid=nobody --regid=nogroup --clear-groups env -i HOME="$d" PATH=/usr/bin:/bin "$d/onramp" pkgbuild srcinfo "$d/PKGBUILD" --eval
        rm -rf "$d"
        assert_success
        no_process "sleep 3013"
    fi
}

@test "2: a server version that is not one path component is refused when the manifest is read" {
    mkdir -p "$OUT/victim"
    echo keep >"$OUT/victim/file"
    before=$(owners "$OUT")
    for v in "../../../outside/victim" "$OUT/victim" "a/b" ".."; do
        demo_variant "$T/m/manifest.json" ".components[0].version = \"$v\" | .components[0].version_check.expect = \"$v\""
        run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
        assert_equal "$status" 3
        assert_output --partial "at components[0].version"
        assert_output --partial "one plain path component"
    done
    [ "$(owners "$OUT")" = "$before" ]
    [ ! -e "$PREFIX/server" ]
}

@test "3: a resumed download re-reads its .part: bytes changed while onramp was down are never published" {
    head -c $((24 * 1024 * 1024)) /dev/urandom >"$T/big.bin"
    sha=$(sha256sum <"$T/big.bin" | cut -c1-64)
    nginx_start "$T" 4m
    local url="http://127.0.0.1:$NGINX_PORT/big.bin" c=$T/cache
    ONRAMP_CACHE_DIR=$c setsid "$H" download "$url" -o "$T/out.bin" --sha256 "$sha" --size $((24 * 1024 * 1024)) --allow-http --connections 1 </dev/null >"$T/dl.out" 2>&1 &
    local pid=$! i=0
    until [ "$(jq -r '.hashed // 0' "$c/partial/$sha.json" 2>/dev/null || echo 0)" -gt 1048576 ]; do
        i=$((i + 1)); [ "$i" -lt 400 ] || { cat "$T/dl.out"; false; }; sleep 0.05
    done
    kill -9 "$pid"
    wait "$pid" || true
    # someone edits a byte the sidecar vouches for
    printf 'X' | dd of="$c/partial/$sha.part" bs=1 seek=4096 conv=notrunc 2>/dev/null
    run env ONRAMP_CACHE_DIR="$c" "$H" download "$url" -o "$T/out.bin" --sha256 "$sha" --size $((24 * 1024 * 1024)) --allow-http --connections 4
    [ "$(sha256sum <"$T/out.bin" | cut -c1-64)" = "$sha" ]
    [ "$(sha256sum <"$c/sha256/$sha" | cut -c1-64)" = "$sha" ]
    assert_success
    assert_output --partial "the partial download changed on disk since it was saved; starting it over"
}

@test "3: a cache file edited through a hard-linked model (chmod u+w) is hashed again and never placed in the next prefix" {
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    local m=$PREFIX/models/chat-tiny.bin
    sha=$(jq -r '.components[] | select(.id == "model-chat") | .artifacts.any.sha256' "$DEMO")
    c=$XDG_CACHE_HOME/onramp/sha256/$sha
    # placed without a second copy: a reflink or the cache's own inode
    [ "$(stat -c %i "$m")" = "$(stat -c %i "$c")" ] || [ "$(stat -c %h "$c")" = 1 ]
    chmod u+w "$m"
    printf 'X' | dd of="$m" bs=1 seek=5 conv=notrunc 2>/dev/null
    run onramp_install --manifest "$DEMO" --prefix "$T/p2"
    [ "$(sha256sum <"$T/p2/models/chat-tiny.bin" | cut -c1-64)" = "$sha" ]
    [ "$(sha256sum <"$c" | cut -c1-64)" = "$sha" ]
    assert_success
    assert_output --partial "changed on disk since it was verified"
    # an unchanged cache file is trusted by its seal, not hashed again
    run onramp_install --manifest "$DEMO" --prefix "$T/p3"
    assert_success
    refute_output --partial "changed on disk"
}

@test "5: as root, a prefix, cache or state directory another user can change is refused (exit 13), naming it and the fix" {
    need_root
    mkdir -p "$T/theirs" "$T/open"
    chown nobody:nogroup "$T/theirs"
    chmod 777 "$T/open"
    run onramp_install --manifest "$DEMO" --prefix "$T/theirs/stack"
    assert_equal "$status" 13
    assert_output --partial "refusing $T/theirs: it is owned by uid $(id -u nobody) (not root)"
    assert_output --partial "choose a prefix only root can write (such as /opt/NAME)"
    [ -z "$(ls -A "$T/theirs")" ]
    run onramp_install --manifest "$DEMO" --prefix "$T/open"
    assert_equal "$status" 13
    assert_output --partial "refusing $T/open: it is writable by every user (mode 0777)"
    [ -z "$(ls -A "$T/open")" ]
    mkdir -p "$T/sticky"
    chmod 1777 "$T/sticky"
    mkdir -p "$T/sticky/state"
    chown nobody "$T/sticky/state"
    ONRAMP_STATE_DIR=$T/sticky/state run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_equal "$status" 13
    assert_output --partial "set ONRAMP_STATE_DIR (or XDG_STATE_HOME) to a directory only root can write"
    mkdir -p "$T/gw"
    chmod 775 "$T/gw"
    ONRAMP_CACHE_DIR=$T/gw/cache run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_equal "$status" 13
    assert_output --partial "refusing $T/gw: it is writable by its group (mode 0775)"
    # a sticky world-writable parent is fine: nobody may replace what root made in it
    run onramp_install --manifest "$DEMO" --prefix "$T/sticky/prefix"
    assert_success
}

@test "5: whatever the caller's umask (000), nothing onramp creates is writable by group or others" {
    run sh -c "umask 000; ONRAMP_HELPER='$H' setsid -w $ONRAMP_TEST_SHELL '$REPO/install.sh' --manifest '$DEMO' --prefix '$PREFIX' </dev/null"
    assert_success
    run find "$PREFIX" "$XDG_CACHE_HOME/onramp" "$XDG_STATE_HOME/onramp" ! -type l -perm /022
    assert_output ""
    [ -s "$PREFIX/models/chat-tiny.bin" ]
}

@test "5: a link planted in a directory another user controls (server/versions) cannot make root delete another tree" {
    need_root
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    mkdir -p "$OUT/victim"
    echo keep >"$OUT/victim/precious"
    before=$(owners "$OUT")
    # server/ is another user's now, and that user plants a link in it
    chown nobody:nogroup "$PREFIX/server"
    mv "$PREFIX/server/versions" "$PREFIX/server/old-versions"
    mv "$PREFIX/server/current" "$PREFIX/server/old-current"
    ln -s "$OUT/victim" "$PREFIX/server/versions"
    chown -h nobody:nogroup "$PREFIX/server/versions"
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX" --fresh --yes
    diff <(echo "$before") <(owners "$OUT")
    assert_equal "$status" 9
    run reason server
    assert_output --partial "refusing $PREFIX/server: it is owned by uid $(id -u nobody)"
}

@test "5: a .part link planted in the cache is removed, never written through or chmodded" {
    need_root
    echo secret >"$OUT/victim600"
    chmod 600 "$OUT/victim600"
    before=$(owners "$OUT")
    local art=$REPO/examples/demo/artifacts/chat-tiny.bin sha
    sha=$(sha256sum <"$art" | cut -c1-64)
    mkdir -p "$T/c/partial"
    ln -s "$OUT/victim600" "$T/c/partial/$sha.part"
    run env ONRAMP_CACHE_DIR="$T/c" "$H" download "$art" -o "$T/got.bin" --sha256 "$sha"
    diff <(echo "$before") <(owners "$OUT")
    [ "$(cat "$OUT/victim600")" = secret ]
    assert_success
    assert_output --partial "was a symbolic link, not onramp's; removed it"
    cmp "$art" "$T/got.bin"
}

@test "7: with --allow-skip-checksums, file://, absolute and linked-out local sources are still refused; nothing is copied" {
    echo "TOPSECRET" >"$OUT/secret"
    local n=0
    for src in "file://$OUT/secret" "$OUT/secret" "linked"; do
        n=$((n + 1))
        { hello_body; cat <<EOF
source=("$src")
sha256sums=('SKIP')
package() { install -Dm644 "\$srcdir/\$(basename "$src")" "\$pkgdir/got"; }
EOF
        } | recipe "r$n"
        ln -s "$OUT/secret" "$W/r$n/linked"
    done
    manifest "$T/m.json" a "$W/r1" b "$W/r2" c "$W/r3"
    run onramp_install --manifest "$T/m.json" --prefix "$PREFIX" --allow-skip-checksums
    assert_equal "$status" 9
    run reason a
    assert_output --partial "is a file:// URL; onramp takes local sources only from the recipe's own directory"
    run reason b
    assert_output --partial "leaves the recipe's directory"
    run reason c
    assert_output --partial "resolves to $OUT/secret, outside the recipe's directory"
    run grep -rq TOPSECRET "$PREFIX" "$XDG_CACHE_HOME"
    assert_failure
}

@test "8: health-check URLs that leave loopback are refused when read; a loopback check connects to 127.0.0.1 only, with no name lookup" {
    command -v strace >/dev/null || skip "strace is not installed"
    for u in "http://127.0.0.1@192.0.2.1/" "http://localhost:1@192.0.2.1/" "http://127.0.0.1.example/" "http://127.1/" "http://[::1]@192.0.2.1/"; do
        demo_variant "$T/m/manifest.json" ".health_checks += [{\"name\":\"h\",\"component\":\"server\",\"http\":\"$u\"}]"
        ONRAMP_HELPER=$H run strace -f -qq -e trace=connect -o "$T/trace" "$ONRAMP_TEST_SHELL" "$REPO/install.sh" --manifest "$T/m/manifest.json" --prefix "$PREFIX" </dev/null
        assert_equal "$status" 3
        assert_output --partial "health_checks[5].http"
        run grep -E 'connect\(.*(AF_INET|AF_INET6)' "$T/trace"
        assert_failure
    done
    mkdir -p "$T/www"
    echo ok >"$T/www/health"
    nginx_start "$T/www"
    demo_variant "$T/m/manifest.json" ".health_checks += [{\"name\":\"h\",\"component\":\"server\",\"http\":\"http://localhost:$NGINX_PORT/health\"}]"
    ONRAMP_HELPER=$H run strace -f -qq -e trace=connect -o "$T/trace" "$ONRAMP_TEST_SHELL" "$REPO/install.sh" --manifest "$T/m/manifest.json" --prefix "$PREFIX" </dev/null
    assert_success
    grep -q "sin_port=htons($NGINX_PORT), sin_addr=inet_addr(\"127.0.0.1\")" "$T/trace"
    # every connect() of the install went to loopback, and none to DNS
    run grep -E 'connect\(.*(AF_INET|AF_INET6)' "$T/trace"
    refute_output --regexp 'inet_addr\("(([^1]|1[^2]|12[^7])[^"]*)"\)'
    refute_output --partial 'htons(53)'
}

@test "9: descriptors inherited by install.sh (7<secret) reach neither a build nor a manifest command" {
    echo "TOPSECRET" >"$T/secret"
    hello_with_build '' 'ls -l /proc/$$/fd | grep -c secret >"$pkgdir/fds-seen" || true' | recipe fds
    sha=$(sha256sum <"$W/fds/PKGBUILD" | cut -c1-64)
    jq -n --arg p "$W/fds/PKGBUILD" --arg sha "$sha" '{"schema":1,"name":"fds","version":"1","components":[
        {"id":"w","kind":"worker","recipe":{"path":$p,"sha256":$sha}},
        {"id":"x","kind":"extra","command":["sh","-c","ls -l /proc/$$/fd | grep -c secret >\"$ONRAMP_PREFIX/extra-fds\"; cat /proc/$$/fd/7 >>\"$ONRAMP_PREFIX/extra-fds\" 2>/dev/null; true"]}]}' >"$T/m.json"
    run onramp_install --manifest "$T/m.json" --prefix "$PREFIX" 7<"$T/secret"
    assert_success
    [ "$(cat "$PREFIX/workers/w/fds-seen")" = 0 ]
    [ "$(cat "$PREFIX/extra-fds")" = 0 ]
}

@test "10: escape sequences in recipe output and catalog text reach the terminal as visible text, events keep them JSON-escaped" {
    hello_with_build 'printf "\033]0;PWNED-TITLE\007erased\033[2K\033[1Aline\n"' '' | recipe esc
    manifest "$T/m.json" w "$W/esc"
    run onramp_install --manifest "$T/m.json" --prefix "$PREFIX" --events "$T/ev.ndjson"
    assert_success
    fails grep -q $'\x1b' <<<"$output"
    fails grep -q $'\x07' <<<"$output"
    assert_output --partial '\x1b]0;PWNED-TITLE\x07erased\x1b[2K\x1b[1Aline'
    grep -q 'PWNED-TITLE\\u0007erased\\u001b\[2K' "$T/ev.ndjson"
    # a catalog entry naming an unknown key full of escapes
    cp -r "$REPO/examples/demo/catalog" "$T/cat"
    jq '. + {"\u001b]0;evil\u0007\u001b[2J": 1}' "$REPO/examples/demo/catalog/workers/hello/index.json" >"$T/cat/workers/hello/index.json"
    demo_variant "$T/m/manifest.json" ".components |= map(if .id == \"worker-hello\" then .catalog.base = \"$T/cat\" else . end)"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$T/p2"
    assert_equal "$status" 9
    assert_output --partial 'unknown field `\x1b]0;evil\x07\x1b[2J`'
    fails grep -q $'\x1b' <<<"$output"
}

@test "11: a command printing 400 MB without a newline keeps onramp's memory and the state small" {
    [ -x /usr/bin/time ] || skip "GNU time is not installed"
    demo_variant "$T/m/manifest.json" '.health_checks += [{"name":"flood","component":"server","command":["sh","-c","head -c 400000000 /dev/zero | tr \"\\\\0\" x; exit 1"],"retries":1}]'
    install_argv
    ONRAMP_HELPER=$H run /usr/bin/time -f 'maxrss=%M' setsid -w "${INSTALL[@]}" --manifest "$T/m/manifest.json" --prefix "$PREFIX" </dev/null
    assert_equal "$status" 9
    rss=$(printf '%s\n' "$output" | sed -n 's/^maxrss=//p')
    echo "# max RSS ${rss} KiB" >&3
    [ "$rss" -lt 102400 ]
    [ "$(stat -c %s "$(state_file)")" -lt 65536 ]
    run reason server
    assert_output --partial "health check flood failed"
    assert_output --partial "more bytes"
    [ "${#output}" -lt 5000 ]
}

@test "12: a catalog PKGBUILD the manifest does not pin is refused before it is fetched; --allow-unpinned-catalog is the explicit way" {
    cp -r "$REPO/examples/demo/catalog" "$T/cat"
    NGINX_EXTRA='index index.json;' nginx_start "$T/cat"
    local base="http://127.0.0.1:$NGINX_PORT" pin
    pin=$(jq -r .pkgbuild_sha256 "$T/cat/workers/hello/index.json")
    demo_variant "$T/m/manifest.json" ".components |= map(if .id == \"worker-hello\" then (.catalog.base = \"$base\" | del(.catalog.sha256)) else . end)"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX" --allow-http
    assert_equal "$status" 9
    run reason worker-hello
    assert_output --partial "the manifest does not pin its catalog PKGBUILD"
    assert_output --partial "\"sha256\": \"$pin\""
    assert_output --partial "--allow-unpinned-catalog"
    run grep PKGBUILD "$NGINX_LOG"
    assert_failure
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$T/p2" --allow-http --allow-unpinned-catalog
    assert_success
    "$T/p2/workers/worker-hello/bin/hello-worker" --ping
}

@test "low: byte sums that would wrap, a 200 000-long depends_on chain, duplicate keys, bad paths: clear refusals, before anything runs" {
    demo_variant "$T/m/manifest.json" '.components += [
        {"id":"huge1","kind":"model","install_path":"m/1","artifacts":{"any":{"url":"https://example.invalid/1","size":9223372036854775808,"sha256":"'"$(printf 1 | sha256sum | cut -c1-64)"'"}}},
        {"id":"huge2","kind":"model","install_path":"m/2","artifacts":{"any":{"url":"https://example.invalid/2","size":9223372036854775808,"sha256":"'"$(printf 2 | sha256sum | cut -c1-64)"'"}}}]'
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX" --offline
    assert_equal "$status" 3
    assert_output --partial "sizes add up to more than 18 EB"
    # cycle detection without recursion
    python3 - "$T/chain.json" <<'PY'
import json, sys
n = 200000
comps = [{"id": "c%d" % i, "kind": "extra", "command": ["true"], **({"depends_on": ["c%d" % (i - 1)]} if i else {})} for i in range(n)]
json.dump({"schema": 1, "name": "chain", "version": "1", "components": comps}, open(sys.argv[1], "w"))
PY
    run "$H" resume-check --manifest "$T/chain.json" --prefix "$T/pc"
    assert_success
    assert_output fresh
    # a second "any" must not silently win
    jq . "$DEMO" | sed '0,/"any": {/s//"any": {"path":"x","size":1,"sha256":"'"$(printf x | sha256sum | cut -c1-64)"'"}, "any": {/' >"$T/m/dup.json"
    run "$H" plan --manifest "$T/m/dup.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial 'at components[0].artifacts: the key "any" appears twice'
    # configure paths are checked when the manifest is read, before an extra runs
    for p in 'config/\u202egpj.exe' 'config/a\u0000b' "config/$(head -c 300 /dev/zero | tr '\0' x)"; do
        demo_variant "$T/m/manifest.json" ".configure.files += [{\"path\":\"$p\",\"content\":\"x\"}]"
        run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
        assert_equal "$status" 3
        assert_output --regexp 'configure\.files\[2\]\.path: .*(control or invisible|longer than)'
        [ ! -e "$PREFIX/extras" ]
        [ ! -e "$PREFIX/server" ]
    done
}

@test "low: an archive bomb stops at its unpacked_size; the rest of the stack installs" {
    /usr/bin/python3 - "$T/bomb.tar.gz" <<'PY'
import io, sys, tarfile
class Zeros(io.RawIOBase):
    def __init__(self, n): self.left = n
    def readable(self): return True
    def readinto(self, b):
        n = min(len(b), self.left); b[:n] = bytes(n); self.left -= n; return n
with tarfile.open(sys.argv[1], "w:gz", compresslevel=9) as t:
    s = b"#!/bin/sh\necho 1.0.0\n"
    i = tarfile.TarInfo("bin/demo-server"); i.size = len(s); i.mode = 0o755
    t.addfile(i, io.BytesIO(s))
    i = tarfile.TarInfo("bin/zeros"); i.size = 300_000_000
    t.addfile(i, io.BufferedReader(Zeros(i.size)))
PY
    local size sha
    size=$(stat -c %s "$T/bomb.tar.gz")
    sha=$(sha256sum <"$T/bomb.tar.gz" | cut -c1-64)
    echo "# a ${size}-byte archive of 300 MB" >&3
    demo_variant "$T/m/manifest.json" ".components[0].artifacts.any = {\"path\":\"$T/bomb.tar.gz\",\"size\":$size,\"sha256\":\"$sha\",\"unpack\":\"tar.gz\",\"unpacked_size\":4096}"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_equal "$status" 9
    run reason server
    assert_output --partial "it unpacks to more than"
    assert_output --partial "its unpacked_size is 4096 bytes"
    [ "$(du -sm "$PREFIX" | cut -f1)" -lt 50 ]
}

@test "low: a state that parses but lacks its steps is set aside and the install starts fresh" {
    interrupted_install
    sf=$(state_file)
    jq '.steps = .steps[1:]' "$sf" >"$sf.new" && mv "$sf.new" "$sf"
    run onramp_install --manifest "$SLOW" --prefix "$PREFIX" --yes
    assert_success
    assert_output --partial "its steps do not match the manifest's components"
    ls "$(dirname "$sf")"/state.json.*.corrupt
    jq -e '.status == "complete"' "$sf"
}

@test "low: manifest commands get a minimal environment plus the manifest's env allow-list, never the caller's secrets" {
    demo_variant "$T/m/manifest.json" '.components += [{"id":"envdump","kind":"extra","command":["sh","-c","env | cut -d= -f1 | sort >\"$ONRAMP_PREFIX/env-seen\""]}]'
    SECRET_TOKEN=x AWS_SECRET_ACCESS_KEY=y run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_success
    run cat "$PREFIX/env-seen"
    refute_output --partial SECRET
    assert_output --partial ONRAMP_PREFIX
    assert_output --partial PATH
    jq '.env = ["SECRET_TOKEN"]' "$T/m/manifest.json" >"$T/m/m2.json"
    SECRET_TOKEN=x AWS_SECRET_ACCESS_KEY=y run onramp_install --manifest "$T/m/m2.json" --prefix "$T/p2"
    assert_success
    grep -qx SECRET_TOKEN "$T/p2/env-seen"
    fails grep -q AWS_SECRET "$T/p2/env-seen"
}

@test "low: with no sha256 tool, the release install.sh says which tools it looked for (exit 11)" {
    [ -f "$REPO/dist/install.sh" ] || skip "dist/install.sh is built by tests/run.sh"
    mkdir -p "$T/bin"
    for t in sh dash uname mktemp rm mkdir cat cut sed awk id ls getconf head tr cp chmod mv; do
        p=$(command -v "$t") && ln -s "$p" "$T/bin/$t"
    done
    run env -i HOME="$HOME" PATH="$T/bin" dash "$REPO/dist/install.sh" --manifest "$DEMO" --prefix "$PREFIX" --from "$REPO/dist" </dev/null
    assert_equal "$status" 11
    assert_output --partial "looked for sha256sum, shasum and openssl, and none is installed"
}

@test "low: --eval run by a user gets no writable view of onramp's cache" {
    need_root
    local d
    d=$(mktemp -d /tmp/onramp-sec-ro.XXXXXX)
    chmod 755 "$d"
    mkdir -p "$d/cache/onramp"
    chown -R nobody:nogroup "$d/cache"
    cp "$H" "$d/onramp"
    printf '%s\n' 'pkgname=w' "pkgver=\$(touch $d/cache/onramp/pwned 2>/dev/null; echo 1)" 'pkgrel=1' 'arch=(any)' >"$d/PKGBUILD"
    chmod -R a+rX "$d"
    run setpriv --reuid=nobody --regid=nogroup --clear-groups env -i HOME="$d" XDG_CACHE_HOME="$d/cache" PATH=/usr/bin:/bin "$d/onramp" pkgbuild srcinfo "$d/PKGBUILD" --eval
    local made=no
    [ -e "$d/cache/onramp/pwned" ] && made=yes
    rm -rf "$d"
    assert_success
    assert_equal "$made" no
}

# --- Round two (issue 20): root with a user's environment, links inside
# packages, files named by callers, the progress server's hand-over,
# signed bundles. Each test performs the attack with an unprivileged
# account (nobody) and checks its effect is gone.

# as_nobody CMD: sh -c CMD as nobody:nogroup, no supplementary groups.
as_nobody() {
    setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c "$1"
}

# ALICE: a directory of nobody's (her HOME); MARKS: world-writable, where
# her binary EVIL (which then runs the real helper) notes the uid running it.
alice_setup() {
    local d=$T
    while [ "$d" != / ] && [ "$d" != /tmp ]; do
        chmod 755 "$d"
        d=$(dirname "$d")
    done
    ALICE=$T/alice
    mkdir -p "$ALICE"
    chown nobody:nogroup "$ALICE"
    MARKS=$T/marks
    mkdir -p "$MARKS"
    chmod 1777 "$MARKS"
    EVIL=$T/evil.sh
    printf '#!/bin/sh\nid -u >>"%s/ran"\nexec "%s" "$@"\n' "$MARKS" "$H" >"$EVIL"
    chmod 755 "$EVIL"
}

# Did anything of hers run as root?
ran_as_root() {
    [ -f "$MARKS/ran" ] && grep -qx 0 "$MARKS/ran"
}

ROOT_HOME=$(getent passwd 0 | cut -d: -f6)

@test "r2 class 1: as root with her HOME/XDG_* (sudo -E), the released install.sh never runs the helper from her cache (swapped after its check) and makes nothing in her tree" {
    need_root
    alice_setup
    local hn
    hn=$(cd "$REPO/dist" && ls onramp-*-* | head -n 1)
    as_nobody "mkdir -p '$ALICE/.cache/onramp/bin' && cp '$REPO/dist/$hn' '$ALICE/.cache/onramp/bin/$hn'"
    # the pinned helper is in her cache (it matches the pin); once the
    # installer has looked, she swaps in her own binary
    as_nobody "sleep 0.3; cp '$EVIL' '$ALICE/.cache/onramp/bin/.x' && mv -f '$ALICE/.cache/onramp/bin/.x' '$ALICE/.cache/onramp/bin/$hn'" &
    local swapper=$!
    # (the state and download cache are root's, named explicitly: only the
    # helper's place comes from her environment)
    run env HOME="$ALICE" XDG_CACHE_HOME="$ALICE/.cache" ONRAMP_STATE_DIR="$T/rs" ONRAMP_CACHE_DIR="$T/rc" \
        setsid -w dash "$REPO/dist/install.sh" --from "$REPO/dist" --manifest "$DEMO" --prefix "$PREFIX" </dev/null
    wait "$swapper"
    # the effect: her binary never ran as root; root made nothing in her tree
    fails ran_as_root
    [ -z "$(find "$ALICE" -uid 0)" ]
    assert_success
    assert_output --partial "as root, ignoring HOME=$ALICE ($ALICE is owned by uid $(id -u nobody) (not root)): another user's environment (sudo -E?); using root's home $ROOT_HOME"
    assert_output --partial "as root, ignoring XDG_CACHE_HOME=$ALICE/.cache"
    # it ran the helper from root's own cache
    cmp "$REPO/dist/$hn" "$ROOT_HOME/.cache/onramp/bin/$hn"
    [ -s "$PREFIX/models/chat-tiny.bin" ]
    # the same environment uninstalls it (root's own state); her binary,
    # in place all along now, still never runs
    run env HOME="$ALICE" XDG_CACHE_HOME="$ALICE/.cache" XDG_STATE_HOME="$ALICE/.local/state" ONRAMP_STATE_DIR="$T/rs" \
        setsid -w dash "$REPO/dist/install.sh" --from "$REPO/dist" --uninstall --prefix "$PREFIX" </dev/null
    assert_success
    [ ! -e "$PREFIX" ]
    fails ran_as_root
    # variants: a root-owned directory inside hers (her parent can be
    # swapped), a link of hers one level higher, a relative path, TMPDIR
    mkdir -p "$ALICE/sub" "$T/rootdir"
    ln -s "$T/rootdir" "$T/herlink"
    chown -h nobody:nogroup "$T/herlink"
    # ... and her PATH: programs named as the installer's tools, first in it
    mkdir -p "$ALICE/bin"
    local tool
    for tool in id ls awk sha256sum curl zstd tar cargo mktemp; do
        printf '#!/bin/sh\nid -u >>"%s/ran"\n' "$MARKS" >"$ALICE/bin/$tool"
        chmod 755 "$ALICE/bin/$tool"
    done
    chown -R nobody:nogroup "$ALICE/bin"
    run env PATH="$ALICE/bin:$PATH" HOME="$ALICE/sub" XDG_CACHE_HOME="$T/herlink/c" XDG_STATE_HOME=rel/state TMPDIR="$ALICE" \
        XDG_BIN_HOME="$ALICE/bin" XDG_DATA_HOME="/tmp/onramp-r2-not-yet-$$" dash "$REPO/install.sh" --print-target </dev/null
    fails ran_as_root
    assert_success
    assert_output --partial "as root, leaving out of PATH what another user could change: $ALICE/bin"
    assert_output --partial "ignoring XDG_BIN_HOME=$ALICE/bin"
    assert_output --partial "ignoring XDG_DATA_HOME=/tmp/onramp-r2-not-yet-$$ (/tmp/onramp-r2-not-yet-$$ does not exist yet and /tmp is writable by others"
    run env PATH="$ALICE/bin:$PATH" ONRAMP_STATE_DIR="$T/rs" ONRAMP_CACHE_DIR="$T/rc" \
        setsid -w dash "$REPO/dist/install.sh" --from "$REPO/dist" --manifest "$DEMO" --prefix "$T/p3" </dev/null
    fails ran_as_root
    assert_success
    run env HOME="$ALICE/sub" XDG_CACHE_HOME="$T/herlink/c" XDG_STATE_HOME=rel/state TMPDIR="$ALICE" \
        dash "$REPO/install.sh" --print-target </dev/null
    assert_success
    assert_output --partial "ignoring HOME=$ALICE/sub ($ALICE is owned by uid $(id -u nobody)"
    assert_output --partial "ignoring XDG_CACHE_HOME=$T/herlink/c ($T/herlink is owned by uid $(id -u nobody) (not root))"
    assert_output --partial "ignoring XDG_STATE_HOME=rel/state (rel/state is not an absolute path)"
    assert_output --partial "ignoring TMPDIR=$ALICE ($ALICE is owned by uid"
    # the helper applies the same rule on its own (run by hand with sudo -E)
    run env PATH="$ALICE/bin:$PATH" HOME="$ALICE/sub" XDG_STATE_HOME="$T/herlink/s" "$H" state --prefix "$PREFIX"
    assert_output --partial "onramp: as root, leaving out of PATH what another user could change: $ALICE/bin"
    assert_output --partial "onramp: as root, ignoring HOME=$ALICE/sub"
    assert_output --partial "onramp: as root, ignoring XDG_STATE_HOME=$T/herlink/s"
    assert_output --partial "$ROOT_HOME/.local/state/onramp/installs/"
    # ONRAMP_HELPER of hers, a root-owned link to it, a hard link to it: refused
    as_nobody "cp '$EVIL' '$ALICE/onramp' && chmod 755 '$ALICE/onramp'"
    ln -s "$ALICE/onramp" "$T/hlink"
    ln "$ALICE/onramp" "$T/hhard"
    local h
    for h in "$ALICE/onramp" "$T/hlink" "$T/hhard"; do
        run env ONRAMP_HELPER="$h" setsid -w dash "$REPO/install.sh" --manifest "$DEMO" --prefix "$T/p2" </dev/null
        assert_equal "$status" 13
        assert_output --partial "refusing ONRAMP_HELPER=$h"
    done
    [ ! -e "$T/p2" ]
    fails ran_as_root
}

@test "r2 class 1: doctor, services, uninstall and cache as root never read a state or cache root she can change: her planted health check never runs, her created-dirs.json removes nothing" {
    need_root
    alice_setup
    # her own install (as herself) of a stack whose health check records
    # who runs it
    printf 'model\n' >"$ALICE/m.bin"
    jq -n --arg sha "$(sha256sum <"$ALICE/m.bin" | cut -c1-64)" --arg marks "$MARKS" '{schema:1,name:"hc",version:"1",
        components:[{id:"m",kind:"model",install_path:"models/m.bin",artifacts:{any:{path:"m.bin",size:6,sha256:$sha}}}],
        health_checks:[{name:"who",component:"m",command:["sh","-c",("id -u >>" + $marks + "/ran")]}]}' >"$ALICE/m.json"
    chown -R nobody:nogroup "$ALICE"
    local env="HOME='$ALICE' XDG_CACHE_HOME='$ALICE/c' XDG_STATE_HOME='$ALICE/s'"
    as_nobody "$env ONRAMP_HELPER='$H' dash '$REPO/install.sh' --manifest '$ALICE/m.json' --prefix '$ALICE/p' </dev/null >'$ALICE/out' 2>&1" || { cat "$ALICE/out"; false; }
    grep -qx "$(id -u nobody)" "$MARKS/ran"
    # she moves her state to where root's prefix would keep it
    RP=$T/rootprefix
    mkdir -p "$RP"
    local from to
    from=$(as_nobody "$env '$H' state --prefix '$ALICE/p'" | head -n 1)
    to=$(as_nobody "$env '$H' state --prefix '$RP'" | head -n 1)
    as_nobody "mv '$(dirname "$from")' '$(dirname "$to")' && jq --arg p '$RP' '.prefix = \$p' '$to' >'$to.x' && mv '$to.x' '$to'"
    [ -f "$to" ]
    # with her environment: ignored, nothing of hers is read
    run env HOME="$ALICE" XDG_CACHE_HOME="$ALICE/c" XDG_STATE_HOME="$ALICE/s" ONRAMP_HELPER="$H" \
        setsid -w dash "$REPO/install.sh" --check --prefix "$RP" </dev/null
    fails ran_as_root
    assert_output --partial "as root, ignoring XDG_STATE_HOME=$ALICE/s"
    # named explicitly: refused before anything is read (exit 13)
    local cmd
    for cmd in "doctor --prefix $RP" "services status --prefix $RP" "uninstall --prefix $RP" "state --prefix $RP"; do
        # shellcheck disable=SC2086
        run env ONRAMP_STATE_DIR="$ALICE/s/onramp" "$H" $cmd
        fails ran_as_root
        assert_equal "$status" 13
        assert_output --partial "refusing $ALICE: it is owned by uid $(id -u nobody) (not root)"
    done
    fails ran_as_root
    # her cache root notes a directory elsewhere as one onramp made
    mkdir -p "$T/victim-empty"
    as_nobody "mkdir -p '$ALICE/c/onramp' && printf '[\"%s\"]' '$T/victim-empty' >'$ALICE/c/onramp/created-dirs.json'"
    for cmd in "cache prune" "cache list" "uninstall --prefix $RP --purge-cache"; do
        # shellcheck disable=SC2086
        run env ONRAMP_CACHE_DIR="$ALICE/c/onramp" ONRAMP_STATE_DIR="$T/rs" "$H" $cmd
        [ -d "$T/victim-empty" ]
        assert_equal "$status" 13
    done
    [ -d "$T/victim-empty" ]
    # a root-owned cache whose note lists a directory that is not one of
    # its own parents: the root goes, the other directory stays
    mkdir -p "$T/rc/onramp"
    printf '["%s","%s"]' "$T/victim-empty" "$T/rc/onramp" >"$T/rc/onramp/created-dirs.json"
    run env ONRAMP_CACHE_DIR="$T/rc/onramp" ONRAMP_STATE_DIR="$T/rs" "$H" cache prune
    assert_success
    [ ! -e "$T/rc/onramp" ]
    [ -d "$T/victim-empty" ]
}

@test "r2 class 2: a package link that leaves its install dir is refused (absolute, climbing, one level higher, through another link); nothing outside changes" {
    need_root
    mkdir -p "$OUT/etc"
    echo keep >"$OUT/etc/settings.json"
    before=$(owners "$OUT")
    local i=0 body
    for body in "ln -s '$OUT/etc' \"\$pkgdir/conf\"" \
        "ln -s ../../../outside/etc \"\$pkgdir/conf\"" \
        "ln -s .. \"\$pkgdir/up\"" \
        "ln -s . \"\$pkgdir/a\"; ln -s a/../.. \"\$pkgdir/conf\"" \
        "mkdir -p \"\$pkgdir/d\"; ln -s ../../x \"\$pkgdir/d/conf\""; do
        i=$((i + 1))
        hello_recipe "" "$body" | recipe "l$i"
        manifest "$T/m$i.json" w "$W/l$i"
        run onramp_install --manifest "$T/m$i.json" --prefix "$T/p$i"
        assert_equal "$status" 9
        run reason w "$T/p$i"
        assert_output --partial "which leaves the install dir"
        [ ! -e "$T/p$i/workers/w" ]
    done
    diff <(echo "$before") <(owners "$OUT")
    # a link that stays inside is installed as it is
    hello_recipe "" "ln -s bin/hello-worker \"\$pkgdir/hw\"" | recipe ok
    manifest "$T/ok.json" w "$W/ok"
    run onramp_install --manifest "$T/ok.json" --prefix "$T/pok"
    assert_success
    [ "$(readlink "$T/pok/workers/w/hw")" = bin/hello-worker ]
}

@test "r2 class 2: configure, an upgrade and an uninstall write and remove inside the prefix by descriptor: never through a link there" {
    need_root
    mkdir -p "$OUT/etc"
    echo keep >"$OUT/etc/settings.json"
    echo keep >"$OUT/etc/a.txt"
    # v1 installs conf/a.txt; v2 turns conf into a link to sub (inside) and
    # ships sub/a.txt: removing v1's conf/a.txt must not delete v2's file
    hello_recipe "" "mkdir -p \"\$pkgdir/conf\"; echo v1 >\"\$pkgdir/conf/a.txt\"" | recipe v
    manifest "$T/m.json" w "$W/v"
    jq '.configure = {files: [{path: "config/settings.json", content: "ours\n"}]}' "$T/m.json" >"$T/m1.json"
    run onramp_install --manifest "$T/m1.json" --prefix "$PREFIX"
    assert_success
    [ "$(cat "$PREFIX/workers/w/conf/a.txt")" = v1 ]
    hello_recipe "" "mkdir -p \"\$pkgdir/sub\"; echo v2 >\"\$pkgdir/sub/a.txt\"; ln -s sub \"\$pkgdir/conf\"" | recipe v
    manifest "$T/m.json" w "$W/v"
    jq '.version = "2" | .configure = {files: [{path: "config/settings.json", content: "ours\n"}]}' "$T/m.json" >"$T/m2.json"
    run onramp_install --manifest "$T/m2.json" --prefix "$PREFIX" --yes
    assert_success
    [ "$(cat "$PREFIX/workers/w/sub/a.txt")" = v2 ]
    [ "$(readlink "$PREFIX/workers/w/conf")" = sub ]
    # a link to outside in place of config/ (as a package or an older onramp
    # could have left it): configure refuses to write through it
    before=$(owners "$OUT")
    rm -rf "$PREFIX/config"
    ln -s "$OUT/etc" "$PREFIX/config"
    jq '.version = "3" | .configure.files[0].content = "changed\n"' "$T/m2.json" >"$T/m3.json"
    run onramp_install --manifest "$T/m3.json" --prefix "$PREFIX" --yes
    assert_failure
    assert_output --partial "$PREFIX/config is not a directory (a symbolic link?)"
    diff <(echo "$before") <(owners "$OUT")
    # and an uninstall removes the link, never what it points to
    run onramp_install --uninstall --prefix "$PREFIX"
    diff <(echo "$before") <(owners "$OUT")
    [ "$(cat "$OUT/etc/settings.json")" = keep ]
}

@test "r2 class 3: files named by the caller: a planted link, hard link or FIFO at --events, --summary-json or --progress-url-file is refused or replaced, never followed or waited on; as root not in a directory others can write" {
    need_root
    echo 'keep' >"$OUT/rc"
    chmod 644 "$OUT/rc"
    mkdir -p "$T/d" "$T/pub"
    chmod 1777 "$T/pub"
    ln -s "$OUT/rc" "$T/d/link.ndjson"
    ln "$OUT/rc" "$T/d/hard.ndjson"
    mkfifo "$T/d/fifo.ndjson" "$T/d/url.fifo"
    before=$(owners "$OUT")
    run timeout 60 env ONRAMP_HELPER="$H" setsid -w dash "$REPO/install.sh" --manifest "$DEMO" --prefix "$PREFIX" --events "$T/d/link.ndjson" </dev/null
    diff <(echo "$before") <(owners "$OUT")
    assert_equal "$status" 13
    assert_output --partial "refusing --events $T/d/link.ndjson: it is a symbolic link"
    run timeout 60 env ONRAMP_HELPER="$H" setsid -w dash "$REPO/install.sh" --manifest "$DEMO" --prefix "$PREFIX" --events "$T/d/hard.ndjson" </dev/null
    diff <(echo "$before") <(owners "$OUT")
    assert_equal "$status" 13
    assert_output --partial "it has 2 names (a hard link)"
    run timeout 60 env ONRAMP_HELPER="$H" setsid -w dash "$REPO/install.sh" --manifest "$DEMO" --prefix "$PREFIX" --events "$T/d/fifo.ndjson" </dev/null
    assert_equal "$status" 13
    assert_output --partial "refusing --events $T/d/fifo.ndjson"
    # refused before the install began: no state was saved
    [ ! -e "$(state_file)" ]
    # a directory others can write (even sticky): refused as root
    run timeout 60 env ONRAMP_HELPER="$H" setsid -w dash "$REPO/install.sh" --manifest "$DEMO" --prefix "$PREFIX" --summary-json "$T/pub/s.json" </dev/null
    assert_equal "$status" 13
    assert_output --partial "--summary-json $T/pub/s.json: refusing $T/pub: it is writable by every user (mode 1777)"
    [ ! -e "$T/pub/s.json" ]
    diff <(echo "$before") <(owners "$OUT")
    [ "$(cat "$OUT/rc")" = keep ]
    # a link at --summary-json and a FIFO at the URL file are replaced (no
    # hang), their targets untouched
    ln -s "$OUT/rc" "$T/d/s.json"
    run timeout 120 env ONRAMP_HELPER="$H" setsid -w dash "$REPO/install.sh" --manifest "$DEMO" --prefix "$PREFIX" \
        --summary-json "$T/d/s.json" --progress-listen 127.0.0.1:0 --progress-url-file "$T/d/url.fifo" --progress-linger 0 </dev/null
    assert_success
    [ ! -L "$T/d/s.json" ]
    jq -e '.status == "success"' "$T/d/s.json"
    diff <(echo "$before") <(owners "$OUT")
    [ "$(cat "$OUT/rc")" = keep ]
}

@test "r2 class 4: the progress server hands over only to a loopback server of ours: a URL file with a foreign address, CR LF after its token, or another owner is never connected to; a FIFO does not hang it" {
    need_root
    # a local service that records what reaches it
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    python3 - "$port" "$T/got" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
s.settimeout(0.2)
end = time.time() + 180
with open(sys.argv[2], "ab") as out:
    while time.time() < end:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        c.settimeout(1)
        got = b""
        try:
            while b"\r\n\r\n" not in got:
                part = c.recv(65536)
                if not part:
                    break
                got += part
        except Exception:
            pass
        out.write(got)
        out.flush()
        c.close()
PY
    local srv=$! tok=0123456789abcdef0123456789abcdef url
    sleep 0.5
    : >"$T/got"
    : >"$T/ev.ndjson"
    # (each listens on the service's port: only the file decides; the
    # server then cannot bind it and says so, exit 2)
    for url in "http://10.9.9.9:$port/?token=$tok" \
        "http://127.0.0.1:$port/?token=$tok"$'\r\n'"POST /evil HTTP/1.1" \
        "http://127.0.0.1:$port/?token=${tok}x" \
        "http://localhost:$port/?token=$tok"; do
        printf '%s\n' "$url" >"$T/url"
        run strace -f -qq -e trace=connect -o "$T/strace" timeout -s KILL 20 "$H" progress-serve --listen "127.0.0.1:$port" \
            --events "$T/ev.ndjson" --url-file "$T/url" --foreground
        fails grep -q "htons($port)" "$T/strace"
        fails grep -q '10\.9\.9\.9' "$T/strace"
        assert_equal "$status" 2
        assert_output --partial "cannot listen there"
    done
    # the right form, but in a file of another user's: refused
    printf 'http://127.0.0.1:%s/?token=%s\n' "$port" "$tok" >"$T/url"
    chown nobody "$T/url"
    run strace -f -qq -e trace=connect -o "$T/strace" timeout -s KILL 20 "$H" progress-serve --listen "127.0.0.1:$port" \
        --events "$T/ev.ndjson" --url-file "$T/url" --foreground
    fails grep -q "htons($port)" "$T/strace"
    [ ! -s "$T/got" ]
    # with port 0 (a free one) nothing is handed over: a stale file may name
    # a port another program has since taken
    printf 'http://127.0.0.1:%s/?token=%s\n' "$port" "$tok" >"$T/url0"
    run strace -f -qq -e trace=connect -o "$T/strace" timeout -s KILL 3 "$H" progress-serve --listen 127.0.0.1:0 \
        --events "$T/ev.ndjson" --url-file "$T/url0" --foreground
    fails grep -q "htons($port)" "$T/strace"
    [ ! -s "$T/got" ]
    # a FIFO there: no hang (the server starts and serves until stopped)
    local free
    free=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    rm -f "$T/url"
    mkfifo "$T/url"
    run timeout -s KILL 3 "$H" progress-serve --listen "127.0.0.1:$free" --events "$T/ev.ndjson" --url-file "$T/url" --foreground
    assert_equal "$status" 137
    assert_output --partial "http://127.0.0.1:$free/"
    # the right form in a file of ours is honoured: POST /shutdown with that
    # token, and nothing else
    printf 'http://127.0.0.1:%s/?token=%s\n' "$port" "$tok" >"$T/url2"
    run timeout -s KILL 20 "$H" progress-serve --listen "127.0.0.1:$port" --events "$T/ev.ndjson" --url-file "$T/url2" --foreground
    sleep 0.5
    kill "$srv" 2>/dev/null || true
    wait "$srv" 2>/dev/null || true
    [ "$(head -n 1 "$T/got" | tr -d '\r')" = "POST /shutdown?token=$tok HTTP/1.1" ]
    [ "$(grep -c 'HTTP/1.1' "$T/got")" = 1 ]
    fails grep -q evil "$T/got"
}
