#!/bin/sh
# Builds the helper for targets other than this machine's, with Debian's
# toolchain (rustc-web, cargo-web, rust-web-src: std built from source with
# -Zbuild-std), called by full path so that rustup's cargo stays the one
# for host builds, fmt and clippy. Prints each binary's path and size.
#   tools/build-targets.sh [TARGET...]    (default: the two below)
#   tools/build-targets.sh --check TARGET...   type-check only (macOS)
# Targets:
#   aarch64-unknown-linux-gnu   static; linker gcc-aarch64-linux-gnu
#   x86_64-pc-windows-gnu       linker mingw-w64's x86_64-w64-mingw32-gcc
#   aarch64-apple-darwin, x86_64-apple-darwin   --check only: there is no
#       macOS SDK here, so ring's C is given a stand-in compiler that writes
#       empty objects (tools/stand-in-cc.sh); nothing is linked.
set -eu

die() {
    printf 'tools/build-targets.sh: %s\n' "$1" >&2
    exit 2
}

# build TOP TARGET LINKER RUSTFLAGS [check]: one target into $ONRAMP_CROSS_DIR
# (default target/cross). Reproducible: the source and home paths are
# remapped (the same flags in every directory: cargo hashes them into
# symbol names) and the build id and PE timestamp left out, so two builds
# of one commit in two target directories are byte-identical (tests/run.sh
# checks).
build() {
    bt_dir=${ONRAMP_CROSS_DIR:-$1/target/cross}
    bt_upper=$(printf '%s' "$2" | tr 'a-z-' 'A-Z_')
    bt_under=$(printf '%s' "$2" | tr '-' '_')
    bt_verb=build
    [ "${5:-}" = check ] && bt_verb=check
    command -v "$3" >/dev/null 2>&1 || die "$2 needs $3 ($(need_of "$2"))"
    (cd "$1" && env RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc \
        "CARGO_TARGET_${bt_upper}_LINKER=$3" "CC_${bt_under}=$3" "AR_${bt_under}=$(ar_of "$2")" \
        SOURCE_DATE_EPOCH=0 \
        RUSTFLAGS="$4 --remap-path-prefix=$1=/onramp --remap-path-prefix=$HOME=/home -C link-arg=$(noid_of "$2")" \
        /usr/bin/cargo $bt_verb --quiet --release --locked -Zbuild-std=std,panic_abort \
        --target "$2" --target-dir "$bt_dir" -p onramp </dev/null >&2)
    if [ "$bt_verb" = check ]; then
        printf '%s: type-checked\n' "$2"
        return
    fi
    bt_bin=$bt_dir/$2/release/onramp
    case $2 in *windows*) bt_bin=$bt_bin.exe ;; esac
    printf '%s %s bytes\n' "$bt_bin" "$(wc -c <"$bt_bin" | tr -d ' ')"
}

# The packages a target's tools come from.
need_of() {
    case $1 in
    aarch64-unknown-linux-gnu) echo "apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;;
    x86_64-pc-windows-gnu) echo "apt-get install mingw-w64" ;;
    *) echo "apt-get install llvm" ;;
    esac
}

ar_of() {
    case $1 in
    aarch64-unknown-linux-gnu) echo aarch64-linux-gnu-ar ;;
    x86_64-pc-windows-gnu) echo x86_64-w64-mingw32-ar ;;
    *) echo llvm-ar ;;
    esac
}

# The linker flag that leaves out what differs between two builds.
noid_of() {
    case $1 in
    *windows*) echo "-Wl,--no-insert-timestamp" ;;
    *) echo "-Wl,--build-id=none" ;;
    esac
}

main() {
    top=$(cd "$(dirname "$0")/.." && pwd)
    if [ ! -x /usr/bin/cargo ] || [ ! -x /usr/bin/rustc ] || [ ! -d /usr/lib/rustlib/src/rust ]; then
        die "needs Debian's Rust toolchain for cross builds: apt-get install rustc-web cargo-web rust-web-src"
    fi
    check=
    if [ "${1:-}" = --check ]; then
        check=check
        shift
    fi
    [ $# -gt 0 ] || set -- aarch64-unknown-linux-gnu x86_64-pc-windows-gnu
    for t in "$@"; do
        case $t in
        aarch64-unknown-linux-gnu) build "$top" "$t" aarch64-linux-gnu-gcc '-C target-feature=+crt-static' $check ;;
        x86_64-pc-windows-gnu) build "$top" "$t" x86_64-w64-mingw32-gcc '-C target-feature=+crt-static' $check ;;
        aarch64-apple-darwin | x86_64-apple-darwin)
            [ -n "$check" ] || die "$t: no macOS SDK here, so it cannot be linked: use --check (a macOS runner builds it, .github/workflows/macos.yml)"
            build "$top" "$t" "$top/tools/stand-in-cc.sh" '' check
            ;;
        *) die "unknown target $t (known: aarch64-unknown-linux-gnu, x86_64-pc-windows-gnu, and with --check aarch64-apple-darwin, x86_64-apple-darwin)" ;;
        esac
    done
}

main "$@"
