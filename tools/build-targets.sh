#!/bin/sh
# Builds the helper for targets other than this machine's, with Debian's
# toolchain (rustc-web, cargo-web, rust-web-src: std built from source with
# -Zbuild-std), called by full path so that rustup's cargo stays the one
# for host builds, fmt and clippy. Prints each binary's path and size.
#   tools/build-targets.sh [TARGET...]    (default: the two below)
#   tools/build-targets.sh --check TARGET...   lint only: Debian's clippy
#       (rust-web-clippy), every target of the package, -D warnings; a
#       plain type-check when that is not installed (said so)
#   tools/build-targets.sh --test RUNNER TARGET   the library's unit tests,
#       run by RUNNER (wine, qemu), cargo's output on stdout
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

# build TOP TARGET LINKER RUSTFLAGS [MODE [RUNNER]]: one target into
# $ONRAMP_CROSS_DIR (default target/cross). MODE: build (the default);
# check: Debian's clippy (its clippy-driver matches rustc-web) over every
# target of the package, -D warnings, or a plain check without it; test:
# the library's unit tests, run by RUNNER, cargo's output on stdout.
# Reproducible: the source and home paths are remapped (the same flags in
# every directory: cargo hashes them into symbol names) and the build id
# and PE timestamp left out, so two builds of one commit in two target
# directories are byte-identical (tests/run.sh checks).
build() {
    bt_top=$1 bt_target=$2 bt_linker=$3 bt_flags=$4 bt_mode=${5:-build} bt_runner=${6:-}
    bt_dir=${ONRAMP_CROSS_DIR:-$bt_top/target/cross}
    command -v "$bt_linker" >/dev/null 2>&1 || die "$bt_target needs $bt_linker ($(need_of "$bt_target"))"
    case $bt_mode in
    build) cross_cargo /usr/bin/cargo build >&2 ;;
    test) cross_cargo /usr/bin/cargo test --lib ;;
    check)
        if [ -x /usr/bin/cargo-clippy ]; then
            cross_cargo /usr/bin/cargo-clippy clippy --all-targets -- -D warnings >&2
            printf '%s: clippy -D warnings: clean\n' "$bt_target"
        else
            cross_cargo /usr/bin/cargo check >&2
            printf '%s: type-checked (no clippy here: apt-get install rust-web-clippy)\n' "$bt_target"
        fi
        ;;
    esac
    [ "$bt_mode" = build ] || return 0
    bt_bin=$bt_dir/$bt_target/release/onramp
    case $bt_target in *windows*) bt_bin=$bt_bin.exe ;; esac
    printf '%s %s bytes\n' "$bt_bin" "$(wc -c <"$bt_bin" | tr -d ' ')"
}

# cross_cargo CARGO SUBCOMMAND [ARGS] [-- LINTS]: Debian's cargo (or its
# clippy) for build()'s target, with its linker, C compiler and archiver.
cross_cargo() {
    cc_upper=$(printf '%s' "$bt_target" | tr 'a-z-' 'A-Z_')
    cc_under=$(printf '%s' "$bt_target" | tr '-' '_')
    cc_bin=$1 cc_sub=$2
    shift 2
    (cd "$bt_top" && env CARGO=/usr/bin/cargo RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc \
        "CARGO_TARGET_${cc_upper}_LINKER=$bt_linker" "CC_${cc_under}=$bt_linker" "AR_${cc_under}=$(ar_of "$bt_target")" \
        ${bt_runner:+"CARGO_TARGET_${cc_upper}_RUNNER=$bt_runner"} SOURCE_DATE_EPOCH=0 \
        RUSTFLAGS="$bt_flags --remap-path-prefix=$bt_top=/onramp --remap-path-prefix=$HOME=/home -C link-arg=$(noid_of "$bt_target")" \
        "$cc_bin" "$cc_sub" --quiet --release --locked -Zbuild-std=std,panic_abort \
        --target "$bt_target" --target-dir "$bt_dir" -p onramp "$@" </dev/null)
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
    mode=build
    runner=
    if [ "${1:-}" = --check ]; then
        mode=check
        shift
    elif [ "${1:-}" = --test ]; then
        [ $# -eq 3 ] || die "--test RUNNER TARGET"
        mode='test'
        runner=$2
        shift 2
    fi
    [ $# -gt 0 ] || set -- aarch64-unknown-linux-gnu x86_64-pc-windows-gnu
    for t in "$@"; do
        case $t in
        aarch64-unknown-linux-gnu) build "$top" "$t" aarch64-linux-gnu-gcc '-C target-feature=+crt-static' "$mode" "$runner" ;;
        x86_64-pc-windows-gnu) build "$top" "$t" x86_64-w64-mingw32-gcc '-C target-feature=+crt-static' "$mode" "$runner" ;;
        aarch64-apple-darwin | x86_64-apple-darwin)
            [ "$mode" = check ] || die "$t: no macOS SDK here, so it cannot be linked: use --check (a macOS runner builds it, .github/workflows/macos.yml)"
            build "$top" "$t" "$top/tools/stand-in-cc.sh" '' check
            ;;
        *) die "unknown target $t (known: aarch64-unknown-linux-gnu, x86_64-pc-windows-gnu, and with --check aarch64-apple-darwin, x86_64-apple-darwin)" ;;
        esac
    done
}

main "$@"
