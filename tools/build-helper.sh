#!/bin/sh
# Builds the static helper for this machine: prints its path. install.sh
# (run from a checkout) calls it on first use, naming the Rust triple.
#   tools/build-helper.sh [TRIPLE]    (default: $ONRAMP_TRIPLE, else the host's)
# RUSTFLAGS crt-static on a -gnu target gives a static-pie binary (there is
# no musl target here); an explicit --target keeps build scripts dynamic.
# The toolchain: rustup's cargo when there is one (CARGO, ~/.cargo/bin, or
# a cargo on PATH that is not Debian's); else Debian 12's cargo-web 1.96 at
# /usr/bin/cargo (ONRAMP_SYSTEM_CARGO; rustc beside it); else, as root with
# apt-get, that is installed first; else the error names the package and
# the command.
set -eu

say() {
    printf 'tools/build-helper.sh: %s\n' "$1" >&2
}

die() {
    say "$1"
    exit 11
}

# Cargo 1.88 or newer (edition 2024 and the lock file's crates)?
new_enough() {
    nv_minor=$("$1" --version 2>/dev/null | sed -n 's/^cargo 1\.\([0-9]*\)\..*/\1/p')
    [ -n "$nv_minor" ] && [ "$nv_minor" -ge 88 ]
}

# Prints the cargo to use; RUSTC goes with Debian's.
pick_cargo() {
    sys=${ONRAMP_SYSTEM_CARGO:-/usr/bin/cargo}
    for pc_c in "${CARGO:-}" "$HOME/.cargo/bin/cargo"; do
        if [ -n "$pc_c" ] && [ -x "$pc_c" ]; then
            printf '%s\n' "$pc_c"
            return
        fi
    done
    pc_c=$(command -v cargo 2>/dev/null || true)
    if [ -n "$pc_c" ] && [ "$pc_c" != "$sys" ] && new_enough "$pc_c"; then
        printf '%s\n' "$pc_c"
        return
    fi
    if ! new_enough "$sys" && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "no Rust toolchain here: installing Debian's (apt-get install cargo-web rustc-web gcc)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q cargo-web rustc-web gcc </dev/null >&2 ||
            die "apt-get could not install cargo-web rustc-web gcc; install them, or rustup (https://rustup.rs), and run again"
    fi
    if new_enough "$sys" && [ -x "${sys%/*}/rustc" ]; then
        printf '%s\n' "$sys"
        return
    fi
    die "no Rust toolchain (cargo 1.88 or newer) to build the helper: on Debian 12 run 'sudo apt-get install cargo-web rustc-web gcc', or install rustup (https://rustup.rs)"
}

main() {
    top=$(cd "$(dirname "$0")/.." && pwd)
    cargo=$(pick_cargo)
    if [ "$cargo" = "${ONRAMP_SYSTEM_CARGO:-/usr/bin/cargo}" ]; then
        RUSTC=${cargo%/*}/rustc
        export RUSTC
        triple=${1:-${ONRAMP_TRIPLE:-$("$RUSTC" -vV | sed -n 's/^host: //p')}}
    else
        triple=${1:-${ONRAMP_TRIPLE:-$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')}}
        [ -n "$triple" ] || triple=$("$(dirname "$cargo")/rustc" -vV | sed -n 's/^host: //p')
    fi
    (cd "$top" && RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        "$cargo" build --quiet --release --locked --target "$triple" -p onramp </dev/null >&2) ||
        die "building the helper failed (see cargo's output above)"
    printf '%s\n' "$top/target/$triple/release/onramp"
}

main "$@"
