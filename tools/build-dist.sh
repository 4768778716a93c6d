#!/bin/sh
# The kit without a stack: builds the static helper (or takes --helper
# PATH) and lets `onramp release` write dist/ with
#   onramp-VERSION-TARGET   the helper
#   install.sh              one self-contained script: lib/ inlined, the
#                           helper's sha256 pinned for TARGET
#   SHA256SUMS
# A maintainer shipping a stack runs `onramp release --manifest ...`
# instead (README, Shipping your stack).
# Usage: sh tools/build-dist.sh [--helper PATH]
set -eu

die() {
    printf 'build-dist: %s\n' "$1" >&2
    exit 1
}

main() {
    top=$(cd "$(dirname "$0")/.." && pwd)
    helper=
    if [ "${1-}" = --helper ]; then
        helper=${2-}
        [ -x "$helper" ] || die "--helper needs an executable file"
    fi
    [ -n "$helper" ] || helper=$(sh "$top/tools/build-helper.sh")
    target=$("$helper" target)
    rm -rf "$top/dist.new"
    "$helper" release --helper "$target=$helper" -o "$top/dist.new" </dev/null
    rm -rf "$top/dist"
    mv "$top/dist.new" "$top/dist"
    version=$("$helper" --version | cut -d' ' -f2)
    printf '%s\n' "$top/dist/install.sh" "$top/dist/onramp-$version-$target"
}

main "$@"
