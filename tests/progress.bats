#!/usr/bin/env bats
# Live progress (install.sh --progress-listen): the demo installed from a
# rate-limited nginx while real clients watch: SSE readers that hang up at
# random points and reconnect with Last-Event-ID (and ten at once), the
# page in Debian's headless Chromium (playwright-core), /status against its
# JSON Schema; refusals (token, Host, non-loopback bind); a kill -9 of the
# install shown as interrupted, and the resumed run continuing the seq.

load lib/common
load lib/nginx

setup() {
    common_setup
    mkdir -p "$T/m"
    nginx_start "$REPO/examples/demo/artifacts" "${PROGRESS_RATE:-300k}"
    nginx_manifest "$T/m/manifest.json"
    M=$T/m/manifest.json
    SHOTS=$REPO/tests/.work/progress/${BATS_TEST_NUMBER}
    rm -rf "$SHOTS" && mkdir -p "$SHOTS"
    NODE_PATH=${ONRAMP_TEST_NODE:-$REPO/target/node}/node_modules
    export NODE_PATH
}

teardown() {
    [ -z "${BG:-}" ] || kill_bg
    # the servers of this test: asked to stop, as a rerun would
    for f in "$T"/url*; do
        [ -f "$f" ] || continue
        u=$(cat "$f")
        curl -s -m 2 -X POST "${u%%/\?*}/shutdown?token=${u##*token=}" >/dev/null 2>&1 || true
    done
    nginx_stop
    common_teardown
}

# progress_install [ARGS]: the nginx demo in the background, served live.
progress_install() {
    start_install_bg --manifest "$M" --prefix "$PREFIX" --allow-http --connections 1 \
        --events "$T/ev.ndjson" --summary-json "$T/summary.json" \
        --progress-listen 127.0.0.1:0 --progress-url-file "$T/url" "$@"
    wait_for_file "$T/url"
    URL=$(cat "$T/url")
    BASE=${URL%%/\?*}
    TOKEN=${URL##*token=}
}

# wait_bg: the background install's exit code in RC.
wait_bg() {
    RC=0
    wait "$BG" || RC=$?
    BG=
}

status_doc() {
    curl -sf -m 5 "$BASE/status?token=$TOKEN"
}

# install_then_kill: the install served live, killed (-9) once 200 kB have
# arrived; returns when its server has declared it interrupted.
install_then_kill() {
    progress_install --progress-linger 30
    local i=0
    until jq -s -e 'map(select(.type == "progress" and .bytes_downloaded > 200000)) | length > 0' "$T/ev.ndjson" >/dev/null 2>&1; do
        i=$((i + 1)); [ "$i" -lt 600 ] || { echo "the download never got going" >&2; return 1; }
        sleep 0.05
    done
    kill_bg
    BG=
    i=0
    until status_doc | jq -e '.state == "interrupted"' >/dev/null 2>&1; do
        i=$((i + 1)); [ "$i" -lt 200 ] || { status_doc; echo "never declared interrupted" >&2; return 1; }
        sleep 0.05
    done
}

have_browser() {
    command -v chromium >/dev/null && command -v node >/dev/null && [ -d "$NODE_PATH/playwright-core" ]
}

@test "no reader at all: the install completes; /status keeps the verdict (schema-valid) while the server lingers, then it is gone" {
    progress_install --progress-linger 4
    wait_bg
    assert_equal "$RC" 0
    grep -q "onramp: progress: $URL" "$T/bg.out"
    status_doc >"$T/status.json"
    python3 - "$REPO/schema/progress-status.schema.json" "$T/status.json" <<'PY'
import json, sys, jsonschema
jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))
PY
    jq -e --slurpfile s "$T/summary.json" '.state == "finished" and .final.status == "success" and .final.exit_code == 0
        and .final.summary == $s[0] and .progress.overall_progress == 1
        and ([.capabilities[].capability] | sort) == ($s[0].capabilities | sort)
        and ([.components[] | select(.status == "done")] | length) == ($s[0].components | length)' "$T/status.json"
    # the linger ends: the URL file goes, the port closes
    local i=0
    while [ -e "$T/url" ]; do
        i=$((i + 1)); [ "$i" -lt 200 ] || { echo "the server did not stop after its linger" >&2; return 1; }
        sleep 0.05
    done
    run curl -s -m 2 "$BASE/status?token=$TOKEN"
    assert_failure
}

@test "SSE readers that hang up at random points and reconnect with Last-Event-ID reassemble exactly the NDJSON stream; ten at once, too" {
    progress_install --progress-linger 10
    local pids=() s
    for s in 0 1 2 3 4 5 6 7 8 9 10; do
        python3 "$REPO/tests/progress/sse_client.py" "$BASE/events?token=$TOKEN" "$s" "$T/sse.$s" >"$T/sse.$s.log" 2>&1 &
        pids+=($!)
    done
    wait_bg
    assert_equal "$RC" 0
    for s in 0 1 2 3 4 5 6 7 8 9 10; do
        wait "${pids[$s]}" || { cat "$T/sse.$s.log"; return 1; }
        cmp "$T/ev.ndjson" "$T/sse.$s" || { echo "reader $s differs from the NDJSON file"; diff "$T/ev.ndjson" "$T/sse.$s" | head; return 1; }
    done
    # the readers with a seed did hang up and come back
    total=$(cat "$T"/sse.[1-9].log "$T"/sse.10.log | awk '{ s += $3 } END { print s }')
    [ "$total" -ge 10 ] || { cat "$T"/sse.*.log; return 1; }
    echo "# $(wc -l <"$T/ev.ndjson") events; 11 readers, $total reconnects in all: every stream identical to the file" >&3
}

@test "refused: a missing or wrong token (403), a foreign Host header (421), a non-loopback bind (exit 2, nothing installed); CORS only for the origin named" {
    progress_install --progress-linger 5 --progress-allow-origin http://127.0.0.1:5173
    for path in "/status" "/status?token=0000" "/events?token=${TOKEN%?}x" "/?token="; do
        run curl -s -o /dev/null -w '%{http_code}' -m 5 "$BASE$path"
        assert_output 403
    done
    run curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Host: attacker.example:${BASE##*:}" "$BASE/status?token=$TOKEN"
    assert_output 421
    run curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Authorization: Bearer $TOKEN" "$BASE/status"
    assert_output 200
    run curl -s -D - -o /dev/null -m 5 -H "Origin: http://127.0.0.1:5173" "$BASE/status?token=$TOKEN"
    assert_output --partial "Access-Control-Allow-Origin: http://127.0.0.1:5173"
    run curl -s -D - -o /dev/null -m 5 -H "Origin: http://evil.example" "$BASE/status?token=$TOKEN"
    refute_output --partial "Access-Control-Allow-Origin"
    run curl -s -D - -o /dev/null -m 5 "$BASE/?token=$TOKEN"
    assert_output --partial "Content-Security-Policy: default-src 'none'"
    wait_bg
    assert_equal "$RC" 0
    for bad in 0.0.0.0:0 192.0.2.1:8080 "[::]:0" example.com:80; do
        run onramp_install --manifest "$M" --prefix "$T/p2" --allow-http --progress-listen "$bad"
        assert_equal "$status" 2
        assert_output --partial "--progress-listen $bad: only a loopback address"
        [ ! -e "$T/p2" ]
    done
}

@test "headless Chromium: the bar only rises, to 100 %; capabilities appear smallest first; the verdict matches the summary" {
    have_browser || skip "chromium, node or playwright-core missing (tests/run.sh installs them)"
    # slow enough that Chromium starts well before the largest model lands
    nginx_stop
    nginx_start "$REPO/examples/demo/artifacts" 100k
    nginx_manifest "$T/m/manifest.json"
    progress_install --progress-linger 20
    run node "$REPO/tests/progress/page.cjs" "$URL" "$SHOTS" finished
    echo "$output"
    assert_success
    wait_bg
    assert_equal "$RC" 0
    page=$(printf '%s\n' "$output" | tail -n 1)
    printf '%s' "$page" | jq -e --slurpfile s "$T/summary.json" '.verdict == $s[0].status and .bar == 100
        and (.caps | sort) == ($s[0].capabilities | sort) and .distinct_bar_values >= 5'
    # smallest first: the order the events announced, the demo's order
    printf '%s' "$page" | jq -r '.caps[]' >"$T/caps"
    diff "$T/caps" <(jq -r 'select(.type == "capability") | .new_capability' "$T/ev.ndjson")
    assert_demo_unlock_order "$T/ev.ndjson"
    [ -s "$SHOTS/start.png" ] && [ -s "$SHOTS/middle.png" ] && [ -s "$SHOTS/end.png" ]
    echo "# screenshots in tests/.work/progress/$BATS_TEST_NUMBER" >&3
}

@test "kill -9 of the install: /status and the page say interrupted, not running; the resumed install's events continue the same seq" {
    install_then_kill
    status_doc | jq -e '.installer_alive == false and .final.status == "interrupted" and .final.exit_code == 14'
    if have_browser; then
        run node "$REPO/tests/progress/page.cjs" "$URL" "$SHOTS" interrupted
        echo "$output"
        assert_success
    fi
    n1=$(wc -l <"$T/ev.ndjson")
    # the rerun takes over the progress URL file (the old server makes way)
    run onramp_install --manifest "$M" --prefix "$PREFIX" --allow-http --connections 1 --yes \
        --events "$T/ev.ndjson" --progress-listen 127.0.0.1:0 --progress-url-file "$T/url" --progress-linger 1
    assert_success
    jq -s -e '[.[].seq] == [range(1; length + 1)]' "$T/ev.ndjson"
    tail -n "+$n1" "$T/ev.ndjson" | jq -s -e '.[0].type == "finished" and .[0].status == "interrupted"
        and .[1].type == "started" and .[1].status == "resume" and .[1].seq == .[0].seq + 1
        and (last.type == "finished") and last.status == "success"'
}

@test "a resumed install is the same install: a client that stops at finished sees success, /status is never interrupted while it runs, overall_progress never goes back" {
    install_then_kill
    # the interrupted end keeps the bar where it was
    jq -s -e '(map(select(.type != "finished")) | map(.overall_progress) | max) as $m
        | last | .type == "finished" and .status == "interrupted" and .overall_progress == $m and $m > 0' "$T/ev.ndjson"
    old=$URL
    progress_install --yes --progress-linger 5
    until [ "$(cat "$T/url")" != "$old" ]; do sleep 0.05; done
    URL=$(cat "$T/url"); BASE=${URL%%/\?*}; TOKEN=${URL##*token=}
    # a client as README says: read /events until `finished`
    python3 "$REPO/tests/progress/sse_client.py" "$BASE/events?token=$TOKEN" 0 "$T/sse.out" >"$T/sse.log" 2>&1 &
    client=$!
    # and one polling /status while the resumed run goes on
    ( while kill -0 "$BG" 2>/dev/null; do status_doc | jq -c . >>"$T/status.jsonl" 2>/dev/null; sleep 0.1; done ) &
    poller=$!
    wait_bg
    assert_equal "$RC" 0
    wait "$client" || { cat "$T/sse.log"; return 1; }
    wait "$poller" || true
    # the client's finished is the resumed run's success, and it never saw the earlier run's end
    tail -n 1 "$T/sse.out" | jq -e '.type == "finished" and .status == "success" and .overall_progress == 1'
    jq -s -e 'map(select(.type == "finished")) | length == 1' "$T/sse.out"
    # it saw the whole install, from the first run's start
    head -n 1 "$T/sse.out" | jq -e '.type == "started" and .status == "fresh"'
    jq -s -e 'map(select(.type == "started")) | map(.status) == ["fresh", "resume"]' "$T/sse.out"
    # /status: never interrupted (nor finished) while the resumed installer ran
    [ -s "$T/status.jsonl" ]
    jq -s -e 'map(select(.installer_alive)) | length > 0 and all(.state == "running" or .state == "finished")' "$T/status.jsonl"
    jq -s -e 'map(select(.state == "finished")) | all(.final.status == "success")' "$T/status.jsonl"
    # overall_progress never goes back: in the file across both runs, in what the client saw, in /status
    jq -s -e '[.[].overall_progress] as $o | [range(1; $o | length)] | all($o[.] >= $o[. - 1])' "$T/ev.ndjson"
    jq -s -e '[.[].overall_progress] as $o | [range(1; $o | length)] | all($o[.] >= $o[. - 1])' "$T/sse.out"
    jq -s -e '[.[].progress.overall_progress] as $o | [range(1; $o | length)] | all($o[.] >= $o[. - 1])' "$T/status.jsonl"
}

@test "progress-serve by itself: an events file in SSE format is served as its data lines; a quiet stream gets heartbeats" {
    run onramp_install --manifest "$M" --prefix "$PREFIX" --allow-http --events "$T/ev.sse" --events-format sse
    assert_success
    run "$H" progress-serve --listen 127.0.0.1:0 --events "$T/ev.sse" --heartbeat 0
    assert_equal "$status" 2
    "$H" progress-serve --listen 127.0.0.1:0 --events "$T/ev.sse" --url-file "$T/url" --linger 60 \
        --heartbeat 1 --foreground >"$T/serve.out" 2>&1 &
    local serve=$!
    wait_for_file "$T/url"
    URL=$(cat "$T/url")
    BASE=${URL%%/\?*}
    TOKEN=${URL##*token=}
    python3 "$REPO/tests/progress/sse_client.py" "$BASE/events?token=$TOKEN" 3 "$T/got"
    sed -n 's/^data: //p' "$T/ev.sse" >"$T/want"
    cmp "$T/want" "$T/got"
    # after the last event, only heartbeats: one a second
    last=$(tail -n 1 "$T/want" | jq .seq)
    timeout 3.5 curl -sN "$BASE/events?token=$TOKEN" -H "Last-Event-ID: $last" >"$T/quiet" || true
    n=$(grep -c '^: heartbeat$' "$T/quiet")
    [ "$n" -ge 2 ] || { cat "$T/quiet"; return 1; }
    ! grep -q '^id:' "$T/quiet"
    kill "$serve"
}
