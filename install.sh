#!/bin/sh
# onramp installer: installs a local AI stack described by a manifest,
# resumably. Usage: sh install.sh --manifest FILE|URL [--prefix DIR]
# [options]; a released install.sh (`onramp release`) installs its own stack
# with no arguments. `sh install.sh --help` lists the options; README.md
# documents everything.
#
# Every line below is inside a function; the last line calls main with an
# end-of-script marker, so a truncated download defines functions and runs
# nothing (main refuses to start without the marker).

onramp_kit_version() {
    printf '0.1.0'
}

# The sha256 of the released helper for each target. A source checkout has
# none (it builds the helper); `onramp release` writes them.
onramp_pin() {
    # >>> pins
    case $1 in
    *) printf '' ;;
    esac
    # <<< pins
}

# The release this install.sh belongs to: its base URL, stack, manifest
# and the minisign keys it trusts. Empty in a checkout; `onramp release`
# fills them in.
onramp_release() {
    # >>> release
    onramp_rel_base=
    onramp_rel_stack=
    onramp_rel_manifest=
    onramp_rel_keys=
    # <<< release
}

# >>> lib: in a checkout, sourced from ./lib; `onramp release` inlines it
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
Usage: sh install.sh [--manifest FILE|URL] [--prefix DIR] [options]
       curl --proto '=https' --tlsv1.2 -fsSL URL/install.sh | sh -s -- [options]

Installs the stack a manifest describes (a released install.sh: its own
stack, with no arguments). Safe to interrupt: run it again and it resumes;
run it again later and it upgrades to the newest release.

Options (each also an environment variable, shown after it):
  --manifest FILE|URL   the stack's manifest, a file or an https URL   ONRAMP_MANIFEST
  --prefix DIR          install here (default: the manifest's)         ONRAMP_PREFIX
  -y, --yes             resume a saved install without asking          ONRAMP_YES=1
  --fresh               start over (verified downloads are reused)     ONRAMP_FRESH=1
  --profile NAME        install this profile of the stack              ONRAMP_PROFILE
  --gpu BACKEND         pick variants for cuda, rocm, metal, intel     ONRAMP_GPU
                        or cpu instead of the GPU detected
  --no-start            do not start the stack's services              ONRAMP_NO_START=1
  --modify-path         put the stack's commands' directory on PATH in    ONRAMP_MODIFY_PATH=1
                        your shell profiles (one marked block each)
  --bin-dir DIR         link the stack's commands here                    ONRAMP_BIN_DIR
                        (default ~/.local/bin; as root /usr/local/bin)
  --dry-run             print the plan and change nothing              ONRAMP_DRY_RUN=1
  --rollback-on-failure if the install fails, undo what it did          ONRAMP_ROLLBACK_ON_FAILURE=1
                        (a failed install otherwise asks on a terminal)
  --uninstall           undo the install in --prefix: its services,      ONRAMP_UNINSTALL=1
                        files and state (a config file you changed is kept)
  --keep-models         with --uninstall: keep the model files
  --purge-cache         with --uninstall: also drop the cache entries no
                        other install uses
  --check               say whether the install is ready (files,         ONRAMP_CHECK=1
                        services, health checks); exit 15 when not
  --deep                with --check: re-hash every file
  --repair              with --check: put back what is missing or
                        changed, from the cache
  --offline             make no network connection                     ONRAMP_OFFLINE=1
  --from BUNDLE|DIR     a bundle (onramp bundle create; no network)    ONRAMP_FROM
                        or a pre-seeded cache (files named by sha256)
  --trust-key KEY       trust manifests signed by this minisign key    ONRAMP_TRUST_KEY
                        (RW... or a .pub file; repeatable; a released
                        install.sh trusts its publisher's already)
  --allow-downgrade     install a release older than one installed     ONRAMP_ALLOW_DOWNGRADE=1
  --allow-expired       install a manifest past its "expires"          ONRAMP_ALLOW_EXPIRED=1
  --allow-http          accept plain http:// artifact URLs             ONRAMP_ALLOW_HTTP=1
  --allow-skip-checksums  build sources whose sums are SKIP            ONRAMP_ALLOW_SKIP_CHECKSUMS=1
  --allow-unpinned-catalog  build an unpinned catalog PKGBUILD         ONRAMP_ALLOW_UNPINNED_CATALOG=1
  --build-user NAME     as root, build recipes as this account         ONRAMP_BUILD_USER
  --connections N       connections per download (default 8)           ONRAMP_CONNECTIONS
  --mirror BASE         try BASE/<file name> before each artifact      ONRAMP_MIRROR
  --ca-file FILE        trust this PEM CA too                          ONRAMP_CA_FILE
  --events FILE         write progress events to FILE (NDJSON)         ONRAMP_EVENTS
  --events-format F     ndjson (default) or sse                        ONRAMP_EVENTS_FORMAT
  --summary-json FILE   write the final summary as JSON                ONRAMP_SUMMARY_JSON
  --progress-listen ADDR  serve live progress on 127.0.0.1:PORT (0: a ONRAMP_PROGRESS_LISTEN
                        free port): /events (SSE), /status (JSON), /
                        (a page); the URL, with its token, is printed
  --progress-url-file FILE  write that URL here (default: beside the  ONRAMP_PROGRESS_URL_FILE
                        install's state, progress.url)
  --progress-linger SECS  keep serving this long after the end (30)  ONRAMP_PROGRESS_LINGER
  --progress-allow-origin ORIGIN  let pages of ORIGIN read it (CORS)  ONRAMP_PROGRESS_ALLOW_ORIGIN
  --state-ttl HOURS     do not resume a saved install older than this  ONRAMP_STATE_TTL_HOURS
  --print-target        print this machine's target and exit
  --version             print the installer's version and exit
  -h, --help            this help

Also: ONRAMP_HELPER, ONRAMP_DIST_URL, ONRAMP_STATE_DIR, ONRAMP_CACHE_DIR,
HF_TOKEN, HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, ONRAMP_REGISTRY_AUTH, DOCKER_CONFIG,
SSL_CERT_FILE, XDG_CACHE_HOME, XDG_STATE_HOME.
Exit codes: 0 done, 2 usage, 3 manifest, 4 disk, 5 platform, 6 network,
7 integrity (also a refused signature, rollback or expiry), 8 another
install running, 9 partial, 10 needs --yes or --fresh, 11 helper, 12 state,
13 unsafe directory (as root), 14 helper killed (kill -9, out of memory),
15 not ready (--check), 16 auth (a gated model or private registry: set
HF_TOKEN or ONRAMP_REGISTRY_AUTH), 130 interrupted (see README.md).
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
        --profile) onramp_value "$1" "${2-}"; onramp_profile=$2; shift ;;
        --gpu) onramp_value "$1" "${2-}"; onramp_gpu=$2; shift ;;
        --no-start) onramp_no_start_flag=--no-start ;;
        --modify-path) onramp_modify_path_flag=--modify-path ;;
        --bin-dir) onramp_value "$1" "${2-}"; ONRAMP_BIN_DIR=$(onramp_abs "$2"); export ONRAMP_BIN_DIR; shift ;;
        --dry-run) onramp_dry_run=1 ;;
        --uninstall) onramp_uninstall=1 ;;
        --rollback-on-failure) onramp_rollback=1 ;;
        --keep-models) onramp_keep_models_flag=--keep-models ;;
        --purge-cache) onramp_purge_flag=--purge-cache ;;
        --check) onramp_check=1 ;;
        --deep) onramp_deep_flag=--deep ;;
        --repair) onramp_repair=1; onramp_check=1 ;;
        --offline) onramp_offline=1; onramp_offline_flag=--offline ;;
        --from) onramp_value "$1" "${2-}"; onramp_from=$2; shift ;;
        --allow-http) onramp_http_flag=--allow-http ;;
        --allow-skip-checksums) onramp_skip_flag=--allow-skip-checksums ;;
        --allow-unpinned-catalog) onramp_unpinned_flag=--allow-unpinned-catalog ;;
        --build-user) onramp_value "$1" "${2-}"; ONRAMP_BUILD_USER=$2; export ONRAMP_BUILD_USER; shift ;;
        --trust-key) onramp_value "$1" "${2-}"; onramp_trust_keys="$onramp_trust_keys $2"; shift ;;
        --allow-downgrade) onramp_downgrade_flag=--allow-downgrade ;;
        --allow-expired) onramp_expired_flag=--allow-expired ;;
        --connections) onramp_value "$1" "${2-}"; onramp_connections=$2; shift ;;
        --mirror) onramp_value "$1" "${2-}"; onramp_mirror=$2; shift ;;
        --ca-file) onramp_value "$1" "${2-}"; onramp_ca_file=$2; shift ;;
        --events) onramp_value "$1" "${2-}"; onramp_events=$2; shift ;;
        --events-format) onramp_value "$1" "${2-}"; onramp_events_format=$2; shift ;;
        --summary-json) onramp_value "$1" "${2-}"; onramp_summary=$2; shift ;;
        --progress-listen) onramp_value "$1" "${2-}"; onramp_progress_listen=$2; shift ;;
        --progress-url-file) onramp_value "$1" "${2-}"; onramp_progress_url_file=$2; shift ;;
        --progress-linger) onramp_value "$1" "${2-}"; onramp_progress_linger=$2; shift ;;
        --progress-allow-origin) onramp_value "$1" "${2-}"; onramp_progress_origin=$2; shift ;;
        --state-ttl) onramp_value "$1" "${2-}"; ONRAMP_STATE_TTL_HOURS=$2; export ONRAMP_STATE_TTL_HOURS; shift ;;
        --print-target) onramp_print_target=1 ;;
        --version) printf 'onramp installer %s\n' "$(onramp_kit_version)"; exit 0 ;;
        -h | --help) onramp_usage; exit 0 ;;
        *) onramp_die "$EX_USAGE" "unknown option '$1'; see --help" ;;
        esac
        shift
    done
}

# onramp_env_flag NAME VALUE [FLAG]: when environment variable NAME (whose
# value is VALUE) says yes, 1 (or FLAG); when it is empty or says no, 0 (or
# nothing); anything else is a usage error.
onramp_env_flag() {
    case $2 in
    1 | true | yes | y | on) printf '%s' "${3:-1}" ;;
    '' | 0 | false | no | n | off) [ -n "${3:-}" ] || printf 0 ;;
    *) printf 'onramp: error: %s=%s: use 1 or 0\n' "$1" "$2" >&2; exit 2 ;;
    esac
}

# Every option starts from its environment variable (as rustup's and
# cargo-dist's installers do), so `curl ... | sh` can be configured
# without `sh -s --`; a flag given on the command line wins.
onramp_defaults() {
    onramp_manifest=${ONRAMP_MANIFEST:-}
    onramp_manifest_url=
    onramp_prefix=${ONRAMP_PREFIX:-}
    onramp_yes=$(onramp_env_flag ONRAMP_YES "${ONRAMP_YES:-}")
    onramp_fresh=$(onramp_env_flag ONRAMP_FRESH "${ONRAMP_FRESH:-}")
    onramp_profile=${ONRAMP_PROFILE:-}
    onramp_gpu=${ONRAMP_GPU:-}
    onramp_no_start_flag=$(onramp_env_flag ONRAMP_NO_START "${ONRAMP_NO_START:-}" --no-start)
    onramp_modify_path_flag=$(onramp_env_flag ONRAMP_MODIFY_PATH "${ONRAMP_MODIFY_PATH:-}" --modify-path)
    onramp_dry_run=$(onramp_env_flag ONRAMP_DRY_RUN "${ONRAMP_DRY_RUN:-}")
    onramp_uninstall=$(onramp_env_flag ONRAMP_UNINSTALL "${ONRAMP_UNINSTALL:-}")
    onramp_rollback=$(onramp_env_flag ONRAMP_ROLLBACK_ON_FAILURE "${ONRAMP_ROLLBACK_ON_FAILURE:-}")
    onramp_keep_models_flag=
    onramp_purge_flag=
    onramp_check=$(onramp_env_flag ONRAMP_CHECK "${ONRAMP_CHECK:-}")
    onramp_deep_flag=
    onramp_repair=0
    onramp_offline=$(onramp_env_flag ONRAMP_OFFLINE "${ONRAMP_OFFLINE:-}")
    onramp_offline_flag=$(onramp_env_flag ONRAMP_OFFLINE "${ONRAMP_OFFLINE:-}" --offline)
    onramp_from=${ONRAMP_FROM:-}
    onramp_http_flag=$(onramp_env_flag ONRAMP_ALLOW_HTTP "${ONRAMP_ALLOW_HTTP:-}" --allow-http)
    onramp_skip_flag=$(onramp_env_flag ONRAMP_ALLOW_SKIP_CHECKSUMS "${ONRAMP_ALLOW_SKIP_CHECKSUMS:-}" --allow-skip-checksums)
    onramp_unpinned_flag=$(onramp_env_flag ONRAMP_ALLOW_UNPINNED_CATALOG "${ONRAMP_ALLOW_UNPINNED_CATALOG:-}" --allow-unpinned-catalog)
    onramp_downgrade_flag=$(onramp_env_flag ONRAMP_ALLOW_DOWNGRADE "${ONRAMP_ALLOW_DOWNGRADE:-}" --allow-downgrade)
    onramp_expired_flag=$(onramp_env_flag ONRAMP_ALLOW_EXPIRED "${ONRAMP_ALLOW_EXPIRED:-}" --allow-expired)
    onramp_trust_keys=${ONRAMP_TRUST_KEY:-}
    onramp_connections=${ONRAMP_CONNECTIONS:-}
    onramp_mirror=${ONRAMP_MIRROR:-}
    onramp_ca_file=${ONRAMP_CA_FILE:-}
    onramp_events=${ONRAMP_EVENTS:-}
    onramp_events_format=${ONRAMP_EVENTS_FORMAT:-}
    onramp_summary=${ONRAMP_SUMMARY_JSON:-}
    onramp_progress_listen=${ONRAMP_PROGRESS_LISTEN:-}
    onramp_progress_url_file=${ONRAMP_PROGRESS_URL_FILE:-}
    onramp_progress_linger=${ONRAMP_PROGRESS_LINGER:-}
    onramp_progress_origin=${ONRAMP_PROGRESS_ALLOW_ORIGIN:-}
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

# --from BUNDLE: an archive is unpacked (streamed; every member checked
# against the bundle's index before anything is installed), a directory
# checked byte for byte; either way the signature (with a trusted key) and
# every artifact's presence too. The bundle's manifest is the default.
onramp_open_bundle() {
    case $onramp_from in
    *.tar.zst)
        [ -f "$onramp_from" ] || onramp_die "$EX_USAGE" "--from $onramp_from: no such file"
        onramp_say "unpacking the bundle $onramp_from (each file checked against its index)"
        "$onramp_helper" bundle unpack "$onramp_from" -o "$onramp_tmp/bundle" >/dev/null </dev/null ||
            { onramp_rc=$?; exit "$(onramp_killed_code "$onramp_rc")"; }
        onramp_from=$onramp_tmp/bundle
        ;;
    *)
        onramp_say "checking the bundle $onramp_from (each file against its index)"
        "$onramp_helper" bundle verify "$onramp_from" >/dev/null </dev/null ||
            { onramp_rc=$?; exit "$(onramp_killed_code "$onramp_rc")"; }
        ;;
    esac
    [ -n "$onramp_manifest" ] || onramp_manifest=$onramp_from/manifest.json
}

# onramp_again: how the user runs this installer again, as they would type
# it: the file they ran, or (piped from curl, with no file to name) the
# release's one-liner.
onramp_again() {
    case $0 in
    */install.sh | install.sh)
        if [ -f "$0" ]; then
            printf 'sh %s\n' "$0"
            return 0
        fi
        ;;
    esac
    if [ -n "$onramp_rel_base" ]; then
        printf "curl --proto '=https' --tlsv1.2 -fsSL %s/install.sh | sh -s --\n" "$onramp_rel_base"
    else
        printf 'sh install.sh\n'
    fi
}

# onramp_after_failure RC: the helper decides whether a failed install is
# undone (not an interrupted, killed or upgrading one: those are finished
# by running again) and says why; this shell asks its question, if any,
# and runs the undo.
onramp_after_failure() {
    [ "$1" != 0 ] || return 0
    onramp_af_up=
    [ "$onramp_mode" != --upgrade ] || onramp_af_up=--upgrade
    onramp_af_rb=
    [ "$onramp_rollback" != 1 ] || onramp_af_rb=--rollback-on-failure
    onramp_af_again=$(onramp_again)
    onramp_af=$("$onramp_helper" after-failure --prefix "$onramp_prefix" --code "$1" \
        --again "$onramp_af_again" \
        ${onramp_af_up:+"$onramp_af_up"} ${onramp_af_rb:+"$onramp_af_rb"} </dev/null) || return 0
    case $onramp_af in
    'ask '*)
        onramp_ask_rc=0
        onramp_ask_no "onramp: ${onramp_af#ask }" || onramp_ask_rc=$?
        case $onramp_ask_rc in
        0) onramp_answer=yes ;;
        1) onramp_answer=no ;;
        *) onramp_answer=none ;;
        esac
        onramp_af=$("$onramp_helper" after-failure --prefix "$onramp_prefix" --code "$1" \
            --again "$onramp_af_again" --answer "$onramp_answer" </dev/null) || return 0
        ;;
    esac
    [ "$onramp_af" = undo ] || return 0
    "$onramp_helper" uninstall --prefix "$onramp_prefix" </dev/null ||
        onramp_say "the undo stopped (exit $?); run: $onramp_af_again --uninstall --prefix '$onramp_prefix'"
}

# --progress-listen without --events: the events go beside the install's
# state (events.ndjson), so a resumed install continues the same stream.
onramp_progress_events() {
    [ -n "$onramp_progress_listen" ] || return 0
    onramp_pe_dir=$("$onramp_helper" state --prefix "$onramp_prefix" </dev/null | sed -n 1p) ||
        onramp_die "$EX_STATE" "cannot find the state directory of $onramp_prefix"
    onramp_pe_dir=${onramp_pe_dir%/*}
    [ -n "$onramp_events" ] || onramp_events=$onramp_pe_dir/events.ndjson
    [ -n "$onramp_progress_url_file" ] || onramp_progress_url_file=$onramp_pe_dir/progress.url
}

# --progress-listen: the helper serves the events on a loopback port from
# the background (its own session: it outlives a kill of this installer,
# says the install was interrupted, and lingers after the end).
onramp_progress_start() {
    [ -n "$onramp_progress_listen" ] || return 0
    onramp_ps_out=$("$onramp_helper" progress-serve --listen "$onramp_progress_listen" \
        --events "$onramp_events" --owner "$$" --url-file "$onramp_progress_url_file" \
        ${onramp_progress_linger:+--linger "$onramp_progress_linger"} \
        ${onramp_progress_origin:+--allow-origin "$onramp_progress_origin"} </dev/null) ||
        { onramp_rc=$?; exit "$(onramp_killed_code "$onramp_rc")"; }
    onramp_say "progress: $(printf '%s\n' "$onramp_ps_out" | sed -n 1p) (the URL is also in $onramp_progress_url_file)"
}

# --uninstall: the helper reverts what the install recorded.
onramp_uninstall_run() {
    onramp_dry_flag=
    if [ "$onramp_dry_run" = 1 ]; then
        onramp_dry_flag=--dry-run
    fi
    onramp_say "uninstalling from $onramp_prefix"
    "$onramp_helper" uninstall --prefix "$onramp_prefix" \
        ${onramp_keep_models_flag:+"$onramp_keep_models_flag"} \
        ${onramp_purge_flag:+"$onramp_purge_flag"} \
        ${onramp_dry_flag:+"$onramp_dry_flag"} </dev/null ||
        { onramp_rc=$?; exit "$(onramp_killed_code "$onramp_rc")"; }
}

# --check [--deep] [--repair]: the helper's doctor; a repair then resumes
# the install (only what doctor sent back runs, from the cache) and asks
# the doctor again.
onramp_check_run() {
    onramp_rc=0
    onramp_repair_flag=
    if [ "$onramp_repair" = 1 ]; then
        onramp_repair_flag=--repair
    fi
    onramp_doctor "$onramp_repair_flag" || onramp_rc=$?
    if [ "$onramp_rc" = "$EX_NOT_READY" ] && [ "$onramp_repair" = 1 ]; then
        onramp_say "repairing $onramp_prefix: putting back what is missing or changed"
        onramp_yes=1
        onramp_decide_resume
        onramp_helper_call begin --owner "$$" "$onramp_mode" || { onramp_rc=$?; exit "$(onramp_killed_code "$onramp_rc")"; }
        onramp_run_phases || true
        onramp_rc=0
        onramp_doctor || onramp_rc=$?
    fi
    exit "$(onramp_killed_code "$onramp_rc")"
}

onramp_doctor() {
    "$onramp_helper" doctor --prefix "$onramp_prefix" \
        ${onramp_manifest:+--manifest "$onramp_manifest"} \
        ${onramp_manifest_url:+--manifest-url "$onramp_manifest_url"} \
        ${onramp_deep_flag:+"$onramp_deep_flag"} ${1:+"$1"} </dev/null
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
    # As root, another user's environment decides nothing (PATH first).
    onramp_own_environment
    onramp_release
    onramp_defaults
    onramp_parse_args ${1+"$@"}
    onramp_target=$(onramp_detect_target)
    if [ "$onramp_print_target" = 1 ]; then
        printf '%s\n' "$onramp_target"
        return 0
    fi
    # A released install.sh installs its own stack and trusts its keys.
    [ -n "$onramp_manifest" ] || onramp_manifest=$onramp_rel_manifest
    # A bundle (`onramp bundle create`: a .tar.zst, or a directory with an
    # index.json) carries the manifest and everything else: no network.
    onramp_bundle=0
    case $onramp_from in
    '') ;;
    *.tar.zst) onramp_bundle=1 ;;
    *) [ ! -f "$onramp_from/index.json" ] || onramp_bundle=1 ;;
    esac
    if [ "$onramp_bundle" = 1 ]; then
        onramp_offline=1
        onramp_offline_flag=--offline
    fi
    # An uninstall or a check of a prefix named on the command line needs
    # no manifest (and so no network); a repair reinstalls, so it does.
    onramp_no_manifest=0
    if [ "$onramp_uninstall" = 1 ] || { [ "$onramp_check" = 1 ] && [ "$onramp_repair" = 0 ]; }; then
        [ -z "$onramp_prefix" ] || onramp_no_manifest=1
    fi
    if [ "$onramp_uninstall" = 1 ] && [ -z "$onramp_prefix" ] && [ -z "$onramp_manifest" ] && [ "$onramp_bundle" = 0 ]; then
        onramp_die "$EX_USAGE" "--uninstall needs --prefix DIR (the install to undo), or --manifest FILE|URL for the stack's default prefix"
    fi
    [ "$onramp_no_manifest" = 1 ] || [ -n "$onramp_manifest" ] || [ "$onramp_bundle" = 1 ] ||
        onramp_die "$EX_USAGE" "no manifest: pass --manifest FILE|URL (or set ONRAMP_MANIFEST)"
    onramp_trust_keys="$onramp_rel_keys $onramp_trust_keys"
    # Every helper call checks the manifest's signature against these.
    ONRAMP_TRUST_KEY=$onramp_trust_keys
    export ONRAMP_TRUST_KEY
    [ "$onramp_no_manifest" = 0 ] || onramp_manifest=
    case $onramp_manifest in
    '') ;;
    https://*) onramp_manifest_url=$onramp_manifest ;;
    *://*) onramp_die "$EX_USAGE" "--manifest $onramp_manifest: only https:// URLs are accepted (a manifest decides what runs)" ;;
    *)
        [ -f "$onramp_manifest" ] || onramp_die "$EX_MANIFEST" "manifest $onramp_manifest does not exist"
        onramp_manifest=$(onramp_abs "$onramp_manifest")
        ;;
    esac
    [ -z "$onramp_from" ] || onramp_from=$(onramp_abs "$onramp_from")
    [ -z "$onramp_ca_file" ] || onramp_ca_file=$(onramp_abs "$onramp_ca_file")
    [ -z "$onramp_events" ] || onramp_events=$(onramp_abs "$onramp_events")
    [ -z "$onramp_progress_url_file" ] || onramp_progress_url_file=$(onramp_abs "$onramp_progress_url_file")
    onramp_tmp=$(mktemp -d "${TMPDIR:-/tmp}/onramp.XXXXXX")
    trap onramp_cleanup EXIT
    trap onramp_on_signal INT TERM
    onramp_acquire_helper
    # The values given, checked before anything is done (by the helper:
    # the same checks and words as install.ps1's).
    "$onramp_helper" check-options \
        ${onramp_events_format:+--events-format "$onramp_events_format"} \
        ${onramp_progress_listen:+--progress-listen "$onramp_progress_listen"} \
        ${onramp_progress_linger:+--progress-linger "$onramp_progress_linger"} \
        ${onramp_connections:+--connections "$onramp_connections"} \
        ${onramp_gpu:+--gpu "$onramp_gpu"} \
        ${ONRAMP_STATE_TTL_HOURS:+--state-ttl "$ONRAMP_STATE_TTL_HOURS"} </dev/null ||
        { onramp_rc=$?; exit "$(onramp_killed_code "$onramp_rc")"; }
    if [ "$onramp_bundle" = 1 ]; then
        onramp_open_bundle
    fi
    [ -n "$onramp_manifest" ] || [ "$onramp_no_manifest" = 1 ] ||
        onramp_die "$EX_USAGE" "no manifest: pass --manifest FILE|URL (or set ONRAMP_MANIFEST)"
    if [ -n "$onramp_manifest_url" ]; then
        onramp_say "fetching the manifest${onramp_rel_stack:+ of $onramp_rel_stack}: $onramp_manifest_url"
        onramp_manifest=$("$onramp_helper" fetch-manifest "$onramp_manifest_url" \
            ${onramp_ca_file:+--ca-file "$onramp_ca_file"} \
            ${onramp_offline_flag:+"$onramp_offline_flag"} \
            ${onramp_downgrade_flag:+"$onramp_downgrade_flag"} \
            ${onramp_expired_flag:+"$onramp_expired_flag"} </dev/null) || exit $?
    fi
    if [ -z "$onramp_prefix" ]; then
        # The helper reads the manifest (JSON is not the shell's to parse).
        onramp_prefix=$("$onramp_helper" prefix --manifest "$onramp_manifest" \
            ${onramp_manifest_url:+--manifest-url "$onramp_manifest_url"} </dev/null) || exit $?
    fi
    onramp_prefix=$(onramp_abs "$onramp_prefix")
    if [ "$onramp_uninstall" = 1 ]; then
        onramp_uninstall_run
        return 0
    fi
    if [ "$onramp_check" = 1 ]; then
        onramp_check_run
    fi
    if [ "$onramp_dry_run" = 1 ]; then
        onramp_helper_call plan
        return 0
    fi
    onramp_say "installing into $onramp_prefix ($onramp_target)"
    onramp_decide_resume
    onramp_progress_events
    onramp_helper_call begin --owner "$$" "$onramp_mode" \
        ${onramp_events:+--events "$onramp_events"} \
        ${onramp_summary:+--summary-json "$onramp_summary"} \
        ${onramp_events_format:+--events-format "$onramp_events_format"} ||
        { onramp_rc=$?; exit "$(onramp_killed_code "$onramp_rc")"; }
    onramp_progress_start
    onramp_rc=0
    onramp_run_phases || onramp_rc=$?
    onramp_after_failure "$onramp_rc"
    exit "$onramp_rc"
}

main --onramp-eof ${1+"$@"}
