#!/usr/bin/env bats
# The static PKGBUILD reader against Debian's real makepkg: every recipe of
# tests/pkgbuild/corpus either gives byte-identical .SRCINFO or is refused;
# a silent disagreement fails. makepkg runs as nobody (it refuses root).

load lib/common

setup() {
    common_setup
    # makepkg answers once per recipe for both modes
    export ONRAMP_MAKEPKG_CACHE=$BATS_FILE_TMPDIR/makepkg
}

@test "static .SRCINFO agrees with makepkg --printsrcinfo or refuses: zero silent disagreements" {
    command -v makepkg >/dev/null || skip "makepkg is not installed"
    [ "$(id -u)" = 0 ] || skip "needs root to run makepkg as nobody"
    run "$REPO/tests/pkgbuild/diff.sh" "$H" 167
    echo "$output" | tail -n 1 >&3
    assert_success
    assert_output --partial " 0 disagree"
    refute_output --partial "DISAGREE"
}

@test "--eval .SRCINFO (the recipe sourced in a locked-down bash) agrees with makepkg on the corpus but for recipes that read their environment" {
    command -v makepkg >/dev/null || skip "makepkg is not installed"
    [ "$(id -u)" = 0 ] || skip "needs root to run makepkg as nobody"
    run "$REPO/tests/pkgbuild/diff.sh" "$H" 199 --eval
    echo "$output" | tail -n 1 >&3
    assert_success
    # the only disagreements: recipes that print their own path or $HOME,
    # which differ by design in a private directory with a throwaway HOME
    run grep '^DISAGREE' <<<"$output"
    assert_output "DISAGREE  038-refuse-special-param
DISAGREE  039-refuse-tilde
DISAGREE  083-refuse-home"
}

@test "--eval runs the recipe locked down: no environment, no network, as a build uid when root, with a timeout" {
    mkdir -p "$T/r"
    cat >"$T/r/PKGBUILD" <<'EOF'
pkgname=probe
pkgver=1
pkgrel=1
arch=(any)
pkgdesc="user=$(id -u) env=$(env | cut -d= -f1 | grep -v -e '^_$' -e '^PWD$' -e '^SHLVL$' -e '^OLDPWD$' | sort | tr '\n' ,) net=$(tail -n +3 /proc/self/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ,)"
EOF
    SECRET_TOKEN=x run "$H" pkgbuild srcinfo "$T/r/PKGBUILD" --eval
    assert_success
    assert_output --partial "env=CARCH,HOME,LANG,PATH,pkgdir,srcdir,startdir,"
    refute_output --partial SECRET
    if [ "$(id -u)" = 0 ]; then
        # onramp's own build uids (1879048192 and up), never root or nobody
        assert_output --regexp 'user=18790482[0-2][0-9] |user=187904819[2-9] '
        refute_output --partial "user=0 "
        assert_output --partial "net=lo,"
        refute_output --regexp 'net=.*(eth|ens|enp|veth)'
    fi
    printf 'pkgname=h\npkgver=$(sleep 100; echo 1)\npkgrel=1\narch=(any)\n' >"$T/r/PKGBUILD"
    SECONDS=0
    run timeout 60 "$H" pkgbuild srcinfo "$T/r/PKGBUILD" --eval --timeout 2
    assert_equal "$status" 3
    assert_output --partial "timed out"
    [ "$SECONDS" -lt 20 ]
    run pgrep -f "sleep 100"
    assert_failure
}

@test "a refusal names the construct and its line, and exits 3" {
    run "$H" pkgbuild srcinfo "$REPO/tests/pkgbuild/corpus/032-refuse-command-subst/PKGBUILD"
    assert_equal "$status" 3
    assert_output --partial "line 6: command substitution \$(...)"
    assert_output --partial "needs --eval"
    run "$H" pkgbuild srcinfo "$REPO/tests/pkgbuild/corpus/104-refuse-if-other/PKGBUILD"
    assert_equal "$status" 3
    assert_output --partial "line 6: a conditional (if [[ -n \$_cuda ]]; then) (only conditionals that compare \$CARCH with constants are read statically)"
}

@test "arch-specific arrays follow --carch only where makepkg's output does (all arches listed)" {
    run "$H" pkgbuild srcinfo "$REPO/tests/pkgbuild/corpus/004-arch-specific/PKGBUILD" --carch aarch64
    assert_success
    assert_line $'\tsource_x86_64 = x64.bin'
    assert_line $'\tdepends_aarch64 = liba'
}

@test "conditionals that only test CARCH are evaluated for --carch; other conditionals are refused" {
    c=$REPO/tests/pkgbuild/corpus
    run "$H" pkgbuild srcinfo "$c/101-carch-if-elif-else/PKGBUILD" --carch aarch64
    assert_success
    assert_line $'\tdepends = arm-lib'
    assert_line $'\tpkgdesc = flavour arm'
    run "$H" pkgbuild srcinfo "$c/101-carch-if-elif-else/PKGBUILD" --carch x86_64
    assert_line $'\tdepends = x86-lib'
    run "$H" pkgbuild srcinfo "$c/103-carch-or-not/PKGBUILD" --carch aarch64
    assert_line $'\tgroups = g1'
    assert_line $'\tlicense = never'
    refute_line $'\treplaces = r1'
    # the untaken branch may hold anything; the taken one must be static
    run "$H" pkgbuild srcinfo "$c/105-carch-skips-untaken/PKGBUILD" --carch x86_64
    assert_success
    assert_line $'\tdepends = x86-extra'
    run "$H" pkgbuild srcinfo "$c/105-carch-skips-untaken/PKGBUILD" --carch aarch64
    assert_equal "$status" 3
    assert_output --partial "line 7: command substitution"
}
