# nginx from Debian on a loopback port, from a private config: serves
# $1 (a directory) with an access log that records range requests.
# With NGINX_TLS=DIR (made by make_ca) it serves https with DIR's
# certificate for 127.0.0.1. Sets NGINX_PORT, NGINX_URL, NGINX_LOG, NGINX_DIR.
# NGINX_EXTRA is pasted into the http block with @PORT2@ replaced by
# NGINX_PORT2, a second free port picked with the first (a test must not
# pick its own: a port taken by then fails every retry).
# Ports are drawn below the kernel's ephemeral range (32768 and up), where
# the outgoing connections of earlier tests cannot be holding them.

# make_ca DIR: a test CA (DIR/ca.pem) and a certificate it signed for
# 127.0.0.1 and localhost (DIR/srv.pem, DIR/srv.key).
make_ca() {
    local d=$1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 -subj "/CN=onramp test CA" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout "$d/srv.key" -out "$d/srv.csr" -subj "/CN=127.0.0.1" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/ext"
    openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -out "$d/srv.pem" -days 2 -extfile "$d/ext" 2>/dev/null
}

nginx_start() {
    local root=$1 rate=${2:-0}
    NGINX_DIR=$(mktemp -d "${BATS_FILE_TMPDIR:-/tmp}/nginx.XXXXXX")
    chmod 755 "$NGINX_DIR"
    NGINX_LOG=$NGINX_DIR/access.log
    local try
    for try in 1 2 3 4 5 6 7 8 9 10; do
        NGINX_PORT=$((20000 + RANDOM % 12000))
        NGINX_PORT2=$((20000 + RANDOM % 12000))
        [ "$NGINX_PORT2" != "$NGINX_PORT" ] || continue
        cat >"$NGINX_DIR/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log;
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $NGINX_DIR/body;
    proxy_temp_path $NGINX_DIR/proxy;
    fastcgi_temp_path $NGINX_DIR/fastcgi;
    uwsgi_temp_path $NGINX_DIR/uwsgi;
    scgi_temp_path $NGINX_DIR/scgi;
    log_format ranges '\$uri \$status \$body_bytes_sent "\$http_range" \$msec \$request_time';
    server {
        listen 127.0.0.1:$NGINX_PORT${NGINX_TLS:+ ssl};
$( [ -n "${NGINX_TLS:-}" ] && echo "        ssl_certificate $NGINX_TLS/srv.pem; ssl_certificate_key $NGINX_TLS/srv.key;" )
        root $root;
        access_log $NGINX_LOG ranges;
        limit_rate $rate;
        sendfile off;
    }
${NGINX_EXTRA:+${NGINX_EXTRA//@PORT2@/$NGINX_PORT2}}
}
CONF
        if nginx -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/error.log" 2>/dev/null; then
            local i
            for i in $(seq 50); do
                if [ -s "$NGINX_DIR/nginx.pid" ]; then
                    NGINX_URL=http${NGINX_TLS:+s}://127.0.0.1:$NGINX_PORT
                    return 0
                fi
                sleep 0.05
            done
        fi
    done
    echo "nginx did not start: $(cat "$NGINX_DIR/error.log" 2>/dev/null)" >&2
    return 1
}

nginx_stop() {
    [ -n "${NGINX_DIR:-}" ] && [ -s "$NGINX_DIR/nginx.pid" ] || return 0
    kill "$(cat "$NGINX_DIR/nginx.pid")" 2>/dev/null || true
}

# A copy of the demo manifest whose artifacts come from nginx.
nginx_manifest() {
    local out=$1
    jq --arg base "http://127.0.0.1:$NGINX_PORT" '
        .components |= map(if .artifacts then .artifacts |= with_entries(
            .value |= (.url = ($base + "/" + (.path | split("/") | last)) | del(.path))) else . end)
    ' "$DEMO" >"$out"
    link_demo_dirs "$(dirname "$out")"
}
