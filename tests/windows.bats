#!/usr/bin/env bats
# install.ps1, checked where no PowerShell can run: parsed by
# tree-sitter-powershell and held to its rules on the syntax tree (no exit
# under iex, TLS 1.2 before any request, the helper's sha256 matched before
# it runs, no iex of data, prompts only when interactive, 5.1 syntax, the
# execution policy untouched, paths literal); each
# rule shown to fail on the mistake it names; flags, environment
# variables, exit codes, phases and messages the same as install.sh's and
# the helper's; no truncation runs anything; `onramp release` and
# `onramp bundle create` write it with the Windows pins; every OS
# difference is in helper/src/sys, each item paired.

load lib/common

setup_file() {
    # tests/run.sh puts tree-sitter and tree-sitter-powershell here.
    export PYTHONPATH=${ONRAMP_TEST_PYDEPS:-$REPO/target/pydeps}${PYTHONPATH:+:$PYTHONPATH}
}

setup() {
    common_setup
    CHECK="python3 $REPO/tests/windows/check_ps1.py"
}

teardown() {
    common_teardown
}

# mutate OLD NEW: a copy of install.ps1 with the first OLD replaced by NEW
# (a Python literal each); fails when OLD is not there.
mutate() {
    python3 - "$REPO/install.ps1" "$T/m.ps1" "$1" "$2" <<'PY'
import ast, sys
src = open(sys.argv[1]).read()
old, new = ast.literal_eval(sys.argv[3]), ast.literal_eval(sys.argv[4])
assert old in src, f"not in install.ps1: {old!r}"
open(sys.argv[2], "w").write(src.replace(old, new, 1))
PY
}

# caught RULE: the mutated copy fails, naming RULE.
caught() {
    run $CHECK rules "$T/m.ps1"
    assert_failure
    assert_output --partial ": $1: "
}

@test "install.ps1 parses with no ERROR or MISSING node and holds every rule" {
    run $CHECK rules "$REPO/install.ps1"
    assert_success
    assert_output --partial "rules syntax, ps51, exit, tls, hash, iex, prompt, policy, paths, installer hold"
}

@test "each rule fails on the mistake it names" {
    mutate "'function Get-OnrampPhases {'" "'function Get-OnrampPhases {{'"
    caught syntax
    mutate "'# onramp installer for Windows'" "'# onramp installer for Windows \u2014'"
    caught syntax
    mutate "\"    '0.1.0'\n\"" "\"    '0.1.0'\n    Get-A && Get-B\n\""
    caught ps51
    mutate "'    throw \$ex\n'" "'    exit \$Code\n'"
    caught exit
    mutate "'\nInvoke-OnrampEntry -Given'" "'\nif (\$Help) { exit 0 }\nInvoke-OnrampEntry -Given'"
    caught exit
    mutate "'    Enable-OnrampTls\n'" "''"
    caught tls
    mutate "'    \$S.Helper = Get-OnrampHelper \$S\n'" "'    \$S.Helper = Get-OnrampHelper \$S\n    Enable-OnrampTls\n'"
    run python3 -c "import sys; s=open('$T/m.ps1').read(); open('$T/m.ps1','w').write(s.replace('    Enable-OnrampTls\n    \$S.Tmp', '    \$S.Tmp', 1))"
    caught tls
    mutate "'    Enable-OnrampTls\n'" "'    if (\$o.Offline) { Enable-OnrampTls }\n'"
    caught tls
    mutate "'\$p = \$p -bor [Net.SecurityProtocolType]::Tls12'" "'\$p = [Net.SecurityProtocolType]::Tls12'"
    caught tls
    mutate "' -and (Get-OnrampSha256 \$Path) -eq \$Sha'" "''"
    caught hash
    mutate "'            return (Use-OnrampVerified \$cached \$pin)'" "'            return \$cached'"
    caught hash
    mutate "'            Save-OnrampUrl ('" "'            & \$dl --version\n            Save-OnrampUrl ('"
    caught hash
    mutate "'    \$url = @((Get-OnrampHelperOutput'" "'    Start-Process -FilePath \$o.Events\n    \$url = @((Get-OnrampHelperOutput'"
    caught hash
    mutate "'    \$ex = New-Object'" "'    Invoke-Expression \$Message\n    \$ex = New-Object'"
    caught iex
    mutate "'    if (Test-OnrampInteractive) {\n        \$answer = Read-Host'" "'    if (\$true) {\n        \$answer = Read-Host'"
    caught prompt
    mutate "'function Enable-OnrampTls {\n'" "'function Enable-OnrampTls {\n    Set-ExecutionPolicy Bypass -Scope CurrentUser\n'"
    caught policy
    mutate "'Test-Path -LiteralPath \$given'" "'Test-Path \$given'"
    caught paths
    mutate "\"'--decide', '--installer', 'ps1')\"" "\"'--decide')\""
    caught installer
    mutate "\"@('after-failure', '--prefix', \$S.Prefix, '--code', [string]\$Rc, '--installer', 'ps1', '--again', \$S.Again)\"" "\"@('after-failure', '--prefix', \$S.Prefix, '--code', [string]\$Rc, '--again', \$S.Again)\""
    caught installer
}

@test "flags, environment variables, exit codes, phases and messages: install.sh, install.ps1 and the helper agree" {
    run $CHECK parity "$REPO" "$H"
    assert_success
    assert_output --regexp "parity: [0-9]+ flags, [0-9]+ environment variables, 17 exit codes, 9 phases"
    # a copy of the sources with one difference each: named
    mkdir -p "$T/r/lib" "$T/r/helper/src"
    cp "$REPO/install.sh" "$REPO/install.ps1" "$T/r/"
    cp "$REPO"/lib/*.sh "$T/r/lib/"
    cp "$REPO/helper/src/state.rs" "$T/r/helper/src/"
    sed -i 's/^    \[switch\]\$AllowHttp,$//' "$T/r/install.ps1"
    run $CHECK parity "$T/r" "$H"
    assert_failure
    assert_output --partial "flag --allow-http of install.sh has no -AllowHttp in install.ps1"
    cp "$REPO/install.ps1" "$T/r/"
    sed -i 's/^        killed = 14$/        killed = 41/' "$T/r/install.ps1"
    run $CHECK parity "$T/r" "$H"
    assert_failure
    assert_output --partial "exit codes differ"
    cp "$REPO/install.ps1" "$T/r/"
    sed -i "s/'extras', 'configure'/'configure', 'extras'/" "$T/r/install.ps1"
    run $CHECK parity "$T/r" "$H"
    assert_failure
    assert_output --partial "phases differ"
    cp "$REPO/install.ps1" "$T/r/"
    sed -i 's/ONRAMP_MIRROR/ONRAMP_MIRRORS/' "$T/r/install.ps1"
    run $CHECK parity "$T/r" "$H"
    assert_failure
    assert_output --partial "ONRAMP_MIRROR: install.sh reads or documents it, install.ps1 does not"
}

@test "a truncated install.ps1 runs nothing: every cut at a line end, every byte of the last line" {
    run $CHECK truncation "$REPO/install.ps1"
    assert_success
    assert_output --regexp "[0-9]+ truncations, none runs anything"
}

@test "release writes install.ps1 with the Windows pins and the release's values; the helper as .exe; still holds every rule" {
    printf 'MZ\220\0 a Windows helper stand-in, never run\n' >"$T/onramp.exe"
    printf 'MZ\220\0 an arm64 one\n' >"$T/onramp-arm.exe"
    run "$H" release --manifest "$DEMO" --base-url https://x.example/s -o "$T/r" \
        --helper "linux-x86_64=$H" --helper "windows-x86_64=$T/onramp.exe" --helper "windows-aarch64=$T/onramp-arm.exe"
    assert_success
    assert_output --partial "irm https://x.example/s/install.ps1 | iex"
    assert_output --partial "& ([scriptblock]::Create((irm https://x.example/s/install.ps1))) -Prefix DIR -Yes"
    cmp "$T/r/onramp-0.1.0-windows-x86_64.exe" "$T/onramp.exe"
    cmp "$T/r/onramp-0.1.0-windows-aarch64.exe" "$T/onramp-arm.exe"
    sha_x64=$(sha256sum <"$T/onramp.exe" | cut -c1-64)
    sha_arm=$(sha256sum <"$T/onramp-arm.exe" | cut -c1-64)
    sha_lin=$(sha256sum <"$H" | cut -c1-64)
    grep -qF "        'windows-x86_64' { '$sha_x64' }" "$T/r/install.ps1"
    grep -qF "        'windows-aarch64' { '$sha_arm' }" "$T/r/install.ps1"
    grep -qF "@{ Base = 'https://x.example/s'; Stack = 'onramp-demo'; Manifest = 'https://x.example/s/manifest.json'; TrustKeys = '' }" "$T/r/install.ps1"
    # each installer pins its own platform's helpers only
    ! grep -q "$sha_lin" "$T/r/install.ps1"
    ! grep -q "$sha_x64" "$T/r/install.sh"
    grep -q "linux-x86_64) printf '$sha_lin'" "$T/r/install.sh"
    (cd "$T/r" && sha256sum -c --quiet SHA256SUMS)
    grep -q ' install.ps1$' "$T/r/SHA256SUMS"
    run $CHECK rules "$T/r/install.ps1"
    assert_success
    # only the pins and the release block differ from the checkout's
    diff "$REPO/install.ps1" "$T/r/install.ps1" | grep '^[<>]' >"$T/d" || true
    assert_equal "$(grep -c '^>' "$T/d")" 3
    assert_equal "$(grep -c '^<' "$T/d")" 1
}

@test "release refuses a helper of the wrong kind: an ELF for Windows, a PE for Linux; without a Windows helper it says how to add one" {
    run "$H" release --manifest "$DEMO" --base-url https://x.example/s -o "$T/r1" --helper "windows-x86_64=$H"
    assert_equal "$status" 2
    assert_output --partial "a Windows helper must be a Windows program"
    [ ! -e "$T/r1/install.ps1" ]
    printf 'MZ\220\0' >"$T/onramp.exe"
    run "$H" release --manifest "$DEMO" --base-url https://x.example/s -o "$T/r2" --helper "linux-x86_64=$T/onramp.exe"
    assert_equal "$status" 2
    assert_output --partial "this is a Windows program (PE), not a helper for this target"
    run "$H" release --manifest "$DEMO" --base-url https://x.example/s -o "$T/r3" --helper "linux-x86_64=$H"
    assert_success
    assert_output --partial "install.ps1 has no Windows helper pinned; pass --helper windows-x86_64=onramp.exe"
    [ -f "$T/r3/install.ps1" ]
    grep -qF "        default { '' }" "$T/r3/install.ps1"
}

@test "a bundle carries install.ps1, pinned, listed in its index and checked like every file" {
    printf 'MZ\220\0 a Windows helper stand-in\n' >"$T/onramp.exe"
    run "$H" bundle create --manifest "$DEMO" --helper "linux-x86_64=$H" --helper "windows-x86_64=$T/onramp.exe" \
        --target linux-x86_64 --target windows-x86_64 -o "$T/b"
    assert_success
    [ -f "$T/b/install.ps1" ] && [ -f "$T/b/onramp-0.1.0-windows-x86_64.exe" ]
    grep -qF "'windows-x86_64' { '$(sha256sum <"$T/onramp.exe" | cut -c1-64)' }" "$T/b/install.ps1"
    jq -e '.files[] | select(.path == "install.ps1")' "$T/b/index.json" >/dev/null
    run $CHECK rules "$T/b/install.ps1"
    assert_success
    printf '\n# changed\n' >>"$T/b/install.ps1"
    run "$H" bundle verify "$T/b"
    assert_equal "$status" 7
    assert_output --partial "install.ps1"
}

@test "platform: every OS difference is in helper/src/sys, each item paired across unix/windows and linux/macos" {
    run $CHECK platform "$REPO"
    assert_success
    assert_output --regexp "platform: [0-9]+ items paired"
    mkdir -p "$T/p/helper/src"
    cp -r "$REPO"/helper/src/. "$T/p/helper/src/"
    # a Windows item without its Unix twin is named
    printf '\npub fn only_here() {}\n' >>"$T/p/helper/src/sys/windows/mod.rs"
    run $CHECK platform "$T/p"
    assert_failure
    assert_output --partial "fn only_here has a windows version and no unix one"
    # so is a Linux item macOS lacks
    cp "$REPO/helper/src/sys/windows/mod.rs" "$T/p/helper/src/sys/windows/mod.rs"
    # (among the items, before the file's unit tests)
    sed -i '0,/^use /s//pub fn linux_only() {}\nuse /' "$T/p/helper/src/sys/unix/linux.rs"
    run $CHECK platform "$T/p"
    assert_failure
    assert_output --partial "fn linux_only has a linux version and no macos one"
    # and a module outside sys/ that calls the OS itself
    cp "$REPO/helper/src/sys/unix/linux.rs" "$T/p/helper/src/sys/unix/linux.rs"
    printf '\nfn pid() -> i32 { unsafe { libc::getpid() } }\n' >>"$T/p/helper/src/stamp.rs"
    run $CHECK platform "$T/p"
    assert_failure
    assert_output --partial "helper/src/stamp.rs:"
    assert_output --partial "names the OS directly"
}
