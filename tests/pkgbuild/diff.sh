#!/usr/bin/env bash
# Differential check of `onramp pkgbuild srcinfo` against Debian's real
# `makepkg --printsrcinfo` (run as nobody with an empty environment, since
# makepkg refuses root). For every tests/pkgbuild/corpus/*/PKGBUILD it
# prints one line: agree | both-reject | refused | DISAGREE, then totals
# "N agree, N rejected by both, N refused, N disagree". Static mode: exit 1 on any disagreement
# (a silent wrong answer), and when fewer than MIN_AGREE recipes agree.
# --eval mode (the recipe sourced in bash, as makepkg does): disagreements
# are listed, and exit 1 when fewer than MIN_AGREE recipes agree.
# Usage: tests/pkgbuild/diff.sh HELPER [MIN_AGREE] [--eval]
set -euo pipefail

H=$1
MIN=${2:-0}
MODE=static
EVAL=()
if [ "${3-}" = --eval ]; then MODE=eval; EVAL=(--eval); fi
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/onramp-pkgdiff.XXXXXX")
trap 'rm -rf "$W"' EXIT
chmod 755 "$W"
agree=0 refused=0 disagree=0 mfail=0 both=0
for d in "$HERE"/corpus/*/; do
    name=$(basename "$d")
    mkdir -p "$W/$name/home"
    cp "$d"/* "$W/$name/"
    chmod -R a+rwX "$W/$name"
    theirs=0
    # makepkg's answer does not depend on our mode: with ONRAMP_MAKEPKG_CACHE
    # set, the second run (static, then --eval) reuses the first one's.
    key=""
    if [ -n "${ONRAMP_MAKEPKG_CACHE:-}" ]; then
        key=$ONRAMP_MAKEPKG_CACHE/$(cd "$d" && for f in *; do printf '%s\n' "$f"; cat "$f"; done | sha256sum | cut -c1-32)
    fi
    if [ -n "$key" ] && [ -f "$key.rc" ]; then
        cp "$key.out" "$W/$name/theirs"
        cp "$key.err" "$W/$name/theirs.err"
        theirs=$(cat "$key.rc")
    else
        (cd "$W/$name" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
            env -i HOME="$W/$name/home" PATH=/usr/bin:/bin LANG=C.UTF-8 makepkg --printsrcinfo >"$W/$name/theirs" 2>"$W/$name/theirs.err") || theirs=$?
        if [ -n "$key" ]; then
            mkdir -p "$ONRAMP_MAKEPKG_CACHE"
            cp "$W/$name/theirs" "$key.out"
            cp "$W/$name/theirs.err" "$key.err"
            echo "$theirs" >"$key.rc"
        fi
    fi
    ours=0
    "$H" pkgbuild srcinfo "$W/$name/PKGBUILD" --carch x86_64 "${EVAL[@]}" >"$W/$name/ours" 2>"$W/$name/ours.err" || ours=$?
    if [ "$ours" != 0 ] && [ "$theirs" != 0 ]; then
        both=$((both + 1))
        printf 'both-reject %s: %s\n' "$name" "$(sed 's/^onramp: error: //' "$W/$name/ours.err" | head -n 1)"
    elif [ "$ours" != 0 ]; then
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
        { diff "$W/$name/theirs" "$W/$name/ours" || true; } | sed 's/^/    /' | head -n 12
    fi
done
total=$((agree + both + refused + disagree))
echo "$MODE mode: $agree agree, $both rejected by both, $refused refused, $disagree disagree (of $total; same answer $((100 * (agree + both) / total))%)"
if [ "$MODE" = eval ]; then
    [ "$agree" -ge "$MIN" ]
else
    [ "$disagree" = 0 ] && [ "$agree" -ge "$MIN" ]
fi
