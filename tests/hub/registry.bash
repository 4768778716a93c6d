# An OCI registry for the bats suites: Debian's docker-registry
# (distribution 2.8) on 127.0.0.1 over TLS, optionally behind the Docker
# token protocol (tests/hub/token_server.py), and pushes to it with the
# oras SDK (tests/hub/oci_push.py). Python code runs with target/pydeps.
#
# registry_start DIR [--auth [TOKEN_SERVER_FLAGS...]]
#   DIR holds the CA and certificate (make_ca DIR is run when DIR/srv.pem is
#   missing), the config (DIR/registry.yml), the storage (DIR/storage) and the
#   logs. --auth: `auth: token:` pointing at a token server started first;
#   flags after --auth go to it (--anonymous-pull, --user NAME, --password PW,
#   --ttl SECONDS; see tests/hub/token_server.py).
#   Exports REGISTRY_HOST (127.0.0.1:PORT), REGISTRY_URL (https://HOST),
#   REGISTRY_DIR, REGISTRY_CA (DIR/ca.pem), REGISTRY_PID, REGISTRY_LOG (the
#   registry's stdout and stderr: per request a logrus line `msg="response
#   completed" ... http.request.method=M http.request.uri=U ...
#   http.response.status=S` and an access-log line `127.0.0.1 - - [DATE]
#   "M U HTTP/V" S BYTES "" "AGENT"`); with --auth also
#   TOKEN_PID, TOKEN_LOG (token_server.py's log), TOKEN_URL,
#   REGISTRY_SERVICE, REGISTRY_USER, REGISTRY_PASSWORD; without, those are
#   empty.
# registry_stop: stops both (by their pids).
# oci_push REPO:TAG FILE MEDIA_TYPE [TITLE]
# oci_push REPO:TAG FILE:MEDIA_TYPE[:TITLE]...   (several layers)
#   pushes the files as the layers of one manifest (annotation
#   org.opencontainers.image.title = TITLE, default the file's basename;
#   paths may not contain ':') with the credentials under --auth; prints the
#   manifest's digest (sha256:...). OCI_CONFIG=FILE:MEDIA_TYPE sets the
#   config blob (default: oras's empty {}).
# docker-registry starts with no REGISTRY_* variables in its environment
# (distribution reads them as config overrides).
# Ports are drawn in 20000-31999 (below the ephemeral range) and redrawn
# when taken.

HUB_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/nginx.bash
declare -F make_ca >/dev/null || source "$HUB_LIB/../lib/nginx.bash"

# hub_python ARGS...: python3 with target/pydeps first on its path. In the
# background, `(hub_exec_python ARGS...) &` leaves $! python's own pid.
hub_python() {
    PYTHONPATH=$HUB_LIB/../../target/pydeps${PYTHONPATH:+:$PYTHONPATH} python3 "$@"
}

hub_exec_python() {
    PYTHONPATH=$HUB_LIB/../../target/pydeps${PYTHONPATH:+:$PYTHONPATH} exec python3 "$@"
}

# wait_for_url_file FILE PID: FILE (written by a server once it listens)
# appears while PID lives.
wait_for_url_file() {
    for _ in $(seq 200); do
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

registry_start() {
    local dir=$1 auth=0
    shift
    if [ "${1-}" = --auth ]; then
        auth=1
        shift
    fi
    mkdir -p "$dir"
    REGISTRY_DIR=$(cd "$dir" && pwd)
    REGISTRY_CA=$REGISTRY_DIR/ca.pem
    [ -s "$REGISTRY_DIR/srv.pem" ] || make_ca "$REGISTRY_DIR"
    REGISTRY_LOG=$REGISTRY_DIR/registry.log
    TOKEN_PID='' TOKEN_LOG='' TOKEN_URL='' REGISTRY_SERVICE='' REGISTRY_USER='' REGISTRY_PASSWORD=''
    local auth_yml=
    if [ "$auth" = 1 ]; then
        REGISTRY_SERVICE=onramp-test-registry
        REGISTRY_USER=onramp REGISTRY_PASSWORD=s3cret
        local a
        for ((a = 1; a <= $#; a++)); do
            case ${!a} in
            --user) a=$((a + 1)); REGISTRY_USER=${!a} ;;
            --password) a=$((a + 1)); REGISTRY_PASSWORD=${!a} ;;
            esac
        done
        TOKEN_LOG=$REGISTRY_DIR/token.log
        rm -f "$REGISTRY_DIR/token.url"
        (hub_exec_python "$HUB_LIB/token_server.py" --cert "$REGISTRY_DIR/srv.pem" --key "$REGISTRY_DIR/srv.key" \
            --root-cert "$REGISTRY_DIR/token-root.pem" --service "$REGISTRY_SERVICE" \
            --issuer onramp-test-token-server --log "$TOKEN_LOG" --url-file "$REGISTRY_DIR/token.url" \
            "$@") </dev/null >"$REGISTRY_DIR/token.out" 2>&1 3>&- &
        TOKEN_PID=$!
        if ! wait_for_url_file "$REGISTRY_DIR/token.url" "$TOKEN_PID"; then
            echo "token server did not start: $(cat "$REGISTRY_DIR/token.out")" >&2
            return 1
        fi
        TOKEN_URL=$(cat "$REGISTRY_DIR/token.url")
        auth_yml="auth:
  token:
    realm: $TOKEN_URL
    service: $REGISTRY_SERVICE
    issuer: onramp-test-token-server
    rootcertbundle: $REGISTRY_DIR/token-root.pem"
    fi
    local port code
    for _ in $(seq 10); do
        port=$((20000 + RANDOM % 12000))
        cat >"$REGISTRY_DIR/registry.yml" <<YML
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  tls:
    certificate: $REGISTRY_DIR/srv.pem
    key: $REGISTRY_DIR/srv.key
health:
  storagedriver:
    enabled: false
$auth_yml
YML
        : >"$REGISTRY_LOG"
        # distribution reads REGISTRY_* variables as config overrides: none
        # of the exported ones may reach it
        (
            conf=$REGISTRY_DIR/registry.yml
            for v in $(compgen -e | grep '^REGISTRY_'); do unset "$v"; done
            exec /usr/bin/docker-registry serve "$conf"
        ) </dev/null >>"$REGISTRY_LOG" 2>&1 3>&- &
        REGISTRY_PID=$!
        for _ in $(seq 200); do
            kill -0 "$REGISTRY_PID" 2>/dev/null || break
            code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REGISTRY_CA" "https://127.0.0.1:$port/v2/" || true)
            if [ "$code" = 200 ] || [ "$code" = 401 ]; then
                REGISTRY_HOST=127.0.0.1:$port
                REGISTRY_URL=https://$REGISTRY_HOST
                export REGISTRY_HOST REGISTRY_URL REGISTRY_DIR REGISTRY_CA REGISTRY_PID REGISTRY_LOG \
                    TOKEN_PID TOKEN_LOG TOKEN_URL REGISTRY_SERVICE REGISTRY_USER REGISTRY_PASSWORD
                return 0
            fi
            sleep 0.05
        done
        kill "$REGISTRY_PID" 2>/dev/null || true
        wait "$REGISTRY_PID" 2>/dev/null || true
        grep -q 'address already in use' "$REGISTRY_LOG" || break
    done
    echo "docker-registry did not start: $(grep -v '^ \|^$' "$REGISTRY_LOG" | tail -n 5)" >&2
    [ -z "$TOKEN_PID" ] || kill "$TOKEN_PID" 2>/dev/null || true
    return 1
}

registry_stop() {
    local p
    for p in ${REGISTRY_PID:-} ${TOKEN_PID:-}; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    REGISTRY_PID='' TOKEN_PID=''
}

oci_push() {
    local target=$1
    shift
    local layers=("$@")
    if [ $# -ge 2 ] && [ $# -le 3 ] && [[ $1 != *:* ]]; then
        layers=("$1:$2${3:+:$3}")
    fi
    local creds=()
    [ -z "${REGISTRY_USER:-}" ] || creds=(--user "$REGISTRY_USER" --password "$REGISTRY_PASSWORD")
    hub_python "$HUB_LIB/oci_push.py" --registry "$REGISTRY_HOST" --ca "$REGISTRY_CA" "${creds[@]}" \
        ${OCI_CONFIG:+--config "$OCI_CONFIG"} "$target" "${layers[@]}"
}
