# shellcheck shell=sh disable=SC2154,SC2034 # globals shared with install.sh main
# phases.sh: the fixed phase sequence, one helper call each, and the final
# summary. Phase names match the helper, the state file and README.

onramp_phases() {
    printf '%s\n' preflight detect plan server models workers extras configure validate
}

# onramp_helper_call COMMAND [ARGS]: the helper with this install's manifest,
# prefix and choices; the commands that check a manifest's serial and
# expiry (plan, resume-check, begin) also get --allow-downgrade and
# --allow-expired when given. stdin is /dev/null: under `curl | sh` stdin
# is the script.
onramp_helper_call() {
    onramp_hc_cmd=$1
    shift
    onramp_hc_down=
    onramp_hc_exp=
    case $onramp_hc_cmd in
        plan | resume-check | begin)
            onramp_hc_down=$onramp_downgrade_flag
            onramp_hc_exp=$onramp_expired_flag
            ;;
    esac
    "$onramp_helper" "$onramp_hc_cmd" --manifest "$onramp_manifest" --prefix "$onramp_prefix" \
        ${onramp_manifest_url:+--manifest-url "$onramp_manifest_url"} \
        ${onramp_hc_down:+"$onramp_hc_down"} \
        ${onramp_hc_exp:+"$onramp_hc_exp"} \
        ${onramp_gpu:+--gpu "$onramp_gpu"} \
        ${onramp_profile:+--profile "$onramp_profile"} \
        ${1+"$@"} </dev/null
}

# onramp_killed_code RC: a helper that died of a signal it cannot catch
# (kill -9, the OOM killer: 128+N, other than our own Ctrl-C/TERM) is
# exit 14, said with the signal and what to do; any other RC passes.
onramp_killed_code() {
    if [ "$1" -gt 128 ] && [ "$1" != "$EX_INTERRUPTED" ] && [ "$onramp_interrupted" != 1 ]; then
        onramp_say "the helper was killed by signal $(($1 - 128))$( [ "$1" = 137 ] && printf ' (SIGKILL: kill -9, or the kernel ran out of memory; see dmesg)')"
        onramp_say "what finished is kept: run the installer again to resume"
        printf '%s' "$EX_KILLED"
    else
        printf '%s' "$1"
    fi
}

onramp_on_signal() {
    onramp_interrupted=1
}

onramp_run_phases() {
    onramp_fatal=0
    for onramp_phase in $(onramp_phases); do
        if [ "$onramp_interrupted" = 1 ]; then
            onramp_fatal=$EX_INTERRUPTED
            break
        fi
        onramp_helper_call phase "$onramp_phase" --owner "$$" \
            ${onramp_events:+--events "$onramp_events"} \
            ${onramp_events_format:+--events-format "$onramp_events_format"} \
            ${onramp_from:+--from "$onramp_from"} \
            ${onramp_offline_flag:+"$onramp_offline_flag"} \
            ${onramp_no_start_flag:+"$onramp_no_start_flag"} \
            ${onramp_modify_path_flag:+"$onramp_modify_path_flag"} \
            ${onramp_http_flag:+"$onramp_http_flag"} \
            ${onramp_skip_flag:+"$onramp_skip_flag"} \
            ${onramp_unpinned_flag:+"$onramp_unpinned_flag"} \
            ${onramp_connections:+--connections "$onramp_connections"} \
            ${onramp_mirror:+--mirror "$onramp_mirror"} \
            ${onramp_ca_file:+--ca-file "$onramp_ca_file"} || onramp_fatal=$?
        onramp_fatal=$(onramp_killed_code "$onramp_fatal")
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
    onramp_final=$(onramp_killed_code "$onramp_final")
    return "$onramp_final"
}
