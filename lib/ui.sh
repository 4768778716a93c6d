# shellcheck shell=sh
# ui.sh: how install.sh talks: one function to say, to warn, to fail.
# All messages go to stderr; stdout stays free for --print-target.

onramp_say() {
    printf 'onramp: %s\n' "$*" >&2
}

onramp_warn() {
    printf 'onramp: warning: %s\n' "$*" >&2
}

# onramp_die CODE MESSAGE: print the error and exit with a documented code.
onramp_die() {
    onramp_die_code=$1
    shift
    printf 'onramp: error: %s\n' "$*" >&2
    exit "$onramp_die_code"
}

# onramp_need CMD: fail with a clear message when a command is missing.
onramp_need() {
    command -v "$1" >/dev/null 2>&1 ||
        onramp_die "$EX_USAGE" "this installer needs '$1', which is not installed; install it and run again"
}

onramp_has() {
    command -v "$1" >/dev/null 2>&1
}
