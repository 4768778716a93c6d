#!/bin/sh
# A stand-in C compiler for type-checking the helper for macOS here, where
# there is no macOS SDK: ring's build script compiles its C and assembly,
# and `cargo check` never links, so an empty object where -o (or -Fo) says
# is enough. Asked to preprocess (the cc crate's compiler probe), it says
# clang. Never used for a binary anyone runs.
set -eu

main() {
    out=
    for a in "$@"; do
        if [ "$a" = -E ]; then
            echo clang
            echo clang >&2
            exit 0
        fi
    done
    while [ $# -gt 0 ]; do
        case $1 in
        -o) out=$2; shift ;;
        -o*) out=${1#-o} ;;
        -Fo*) out=${1#-Fo} ;;
        esac
        shift
    done
    if [ -n "$out" ]; then
        : >"$out"
    fi
}

main "$@"
