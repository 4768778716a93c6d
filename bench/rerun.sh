#!/usr/bin/env bash
# The one-liner again after a complete install: how long "already installed,
# nothing to do" takes, against the floor of fetching what it must fetch
# (install.sh, manifest.json and its .minisig with curl), measured in the
# same run. The demo release is served by nginx over https on loopback (a
# test CA), signed with minisign. Target: well under a second.
# Usage: bench/rerun.sh [RUNS (default 10)]
# Needs: nginx, curl, openssl, minisign, cargo (apt-get install nginx-light curl openssl minisign).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-10}
W=$(mktemp -d "${TMPDIR:-/tmp}/onramp-bench.XXXXXX")
chmod 755 "$W"
BATS_FILE_TMPDIR=$W
# shellcheck source=tests/lib/nginx.bash
. "$REPO/tests/lib/nginx.bash"
trap 'nginx_stop; rm -rf "$W"' EXIT

for t in nginx curl openssl minisign; do
    command -v "$t" >/dev/null || { echo "bench: needs $t" >&2; exit 2; }
done
H=${ONRAMP_BENCH_HELPER:-$(sh "$REPO/tools/build-helper.sh")}
mkdir -p "$W/tls" "$W/www" "$W/home"
make_ca "$W/tls"
minisign -G -W -p "$W/k.pub" -s "$W/k.sec" >/dev/null
NGINX_TLS=$W/tls nginx_start "$W/www"
"$H" release --manifest "$REPO/examples/demo/manifest.json" --base-url "$NGINX_URL/stack" \
    -o "$W/www/stack" --minisign-key "$W/k.sec" >/dev/null 2>&1
chmod -R a+rX "$W/www"
export HOME=$W/home XDG_CACHE_HOME=$W/home/.cache XDG_STATE_HOME=$W/home/.state ONRAMP_CA_FILE=$W/tls/ca.pem
one_liner() { curl --proto '=https' --tlsv1.2 --cacert "$ONRAMP_CA_FILE" -fsSL "$NGINX_URL/stack/install.sh" | sh >"$W/last.log" 2>&1 || { cat "$W/last.log" >&2; exit 1; }; }
floor() {
    local f
    for f in install.sh manifest.json manifest.json.minisig; do
        curl --proto '=https' --tlsv1.2 --cacert "$ONRAMP_CA_FILE" -fsSL -o /dev/null "$NGINX_URL/stack/$f"
    done
}
ms() { local t0=$(date +%s%N); "$@"; echo $((($(date +%s%N) - t0) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

first=$(ms one_liner)
[ -f "$HOME/.local/share/onramp-demo/models/chat-tiny.bin" ] || { echo "bench: the first install did not install the demo" >&2; exit 1; }
reruns=$(for _ in $(seq "$RUNS"); do ms one_liner; done | median)
floors=$(for _ in $(seq "$RUNS"); do ms floor; done | median)
printf 'first install of the demo (download, build, checks): %6d ms\n' "$first"
printf 'rerun, already installed (median of %d):            %6d ms\n' "$RUNS" "$reruns"
printf 'floor: curl of install.sh + manifest + signature:    %6d ms\n' "$floors"
awk -v r="$reruns" -v f="$floors" 'BEGIN { printf "rerun / floor: %.1fx; rerun under 1 s: %s\n", r / (f ? f : 1), (r < 1000 ? "yes" : "NO") }'
