#!/bin/sh
# The release step: builds the static helper, then writes dist/ with
#   onramp-VERSION-TARGET   the helper
#   install.sh              one self-contained script: lib/ inlined, the
#                           helper's sha256 pinned for TARGET
# Usage: sh tools/build-dist.sh [--helper PATH] (PATH: use that binary)
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
    version=$(sed -n "s/^    printf '\([0-9][^']*\)'$/\1/p" "$top/install.sh" | head -n 1)
    [ -n "$version" ] || die "cannot read the kit version from install.sh"
    hv=$("$helper" --version | cut -d' ' -f2)
    [ "$hv" = "$version" ] || die "helper version $hv differs from install.sh's $version"
    dist=$top/dist
    mkdir -p "$dist"
    cp "$helper" "$dist/.tmp-helper"
    mv -f "$dist/.tmp-helper" "$dist/onramp-$version-$target"
    sha=$(sha256sum "$dist/onramp-$version-$target" | cut -d' ' -f1)
    libs=
    for f in ui exitcodes platform helper resume phases; do
        libs="$libs $top/lib/$f.sh"
    done
    # shellcheck disable=SC2086 # libs is a list of paths without spaces
    awk -v target="$target" -v sha="$sha" -v libs="$libs" '
        /^    # >>> pins$/ {
            print; print "    case $1 in"
            printf "    %s) printf %s ;;\n", target, "'\''" sha "'\''"
            print "    *) printf '\'''\'' ;;"; print "    esac"
            skip = 1; next
        }
        /^    # <<< pins$/ { skip = 0; print; next }
        /^# >>> lib/ {
            print "# >>> lib: inlined from lib/ by tools/build-dist.sh"
            n = split(libs, files, " ")
            for (i = 1; i <= n; i++) {
                while ((getline line < files[i]) > 0) {
                    if (line ~ /^# shellcheck shell=sh/) continue
                    print line
                }
                close(files[i]); print ""
            }
            print "onramp_load_lib() {"; print "    onramp_src_dir="; print "}"
            skip = 1; next
        }
        /^# <<< lib$/ { skip = 0; print; next }
        !skip { print }
    ' "$top/install.sh" >"$dist/.tmp-install.sh"
    mv -f "$dist/.tmp-install.sh" "$dist/install.sh"
    printf '%s\n' "$dist/install.sh" "$dist/onramp-$version-$target"
}

main "$@"
