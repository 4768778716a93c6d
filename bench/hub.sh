#!/usr/bin/env bash
# Models from hubs, measured in one run on loopback, with figures and ratios:
#   1. a model from the test Hugging Face endpoint (tests/hub/hf_endpoint.py:
#      the resolve URL answers 302 to a signed CDN URL): onramp (install.sh,
#      time to "installed", verification and placement included) beside
#      curl -L and aria2c -x8 against the same resolve URL
#   2. the same bytes as a layer in Debian's docker-registry (pull by
#      digest): onramp beside curl and aria2c against the blob URL
#   3. reuse: a second stack (its own onramp cache) whose model is already
#      in the warm hub cache: time to "installed" and bytes on the wire
#      (from the CDN's access log)
# Usage: bench/hub.sh [SIZE_MIB (default 1024)] [N connections (default 8)]
# Needs what tests/run.sh installs (docker-registry, huggingface_hub's and
# oras's Python packages in target/pydeps) and aria2c, curl, GNU time.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
MIB=${1:-1024}
N=${2:-8}
T=$(mktemp -d "${TMPDIR:-/tmp}/onramp-bench-hub.XXXXXX")
chmod 755 "$T"
export BATS_TEST_TMPDIR=$T PYTHONPATH=$REPO/target/pydeps
# shellcheck source=tests/hub/hf.bash
source "$REPO/tests/hub/hf.bash"
trap 'hf_stop; registry_stop; rm -rf "$T"' EXIT

need() { command -v "$1" >/dev/null || { echo "bench: needs $1 ($2)" >&2; exit 2; }; }
need aria2c aria2; need curl curl; need docker-registry docker-registry
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (apt-get install time)" >&2; exit 2; }

# timed NAME CMD...: wall seconds into $SECS.
timed() {
    local name=$1; shift
    /usr/bin/time -f '%e' -o "$T/time.$name" "$@" >"$T/out.$name" 2>&1 || {
        echo "bench: $name failed: $(tail -n 5 "$T/out.$name")" >&2; exit 1; }
    read -r SECS <"$T/time.$name"
}

row() { printf '%-52s %9.2f %10.1f\n' "$1" "$SECS" "$(echo "$MIB / $SECS" | bc -l)"; }

# install_one NAME MANIFEST: install.sh with the helper into a fresh prefix
# and cache; time to "installed".
install_one() {
    rm -rf "$T/prefix-$1" "$T/cache-$1"
    timed "$1" env ONRAMP_HELPER="$H" ONRAMP_CACHE_DIR="$T/cache-$1" XDG_STATE_HOME="$T/state-$1" \
        setsid -w sh "$REPO/install.sh" --manifest "$2" --prefix "$T/prefix-$1" --yes --connections "$N"
    grep -q "is installed in" "$T/out.$1"
}

cdn_bytes() { awk '{ s += $NF } END { printf "%d\n", s }' "$HF_CDN_LOG"; }

main() {
    echo "building the static helper ..." >&2
    H=$(sh "$REPO/tools/build-helper.sh")
    local c sha size=$((MIB * 1024 * 1024)) commit
    c=$(hf_repo "$T/hf" org/bench)
    commit=$(basename "$c")
    head -c "$size" /dev/urandom >"$c/model.bin"
    sha=$(sha256sum <"$c/model.bin" | cut -c1-64)
    hf_start "$T/hf"
    export SSL_CERT_FILE=$HF_CA HF_ENDPOINT=$HF_URL HF_HUB_CACHE=$T/hub-cache
    jq -n --arg c "$commit" --arg sha "$sha" --argjson size "$size" '{schema: 1, name: "bench", version: "1",
        components: [{id: "model", kind: "model", install_path: "models/model.bin", hub_cache: true,
        artifacts: {any: {hf: {repo: "org/bench", file: "model.bin", revision: $c}, sha256: $sha, size: $size}}}]}' \
        >"$T/hf.json"
    local url=$HF_URL/org/bench/resolve/$commit/model.bin
    printf '\nonramp hub benchmark: %s MiB, %s connections, loopback, %s\n' "$MIB" "$N" "$(date -u +%F)"
    printf '%-52s %9s %10s\n' case seconds MiB/s

    install_one hf "$T/hf.json"; row "HF endpoint (302 to CDN): onramp, to \"installed\""; local t_on=$SECS
    rm -f "$T/a.bin"
    timed aria_hf aria2c -q -x"$N" -s"$N" -k1M --ca-certificate="$HF_CA" -d "$T" -o a.bin "$url"
    row "HF endpoint: aria2c -x$N -s$N -k1M"; local t_ar=$SECS
    timed curl_hf curl -sSL --cacert "$HF_CA" -o "$T/c.bin" "$url"; row "HF endpoint: curl -L (one connection)"
    local t_cu=$SECS
    printf '  onramp / aria2c: %.2f, onramp / curl: %.2f\n' "$(echo "$t_on / $t_ar" | bc -l)" "$(echo "$t_on / $t_cu" | bc -l)"

    # reuse: a second stack, its own onramp cache, the hub cache warm
    jq '.name = "bench2"' "$T/hf.json" >"$T/hf2.json"
    local before after
    before=$(cdn_bytes)
    install_one reuse "$T/hf2.json"
    after=$(cdn_bytes)
    row "warm hub cache: second stack, onramp"
    printf '  bytes on the wire for the second stack: %s\n' "$((after - before))"
    grep -q "found in the Hugging Face cache (verified), nothing to download" "$T/out.reuse"

    # the same bytes from the registry, by digest
    registry_start "$T/reg"
    export SSL_CERT_FILE=$REGISTRY_CA
    local digest
    digest=$(oci_push bench/model:v1 "$c/model.bin" application/octet-stream)
    jq -n --arg ref "$REGISTRY_HOST/bench/model@$digest" --arg sha "$sha" --argjson size "$size" '{schema: 1,
        name: "bench3", version: "1", components: [{id: "model", kind: "model", install_path: "models/model.bin",
        artifacts: {any: {oci: {ref: $ref}, sha256: $sha, size: $size}}}]}' >"$T/oci.json"
    HF_HUB_CACHE=$T/empty-hub install_one oci "$T/oci.json"; row "registry blob by digest: onramp"; t_on=$SECS
    local blob=$REGISTRY_URL/v2/bench/model/blobs/sha256:$sha
    rm -f "$T/a.bin"
    timed aria_oci aria2c -q -x"$N" -s"$N" -k1M --ca-certificate="$REGISTRY_CA" -d "$T" -o a.bin "$blob"
    row "registry blob: aria2c -x$N -s$N -k1M"; t_ar=$SECS
    timed curl_oci curl -sS --cacert "$REGISTRY_CA" -o "$T/c.bin" "$blob"; row "registry blob: curl"
    t_cu=$SECS
    printf '  onramp / aria2c: %.2f, onramp / curl: %.2f\n' "$(echo "$t_on / $t_ar" | bc -l)" "$(echo "$t_on / $t_cu" | bc -l)"
    cmp "$T/prefix-oci/models/model.bin" "$c/model.bin"
}

main "$@"
