#!/bin/sh
# Prepares DIR to run the Windows helper EXE under Debian's wine 8.0 (test
# scaffolding, never shipped):
#   DIR/onramp.exe              a copy of EXE
#   DIR/bcryptprimitives.dll    ProcessPrng, which current Rust std imports
#                               and wine 8.0 lacks (bcryptprimitives.c)
#   DIR/owner.exe               stands in for PowerShell's $PID (owner.c)
#   DIR/prefix/                 the wine prefix (C: is DIR/prefix/drive_c)
#   DIR/wine PROG.exe ARGS...   runs a Windows program in that prefix
#   DIR/onramp-wine ARGS...     runs the helper: what the suites take
#   tests/windows/wine-setup.sh DIR EXE
set -eu

die() {
    printf 'wine-setup.sh: %s\n' "$1" >&2
    exit 2
}

main() {
    [ $# = 2 ] || die "usage: wine-setup.sh DIR EXE"
    dir=$1
    exe=$2
    here=$(cd "$(dirname "$0")" && pwd)
    [ -x /usr/lib/wine/wine64 ] || die "needs wine: apt-get install wine wine64"
    command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || die "needs mingw-w64: apt-get install mingw-w64"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    cp "$exe" "$dir/onramp.exe"
    x86_64-w64-mingw32-gcc -shared -O2 -o "$dir/bcryptprimitives.dll" "$here/bcryptprimitives.c" -lbcrypt
    x86_64-w64-mingw32-gcc -O2 -o "$dir/owner.exe" "$here/owner.c"
    cat >"$dir/wine" <<EOF
#!/bin/sh
# Runs a Windows program in $dir/prefix; the helper's stand-in DLL is
# preferred to wine's own (n,b), Mono and Gecko are never installed.
export WINEPREFIX='$dir/prefix' WINEDEBUG=-all WINEDLLOVERRIDES='bcryptprimitives=n,b;mscoree=;mshtml='
exec /usr/lib/wine/wine64 "\$@"
EOF
    printf '#!/bin/sh\nexec %s/wine %s/onramp.exe "$@"\n' "$dir" "$dir" >"$dir/onramp-wine"
    chmod 755 "$dir/wine" "$dir/onramp-wine"
    # The first start makes the prefix (about 10 s); the helper must run.
    "$dir/onramp-wine" --version >/dev/null 2>&1 || true
    out=$("$dir/onramp-wine" --version 2>&1) || die "the Windows helper does not start under wine: $out"
    printf '%s\n' "$dir/onramp-wine"
}

main "$@"
