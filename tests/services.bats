#!/usr/bin/env bats
# Services: a component's long-running process (here python3's http.server
# standing in for an inference server), started after configure under
# onramp's supervisor (the pid-file manager: no systemd user session here),
# ready before the health checks, left alone by a rerun that changes
# nothing, restarted when its config changes, restarted by the supervisor
# when it dies, stopped by `onramp services stop`; --no-start.

load lib/common

setup() {
    common_setup
    command -v python3 >/dev/null || skip "python3 missing"
    export ONRAMP_SERVICE_MANAGER=pidfile
    W=$T/m
    mkdir -p "$W/artifacts"
    head -c 2000 /dev/urandom >"$W/artifacts/model.bin"
    PORT=$((20000 + RANDOM % 12000))
    jq -n --arg sha "$(sha256sum <"$W/artifacts/model.bin" | cut -c1-64)" --argjson port "$PORT" '{
      schema: 1, name: "svc-test", version: "1.0.0",
      components: [
        {id: "model", kind: "model", install_path: "www/model.bin",
         artifacts: {any: {path: "artifacts/model.bin", sha256: $sha, size: 2000}}},
        {id: "api", kind: "extra", depends_on: ["model"], command: ["true"],
         service: {command: ["python3", "-m", "http.server", ($port | tostring), "--bind", "127.0.0.1", "--directory", "www"],
                   ready: {http: "http://127.0.0.1:\($port)/model.bin", timeout_s: 20}, stop_timeout_s: 5}}
      ],
      configure: {files: [{path: "www/api.conf", content: "port=\($port)\n"}]},
      health_checks: [{name: "api-up", component: "api", http: "http://127.0.0.1:\($port)/api.conf", retries: 1}]
    }' >"$W/manifest.json"
}

teardown() {
    "$H" services stop --prefix "$PREFIX" >/dev/null 2>&1 || true
    common_teardown
}

pidfile() { echo "$(dirname "$(state_file)")/services/api.pid"; }
supervisor() { cut -d' ' -f1 "$(pidfile)"; }
fetch() { curl -fsS "http://127.0.0.1:$PORT/$1"; }

# A `systemctl --user` stand-in in $T/bin that logs its arguments and
# keeps "active" as files; the systemd manager, and $W/sd.json (the test
# manifest with a command ready check and no health check).
systemd_shim() {
    export ONRAMP_SERVICE_MANAGER=systemd
    mkdir -p "$T/bin"
    cat >"$T/bin/systemctl" <<SHIM
#!/bin/sh
echo "\$*" >>"$T/systemctl.log"
[ "\$1" = --user ] || exit 1
shift
case \$1 in
show-environment | daemon-reload | enable | disable) exit 0 ;;
restart) : >"$T/active-\$2" ;;
stop) rm -f "$T/active-\$2" ;;
is-active) [ -e "$T/active-\$3" ] ;;
*) exit 1 ;;
esac
SHIM
    chmod 755 "$T/bin/systemctl"
    jq '.components[1].service.ready = {command: ["true"]} | .health_checks = []' "$W/manifest.json" >"$W/sd.json"
}

@test "a service starts after configure and is ready before the health checks; a rerun that changes nothing leaves it running" {
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    assert_output --regexp "service api: started \(pidfile\), ready in [0-9.]+ s"
    assert_output --partial "check api-up: ok"
    # it serves the installed model and the written config
    [ "$(fetch model.bin | sha256sum)" = "$(sha256sum <"$W/artifacts/model.bin")" ]
    [ "$(fetch api.conf)" = "port=$PORT" ]
    pid=$(supervisor)
    kill -0 "$pid"
    jq -e '.services.api.manager == "pidfile"' "$(state_file)"
    run "$H" services status --prefix "$PREFIX"
    assert_success
    assert_output --partial "api: running (pidfile"

    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    assert_output --partial "service api: running, unchanged"
    [ "$(supervisor)" = "$pid" ]
}

@test "a changed config restarts it; the supervisor restarts a command that dies; services stop stops it" {
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    pid=$(supervisor)
    # The next release changes the service's config file: a restart.
    jq '.version = "1.0.1" | .configure.files[0].content += "threads=4\n"' "$W/manifest.json" >"$W/v2.json"
    run onramp_install --manifest "$W/v2.json" --prefix "$PREFIX"
    assert_success
    assert_output --regexp "service api: restarted \(pidfile\), ready in"
    [ "$(supervisor)" != "$pid" ]
    ! kill -0 "$pid" 2>/dev/null
    fetch api.conf | grep -q threads=4

    # The served process dies (OOM, a crash): the supervisor starts it again.
    child=$(pgrep -P "$(supervisor)" -f http.server)
    kill -9 "$child"
    for _ in $(seq 100); do fetch api.conf >/dev/null 2>&1 && [ "$(pgrep -P "$(supervisor)" -f http.server)" != "$child" ] && break; sleep 0.1; done
    fetch api.conf | grep -q threads=4
    grep -q "restarting in 1 s" "$(dirname "$(pidfile)")/api.log"

    sup=$(supervisor)
    run "$H" services stop --prefix "$PREFIX"
    assert_success
    assert_output --partial "api: stopped (pidfile)"
    ! kill -0 "$sup" 2>/dev/null
    ! pgrep -f "http.server $PORT" >/dev/null
    ! fetch api.conf 2>/dev/null
    # status still names it (exit 1), and a rerun starts it again
    run "$H" services status --prefix "$PREFIX"
    assert_equal "$status" 1
    assert_output --partial "api: not running (pidfile"
    assert_output --partial "run the installer again to start it"
    run onramp_install --manifest "$W/v2.json" --prefix "$PREFIX"
    assert_success
    assert_output --regexp "service api: started \(pidfile\), ready in"
    fetch api.conf | grep -q threads=4
}

@test "a service that never becomes ready fails its component (exit 9) with its log, and is not left running" {
    local secs=$((30000 + RANDOM))
    jq --arg s "$secs" '.components[1].service.command = ["sh", "-c", "echo starting up; echo no model found >&2; sleep \($s)"]
        | .components[1].service.ready.timeout_s = 2' "$W/manifest.json" >"$W/bad.json"
    run onramp_install --manifest "$W/bad.json" --prefix "$PREFIX"
    assert_equal "$status" 9
    assert_output --regexp "failed +api: its service did not become ready: not ready after 2 s .*no model found"
    assert_output --partial "check api-up: skipped, api is not installed"
    # neither the command nor what it started
    ! pgrep -f "sleep $secs" >/dev/null
}

@test "a port another program holds is a conflict named before start, and a second install of it fails (exit 9), not ready in 0.0 s" {
    # another program (here a second http.server) already on the port
    python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$T" >/dev/null 2>&1 &
    other=$!
    for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.1; done
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    kill "$other"
    assert_equal "$status" 9
    assert_output --regexp "failed +api: its service cannot start: port $PORT is already in use by pid $other \(python3\)"
    refute_output --regexp "ready in [0-9]"
    refute_output --partial "check api-up: ok"
    [ ! -e "$(pidfile)" ]
    # with the port free again, a rerun starts it
    wait "$other" || true
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    assert_output --regexp "service api: started \(pidfile\), ready in"
}

@test "ready means our process listens: a server that leaves the service's process tree is another program's, not ready" {
    # the command starts the server in a subshell that exits: the server is
    # no longer the service's (as a daemonizing server would be)
    local secs=$((30000 + RANDOM))
    jq --arg s "$secs" --arg p "$PORT" '.components[1].service.command = ["sh", "-c", "(python3 -m http.server \($p) --bind 127.0.0.1 --directory www >/dev/null 2>&1 &); exec sleep \($s)"]' \
        "$W/manifest.json" >"$W/fork.json"
    run onramp_install --manifest "$W/fork.json" --prefix "$PREFIX"
    pkill -f "http.server $PORT" || true
    assert_equal "$status" 9
    assert_output --regexp "failed +api: its service did not become ready: port $PORT is held by pid [0-9]+ \(python3\), not by this service"
    ! pgrep -f "sleep $secs" >/dev/null
}

@test "a service that stops listening while the health checks run fails its component (exit 9)" {
    # it serves for 3 s; the health check takes 5
    jq --arg p "$PORT" '.components[1].service.command = ["sh", "-c", "python3 -m http.server \($p) --bind 127.0.0.1 --directory www & p=$!; sleep 3; kill $p; exec sleep 600"]
        | .health_checks = [{name: "slow", component: "api", command: ["sleep", "5"], timeout_s: 20, retries: 1}]' \
        "$W/manifest.json" >"$W/crash.json"
    run onramp_install --manifest "$W/crash.json" --prefix "$PREFIX"
    assert_equal "$status" 9
    assert_output --regexp "service api: started \(pidfile\), ready in"
    assert_output --partial "check slow: ok"
    assert_output --regexp "failed +api: its service was ready, but not after the health checks: nothing listens on port $PORT"
}

@test "a capability its service serves is announced when the service is ready, not when its component is installed; --no-start leaves it waiting" {
    jq '.components[1].unlocks = {capability: "api", message: "You can now use: the api"}
        | .components[0].unlocks = {capability: "files", message: "You can now use: files"}
        | .components += [{id: "client", kind: "extra", depends_on: ["api"], command: ["true"], unlocks: {capability: "chat", message: "You can now use: chat"}}]' \
        "$W/manifest.json" >"$W/caps.json"
    run onramp_install --manifest "$W/caps.json" --prefix "$PREFIX" --no-start --events "$T/ev1.ndjson"
    assert_success
    assert_output --partial "You can now use: files"
    assert_output --partial "Installed, usable once its service is ready (the next run of the installer starts it): api, chat"
    refute_output --partial "You can now use: the api"
    assert_line --regexp "^ *You can now use: files$"
    jq -e '.capabilities == ["files"]' "$PREFIX/capabilities.json"
    jq -s -e 'map(select(.type == "capability") | .new_capability) == ["files"]' "$T/ev1.ndjson"
    jq -e '.awaiting_service == ["api", "client"]' "$(state_file)"

    run onramp_install --manifest "$W/caps.json" --prefix "$PREFIX" --events "$T/ev2.ndjson"
    assert_success
    assert_output --regexp "service api: started \(pidfile\), ready in"
    assert_output --partial "You can now use: files, api, chat"
    jq -e '.capabilities == ["api", "chat", "files"]' "$PREFIX/capabilities.json"
    jq -e 'has("awaiting_service") | not' "$(state_file)"
    # announced in configure, once the service was ready: its own, and what depends on it
    jq -s -e 'map(select(.type == "capability")) | map(.new_capability) == ["api", "chat"] and all(.step_name == "configure")' "$T/ev2.ndjson"
}

@test "--no-start (and ONRAMP_NO_START=1) installs without starting it; its health checks are skipped" {
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX" --no-start
    assert_success
    assert_output --partial "service api: not started (--no-start)"
    assert_output --partial "check api-up: skipped, the service of api was not started (--no-start)"
    [ ! -e "$(pidfile)" ]
    ! fetch api.conf 2>/dev/null
    run "$H" services status --prefix "$PREFIX"
    assert_success
    assert_output --partial "no service was started for this install"
}

@test "the manifest's service is validated with its JSON path" {
    jq '.components[1].service.ready = {http: "http://example.com/"}' "$W/manifest.json" >"$W/b1.json"
    run "$H" plan --manifest "$W/b1.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial "components[1].service.ready.http"
    jq '.components[1].service.command = []' "$W/manifest.json" >"$W/b2.json"
    run "$H" plan --manifest "$W/b2.json" --prefix "$PREFIX"
    assert_equal "$status" 3
    assert_output --partial "components[1].service.command: must not be empty"
    schema_valid "$W/manifest.json"
}

@test "with systemd --user, a user unit is written, enabled and started; a rerun leaves it; services stop stops it (systemctl shim)" {
    systemd_shim
    PATH=$T/bin:$PATH run onramp_install --manifest "$W/sd.json" --prefix "$PREFIX"
    assert_success
    assert_output --regexp "service api: started \(systemd\), ready in"
    unit=$HOME/.config/systemd/user/onramp-svc-test-api.service
    grep -qx "WorkingDirectory=\"$PREFIX\"" "$unit"
    grep -qx "ExecStart=\"python3\" \"-m\" \"http.server\" \"$PORT\" \"--bind\" \"127.0.0.1\" \"--directory\" \"www\"" "$unit"
    grep -qx "Environment=\"ONRAMP_PREFIX=$PREFIX\"" "$unit"
    grep -qx "Restart=on-failure" "$unit"
    grep -qx "TimeoutStopSec=5" "$unit"
    grep -qx "WantedBy=default.target" "$unit"
    [ "$(grep -v is-active "$T/systemctl.log")" = "$(printf '%s\n' '--user daemon-reload' '--user enable onramp-svc-test-api.service' '--user restart onramp-svc-test-api.service')" ]
    jq -e '.services.api == {manager: "systemd", handle: "onramp-svc-test-api.service", fingerprint: .services.api.fingerprint, created: .services.api.created}' "$(state_file)"
    # the unit directories it made, noted for an uninstall
    jq -e --arg h "$HOME" '.services.api.created == [$h + "/.config", $h + "/.config/systemd", $h + "/.config/systemd/user"]' "$(state_file)"
    : >"$T/systemctl.log"
    PATH=$T/bin:$PATH run onramp_install --manifest "$W/sd.json" --prefix "$PREFIX"
    assert_success
    assert_output --partial "service api: running, unchanged"
    ! grep -q restart "$T/systemctl.log"
    PATH=$T/bin:$PATH run "$H" services stop --prefix "$PREFIX"
    assert_success
    grep -qx -- "--user stop onramp-svc-test-api.service" "$T/systemctl.log"
    [ ! -e "$T/active-onramp-svc-test-api.service" ]
    # stopped, its unit is still onramp's to take away
    PATH=$T/bin:$PATH run "$H" uninstall --prefix "$PREFIX"
    assert_success
    grep -qx -- "--user disable onramp-svc-test-api.service" "$T/systemctl.log"
    [ ! -e "$HOME/.config/systemd/user/onramp-svc-test-api.service" ]
}

@test "an upgrade that drops a service's component stops the service" {
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    sup=$(supervisor)
    jq '.version = "2.0.0" | .components |= map(select(.id != "api")) | .health_checks = []' "$W/manifest.json" >"$W/v2.json"
    run onramp_install --manifest "$W/v2.json" --prefix "$PREFIX"
    assert_success
    assert_output --partial "stop service api (dropped from the manifest or the profile)"
    ! kill -0 "$sup" 2>/dev/null
    ! fetch api.conf 2>/dev/null
    jq -e '.services == {}' "$(state_file)"
}

@test "uninstall stops the service and takes away what starts it: the supervisor, or the systemd unit (shim)" {
    run onramp_install --manifest "$W/manifest.json" --prefix "$PREFIX"
    assert_success
    sup=$(supervisor)
    pf=$(pidfile)
    kill -0 "$sup"
    run "$H" uninstall --prefix "$PREFIX"
    assert_success
    assert_output --partial "stopped service api (pidfile)"
    ! kill -0 "$sup" 2>/dev/null
    [ ! -e "$pf" ]
    [ ! -e "$PREFIX" ]
    ! curl -fsS "http://127.0.0.1:$PORT/api.conf" 2>/dev/null

    systemd_shim
    PATH=$T/bin:$PATH run onramp_install --manifest "$W/sd.json" --prefix "$PREFIX"
    assert_success
    unit=$HOME/.config/systemd/user/onramp-svc-test-api.service
    [ -f "$unit" ]
    : >"$T/systemctl.log"
    PATH=$T/bin:$PATH run "$H" uninstall --prefix "$PREFIX"
    assert_success
    assert_output --partial "stopped service api (systemd)"
    [ ! -e "$unit" ]
    # the unit directories onramp made for it went too
    [ ! -e "$HOME/.config" ]
    [ ! -e "$T/active-onramp-svc-test-api.service" ]
    [ "$(grep -v is-active "$T/systemctl.log")" = "$(printf '%s\n' '--user stop onramp-svc-test-api.service' '--user disable onramp-svc-test-api.service' '--user daemon-reload')" ]
}
