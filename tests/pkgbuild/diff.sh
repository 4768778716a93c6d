#!/usr/bin/env bash
# Differential check of `onramp pkgbuild srcinfo` against Debian's real
# `makepkg --printsrcinfo` (run as nobody with an empty environment, since
# makepkg refuses root). For every tests/pkgbuild/corpus/*/PKGBUILD it
# prints one line: agree | refused | makepkg-fails | DISAGREE, then totals
# "N agree, N refused, N disagree". Exit 1 on any disagreement (a silent
# wrong answer), and when fewer than MIN_AGREE recipes agree.
# Usage: tests/pkgbuild/diff.sh HELPER [MIN_AGREE]
set -euo pipefail

H=$1
MIN=${2:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/onramp-pkgdiff.XXXXXX")
trap 'rm -rf "$W"' EXIT
chmod 755 "$W"
agree=0 refused=0 disagree=0 mfail=0
for d in "$HERE"/corpus/*/; do
    name=$(basename "$d")
    mkdir -p "$W/$name/home"
    cp "$d"/* "$W/$name/"
    chmod -R a+rwX "$W/$name"
    theirs=0
    (cd "$W/$name" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
        env -i HOME="$W/$name/home" PATH=/usr/bin:/bin makepkg --printsrcinfo >"$W/$name/theirs" 2>"$W/$name/theirs.err") || theirs=$?
    ours=0
    "$H" pkgbuild srcinfo "$W/$name/PKGBUILD" --carch x86_64 >"$W/$name/ours" 2>"$W/$name/ours.err" || ours=$?
    if [ "$ours" != 0 ]; then
        refused=$((refused + 1))
        printf 'refused   %s: %s\n' "$name" "$(sed 's/^onramp: error: //' "$W/$name/ours.err" | head -n 1)"
    elif [ "$theirs" != 0 ]; then
        mfail=$((mfail + 1)); disagree=$((disagree + 1))
        printf 'DISAGREE  %s: makepkg fails (%s) but onramp answered\n' "$name" "$(head -n 1 "$W/$name/theirs.err")"
    elif cmp -s "$W/$name/ours" "$W/$name/theirs"; then
        agree=$((agree + 1))
        printf 'agree     %s\n' "$name"
    else
        disagree=$((disagree + 1))
        printf 'DISAGREE  %s\n' "$name"
        diff "$W/$name/theirs" "$W/$name/ours" | sed 's/^/    /' | head -n 12
    fi
done
total=$((agree + refused + disagree))
echo "static mode: $agree agree, $refused refused, $disagree disagree (of $total; agreement $((100 * agree / total))%)"
[ "$disagree" = 0 ] && [ "$agree" -ge "$MIN" ]
