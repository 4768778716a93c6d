#!/usr/bin/env bats
# Shipping a stack: `onramp release` of the demo, signed with Debian's real
# minisign, served by nginx over https (a test CA) on loopback, installed
# with the one-liner `curl ... | sh` and nothing else. Refusals (tampered,
# other key, unsigned, rollback, expired) must come before any artifact is
# requested (nginx's access log), reruns fetch nothing, upgrades fetch only
# what changed, and a copy of the release on a second server works as is.

load lib/common
load lib/nginx

# The release served at $URL/stack is www/$1 (v1, v2, ...).
serve() { ln -sfn "$1" "$WWW/stack"; }

# release NAME MANIFEST [ARGS]: `onramp release` into www/NAME, for /stack.
release() {
    local name=$1 man=$2
    shift 2
    "$ONRAMP_TEST_HELPER" release --manifest "$man" --base-url "$URL/stack" -o "$WWW/$name" "$@" >/dev/null
    chmod -R a+rX "$WWW/$name"
}

setup_file() {
    command -v minisign >/dev/null || skip "minisign is not installed"
    F=$BATS_FILE_TMPDIR
    chmod 755 "$F"
    mkdir -p "$F/tls" "$F/keys" "$F/www" "$F/m1" "$F/m2" "$F/bad"
    make_ca "$F/tls"
    minisign -G -W -p "$F/keys/a.pub" -s "$F/keys/a.sec" >/dev/null
    minisign -G -W -p "$F/keys/b.pub" -s "$F/keys/b.sec" >/dev/null
    WWW=$F/www
    NGINX_TLS=$F/tls nginx_start "$WWW"
    URL=$NGINX_URL
    export F WWW URL NGINX_DIR NGINX_LOG NGINX_PORT
    # v1: the demo as it is (serial 1).
    release v1 "$DEMO" --minisign-key "$F/keys/a.sec"
    # v2: the chat model changed, the vision model dropped (serial 2).
    { printf 'ONRAMP-DEMO-MODEL chat\n'; head -c 30000 /dev/urandom; } | head -c 30000 >"$F/m2/chat-v2.bin"
    local sha
    sha=$(sha256sum <"$F/m2/chat-v2.bin" | cut -c1-64)
    jq --arg sha "$sha" '.version = "1.1.0" | .serial = 2
        | .components |= map(select(.id != "model-vision"))
        | .health_checks |= map(select(.component != "model-vision"))
        | .components |= map(if .id == "model-chat" then .artifacts.any = {"path": "m2/chat-v2.bin", "size": 30000, "sha256": $sha} else . end)' \
        "$DEMO" >"$F/m2/manifest.json"
    mkdir -p "$F/m2/m2" && mv "$F/m2/chat-v2.bin" "$F/m2/m2/"
    link_demo_dirs "$F/m2"
    release v2 "$F/m2/manifest.json" --minisign-key "$F/keys/a.sec"
    # Bad releases, each a whole directory as a hostile mirror would serve.
    release other-key "$DEMO" --minisign-key "$F/keys/b.sec"
    cp -a "$WWW/v1" "$WWW/unsigned" && rm "$WWW/unsigned/manifest.json.minisig"
    cp -a "$WWW/v1" "$WWW/tampered"
    sed -i 's/"size": 12000/"size": 12001/' "$WWW/tampered/manifest.json"
    jq '.expires = "2001-01-01T00:00:00Z"' "$DEMO" >"$F/bad/manifest.json"
    link_demo_dirs "$F/bad"
    release expired "$F/bad/manifest.json" --minisign-key "$F/keys/a.sec"
    serve v1
}

teardown_file() { nginx_stop; }

setup() {
    common_setup
    INSTALLED=$HOME/.local/share/onramp-demo
    CA=$F/tls/ca.pem
}

# one_liner SHELL [ARGS]: curl URL/stack/install.sh | SHELL [-s -- ARGS].
one_liner() {
    local sh=$1
    shift
    # shellcheck disable=SC2086
    curl --proto '=https' --tlsv1.2 --cacert "$CA" -fsSL "$URL/stack/install.sh" |
        ONRAMP_CA_FILE=$CA setsid -w $sh ${1:+-s -- "$@"}
}

log_mark() { wc -l <"$NGINX_LOG"; }
# Artifacts (models, server, worker sources) requested since mark $1.
artifacts_since() { tail -n "+$(($1 + 1))" "$NGINX_LOG" | grep -E '/(artifacts|catalog|m2)/' || true; }

@test "the release directory: install.sh, helper, signed manifest, every file named, SHA256SUMS that verify" {
    cd "$WWW/v1"
    [ -x install.sh ]
    [ -f "onramp-0.1.0-$("$H" target)" ]
    minisign -V -p "$F/keys/a.pub" -m manifest.json >/dev/null
    sha256sum -c --quiet SHA256SUMS
    for p in $(jq -r '.components[].artifacts[]?.path // empty' manifest.json); do [ -f "$p" ]; done
    [ -f catalog/workers/hello/index.json ] && [ -f catalog/workers/hello/PKGBUILD ]
    # baked in: base URL, stack, manifest, the signing key, the helper pin
    grep -q "onramp_rel_base='$URL/stack'" install.sh
    grep -q "onramp_rel_manifest='$URL/stack/manifest.json'" install.sh
    grep -q "onramp_rel_keys='$(tail -n 1 "$F/keys/a.pub")'" install.sh
    grep -q "linux-x86_64) printf '$(sha256sum <"onramp-0.1.0-linux-x86_64" | cut -c1-64)'" install.sh
    # configure's local file is inlined: a manifest fetched by URL names none
    [ "$(jq -r '.configure.files[] | select(.path == "config/models.json") | has("source")' manifest.json)" = false ]
    shellcheck -s sh install.sh
}

@test "a worker pinned by recipe.path: release and bundle carry its local source; the one-liner builds it; a missing one is refused by name" {
    local s=$T/rs
    mkdir -p "$s/recipes/hello"
    link_demo_dirs "$s"
    cp "$REPO/examples/demo/catalog/workers/hello/PKGBUILD" "$REPO/examples/demo/catalog/workers/hello/hello-worker-1.0.0.tar.gz" "$s/recipes/hello/"
    local rsha
    rsha=$(sha256sum <"$s/recipes/hello/PKGBUILD" | cut -c1-64)
    jq --arg sha "$rsha" '.components |= map(if .id == "worker-hello" then del(.catalog) | .recipe = {"path": "recipes/hello/PKGBUILD", "sha256": $sha} else . end)' \
        "$DEMO" >"$s/manifest.json"
    "$H" release --manifest "$s/manifest.json" --base-url "$URL/rs" -o "$WWW/rs" --minisign-key "$F/keys/a.sec" >/dev/null
    chmod -R a+rX "$WWW/rs"
    [ -f "$WWW/rs/recipes/hello/hello-worker-1.0.0.tar.gz" ]
    (cd "$WWW/rs" && grep -q " recipes/hello/hello-worker-1.0.0.tar.gz\$" SHA256SUMS && sha256sum -c --quiet SHA256SUMS)
    # what a user runs: the worker's source comes from beside its recipe
    run bash -c 'curl --proto "=https" --tlsv1.2 --cacert "$1" -fsSL "$2/rs/install.sh" | ONRAMP_CA_FILE=$1 setsid -w sh' _ "$CA" "$URL"
    assert_success
    [ -x "$INSTALLED/workers/worker-hello/bin/hello-worker" ]
    grep -qE '^/rs/recipes/hello/hello-worker-1.0.0.tar.gz 20[06] ' "$NGINX_LOG"
    # the source gone from the server: its status, and no advice meant for
    # another command (a fresh cache, so nothing comes from the first run)
    mv "$WWW/rs/recipes/hello/hello-worker-1.0.0.tar.gz" "$T/kept.tar.gz"
    run env XDG_CACHE_HOME="$T/cache2" bash -c 'curl --proto "=https" --tlsv1.2 --cacert "$1" -fsSL "$2/rs/install.sh" | ONRAMP_CA_FILE=$1 setsid -w sh -s -- --prefix "$3"' _ "$CA" "$URL" "$T/p404"
    mv "$T/kept.tar.gz" "$WWW/rs/recipes/hello/hello-worker-1.0.0.tar.gz"
    assert_equal "$status" 9
    assert_output --partial "hello-worker-1.0.0.tar.gz: HTTP 404: the server does not have it"
    refute_output --partial "--size"
    # piped from curl there is no install.sh file: the undo hint is the one-liner, and it works as printed
    local hint
    hint=$(printf '%s\n' "$output" | sed -n 's/.*or undo it with: //p')
    [ "$hint" = "curl --proto '=https' --tlsv1.2 -fsSL $URL/rs/install.sh | sh -s -- --uninstall --prefix $T/p404" ]
    [ -d "$T/p404" ]
    run env CURL_CA_BUNDLE="$CA" ONRAMP_CA_FILE="$CA" XDG_CACHE_HOME="$T/cache2" bash -c "$hint"
    assert_success
    assert_output --regexp "the download cache is kept \(--purge-cache removes it; later, \`/[^ ]*onramp[^ ]* cache prune\` frees what no install uses\)"
    [ ! -e "$T/p404" ]
    # a bundle carries it too
    run "$H" bundle create --manifest "$s/manifest.json" -o "$T/b"
    assert_success
    cmp "$s/recipes/hello/hello-worker-1.0.0.tar.gz" "$T/b/recipes/hello/hello-worker-1.0.0.tar.gz"
    run "$H" bundle verify "$T/b"
    assert_success
    # a bundle made without it (an older onramp): verify names it
    rm "$T/b/recipes/hello/hello-worker-1.0.0.tar.gz"
    jq '.files |= map(select(.path != "recipes/hello/hello-worker-1.0.0.tar.gz"))' "$T/b/index.json" >"$T/index.json"
    mv "$T/index.json" "$T/b/index.json"
    run "$H" bundle verify "$T/b"
    assert_equal "$status" 7
    assert_output --partial "recipes/hello/hello-worker-1.0.0.tar.gz"
    assert_output --partial "is not in the bundle"
    # a source the recipe names but the stack lacks: refused, named, nothing written
    rm "$s/recipes/hello/hello-worker-1.0.0.tar.gz"
    run "$H" release --manifest "$s/manifest.json" --base-url "$URL/rs2" -o "$T/rs2" --minisign-key "$F/keys/a.sec"
    assert_failure
    assert_output --partial "hello-worker-1.0.0.tar.gz"
    assert_output --partial "beside the recipe"
    [ ! -e "$T/rs2/manifest.json" ]
}

@test "helpers for other targets are copied and pinned, never run" {
    printf '#!/bin/sh\ntouch "%s/ran"\n' "$T" >"$T/onramp-arm"
    chmod 755 "$T/onramp-arm"
    "$H" release --manifest "$DEMO" --base-url https://x.example/s -o "$T/r" \
        --helper "linux-aarch64=$T/onramp-arm" --helper "linux-x86_64=$H" >/dev/null 2>&1
    cmp "$T/r/onramp-0.1.0-linux-aarch64" "$T/onramp-arm"
    grep -q "linux-aarch64) printf '$(sha256sum <"$T/onramp-arm" | cut -c1-64)'" "$T/r/install.sh"
    grep -q "linux-x86_64) printf '$(sha256sum <"$H" | cut -c1-64)'" "$T/r/install.sh"
    [ ! -e "$T/ran" ]
    run "$H" release --manifest "$DEMO" --base-url https://x.example/s -o "$T/r2" --helper "sparc-9=$T/onramp-arm"
    assert_equal "$status" 2
    assert_output --partial 'unknown target "sparc-9"'
}

@test "two releases of the same inputs are byte-identical" {
    "$H" release --manifest "$DEMO" --base-url "$URL/stack" -o "$T/r1" --minisign-key "$F/keys/a.sec" >/dev/null
    "$H" release --manifest "$DEMO" --base-url "$URL/stack" -o "$T/r2" --minisign-key "$F/keys/a.sec" >/dev/null
    diff -r "$T/r1" "$T/r2"
    diff -r "$T/r1" "$WWW/v1"
}

@test "release refuses what it cannot ship: no serial, a wrong sha256, a dynamic helper, a non-empty directory" {
    demo_variant "$T/m/manifest.json" 'del(.serial)'
    run "$H" release --manifest "$T/m/manifest.json" --base-url https://x.example/s -o "$T/o1"
    assert_equal "$status" 3
    assert_output --partial 'has no "serial"'
    demo_variant "$T/m/manifest.json" '.components[1].artifacts.any.sha256 = ("0" * 64)'
    run "$H" release --manifest "$T/m/manifest.json" --base-url https://x.example/s -o "$T/o2"
    assert_equal "$status" 7
    assert_output --partial "is not what the manifest says"
    [ ! -e "$T/o2/artifacts/vision-base.bin" ]
    if [ -x "${ONRAMP_TEST_HELPER_DYN:-}" ]; then
        run "$ONRAMP_TEST_HELPER_DYN" release --manifest "$DEMO" --base-url https://x.example/s -o "$T/o3"
        assert_equal "$status" 2
        assert_output --partial "is not statically linked"
    fi
    run "$H" release --manifest "$DEMO" --base-url http://x.example/s -o "$T/o4"
    assert_equal "$status" 2
    run "$H" release --manifest "$DEMO" --base-url "https://x.example/s'\$(id)" -o "$T/o5"
    assert_equal "$status" 2
    run "$H" release --manifest "$DEMO" --base-url https://x.example/s -o "$WWW/v1"
    assert_equal "$status" 2
    assert_output --partial "is not empty"
}

@test "a configure source beside the manifest's directory is inlined by release, and a bundle, which copies it, refuses it" {
    demo_variant "$T/m/manifest.json" '.configure.files[1].source = "../shared/models.json"'
    mkdir -p "$T/shared"
    cp "$REPO/examples/demo/config/models.json" "$T/shared/"
    "$H" release --manifest "$T/m/manifest.json" --base-url https://x.example/s -o "$T/r" >/dev/null 2>&1
    jq -e --rawfile want "$T/shared/models.json" \
        '.configure.files[1] | .content == $want and (has("source") | not)' "$T/r/manifest.json" >/dev/null
    [ ! -e "$T/r/shared" ] && [ ! -e "$T/shared/r" ]
    run "$H" bundle create --manifest "$T/m/manifest.json" -o "$T/b"
    assert_equal "$status" 3
    assert_output --partial 'configure.files[1].source "../shared/models.json" is not below the manifest'
}

@test "the one-liner with no arguments installs the golden tree under all seven shells; wget too; sh -s -- --prefix X -y" {
    local sh n=0
    for sh in dash "bash --posix" "busybox ash" mksh posh yash "zsh --emulate sh"; do
        command -v "${sh%% *}" >/dev/null || continue
        export HOME=$T/h$n XDG_CACHE_HOME=$T/h$n/.cache XDG_STATE_HOME=$T/h$n/.state
        mkdir -p "$HOME"
        run one_liner "$sh"
        [ "$status" = 0 ] || { echo "$sh: exit $status: $output" >&2; return 1; }
        diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$HOME/.local/share/onramp-demo") ||
            { echo "$sh: tree differs" >&2; return 1; }
        echo "# $sh: golden tree" >&3
        n=$((n + 1))
    done
    [ "$n" -ge 2 ]
    export HOME=$T/w XDG_CACHE_HOME=$T/w/.cache XDG_STATE_HOME=$T/w/.state
    mkdir -p "$HOME"
    printf 'ca_certificate = %s\n' "$CA" >"$T/wgetrc"
    run bash -c 'WGETRC=$0 wget --https-only --secure-protocol=TLSv1_2 -qO- "$1/stack/install.sh" | ONRAMP_CA_FILE=$2 setsid -w sh' "$T/wgetrc" "$URL" "$CA"
    assert_success
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$HOME/.local/share/onramp-demo")
    run one_liner dash --prefix "$T/custom" -y
    assert_success
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$T/custom")
}

@test "environment variables configure the one-liner: ONRAMP_PREFIX, ONRAMP_DRY_RUN; a bad value is a usage error" {
    run bash -c 'curl --cacert "$1" -fsSL "$2/stack/install.sh" | ONRAMP_CA_FILE=$1 ONRAMP_PREFIX=$3 ONRAMP_DRY_RUN=1 setsid -w sh' _ "$CA" "$URL" "$T/p"
    assert_success
    assert_output --partial "model-chat"
    [ ! -e "$T/p" ]
    run bash -c 'curl --cacert "$1" -fsSL "$2/stack/install.sh" | ONRAMP_CA_FILE=$1 ONRAMP_YES=maybe setsid -w sh' _ "$CA" "$URL"
    assert_equal "$status" 2
    assert_output --partial "ONRAMP_YES=maybe: use 1 or 0"
}

@test "refused before any artifact is requested: tampered, another key, unsigned, expired (exit 7); plain http manifest (exit 2); two keys trusted (rotation)" {
    local mark what
    for what in tampered other-key unsigned expired; do
        mark=$(log_mark)
        run one_liner dash --manifest "$URL/$what/manifest.json" -y
        [ "$status" = 7 ] || { echo "$what: exit $status: $output" >&2; return 1; }
        case $what in
        tampered) assert_output --partial "does not match its signature" ;;
        other-key) assert_output --partial "signed by a key this install does not trust" ;;
        unsigned) assert_output --partial "is not signed" ;;
        expired) assert_output --partial "expired at 2001-01-01T00:00:00Z"; assert_output --partial "--allow-expired" ;;
        esac
        [ -z "$(artifacts_since "$mark")" ] || { echo "$what: artifacts requested: $(artifacts_since "$mark")" >&2; return 1; }
        [ ! -e "$INSTALLED" ]
    done
    # a key given to a checkout's install.sh is enforced the same way
    run env ONRAMP_HELPER="$H" ONRAMP_TRUST_KEY="$F/keys/b.pub" sh "$REPO/install.sh" --manifest "$DEMO" --prefix "$T/x" </dev/null
    assert_equal "$status" 7
    assert_output --partial "is not signed"
    run one_liner dash --manifest "http://127.0.0.1:$NGINX_PORT/v1/manifest.json"
    assert_equal "$status" 2
    assert_output --partial "only https://"
    # rotation: with the new key trusted too, the manifest it signed installs
    run env ONRAMP_TRUST_KEY="$F/keys/b.pub" bash -c 'curl --cacert "$1" -fsSL "$2/stack/install.sh" | ONRAMP_CA_FILE=$1 setsid -w sh -s -- --manifest "$2/other-key/manifest.json" --prefix "$3"' _ "$CA" "$URL" "$T/rotated"
    assert_success
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$T/rotated")
    # --allow-expired is the air-gapped site's way through
    run one_liner dash --manifest "$URL/expired/manifest.json" --allow-expired
    assert_success
    assert_output --partial "installing it anyway"
}

@test "README's key rotation: release with the old key and --trust-key new.pub, then sign with the new key: users upgrade through both" {
    # release's help says what --trust-key means to it, and lists only its own options
    run "$H" release --help
    assert_success
    assert_output --partial "a minisign public key the released installers trust"
    assert_output --partial "the input manifest is not checked against it"
    refute_output --partial "--connections"
    refute_output --partial "--prefix"
    # step 7, first release: signed with a, its install.sh also trusts b
    mkdir -p "$T/rot"
    jq '.serial = 5' "$DEMO" >"$T/rot/manifest.json"
    link_demo_dirs "$T/rot"
    run "$H" release --manifest "$T/rot/manifest.json" --base-url "$URL/rot1" -o "$WWW/rot1" \
        --minisign-key "$F/keys/a.sec" --trust-key "$F/keys/b.pub"
    assert_success
    chmod -R a+rX "$WWW/rot1"
    minisign -V -p "$F/keys/a.pub" -m "$WWW/rot1/manifest.json" >/dev/null
    grep -q "$(tail -n 1 "$F/keys/a.pub")" "$WWW/rot1/install.sh"
    grep -q "$(tail -n 1 "$F/keys/b.pub")" "$WWW/rot1/install.sh"
    run bash -c 'curl --cacert "$1" -fsSL "$2/rot1/install.sh" | ONRAMP_CA_FILE=$1 setsid -w sh -s -- --prefix "$3"' _ "$CA" "$URL" "$T/p"
    assert_success
    # later releases: signed with the new key only
    jq '.serial = 6' "$DEMO" >"$T/rot/manifest.json"
    run "$H" release --manifest "$T/rot/manifest.json" --base-url "$URL/rot2" -o "$WWW/rot2" --minisign-key "$F/keys/b.sec"
    assert_success
    chmod -R a+rX "$WWW/rot2"
    ! grep -q "$(tail -n 1 "$F/keys/a.pub")" "$WWW/rot2/install.sh"
    # a machine still holding the first install.sh accepts the new key's manifest
    run bash -c 'curl --cacert "$1" -fsSL "$2/rot1/install.sh" | ONRAMP_CA_FILE=$1 setsid -w sh -s -- --manifest "$2/rot2/manifest.json" --prefix "$3" -y' _ "$CA" "$URL" "$T/p"
    assert_success
    # and the new one-liner upgrades too; the old key alone is no longer enough
    run bash -c 'curl --cacert "$1" -fsSL "$2/rot2/install.sh" | ONRAMP_CA_FILE=$1 setsid -w sh -s -- --prefix "$3" -y' _ "$CA" "$URL" "$T/p"
    assert_success
    run bash -c 'curl --cacert "$1" -fsSL "$2/rot2/install.sh" | ONRAMP_CA_FILE=$1 setsid -w sh -s -- --manifest "$2/v1/manifest.json" --prefix "$3" -y' _ "$CA" "$URL" "$T/q"
    assert_equal "$status" 7
    assert_output --partial "signed by a key this install does not trust"
}

# readme_fleet N: README's Nth fleet snippet (0 cloud-init, 1 Ansible), with
# the mirror's URL made $2 and the prefix $3.
readme_fleet() {
    python3 - "$REPO/README.md" "$1" "$2" "$3" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
s = s[s.index("Fleet tools must see"):]
b = re.findall(r"```yaml\n(.*?)```", s, re.S)[int(sys.argv[2])]
b = "\n".join(l[3:] for l in b.splitlines())
print(b.replace("https://mirror.corp/stack", sys.argv[3]).replace("/opt/stack", sys.argv[4]))
PY
}

@test "README's fleet snippets fail when the download fails: Ansible (ansible-core, localhost) and cloud-init's runcmd under /bin/sh" {
    local ap=$REPO/target/pydeps/bin/ansible-playbook
    [ -x "$ap" ] || skip "ansible-core is not installed (tests/run.sh installs it into target/pydeps)"
    cp -a "$WWW/v1" "$WWW/noinst" && rm "$WWW/noinst/install.sh"
    cp -a "$WWW/v1" "$WWW/noman" && rm "$WWW/noman/manifest.json"
    export CURL_CA_BUNDLE=$CA ONRAMP_CA_FILE=$CA LANG=C.UTF-8 ANSIBLE_LOCALHOST_WARNING=false \
        ANSIBLE_INVENTORY_UNPARSED_WARNING=false ANSIBLE_NOCOLOR=1 ANSIBLE_HOME=$T/ansible
    local dir
    play() {
        { printf -- '- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n'
          readme_fleet 1 "$URL/$1" "$T/fleet" | sed 's/^/    /'; } >"$T/play.yml"
        PYTHONPATH=$REPO/target/pydeps "$ap" -i localhost, "$T/play.yml" \
            -e "ansible_python_interpreter=$(python3 -c 'import sys; print(sys.executable)')"
    }
    run play v1
    assert_success
    assert_output --regexp "localhost +: ok=1 +changed=1 +unreachable=0 +failed=0"
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$T/fleet")
    run play v1
    assert_success
    assert_output --regexp "localhost +: ok=1 +changed=0 +unreachable=0 +failed=0"
    for dir in noinst noman; do
        run play "$dir"
        assert_failure
        assert_output --regexp "localhost +: ok=0 +changed=0 +unreachable=0 +failed=1"
    done
    # cloud-init writes runcmd's items into one script run by /bin/sh
    for dir in noinst v1; do
        { printf '#!/bin/sh\n'; readme_fleet 0 "$URL/$dir" "$T/ci" | sed -n '/^ *- |$/,$p' | tail -n +2 | sed 's/^    //'; } >"$T/runcmd"
        run sh "$T/runcmd"
        if [ "$dir" = noinst ]; then
            assert_failure
            [ ! -e "$T/ci" ]
        else
            assert_success
            diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$T/ci")
        fi
    done
}

@test "a rerun of the same release fetches no artifact, changes nothing, says so, exit 0" {
    run one_liner dash
    assert_success
    local before mark
    before=$(snapshot "$INSTALLED")
    mark=$(log_mark)
    run one_liner dash
    assert_success
    assert_output --partial "already installed"
    assert_output --partial "nothing to do"
    [ -z "$(artifacts_since "$mark")" ]
    [ "$(snapshot "$INSTALLED")" = "$before" ]
}

@test "upgrade v1 -> v2: only the changed model is fetched, the dropped one is removed, the rest untouched; then a rollback to v1 is refused" {
    run one_liner dash
    assert_success
    local mark embed_before worker_before
    embed_before=$(stat -c '%i %Y' "$INSTALLED/models/embed-small.bin")
    worker_before=$(stat -c '%i %Y' "$INSTALLED/workers/worker-hello/bin/hello-worker")
    serve v2
    mark=$(log_mark)
    run one_liner dash
    serve v1
    assert_success
    assert_output --partial "upgrade model-chat (sha256 changed)"
    assert_output --partial "remove model-vision (dropped from the manifest or the profile)"
    assert_output --partial "unchanged: 4"
    # the stack has a worker; it is unchanged, not absent
    assert_output --partial "nothing to do for its 1 worker(s)"
    refute_output --partial "no workers in this stack"
    [ "$(artifacts_since "$mark" | awk '{print $1}' | sort -u)" = "/stack/m2/chat-v2.bin" ]
    [ ! -e "$INSTALLED/models/vision-base.bin" ]
    cmp "$INSTALLED/models/chat-tiny.bin" "$F/m2/m2/chat-v2.bin"
    [ "$(stat -c '%i %Y' "$INSTALLED/models/embed-small.bin")" = "$embed_before" ]
    [ "$(stat -c '%i %Y' "$INSTALLED/workers/worker-hello/bin/hello-worker")" = "$worker_before" ]
    # the same tree as a clean install of v2
    serve v2
    HOME=$T/clean XDG_CACHE_HOME=$T/clean/.cache XDG_STATE_HOME=$T/clean/.state run one_liner dash
    assert_success
    diff -u <(tree_listing "$T/clean/.local/share/onramp-demo") <(tree_listing "$INSTALLED")
    # v1 again is a rollback: refused before anything is fetched
    serve v1
    mark=$(log_mark)
    run one_liner dash
    assert_equal "$status" 7
    assert_output --partial "that is a rollback"
    assert_output --partial "--allow-downgrade"
    [ -z "$(artifacts_since "$mark")" ]
    cmp "$INSTALLED/models/chat-tiny.bin" "$F/m2/m2/chat-v2.bin"
}

@test "kill -9 during an upgrade, then the one-liner again: the same tree as a clean v2 install" {
    serve v2
    HOME=$T/clean XDG_CACHE_HOME=$T/clean/.cache XDG_STATE_HOME=$T/clean/.state run one_liner dash
    assert_success
    # how long an upgrade takes here, to spread the kill points over it
    local i t0 dur at
    serve v1 && one_liner dash >/dev/null 2>&1 && serve v2
    t0=$(date +%s%N)
    one_liner dash >/dev/null 2>&1
    dur=$((($(date +%s%N) - t0) / 1000000))
    for i in 1 2 3 4; do
        rm -rf "$HOME" "$XDG_CACHE_HOME" "$XDG_STATE_HOME" && mkdir -p "$HOME"
        serve v1 && one_liner dash >/dev/null 2>&1 && serve v2
        at=$((RANDOM % (dur + 1)))
        setsid bash -c 'curl --cacert "$1" -fsSL "$2/stack/install.sh" | ONRAMP_CA_FILE=$1 dash' _ "$CA" "$URL" >"$T/bg.out" 2>&1 &
        local bg=$!
        sleep "$(printf '%d.%03d' $((at / 1000)) $((at % 1000)))"
        kill -9 -- "-$bg" 2>/dev/null || true
        wait "$bg" 2>/dev/null || true
        run one_liner dash -y
        [ "$status" = 0 ] || { echo "kill at $at ms: rerun exit $status: $output" >&2; return 1; }
        diff -u <(tree_listing "$T/clean/.local/share/onramp-demo") <(tree_listing "$INSTALLED") ||
            { echo "kill at $at ms of $dur: tree differs" >&2; return 1; }
        [ ! -e "$INSTALLED/models/vision-base.bin" ]
        echo "# kill at $at ms of $dur: converged" >&3
    done
    serve v1
}

@test "a copy of the release on a second server (an internal mirror) installs with --manifest URL and nothing from the first" {
    mkdir -p "$T/mirror"
    cp -a "$WWW/v1" "$T/mirror/stack"
    chmod -R a+rX "$T/mirror"
    local first_log=$NGINX_LOG first_dir=$NGINX_DIR mark
    mark=$(log_mark)
    NGINX_TLS=$F/tls nginx_start "$T/mirror"
    local mirror=$NGINX_URL
    run bash -c 'curl --cacert "$1" -fsSL "$2/stack/install.sh" | ONRAMP_CA_FILE=$1 setsid -w sh -s -- --manifest "$2/stack/manifest.json"' _ "$CA" "$mirror"
    nginx_stop
    NGINX_LOG=$first_log NGINX_DIR=$first_dir
    assert_success
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$INSTALLED")
    # the first server saw nothing at all
    [ "$(log_mark)" = "$mark" ]
}

@test "air-gapped: the release directory copied onto the machine installs offline from disk, its signature still enforced" {
    cp -a "$WWW/v1" "$T/out"
    run setsid -w sh "$T/out/install.sh" --manifest "$T/out/manifest.json" --from "$T/out" --offline </dev/null
    assert_success
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$INSTALLED")
    cp -a "$WWW/v1" "$T/out2"
    sed -i 's/"version": "1.0.0"/"version": "1.0.1"/' "$T/out2/manifest.json"
    run setsid -w sh "$T/out2/install.sh" --manifest "$T/out2/manifest.json" --from "$T/out2" --offline --prefix "$T/p2" </dev/null
    assert_equal "$status" 7
    assert_output --partial "does not match its signature"
    [ ! -e "$T/p2" ]
}

@test "bundle create --manifest https://...: a published release bundled by its URL, signature checked, the same files as bundling its directory; it installs in unshare -n" {
    local mark
    mark=$(log_mark)
    run "$H" bundle create --manifest "$URL/stack/manifest.json" --trust-key "$F/keys/a.pub" --ca-file "$CA" -o "$T/bu"
    assert_success
    # everything it names came from beside the manifest's URL
    artifacts_since "$mark" | grep -q '^/stack/artifacts/'
    artifacts_since "$mark" | grep -q '^/stack/catalog/workers/hello/'
    run "$H" bundle verify "$T/bu" --trust-key "$F/keys/a.pub"
    assert_success
    # the same bundle as one made from the release directory itself
    "$H" bundle create --manifest "$WWW/v1/manifest.json" --trust-key "$F/keys/a.pub" -o "$T/bd" >/dev/null
    diff <(jq -c '.files' "$T/bd/index.json") <(jq -c '.files' "$T/bu/index.json")
    if command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
        run unshare -n setsid -w sh "$T/bu/install.sh" --from "$T/bu" --prefix "$T/air" -y </dev/null
        assert_success
        diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$T/air")
    fi
    # refused before anything it names is requested: another key's, tampered (exit 7); plain http (exit 2)
    mark=$(log_mark)
    run "$H" bundle create --manifest "$URL/tampered/manifest.json" --trust-key "$F/keys/a.pub" --ca-file "$CA" -o "$T/bt"
    assert_equal "$status" 7
    run "$H" bundle create --manifest "$URL/other-key/manifest.json" --trust-key "$F/keys/a.pub" --ca-file "$CA" -o "$T/bo"
    assert_equal "$status" 7
    [ -z "$(artifacts_since "$mark")" ]
    run "$H" bundle create --manifest "http://127.0.0.1:9/manifest.json" -o "$T/bh"
    assert_equal "$status" 2
    assert_output --partial "only https://"
}

@test "an upgrade that moves a model removes the old file; a worker dropped takes its files and empty directories with it" {
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    demo_variant "$T/m2/manifest.json" '.serial = 2
        | .components |= map(if .id == "model-embed" then .install_path = "models/embed/embed-small.bin" else . end)
        | .components |= map(select(.id != "worker-hello"))
        | .health_checks |= map(select(.component != "worker-hello" and .component != "model-embed"))'
    run onramp_install --manifest "$T/m2/manifest.json" --prefix "$PREFIX"
    assert_success
    assert_output --partial "upgrade model-embed (its definition changed)"
    assert_output --partial "remove worker-hello (dropped from the manifest or the profile)"
    [ ! -e "$PREFIX/models/embed-small.bin" ]
    cmp "$PREFIX/models/embed/embed-small.bin" "$REPO/examples/demo/artifacts/embed-small.bin"
    [ ! -e "$PREFIX/workers" ]
    [ "$(jq -r '.capabilities | join(",")' "$PREFIX/capabilities.json")" = "chat,embeddings,rag,server,vision" ]
}
