# shellcheck shell=sh
# exitcodes.sh: the exit code table, word for word the helper's
# (`onramp exit-codes`) and README's. tests/ checks that they agree.

onramp_exit_codes() {
    EX_INTERNAL=1
    EX_USAGE=2
    EX_MANIFEST=3
    EX_DISK=4
    EX_PLATFORM=5
    EX_NETWORK=6
    EX_INTEGRITY=7
    EX_LOCK_HELD=8
    EX_PARTIAL=9
    EX_NEEDS_CONFIRMATION=10
    EX_HELPER=11
    EX_STATE=12
    EX_UNSAFE=13
    EX_KILLED=14
    EX_NOT_READY=15
    EX_AUTH=16
    EX_INTERRUPTED=130
}

# Prints "name code" lines in the helper's format.
onramp_exit_code_table() {
    onramp_exit_codes
    printf '%s\n' "internal $EX_INTERNAL" "usage $EX_USAGE" "manifest $EX_MANIFEST" \
        "disk $EX_DISK" "platform $EX_PLATFORM" "network $EX_NETWORK" \
        "integrity $EX_INTEGRITY" "lock_held $EX_LOCK_HELD" "partial $EX_PARTIAL" \
        "needs_confirmation $EX_NEEDS_CONFIRMATION" "helper $EX_HELPER" "state $EX_STATE" \
        "unsafe $EX_UNSAFE" "killed $EX_KILLED" "not_ready $EX_NOT_READY" \
        "auth $EX_AUTH" "interrupted $EX_INTERRUPTED"
}
