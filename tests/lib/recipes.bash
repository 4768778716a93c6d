# Worker recipes for the bats suites: a scratch directory of recipes built
# from the demo worker's source tarball, manifests that pin them, and the
# reason the state records for a component.

# W (recipes), TARBALL and TARBALL_SHA (the demo worker's sources).
recipes_setup() {
    W=$T/w
    mkdir -p "$W"
    TARBALL=$REPO/examples/demo/catalog/workers/hello/hello-worker-1.0.0.tar.gz
    TARBALL_SHA=$(sha256sum <"$TARBALL" | cut -c1-64)
}

# recipe NAME: a directory $W/NAME holding PKGBUILD (from stdin) and the
# demo worker's source tarball.
recipe() {
    mkdir -p "$W/$1"
    cat >"$W/$1/PKGBUILD"
    cp "$TARBALL" "$W/$1/"
}

# manifest OUT [--timeout S] ID DIR [ID DIR...]: a stack of workers, each
# from the PKGBUILD in DIR, pinned by its sha256.
manifest() {
    local out=$1 timeout=60 comps='[]' sha
    shift
    if [ "$1" = --timeout ]; then timeout=$2; shift 2; fi
    while [ $# -gt 0 ]; do
        sha=$(sha256sum <"$2/PKGBUILD" | cut -c1-64)
        comps=$(jq --arg id "$1" --arg p "$2/PKGBUILD" --arg sha "$sha" --argjson t "$timeout" \
            '. + [{"id":$id,"kind":"worker","recipe":{"path":$p,"sha256":$sha},"timeout_s":$t}]' <<<"$comps")
        shift 2
    done
    jq -n --argjson c "$comps" '{"schema":1,"name":"workers-test","version":"1","components":$c}' >"$out"
}

# The reason recorded for component $1 (in the install of prefix $2).
reason() {
    jq -r --arg id "$1" '.steps[] | select(.id == $id) | .reason' "$(state_file "${2:-$PREFIX}")"
}

hello_body() {
    cat <<'EOF'
pkgname=hello-worker
pkgver=1.0.0
pkgrel=1
arch=('x86_64' 'aarch64')
makedepends=('cc' 'make')
EOF
}

# hello_recipe [SUM] [CMDS]: the demo worker's recipe with sha256sums SUM
# (the tarball's by default); package() runs CMDS after installing it.
hello_recipe() {
    hello_body
    cat <<EOF
source=("hello-worker-1.0.0.tar.gz")
sha256sums=('${1:-$TARBALL_SHA}')
build() { cd "\$pkgname-\$pkgver"; make; }
package() { cd "\$pkgname-\$pkgver"; install -Dm755 hello-worker "\$pkgdir/bin/hello-worker";${2:+ $2;} }
EOF
}
