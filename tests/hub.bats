#!/usr/bin/env bats
# Models from the Hugging Face Hub and OCI registries. The test servers
# first, each checked against the real clients: tests/hub/hf_endpoint.py
# (the hub's resolve and API routes, a signed-URL CDN) against
# huggingface_hub, and Debian's docker-registry (distribution 2.8) behind
# tests/hub/token_server.py against the oras SDK and curl. The Python
# packages come from target/pydeps (tests/run.sh installs them).

load lib/common
load lib/nginx
load hub/registry
load hub/hf

setup() {
    # The server checks need no helper; tests that run onramp get
    # tests/run.sh's.
    export ONRAMP_TEST_HELPER=${ONRAMP_TEST_HELPER:-$REPO/target/debug/onramp}
    common_setup
    unset HF_TOKEN HF_ENDPOINT HF_HUB_CACHE
}

teardown() {
    hf_stop
    registry_stop
    nginx_stop
    common_teardown
}

sha256_of() { sha256sum <"$1" | cut -c1-64; }

# The git blob id of a file (what the hub sends as a small file's ETag).
git_blob_id() {
    { printf 'blob %d\0' "$(stat -c %s "$1")"; cat "$1"; } | sha1sum | cut -c1-40
}

# hf_download REPO FILE: hf_hub_download's path, or the exception's class name.
hf_download() {
    hf_python - "$1" "$2" <<'PY'
import sys
from huggingface_hub import hf_hub_download
try:
    print(hf_hub_download(sys.argv[1], sys.argv[2]))
except Exception as e:
    print(type(e).__name__)
    sys.exit(1)
PY
}

@test "the HF test endpoint speaks the hub's protocol" {
    local data=$T/hf
    local c g
    c=$(hf_repo "$data" org/model)
    mkdir -p "$c/weights"
    head -c $((3 * 1024 * 1024)) /dev/urandom >"$c/weights/model.bin"
    printf '{"model_type": "test"}\n' >"$c/config.json"
    g=$(hf_repo "$data" org/gated)
    head -c 5000 /dev/urandom >"$g/model.bin"
    hf_start "$data" --token hf_test_token --gated org/gated
    local commit sha cache=$T/hf-cache/models--org--model
    commit=$(basename "$c")
    sha=$(sha256_of "$c/weights/model.bin")

    run hf_download org/model weights/model.bin
    assert_success
    assert_output "$cache/snapshots/$commit/weights/model.bin"
    [ "$(sha256_of "$output")" = "$sha" ]
    [ -f "$cache/blobs/$sha" ]
    [ "$(readlink -f "$cache/snapshots/$commit/weights/model.bin")" = "$cache/blobs/$sha" ]
    [ "$(cat "$cache/refs/main")" = "$commit" ]
    run hf_download org/model config.json
    assert_success
    cmp "$output" "$c/config.json"
    [ -f "$cache/blobs/$(git_blob_id "$c/config.json")" ]

    # what the client maps the hub's errors to
    run hf_download org/model missing.bin
    assert_failure
    assert_output RemoteEntryNotFoundError
    run hf_download org/nothing config.json
    assert_output RepositoryNotFoundError
    run hf_python -c 'from huggingface_hub import hf_hub_download; hf_hub_download("org/model", "config.json", revision="v9")'
    assert_output --partial RevisionNotFoundError

    # gated: refused without the token, served with it; the CDN never sees it
    run hf_download org/gated model.bin
    assert_failure
    assert_output GatedRepoError
    HF_TOKEN=hf_test_token run hf_download org/gated model.bin
    assert_success
    [ "$(sha256_of "$output")" = "$(sha256_of "$g/model.bin")" ]
    HF_TOKEN=wrong HF_HUB_CACHE=$T/hf-cache2 run hf_download org/gated model.bin
    assert_failure
    assert_output HfHubHTTPError
    grep -qx 'HEAD /org/gated/resolve/main/model.bin 401 AUTH=yes' "$HF_LOG"
    grep -qx 'HEAD /org/gated/resolve/main/model.bin 401 AUTH=no' "$HF_LOG"
    grep -qx 'HEAD /org/gated/resolve/main/model.bin 302 AUTH=yes' "$HF_LOG"
    grep -qx "GET /blobs/$sha 200 AUTH=no RANGE=- $((3 * 1024 * 1024))" "$HF_CDN_LOG"
    grep -qx "GET /blobs/$(sha256_of "$g/model.bin") 200 AUTH=no RANGE=- 5000" "$HF_CDN_LOG"
    run grep -vc ' AUTH=no ' "$HF_CDN_LOG"
    assert_output 0

    # the CDN's signed URLs: ranges, 416, a tampered signature; the API route
    local loc
    loc=$(curl -sS --cacert "$HF_CA" -o /dev/null -w '%{redirect_url}' "$HF_URL/org/model/resolve/main/weights/model.bin")
    [[ $loc == "$HF_CDN_URL/blobs/$sha?expires="* ]]
    [ "$(curl -sS --cacert "$HF_CA" -r 1000-1999 "$loc" | sha256sum)" = "$(tail -c +1001 "$c/weights/model.bin" | head -c 1000 | sha256sum)" ]
    run curl -sS --cacert "$HF_CA" -o /dev/null -w '%{http_code} %{header_json}' -r 1000- "$loc"
    assert_output --partial '206 '
    assert_output --partial "\"content-range\":[\"bytes 1000-3145727/3145728\"]"
    run curl -sS --cacert "$HF_CA" -o /dev/null -w '%{http_code}' -r 3145728- "$loc"
    assert_output 416
    run curl -sS --cacert "$HF_CA" -o /dev/null -w '%{http_code}' "${loc%sig=*}sig=0"
    assert_output 403
    run curl -sS --cacert "$HF_CA" "$HF_URL/api/models/org/model/revision/main"
    assert_success
    [ "$(jq -r .sha <<<"$output")" = "$commit" ]
    [ "$(jq -c '[.siblings[].rfilename]' <<<"$output")" = '["config.json","weights/model.bin"]' ]
    run curl -sS --cacert "$HF_CA" -o /dev/null -w '%{http_code}' "$HF_URL/api/models/org/gated/revision/main"
    assert_output 401
}

# registry_fetch REPO DIGEST FILE: the manifest by digest and its first
# layer, with curl; under a token challenge the token dance by hand (the
# 401's realm, service and scope, a token for the credentials, then Bearer).
registry_fetch() {
    local repo=$1 digest=$2 file=$3 accept=application/vnd.oci.image.manifest.v1+json
    local hdr=() challenge realm service scope token
    challenge=$(curl -sS --cacert "$REGISTRY_CA" -o /dev/null -D - -H "Accept: $accept" \
        "$REGISTRY_URL/v2/$repo/manifests/$digest" | tr -d '\r' | sed -n 's/^[Ww]ww-[Aa]uthenticate: //p')
    if [ -n "$challenge" ]; then
        [[ $challenge == Bearer\ * ]]
        realm=$(sed -n 's/.*realm="\([^"]*\)".*/\1/p' <<<"$challenge")
        service=$(sed -n 's/.*service="\([^"]*\)".*/\1/p' <<<"$challenge")
        scope=$(sed -n 's/.*scope="\([^"]*\)".*/\1/p' <<<"$challenge")
        [ "$realm" = "$TOKEN_URL" ] && [ "$service" = "$REGISTRY_SERVICE" ] && [ "$scope" = "repository:$repo:pull" ]
        # no credentials and no --anonymous-pull: no token
        [ "$(curl -sS --cacert "$REGISTRY_CA" -o /dev/null -w '%{http_code}' -G "$realm" \
            --data-urlencode "service=$service" --data-urlencode "scope=$scope")" = 401 ]
        token=$(curl -fsS --cacert "$REGISTRY_CA" -u "$REGISTRY_USER:$REGISTRY_PASSWORD" -G "$realm" \
            --data-urlencode "service=$service" --data-urlencode "scope=$scope" | jq -r .token)
        hdr=(-H "Authorization: Bearer $token")
    fi
    curl -fsS --cacert "$REGISTRY_CA" "${hdr[@]}" -H "Accept: $accept" "$REGISTRY_URL/v2/$repo/manifests/$digest" >"$T/manifest.json"
    [ "sha256:$(sha256_of "$T/manifest.json")" = "$digest" ]
    curl -fsS --cacert "$REGISTRY_CA" "${hdr[@]}" -o "$file" \
        "$REGISTRY_URL/v2/$repo/blobs/$(jq -r '.layers[0].digest' "$T/manifest.json")"
}

@test "the test registry serves ORAS pushes by digest, with and without the token challenge" {
    head -c $((2 * 1024 * 1024)) /dev/urandom >"$T/model.gguf"
    local digest mode
    for mode in plain auth; do
        if [ "$mode" = auth ]; then
            registry_start "$T/reg-$mode" --auth
        else
            registry_start "$T/reg-$mode"
        fi
        digest=$(oci_push models/tiny:v1 "$T/model.gguf" application/vnd.example.gguf.v1 tiny.gguf)
        [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]]
        registry_fetch models/tiny "$digest" "$T/got-$mode"
        [ "$(sha256_of "$T/got-$mode")" = "$(sha256_of "$T/model.gguf")" ]
        jq -e '.layers | length == 1 and .[0].mediaType == "application/vnd.example.gguf.v1"
               and .[0].annotations["org.opencontainers.image.title"] == "tiny.gguf"' "$T/manifest.json"
        grep -q "GET /v2/models/tiny/blobs/sha256:$(sha256_of "$T/model.gguf") HTTP/[0-9.]*\" 200" "$REGISTRY_LOG"
        registry_stop
    done
    # the token server saw the push (oci_push) and the pull (curl) with credentials
    grep -qx 'GET /token 200 BASIC=yes USER=onramp SCOPE=repository:models/tiny:pull+push GRANTED=models/tiny:pull+push' "$TOKEN_LOG"
    grep -qx 'GET /token 200 BASIC=yes USER=onramp SCOPE=repository:models/tiny:pull GRANTED=models/tiny:pull' "$TOKEN_LOG"
    grep -qx 'GET /token 401 BASIC=no USER=- SCOPE=repository:models/tiny:pull GRANTED=-' "$TOKEN_LOG"
    # several layers in one manifest, anonymous pull allowed
    registry_start "$T/reg-anon" --auth --anonymous-pull
    printf '{"model_type": "test"}\n' >"$T/config.json"
    digest=$(oci_push models/two:v1 "$T/model.gguf:application/vnd.example.gguf.v1" "$T/config.json:application/json:cfg.json")
    run curl -fsS --cacert "$REGISTRY_CA" -G "$TOKEN_URL" --data-urlencode "service=$REGISTRY_SERVICE" \
        --data-urlencode "scope=repository:models/two:pull,push"
    assert_success
    token=$(jq -r .token <<<"$output")
    run curl -fsS --cacert "$REGISTRY_CA" -H "Authorization: Bearer $token" \
        -H "Accept: application/vnd.oci.image.manifest.v1+json" "$REGISTRY_URL/v2/models/two/manifests/$digest"
    assert_success
    [ "$(jq -c '[.layers[].annotations["org.opencontainers.image.title"]]' <<<"$output")" = '["model.gguf","cfg.json"]' ]
    grep -qx 'GET /token 200 BASIC=no USER=- SCOPE=repository:models/two:pull+push GRANTED=models/two:pull' "$TOKEN_LOG"
}

# The hub cache as a listing: every path with its type, a link's target and
# a file's sha256 (what "left as it was" compares).
hub_snapshot() {
    (cd "$1" && find . -mindepth 1 | sort | while read -r p; do
        if [ -L "$p" ]; then echo "$p -> $(readlink "$p")"
        elif [ -f "$p" ]; then echo "$p $(sha256sum <"$p" | cut -c1-64)"
        else echo "$p/"; fi
    done)
}

# hf_manifest OUT STACK: a stack of two models from the test hub: chat (a
# 3 MiB LFS file, placed in the hub cache too) and gated, both on "main".
hf_manifest() {
    jq -n --arg stack "$2" '{schema: 1, name: $stack, version: "1.0.0", components: [
        {id: "model-chat", kind: "model", install_path: "models/chat.gguf", hub_cache: true,
         artifacts: {any: {hf: {repo: "org/chat", file: "chat.gguf", revision: "main"}}},
         unlocks: {capability: "chat", message: "You can now use: chat"}},
        {id: "model-gated", kind: "model", install_path: "models/gated.bin",
         artifacts: {any: {hf: {repo: "org/gated", file: "gated.bin"}}}}]}' >"$1"
}

@test "hf models: lock pins main with nothing downloaded, a gated repo is named (exit 16), the token goes to the hub alone and is never written, and huggingface_hub finds the placed file" {
    local data=$T/hf tok=hf_TESTTOKEN_7f3a9c
    local c g
    c=$(hf_repo "$data" org/chat)
    head -c $((3 * 1024 * 1024)) /dev/urandom >"$c/chat.gguf"
    g=$(hf_repo "$data" org/gated)
    head -c 5000 /dev/urandom >"$g/gated.bin"
    hf_start "$data" --token "$tok" --gated org/gated
    export HF_ENDPOINT=$HF_URL SSL_CERT_FILE=$HF_CA HF_HOME=$T/hf-home HF_HUB_CACHE=$T/hf-cache
    # What another tool left in the hub cache before: kept as it is.
    mkdir -p "$HF_HUB_CACHE/models--other--m/blobs"
    echo old >"$HF_HUB_CACHE/models--other--m/blobs/x"
    hub_snapshot "$HF_HUB_CACHE" >"$T/hub-before"
    mkdir -p "$T/w"
    hf_manifest "$T/w/manifest.json" hubstack

    # Unlocked: refused, with the fix named.
    run "$H" plan --manifest "$T/w/manifest.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial 'hf.revision: "main" is a branch or tag, not a commit; run `onramp lock --manifest FILE` to pin it'
    run "$H" release --manifest "$T/w/manifest.json" --base-url https://example.invalid/s -o "$T/rel"
    assert_equal "$status" 3
    assert_output --partial "onramp lock"

    # lock without the token: the gated repo is named, nothing written
    run "$H" lock --manifest "$T/w/manifest.json"
    assert_equal "$status" 16
    assert_output --partial "model-gated (components[1].artifacts.any): Hugging Face repository org/gated is gated: accept its terms at $HF_URL/org/gated and set HF_TOKEN"
    [ ! -e "$T/w/manifest.lock.json" ]
    # with it: pinned from the hub's headers, no file downloaded
    HF_TOKEN=$tok run "$H" lock --manifest "$T/w/manifest.json"
    assert_success
    assert_output --partial "locked 2 sources into $T/w/manifest.lock.json"
    local lockf=$T/w/manifest.lock.json commit
    commit=$(basename "$c")
    [ "$(jq -r '.components[0].artifacts.any.hf.revision' "$lockf")" = "$commit" ]
    [ "$(jq -r '.components[0].artifacts.any.hf.branch' "$lockf")" = main ]
    [ "$(jq -r '.components[0].artifacts.any.sha256' "$lockf")" = "$(sha256_of "$c/chat.gguf")" ]
    [ "$(jq -r '.components[0].artifacts.any.size' "$lockf")" = $((3 * 1024 * 1024)) ]
    [ "$(jq -r '.components[1].artifacts.any.hf.revision' "$lockf")" = "$(basename "$g")" ]
    [ "$(jq -r '.components[1].artifacts.any.sha256' "$lockf")" = "$(sha256_of "$g/gated.bin")" ]
    [ ! -s "$HF_CDN_LOG" ]
    run grep -c '^GET ' "$HF_LOG"
    assert_output 0
    schema_valid "$lockf"
    # Locking a locked manifest keeps its commits and checks its sums there
    # (headers only); a sum edited by hand is put right.
    : >"$HF_LOG"
    jq '.components[0].artifacts.any.size = 5' "$lockf" >"$T/w/edited.json"
    HF_TOKEN=$tok run "$H" lock --manifest "$T/w/edited.json" -o "$T/w/again.json"
    assert_success
    assert_output --partial "locked 1 source into $T/w/again.json; 1 already pinned, checked and kept"
    cmp <(jq -S . "$lockf") <(jq -S . "$T/w/again.json")
    run grep -vc "^HEAD /org/[a-z]*/resolve/[0-9a-f]\{40\}/" "$HF_LOG"
    assert_output 0
    # A branch that would name a file outside refs/ is refused.
    jq '.components[0].artifacts.any.hf.branch = "../../../../x"' "$lockf" >"$T/w/bad-branch.json"
    run "$H" plan --manifest "$T/w/bad-branch.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial 'hf.branch: "../../../../x" is not a branch or tag name'

    # Install without the token: chat installs, gated fails with exit 16.
    run onramp_install --manifest "$lockf" --prefix "$PREFIX"
    assert_equal "$status" 16
    assert_output --partial "failed   model-gated: model-gated: Hugging Face repository org/gated is gated"
    assert_output --partial "set HF_TOKEN"
    cmp "$PREFIX/models/chat.gguf" "$c/chat.gguf"
    # The token from huggingface_hub's login file; children's command lines
    # and everything onramp writes are watched for it.
    mkdir -p "$HF_HOME"
    printf '%s\n' "$tok" >"$HF_HOME/token"
    onramp_install --manifest "$lockf" --prefix "$PREFIX" --yes --events "$T/ev.ndjson" --summary-json "$T/summary.json" \
        >"$T/out.txt" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        # every process's but the test hub's own (it is given the token)
        for f in /proc/[0-9]*/cmdline; do
            [ "$f" != "/proc/$HF_PID/cmdline" ] || continue
            tr '\0' ' ' <"$f" 2>/dev/null || true
            echo
        done >>"$T/cmdlines"
    done
    wait "$pid"
    cmp "$PREFIX/models/gated.bin" "$g/gated.bin"
    grep -q 'hubstack 1.0.0 is installed' "$T/out.txt"
    [ -s "$T/cmdlines" ]
    run grep -rlF "$tok" "$T/cmdlines" "$T/ev.ndjson" "$T/summary.json" "$T/out.txt" "$XDG_STATE_HOME" "$XDG_CACHE_HOME" "$PREFIX" "$HF_HUB_CACHE"
    assert_output ""
    # The token reached the hub, never the CDN the hub redirects to.
    grep -q "^GET /org/gated/resolve/$(basename "$g")/gated.bin 302 AUTH=yes$" "$HF_LOG"
    grep -q "^GET /blobs/$(sha256_of "$g/gated.bin") 20[06] AUTH=no " "$HF_CDN_LOG"
    run grep -c ' AUTH=yes ' "$HF_CDN_LOG"
    assert_output 0

    # huggingface_hub finds the placed file offline, with the same bytes.
    local sha
    sha=$(sha256_of "$c/chat.gguf")
    run hf_python -c 'from huggingface_hub import hf_hub_download; print(hf_hub_download("org/chat", "chat.gguf", local_files_only=True))'
    assert_success
    assert_output "$HF_HUB_CACHE/models--org--chat/snapshots/$commit/chat.gguf"
    [ "$(sha256_of "$output")" = "$sha" ]
    [ "$(readlink "$output")" = "../../blobs/$sha" ]
    [ "$(cat "$HF_HUB_CACHE/models--org--chat/refs/main")" = "$commit" ]

    # A second stack with its own onramp cache takes the model from the
    # hub cache: verified, nothing downloaded.
    hf_manifest "$T/w2.json" otherstack
    jq --slurpfile l "$lockf" '.components |= [.[0] | .artifacts = $l[0].components[0].artifacts]' "$T/w2.json" >"$T/w/second.json"
    local before
    before=$(wc -l <"$HF_CDN_LOG")
    run "$H" plan --manifest "$T/w/second.json" --prefix "$T/p2"
    assert_output --partial "model-chat: found in the Hugging Face cache (verified when taken), nothing to download"
    assert_output --partial "0 B to download at most"
    ONRAMP_CACHE_DIR=$T/cache2 run onramp_install --manifest "$T/w/second.json" --prefix "$T/p2"
    assert_success
    assert_output --partial "model-chat: found in the Hugging Face cache (verified), nothing to download"
    cmp "$T/p2/models/chat.gguf" "$c/chat.gguf"
    [ "$(wc -l <"$HF_CDN_LOG")" = "$before" ]

    # A bundle carries the hub's files: installed with no network at all.
    HF_TOKEN=$tok run "$H" bundle create --manifest "$lockf" -o "$T/b"
    assert_success
    run "$H" bundle verify "$T/b"
    assert_success
    [ -f "$T/b/sha256/$sha" ] && [ -f "$T/b/sha256/$(sha256_of "$g/gated.bin")" ]
    HF_HUB_CACHE=$T/hf-cache3 ONRAMP_CACHE_DIR=$T/cache3 run unshare -n dash "$T/b/install.sh" --from "$T/b" --prefix "$T/p3" -y </dev/null
    assert_success
    cmp "$T/p3/models/gated.bin" "$g/gated.bin"
    [ "$(readlink "$T/hf-cache3/models--org--chat/snapshots/$commit/chat.gguf")" = "../../blobs/$sha" ]
    run onramp_install --uninstall --prefix "$T/p3"
    assert_success

    # Uninstalling both leaves the hub cache as it was before.
    run onramp_install --uninstall --prefix "$T/p2"
    assert_success
    run onramp_install --uninstall --prefix "$PREFIX"
    assert_success
    assert_output --partial "removed what model-chat added to the Hugging Face cache"
    hub_snapshot "$HF_HUB_CACHE" >"$T/hub-after"
    diff "$T/hub-before" "$T/hub-after"
}

# oci_manifest OUT REF: one model, a layer of REF picked by media type.
oci_manifest() {
    jq -n --arg ref "$2" '{schema: 1, name: "ocistack", version: "1.0.0", components: [
        {id: "model-oci", kind: "model", install_path: "models/tiny.gguf",
         artifacts: {any: {oci: {ref: $ref, media_type: "application/vnd.example.gguf.v1"}}}}]}' >"$1"
}

@test "oci models: lock a tag with only the manifest fetched, pull by digest through a mirror across a kill -9, a tampered blob refused, the token challenge with docker's config" {
    local size=$((8 * 1024 * 1024)) digest sha lockf=$T/w/manifest.lock.json
    head -c "$size" /dev/urandom >"$T/tiny.gguf"
    sha=$(sha256_of "$T/tiny.gguf")
    registry_start "$T/reg"
    export SSL_CERT_FILE=$REGISTRY_CA
    digest=$(oci_push models/tiny:v1 "$T/tiny.gguf" application/vnd.example.gguf.v1)
    mkdir -p "$T/w"
    oci_manifest "$T/w/manifest.json" "$REGISTRY_HOST/models/tiny:v1"
    run "$H" plan --manifest "$T/w/manifest.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial 'names a tag, not a manifest digest; run `onramp lock'
    run "$H" lock --manifest "$T/w/manifest.json"
    assert_success
    [ "$(jq -r '.components[0].artifacts.any.oci.ref' "$lockf")" = "$REGISTRY_HOST/models/tiny@$digest" ]
    [ "$(jq -r '.components[0].artifacts.any.oci.tag' "$lockf")" = v1 ]
    [ "$(jq -r '.components[0].artifacts.any.sha256' "$lockf")" = "$sha" ]
    [ "$(jq -r '.components[0].artifacts.any.size' "$lockf")" = "$size" ]
    grep -q 'GET /v2/models/tiny/manifests/v1 ' "$REGISTRY_LOG"
    run grep -c "GET /v2/models/tiny/blobs/sha256:$sha " "$REGISTRY_LOG"
    assert_output 0

    # Through a rate-limited mirror (nginx proxying the registry), killed
    # mid-blob and resumed: the bytes already here are kept.
    NGINX_TLS=$T/reg NGINX_EXTRA="server { listen 127.0.0.1:@PORT2@ ssl;
        ssl_certificate $T/reg/srv.pem; ssl_certificate_key $T/reg/srv.key;
        access_log $T/mirror.log ranges;
        location / { proxy_pass https://$REGISTRY_HOST; proxy_ssl_verify off;
                     proxy_set_header Host $REGISTRY_HOST; limit_rate 1m; } }"
    mkdir -p "$T/empty"
    nginx_start "$T/empty"
    export ONRAMP_REGISTRY_MIRROR="$REGISTRY_HOST=127.0.0.1:$NGINX_PORT2"
    start_install_bg --manifest "$lockf" --prefix "$PREFIX" --connections 2
    local part=$XDG_CACHE_HOME/onramp/partial/$sha.part i
    for i in $(seq 200); do
        [ "$(grep -c "^/v2/models/tiny/blobs/sha256:$sha 206" "$T/mirror.log" 2>/dev/null)" -ge 2 ] && break
        sleep 0.05
    done
    sleep 1
    kill_bg
    [ -e "$part" ]
    [ ! -e "$PREFIX/models/tiny.gguf" ]
    run onramp_install --manifest "$lockf" --prefix "$PREFIX" --yes
    assert_success
    assert_output --partial "model-oci: resuming"
    cmp "$PREFIX/models/tiny.gguf" "$T/tiny.gguf"
    local sent
    sent=$(awk -v p="/v2/models/tiny/blobs/sha256:$sha" '$1 == p { s += $3 } END { print s }' "$T/mirror.log")
    [ "$sent" -lt $((size * 3 / 2)) ]
    # Every blob request went through the mirror (the registry saw only
    # what the mirror passed on).
    [ "$(grep -c "GET /v2/models/tiny/blobs/sha256:$sha " "$REGISTRY_LOG")" = \
        "$(grep -c "^/v2/models/tiny/blobs/sha256:$sha " "$T/mirror.log")" ]
    unset ONRAMP_REGISTRY_MIRROR

    # A blob changed in the registry's storage: refused, nothing placed.
    local blob=$T/reg/storage/docker/registry/v2/blobs/sha256/${sha:0:2}/$sha/data
    [ -f "$blob" ]
    printf 'X' | dd of="$blob" bs=1 seek=1000 conv=notrunc 2>/dev/null
    ONRAMP_CACHE_DIR=$T/cache-t run onramp_install --manifest "$lockf" --prefix "$T/p-t"
    assert_equal "$status" 9
    assert_output --partial "failed   model-oci: model-oci: https://$REGISTRY_HOST/v2/models/tiny/blobs/sha256:$sha does not match the manifest"
    [ ! -e "$T/p-t/models/tiny.gguf" ]
    [ ! -e "$T/cache-t/sha256/$sha" ]
    registry_stop
    nginx_stop

    # Behind a token challenge that grants anonymous pulls: a token with no
    # credentials, asked for without Basic auth.
    registry_start "$T/reg-anon" --auth --anonymous-pull
    export SSL_CERT_FILE=$REGISTRY_CA
    digest=$(oci_push models/tiny:v1 "$T/tiny.gguf" application/vnd.example.gguf.v1)
    oci_manifest "$T/w/manifest.json" "$REGISTRY_HOST/models/tiny:v1"
    run "$H" lock --manifest "$T/w/manifest.json" -o "$T/w/anon.lock.json"
    assert_success
    ONRAMP_CACHE_DIR=$T/cache-n run onramp_install --manifest "$T/w/anon.lock.json" --prefix "$T/p-n"
    assert_success
    cmp "$T/p-n/models/tiny.gguf" "$T/tiny.gguf"
    grep -q "GET /token 200 BASIC=no USER=- SCOPE=repository:models/tiny:pull GRANTED=models/tiny:pull" "$TOKEN_LOG"
    registry_stop

    # Behind the token challenge: no credentials is exit 16 naming the fix;
    # ONRAMP_REGISTRY_AUTH locks, docker's config installs.
    registry_start "$T/reg2" --auth
    export SSL_CERT_FILE=$REGISTRY_CA
    digest=$(oci_push models/tiny:v1 "$T/tiny.gguf" application/vnd.example.gguf.v1)
    oci_manifest "$T/w/manifest.json" "$REGISTRY_HOST/models/tiny:v1"
    run "$H" lock --manifest "$T/w/manifest.json" -o "$T/w/auth.lock.json"
    assert_equal "$status" 16
    assert_output --partial "registry $REGISTRY_HOST asks for credentials: set ONRAMP_REGISTRY_AUTH=$REGISTRY_HOST=USER:PASSWORD"
    ONRAMP_REGISTRY_AUTH="$REGISTRY_HOST=$REGISTRY_USER:$REGISTRY_PASSWORD" run "$H" lock --manifest "$T/w/manifest.json" -o "$T/w/auth.lock.json"
    assert_success
    [ "$(jq -r '.components[0].artifacts.any.oci.ref' "$T/w/auth.lock.json")" = "$REGISTRY_HOST/models/tiny@$digest" ]
    ONRAMP_CACHE_DIR=$T/cache-a run onramp_install --manifest "$T/w/auth.lock.json" --prefix "$T/p-a"
    assert_equal "$status" 16
    mkdir -p "$T/docker"
    jq -n --arg h "$REGISTRY_HOST" --arg a "$(printf '%s:%s' "$REGISTRY_USER" "$REGISTRY_PASSWORD" | base64)" \
        '{auths: {($h): {auth: $a}}}' >"$T/docker/config.json"
    DOCKER_CONFIG=$T/docker ONRAMP_CACHE_DIR=$T/cache-a run onramp_install --manifest "$T/w/auth.lock.json" --prefix "$T/p-a" --yes
    assert_success
    cmp "$T/p-a/models/tiny.gguf" "$T/tiny.gguf"
    grep -q "GET /token 200 BASIC=yes USER=onramp SCOPE=repository:models/tiny:pull GRANTED=models/tiny:pull" "$TOKEN_LOG"
    run grep -rlF "$REGISTRY_PASSWORD" "$XDG_STATE_HOME" "$T/p-a" "$T/cache-a"
    assert_output ""
}

@test "hf mirrors and stores: a mirror laid out as the hub is used first and gets no token; a blob in a store the manifest names is verified and taken, a wrong one is not" {
    local commit sha
    commit=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
    mkdir -p "$T/mirror/org/chat/resolve/$commit" "$T/w"
    head -c $((1024 * 1024)) /dev/urandom >"$T/mirror/org/chat/resolve/$commit/chat.gguf"
    sha=$(sha256_of "$T/mirror/org/chat/resolve/$commit/chat.gguf")
    make_ca "$T"
    # The mirror answers 403 to anything that carries a credential.
    NGINX_TLS=$T NGINX_EXTRA="server { listen 127.0.0.1:@PORT2@ ssl;
        ssl_certificate $T/srv.pem; ssl_certificate_key $T/srv.key; root $T/mirror;
        access_log $T/mirror.log ranges; if (\$http_authorization) { return 403; } }" nginx_start "$T/mirror"
    export SSL_CERT_FILE=$T/ca.pem HF_HUB_CACHE=$T/hf-cache
    # The hub itself is not reachable: only the mirror can serve it.
    export HF_ENDPOINT=https://127.0.0.1:9 HF_TOKEN=hf_TESTTOKEN_mirror
    jq -n --arg base "https://127.0.0.1:$NGINX_PORT2" --arg c "$commit" --arg sha "$sha" '{schema: 1, name: "mirrored", version: "1.0.0",
        mirrors: [$base], components: [{id: "model-chat", kind: "model", install_path: "models/chat.gguf",
        hub_cache: true, artifacts: {any: {hf: {repo: "org/chat", file: "chat.gguf", revision: $c}, sha256: $sha, size: 1048576}}}]}' \
        >"$T/w/manifest.json"
    # --offline: nothing is asked of the mirror or the hub.
    run onramp_install --manifest "$T/w/manifest.json" --prefix "$PREFIX" --offline
    assert_equal "$status" 9
    assert_output --partial "model-chat: not in the cache and --offline is set (needs hf:org/chat@$commit/chat.gguf)"
    [ ! -s "$T/mirror.log" ]
    run onramp_install --manifest "$T/w/manifest.json" --prefix "$PREFIX" --yes
    assert_success
    cmp "$PREFIX/models/chat.gguf" "$T/mirror/org/chat/resolve/$commit/chat.gguf"
    grep -q "^/org/chat/resolve/$commit/chat.gguf 206 " "$T/mirror.log"
    run grep -c " 403 " "$T/mirror.log"
    assert_output 0

    # stores: an ollama-style blobs directory holds it (named sha256-HEX);
    # a second directory first holds a wrong file under the right name.
    mkdir -p "$T/bad" "$T/ollama/blobs"
    head -c $((1024 * 1024)) /dev/zero >"$T/bad/$sha"
    cp "$T/mirror/org/chat/resolve/$commit/chat.gguf" "$T/ollama/blobs/sha256-$sha"
    jq --arg a "$T/bad" --arg b "$T/ollama/blobs" '.name = "stored" | .stores = [$a, $b] | del(.mirrors)' \
        "$T/w/manifest.json" >"$T/w/stored.json"
    : >"$T/mirror.log"
    HF_HUB_CACHE=$T/hf-cache2 ONRAMP_CACHE_DIR=$T/cache2 run onramp_install --manifest "$T/w/stored.json" --prefix "$T/p2"
    assert_success
    assert_output --partial "model-chat: $T/bad/$sha is not what its name says; not used"
    assert_output --partial "model-chat: found in $T/ollama/blobs (verified), nothing to download"
    cmp "$T/p2/models/chat.gguf" "$T/ollama/blobs/sha256-$sha"
    [ ! -s "$T/mirror.log" ]
    [ "$(sha256_of "$T/bad/$sha")" != "$sha" ]

    # As root, a hub cache another user can write is not written into.
    [ "$(id -u)" = 0 ] || return 0
    mkdir -p "$T/user-hub/models--org--chat"
    chown -R nobody "$T/user-hub/models--org--chat"
    HF_HUB_CACHE=$T/user-hub ONRAMP_CACHE_DIR=$T/cache3 run onramp_install --manifest "$T/w/stored.json" --prefix "$T/p3"
    assert_equal "$status" 9
    assert_output --partial "set HF_HUB_CACHE (or HF_HOME) to a directory only root can write"
    [ -z "$(find "$T/user-hub" -mindepth 2)" ]
}
