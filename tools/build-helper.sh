#!/bin/sh
# Builds the static helper for this machine: prints its path.
# RUSTFLAGS crt-static on a -gnu target gives a static-pie binary (there is
# no musl target here); an explicit --target keeps build scripts dynamic.
set -eu

main() {
    top=$(cd "$(dirname "$0")/.." && pwd)
    triple=${ONRAMP_TRIPLE:-$(rustc -vV | sed -n 's/^host: //p')}
    (cd "$top" && RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        cargo build --quiet --release --locked --target "$triple" -p onramp </dev/null >&2)
    printf '%s\n' "$top/target/$triple/release/onramp"
}

main "$@"
