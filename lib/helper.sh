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
    case $1 in
    *'"'* | *\\*) ;;
    *) [ -z "$onramp_mn_list" ] || printf '[%s]' "$onramp_mn_list" >"$1/created-dirs.json" ;;
    esac
}

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

# onramp_private_dir DIR: the directory the helper is staged in must be ours
# and not writable by others (as root, not by the group either), or another
# user could swap the verified helper before it runs.
onramp_private_dir() {
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
    if ! (cd "$onramp_src_dir" &&
        RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
            cargo build --quiet --release --locked --target "$onramp_bh_triple" -p onramp </dev/null >&2); then
        onramp_die "$EX_HELPER" "building the helper failed (see cargo's output above)"
    fi
    onramp_helper="$onramp_src_dir/target/$onramp_bh_triple/release/onramp"
}

# Sets onramp_helper to a verified, runnable helper or exits.
onramp_acquire_helper() {
    if [ -n "${ONRAMP_HELPER:-}" ]; then
        if [ ! -f "$ONRAMP_HELPER" ] || [ ! -x "$ONRAMP_HELPER" ]; then
            onramp_die "$EX_HELPER" "ONRAMP_HELPER=$ONRAMP_HELPER is not an executable file"
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
        if [ -f "$onramp_helper_cached" ] && onramp_verify "$onramp_helper_cached" "$onramp_pin_sha"; then
            onramp_probe_helper "$onramp_helper_cached" || onramp_helper_unusable "$onramp_helper_cached"
            onramp_helper=$onramp_helper_cached
            return 0
        fi
        onramp_mkdir_noted "${onramp_bin_dir%/bin}" "$onramp_bin_dir"
        onramp_private_dir "${onramp_bin_dir%/bin}"
        onramp_private_dir "$onramp_bin_dir"
        case $onramp_from in
        *.tar.zst)
            # A bundle archive: its helper, when zstd and tar are here to
            # take it out (the pin is checked all the same).
            if onramp_has zstd && onramp_has tar &&
                zstd -dc "$onramp_from" 2>/dev/null | tar -xOf - "$onramp_helper_name" >"$onramp_tmp/$onramp_helper_name" 2>/dev/null &&
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
