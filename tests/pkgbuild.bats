#!/usr/bin/env bats
# The static PKGBUILD reader against Debian's real makepkg: every recipe of
# tests/pkgbuild/corpus either gives byte-identical .SRCINFO or is refused;
# a silent disagreement fails. makepkg runs as nobody (it refuses root).

load lib/common

setup() { common_setup; }

@test "static .SRCINFO agrees with makepkg --printsrcinfo or refuses: zero silent disagreements" {
    command -v makepkg >/dev/null || skip "makepkg is not installed"
    [ "$(id -u)" = 0 ] || skip "needs root to run makepkg as nobody"
    run "$REPO/tests/pkgbuild/diff.sh" "$H" 66
    echo "$output" | tail -n 1 >&3
    assert_success
    assert_output --partial " 0 disagree"
    refute_output --partial "DISAGREE"
}

@test "a refusal names the construct and its line, and exits 3" {
    run "$H" pkgbuild srcinfo "$REPO/tests/pkgbuild/corpus/032-refuse-command-subst/PKGBUILD"
    assert_equal "$status" 3
    assert_output --partial "line 6: command substitution \$(...)"
    assert_output --partial "needs --eval"
    run "$H" pkgbuild srcinfo "$REPO/tests/pkgbuild/corpus/036-refuse-if-carch/PKGBUILD"
    assert_equal "$status" 3
    assert_output --partial "line 6: a conditional (if [[ \$CARCH == x86_64 ]]; then)"
}

@test "arch-specific arrays follow --carch only where makepkg's output does (all arches listed)" {
    run "$H" pkgbuild srcinfo "$REPO/tests/pkgbuild/corpus/004-arch-specific/PKGBUILD" --carch aarch64
    assert_success
    assert_line $'\tsource_x86_64 = x64.bin'
    assert_line $'\tdepends_aarch64 = liba'
}
