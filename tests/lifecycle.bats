#!/usr/bin/env bats
# After the install: uninstall (the receipt reverted, last change first),
# doctor and repair, the cache's list and prune. Outcomes are files on
# disk: a snapshot of everything the test owns (HOME, the prefix's parent,
# the state and cache roots) before the install must equal the one after
# the uninstall.

load lib/common

setup_file() {
    export FH=${ONRAMP_TEST_HELPER_DYN:-}
}

setup() {
    common_setup
    # the test's own files, outside what `owned` compares
    S=$T/scratch
    mkdir -p "$S"
}
teardown() {
    "$H" services stop --prefix "$PREFIX" >/dev/null 2>&1 || true
    common_teardown
}

# Everything under $T except bats' own files, by type, mode, size, path
# and link target (not times: a kept file is checked by its bytes).
owned() {
    (cd "$T" && find . -mindepth 1 -not -path './bats*' -not -path './scratch*' -printf '%y %m %s %p %l\n' | LC_ALL=C sort)
}

@test "install, then uninstall --purge-cache: everything the install made is gone, nothing else changed; --dry-run changes nothing" {
    mkdir -p "$T/keep" && echo mine >"$T/keep/file"
    before=$(owned)
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    [ -f "$PREFIX/extras/rag/rag.conf" ]
    during=$(owned)
    run onramp_install --uninstall --dry-run --prefix "$PREFIX"
    assert_success
    assert_output --partial "remove models/chat-tiny.bin (model-chat)"
    assert_output --partial "remove extras/rag/rag.conf (rag)"
    assert_output --partial "remove config/server.conf (kept if you changed it"
    assert_output --partial "remove directory $PREFIX if nothing else is in it"
    [ "$(owned)" = "$during" ]
    run onramp_install --uninstall --purge-cache --prefix "$PREFIX"
    assert_success
    assert_output --partial "removed models/vision-base.bin (model-vision)"
    assert_output --partial "removed extras/rag/rag.conf (rag)"
    assert_output --partial "uninstalled onramp-demo from $PREFIX"
    diff -u <(echo "$before") <(owned)
    # once more: nothing to do, still exit 0, still nothing changed
    run onramp_install --uninstall --purge-cache --prefix "$PREFIX"
    assert_success
    assert_output --partial "nothing to uninstall"
    diff -u <(echo "$before") <(owned)
}

@test "what an uninstall leaves is listed whole: an empty directory an extra made (a venv's include/python3.11) and so the prefix" {
    demo_variant "$T/m/manifest.json" '(.components[] | select(.id == "rag") | .command) = ["sh", "-c", "mkdir -p extras/rag/venv/include/python3.11 && echo rag 1.0 > extras/rag/rag.conf"]'
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_success
    [ -d "$PREFIX/extras/rag/venv/include/python3.11" ]
    run "$H" uninstall --prefix "$PREFIX"
    assert_success
    assert_output --partial "left in $PREFIX (not onramp's, or kept): extras/rag/venv/include/python3.11/"
    [ -d "$PREFIX/extras/rag/venv/include/python3.11" ]
}

@test "uninstall keeps a config file the user changed (named), the models with --keep-models, and the cache without --purge-cache" {
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    echo "threads = 8" >>"$PREFIX/config/server.conf"
    cp "$PREFIX/config/server.conf" "$T/edited.conf"
    models=$(cd "$PREFIX/models" && sha256sum ./*)
    run "$H" uninstall --prefix "$PREFIX" --keep-models
    assert_success
    assert_output --partial "kept config/server.conf (you changed it after onramp wrote it)"
    assert_output --partial "kept models/chat-tiny.bin (model-chat, --keep-models)"
    assert_output --partial "the download cache is kept"
    cmp "$PREFIX/config/server.conf" "$T/edited.conf"
    [ "$(cd "$PREFIX/models" && sha256sum ./*)" = "$models" ]
    # nothing else of the install is left in the prefix
    [ "$(cd "$PREFIX" && find . -type f | LC_ALL=C sort)" = "$(printf '%s\n' ./config/server.conf ./models/chat-tiny.bin ./models/embed-small.bin ./models/vision-base.bin)" ]
    [ ! -e "$XDG_STATE_HOME/onramp" ]
    # the cache: five verified entries, now used by no install; prune drops them
    run "$H" cache list
    assert_success
    assert_output --partial "5 entries"
    assert_output --partial "no install uses it (cache prune removes it)"
    assert_output --partial "installs: none"
    run "$H" cache prune --dry-run
    assert_success
    assert_output --partial "would remove 5 entries"
    [ "$(ls "$XDG_CACHE_HOME/onramp/sha256" | wc -l)" = 5 ]
    run "$H" cache prune
    assert_success
    assert_output --partial "removed 5 entries"
    [ ! -e "$XDG_CACHE_HOME" ]
}

@test "cache prune keeps what a recorded install uses (a worker's sources too) and a partial download of an interrupted one" {
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    # an entry no install uses, and a stale partial with its lock
    echo stale >"$XDG_CACHE_HOME/onramp/sha256/$(printf 'a%.0s' $(seq 64))"
    : >"$XDG_CACHE_HOME/onramp/partial/$(printf 'b%.0s' $(seq 64)).part"
    : >"$XDG_CACHE_HOME/onramp/partial/$(printf 'b%.0s' $(seq 64)).lock"
    run "$H" cache list
    assert_success
    assert_output --partial "onramp-demo in $PREFIX (worker-hello)"
    assert_output --partial "onramp-demo in $PREFIX (model-chat)"
    run "$H" cache prune
    assert_success
    assert_output --partial "removed 2 entries"
    [ "$(ls "$XDG_CACHE_HOME/onramp/sha256" | wc -l)" = 5 ]
    [ -z "$(ls "$XDG_CACHE_HOME/onramp/partial" | grep -v '^[0-9a-f]*\.lock$' || true)" ]
    [ ! -e "$XDG_CACHE_HOME/onramp/partial/$(printf 'b%.0s' $(seq 64)).lock" ]
    # what is left is still enough to install offline, worker included
    run onramp_install --manifest "$DEMO" --prefix "$T/p2" --offline
    assert_success
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$T/p2")
}

@test "an extra's uninstall command runs before its files go; a failing one is named and the rest still goes" {
    demo_variant "$T/m/manifest.json" '(.components[] | select(.id == "rag")) += {uninstall: ["sh", "-c", "test -f extras/rag/rag.conf && echo undone > \"$ONRAMP_PREFIX/../undo.log\""]}'
    schema_valid "$T/m/manifest.json"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_success
    run "$H" uninstall --prefix "$PREFIX"
    assert_success
    assert_output --partial "ran rag's uninstall command"
    [ "$(cat "$T/undo.log")" = undone ]
    [ ! -e "$PREFIX" ]

    demo_variant "$T/m2/manifest.json" '(.components[] | select(.id == "rag")) += {uninstall: ["sh", "-c", "echo nope >&2; exit 3"]}'
    run onramp_install --manifest "$T/m2/manifest.json" --prefix "$PREFIX"
    assert_success
    run "$H" uninstall --prefix "$PREFIX"
    assert_success
    assert_output --partial "kept rag's uninstall command failed (exit 3"
    [ ! -e "$PREFIX" ]
    # only an extra may have one
    demo_variant "$T/m3/manifest.json" '(.components[] | select(.id == "model-chat")) += {uninstall: ["true"]}'
    run "$H" plan --manifest "$T/m3/manifest.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial "uninstall: only an extra has an uninstall command"
}

@test "uninstall refuses while an install of the prefix runs (exit 8), and resumes after a kill -9 of the install it undoes" {
    slow_manifest
    start_install_bg --manifest "$SLOW" --prefix "$PREFIX"
    wait_for_file "$T/extra-started"
    run "$H" uninstall --prefix "$PREFIX"
    assert_equal "$status" 8
    assert_output --regexp "another (install of .* is running|onramp \(PID [0-9]+\) is working on this install)"
    [ -f "$PREFIX/models/chat-tiny.bin" ]
    kill_bg
    # the killed install is undone
    run "$H" uninstall --prefix "$PREFIX" --purge-cache
    assert_success
    [ ! -e "$PREFIX" ]
    [ ! -e "$XDG_STATE_HOME" ]
    [ ! -e "$XDG_CACHE_HOME" ]
}

@test "uninstall killed (SIGKILL) at its durable operations, then run again: it completes and nothing is left" {
    [ -n "$FH" ] || skip "needs the fault-hook build (tests/run.sh builds it)"
    mkdir -p "$T/keep" && echo mine >"$T/keep/file"
    before=$(owned)
    # the uninstall's operations, counted once
    ONRAMP_HELPER=$FH setsid -w dash "$REPO/install.sh" --manifest "$DEMO" --prefix "$PREFIX" </dev/null >/dev/null 2>&1
    ONRAMP_FAULT_COUNTER=$S/count "$FH" uninstall --prefix "$PREFIX" --purge-cache >/dev/null 2>&1
    total=$(wc -l <"$S/count.log")
    rm -f "$S"/count*
    [ "$total" -ge 20 ]
    diff -u <(echo "$before") <(owned)
    # every operation with ONRAMP_FAULT_SWEEP=full, every other one in CI
    step=2
    [ "${ONRAMP_FAULT_SWEEP:-}" = full ] && step=1
    n=0
    for k in $(seq 1 "$step" "$total"); do
        ONRAMP_HELPER=$FH setsid -w dash "$REPO/install.sh" --manifest "$DEMO" --prefix "$PREFIX" </dev/null >"$S/i.out" 2>&1 || {
            cat "$S/i.out"
            return 1
        }
        rc=0
        rm -f "$S"/cnt*
        ONRAMP_FAULT_COUNTER=$S/cnt ONRAMP_FAULT=crash@$k "$FH" uninstall --prefix "$PREFIX" --purge-cache >"$S/u1.out" 2>&1 || rc=$?
        [ "$rc" = 137 ] || { echo "crash@$k: exit $rc"; cat "$S/u1.out"; return 1; }
        # a state left behind parses and says the uninstall did not finish
        sf=$("$H" state --prefix "$PREFIX" | head -n 1)
        if [ -e "$sf" ]; then
            jq -e '.status == "uninstalling" or .status == "complete"' "$sf" >/dev/null || { echo "crash@$k: state"; cat "$sf"; return 1; }
            if jq -e '.status == "uninstalling"' "$sf" >/dev/null; then
                run "$H" doctor --prefix "$PREFIX"
                assert_equal "$status" 15
                assert_output --partial "an uninstall of it did not finish"
            fi
        fi
        "$H" uninstall --prefix "$PREFIX" --purge-cache >"$S/u2.out" 2>&1 || { echo "crash@$k: rerun failed"; cat "$S/u2.out"; return 1; }
        diff -u <(echo "$before") <(owned) || { echo "crash@$k: left behind"; return 1; }
        n=$((n + 1))
    done
    echo "# uninstall: crashed at $n of $total operations, every rerun completed" >&3
    [ "$n" -ge $(((total + 1) / 2)) ]
}

@test "an install killed midway by an uninstall's crash installs again from the start" {
    [ -n "$FH" ] || skip "needs the fault-hook build (tests/run.sh builds it)"
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    # crash after a config file went, before the models did
    rc=0
    ONRAMP_FAULT_COUNTER=$T/cnt ONRAMP_FAULT=crash@10 "$FH" uninstall --prefix "$PREFIX" >/dev/null 2>&1 || rc=$?
    [ "$rc" = 137 ]
    [ ! -e "$PREFIX/config/server.conf" ]
    [ -e "$PREFIX/models/chat-tiny.bin" ]
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX" --yes
    assert_success
    assert_output --partial "an uninstall of onramp-demo from $PREFIX did not finish"
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX")
    run "$H" doctor --prefix "$PREFIX"
    assert_success
}

@test "doctor: ready after install; a deleted model, an edited server file and a failing health check are each named (exit 15)" {
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    run onramp_install --check --prefix "$PREFIX"
    assert_success
    assert_output --partial "ready"
    before=$(owned)
    rm "$PREFIX/models/vision-base.bin"
    echo "# edited" >>"$PREFIX/server/versions/1.0.0/bin/demo-server"
    run "$H" doctor --prefix "$PREFIX"
    assert_equal "$status" 15
    assert_output --partial "model-vision: models/vision-base.bin is missing"
    assert_output --partial "server: server/versions/1.0.0/bin/demo-server changed since onramp placed it"
    assert_output --partial "health check vision-answers fails"
    assert_output --partial "not ready: "
    # read-only: it changed nothing (the state neither)
    [ "$(owned | grep -v 'vision-base\|demo-server\|versions/1.0.0/bin$')" = "$(echo "$before" | grep -v 'vision-base\|demo-server\|versions/1.0.0/bin$')" ]
    jq -e '.steps[] | select(.id == "model-vision") | .status == "done"' "$(state_file)"
}

@test "doctor --deep finds a same-size change with the old time that the stat check cannot see" {
    run onramp_install --manifest "$DEMO" --prefix "$PREFIX"
    assert_success
    f=$PREFIX/models/chat-tiny.bin
    cp -p "$f" "$T/orig"
    printf 'X' | dd of="$f" bs=1 seek=100 conv=notrunc status=none
    touch -r "$T/orig" "$f"
    run "$H" doctor --prefix "$PREFIX"
    # the stat check passes; the model still answers (the demo server reads its size)
    refute_output --partial "chat-tiny.bin changed"
    run "$H" doctor --prefix "$PREFIX" --deep
    assert_equal "$status" 15
    assert_output --partial "model-chat: models/chat-tiny.bin changed since onramp placed it"
}

@test "install.sh --check --repair puts back a deleted model and an edited server from the cache, offline, touching nothing else" {
    mkdir -p "$T/m"
    cp -r "$REPO/examples/demo/." "$T/m/"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_success
    # the artifacts' source is gone: only the cache can put them back
    rm -rf "$T/m/artifacts"
    rm "$PREFIX/models/vision-base.bin"
    echo "# edited" >>"$PREFIX/server/versions/1.0.0/bin/demo-server"
    keep=$(stat -c '%i %Y %n' "$PREFIX/models/chat-tiny.bin" "$PREFIX/models/embed-small.bin" "$PREFIX/workers/worker-hello/bin/hello-worker" "$PREFIX/config/server.conf")
    run onramp_install --check --repair --offline --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_success
    assert_output --partial "repair: server, model-vision will be put back"
    assert_output --partial "reinstalled 1.0.0 (its installed files had changed)"
    assert_output --partial "ready"
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX")
    [ "$(stat -c '%i %Y %n' "$PREFIX/models/chat-tiny.bin" "$PREFIX/models/embed-small.bin" "$PREFIX/workers/worker-hello/bin/hello-worker" "$PREFIX/config/server.conf")" = "$keep" ]
    run "$H" doctor --prefix "$PREFIX" --deep
    assert_success
}

@test "doctor and uninstall of a prefix with nothing recorded; check needs no manifest" {
    run "$H" doctor --prefix "$PREFIX"
    assert_equal "$status" 15
    assert_output --partial "not ready: nothing is installed in $PREFIX"
    run onramp_install --uninstall --prefix "$PREFIX"
    assert_success
    assert_output --partial "nothing to uninstall"
    [ ! -e "$XDG_STATE_HOME" ]
    run onramp_install --uninstall
    assert_equal "$status" 2
    assert_output --partial "--uninstall needs --prefix DIR (the install to undo)"
}

@test "a worker installed by a retry run is linked onto PATH in that run: configure runs again after any retry" {
    demo_variant "$T/m/manifest.json" '.expose = ["server/current/bin/demo-server", "workers/worker-hello/bin/hello-worker"]'
    rm "$T/m/catalog"
    cp -r "$REPO/examples/demo/catalog" "$T/m/catalog"
    # the worker's source is missing the first time
    mv "$T/m/catalog/workers/hello/hello-worker-1.0.0.tar.gz" "$T/src.tar.gz"
    bin=$HOME/.local/bin
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX" --bin-dir "$bin"
    assert_equal "$status" 9
    [ -L "$bin/demo-server" ]
    [ ! -e "$bin/hello-worker" ]
    mv "$T/src.tar.gz" "$T/m/catalog/workers/hello/hello-worker-1.0.0.tar.gz"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX" --bin-dir "$bin"
    assert_success
    assert_output --partial "worker-hello failed earlier: retry it"
    [ "$("$bin/hello-worker" ping)" = PING ]
}

@test "expose: commands are linked into the bin dir and the PATH line is printed; --modify-path adds one block per profile; uninstall takes exactly those away" {
    demo_variant "$T/m/manifest.json" '.expose = ["server/current/bin/demo-server", "workers/worker-hello/bin/hello-worker"]'
    schema_valid "$T/m/manifest.json"
    bin=$HOME/.local/bin
    # the user's own profiles: one without a final newline, one a link (a dotfile manager's)
    printf 'alias ll="ls -l"' >"$HOME/.bashrc"
    mkdir -p "$T/dotfiles" && printf '# mine\nexport EDITOR=vi\n' >"$T/dotfiles/zshrc"
    ln -s "$T/dotfiles/zshrc" "$HOME/.zshrc"
    mkdir -p "$HOME/.config/fish"
    before=$(owned)
    sums=$(sha256sum "$HOME/.bashrc" "$T/dotfiles/zshrc")
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX" --bin-dir "$bin"
    assert_success
    assert_output --partial "on PATH: demo-server, hello-worker"
    assert_output --partial "demo-server, hello-worker linked in $bin, which is not on your PATH; add this line to your shell's profile (or install with --modify-path): export PATH=\"$bin:\$PATH\""
    [ "$(readlink "$bin/demo-server")" = "$PREFIX/server/current/bin/demo-server" ]
    [ "$("$bin/hello-worker" ping)" = PING ]
    [ ! -e "$HOME/.profile" ]
    run env SHELL=/bin/bash ONRAMP_MODIFY_PATH=1 bash -c 'ONRAMP_HELPER=$0 setsid -w dash "$1" --manifest "$2" --prefix "$3" --bin-dir "$4" </dev/null' "$H" "$REPO/install.sh" "$T/m/manifest.json" "$PREFIX" "$bin"
    assert_success
    assert_output --partial "is on PATH in your shell profiles from your next login shell"
    # one block in each: .profile (made), .bashrc, the linked .zshrc's target
    for f in "$HOME/.profile" "$HOME/.bashrc" "$T/dotfiles/zshrc"; do
        [ "$(grep -c '^# >>> onramp onramp-demo' "$f")" = 1 ]
    done
    [ -L "$HOME/.zshrc" ]
    fish=$HOME/.config/fish/conf.d/onramp-onramp-demo.fish
    grep -qx "    set -gx PATH '$bin' \$PATH" "$fish"
    # a login shell with a bare PATH finds the commands
    run env -i HOME="$HOME" PATH=/usr/bin:/bin sh -c '. "$HOME/.profile"; command -v demo-server; hello-worker ping'
    assert_success
    assert_output "$bin/demo-server
PING"
    # running it again adds no second block
    run env ONRAMP_MODIFY_PATH=1 bash -c 'ONRAMP_HELPER=$0 setsid -w dash "$1" --manifest "$2" --prefix "$3" --bin-dir "$4" </dev/null' "$H" "$REPO/install.sh" "$T/m/manifest.json" "$PREFIX" "$bin"
    assert_success
    [ "$(grep -c '^# >>> onramp onramp-demo' "$HOME/.bashrc")" = 1 ]
    run onramp_install --uninstall --purge-cache --prefix "$PREFIX"
    assert_success
    assert_output --partial "removed onramp's PATH block from $HOME/.bashrc"
    assert_output --partial "removed the link $bin/demo-server"
    [ "$(sha256sum "$HOME/.bashrc" "$T/dotfiles/zshrc")" = "$sums" ]
    [ -L "$HOME/.zshrc" ]
    diff -u <(echo "$before") <(owned)
}

@test "expose never replaces a file that is not onramp's, and uninstall leaves a link someone repointed" {
    demo_variant "$T/m/manifest.json" '.expose = ["server/current/bin/demo-server", "workers/worker-hello/bin/hello-worker"]'
    bin=$T/bin
    mkdir -p "$bin" && echo '#!/bin/sh' >"$bin/demo-server"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX" --bin-dir "$bin"
    assert_success
    assert_output --partial "demo-server: not linked, $bin/demo-server exists and is not onramp's"
    [ "$(cat "$bin/demo-server")" = '#!/bin/sh' ]
    [ -L "$bin/hello-worker" ]
    ln -sfn /bin/true "$bin/hello-worker"
    run "$H" uninstall --prefix "$PREFIX"
    assert_success
    assert_output --partial "kept $bin/hello-worker (it is no longer onramp's link)"
    [ "$(readlink "$bin/hello-worker")" = /bin/true ]
    [ "$(cat "$bin/demo-server")" = '#!/bin/sh' ]
    # the same stack in a second prefix: the first one's link is named as another install's
    rm "$bin/hello-worker"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX" --bin-dir "$bin"
    assert_success
    [ "$(readlink "$bin/hello-worker")" = "$PREFIX/workers/worker-hello/bin/hello-worker" ]
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$T/second" --bin-dir "$bin"
    assert_success
    assert_output --partial "hello-worker: not linked, $bin/hello-worker is the link of another install (onramp-demo"
    assert_output --partial "in $PREFIX); run $T/second/workers/worker-hello/bin/hello-worker directly, or uninstall that one first"
    refute_output --partial "hello-worker exists and is not onramp's"
    [ "$(readlink "$bin/hello-worker")" = "$PREFIX/workers/worker-hello/bin/hello-worker" ]
    # not a command name
    demo_variant "$T/m2/manifest.json" '.expose = ["server/current/bin/demo-server", "models/demo-server"]'
    run "$H" plan --manifest "$T/m2/manifest.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial "expose[1]: two exposed commands are named \"demo-server\""
}

@test "a failed install keeps what it did and says how to undo it; --rollback-on-failure undoes it unattended" {
    demo_variant "$T/m/manifest.json" '.components += [{"id": "broken", "kind": "extra", "command": ["sh", "-c", "echo half > half-done; exit 4"]}]'
    before=$(owned)
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX"
    assert_equal "$status" 9
    # the hint names the install.sh that ran, as a command that works from anywhere
    assert_output --regexp "kept what was installed: run the installer again to retry, or undo it with: sh /[^ ]*/install.sh --uninstall --prefix $PREFIX"
    [ -f "$PREFIX/models/chat-tiny.bin" ]
    rm -rf "$PREFIX" "$XDG_STATE_HOME" "$XDG_CACHE_HOME"
    run onramp_install --manifest "$T/m/manifest.json" --prefix "$PREFIX" --rollback-on-failure
    assert_equal "$status" 9
    assert_output --partial "undoing what this install did (--rollback-on-failure)"
    assert_output --partial "removed half-done (broken)"
    [ ! -e "$PREFIX" ]
    [ ! -e "$XDG_STATE_HOME" ]
    # only the cache is left (verified downloads are kept for the next try)
    diff -u <(echo "$before") <(owned | grep -v '^[df] [0-9]* [0-9]* ./cache')
}
