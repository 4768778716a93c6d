# shellcheck shell=sh
# platform.sh: which OS and CPU this is, as onramp's target names
# (linux-x86_64, macos-aarch64, ...). Each function answers one question.

onramp_detect_os() {
    case $(uname -s) in
    Linux) printf 'linux' ;;
    Darwin) printf 'macos' ;;
    MINGW* | MSYS* | CYGWIN* | Windows_NT)
        onramp_die "$EX_PLATFORM" "on Windows, use install.ps1 (irm URL | iex) instead of install.sh"
        ;;
    *) onramp_die "$EX_PLATFORM" "unsupported operating system '$(uname -s)' (supported: Linux, macOS)" ;;
    esac
}

# A 64-bit kernel can run a 32-bit userland; the userland decides.
onramp_userland_bits() {
    if onramp_has getconf; then
        getconf LONG_BIT 2>/dev/null || printf '64'
    else
        printf '64'
    fi
}

# macOS reports x86_64 under Rosetta; the native arm64 build is better.
onramp_is_rosetta() {
    [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || printf 0)" = 1 ]
}

onramp_detect_arch() {
    onramp_arch_os=$1
    onramp_arch_m=$(uname -m)
    case $onramp_arch_m in
    x86_64 | amd64) onramp_arch=x86_64 ;;
    aarch64 | arm64) onramp_arch=aarch64 ;;
    armv7l | armv7 | armv8l | armhf) onramp_arch=armv7 ;;
    i386 | i486 | i586 | i686 | x86) onramp_arch=i686 ;;
    *) onramp_die "$EX_PLATFORM" "unsupported CPU architecture '$onramp_arch_m' (supported: x86_64, aarch64, armv7, i686)" ;;
    esac
    if [ "$onramp_arch_os" = linux ] && [ "$(onramp_userland_bits)" = 32 ]; then
        case $onramp_arch in
        x86_64) onramp_arch=i686 ;;
        aarch64) onramp_arch=armv7 ;;
        esac
    fi
    if [ "$onramp_arch_os" = macos ] && [ "$onramp_arch" = x86_64 ] && onramp_is_rosetta; then
        onramp_say "running under Rosetta 2; using the native aarch64 build"
        onramp_arch=aarch64
    fi
    case $onramp_arch_os-$onramp_arch in
    macos-armv7 | macos-i686)
        onramp_die "$EX_PLATFORM" "unsupported platform $onramp_arch_os-$onramp_arch"
        ;;
    esac
    printf '%s' "$onramp_arch"
}

onramp_detect_target() {
    onramp_target_os=$(onramp_detect_os)
    onramp_target_arch=$(onramp_detect_arch "$onramp_target_os")
    printf '%s-%s\n' "$onramp_target_os" "$onramp_target_arch"
}

# The Rust target triple the helper is built for on TARGET.
onramp_rust_triple() {
    case $1 in
    linux-x86_64) printf 'x86_64-unknown-linux-gnu' ;;
    linux-aarch64) printf 'aarch64-unknown-linux-gnu' ;;
    linux-armv7) printf 'armv7-unknown-linux-gnueabihf' ;;
    linux-i686) printf 'i686-unknown-linux-gnu' ;;
    macos-x86_64) printf 'x86_64-apple-darwin' ;;
    macos-aarch64) printf 'aarch64-apple-darwin' ;;
    *) return 1 ;;
    esac
}
