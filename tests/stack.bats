#!/usr/bin/env bats
# What a real stack hit (issue 10's list): an extra's own artifact, a
# tarball with a top-level directory, an extra's check that needs a retry,
# a rerun of a complete install that must not run extras again, and the
# helper killed by SIGKILL (exit 14, resumable).

load lib/common

setup() {
    common_setup
    W=$T/m
    mkdir -p "$W/artifacts" "$T/src/ragpkg-1.0/lib"
    echo 'print("rag")' >"$T/src/ragpkg-1.0/lib/rag.py"
    echo 'readme' >"$T/src/ragpkg-1.0/README"
    tar -C "$T/src" -czf "$W/artifacts/ragpkg-1.0.tar.gz" ragpkg-1.0
    head -c 5000 /dev/urandom >"$W/artifacts/model.bin"
    local tsha tsize msha msize
    tsha=$(sha256sum <"$W/artifacts/ragpkg-1.0.tar.gz" | cut -c1-64)
    tsize=$(stat -c %s "$W/artifacts/ragpkg-1.0.tar.gz")
    msha=$(sha256sum <"$W/artifacts/model.bin" | cut -c1-64)
    msize=$(stat -c %s "$W/artifacts/model.bin")
    jq -n --arg tsha "$tsha" --argjson tsize "$tsize" --arg msha "$msha" --argjson msize "$msize" '{
      schema: 1, name: "stack-test", version: "1.0.0",
      components: [
        {id: "model", kind: "model", install_path: "models/model.bin",
         artifacts: {any: {path: "artifacts/model.bin", sha256: $msha, size: $msize}}},
        {id: "rag", kind: "extra", depends_on: ["model"], install_dir: "extras/rag",
         artifacts: {any: {path: "artifacts/ragpkg-1.0.tar.gz", sha256: $tsha, size: $tsize,
                           unpack: "tar.gz", strip_components: 1}},
         command: ["sh", "-c", "echo run >> runs.log; test -f extras/rag/lib/rag.py"],
         check: ["sh", "-c", "n=$(cat tries 2>/dev/null || echo 0); echo $((n + 1)) > tries; [ $n -ge 1 ]"],
         retries: 3}
      ]}' >"$W/manifest.json"
}
teardown() { common_teardown; }

@test "an extra's own archive is fetched, verified and unpacked (strip_components) before its command; its check is retried" {
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    assert_output --partial "rag: unpacked into extras/rag"
    cmp "$PREFIX/extras/rag/lib/rag.py" "$T/src/ragpkg-1.0/lib/rag.py"
    cmp "$PREFIX/extras/rag/README" "$T/src/ragpkg-1.0/README"
    [ ! -e "$PREFIX/extras/rag/ragpkg-1.0" ]
    [ "$(cat "$PREFIX/runs.log")" = run ]
    # failed once, passed on the second try
    [ "$(cat "$PREFIX/tries")" = 2 ]
    jq -e '.steps[] | select(.id == "rag") | .status == "done"' "$(state_file)"
}

@test "a rerun of a complete install runs no extra again and announces nothing again" {
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    assert_output --partial "already installed"
    refute_output --partial "rag: running"
    [ "$(cat "$PREFIX/runs.log")" = run ]
    [ "$(cat "$PREFIX/tries")" = 2 ]
}

@test "strip_components is checked: only for archives, at most 16" {
    schema_valid "$W/manifest.json"
    jq '.components[1].artifacts.any.strip_components = 17' "$W/manifest.json" >"$W/bad.json"
    run "$H" plan --manifest "$W/bad.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial "components[1].artifacts.any.strip_components: at most 16"
    jq '.components[0].artifacts.any.strip_components = 1' "$W/manifest.json" >"$W/bad2.json"
    run "$H" plan --manifest "$W/bad2.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial 'only an archive ("unpack") has components to strip'
}

@test "the helper killed by SIGKILL mid-phase: exit 14 with the signal named, state interrupted, a rerun resumes and completes" {
    jq '.components[1].command = ["sh", "-c", "if [ ! -e killed ]; then : > killed; kill -9 $PPID; sleep 5; fi; echo run >> runs.log"]' \
        "$W/manifest.json" >"$W/kill.json"
    run onramp_install --manifest "$W/kill.json" --prefix "$PREFIX"
    assert_equal "$status" 14
    assert_output --partial "the helper was killed by signal 9"
    assert_output --partial "what finished is kept: run the installer again to resume"
    jq -e '.status == "interrupted" and .exit_code == 14' "$(state_file)"
    before=$(stat -c '%i %Y' "$PREFIX/models/model.bin")
    run onramp_install --manifest "$W/kill.json" --prefix "$PREFIX" --yes
    assert_success
    [ "$(stat -c '%i %Y' "$PREFIX/models/model.bin")" = "$before" ]
    [ "$(cat "$PREFIX/runs.log")" = run ]
}

@test "a rerun re-verifies placed models: a same-size corruption is found and placed again from the verified cache" {
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    printf 'XXXX' | dd of="$PREFIX/models/model.bin" bs=1 seek=100 conv=notrunc status=none
    [ "$(stat -c %s "$PREFIX/models/model.bin")" = "$(stat -c %s "$W/artifacts/model.bin")" ]
    ! cmp -s "$PREFIX/models/model.bin" "$W/artifacts/model.bin"
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    assert_output --partial "model: models/model.bin changed on disk since it was installed"
    cmp "$PREFIX/models/model.bin" "$W/artifacts/model.bin"
    # the extra was not run again for it
    [ "$(cat "$PREFIX/runs.log")" = run ]
    # deleted: the same
    rm "$PREFIX/models/model.bin"
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    assert_output --partial "model: models/model.bin is missing or unreadable; installing it again"
    cmp "$PREFIX/models/model.bin" "$W/artifacts/model.bin"
}

@test "a rerun notices what doctor notices: an extra whose output was deleted (a venv) is installed again in that one run" {
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    rm -r "$PREFIX/extras/rag/lib"
    run "$H" doctor --prefix "$PREFIX"
    assert_equal "$status" 15
    assert_output --partial "rag: extras/rag/lib/rag.py"
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    assert_output --regexp "rag: extras/rag/lib/rag.py[^;]*missing[^;]*; installing it again"
    refute_output --partial "nothing to do"
    cmp "$PREFIX/extras/rag/lib/rag.py" "$T/src/ragpkg-1.0/lib/rag.py"
    [ "$(cat "$PREFIX/runs.log")" = "$(printf 'run\nrun')" ]
    run "$H" doctor --prefix "$PREFIX"
    assert_success
    # and the next rerun finds nothing to do
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    refute_output --partial "installing it again"
    assert_output --partial "nothing to do: every component is as it was installed"
    [ "$(cat "$PREFIX/runs.log")" = "$(printf 'run\nrun')" ]
}
