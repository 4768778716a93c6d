#!/usr/bin/env bats
# Air-gapped bundles: `onramp bundle create` fetches the demo's artifacts
# from a real nginx through the download engine; the bundle then installs
# inside a network namespace with only loopback while strace counts the
# connect() calls (none), and gives the online install's tree. Every
# bundled file altered by one byte, one removed, one added: each named,
# nothing installed. bundle create killed at its durable operations
# resumes.

load lib/common
load lib/nginx

setup_file() {
    export FH=${ONRAMP_TEST_HELPER_DYN:-}
}

setup() {
    common_setup
    mkdir -p "$T/srv" "$T/m"
    cp "$REPO"/examples/demo/artifacts/* "$T/srv/"
    nginx_start "$T/srv"
    nginx_manifest "$T/m/manifest.json"
    S=$T/scratch
    mkdir -p "$S"
}

teardown() {
    nginx_stop
    common_teardown
}

# make_bundle OUT [ARGS...]: the nginx demo's bundle, with the static helper.
make_bundle() {
    local out=$1
    shift
    "$H" bundle create --manifest "$T/m/manifest.json" --allow-http \
        --helper "linux-x86_64=$ONRAMP_TEST_HELPER" -o "$out" "$@"
}

@test "a bundle holds everything (the artifacts fetched from nginx into sha256/) and installs with no network connection at all" {
    command -v strace >/dev/null || skip "strace missing"
    command -v unshare >/dev/null || skip "unshare missing"
    [ "$(uname -m)" = x86_64 ] || skip "the static helper in this bundle is x86_64"
    run make_bundle "$S/b"
    assert_success
    assert_output --partial "sh install.sh --from $S/b"
    for f in index.json install.sh manifest.json "onramp-0.1.0-linux-x86_64" catalog/workers/hello/PKGBUILD config/models.json; do
        [ -f "$S/b/$f" ] || { echo "missing $f"; return 1; }
    done
    # every artifact by URL, by its sha256; nginx served each once
    for sha in $(jq -r '.components[].artifacts // {} | .[].sha256' "$T/m/manifest.json"); do
        [ "$(sha256sum <"$S/b/sha256/$sha" | cut -c1-64)" = "$sha" ]
    done
    [ ! -e "$S/b/partial" ] && [ ! -e "$S/b/seals" ]
    run "$H" bundle verify "$S/b"
    assert_success
    assert_output --regexp "bundle ok: onramp-demo 1.0.0 for linux-x86_64, [0-9]+ files"
    run "$H" bundle list "$S/b"
    assert_success
    assert_output --partial "  manifest.json"
    # the archive form: the same files, the index first
    run make_bundle "$S/b.tar.zst"
    assert_success
    [ "$(zstd -dc "$S/b.tar.zst" | tar -tf - | head -n 1)" = index.json ]
    run "$H" bundle verify "$S/b.tar.zst"
    assert_success
    nginx_stop
    # a network namespace with only loopback (down), strace counting connect()
    run unshare -n env ONRAMP_HELPER= strace -f -qq -e trace=connect -o "$S/trace" \
        dash "$S/b/install.sh" --from "$S/b.tar.zst" --prefix "$PREFIX" -y </dev/null
    assert_success
    assert_output --partial "unpacking the bundle"
    inet=$(grep -c 'AF_INET' "$S/trace" || true)
    [ "$inet" = 0 ] || { grep AF_INET "$S/trace"; return 1; }
    echo "# connect() to an internet address during the install: $inet" >&3
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX")
    # the directory form too, in a fresh home
    rm -rf "$PREFIX" "$XDG_STATE_HOME" "$XDG_CACHE_HOME"
    run unshare -n dash "$S/b/install.sh" --from "$S/b" --prefix "$PREFIX" -y </dev/null
    assert_success
    assert_output --partial "checking the bundle"
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX")
}

@test "one byte flipped in each bundled file in turn, one file removed, one added: each named, nothing installed" {
    run make_bundle "$S/b"
    assert_success
    cp -a "$S/b" "$S/pristine"
    n=0
    while IFS= read -r f; do
        rm -rf "$S/b" && cp -a "$S/pristine" "$S/b"
        size=$(stat -c %s "$S/b/$f")
        [ "$size" -gt 0 ] || continue
        # flip one byte in the middle
        off=$((size / 2))
        b=$(dd if="$S/b/$f" bs=1 skip="$off" count=1 status=none | od -An -tu1 | tr -d ' ')
        printf "$(printf '\\%03o' $(((b + 1) % 256)))" | dd of="$S/b/$f" bs=1 seek="$off" conv=notrunc status=none
        rc=0
        ONRAMP_HELPER=$H setsid -w dash "$REPO/install.sh" --from "$S/b" --prefix "$PREFIX" -y </dev/null >"$S/out" 2>&1 || rc=$?
        [ "$rc" = 7 ] || { echo "$f: exit $rc"; cat "$S/out"; return 1; }
        grep -qF "$f does not match the bundle's index" "$S/out" || { echo "$f not named"; cat "$S/out"; return 1; }
        [ ! -e "$PREFIX" ] || { echo "$f: something was installed"; return 1; }
        n=$((n + 1))
    done < <(jq -r '.files[].path' "$S/pristine/index.json")
    [ "$n" -ge 10 ]
    echo "# $n files altered in turn: each named, nothing installed" >&3
    # removed
    rm -rf "$S/b" && cp -a "$S/pristine" "$S/b"
    victim=$(jq -r '.files[] | select(.path | startswith("sha256/")) | .path' "$S/b/index.json" | head -n 1)
    rm "$S/b/$victim"
    run env ONRAMP_HELPER="$H" setsid -w dash "$REPO/install.sh" --from "$S/b" --prefix "$PREFIX" -y </dev/null
    assert_equal "$status" 7
    assert_output --partial "$victim is missing from the bundle"
    [ ! -e "$PREFIX" ]
    # added (a file the index does not list)
    rm -rf "$S/b" && cp -a "$S/pristine" "$S/b"
    echo evil >"$S/b/catalog/workers/hello/evil.sh"
    run env ONRAMP_HELPER="$H" setsid -w dash "$REPO/install.sh" --from "$S/b" --prefix "$PREFIX" -y </dev/null
    assert_equal "$status" 7
    assert_output --partial "catalog/workers/hello/evil.sh is not in the bundle's index"
    [ ! -e "$PREFIX" ]
    [ ! -e "$XDG_STATE_HOME/onramp/installs" ]
}

@test "an archive with an altered or missing member is refused while it streams, and nothing is left unpacked" {
    run make_bundle "$S/b.tar.zst"
    assert_success
    mkdir "$S/x"
    zstd -dc "$S/b.tar.zst" | tar -xf - -C "$S/x"
    model=$(cd "$S/x" && ls sha256 | head -n 1)
    printf 'X' | dd of="$S/x/sha256/$model" bs=1 seek=10 conv=notrunc status=none
    (cd "$S/x" && tar -cf - index.json $(jq -r '.files[].path' index.json)) | zstd -q -o "$S/bad.tar.zst"
    run env ONRAMP_HELPER="$H" setsid -w dash "$REPO/install.sh" --from "$S/bad.tar.zst" --prefix "$PREFIX" -y </dev/null
    assert_equal "$status" 7
    assert_output --partial "sha256/$model does not match the bundle's index"
    [ ! -e "$PREFIX" ]
    # a member missing
    (cd "$S/x" && tar -cf - index.json $(jq -r '.files[].path' index.json | grep -v "^sha256/$model$")) | zstd -q -o "$S/short.tar.zst"
    run "$H" bundle verify "$S/short.tar.zst"
    assert_equal "$status" 7
    assert_output --partial "sha256/$model is missing from the bundle"
    # not a bundle at all
    echo hi | zstd -q -o "$S/not.tar.zst"
    run "$H" bundle verify "$S/not.tar.zst"
    assert_equal "$status" 7
}

@test "bundle create killed at its durable operations resumes to the same bundle" {
    [ -n "$FH" ] || skip "needs the fault-hook build (tests/run.sh builds it)"
    run make_bundle "$S/ref"
    assert_success
    ONRAMP_FAULT_COUNTER=$S/count "$FH" bundle create --manifest "$T/m/manifest.json" --allow-http \
        --helper "linux-x86_64=$ONRAMP_TEST_HELPER" -o "$S/counted" >/dev/null 2>&1
    total=$(wc -l <"$S/count.log")
    [ "$total" -ge 20 ]
    step=$(( total / 20 ))
    [ "$step" -ge 1 ] || step=1
    [ "${ONRAMP_FAULT_SWEEP:-}" = full ] && step=1
    n=0
    for k in $(seq 1 "$step" "$total"); do
        rm -rf "$S/b" "$S"/cnt*
        rc=0
        ONRAMP_FAULT_COUNTER=$S/cnt ONRAMP_FAULT=crash@$k "$FH" bundle create --manifest "$T/m/manifest.json" --allow-http \
            --helper "linux-x86_64=$ONRAMP_TEST_HELPER" -o "$S/b" >"$S/o1" 2>&1 || rc=$?
        [ "$rc" = 137 ] || { echo "crash@$k: exit $rc"; cat "$S/o1"; return 1; }
        "$FH" bundle create --manifest "$T/m/manifest.json" --allow-http \
            --helper "linux-x86_64=$ONRAMP_TEST_HELPER" -o "$S/b" >"$S/o2" 2>&1 || { echo "crash@$k: rerun failed"; cat "$S/o2"; return 1; }
        diff -u "$S/ref/index.json" "$S/b/index.json" || { echo "crash@$k: another bundle"; return 1; }
        "$H" bundle verify "$S/b" >/dev/null
        n=$((n + 1))
    done
    echo "# bundle create: crashed at $n of $total operations, every rerun made the same bundle" >&3
    [ "$n" -ge 20 ]
}

@test "bundle create refuses what it cannot carry, and an unfinished directory it did not make" {
    mkdir -p "$S/full" && echo x >"$S/full/y"
    run make_bundle "$S/full"
    assert_equal "$status" 2
    assert_output --partial "is not empty; bundle into a new directory"
    run make_bundle "$S/t" --target linux-aarch64
    assert_success
    jq -e '.targets == ["linux-aarch64"]' "$S/t/index.json"
    jq '(.components[] | select(.id == "worker-hello") | .catalog.base) = "https://example.invalid/catalog"' "$T/m/manifest.json" >"$T/m/url.json"
    run "$H" bundle create --manifest "$T/m/url.json" --allow-http --helper "linux-x86_64=$ONRAMP_TEST_HELPER" -o "$S/u"
    assert_equal "$status" 3
    assert_output --partial "worker-hello: its recipe comes from a URL"
}

@test "bundle create SIGKILLed at random moments while it downloads (a slow nginx), then run again: the same bundle" {
    run make_bundle "$S/ref"
    assert_success
    nginx_stop
    nginx_start "$T/srv" 150k
    nginx_manifest "$T/m/manifest.json"
    for i in 1 2 3 4 5; do
        setsid "$H" bundle create --manifest "$T/m/manifest.json" --allow-http \
            --helper "linux-x86_64=$ONRAMP_TEST_HELPER" -o "$S/b" </dev/null >"$S/o$i" 2>&1 &
        pid=$!
        sleep "0.$((RANDOM % 9 + 1))"
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    run make_bundle "$S/b"
    assert_success
    # the same files (the manifest names another nginx port now)
    diff -u <(jq 'del(.files[] | select(.path == "manifest.json"))' "$S/ref/index.json") \
        <(jq 'del(.files[] | select(.path == "manifest.json"))' "$S/b/index.json")
    run "$H" bundle verify "$S/b"
    assert_success
    # what arrived before a kill was resumed, not fetched again from the start
    total=$(awk '{s += $3} END {print s}' "$NGINX_LOG")
    size=$(jq '[.components[].artifacts // {} | .[].size] | add' "$T/m/manifest.json")
    [ "$total" -lt $((size * 2)) ] || { echo "fetched $total bytes for $size"; return 1; }
}

@test "with a key trusted, a bundle's manifest must carry that key's signature (a bundle of an unsigned or otherwise-signed manifest is refused)" {
    mkdir -p "$S/keys"
    minisign -G -W -p "$S/keys/a.pub" -s "$S/keys/a.sec" >/dev/null
    minisign -G -W -p "$S/keys/b.pub" -s "$S/keys/b.sec" >/dev/null
    # unsigned
    run make_bundle "$S/plain"
    assert_success
    run env ONRAMP_TRUST_KEY="$S/keys/a.pub" "$H" bundle verify "$S/plain"
    assert_equal "$status" 7
    # signed by a: bundled with its .minisig, accepted with a, refused with b
    minisign -S -s "$S/keys/a.sec" -m "$T/m/manifest.json" >/dev/null </dev/null
    run make_bundle "$S/signed" --trust-key "$S/keys/a.pub"
    assert_success
    [ -f "$S/signed/manifest.json.minisig" ]
    run env ONRAMP_TRUST_KEY="$S/keys/a.pub" "$H" bundle verify "$S/signed"
    assert_success
    run env ONRAMP_TRUST_KEY="$S/keys/b.pub" "$H" bundle verify "$S/signed"
    assert_equal "$status" 7
    # the bundle's own install.sh trusts a's key: it installs
    run setsid -w dash "$S/signed/install.sh" --from "$S/signed" --prefix "$PREFIX" -y </dev/null
    assert_success
}

@test "r2 class 5: a signed bundle pins every byte it makes onramp read: a configure source changed with the unsigned index is refused at use, a signed manifest with an unpinned source is refused, an archive's signature is checked before any other member is written" {
    mkdir -p "$S/keys"
    minisign -G -W -p "$S/keys/a.pub" -s "$S/keys/a.sec" >/dev/null
    minisign -G -W -p "$S/keys/b.pub" -s "$S/keys/b.sec" >/dev/null
    minisign -S -s "$S/keys/a.sec" -m "$T/m/manifest.json" >/dev/null </dev/null
    run make_bundle "$S/signed" --trust-key "$S/keys/a.pub"
    assert_success
    # the attack: the configure source and the (unsigned) index, changed together
    printf '{"evil": true}\n' >"$S/signed/config/models.json"
    local n h
    n=$(stat -c %s "$S/signed/config/models.json")
    h=$(sha256sum <"$S/signed/config/models.json" | cut -c1-64)
    jq --argjson n "$n" --arg h "$h" '(.files[] | select(.path == "config/models.json")) |= (.size = $n | .sha256 = $h)' \
        "$S/signed/index.json" >"$S/i.json"
    mv "$S/i.json" "$S/signed/index.json"
    # the index alone cannot tell: the bundle still verifies
    run env ONRAMP_TRUST_KEY="$S/keys/a.pub" "$H" bundle verify "$S/signed"
    assert_success
    # but the signed manifest pins the file, checked when it is used
    run setsid -w dash "$S/signed/install.sh" --from "$S/signed" --prefix "$PREFIX" -y </dev/null
    assert_failure
    assert_output --partial "config/models.json has sha256 $h, but the manifest pins"
    if [ -e "$PREFIX/config/models.json" ]; then fails grep -q evil "$PREFIX/config/models.json"; fi
    # a signed manifest that names a source without its sha256 is refused
    # (bundle create, and an install of the stack directory)
    jq '(.configure.files[] | select(.path == "config/models.json")) |= del(.sha256)' "$T/m/manifest.json" >"$S/u.json"
    mv "$S/u.json" "$T/m/manifest.json"
    minisign -S -s "$S/keys/a.sec" -m "$T/m/manifest.json" >/dev/null </dev/null
    run make_bundle "$S/unpinned" --trust-key "$S/keys/a.pub"
    assert_equal "$status" 3
    assert_output --partial "a signed manifest must pin its source \"config/models.json\" with \"sha256\""
    run env ONRAMP_TRUST_KEY="$S/keys/a.pub" "$H" plan --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    # an archive carries the signed members right after its index ...
    nginx_manifest "$T/m/manifest.json"
    minisign -S -s "$S/keys/a.sec" -m "$T/m/manifest.json" >/dev/null </dev/null
    run make_bundle "$S/good.tar.zst" --trust-key "$S/keys/a.pub"
    assert_success
    run bash -c "zstd -dc '$S/good.tar.zst' | tar -tf - | head -n 3"
    assert_output "$(printf 'index.json\nmanifest.json\nmanifest.json.minisig')"
    # ... so a forged one (signed by another key, then 64 MiB) is refused
    # before anything else is written
    run make_bundle "$S/f" --trust-key "$S/keys/a.pub"
    assert_success
    minisign -S -s "$S/keys/b.sec" -m "$S/f/manifest.json" -x "$S/f/manifest.json.minisig" >/dev/null </dev/null
    head -c 67108864 /dev/zero >"$S/f/big"
    local z
    z=$(sha256sum <"$S/f/big" | cut -c1-64)
    jq --arg z "$z" --argjson n "$(stat -c %s "$S/f/manifest.json.minisig")" --arg m "$(sha256sum <"$S/f/manifest.json.minisig" | cut -c1-64)" \
        '.files |= (map(if .path == "manifest.json.minisig" then .size = $n | .sha256 = $m else . end) + [{path: "big", size: 67108864, sha256: $z}])' \
        "$S/f/index.json" >"$S/i.json"
    mv "$S/i.json" "$S/f/index.json"
    (cd "$S/f" && tar -cf - index.json manifest.json manifest.json.minisig big $(jq -r '.files[].path' index.json | grep -vx 'manifest.json\|manifest.json.minisig\|big') | zstd -q -o "$S/forged.tar.zst")
    run strace -f -qq -e trace=openat -o "$S/strace" env ONRAMP_TRUST_KEY="$S/keys/a.pub" "$H" bundle unpack "$S/forged.tar.zst" -o "$S/out"
    assert_equal "$status" 7
    assert_output --partial "out/manifest.json is signed by a key this install does not trust"
    grep -q "$S/out/manifest.json" "$S/strace"
    fails grep -q "$S/out/big" "$S/strace"
    [ ! -e "$S/out" ]
    # the same members in another order (a big one first) are refused as
    # soon as that member comes
    (cd "$S/f" && tar -cf - index.json big manifest.json manifest.json.minisig | zstd -q -o "$S/early.tar.zst")
    run env ONRAMP_TRUST_KEY="$S/keys/a.pub" "$H" bundle unpack "$S/early.tar.zst" -o "$S/out"
    assert_equal "$status" 7
    assert_output --partial "big comes before the signed manifest"
    [ ! -e "$S/out" ]
    # a signed member listed larger than it may be is refused before it is
    # written
    jq '(.files[] | select(.path == "manifest.json")) |= (.size = 1073741824)' "$S/f/index.json" >"$S/f/i3"
    (cd "$S/f" && cp i3 index.json && tar -cf - index.json manifest.json | zstd -q -o "$S/bigman.tar.zst")
    run env ONRAMP_TRUST_KEY="$S/keys/a.pub" "$H" bundle unpack "$S/bigman.tar.zst" -o "$S/out"
    assert_equal "$status" 7
    assert_output --partial "manifest.json is listed at 1073741824 bytes, more than the 4194304 it may have"
    [ ! -e "$S/out" ]
    # an index that claims more than the disk holds: refused before unpacking
    jq '.files[-1].size = 4503599627370496' "$S/f/index.json" >"$S/f/i2"
    mv "$S/f/i2" "$S/f/index.json"
    (cd "$S/f" && tar -cf - index.json manifest.json manifest.json.minisig | zstd -q -o "$S/huge.tar.zst")
    run "$H" bundle unpack "$S/huge.tar.zst" -o "$S/out"
    assert_equal "$status" 4
    assert_output --partial "unpacking it needs"
    [ ! -e "$S/out" ]
}
