#!/usr/bin/env bats
# install.sh end to end on the demo stack, in the shell and form under test
# (ONRAMP_TEST_SHELL, ONRAMP_TEST_FORM). Every test asserts real outcomes:
# exit codes, bytes in the prefix, the state file, the event stream.

load lib/common

setup() { common_setup; }
teardown() { common_teardown; }

@test "a fresh install of the demo gives the expected tree, events and summary" {
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX" --events "$T/ev.ndjson" --summary-json "$T/sum.json"
    assert_success
    assert_output --partial "You can now use: chat"
    assert_output --partial "[9/9] validate"
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX")
    # events: strictly increasing seq, overall_progress monotonic in [0,1], one terminal event
    jq -s -e '
        (map(.seq) | . == [range(1; length + 1)]) and
        ([.[].overall_progress] | . == sort and all(. >= 0 and . <= 1)) and
        (map(select(.type == "finished")) | length == 1 and .[0].status == "success" and .[0].exit_code == 0) and
        (map(select(.new_capability != null) | .new_capability) | index("chat") != null) and
        (all(has("current_step") and has("total_steps") and has("step_name") and has("step_progress")
             and has("bytes_downloaded") and has("bytes_total") and has("estimated_remaining_s") and has("message")))
    ' "$T/ev.ndjson"
    jq -e '.status == "success" and .exit_code == 0 and (.components | length == 6) and (.capabilities | index("vision") != null)' "$T/sum.json"
    # the worker was compiled here and runs; capabilities.json says what is installed
    [ "$("$PREFIX/workers/worker-hello/bin/hello-worker" --version)" = "hello-worker 1.0.0" ]
    jq -e '(.capabilities == ["chat","embeddings","hello-worker","rag","server","vision","workers"])
        and (.components | map(select(.id == "worker-hello"))[0].version == "1.0.0-1")' "$PREFIX/capabilities.json"
    jq -e '.steps[] | select(.id == "worker-hello") | .files == ["workers/worker-hello/bin/hello-worker"]' "$(state_file)"
    # the build's output went into the event stream line by line
    jq -s -e 'map(select(.type == "output" and .component == "worker-hello") | .message) | index("self-test passed") != null' "$T/ev.ndjson"
    jq -e '.status == "complete" and .owner == null and ([.phases[].status] | all(. == "done"))' "$(state_file)"
}

@test "smallest model first: chat unlocks before embeddings before vision" {
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX" --events "$T/ev.ndjson"
    assert_success
    assert_demo_unlock_order "$T/ev.ndjson"
}

@test "events in SSE format carry the same fields" {
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX" --events "$T/ev.sse" --events-format sse
    assert_success
    grep -q '^event: finished$' "$T/ev.sse"
    sed -n 's/^data: //p' "$T/ev.sse" | jq -s -e 'length > 10 and (last.type == "finished") and (map(.seq) | . == sort)'
}

@test "--dry-run prints the plan and changes nothing on disk" {
    mkdir -p "$T/cache" "$T/state"
    # the release form caches its verified helper on first use; do that first
    [ "$ONRAMP_TEST_FORM" = checkout ] || onramp_install --manifest "$DEMO" --prefix "$PREFIX" --dry-run >/dev/null 2>&1
    before=$(snapshot "$T/home" "$T/cache" "$T/state" "$PREFIX")
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX" --dry-run
    assert_success
    assert_output --partial "Dry run: nothing will be changed"
    assert_output --partial "model-chat: 12.0 kB"
    # the demo's artifacts are files beside its manifest: nothing to download
    assert_output --regexp "  [0-9.]+ [kM]B to copy from disk"
    refute_output --partial "to download at most"
    after=$(snapshot "$T/home" "$T/cache" "$T/state" "$PREFIX")
    [ "$before" = "$after" ]
}

@test "no terminal and no --yes: a resumable install is refused with exit 10 naming --yes" {
    interrupted_install
    run onramp_install --manifest "$SLOW" --prefix "$PREFIX"
    assert_equal "$status" 10
    assert_output --partial "pass --yes to resume or --fresh to start over"
    assert_output --partial "completed through phase 6, workers"
    [ ! -e "$PREFIX/config/server.conf" ]
}

@test "--yes resumes after kill -9 from phase 7 and the result equals an uninterrupted install" {
    interrupted_install
    jq -e . "$(state_file)" >/dev/null
    run onramp_install --manifest "$SLOW" --prefix "$PREFIX" --yes
    assert_success
    assert_output --partial "Completed through phase 6 (workers). Resume from phase 7 (extras)? [Y/n] yes (--yes)"
    assert_output --partial "[5/9] models: done earlier"
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX")
}

@test "the resume prompt is answered on a terminal: y resumes, n starts over" {
    command -v script >/dev/null || skip "script(1) missing"
    interrupted_install
    install_argv
    local env=""
    [ "$ONRAMP_TEST_FORM" = dist ] || env="ONRAMP_HELPER=$H"
    printf 'n\n' >"$T/answer"
    run script -qec "env $env ${INSTALL[*]} --manifest $SLOW --prefix $PREFIX" /dev/null <"$T/answer"
    assert_success
    assert_output --partial "Completed through phase 6 (workers). Resume from phase 7 (extras)? [Y/n]"
    assert_output --partial "starting over"
    assert_output --partial "[1/9] preflight"
    # and once more (the install is complete now: --fresh starts another),
    # interrupted again, answered yes
    rm -f "$T/release" "$T/extra-started"
    interrupted_install --fresh
    printf 'y\n' >"$T/answer"
    run script -qec "env $env ${INSTALL[*]} --manifest $SLOW --prefix $PREFIX" /dev/null <"$T/answer"
    assert_success
    assert_output --partial "[1/9] preflight: done earlier"
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX")
}

@test "a saved install older than the TTL is not resumed (faketime, +25 h)" {
    [ -n "${ONRAMP_TEST_HELPER_DYN:-}" ] || skip "needs the dynamic helper build"
    command -v faketime >/dev/null || skip "faketime missing"
    [ "$ONRAMP_TEST_FORM" = checkout ] || skip "faketime needs the dynamic helper (checkout form)"
    interrupted_install
    install_argv
    H=$ONRAMP_TEST_HELPER_DYN
    ONRAMP_HELPER=$H run setsid -w faketime -f '+25h' "${INSTALL[@]}" --manifest "$SLOW" --prefix "$PREFIX" </dev/null
    assert_success
    assert_output --partial "is not resumed: it is older than 24 h"
    assert_output --partial "[1/9] preflight"
    refute_output --partial "done earlier"
}

@test "--state-ttl is honoured: a TTL of 0 hours never resumes" {
    interrupted_install
    sleep 1.1
    run onramp_install --manifest "$SLOW" --prefix "$PREFIX" --state-ttl 0
    assert_success
    assert_output --partial "is not resumed: it is older than 0 h"
}

@test "another prefix has its own state: the interrupted one stays resumable" {
    interrupted_install
    saved=$(cat "$(state_file)")
    run onramp_install --manifest "$SLOW" --prefix "$T/other"
    assert_success
    refute_output --partial "Resume"
    [ "$(cat "$(state_file)")" = "$saved" ]
    run onramp_install --manifest "$SLOW" --prefix "$PREFIX" --yes
    assert_success
    assert_output --partial "Resume from phase 7 (extras)"
}

@test "a changed manifest of the same stack is an upgrade: what was done and is unchanged is kept" {
    interrupted_install
    jq '.description = "changed"' "$SLOW" >"$SLOW.new" && mv "$SLOW.new" "$SLOW"
    run onramp_install --manifest "$SLOW" --prefix "$PREFIX"
    assert_success
    assert_output --partial "upgrading (what it repeats unchanged is kept)"
    assert_output --regexp "unchanged: [1-9]"
    refute_output --partial "upgrade server"
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX")
}

@test "--fresh restarts the phases and reuses verified downloads" {
    interrupted_install
    inodes=$(stat -c '%i %Y' "$T/cache/onramp/sha256/"*)
    run onramp_install --manifest "$SLOW" --prefix "$PREFIX" --fresh
    assert_success
    assert_output --partial "--fresh: starting over"
    assert_output --partial "[1/9] preflight"
    [ "$(stat -c '%i %Y' "$T/cache/onramp/sha256/"*)" = "$inodes" ]
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX")
}

@test "a second concurrent install of the same prefix is refused naming the first one's PID" {
    slow_manifest
    start_install_bg --manifest "$SLOW" --prefix "$PREFIX"
    wait_for_file "$T/extra-started"
    run onramp_install --manifest "$SLOW" --prefix "$PREFIX" --yes
    assert_equal "$status" 8
    assert_output --regexp "another (install of .* is running|onramp) \(PID [0-9]+\)"
    touch "$T/release"
    wait "$BG"
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX")
}

@test "a corrupt state file is kept aside, reported, and the install starts fresh" {
    interrupted_install
    sf=$(state_file)
    head -c 100 "$sf" >"$sf.cut" && mv "$sf.cut" "$sf"
    run onramp_install --manifest "$SLOW" --prefix "$PREFIX" --yes
    assert_success
    assert_output --partial "the saved state could not be used"
    ls "$(dirname "$sf")"/state.json.*.corrupt
    jq -e '.status == "complete"' "$sf"
}

@test "Ctrl-C (SIGINT to the group) exits 130 and the state says interrupted" {
    slow_manifest
    start_install_bg --manifest "$SLOW" --prefix "$PREFIX" --events "$T/ev.ndjson"
    wait_for_file "$T/extra-started"
    kill -INT -- "-$BG"
    status=0
    wait "$BG" || status=$?
    assert_equal "$status" 130
    jq -e '.status == "interrupted" and .exit_code == 130' "$(state_file)"
    tail -n 1 "$T/ev.ndjson" | jq -e '.type == "finished" and .status == "interrupted" and .exit_code == 130'
    # One terminal event for the run, at the phase it stopped in, with the
    # whole plan's bytes (not a 9/9 with fewer bytes than the run showed).
    jq -s -e '(map(select(.type == "finished")) | length == 1)
        and (map(select(.type == "finished"))[0] | .current_step == 7 and .step_name == "extras")
        and (map(select(.type == "finished"))[0].bytes_total == (map(select(.type == "phase_started" and .step_name == "models"))[0].bytes_total))
        and (map(select(.type == "finished"))[0].overall_progress < 1)' "$T/ev.ndjson"
    n1=$(wc -l <"$T/ev.ndjson")
    touch "$T/release"
    run onramp_install --manifest "$SLOW" --prefix "$PREFIX" --yes --events "$T/ev.ndjson"
    assert_success
    assert_output --partial "Resume from phase 7 (extras)"
    # The resumed run continues the same stream: one more terminal event,
    # progress still monotonic and reaching 1.
    jq -s -e '(map(select(.type == "finished")) | length == 2)
        and ([.[].overall_progress] | . == sort) and (last.overall_progress == 1)
        and (map(.seq) | . == [range(1; length + 1)])' "$T/ev.ndjson"
    [ "$(wc -l <"$T/ev.ndjson")" -gt "$n1" ]
}

@test "a failed component skips its dependents, independent ones finish, exit 9 with reasons" {
    demo_variant "$T/m/manifest.json" '(.components[] | select(.id == "model-embed") | .artifacts.any.sha256) |= ("0" * 64)'
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX" --summary-json "$T/sum.json"
    assert_equal "$status" 9
    assert_output --regexp "failed +model-embed: .*does not match the manifest"
    assert_output --regexp "skipped +rag \(optional\): depends on model-embed, which failed"
    assert_output --partial "You can now use: server, vision, chat"
    [ -f "$PREFIX/models/chat-tiny.bin" ] && [ -f "$PREFIX/models/vision-base.bin" ] && [ ! -e "$PREFIX/models/embed-small.bin" ]
    jq -e '.exit_code == 9 and (.components[] | select(.id == "model-chat") | .status == "done")' "$T/sum.json"
}

@test "a failing optional extra only warns: exit 0" {
    demo_variant "$T/m/manifest.json" '(.components[] | select(.id == "rag") | .command) = ["sh", "-c", "echo boom >&2; exit 3"]'
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_success
    assert_output --regexp "failed +rag \(optional\): command sh -c .* failed \(exit 3: boom\)"
}

@test "a required component without a build for this machine is refused by name (exit 5)" {
    demo_variant "$T/m/manifest.json" '(.components[] | select(.id == "server") | .artifacts) |= {"linux-armv7": .any}'
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_equal "$status" 5
    assert_output --partial "server requires linux-armv7; current: linux-x86_64"
    [ ! -e "$PREFIX" ]
}

@test "manifest errors name the JSON path and exit 3: unknown field, no checksum" {
    demo_variant "$T/m/manifest.json" '.components[1].artifacts.any.colour = "red"'
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial "components[1].artifacts.any"
    assert_output --partial "colour"
    demo_variant "$T/m/manifest.json" 'del(.components[2].artifacts.any.sha256)'
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial "no checksum, no install"
    [ ! -e "$PREFIX" ]
}

@test "a server upgrade that fails its check is rolled back; one that passes switches atomically" {
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    # 2.0.0 reports the wrong version: its check fails
    mkdir -p "$T/srv/bin"
    sed 's/^version=1.0.0$/version=1.9.9/' "$REPO/examples/demo/src/bin/demo-server" >"$T/srv/bin/demo-server"
    chmod 755 "$T/srv/bin/demo-server"
    tar -C "$T/srv" -czf "$T/bad.tar.gz" bin
    demo_variant "$T/m/manifest.json" "(.components[0]) |= (.version = \"2.0.0\" | .version_check.expect = \"2.0.0\"
        | .artifacts.any = {\"path\": \"$T/bad.tar.gz\", \"size\": $(stat -c %s "$T/bad.tar.gz"), \"sha256\": \"$(sha256sum <"$T/bad.tar.gz" | cut -c1-64)\", \"unpack\": \"tar.gz\"})"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_equal "$status" 9
    assert_output --partial "2.0.0 failed its version check"
    assert_output --partial "rolled back, kept versions/1.0.0"
    [ "$(readlink "$PREFIX/server/current")" = versions/1.0.0 ]
    [ "$(ONRAMP_PREFIX=$PREFIX "$PREFIX/server/current/bin/demo-server" --version)" = "demo-server 1.0.0" ]
    # a good 2.0.0
    sed 's/^version=1.0.0$/version=2.0.0/' "$REPO/examples/demo/src/bin/demo-server" >"$T/srv/bin/demo-server"
    tar -C "$T/srv" -czf "$T/good.tar.gz" bin
    jq --arg p "$T/good.tar.gz" --argjson s "$(stat -c %s "$T/good.tar.gz")" --arg h "$(sha256sum <"$T/good.tar.gz" | cut -c1-64)" \
        '.components[0].artifacts.any = {"path": $p, "size": $s, "sha256": $h, "unpack": "tar.gz"}' "$T/m/manifest.json" >"$T/m/m2.json"
    run onramp_install --manifest "$T/m/m2.json" --prefix "$PREFIX"
    assert_success
    assert_output --partial "upgraded from versions/1.0.0 to 2.0.0"
    [ "$(readlink "$PREFIX/server/current")" = versions/2.0.0 ]
    [ "$(ls "$PREFIX/server/versions")" = 2.0.0 ]
}

@test "a config file the user changed is kept; the new one is written beside it as .new" {
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    echo "listen = 0.0.0.0:9999" >"$PREFIX/config/server.conf"
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    assert_output --partial "config/server.conf was changed by you"
    [ "$(cat "$PREFIX/config/server.conf")" = "listen = 0.0.0.0:9999" ]
    grep -q '^listen = 127.0.0.1:8765$' "$PREFIX/config/server.conf.new"
}

@test "a re-run of a complete install changes nothing and fetches nothing" {
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    before=$(snapshot "$PREFIX")
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    assert_output --partial "already installed"
    assert_output --partial "[6/9] workers: done earlier"
    assert_output --partial "2 already as they should be"
    # not a file rewritten, not a worker rebuilt: modes, sizes and mtimes as they were
    [ "$(snapshot "$PREFIX")" = "$before" ]
    jq -e '.status == "complete" and .exit_code == 0' "$(state_file)"
}

@test "usage errors exit 2 with a one-line message" {
    run onramp_install --bogus
    assert_equal "$status" 2
    assert_output --partial "unknown option '--bogus'"
    run onramp_install --manifest
    assert_equal "$status" 2
    assert_output --partial "--manifest needs a value"
    run onramp_install --prefix "$PREFIX"
    assert_equal "$status" 2
    assert_output --partial "no manifest"
    # an uninstall says what it needs to know: which install
    run onramp_install --uninstall
    assert_equal "$status" 2
    assert_output --partial "--uninstall needs --prefix DIR (the install to undo)"
    # values the helper checks before anything is done (install.ps1 makes
    # the same call: wine.bats), in this installer's spelling
    for bad in "--connections 0:--connections 0: use 1 to 64" \
        "--gpu nvidia:--gpu nvidia: use one of cuda, rocm, metal, intel, cpu" \
        "--events-format xml:--events-format xml: use ndjson or sse" \
        "--state-ttl soon:--state-ttl soon: use a whole number of hours"; do
        # shellcheck disable=SC2086 # flag and value, split on purpose
        run onramp_install --manifest "$DEMO" --prefix "$PREFIX" ${bad%%:*}
        assert_equal "$status" 2
        assert_output --partial "${bad#*:}"
        [ ! -e "$PREFIX" ]
    done
    ONRAMP_CONNECTIONS=99 run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_equal "$status" 2
    assert_output --partial "--connections 99: use 1 to 64"
}

@test "an unreadable serial record (a symbolic link loop: ELOOP) is exit 12 naming the file, not an internal error" {
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    local rec
    rec=$(find "$T/state" -path '*/serials/*.json' | head -n 1)
    [ -n "$rec" ]
    rm "$rec"
    ln -s "$(basename "$rec")" "$rec"
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_equal "$status" 12
    assert_output --partial "$rec"
    assert_output --partial "symbolic links"
}

@test "orphan temp files left by a killed run are removed at start" {
    interrupted_install
    sd=$(dirname "$(state_file)")
    touch "$sd/.onramp-tmp-999-0-state.json" "$PREFIX/.onramp-tmp-999-0-x"
    mkdir -p "$PREFIX/models/.onramp-tmp-999-1-chat-tiny.bin.d"
    run onramp_install --manifest "$SLOW" --prefix "$PREFIX" --yes
    assert_success
    [ -z "$(find "$sd" "$PREFIX" -name '.onramp-tmp-*')" ]
}

@test "a failing health check marks its component failed by name: exit 9" {
    demo_variant "$T/m/manifest.json" '(.health_checks[] | select(.name == "chat-answers") | .command) = ["sh", "-c", "echo no answer >&2; exit 1"]
        | (.health_checks[] | select(.name == "chat-answers") | .retries) = 2'
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX" --summary-json "$T/sum.json"
    assert_equal "$status" 9
    assert_output --regexp "failed +model-chat: health check chat-answers failed after 2 tries: exit 1: no answer"
    assert_output --partial "check vision-answers: ok"
    jq -e '(.components[] | select(.id == "model-chat") | .status == "failed") and (.components[] | select(.id == "model-vision") | .status == "done")' "$T/sum.json"
}
