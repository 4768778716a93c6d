# The Hugging Face Hub stand-in (tests/hub/hf_endpoint.py) for the bats
# suites.
#
# hf_repo DATA REPO [REF]: a new commit (a random 40-hex id) of REPO (ORG/NAME,
#   or datasets/ORG/NAME) in DATA, REF (default main) pointing at it in
#   DATA/REPO/refs.json; prints the commit's directory, for the test to fill.
# hf_start DATA [hf_endpoint.py FLAGS...]: serves DATA over https (make_ca
#   DATA is run when DATA/srv.pem is missing) with a hub log and a CDN log;
#   flags such as --token TOKEN, --gated REPO, --denied-token TOKEN, --ttl S.
#   Exports HF_URL (the hub, for HF_ENDPOINT), HF_CDN_URL, HF_CA
#   (DATA/ca.pem), HF_PID, HF_LOG and HF_CDN_LOG (formats: hf_endpoint.py).
# hf_stop: stops it (by its pid).
# hf_python ARGS...: python3 with target/pydeps, pointed at the endpoint:
#   HF_ENDPOINT, SSL_CERT_FILE and REQUESTS_CA_BUNDLE (the test CA), and
#   HF_HOME and HF_HUB_CACHE under $T (HF_HUB_CACHE may be set beforehand).

HUB_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/hub/registry.bash
declare -F hub_python >/dev/null || source "$HUB_LIB/registry.bash"

hf_repo() {
    local data=$1 repo=$2 ref=${3:-main} commit refs
    commit=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
    mkdir -p "$data/$repo/$commit"
    refs=$data/$repo/refs.json
    [ -s "$refs" ] || echo '{}' >"$refs"
    jq --arg r "$ref" --arg c "$commit" '.[$r] = $c' "$refs" >"$refs.new"
    mv "$refs.new" "$refs"
    echo "$data/$repo/$commit"
}

hf_start() {
    local data=$1
    shift
    mkdir -p "$data"
    data=$(cd "$data" && pwd)
    [ -s "$data/srv.pem" ] || make_ca "$data"
    HF_CA=$data/ca.pem HF_LOG=$data/hub.log HF_CDN_LOG=$data/cdn.log
    rm -f "$data/urls"
    (hub_exec_python "$HUB_LIB/hf_endpoint.py" --data "$data" --cert "$data/srv.pem" --key "$data/srv.key" \
        --log "$HF_LOG" --cdn-log "$HF_CDN_LOG" --url-file "$data/urls" "$@") \
        </dev/null >"$data/hf.out" 2>&1 3>&- &
    HF_PID=$!
    if ! wait_for_url_file "$data/urls" "$HF_PID"; then
        echo "hf_endpoint.py did not start: $(cat "$data/hf.out")" >&2
        return 1
    fi
    read -r HF_URL HF_CDN_URL <"$data/urls"
    export HF_URL HF_CDN_URL HF_CA HF_PID HF_LOG HF_CDN_LOG
}

hf_stop() {
    [ -n "${HF_PID:-}" ] || return 0
    kill "$HF_PID" 2>/dev/null || true
    wait "$HF_PID" 2>/dev/null || true
    HF_PID=''
}

hf_python() {
    HF_ENDPOINT=$HF_URL SSL_CERT_FILE=$HF_CA REQUESTS_CA_BUNDLE=$HF_CA HF_HOME=$T/hf-home \
        HF_HUB_CACHE=${HF_HUB_CACHE:-$T/hf-cache} HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_DISABLE_PROGRESS_BARS=1 \
        hub_python "$@"
}
