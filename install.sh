#!/bin/sh
# onramp installer: installs a local AI stack described by a manifest,
# resumably. Usage: sh install.sh --manifest FILE [--prefix DIR] [options];
# `sh install.sh --help` lists the options. README.md documents everything.
#
# Every line below is inside a function; the last line calls main with an
# end-of-script marker, so a truncated download defines functions and runs
# nothing (main refuses to start without the marker).

onramp_kit_version() {
    printf '0.1.0'
}

# The sha256 of the released helper for each target. A source checkout has
# none (it builds the helper); tools/build-dist.sh writes them for a release.
onramp_pin() {
    # >>> pins
    case $1 in
    *) printf '' ;;
    esac
    # <<< pins
}

# >>> lib: in a checkout, sourced from ./lib; tools/build-dist.sh inlines it
onramp_load_lib() {
    case $0 in
    */install.sh) onramp_src_dir=$(cd "${0%/*}" && pwd) ;;
    install.sh) onramp_src_dir=$(pwd) ;;
    *) onramp_src_dir= ;;
    esac
    if [ -z "$onramp_src_dir" ] || [ ! -f "$onramp_src_dir/lib/ui.sh" ]; then
        printf 'onramp: error: %s\n' "this install.sh needs its lib/ directory; run it from a checkout, or use the released single-file install.sh" >&2
        exit 11
    fi
    # shellcheck source=lib/ui.sh
    . "$onramp_src_dir/lib/ui.sh"
    # shellcheck source=lib/exitcodes.sh
    . "$onramp_src_dir/lib/exitcodes.sh"
    # shellcheck source=lib/platform.sh
    . "$onramp_src_dir/lib/platform.sh"
    # shellcheck source=lib/helper.sh
    . "$onramp_src_dir/lib/helper.sh"
    # shellcheck source=lib/resume.sh
    . "$onramp_src_dir/lib/resume.sh"
    # shellcheck source=lib/phases.sh
    . "$onramp_src_dir/lib/phases.sh"
}
# <<< lib

onramp_usage() {
    cat <<'USAGE'
Usage: sh install.sh --manifest FILE [--prefix DIR] [options]

Installs the stack a manifest describes. Safe to interrupt: run it again
and it offers to resume where it stopped.

Options:
  --manifest FILE       the stack's manifest (JSON); or set ONRAMP_MANIFEST
  --prefix DIR          install here (default: the manifest's default_prefix)
  -y, --yes             resume a saved install without asking
  --fresh               start over (verified downloads are still reused)
  --dry-run             print the plan and change nothing
  --offline             make no network connection (use the cache and --from)
  --from DIR            a pre-seeded cache: helper and artifacts named by sha256
  --allow-http          accept plain http:// artifact URLs
  --allow-skip-checksums  build worker sources whose sums are SKIP, unverified
  --allow-unpinned-catalog  build a catalog PKGBUILD the manifest does not pin
  --build-user NAME     as root, build recipes as this account (default:
                        onramp's own build uids; see README, Security)
  --connections N       connections per download (default 8)
  --mirror BASE         try BASE/<file name> before each artifact's URL
  --ca-file FILE        trust this PEM CA too (also: SSL_CERT_FILE)
  --events FILE         write progress events to FILE (NDJSON)
  --events-format F     ndjson (default) or sse
  --summary-json FILE   write the final summary as JSON
  --state-ttl HOURS     do not resume a saved install older than this (default 24)
  --print-target        print this machine's target (e.g. linux-x86_64) and exit
  --version             print the installer's version and exit
  -h, --help            this help

Environment: ONRAMP_HELPER, ONRAMP_DIST_URL, ONRAMP_MANIFEST,
ONRAMP_STATE_DIR, ONRAMP_CACHE_DIR, ONRAMP_BUILD_USER, XDG_CACHE_HOME,
XDG_STATE_HOME.
Exit codes: 0 done, 2 usage, 3 manifest, 4 disk, 5 platform, 6 network,
7 integrity, 8 another install running, 9 partial, 10 needs --yes or
--fresh, 11 helper, 12 state, 13 unsafe directory (as root), 130
interrupted (see README.md).
USAGE
}

# onramp_value FLAG VALUE: a flag's value must be there and not be a flag.
onramp_value() {
    case ${2-} in
    '' | -*) onramp_die "$EX_USAGE" "$1 needs a value; see --help" ;;
    esac
}

onramp_parse_args() {
    while [ $# -gt 0 ]; do
        case $1 in
        --*=*)
            onramp_pa_flag=${1%%=*}
            onramp_pa_val=${1#*=}
            shift
            set -- "$onramp_pa_flag" "$onramp_pa_val" ${1+"$@"}
            continue
            ;;
        esac
        case $1 in
        --manifest) onramp_value "$1" "${2-}"; onramp_manifest=$2; shift ;;
        --prefix) onramp_value "$1" "${2-}"; onramp_prefix=$2; shift ;;
        -y | --yes) onramp_yes=1 ;;
        --fresh) onramp_fresh=1 ;;
        --dry-run) onramp_dry_run=1 ;;
        --offline) onramp_offline=1; onramp_offline_flag=--offline ;;
        --from) onramp_value "$1" "${2-}"; onramp_from=$2; shift ;;
        --allow-http) onramp_http_flag=--allow-http ;;
        --allow-skip-checksums) onramp_skip_flag=--allow-skip-checksums ;;
        --allow-unpinned-catalog) onramp_unpinned_flag=--allow-unpinned-catalog ;;
        --build-user) onramp_value "$1" "${2-}"; ONRAMP_BUILD_USER=$2; export ONRAMP_BUILD_USER; shift ;;
        --connections) onramp_value "$1" "${2-}"; onramp_connections=$2; shift ;;
        --mirror) onramp_value "$1" "${2-}"; onramp_mirror=$2; shift ;;
        --ca-file) onramp_value "$1" "${2-}"; onramp_ca_file=$2; shift ;;
        --events) onramp_value "$1" "${2-}"; onramp_events=$2; shift ;;
        --events-format) onramp_value "$1" "${2-}"; onramp_events_format=$2; shift ;;
        --summary-json) onramp_value "$1" "${2-}"; onramp_summary=$2; shift ;;
        --state-ttl) onramp_value "$1" "${2-}"; ONRAMP_STATE_TTL_HOURS=$2; export ONRAMP_STATE_TTL_HOURS; shift ;;
        --print-target) onramp_print_target=1 ;;
        --version) printf 'onramp installer %s\n' "$(onramp_kit_version)"; exit 0 ;;
        -h | --help) onramp_usage; exit 0 ;;
        *) onramp_die "$EX_USAGE" "unknown option '$1'; see --help" ;;
        esac
        shift
    done
}

onramp_defaults() {
    onramp_manifest=${ONRAMP_MANIFEST:-}
    onramp_prefix=
    onramp_yes=0
    onramp_fresh=0
    onramp_dry_run=0
    onramp_offline=0
    onramp_offline_flag=
    onramp_from=
    onramp_http_flag=
    onramp_skip_flag=
    onramp_unpinned_flag=
    onramp_connections=
    onramp_mirror=
    onramp_ca_file=
    onramp_events=
    onramp_events_format=
    onramp_summary=
    onramp_print_target=0
    onramp_interrupted=0
    onramp_tmp=
}

onramp_cleanup() {
    if [ -n "$onramp_tmp" ] && [ -d "$onramp_tmp" ]; then
        rm -rf "$onramp_tmp"
    fi
}

# Absolute paths: the helper runs with its own idea of the cwd.
onramp_abs() {
    case $1 in
    /*) printf '%s' "$1" ;;
    *) printf '%s/%s' "$(pwd)" "$1" ;;
    esac
}

main() {
    if [ "${1-}" != --onramp-eof ]; then
        printf 'onramp: error: %s\n' "this install.sh is incomplete (a truncated download?); download it again" >&2
        exit 2
    fi
    shift
    set -eu
    # Nothing onramp creates is writable by group or others.
    umask 022
    onramp_load_lib
    onramp_exit_codes
    onramp_defaults
    onramp_parse_args ${1+"$@"}
    onramp_target=$(onramp_detect_target)
    if [ "$onramp_print_target" = 1 ]; then
        printf '%s\n' "$onramp_target"
        return 0
    fi
    [ -n "$onramp_manifest" ] || onramp_die "$EX_USAGE" "no manifest: pass --manifest FILE (or set ONRAMP_MANIFEST)"
    [ -f "$onramp_manifest" ] || onramp_die "$EX_MANIFEST" "manifest $onramp_manifest does not exist"
    onramp_manifest=$(onramp_abs "$onramp_manifest")
    [ -z "$onramp_from" ] || onramp_from=$(onramp_abs "$onramp_from")
    [ -z "$onramp_ca_file" ] || onramp_ca_file=$(onramp_abs "$onramp_ca_file")
    case $onramp_events_format in
    '' | ndjson | sse) ;;
    *) onramp_die "$EX_USAGE" "--events-format must be ndjson or sse" ;;
    esac
    onramp_tmp=$(mktemp -d "${TMPDIR:-/tmp}/onramp.XXXXXX")
    trap onramp_cleanup EXIT
    trap onramp_on_signal INT TERM
    onramp_acquire_helper
    if [ -z "$onramp_prefix" ]; then
        onramp_prefix=$(sed -n 's/^ *"default_prefix" *: *"\(.*\)".*$/\1/p' "$onramp_manifest" | head -n 1)
        [ -n "$onramp_prefix" ] || onramp_die "$EX_USAGE" "no prefix: pass --prefix DIR (the manifest has no default_prefix)"
        case $onramp_prefix in
        \~/*) onramp_prefix=$HOME/${onramp_prefix#??} ;;
        esac
    fi
    onramp_prefix=$(onramp_abs "$onramp_prefix")
    if [ "$onramp_dry_run" = 1 ]; then
        onramp_helper_call plan
        return 0
    fi
    onramp_say "installing into $onramp_prefix ($onramp_target)"
    onramp_decide_resume
    onramp_helper_call begin --owner "$$" "$onramp_mode" || exit $?
    onramp_run_phases
}

main --onramp-eof ${1+"$@"}
