#!/bin/sh
# Builds the helper for targets other than this machine's, with Debian's
# toolchain (rustc-web, cargo-web, rust-web-src: std built from source with
# -Zbuild-std), called by full path so that rustup's cargo stays the one
# for host builds, fmt and clippy. Prints each binary's path.
#   tools/build-targets.sh [TARGET...]    (default: aarch64-unknown-linux-gnu)
# Targets: aarch64-unknown-linux-gnu (static; linker gcc-aarch64-linux-gnu).
set -eu

die() {
    printf 'tools/build-targets.sh: %s\n' "$1" >&2
    exit 2
}

# build TOP TARGET LINKER RUSTFLAGS: one target into target/cross.
build() {
    bt_upper=$(printf '%s' "$2" | tr 'a-z-' 'A-Z_')
    bt_under=$(printf '%s' "$2" | tr '-' '_')
    command -v "$3" >/dev/null 2>&1 ||
        die "$2 needs the linker $3 (Debian: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"
    (cd "$1" && env RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc \
        "CARGO_TARGET_${bt_upper}_LINKER=$3" "CC_${bt_under}=$3" \
        RUSTFLAGS="$4" \
        /usr/bin/cargo build --quiet --release --locked -Zbuild-std=std,panic_abort \
        --target "$2" --target-dir "$1/target/cross" -p onramp </dev/null >&2)
    printf '%s\n' "$1/target/cross/$2/release/onramp"
}

main() {
    top=$(cd "$(dirname "$0")/.." && pwd)
    if [ ! -x /usr/bin/cargo ] || [ ! -x /usr/bin/rustc ] || [ ! -d /usr/lib/rustlib/src/rust ]; then
        die "needs Debian's Rust toolchain for cross builds: apt-get install rustc-web cargo-web rust-web-src"
    fi
    [ $# -gt 0 ] || set -- aarch64-unknown-linux-gnu
    for t in "$@"; do
        case $t in
        aarch64-unknown-linux-gnu) build "$top" "$t" aarch64-linux-gnu-gcc '-C target-feature=+crt-static' ;;
        *) die "unknown target $t (known: aarch64-unknown-linux-gnu)" ;;
        esac
    done
}

main "$@"
