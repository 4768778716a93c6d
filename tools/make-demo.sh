#!/bin/sh
# Regenerates examples/demo/artifacts/ and the demo worker's source tarball
# byte for byte (deterministic) and prints the size and sha256 of each, for
# examples/demo/manifest.json, the PKGBUILD and the catalog entry.
# Needs: tar (GNU), gzip, openssl, sha256sum.
set -eu

model() {
    # $1 name, $2 header word, $3 size in bytes
    {
        printf 'ONRAMP-DEMO-MODEL %s\n' "$2"
        openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f \
            -iv "$(printf '%s' "$1" | sha256sum | cut -c1-32)" </dev/zero 2>/dev/null
    } | head -c "$3" >"$out/$1"
}

main() {
    top=$(cd "$(dirname "$0")/.." && pwd)
    demo=$top/examples/demo
    out=$demo/artifacts
    mkdir -p "$out"
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
        -C "$demo/src" -cf - bin | gzip -n -9 >"$out/demo-server-1.0.0.tar.gz"
    # The worker's source tarball lives beside its PKGBUILD in the catalog.
    cat=$demo/catalog/workers/hello
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
        -C "$demo/src" -cf - hello-worker-1.0.0 | gzip -n -9 >"$cat/hello-worker-1.0.0.tar.gz"
    model chat-tiny.bin chat 12000
    model embed-small.bin embed 150000
    model vision-base.bin vision 700000
    for f in "$out"/* "$cat"/*.tar.gz "$cat"/PKGBUILD; do
        printf '%s %s %s\n' "$(basename "$f")" "$(wc -c <"$f" | tr -d ' ')" "$(sha256sum "$f" | cut -d' ' -f1)"
    done
}

main "$@"
