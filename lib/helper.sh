# shellcheck shell=sh disable=SC2154,SC2034 # globals shared with install.sh main
# helper.sh: getting the `onramp` helper binary, verified, somewhere it can
# run. In order: $ONRAMP_HELPER; a cached helper whose sha256 matches the pin;
# --from DIR; a download from $ONRAMP_DIST_URL (default: beside a manifest
# given by URL, else a released install.sh's own base URL; https only,
# pinned sha256);
# a build from this source checkout with cargo. Never run from /tmp: the
# helper is staged under the user's cache directory and probed.

# onramp_mkdir_noted ROOT DIR: mkdir -p DIR (inside ROOT, onramp's cache
# root). When that makes ROOT, first note which directories it makes in
# ROOT/created-dirs.json, as the helper does for the roots it makes, so an
# uninstall with --purge-cache removes exactly those. A path JSON would
# need escaping in is not noted (the directories then stay).
onramp_mkdir_noted() {
    onramp_mn_list=
    if [ ! -d "$1" ]; then
        onramp_mn_d=$1
        while [ -n "$onramp_mn_d" ] && [ ! -e "$onramp_mn_d" ]; do
            onramp_mn_list="\"$onramp_mn_d\"${onramp_mn_list:+,$onramp_mn_list}"
            onramp_mn_d=${onramp_mn_d%/*}
        done
    fi
    mkdir -p "$2"
    # Checked before anything is written in them; the note goes in by a
    # fresh name and a rename (never through a name someone planted).
    onramp_private_dir "$1"
    onramp_private_dir "$2"
    case $1 in
    *'"'* | *\\* | *"$onramp_nl"*) ;;
    *)
        if [ -n "$onramp_mn_list" ]; then
            onramp_mn_tmp=$(mktemp "$1/.onramp-tmp-XXXXXX")
            printf '[%s]' "$onramp_mn_list" >"$onramp_mn_tmp"
            mv -f "$onramp_mn_tmp" "$1/created-dirs.json"
        fi
        ;;
    esac
}

# The most bytes a helper may have: what is taken out of a bundle before its
# pin is checked stops there.
onramp_helper_max=268435456
onramp_nl='
'

onramp_cache_home() {
    if [ -n "${XDG_CACHE_HOME:-}" ]; then
        printf '%s/onramp' "$XDG_CACHE_HOME"
    elif [ -n "${HOME:-}" ]; then
        printf '%s/.cache/onramp' "$HOME"
    else
        onramp_die "$EX_HELPER" "neither HOME nor XDG_CACHE_HOME is set; set one so the helper has a place to live"
    fi
}

# Which sha256 tool verifies the helper; exits (in this shell, not in a
# command substitution) when there is none.
onramp_pick_sha256() {
    if onramp_has sha256sum; then
        onramp_sha_tool=sha256sum
    elif onramp_has shasum; then
        onramp_sha_tool=shasum
    elif onramp_has openssl; then
        onramp_sha_tool=openssl
    else
        onramp_die "$EX_HELPER" "cannot verify the helper: looked for sha256sum, shasum and openssl, and none is installed; install one of them (coreutils, perl or openssl) and run again"
    fi
}

# sha256 of a file with the tool onramp_pick_sha256 chose.
onramp_sha256() {
    case $onramp_sha_tool in
    sha256sum) sha256sum "$1" | cut -d' ' -f1 ;;
    shasum) shasum -a 256 "$1" | cut -d' ' -f1 ;;
    *) openssl dgst -sha256 "$1" | sed 's/^.*= *//' ;;
    esac
}

# onramp_entry_why PATH LAST: as root, why the entry PATH (a directory, or
# a link to one) may not be on onramp's way: not root's, or writable by
# group or others (LAST=shared: sticky is fine, as above the last). Prints
# nothing when it may.
onramp_entry_why() {
    onramp_ew_path=$1
    onramp_ew_last=$2
    # shellcheck disable=SC2012 # ls -ldn is the portable way to read owner and mode
    onramp_ew=$(ls -ldn "$1" 2>/dev/null) || return 0
    # Its fields, split by the shell (no awk: this runs for every directory
    # on every PATH entry); globbing off meanwhile.
    set -f
    # shellcheck disable=SC2086 # split on purpose
    set -- $onramp_ew
    set +f
    onramp_ew_mode=$1
    onramp_ew_uid=$3
    if [ "$onramp_ew_uid" != 0 ]; then
        printf '%s is owned by uid %s (not root)' "$onramp_ew_path" "$onramp_ew_uid"
        return 0
    fi
    case $onramp_ew_mode in
    l*) return 0 ;;
    ?????w???[tT]* | ????????w[tT]*)
        if [ "$onramp_ew_last" = private ]; then
            printf '%s is writable by others (mode %s)' "$onramp_ew_path" "$onramp_ew_mode"
        fi
        ;;
    ?????w* | ????????w*) printf '%s is writable by others (mode %s)' "$onramp_ew_path" "$onramp_ew_mode" ;;
    esac
}

# onramp_untrusted DIR [LAST]: as root, why DIR may not be used (printed;
# nothing when it may): every directory from / down to it, along its path
# as written (a link on the way must be root's) and along the path it
# resolves to, must be root's and not writable by others (sticky is fine
# above DIR; for DIR itself only with LAST=shared). What does not exist yet
# is checked once made. OpenSSH's StrictModes, for the shell.
onramp_untrusted() {
    case $1 in
    /*) ;;
    *)
        printf '%s is not an absolute path' "$1"
        return 0
        ;;
    esac
    onramp_ut_deep=/
    for onramp_ut_pass in logical physical; do
        if [ "$onramp_ut_pass" = physical ]; then
            onramp_ut_path=$(cd -P "$onramp_ut_deep" 2>/dev/null && pwd -P) || return 0
        else
            onramp_ut_path=$1
        fi
        onramp_ut_why=$(onramp_entry_why / inner)
        [ -z "$onramp_ut_why" ] || { printf '%s' "$onramp_ut_why"; return 0; }
        onramp_ut_cur=
        onramp_ut_rest=${onramp_ut_path#/}
        while [ -n "$onramp_ut_rest" ]; do
            onramp_ut_name=${onramp_ut_rest%%/*}
            case $onramp_ut_rest in
            */*) onramp_ut_rest=${onramp_ut_rest#*/} ;;
            *) onramp_ut_rest= ;;
            esac
            case $onramp_ut_name in '' | .) continue ;; esac
            onramp_ut_cur=$onramp_ut_cur/$onramp_ut_name
            if [ ! -e "$onramp_ut_cur" ] && [ ! -h "$onramp_ut_cur" ]; then
                # Missing: another user must not be able to make it first.
                if [ "$onramp_ut_pass" = logical ]; then
                    onramp_ut_par=${onramp_ut_cur%/*}
                    onramp_ut_why=$(onramp_entry_why "${onramp_ut_par:-/}" private)
                    [ -z "$onramp_ut_why" ] || {
                        printf '%s does not exist yet and %s' "$1" "$onramp_ut_why"
                        return 0
                    }
                fi
                break
            fi
            [ "$onramp_ut_pass" = physical ] || [ ! -d "$onramp_ut_cur" ] || onramp_ut_deep=$onramp_ut_cur
            onramp_ut_last=inner
            [ -n "$onramp_ut_rest" ] || onramp_ut_last=${2:-private}
            onramp_ut_why=$(onramp_entry_why "$onramp_ut_cur" "$onramp_ut_last")
            [ -z "$onramp_ut_why" ] || { printf '%s' "$onramp_ut_why"; return 0; }
        done
    done
}

# onramp_root_home: root's home from the password database, else /root.
onramp_root_home() {
    onramp_rh=$(awk -F: '$3 == "0" && $6 ~ /^\// { print $6; exit }' /etc/passwd 2>/dev/null) || onramp_rh=
    printf '%s' "${onramp_rh:-/root}"
}

# As root, another user's environment (sudo -E, a sudo that keeps HOME)
# places nothing: HOME, XDG_CACHE_HOME, XDG_STATE_HOME, XDG_CONFIG_HOME,
# XDG_DATA_HOME and TMPDIR that name a directory another user could change
# are ignored, each said; HOME becomes root's own. The helper gets the same
# environment (and applies the same rule to itself).
onramp_own_environment() {
    onramp_oe_id=id
    for onramp_oe_p in /usr/bin/id /bin/id; do
        if [ -x "$onramp_oe_p" ]; then
            onramp_oe_id=$onramp_oe_p
            break
        fi
    done
    [ "$("$onramp_oe_id" -u)" = 0 ] || return 0
    # PATH first: the checks below run ls and awk, from the system's dirs.
    onramp_oe_path=${PATH:-}
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    onramp_oe_keep=
    onramp_oe_drop=
    onramp_oe_rest=$onramp_oe_path:
    while [ -n "$onramp_oe_rest" ]; do
        onramp_oe_d=${onramp_oe_rest%%:*}
        onramp_oe_rest=${onramp_oe_rest#*:}
        [ -n "$onramp_oe_d" ] || continue
        if [ -z "$(onramp_untrusted "$onramp_oe_d")" ]; then
            onramp_oe_keep=${onramp_oe_keep:+$onramp_oe_keep:}$onramp_oe_d
        else
            onramp_oe_drop=${onramp_oe_drop:+$onramp_oe_drop, }$onramp_oe_d
        fi
    done
    [ -z "$onramp_oe_keep" ] || PATH=$onramp_oe_keep
    export PATH
    [ -z "$onramp_oe_drop" ] ||
        onramp_warn "as root, leaving out of PATH what another user could change: $(onramp_visible "$onramp_oe_drop")"
    for onramp_oe_var in HOME XDG_CACHE_HOME XDG_STATE_HOME XDG_CONFIG_HOME XDG_DATA_HOME XDG_BIN_HOME XDG_RUNTIME_DIR TMPDIR; do
        case $onramp_oe_var in
        HOME) onramp_oe_val=${HOME:-} ;;
        XDG_CACHE_HOME) onramp_oe_val=${XDG_CACHE_HOME:-} ;;
        XDG_STATE_HOME) onramp_oe_val=${XDG_STATE_HOME:-} ;;
        XDG_CONFIG_HOME) onramp_oe_val=${XDG_CONFIG_HOME:-} ;;
        XDG_DATA_HOME) onramp_oe_val=${XDG_DATA_HOME:-} ;;
        XDG_BIN_HOME) onramp_oe_val=${XDG_BIN_HOME:-} ;;
        XDG_RUNTIME_DIR) onramp_oe_val=${XDG_RUNTIME_DIR:-} ;;
        *) onramp_oe_val=${TMPDIR:-} ;;
        esac
        [ -n "$onramp_oe_val" ] || continue
        onramp_oe_last=private
        [ "$onramp_oe_var" != TMPDIR ] || onramp_oe_last=shared
        onramp_oe_why=$(onramp_untrusted "$onramp_oe_val" "$onramp_oe_last")
        [ -n "$onramp_oe_why" ] || continue
        case $onramp_oe_var in
        HOME)
            HOME=$(onramp_root_home)
            export HOME
            onramp_warn "as root, ignoring HOME=$(onramp_visible "$onramp_oe_val") ($(onramp_visible "$onramp_oe_why")): another user's environment (sudo -E?); using root's home $HOME"
            ;;
        XDG_CACHE_HOME) unset XDG_CACHE_HOME ;;
        XDG_STATE_HOME) unset XDG_STATE_HOME ;;
        XDG_CONFIG_HOME) unset XDG_CONFIG_HOME ;;
        XDG_DATA_HOME) unset XDG_DATA_HOME ;;
        XDG_BIN_HOME) unset XDG_BIN_HOME ;;
        XDG_RUNTIME_DIR) unset XDG_RUNTIME_DIR ;;
        *) unset TMPDIR ;;
        esac
        [ "$onramp_oe_var" = HOME ] ||
            onramp_warn "as root, ignoring $onramp_oe_var=$(onramp_visible "$onramp_oe_val") ($(onramp_visible "$onramp_oe_why")): another user's environment (sudo -E?); onramp uses root's own directories"
    done
}

# onramp_visible TEXT: TEXT with control characters shown as '?', so a
# value from the environment cannot drive the terminal.
onramp_visible() {
    printf '%s' "$1" | tr '\000-\037\177' '?'
}

# onramp_private_dir DIR: the directory the helper is staged in must be ours
# and not writable by others (as root: it and every directory above it are
# root's, see onramp_untrusted), or another user could swap the verified
# helper before it runs.
onramp_private_dir() {
    if [ "$(id -u)" = 0 ]; then
        onramp_pd_why=$(onramp_untrusted "$1")
        [ -z "$onramp_pd_why" ] ||
            onramp_die "$EX_UNSAFE" "refusing $1 for the helper: $onramp_pd_why; as root the helper runs only from a directory only root can change: run sudo without -E, or set XDG_CACHE_HOME to such a directory"
        return 0
    fi
    # shellcheck disable=SC2012 # ls -ldn is the portable way to read owner and mode
    onramp_pd=$(ls -ldn "$1" 2>/dev/null) || onramp_die "$EX_HELPER" "cannot read $1"
    onramp_pd_mode=${onramp_pd%% *}
    onramp_pd_uid=$(printf '%s\n' "$onramp_pd" | awk '{print $3}')
    onramp_pd_me=$(id -u)
    if [ "$onramp_pd_uid" != "$onramp_pd_me" ]; then
        onramp_die "$EX_UNSAFE" "$1 belongs to uid $onramp_pd_uid, not to you (uid $onramp_pd_me): another user could replace the helper there; set XDG_CACHE_HOME to a directory of your own"
    fi
    case $onramp_pd_me:$onramp_pd_mode in
    0:?????w???* | *:????????w?*)
        onramp_die "$EX_UNSAFE" "$1 is writable by others (mode $onramp_pd_mode): another user could replace the helper there; chmod go-w it or set XDG_CACHE_HOME to a private directory"
        ;;
    esac
}

# onramp_verify FILE SHA: 0 when FILE's sha256 is SHA.
onramp_verify() {
    [ -n "$2" ] && [ "$(onramp_sha256 "$1")" = "$2" ]
}

# onramp_fetch URL FILE: https only, TLS 1.2+, fail on HTTP errors; with
# --ca-file, that CA is trusted as well.
onramp_fetch() {
    if onramp_has curl; then
        curl --proto '=https' --tlsv1.2 -fsSL --retry 3 \
            ${onramp_ca_file:+--cacert "$onramp_ca_file"} -o "$2" "$1" </dev/null
    elif onramp_has wget; then
        wget --https-only --secure-protocol=TLSv1_2 -q \
            ${onramp_ca_file:+--ca-certificate="$onramp_ca_file"} -O "$2" "$1" </dev/null
    else
        onramp_die "$EX_HELPER" "cannot download the helper: neither curl nor wget is installed"
    fi
}

# Does the binary run? A noexec mount is the usual reason it does not.
onramp_probe_helper() {
    "$1" --version >/dev/null 2>&1 </dev/null
}

onramp_helper_unusable() {
    onramp_die "$EX_HELPER" "the helper $1 exists but does not run here (is its filesystem mounted noexec?); set XDG_CACHE_HOME to a directory on a filesystem that allows programs to run"
}

# onramp_install_helper SRC SHA: copy SRC into the cache, verified, atomically.
onramp_install_helper() {
    onramp_ih_tmp=$(mktemp "$onramp_bin_dir/.onramp-tmp-XXXXXX")
    cp "$1" "$onramp_ih_tmp"
    if ! onramp_verify "$onramp_ih_tmp" "$2"; then
        rm -f "$onramp_ih_tmp"
        onramp_die "$EX_INTEGRITY" "the helper from $1 does not match the sha256 pinned in this installer; refusing it"
    fi
    chmod 755 "$onramp_ih_tmp"
    mv -f "$onramp_ih_tmp" "$onramp_helper_cached"
}

onramp_build_helper() {
    onramp_bh_triple=$(onramp_rust_triple "$onramp_target") ||
        onramp_die "$EX_HELPER" "no Rust target known for $onramp_target"
    onramp_say "building the helper from source (cargo build --release, static) ..."
    # tools/build-helper.sh picks the toolchain: rustup's, else Debian's
    # cargo-web (installed first as root), else it names what to install.
    onramp_helper=$(sh "$onramp_src_dir/tools/build-helper.sh" "$onramp_bh_triple") ||
        onramp_die "$EX_HELPER" "building the helper failed (see cargo's output above)"
}

# Sets onramp_helper to a verified, runnable helper or exits.
onramp_acquire_helper() {
    if [ -n "${ONRAMP_HELPER:-}" ]; then
        if [ ! -f "$ONRAMP_HELPER" ] || [ ! -x "$ONRAMP_HELPER" ]; then
            onramp_die "$EX_HELPER" "ONRAMP_HELPER=$ONRAMP_HELPER is not an executable file"
        fi
        if [ "$(id -u)" = 0 ]; then
            # As root, a helper another user could replace is never run.
            onramp_oh_why=$(onramp_untrusted "$(onramp_abs "${ONRAMP_HELPER%/*}")")
            [ -n "$onramp_oh_why" ] || onramp_oh_why=$(onramp_entry_why "$ONRAMP_HELPER" private)
            [ -n "$onramp_oh_why" ] || [ ! -h "$ONRAMP_HELPER" ] || onramp_oh_why="it is a symbolic link"
            case $ONRAMP_HELPER in */*) ;; *) onramp_oh_why="it is not a path" ;; esac
            [ -z "$onramp_oh_why" ] ||
                onramp_die "$EX_UNSAFE" "refusing ONRAMP_HELPER=$ONRAMP_HELPER: $onramp_oh_why; as root, point it at a file only root can change"
        fi
        onramp_probe_helper "$ONRAMP_HELPER" || onramp_helper_unusable "$ONRAMP_HELPER"
        onramp_helper=$ONRAMP_HELPER
        return 0
    fi
    onramp_bin_dir=$(onramp_cache_home)/bin
    onramp_helper_name=onramp-$(onramp_kit_version)-$onramp_target
    onramp_helper_cached=$onramp_bin_dir/$onramp_helper_name
    onramp_pin_sha=$(onramp_pin "$onramp_target")
    if [ -n "$onramp_pin_sha" ]; then
        onramp_pick_sha256
        # The cached helper is trusted only in a directory no one else can
        # change (checked before the hash, every time), so the file that
        # matched the pin is the file that runs.
        if [ -f "$onramp_helper_cached" ]; then
            onramp_private_dir "${onramp_bin_dir%/bin}"
            onramp_private_dir "$onramp_bin_dir"
        fi
        if [ -f "$onramp_helper_cached" ] && onramp_verify "$onramp_helper_cached" "$onramp_pin_sha"; then
            onramp_probe_helper "$onramp_helper_cached" || onramp_helper_unusable "$onramp_helper_cached"
            onramp_helper=$onramp_helper_cached
            return 0
        fi
        onramp_mkdir_noted "${onramp_bin_dir%/bin}" "$onramp_bin_dir"
        case $onramp_from in
        *.tar.zst)
            # A bundle archive: its helper, when zstd and tar are here to
            # take it out (the pin is checked all the same).
            if onramp_has zstd && onramp_has tar &&
                zstd -dc "$onramp_from" 2>/dev/null | tar -xOf - "$onramp_helper_name" 2>/dev/null |
                head -c "$onramp_helper_max" >"$onramp_tmp/$onramp_helper_name" &&
                [ -s "$onramp_tmp/$onramp_helper_name" ]; then
                onramp_install_helper "$onramp_tmp/$onramp_helper_name" "$onramp_pin_sha"
                onramp_probe_helper "$onramp_helper_cached" || onramp_helper_unusable "$onramp_helper_cached"
                onramp_helper=$onramp_helper_cached
                return 0
            fi
            onramp_die "$EX_HELPER" "cannot take the helper out of $onramp_from (zstd and tar are needed); unpack it first (mkdir D && zstd -dc $onramp_from | tar -xf - -C D) and pass --from D"
            ;;
        esac
        if [ -n "$onramp_from" ]; then
            for onramp_cand in "$onramp_from/$onramp_helper_name" "$onramp_from/bin/$onramp_helper_name"; do
                if [ -f "$onramp_cand" ]; then
                    onramp_install_helper "$onramp_cand" "$onramp_pin_sha"
                    onramp_probe_helper "$onramp_helper_cached" || onramp_helper_unusable "$onramp_helper_cached"
                    onramp_helper=$onramp_helper_cached
                    return 0
                fi
            done
        fi
        # The helper comes from beside the manifest named by URL (a mirror
        # of a release), else from the release this install.sh belongs to.
        if [ -z "${ONRAMP_DIST_URL:-}" ]; then
            ONRAMP_DIST_URL=$onramp_rel_base
            [ -z "$onramp_manifest_url" ] || ONRAMP_DIST_URL=${onramp_manifest_url%/*}
        fi
        if [ -n "${ONRAMP_DIST_URL:-}" ] && [ "$onramp_offline" != 1 ]; then
            case $ONRAMP_DIST_URL in
            https://*) ;;
            *) onramp_die "$EX_HELPER" "ONRAMP_DIST_URL must be an https:// URL (got $ONRAMP_DIST_URL)" ;;
            esac
            onramp_dl=$onramp_tmp/$onramp_helper_name
            onramp_say "downloading the helper from $ONRAMP_DIST_URL/$onramp_helper_name"
            onramp_fetch "$ONRAMP_DIST_URL/$onramp_helper_name" "$onramp_dl" ||
                onramp_die "$EX_NETWORK" "cannot download the helper from $ONRAMP_DIST_URL/$onramp_helper_name"
            onramp_install_helper "$onramp_dl" "$onramp_pin_sha"
            onramp_probe_helper "$onramp_helper_cached" || onramp_helper_unusable "$onramp_helper_cached"
            onramp_helper=$onramp_helper_cached
            return 0
        fi
    fi
    if [ -n "$onramp_src_dir" ] && [ -f "$onramp_src_dir/helper/Cargo.toml" ] && onramp_has cargo; then
        onramp_build_helper
        onramp_probe_helper "$onramp_helper" || onramp_helper_unusable "$onramp_helper"
        return 0
    fi
    if [ -z "$onramp_pin_sha" ]; then
        onramp_die "$EX_HELPER" "no helper: this install.sh has no pinned helper for $onramp_target and is not in a source checkout with cargo; set ONRAMP_HELPER=/path/to/onramp or use a release install.sh"
    fi
    onramp_die "$EX_HELPER" "no helper for $onramp_target: not cached, not in --from DIR, and ONRAMP_DIST_URL is not set (or --offline); pass --from DIR with $onramp_helper_name in it"
}
