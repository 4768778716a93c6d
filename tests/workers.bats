#!/usr/bin/env bats
# Workers built from PKGBUILD recipes: real builds with cc, failures that
# leave the prefix untouched, dependency and platform checks before any
# download (nginx's log proves it), checksums, a set of malicious archives,
# timeouts, cancellation, and a catalog served by nginx.

load lib/common
load lib/nginx
load lib/recipes

setup() {
    common_setup
    recipes_setup
}

teardown() {
    nginx_stop
    common_teardown
}

@test "a recipe builds with cc and installs atomically; as root it builds as a dedicated build uid and packages under fakeroot with a minimal environment" {
    { hello_body; cat <<EOF
source=("hello-worker-1.0.0.tar.gz")
sha256sums=('$TARBALL_SHA')
build() {
  cd "\$pkgname-\$pkgver"
  make
  id -u >"\$srcdir/build-user"
  env | cut -d= -f1 | sort >"\$srcdir/build-env"
}
package() {
  cd "\$pkgname-\$pkgver"
  install -Dm755 hello-worker "\$pkgdir/bin/hello-worker"
  install -Dm644 "\$srcdir/build-user" "\$pkgdir/share/build-user"
  install -Dm644 "\$srcdir/build-env" "\$pkgdir/share/build-env"
  id -u >"\$pkgdir/share/package-uid"
  ln -s hello-worker "\$pkgdir/bin/hw"
}
EOF
    } | recipe ok
    manifest "$T/m.json" w "$W/ok"
    XDG_SECRET=leak run onramp_install --manifest "$T/m.json" --prefix "$PREFIX" --events "$T/ev.ndjson"
    assert_success
    assert_output --partial "w: Build: bash ✓, cc ✓, make ✓"
    [ "$("$PREFIX/workers/w/bin/hw" hello)" = HELLO ]
    if [ "$(id -u)" = 0 ]; then
        # onramp's own build uid: no account, no service, nobody's subuid range
        uid=$(cat "$PREFIX/workers/w/share/build-user")
        assert_output --partial "w: building as onramp build user (uid $uid)"
        [ "$uid" -ge 1879048192 ]
        [ "$uid" -lt $((1879048192 + 32)) ]
        run getent passwd "$uid"
        assert_failure
        [ "$(cat "$PREFIX/workers/w/share/package-uid")" = 0 ] # fakeroot
        [ "$(stat -c %U "$PREFIX/workers/w/bin/hello-worker")" = root ]
    fi
    # nothing of the caller's environment reaches the recipe
    run cat "$PREFIX/workers/w/share/build-env"
    refute_output --partial XDG_
    refute_output --partial ONRAMP_
    assert_output --partial srcdir
    assert_output --partial CARCH
    jq -e '.steps[0].files == ["workers/w/bin/hello-worker","workers/w/bin/hw","workers/w/share/build-env","workers/w/share/build-user","workers/w/share/package-uid"]
        and .steps[0].version == "1.0.0-1"' "$(state_file)"
    jq -e '.components[0].id == "w" and .components[0].version == "1.0.0-1"' "$PREFIX/capabilities.json"
    # output streamed as events, in order, while it happened
    jq -s -e 'map(select(.type == "output")) | length > 0 and all(.component == "w")' "$T/ev.ndjson"
    # no staging or build directory left behind
    [ -z "$(find "$PREFIX" -name '.onramp-*')" ]
    [ -z "$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'onramp-build-w-*')" ]
}

@test "a recipe whose metadata needs execution is read in a locked-down bash (it is pinned) and builds" {
    cat <<EOF | recipe needs-eval
pkgname=hello-worker
pkgver=\$(echo 1.0.0)
pkgrel=1
arch=('x86_64' 'aarch64')
if [[ \$CARCH == x86_64 || \$CARCH == aarch64 ]]; then makedepends=('cc' 'make'); fi
source=("hello-worker-\$pkgver.tar.gz")
sha256sums=('$TARBALL_SHA')
build() { cd "\$pkgname-\$pkgver"; make; }
package() { cd "\$pkgname-\$pkgver"; install -Dm755 hello-worker "\$pkgdir/bin/hello-worker"; }
EOF
    run "$H" pkgbuild srcinfo "$W/needs-eval/PKGBUILD"
    assert_equal "$status" 3
    manifest "$T/m.json" w "$W/needs-eval"
    run onramp_install --manifest "$T/m.json" --prefix "$PREFIX"
    assert_success
    assert_output --partial "line 2: command substitution"
    assert_output --partial "reading it in a locked-down bash"
    assert_output --partial "Build: bash ✓, cc ✓, make ✓"
    [ "$("$PREFIX/workers/w/bin/hello-worker" --version)" = "hello-worker 1.0.0" ]
    jq -e '.steps[0].version == "1.0.0-1"' "$(state_file)"
}

@test "a non-root user builds as itself, package() under fakeroot, and the files are its own" {
    [ "$(id -u)" = 0 ] || skip "already covered: the suite runs as this non-root user"
    # A world-readable copy of everything, so nobody can run it.
    local d
    d=$(mktemp -d /tmp/onramp-nonroot.XXXXXX)
    chmod 755 "$d"
    cp -r "$REPO/install.sh" "$REPO/lib" "$d/"
    cp "$H" "$d/onramp"
    mkdir -p "$d/w/ok"
    cp "$TARBALL" "$d/w/ok/"
    { hello_body; cat <<EOF
source=("hello-worker-1.0.0.tar.gz")
sha256sums=('$TARBALL_SHA')
build() { cd "\$pkgname-\$pkgver"; make; id -un >"\$srcdir/build-user"; }
package() {
  cd "\$pkgname-\$pkgver"
  install -Dm755 hello-worker "\$pkgdir/bin/hello-worker"
  install -Dm644 "\$srcdir/build-user" "\$pkgdir/share/build-user"
  id -u >"\$pkgdir/share/package-uid"
}
EOF
    } >"$d/w/ok/PKGBUILD"
    W=$d/w manifest "$d/m.json" w "$d/w/ok"
    chmod -R a+rX "$d"
    mkdir -m 777 "$d/run"
    run setpriv --reuid=nobody --regid=nogroup --clear-groups \
        env -i HOME="$d/run/home" PATH=/usr/bin:/bin ONRAMP_HELPER="$d/onramp" \
        sh "$d/install.sh" --manifest "$d/m.json" --prefix "$d/run/prefix"
    local p=$d/run/prefix/workers/w
    assert_success
    [ "$("$p/bin/hello-worker" --ping)" = pong ]
    [ "$(cat "$p/share/build-user")" = nobody ]
    if command -v fakeroot >/dev/null; then
        [ "$(cat "$p/share/package-uid")" = 0 ]
    fi
    [ "$(stat -c %U "$p/bin/hello-worker")" = nobody ]
    rm -rf "$d"
}

@test "as root, a TMPDIR the build user cannot enter is named before anything runs" {
    [ "$(id -u)" = 0 ] || skip "only root builds as another user"
    hello_recipe | recipe ok
    manifest "$T/m.json" w "$W/ok"
    mkdir -m 700 "$T/priv"
    TMPDIR=$T/priv run onramp_install --manifest "$T/m.json" --prefix "$PREFIX"
    assert_equal "$status" 9
    run reason w
    assert_output --regexp "^$T/priv is not reachable by the build user \(uid 187904[0-9]{4}\); set TMPDIR to a directory others may enter, such as /tmp\$"
    [ -z "$(ls -A "$T/priv")" ]
}

@test "noextract leaves an archive packed in srcdir for the recipe to handle" {
    { hello_body; cat <<EOF
source=("hello-worker-1.0.0.tar.gz")
noextract=("hello-worker-1.0.0.tar.gz")
sha256sums=('$TARBALL_SHA')
prepare() {
  [ -L hello-worker-1.0.0.tar.gz ] && [ ! -e hello-worker-1.0.0 ] && echo "still packed"
  tar -xzf hello-worker-1.0.0.tar.gz
}
build() { cd "\$pkgname-\$pkgver"; make; }
package() { cd "\$pkgname-\$pkgver"; install -Dm755 hello-worker "\$pkgdir/bin/hello-worker"; }
EOF
    } | recipe noext
    manifest "$T/m.json" w "$W/noext"
    run onramp_install --manifest "$T/m.json" --prefix "$PREFIX"
    assert_success
    assert_output --partial "| still packed"
    [ "$("$PREFIX/workers/w/bin/hello-worker" --ping)" = pong ]
}

@test "a failing build says which function failed with its last lines, and leaves the prefix untouched (an installed version stays)" {
    hello_recipe | recipe good
    manifest "$T/good.json" w "$W/good"
    run onramp_install --manifest "$T/good.json" --prefix "$PREFIX"
    assert_success
    before=$(tree_listing "$PREFIX/workers")
    sum=$(sha256sum <"$PREFIX/workers/w/bin/hello-worker")
    files=$(jq -c '.steps[0].files' "$(state_file)")
    { hello_body; cat <<EOF
source=("hello-worker-1.0.0.tar.gz")
sha256sums=('$TARBALL_SHA')
build() { echo "compiling part 1"; echo "error: boom in part 2" >&2; return 2; }
package() { install -Dm755 /bin/true "\$pkgdir/bin/hello-worker"; }
EOF
    } | recipe bad
    manifest "$T/bad.json" w "$W/bad"
    run onramp_install --manifest "$T/bad.json" --prefix "$PREFIX" --fresh --yes
    assert_equal "$status" 9
    run reason w
    assert_output --partial "build() failed with exit 2"
    assert_output --partial "error: boom in part 2"
    assert_output --partial "the prefix is untouched"
    [ "$(tree_listing "$PREFIX/workers")" = "$before" ]
    [ "$(sha256sum <"$PREFIX/workers/w/bin/hello-worker")" = "$sum" ]
    # the installed version's files, still there, are still recorded (an
    # uninstall removes them)
    jq -e --argjson f "$files" '.steps[0].status == "failed" and .steps[0].files == $f' "$(state_file)"
}

@test "a missing dependency stops the build before any download, with a probe report" {
    nginx_start "$W"
    { hello_body; cat <<EOF
depends=('glibc' 'onramp-no-such-runtime>=2')
source=("http://127.0.0.1:$NGINX_PORT/hello-worker-1.0.0.tar.gz")
sha256sums=('$TARBALL_SHA')
build() { touch "\$srcdir/built"; }
package() { :; }
EOF
    } | recipe dep
    cp "$TARBALL" "$W/"
    manifest "$T/m.json" w "$W/dep"
    run onramp_install --manifest "$T/m.json" --prefix "$PREFIX" --allow-http
    assert_equal "$status" 9
    assert_output --partial "Runtime: glibc ✓, onramp-no-such-runtime ✗; Build: bash ✓, cc ✓, make ✓"
    refute_output --partial "==> build()"
    run reason w
    assert_output --partial "missing dependencies (onramp-no-such-runtime)"
    [ ! -s "$NGINX_LOG" ]
    [ ! -e "$PREFIX/workers" ]
    # a probe in the manifest satisfies it
    jq '.components[0].probes = {"onramp-no-such-runtime": {"command": "sh"}}' "$T/m.json" >"$T/m2.json"
    run onramp_install --manifest "$T/m2.json" --prefix "$PREFIX" --allow-http --fresh --yes
    assert_output --partial "onramp-no-such-runtime ✓"
    assert_output --partial "w: ==> build()"
    grep -q "^/hello-worker-1.0.0.tar.gz 20[06] " "$NGINX_LOG"
}

@test "a platform mismatch is refused with what the worker needs, before any download" {
    nginx_start "$W"
    local me other
    me=$("$H" target | cut -d- -f2)
    other=aarch64
    [ "$me" = aarch64 ] && other=x86_64
    { cat <<EOF
pkgname=far
pkgver=1
pkgrel=1
arch=('$other' 'armv7h')
source=("http://127.0.0.1:$NGINX_PORT/hello-worker-1.0.0.tar.gz")
sha256sums=('$TARBALL_SHA')
package() { :; }
EOF
    } | recipe far
    cp "$TARBALL" "$W/"
    manifest "$T/m.json" w "$W/far"
    # and a recipe that would build here, but the component allows another target only
    { hello_body; echo "source=(); package() { :; }"; } | recipe narrowed
    manifest "$T/m2.json" w "$W/narrowed"
    jq --arg t "linux-$other" '.components[0].platforms = [$t]' "$T/m2.json" >"$T/m3.json"
    run onramp_install --manifest "$T/m.json" --prefix "$PREFIX" --allow-http
    assert_equal "$status" 9
    run reason w
    assert_output "Worker requires: linux $other, armv7h; current: linux $me"
    [ ! -s "$NGINX_LOG" ]
    run onramp_install --manifest "$T/m3.json" --prefix "$T/p3"
    assert_equal "$status" 9
    run reason w "$T/p3"
    assert_output "Worker requires: linux $other; current: linux $me"
}

@test "sources: a checksum mismatch, SKIP and VCS sources are refused by name; --allow-skip-checksums builds SKIP unverified" {
    hello_recipe "$(printf x | sha256sum | cut -c1-64)" | recipe mismatch
    hello_recipe SKIP | recipe skip
    { hello_body; cat <<EOF
source=("hello-worker-1.0.0.tar.gz" "git+https://example.invalid/x.git")
sha256sums=('$TARBALL_SHA' 'SKIP')
package() { :; }
EOF
    } | recipe vcs
    { hello_body; cat <<EOF
source=("hello-worker-1.0.0.tar.gz")
md5sums=('0123456789abcdef0123456789abcdef')
package() { :; }
EOF
    } | recipe md5only
    manifest "$T/m.json" mismatch "$W/mismatch" skip "$W/skip" vcs "$W/vcs" md5only "$W/md5only"
    run onramp_install --manifest "$T/m.json" --prefix "$PREFIX"
    assert_equal "$status" 9
    run reason mismatch
    assert_output --partial "does not match the manifest"
    run reason skip
    assert_output --partial "sha256sums SKIP: no checksum, no build"
    assert_output --partial "--allow-skip-checksums"
    run reason vcs
    assert_output --partial "uses git+https://, which onramp does not fetch"
    run reason md5only
    assert_output --partial "has only md5 sums; onramp needs sha256sums"
    [ ! -e "$PREFIX/workers" ]
    [ ! -e "$XDG_CACHE_HOME/onramp/sha256/$(printf x | sha256sum | cut -c1-64)" ]
    manifest "$T/s.json" skip "$W/skip"
    run onramp_install --manifest "$T/s.json" --prefix "$T/p2" --allow-skip-checksums
    assert_success
    assert_output --partial "is not verified (--allow-skip-checksums)"
    [ "$("$T/p2/workers/skip/bin/hello-worker" --ping)" = pong ]
}

@test "malicious archives: every escape attempt fails the whole extraction, nothing outside changes" {
    mkdir -p "$T/outside"
    echo keep >"$T/outside/victim"
    /usr/bin/python3 - "$W/evil" "$T/outside" <<'PY'
import io, os, sys, tarfile
out, outside = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
def f(name, data=b"pwned\n"):
    i = tarfile.TarInfo(name); i.size = len(data); return (i, io.BytesIO(data))
def l(name, target, kind=tarfile.SYMTYPE):
    i = tarfile.TarInfo(name); i.type = kind; i.linkname = target; return (i, None)
def d(name, kind, major=1, minor=3):
    i = tarfile.TarInfo(name); i.type = kind; i.devmajor = major; i.devminor = minor; return (i, None)
cases = {
    "abs": [f(outside + "/pwned-abs")],
    "dotdot": [f("../../../../../../.." + outside + "/pwned-dotdot")],
    "inner-dotdot": [f("a/b/../../../pwned-inner")],
    "link-abs-then-write": [l("ln", outside), f("ln/pwned-through-link")],
    "link-up-then-write": [l("up", "../../../../../../../../.." + outside), f("up/pwned-up")],
    "link-to-etc": [l("passwd", "/etc/passwd")],
    "link-rel-escape": [f("x/ok"), l("x/esc", "../../outside")],
    "hardlink-out": [l("hl", "/etc/passwd", tarfile.LNKTYPE)],
    "hardlink-in": [f("real"), l("hl2", "real", tarfile.LNKTYPE)],
    "chardev": [d("null", tarfile.CHRTYPE)],
    "blockdev": [d("sda", tarfile.BLKTYPE, 8, 0)],
    "fifo": [d("pipe", tarfile.FIFOTYPE)],
    "longname-dotdot": [f("d" * 120 + "/../../../../../../../../.." + outside + "/pwned-long")],
    "link-chain": [l("a", "b"), l("b", "../c"), f("a/pwned-chain")],
    # each link alone stays inside; chained, sub/etc is the machine's /etc
    "link-chain-climb": [l("sub/up", "..")]
        + [l("sub/p%d" % i, ("up" if i == 1 else "p%d" % (i - 1)) + "/..") for i in range(1, 13)]
        + [l("sub/etc", "p12/etc")],
}
for name, entries in cases.items():
    with tarfile.open(os.path.join(out, name + ".tar"), "w", format=tarfile.GNU_FORMAT) as t:
        for info, data in entries:
            t.addfile(info, data)
PY
    local args=() n=0
    for tarf in "$W"/evil/*.tar; do
        name=$(basename "$tarf" .tar)
        sha=$(sha256sum <"$tarf" | cut -c1-64)
        mkdir -p "$W/r-$name"
        cp "$tarf" "$W/r-$name/"
        cat >"$W/r-$name/PKGBUILD" <<EOF
pkgname=evil
pkgver=1
pkgrel=1
arch=('any')
source=("$name.tar")
sha256sums=('$sha')
build() { echo BUILD-RAN >"\$startdir/../../ran-$name" || true; }
package() { :; }
EOF
        args+=("$name" "$W/r-$name")
        n=$((n + 1))
    done
    [ "$n" -ge 10 ]
    before=$(snapshot "$T/outside" /etc/passwd)
    manifest "$T/m.json" "${args[@]}"
    run onramp_install --manifest "$T/m.json" --prefix "$PREFIX"
    assert_equal "$status" 9
    for ((i = 0; i < ${#args[@]}; i += 2)); do
        r=$(reason "${args[i]}")
        [[ $r == *"refusing to unpack it"* ]] || { echo "${args[i]}: $r"; false; }
    done
    [ "$(jq '[.steps[] | select(.status == "failed")] | length' "$(state_file)")" = "$n" ]
    [ "$(snapshot "$T/outside" /etc/passwd)" = "$before" ]
    [ -z "$(find "$T" /tmp -name 'pwned-*' 2>/dev/null)" ]
    [ -z "$(find /tmp "$T" -name 'ran-*' 2>/dev/null)" ]
    [ ! -e "$PREFIX/workers" ]
}

@test "a hung build is killed by its timeout, TERM then KILL, and leaves no process behind" {
    { hello_body; cat <<'EOF'
source=()
build() { echo "starting a build that hangs"; trap '' TERM; sleep 1001 & sleep 1001; }
package() { :; }
EOF
    } | recipe hang
    manifest "$T/m.json" --timeout 2 w "$W/hang"
    SECONDS=0
    run onramp_install --manifest "$T/m.json" --prefix "$PREFIX"
    assert_equal "$status" 9
    [ "$SECONDS" -lt 30 ]
    run reason w
    assert_output --partial "build() timed out after 2 s (stopped with TERM, then KILL)"
    assert_output --partial "starting a build that hangs"
    run pgrep -f "sleep 1001"
    assert_failure
    [ ! -e "$PREFIX/workers" ]
}

@test "Ctrl-C during a build exits 130, stops the whole build, and leaves no stray process or build directory" {
    { hello_body; cat <<'EOF'
source=()
build() { echo "cancel-me-started"; sleep 1002 & sleep 1002; }
package() { :; }
EOF
    } | recipe cancel
    manifest "$T/m.json" cancelme "$W/cancel"
    start_install_bg --manifest "$T/m.json" --prefix "$PREFIX"
    local i=0
    until grep -q cancel-me-started "$T/bg.out"; do
        i=$((i + 1)); [ "$i" -lt 400 ] || { cat "$T/bg.out"; false; }; sleep 0.05
    done
    kill -INT -- "-$BG"
    rc=0
    wait "$BG" || rc=$?
    assert_equal "$rc" 130
    sleep 0.5
    run pgrep -f "sleep 1002"
    assert_failure
    [ -z "$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'onramp-build-cancelme-*')" ]
    [ ! -e "$PREFIX/workers" ]
    jq -e '.status == "interrupted" and (.steps[0].status == "pending")' "$(state_file)"
}

@test "a catalog served by nginx: entry, PKGBUILD and sources over HTTP, pins enforced" {
    cp -r "$REPO/examples/demo/catalog" "$T/cat"
    NGINX_EXTRA='index index.json;' nginx_start "$T/cat"
    local base="http://127.0.0.1:$NGINX_PORT"
    demo_variant "$T/m/manifest.json" ".components |= map(if .id == \"worker-hello\" then .catalog.base = \"$base\" else . end)"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX" --allow-http
    assert_success
    [ "$("$PREFIX/workers/worker-hello/bin/hello-worker" --ping)" = pong ]
    grep -q '^/workers/hello/index.json 200 ' "$NGINX_LOG"
    grep -q '^/workers/hello/PKGBUILD 200 ' "$NGINX_LOG"
    grep -q '^/workers/hello/hello-worker-1.0.0.tar.gz 20[06] ' "$NGINX_LOG"
    # a catalog whose entry disagrees with the manifest's pin is refused
    jq '.pkgbuild_sha256 = "'"$(printf y | sha256sum | cut -c1-64)"'"' "$REPO/examples/demo/catalog/workers/hello/index.json" >"$T/cat/workers/hello/index.json"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$T/p2" --allow-http
    assert_equal "$status" 9
    run reason worker-hello "$T/p2"
    assert_output --partial "the manifest pins"
    # a PKGBUILD that does not match its entry is refused before it is read
    cp "$REPO/examples/demo/catalog/workers/hello/index.json" "$T/cat/workers/hello/index.json"
    echo 'pkgver=6.6.6' >>"$T/cat/workers/hello/PKGBUILD"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$T/p3" --allow-http
    assert_equal "$status" 9
    run reason worker-hello "$T/p3"
    assert_output --partial "does not match the pinned"
}

@test "schema/catalog-entry.schema.json accepts the demo entry and rejects what the helper rejects" {
    v() { schema_valid "$1" "$REPO/schema/catalog-entry.schema.json"; }
    v "$REPO/examples/demo/catalog/workers/hello/index.json"
    cp -r "$REPO/examples/demo/catalog" "$T/cat"
    jq 'del(.pkgbuild_sha256)' "$REPO/examples/demo/catalog/workers/hello/index.json" >"$T/cat/workers/hello/index.json"
    run v "$T/cat/workers/hello/index.json"
    assert_failure
    demo_variant "$T/m/manifest.json" ".components |= map(if .id == \"worker-hello\" then .catalog.base = \"$T/cat\" else . end)"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_equal "$status" 9
    jq -e '.steps[] | select(.id == "worker-hello") | .reason | test("at \\.: missing field `pkgbuild_sha256`|pkgbuild_sha256")' "$(state_file)"
}

@test "capabilities.json lists exactly the components that are done, also after a kill mid-install" {
    interrupted_install
    jq -e . "$PREFIX/capabilities.json" >/dev/null
    diff <(jq -r '.components[].id' "$PREFIX/capabilities.json" | sort) \
        <(jq -r '.steps[] | select(.status == "done") | .id' "$(state_file)" | sort)
    jq -e '(.capabilities | index("hello-worker") != null and index("vision") != null)
        and (.components | map(.id) | index("slow") == null)' "$PREFIX/capabilities.json"
}
