# shellcheck shell=sh disable=SC2154,SC2034 # globals shared with install.sh main
# phases.sh: the fixed phase sequence, one helper call each, and the final
# summary. Phase names match the helper, the state file and README.

onramp_phases() {
    printf '%s\n' preflight detect plan server models workers extras configure validate
}

# onramp_helper_call COMMAND [ARGS]: the helper with this install's manifest
# and prefix. stdin is /dev/null: under `curl | sh` stdin is the script.
onramp_helper_call() {
    onramp_hc_cmd=$1
    shift
    "$onramp_helper" "$onramp_hc_cmd" --manifest "$onramp_manifest" --prefix "$onramp_prefix" \
        ${onramp_manifest_url:+--manifest-url "$onramp_manifest_url"} \
        ${onramp_downgrade_flag:+"$onramp_downgrade_flag"} \
        ${onramp_expired_flag:+"$onramp_expired_flag"} \
        ${1+"$@"} </dev/null
}

onramp_on_signal() {
    onramp_interrupted=1
}

onramp_run_phases() {
    onramp_fatal=0
    onramp_i=0
    for onramp_phase in $(onramp_phases); do
        onramp_i=$((onramp_i + 1))
        if [ "$onramp_interrupted" = 1 ]; then
            onramp_fatal=$EX_INTERRUPTED
            break
        fi
        if [ "$onramp_i" -le "$onramp_done_through" ]; then
            printf '[%s/9] %s: done earlier\n' "$onramp_i" "$onramp_phase" >&2
            continue
        fi
        onramp_helper_call phase "$onramp_phase" --owner "$$" \
            ${onramp_events:+--events "$onramp_events"} \
            ${onramp_events_format:+--events-format "$onramp_events_format"} \
            ${onramp_from:+--from "$onramp_from"} \
            ${onramp_offline_flag:+"$onramp_offline_flag"} \
            ${onramp_http_flag:+"$onramp_http_flag"} \
            ${onramp_skip_flag:+"$onramp_skip_flag"} \
            ${onramp_unpinned_flag:+"$onramp_unpinned_flag"} \
            ${onramp_connections:+--connections "$onramp_connections"} \
            ${onramp_mirror:+--mirror "$onramp_mirror"} \
            ${onramp_ca_file:+--ca-file "$onramp_ca_file"} || onramp_fatal=$?
        if [ "$onramp_fatal" != 0 ]; then
            break
        fi
    done
    [ "$onramp_interrupted" = 1 ] && onramp_fatal=$EX_INTERRUPTED
    onramp_final=0
    onramp_helper_call finish --owner "$$" --code "$onramp_fatal" \
        ${onramp_events:+--events "$onramp_events"} \
        ${onramp_events_format:+--events-format "$onramp_events_format"} \
        ${onramp_summary:+--summary-json "$onramp_summary"} || onramp_final=$?
    return "$onramp_final"
}
