#!/usr/bin/env bats
# The Windows helper (tools/build-targets.sh x86_64-pc-windows-gnu, mingw-w64)
# under Debian's wine 8.0, set up by tests/windows/wine-setup.sh: the
# ProcessPrng stand-in DLL, owner.exe for PowerShell's $PID, the wrapper
# $ONRAMP_TEST_HELPER_WINE. Wine runs it elevated, so the Administrator
# trust checks (owners and ACLs) apply: every path is on C:, the wine
# prefix's own drive (Z:\tmp is writable by Everyone and is refused).
#
# The helper is driven exactly as install.ps1 drives it: the phases come
# from its Get-OnrampPhases, and each command line is the one its functions
# build (the first test checks that install.ps1 still builds them so).
# No PowerShell runs here; install.ps1 itself is checked in windows.bats.

load lib/common
load lib/nginx

setup() {
    common_setup
    : "${ONRAMP_TEST_HELPER_WINE:?tests/run.sh sets it: the wine wrapper of the Windows helper}"
    WH=$ONRAMP_TEST_HELPER_WINE
    WD=$(dirname "$WH")
    # This test's own tree on C:, as Unix and as Windows paths.
    WT=$WD/prefix/drive_c/t/$BATS_TEST_NUMBER-$$
    WIN="C:\\t\\$BATS_TEST_NUMBER-$$"
    rm -rf "$WT"
    mkdir -p "$WT/srv"
    # Windows has no XDG: the state and cache go where install.ps1's
    # environment would put them, on C:.
    unset XDG_CACHE_HOME XDG_STATE_HOME
    export ONRAMP_STATE_DIR="$WIN\\state" ONRAMP_CACHE_DIR="$WIN\\cache"
    WPREFIX="$WIN\\stack"
    OWNER_PID=
}

teardown() {
    [ -z "$OWNER_PID" ] || kill "$OWNER_PID" 2>/dev/null || true
    # a service a failed test left running
    "$WH" services stop --prefix "$WPREFIX" </dev/null >/dev/null 2>&1 || true
    nginx_stop
    rm -rf "$WT"
    common_teardown
}

# The phases, from install.ps1's Get-OnrampPhases.
ps1_phases() {
    sed -n '/^function Get-OnrampPhases {/,/^}/p' "$REPO/install.ps1" | grep -o "'[a-z]*'" | tr -d "'"
}

# A Windows process standing in for the PowerShell that runs install.ps1:
# its pid is what install.ps1 passes as --owner ($PID).
start_owner() {
    "$WD/wine" "$WD/owner.exe" >"$WT/owner.pid" 2>/dev/null &
    OWNER_PID=$!
    local i
    for i in $(seq 100); do
        [ -s "$WT/owner.pid" ] && break
        sleep 0.1
    done
    PS_PID=$(tr -d '\r\n' <"$WT/owner.pid")
    [ -n "$PS_PID" ]
    # what install.ps1 run as a file passes as --again ($S.Again)
    PS_AGAIN="& 'C:\\Users\\me\\install.ps1'"
}

# wait_part GLOB: until a partial download matching GLOB is in the cache
# (wine takes a moment to start the helper), at most 15 s; then go on.
wait_part() {
    local i
    for i in $(seq 300); do
        compgen -G "$WT/cache/partial/$1" >/dev/null && return 0
        sleep 0.05
    done
}

# Every helper call of an install as install.ps1 makes it with -Yes
# (Invoke-OnrampMain: Select-OnrampMode, Start-OnrampBegin,
# Invoke-OnrampPhases, Invoke-OnrampAfterFailure), with
# Get-OnrampCommonArgs = --manifest M --prefix P and Get-OnrampPhaseArgs
# for -AllowHttp; no one answers the question after a failure (as in CI).
# Prints what the helper printed; returns the exit code install.ps1 would.
ps1_install() {
    local m=$1 line fatal=0 phase rc=0
    shift
    local common=(--manifest "$m" --prefix "$WPREFIX")
    line=$("$WH" resume-check "${common[@]}" --owner "$PS_PID" --decide --installer ps1 --yes) || return $?
    line=${line%$'\r'}
    echo "resume-check: $line"
    "$WH" begin "${common[@]}" --owner "$PS_PID" "--$line" || return $?
    for phase in $(ps1_phases); do
        "$WH" phase "$phase" "${common[@]}" --owner "$PS_PID" --allow-http "$@" || { fatal=$?; break; }
    done
    "$WH" finish "${common[@]}" --owner "$PS_PID" --code "$fatal" || rc=$?
    [ "$rc" = 0 ] && return 0
    line=$("$WH" after-failure --prefix "$WPREFIX" --code "$rc" --installer ps1 --again "$PS_AGAIN")
    line=${line%$'\r'}
    echo "after-failure: $line"
    case $line in
    'ask '*) "$WH" after-failure --prefix "$WPREFIX" --code "$rc" --installer ps1 --again "$PS_AGAIN" --answer none ;;
    esac
    return "$rc"
}

# The demo's Windows-capable parts, served by nginx: its three models, a
# Windows build of the server (a .cmd answering --version and the health
# checks, which look for the models), the worker as a prebuilt archive for
# windows-x86_64 (Windows cannot build its PKGBUILD), the configure step
# and the health checks. The demo's rag extra is a sh command: left out.
win_manifest() {
    local srv=$WT/srv
    cp "$REPO"/examples/demo/artifacts/*.bin "$srv/"
    mkdir -p "$WT/build/server/bin" "$WT/build/worker/bin"
    printf '@echo off\r\nif "%%1"=="--version" echo 1.0.0\r\nif "%%1"=="--chat" if not exist models\\chat-tiny.bin exit /b 1\r\nif "%%1"=="--embed" if not exist models\\embed-small.bin exit /b 1\r\nif "%%1"=="--vision" if not exist models\\vision-base.bin exit /b 1\r\nexit /b 0\r\n' \
        >"$WT/build/server/bin/demo-server.cmd"
    printf '@echo PING\r\n' >"$WT/build/worker/bin/hello-worker.cmd"
    # a program that serves until it is stopped: the server's service
    cp "$WD/owner.exe" "$WT/build/server/bin/serve.exe"
    tar -C "$WT/build/server" -czf "$srv/demo-server-win.tar.gz" bin
    tar -C "$WT/build/worker" -czf "$srv/hello-worker-win.tar.gz" bin
    local s1 z1 s2 z2
    s1=$(sha256sum <"$srv/demo-server-win.tar.gz" | cut -c1-64)
    z1=$(stat -c %s "$srv/demo-server-win.tar.gz")
    s2=$(sha256sum <"$srv/hello-worker-win.tar.gz" | cut -c1-64)
    z2=$(stat -c %s "$srv/hello-worker-win.tar.gz")
    mkdir -p "$WT/m"
    cp -r "$REPO/examples/demo/config" "$WT/m/"
    jq --arg base "http://127.0.0.1:$NGINX_PORT" --arg s1 "$s1" --argjson z1 "$z1" --arg s2 "$s2" --argjson z2 "$z2" '
        .components |= map(
            if .id == "server" then
                .artifacts = {"windows-x86_64": {"url": ($base + "/demo-server-win.tar.gz"), "size": $z1, "sha256": $s1, "unpack": "tar.gz", "unpacked_size": 4194304}}
                | .version_check.command = ["bin/demo-server.cmd", "--version"]
                | .service = {"command": ["server/current/bin/serve.exe"], "stop_timeout_s": 2}
            elif .id == "worker-hello" then
                .artifacts = {"windows-x86_64": {"url": ($base + "/hello-worker-win.tar.gz"), "size": $z2, "sha256": $s2, "unpack": "tar.gz", "unpacked_size": 4194304}}
            elif .artifacts then
                .artifacts |= with_entries(.value |= (.url = ($base + "/" + (.path | split("/") | last)) | del(.path)))
            else . end)
        | .components |= map(select(.id != "rag"))
        | .health_checks |= map(
            if .component == "worker-hello" then .command = ["workers/worker-hello/bin/hello-worker.cmd", "ping"]
            else .command[0] = "server/current/bin/demo-server.cmd" end)
    ' "$DEMO" >"$WT/m/manifest.json"
    WM="$WIN\\m\\manifest.json"
}

@test "install.ps1 still sequences the helper as this suite drives it" {
    run ps1_phases
    assert_output "$(printf '%s\n' preflight detect plan server models workers extras configure validate)"
    local ps1=$REPO/install.ps1
    grep -qF "@('resume-check') + (Get-OnrampCommonArgs \$S) + (Get-OnrampFreshArgs \$S) + @('--owner', [string]\$PID, '--decide', '--installer', 'ps1')" "$ps1"
    grep -qF "if (\$S.O.Yes) { \$first += '--yes' }" "$ps1"
    grep -qF "@('begin') + (Get-OnrampCommonArgs \$S) + (Get-OnrampFreshArgs \$S) + @('--owner', [string]\$PID, \$S.Mode)" "$ps1"
    grep -qF "\$S.Mode = '--' + \$line" "$ps1"
    grep -qF "@('after-failure', '--prefix', \$S.Prefix, '--code', [string]\$Rc, '--installer', 'ps1', '--again', \$S.Again)" "$ps1"
    grep -qF "\$S.Again = \"& '\" + ([string]\$Invocation.MyCommand.Path).Replace(\"'\", \"''\") + \"'\"" "$ps1"
    grep -qF "@('--answer', (Read-OnrampAnswer ('onramp: ' + \$what.Substring(4)) 'no'))" "$ps1"
    grep -qF "@('phase', \$phase) + (Get-OnrampCommonArgs \$S) + @('--owner', [string]\$PID) + (Get-OnrampPhaseArgs \$S)" "$ps1"
    grep -qF "@('finish') + (Get-OnrampCommonArgs \$S) + @('--owner', [string]\$PID, '--code', [string]\$fatal)" "$ps1"
    grep -qF "\$a = @('--manifest', \$S.Manifest, '--prefix', \$S.Prefix)" "$ps1"
    grep -qF "if (\$o.AllowHttp) { \$a += '--allow-http' }" "$ps1"
}

@test "the Windows helper is a PE32+ x86-64 program and under wine says windows-x86_64" {
    run file "$WD/onramp.exe"
    assert_output --partial "PE32+ executable"
    assert_output --partial "x86-64"
    run "$WH" target
    assert_success
    assert_output "windows-x86_64"
    run "$WH" --version
    assert_output --regexp '^onramp [0-9.]+ \(windows-x86_64\)'
}

@test "under wine: sha256, a ranged download from nginx into the cache, a wrong hash exit 7 with nothing placed" {
    head -c 6000000 /dev/urandom >"$WT/srv/blob"
    want=$(sha256sum <"$WT/srv/blob" | cut -c1-64)
    nginx_start "$WT/srv"
    run "$WH" sha256 "$WIN\\srv\\blob"
    assert_output --partial "$want"
    run "$WH" download "http://127.0.0.1:$NGINX_PORT/blob" -o "$WIN\\out" --sha256 "$want" --size 6000000 --allow-http --connections 4
    assert_success
    cmp "$WT/srv/blob" "$WT/out"
    [ -f "$WT/cache/sha256/$want" ]
    # more than one range request: the engine split it
    [ "$(grep -c '^/blob 206 ' "$NGINX_LOG")" -ge 2 ]
    run "$WH" download "http://127.0.0.1:$NGINX_PORT/blob" -o "$WIN\\bad" --sha256 "$(printf '0%.0s' $(seq 64))" --allow-http
    assert_equal "$status" 7
    [ ! -e "$WT/bad" ]
}

@test "elevated under wine, a directory Everyone may change is refused (exit 13, naming the SID and the fix)" {
    run "$WH" download "Z:\\etc\\hostname" -o 'Z:\tmp\x' --sha256 "$(printf '0%.0s' $(seq 64))" --cache-dir "Z:\\tmp\\onramp-wine-cache-$$"
    assert_equal "$status" 13
    assert_output --partial "refusing Z:\\tmp"
    assert_output --partial "S-1-1-0"
    assert_output --partial "icacls"
    [ ! -e "/tmp/onramp-wine-cache-$$" ]
}

@test "the demo's Windows-capable parts install as install.ps1 runs them; the tree matches the Linux one; doctor and uninstall" {
    nginx_start "$WT/srv"
    win_manifest
    start_owner
    # Into a file, not `run`: under wine the service's supervisor inherits
    # the Unix descriptors of whoever started it (on Windows its handles
    # are its log file), and `run` would wait for it to close the pipe.
    local rc=0
    ps1_install "$WM" >"$WT/install.log" 2>&1 || rc=$?
    output=$(cat "$WT/install.log")
    echo "$output"
    assert_equal "$rc" 0
    assert_output --partial "resume-check: fresh"
    assert_output --partial "prebuilt build installed into workers/worker-hello"
    assert_output --partial "not as a Windows service"
    local P=$WT/stack
    # Byte for byte what the Linux install puts there (models, config), and
    # the directories configure makes.
    for f in models/chat-tiny.bin models/embed-small.bin models/vision-base.bin config/models.json config/server.conf; do
        grep -q " ./$f $(sha256sum <"$P/$f" | cut -c1-64)\$" "$REPO/tests/fixtures/demo-tree.txt" || {
            echo "$f differs from the Linux tree" >&2
            return 1
        }
    done
    [ -d "$P/data" ] && [ -d "$P/logs" ]
    [ -f "$P/server/current/bin/demo-server.cmd" ]
    [ -f "$P/workers/worker-hello/bin/hello-worker.cmd" ]
    # the state says complete, and a second run is a resume with nothing to do
    run "$WH" resume-check --manifest "$WM" --prefix "$WPREFIX" --owner "$PS_PID"
    assert_output --partial "complete"
    run "$WH" doctor --prefix "$WPREFIX"
    echo "$output"
    assert_success
    # the service runs under onramp supervise, in its Job
    run "$WH" services status --prefix "$WPREFIX"
    echo "$output"
    assert_output --partial "running"
    run "$WH" uninstall --prefix "$WPREFIX"
    echo "$output"
    assert_success
    # its supervisor and serve.exe are gone with the uninstall
    run "$WD/wine" C:\\windows\\system32\\tasklist.exe
    refute_output --partial "serve.exe"
    [ ! -e "$P/models/chat-tiny.bin" ]
    [ ! -e "$P/server" ]
    # the verified downloads stay in the cache; the state root onramp made
    # is gone (the state lock is closed with its Store, so Windows can
    # remove the directory)
    [ -n "$(ls "$WT/cache/sha256")" ]
    find "$WT/state" 2>/dev/null || true
    [ ! -e "$WT/state" ]
}

@test "the demo as it is: Windows cannot build its worker, refused at plan time naming it and the fix" {
    nginx_start "$WT/srv"
    win_manifest
    jq '.components |= map(if .id == "worker-hello" then del(.artifacts) else . end)' "$WT/m/manifest.json" >"$WT/m/nowin.json"
    run "$WH" plan --manifest "$WIN\\m\\nowin.json" --prefix "$WPREFIX"
    assert_output --partial "workers worker-hello: a PKGBUILD build, which this target cannot run: skipped"
    assert_output --partial "error: worker worker-hello is built from a PKGBUILD"
    start_owner
    run ps1_install "$WIN\\m\\nowin.json"
    assert_equal "$status" 5
    assert_output --partial "give worker-hello a prebuilt archive for windows-x86_64"
    # install.ps1's words after a failure no one can answer for
    assert_output --partial "after-failure: ask the install failed (exit 5). Undo what it did"
    assert_output --partial "kept what was installed: run the installer again to retry, or undo it with: & 'C:\\Users\\me\\install.ps1' -Uninstall -Prefix 'C:\\t\\"
    [ ! -e "$WT/stack/models" ]
}

@test "under wine: kill the helper mid-download (TerminateProcess, as a closed window), resume: exact bytes, at most ~1 s per connection fetched twice" {
    head -c $((48 * 1024 * 1024)) /dev/urandom >"$WT/srv/big.bin"
    local sha size=$((48 * 1024 * 1024)) i
    sha=$(sha256sum <"$WT/srv/big.bin" | cut -c1-64)
    nginx_start "$WT/srv" 6m
    local url=http://127.0.0.1:$NGINX_PORT/big.bin
    for i in 1 2 3; do
        rm -rf "$WT/cache" "$WT/out.bin"
        local n0 at
        n0=$(wc -l <"$NGINX_LOG")
        at=$((300 + RANDOM % 1500))
        setsid "$WH" download "$url" -o "$WIN\\out.bin" --sha256 "$sha" --size "$size" --allow-http --connections 4 </dev/null >/dev/null 2>&1 &
        local pid=$!
        # wine takes a moment to start: count from the first byte on disk
        wait_part "*.part"
        sleep "$(awk -v ms="$at" 'BEGIN { printf "%.3f", ms / 1000 }')"
        kill -9 -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        [ ! -e "$WT/out.bin" ]
        # the state of the partial download survived: a .part and its sidecar
        ls "$WT/cache/partial" | grep -q "$sha"
        run "$WH" download "$url" -o "$WIN\\out.bin" --sha256 "$sha" --size "$size" --allow-http --connections 4
        assert_success
        [ "$(sha256sum <"$WT/out.bin" | cut -c1-64)" = "$sha" ]
        local sent waste
        sent=$(tail -n "+$((n0 + 1))" "$NGINX_LOG" | awk '$1 == "/big.bin" { s += $3 } END { print s + 0 }')
        waste=$((sent - size))
        echo "# kill $i at $at ms: $((waste / 1024)) KiB fetched twice" >&3
        # 4 connections x 6 MiB/s x ~1 s, plus what was in flight
        [ "$waste" -le $((4 * 6 * 1024 * 1024 + 8 * 1024 * 1024)) ]
    done
}

@test "under wine: the helper killed mid-download in install.ps1's models phase; the rerun resumes and refetches at most ~1 s per connection" {
    nginx_start "$WT/srv" 2m
    win_manifest
    head -c $((40 * 1024 * 1024)) /dev/urandom >"$WT/srv/big-model.bin"
    local sha size=$((40 * 1024 * 1024))
    sha=$(sha256sum <"$WT/srv/big-model.bin" | cut -c1-64)
    jq --arg u "http://127.0.0.1:$NGINX_PORT/big-model.bin" --arg s "$sha" --argjson z "$size" '
        .components += [{"id": "model-big", "kind": "model", "depends_on": ["server"],
          "install_path": "models/big.bin", "artifacts": {"any": {"url": $u, "size": $z, "sha256": $s}}}]
    ' "$WT/m/manifest.json" >"$WT/m/big.json"
    start_owner
    ps1_install "$WIN\\m\\big.json" >"$WT/first.log" 2>&1 &
    local bg=$! n0
    wait_part "$sha*.part"
    sleep 1.5
    # the helper of the models phase, as TerminateProcess would end it
    pkill -9 -f "onramp.exe phase models"
    wait "$bg" || true
    [ ! -e "$WT/stack/models/big.bin" ]
    n0=$(grep -c '^/big-model.bin ' "$NGINX_LOG" || true)
    # install.ps1's question, decided by the helper; no one to answer it
    run "$WH" resume-check --manifest "$WIN\\m\\big.json" --prefix "$WPREFIX" --owner "$PS_PID" --decide --installer ps1
    assert_success
    assert_output --regexp "ask Completed through phase [0-9] \([a-z]+\)\. Resume from phase [0-9] \([a-z]+\)\? \[Y/n\]"
    assert_output --partial "models: "
    run "$WH" resume-check --manifest "$WIN\\m\\big.json" --prefix "$WPREFIX" --owner "$PS_PID" --decide --installer ps1 --answer none
    assert_equal "$status" 10
    assert_output --partial "pass -Yes to resume or -Fresh to start over"
    local rc=0
    ps1_install "$WIN\\m\\big.json" >"$WT/second.log" 2>&1 || rc=$?
    cat "$WT/second.log"
    assert_equal "$rc" 0
    grep -qF "resume-check: resume" "$WT/second.log"
    grep -qE "Resume from phase [0-9] \([a-z]+\)\? \[Y/n\] yes \(-Yes\)" "$WT/second.log"
    [ "$(sha256sum <"$WT/stack/models/big.bin" | cut -c1-64)" = "$sha" ]
    local sent waste
    sent=$(awk '$1 == "/big-model.bin" { s += $3 } END { print s + 0 }' "$NGINX_LOG")
    waste=$((sent - size))
    echo "# killed in the models phase: $((waste / 1024)) KiB fetched twice" >&3
    [ "$waste" -le $((4 * 2 * 1024 * 1024 + 8 * 1024 * 1024)) ]
    "$WH" services stop --prefix "$WPREFIX" </dev/null >/dev/null 2>&1 || true
}

@test "under wine, Ctrl-C (wine turns SIGINT into a console control event) stops a download: exit 130, the partial kept, the rerun finishes it" {
    head -c $((24 * 1024 * 1024)) /dev/urandom >"$WT/srv/big.bin"
    local sha size=$((24 * 1024 * 1024))
    sha=$(sha256sum <"$WT/srv/big.bin" | cut -c1-64)
    nginx_start "$WT/srv" 2m
    local url=http://127.0.0.1:$NGINX_PORT/big.bin
    "$WH" download "$url" -o "$WIN\\out.bin" --sha256 "$sha" --size "$size" --allow-http --connections 2 \
        </dev/null >"$WT/dl.log" 2>&1 &
    local pid=$!
    wait_part "$sha.part"
    sleep 2
    pkill -INT -f "onramp.exe download" || true
    local rc=0
    wait "$pid" || rc=$?
    cat "$WT/dl.log"
    assert_equal "$rc" 130
    grep -q "interrupted" "$WT/dl.log"
    [ ! -e "$WT/out.bin" ]
    # what arrived is kept with its record of which ranges are done
    [ -s "$WT/cache/partial/$sha.json" ]
    # nginx logs the cut requests once it sees the connections close
    sleep 1
    local n0
    n0=$(wc -l <"$NGINX_LOG")
    run "$WH" download "$url" -o "$WIN\\out.bin" --sha256 "$sha" --size "$size" --allow-http --connections 2
    assert_success
    [ "$(sha256sum <"$WT/out.bin" | cut -c1-64)" = "$sha" ]
    # the rerun fetched what was missing, not the whole file again
    local again
    again=$(tail -n "+$((n0 + 1))" "$NGINX_LOG" | awk '$1 == "/big.bin" { s += $3 } END { print s + 0 }')
    echo "# after Ctrl-C the rerun fetched $((again / 1024)) KiB of $((size / 1024))" >&3
    [ "$again" -lt "$size" ]
}

@test "under wine, two downloads of one artifact into one cache: the second waits on the first's lock (LockFileEx); both get the exact bytes" {
    head -c $((16 * 1024 * 1024)) /dev/urandom >"$WT/srv/shared.bin"
    local sha size=$((16 * 1024 * 1024))
    sha=$(sha256sum <"$WT/srv/shared.bin" | cut -c1-64)
    nginx_start "$WT/srv" 2m
    local url=http://127.0.0.1:$NGINX_PORT/shared.bin
    "$WH" download "$url" -o "$WIN\\a.bin" --sha256 "$sha" --size "$size" --allow-http --connections 2 \
        </dev/null >"$WT/a.log" 2>&1 &
    local a=$!
    wait_part "$sha.part"
    run "$WH" download "$url" -o "$WIN\\b.bin" --sha256 "$sha" --size "$size" --allow-http --connections 2
    assert_success
    assert_output --partial "another onramp is downloading it into the same cache; waiting"
    wait "$a"
    cmp "$WT/srv/shared.bin" "$WT/a.bin"
    cmp "$WT/srv/shared.bin" "$WT/b.bin"
    # Usually nginx sends one copy; about one run in seven under wine the
    # second download fetches its own after waiting (known, see README's
    # Known gaps), so only the bytes are asserted here.
    local sent
    sent=$(awk '$1 == "/shared.bin" { s += $3 } END { print s + 0 }' "$NGINX_LOG")
    echo "# nginx sent $((sent / 1024)) KiB for a $((size / 1024)) KiB file fetched by two downloads" >&3
    [ "$sent" -ge "$size" ]
}

@test "install.ps1's checks, made by the helper under wine: each bad value refused in -PascalCase before anything is done" {
    run "$WH" check-options --installer ps1 --events-format xml
    assert_equal "$status" 2
    assert_output --partial "-EventsFormat xml: use ndjson or sse"
    run "$WH" check-options --installer ps1 --progress-listen 0.0.0.0:8080
    assert_equal "$status" 2
    assert_output --partial "-ProgressListen 0.0.0.0:8080: only a loopback address is served"
    run "$WH" check-options --installer ps1 --connections 100
    assert_equal "$status" 2
    assert_output --partial "-Connections 100: use 1 to 64"
    run "$WH" check-options --installer ps1 --gpu nvidia
    assert_output --partial "-Gpu nvidia: use one of cuda, rocm, metal, intel, cpu"
    run "$WH" check-options --installer ps1 --state-ttl soon
    assert_output --partial "-StateTtl soon: use a whole number of hours"
    run "$WH" check-options --installer ps1 --events-format sse --progress-listen 127.0.0.1:0 --connections 8 --gpu cpu --state-ttl 0 --progress-linger 30
    assert_success
    # install.ps1 builds the check's flags from its parameter names
    grep -qF "foreach (\$k in @('EventsFormat', 'ProgressListen', 'ProgressLinger', 'Connections', 'Gpu', 'StateTtl'))" "$REPO/install.ps1"
}

@test "under wine, progress-serve starts itself in the background and returns its URL; the server answers and ends with its installer" {
    start_owner
    : >"$WT/ev.ndjson"
    # Into a file: under wine a detached process keeps the Unix descriptors
    # of whoever started it (on Windows it gets none of ours).
    local t0=$SECONDS rc=0
    "$WH" progress-serve --listen 127.0.0.1:0 --events "$WIN\\ev.ndjson" --owner "$PS_PID" \
        --url-file "$WIN\\url" --linger 1 >"$WT/serve.out" 2>"$WT/serve.err" </dev/null || rc=$?
    cat "$WT/serve.err"
    assert_equal "$rc" 0
    # it returned while the server goes on
    [ $((SECONDS - t0)) -lt 20 ]
    local url
    url=$(sed -n 1p "$WT/serve.out" | tr -d '\r')
    [[ $url == http://127.0.0.1:*/?token=* ]]
    [ "$(tr -d '\r\n' <"$WT/url")" = "$url" ]
    local base=${url%%/?token=*} token=${url##*token=}
    run curl -s -o /dev/null -w '%{http_code}' -m 10 "$base/status?token=$token"
    assert_output 200
    run curl -s -o /dev/null -w '%{http_code}' -m 10 "$base/status?token=wrong"
    assert_output 403
    # the installer goes: the server says so, lingers, and ends
    kill "$OWNER_PID"
    OWNER_PID=
    local i
    for i in $(seq 100); do
        curl -s -m 2 -o /dev/null "$base/status?token=$token" || break
        sleep 0.2
    done
    ! curl -s -m 2 -o /dev/null "$base/status?token=$token"
    # a bad address fails here, with the server's own error and code
    run "$WH" progress-serve --listen 0.0.0.0:0 --events "$WIN\\ev.ndjson" --url-file "$WIN\\url2"
    assert_equal "$status" 2
    assert_output --partial "only a loopback address"
}
