#!/usr/bin/env bats
# kill -9 at 50 random moments during a demo install served by nginx on
# loopback (rate-limited so the kills land in every phase), each resumed
# with --yes. After every kill the state file parses; after every resume the
# prefix is byte-identical to an uninterrupted install, and no artifact that
# was verified in the cache before the kill is requested again.

load lib/common
load lib/nginx

setup_file() {
    export KR_KILLS=${KR_KILLS:-50}
}

setup() {
    common_setup
    nginx_start "$REPO/examples/demo/artifacts" 600k
    mkdir -p "$T/m"
    nginx_manifest "$T/m/manifest.json"
    M=$T/m/manifest.json
}
teardown() { nginx_stop; common_teardown; }

# sha256 -> served file name, from the manifest
uri_of() {
    jq -r --arg s "$1" '.components[] | select(.artifacts) | .artifacts[] | select(.sha256 == $s) | .url | sub("^http://[^/]*"; "")' "$M"
}

@test "uninterrupted install over http from nginx matches the golden tree" {
    run onramp_install --manifest "$M" --prefix "$PREFIX" --allow-http
    assert_success
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX")
}

@test "install.sh --mirror serves artifacts whose own URLs are dead (a mirror may be plain http)" {
    jq '.components |= map(if .artifacts then .artifacts |= with_entries(.value.url |= sub("^http://[^/]*"; "https://127.0.0.1:9")) else . end)' "$M" >"$T/m/dead.json"
    run onramp_install --manifest "$T/m/dead.json" --prefix "$PREFIX" --offline
    assert_equal "$status" 9
    run onramp_install --manifest "$T/m/dead.json" --prefix "$PREFIX" --mirror "http://127.0.0.1:$NGINX_PORT" --connections 2
    assert_success
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX")
}

@test "over http the models download at once under one budget, and unlock smallest first" {
    run onramp_install --manifest "$M" --prefix "$PREFIX" --allow-http --events "$T/ev.ndjson"
    assert_success
    assert_demo_unlock_order "$T/ev.ndjson"
    # the downloads overlapped: the largest model's first request started
    # (end time minus duration) before the embeddings model's last one ended
    vision_start=$(awk '$1 == "/vision-base.bin" { printf "%.3f\n", $(NF - 1) - $NF }' "$NGINX_LOG" | sort -n | head -n 1)
    embed_end=$(awk '$1 == "/embed-small.bin" { printf "%.3f\n", $(NF - 1) }' "$NGINX_LOG" | sort -n | tail -n 1)
    awk -v a="$vision_start" -v b="$embed_end" 'BEGIN { exit !(a < b) }'
}

@test "plain http is refused without --allow-http (exit 9, reason named)" {
    run onramp_install --manifest "$M" --prefix "$PREFIX"
    assert_equal "$status" 9
    assert_output --partial "refusing plain http"
}

@test "$KR_KILLS random kill -9 points, each resumed with --yes: identical prefix, no verified artifact refetched" {
    # measure one uninterrupted run to spread the kill points over it
    local t0 t1 dur i
    t0=$(date +%s%N)
    onramp_install --manifest "$M" --prefix "$T/ref" --allow-http >/dev/null 2>&1
    t1=$(date +%s%N)
    dur=$(( (t1 - t0) / 1000000 ))
    for i in $(seq "$KR_KILLS"); do
        rm -rf "$PREFIX" "$XDG_CACHE_HOME" "$XDG_STATE_HOME"
        local at=$(( (RANDOM * 32768 + RANDOM) % (dur + 1) ))
        start_install_bg --manifest "$M" --prefix "$PREFIX" --allow-http
        sleep "$(printf '0.%03d' "$at" | sed 's/^0\.\([0-9]\)\([0-9]\{3\}\)$/\1.\2/')"
        kill_bg
        sf=$(state_file)
        if [ -e "$sf" ]; then
            jq -e . "$sf" >/dev/null || { echo "kill $i at ${at} ms: state does not parse" >&2; return 1; }
        fi
        local logn verified=()
        logn=$(wc -l <"$NGINX_LOG")
        for f in "$XDG_CACHE_HOME"/onramp/sha256/*; do
            [ -e "$f" ] && verified+=("$(uri_of "$(basename "$f")")")
        done
        run onramp_install --manifest "$M" --prefix "$PREFIX" --allow-http --yes
        if [ "$status" != 0 ]; then
            echo "kill $i at ${at} ms: resume failed ($status): $output" >&2
            echo "the killed run said: $(cat "$T/bg.out")" >&2
            return 1
        fi
        diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX") ||
            { echo "kill $i at ${at} ms: tree differs" >&2; return 1; }
        local u
        for u in "${verified[@]}"; do
            if tail -n "+$((logn + 1))" "$NGINX_LOG" | grep -q "^$u "; then
                echo "kill $i at ${at} ms: $u was verified before the kill but fetched again" >&2
                return 1
            fi
        done
        echo "# kill $i at ${at} ms of ${dur}: ok (verified before kill: ${#verified[@]})" >&3
    done
}

@test "a rerun retries what failed (a model the server did not have yet), keeps everything else as it was, and a third run changes nothing" {
    nginx_stop
    mkdir -p "$T/www"
    cp "$REPO"/examples/demo/artifacts/* "$T/www/"
    rm "$T/www/chat-tiny.bin"
    nginx_start "$T/www"
    mkdir -p "$T/m2"
    nginx_manifest "$T/m2/manifest.json"
    run onramp_install --manifest "$T/m2/manifest.json" --prefix "$PREFIX" --allow-http
    assert_equal "$status" 9
    jq -e '.steps[] | select(.id == "model-chat") | .status == "failed" and (.reason | test("404"))' "$(state_file)"
    # every file but the ones the retry must write, with inode and mtime
    files() { (cd "$PREFIX" && find . -type f ! -name capabilities.json ! -name chat-tiny.bin -printf '%i %T@ %m %s %p\n' | sort); }
    before=$(files)
    cp "$REPO/examples/demo/artifacts/chat-tiny.bin" "$T/www/"
    run onramp_install --manifest "$T/m2/manifest.json" --prefix "$PREFIX" --allow-http
    assert_success
    assert_output --partial "model-chat failed earlier: retry it"
    assert_output --partial "the last install finished with problems"
    assert_output --partial "[6/9] workers: done earlier"
    [ "$(files)" = "$before" ]
    diff -u "$REPO/tests/fixtures/demo-tree.txt" <(tree_listing "$PREFIX")
    vision=$(grep -c '^/vision-base.bin ' "$NGINX_LOG")
    run onramp_install --manifest "$T/m2/manifest.json" --prefix "$PREFIX" --allow-http
    assert_success
    assert_output --partial "already installed"
    [ "$(grep -c '^/vision-base.bin ' "$NGINX_LOG")" = "$vision" ]
    [ "$(files)" = "$before" ]
}

@test "kill -9 mid-download, then resume on the same event stream: the question says how far the phase got, one terminal event per run, progress keeps rising" {
    nginx_stop
    nginx_start "$REPO/examples/demo/artifacts" 200k
    nginx_manifest "$T/m/manifest.json"
    start_install_bg --manifest "$M" --prefix "$PREFIX" --allow-http --connections 1 --events "$T/ev.ndjson"
    local i=0
    until [ -s "$T/ev.ndjson" ] && jq -s -e 'map(select(.type == "progress" and .bytes_downloaded > 400000)) | length > 0' "$T/ev.ndjson" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -lt 400 ] || { echo "the download never got going" >&2; return 1; }
        sleep 0.05
    done
    kill_bg
    n1=$(wc -l <"$T/ev.ndjson")
    high=$(jq -s 'map(.overall_progress) | max' "$T/ev.ndjson")
    run onramp_install --manifest "$M" --prefix "$PREFIX" --allow-http --connections 1 --yes --events "$T/ev.ndjson"
    assert_success
    # The question says what is done inside the phase, to the percent.
    assert_output --regexp "models: 2 of 3 done; model-vision [0-9]+ % downloaded \(kept\)"
    # The resumed run's download moves the bar: several distinct values
    # above where the killed run left it, and it ends at 1.
    tail -n "+$((n1 + 1))" "$T/ev.ndjson" | jq -s -e --argjson high "$high" '
        (map(select(.type == "progress") | .overall_progress) | unique | map(select(. > $high)) | length >= 2)
        and (map(select(.type == "finished")) | length == 1) and (last.overall_progress == 1)'
    jq -s -e '[.[].overall_progress] | . == sort' "$T/ev.ndjson"
}
