# onramp installer for Windows: installs a local AI stack described by a
# manifest, resumably. Windows PowerShell 5.1 and PowerShell 7.
#
#   irm URL/install.ps1 | iex
#   & ([scriptblock]::Create((irm URL/install.ps1))) -Prefix 'D:\AI stack' -Yes
#   powershell -NoProfile -ExecutionPolicy Bypass -File install.ps1 -Manifest stack.json
#
# None of these changes the machine's execution policy: text piped to iex
# or made into a script block is not a script file, and -ExecutionPolicy
# Bypass applies to that one process only.
#
# Every line below is inside a function but the param block and the last
# line, which calls Invoke-OnrampEntry with an end-of-script marker: a
# truncated download defines functions and runs nothing. Under iex this
# never calls `exit` (that would close the user's window): it sets
# $LASTEXITCODE and returns. Run as a file, it exits with the code.
# The options, environment variables, phases, exit codes and messages are
# install.sh's; tests/windows.bats checks that they agree.

param(
    [string]$Manifest,
    [string]$Prefix,
    [switch]$Yes,
    [switch]$Fresh,
    [Alias('Profile')]
    [string]$StackProfile,
    [string]$Gpu,
    [switch]$NoStart,
    [switch]$ModifyPath,
    [string]$BinDir,
    [switch]$DryRun,
    [switch]$RollbackOnFailure,
    [switch]$Uninstall,
    [switch]$KeepModels,
    [switch]$PurgeCache,
    [switch]$Check,
    [switch]$Deep,
    [switch]$Repair,
    [switch]$Offline,
    [string]$From,
    [string[]]$TrustKey,
    [switch]$AllowDowngrade,
    [switch]$AllowExpired,
    [switch]$AllowHttp,
    [switch]$AllowSkipChecksums,
    [switch]$AllowUnpinnedCatalog,
    [string]$BuildUser,
    [string]$Connections,
    [string]$Mirror,
    [string]$CaFile,
    [string]$Events,
    [string]$EventsFormat,
    [string]$SummaryJson,
    [string]$ProgressListen,
    [string]$ProgressUrlFile,
    [string]$ProgressLinger,
    [string]$ProgressAllowOrigin,
    [string]$StateTtl,
    [switch]$PrintTarget,
    [switch]$Version,
    [switch]$Help
)

function Get-OnrampKitVersion {
    '0.1.0'
}

# The sha256 of the released helper for each target. A source checkout has
# none (it builds the helper); `onramp release` writes them.
function Get-OnrampPin {
    param([string]$Target)
    # >>> pins
    switch ($Target) {
        default { '' }
    }
    # <<< pins
}

# The release this install.ps1 belongs to: its base URL, stack, manifest
# and the minisign keys it trusts. Empty in a checkout; `onramp release`
# fills them in.
function Get-OnrampRelease {
    # >>> release
    @{ Base = ''; Stack = ''; Manifest = ''; TrustKeys = '' }
    # <<< release
}

# The exit code table, word for word the helper's (`onramp exit-codes`),
# lib/exitcodes.sh's and README's.
function Get-OnrampExitCodes {
    [ordered]@{
        internal = 1
        usage = 2
        manifest = 3
        disk = 4
        platform = 5
        network = 6
        integrity = 7
        lock_held = 8
        partial = 9
        needs_confirmation = 10
        helper = 11
        state = 12
        unsafe = 13
        killed = 14
        not_ready = 15
        auth = 16
        interrupted = 130
    }
}

function Get-OnrampCode {
    param([string]$Name)
    (Get-OnrampExitCodes)[$Name]
}

# The fixed phase sequence, one helper call each: the helper's, the state
# file's and install.sh's.
function Get-OnrampPhases {
    @('preflight', 'detect', 'plan', 'server', 'models', 'workers', 'extras', 'configure', 'validate')
}

function Show-OnrampUsage {
    $text = @'
Usage: install.ps1 [-Manifest FILE|URL] [-Prefix DIR] [options]
       irm URL/install.ps1 | iex
       & ([scriptblock]::Create((irm URL/install.ps1))) -Prefix DIR -Yes

Installs the stack a manifest describes (a released install.ps1: its own
stack, with no arguments). Safe to interrupt: run it again and it resumes;
run it again later and it upgrades to the newest release.

Options (each also an environment variable, shown after it):
  -Manifest FILE|URL    the stack's manifest, a file or an https URL   ONRAMP_MANIFEST
  -Prefix DIR           install here (default: the manifest's)         ONRAMP_PREFIX
  -Yes                  resume a saved install without asking          ONRAMP_YES=1
  -Fresh                start over (verified downloads are reused)     ONRAMP_FRESH=1
  -Profile NAME         install this profile of the stack              ONRAMP_PROFILE
  -Gpu BACKEND          pick variants for cuda, rocm, metal, intel     ONRAMP_GPU
                        or cpu instead of the GPU detected
  -NoStart              do not start the stack's services              ONRAMP_NO_START=1
  -ModifyPath           put the stack's commands' directory on PATH    ONRAMP_MODIFY_PATH=1
  -BinDir DIR           link the stack's commands here                 ONRAMP_BIN_DIR
  -DryRun               print the plan and change nothing              ONRAMP_DRY_RUN=1
  -RollbackOnFailure    if the install fails, undo what it did         ONRAMP_ROLLBACK_ON_FAILURE=1
                        (a failed install otherwise asks, when interactive)
  -Uninstall            undo the install in -Prefix: its services,     ONRAMP_UNINSTALL=1
                        files and state (a config file you changed is kept)
  -KeepModels           with -Uninstall: keep the model files
  -PurgeCache           with -Uninstall: also drop the cache entries no
                        other install uses
  -Check                say whether the install is ready (files,       ONRAMP_CHECK=1
                        services, health checks); exit 15 when not
  -Deep                 with -Check: re-hash every file
  -Repair               with -Check: put back what is missing or
                        changed, from the cache
  -Offline              make no network connection                     ONRAMP_OFFLINE=1
  -From BUNDLE|DIR      a bundle (onramp bundle create; no network)    ONRAMP_FROM
                        or a pre-seeded cache (files named by sha256)
  -TrustKey KEY         trust manifests signed by this minisign key    ONRAMP_TRUST_KEY
                        (RW... or a .pub file; several: -TrustKey A,B)
  -AllowDowngrade       install a release older than one installed     ONRAMP_ALLOW_DOWNGRADE=1
  -AllowExpired         install a manifest past its "expires"          ONRAMP_ALLOW_EXPIRED=1
  -AllowHttp            accept plain http:// artifact URLs             ONRAMP_ALLOW_HTTP=1
  -AllowSkipChecksums   build sources whose sums are SKIP              ONRAMP_ALLOW_SKIP_CHECKSUMS=1
  -AllowUnpinnedCatalog build an unpinned catalog PKGBUILD             ONRAMP_ALLOW_UNPINNED_CATALOG=1
  -BuildUser NAME       build recipes as this account                  ONRAMP_BUILD_USER
  -Connections N        connections per download (default 8)           ONRAMP_CONNECTIONS
  -Mirror BASE          try BASE/<file name> before each artifact      ONRAMP_MIRROR
  -CaFile FILE          the helper trusts this PEM CA too              ONRAMP_CA_FILE
  -Events FILE          write progress events to FILE (NDJSON)         ONRAMP_EVENTS
  -EventsFormat F       ndjson (default) or sse                        ONRAMP_EVENTS_FORMAT
  -SummaryJson FILE     write the final summary as JSON                ONRAMP_SUMMARY_JSON
  -ProgressListen ADDR  serve live progress on 127.0.0.1:PORT (0: a    ONRAMP_PROGRESS_LISTEN
                        free port): /events (SSE), /status (JSON), /
                        (a page); the URL, with its token, is printed
  -ProgressUrlFile FILE write that URL here (default: beside the      ONRAMP_PROGRESS_URL_FILE
                        install's state, progress.url)
  -ProgressLinger SECS  keep serving this long after the end (30)     ONRAMP_PROGRESS_LINGER
  -ProgressAllowOrigin ORIGIN  let pages of ORIGIN read it (CORS)     ONRAMP_PROGRESS_ALLOW_ORIGIN
  -StateTtl HOURS       do not resume a saved install older than this  ONRAMP_STATE_TTL_HOURS
  -PrintTarget          print this machine's target and return
  -Version              print the installer's version and return
  -Help                 this help

Also: ONRAMP_HELPER, ONRAMP_DIST_URL, ONRAMP_STATE_DIR, ONRAMP_CACHE_DIR,
HF_TOKEN, HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, ONRAMP_REGISTRY_AUTH,
DOCKER_CONFIG, LOCALAPPDATA.
Exit codes: 0 done, 2 usage, 3 manifest, 4 disk, 5 platform, 6 network,
7 integrity (also a refused signature, rollback or expiry), 8 another
install running, 9 partial, 10 needs -Yes or -Fresh, 11 helper, 12 state,
13 unsafe directory, 14 helper killed, 15 not ready (-Check),
16 auth (a gated model or private registry), 130 interrupted (see README.md). Under iex the code is left in
$LASTEXITCODE.
'@
    [Console]::Out.WriteLine($text)
}

# How the installer talks: one function to say, one to fail. Messages go to
# stderr; stdout stays free for -PrintTarget.
function Write-OnrampSay {
    param([string]$Message)
    [Console]::Error.WriteLine('onramp: ' + $Message)
}

function Write-OnrampWarn {
    param([string]$Message)
    [Console]::Error.WriteLine('onramp: warning: ' + $Message)
}

# Stop-Onramp NAME MESSAGE: stop with a documented exit code. Never `exit`:
# the error travels up to Invoke-OnrampEntry, which says it and sets
# $LASTEXITCODE. An empty MESSAGE stops silently (the helper has said why).
function Stop-Onramp {
    param([string]$Name, [string]$Message)
    $code = Get-OnrampCode $Name
    if ($null -eq $code) {
        $code = 1
    }
    Stop-OnrampWith $code $Message
}

function Stop-OnrampWith {
    param([int]$Code, [string]$Message)
    $ex = New-Object System.Exception ('onramp: error: ' + $Message)
    $ex.Data['OnrampExit'] = $Code
    $ex.Data['OnrampSaid'] = [string]::IsNullOrEmpty($Message)
    throw $ex
}

# Test-OnrampYes NAME: what environment variable NAME says, as install.sh
# reads it: 1/true/yes/y/on, or empty/0/false/no/n/off; anything else is a
# usage error.
function Test-OnrampYes {
    param([string]$Name)
    $v = [Environment]::GetEnvironmentVariable($Name)
    if ([string]::IsNullOrEmpty($v)) {
        return $false
    }
    if (@('1', 'true', 'yes', 'y', 'on') -ccontains $v) {
        return $true
    }
    if (@('0', 'false', 'no', 'n', 'off') -ccontains $v) {
        return $false
    }
    Stop-Onramp usage ($Name + '=' + $v + ': use 1 or 0')
}

function Get-OnrampEnv {
    param([string]$Name)
    $v = [Environment]::GetEnvironmentVariable($Name)
    if ($null -eq $v) {
        return ''
    }
    $v
}

# A flag's value must not be empty or look like a flag.
function Assert-OnrampValue {
    param([string]$Flag, [string]$Value)
    if ($Value.StartsWith('-')) {
        Stop-Onramp usage ('-' + $Flag + ' needs a value; see -Help')
    }
}

# The options: each starts from its environment variable, and a parameter
# given on the command line wins (install.sh's onramp_defaults and
# onramp_parse_args). $Given holds the parameters as bound.
function Read-OnrampOptions {
    param([hashtable]$Given)
    $o = @{}
    $strings = [ordered]@{
        Manifest = 'ONRAMP_MANIFEST'
        Prefix = 'ONRAMP_PREFIX'
        Profile = 'ONRAMP_PROFILE'
        Gpu = 'ONRAMP_GPU'
        BinDir = 'ONRAMP_BIN_DIR'
        From = 'ONRAMP_FROM'
        BuildUser = 'ONRAMP_BUILD_USER'
        Connections = 'ONRAMP_CONNECTIONS'
        Mirror = 'ONRAMP_MIRROR'
        CaFile = 'ONRAMP_CA_FILE'
        Events = 'ONRAMP_EVENTS'
        EventsFormat = 'ONRAMP_EVENTS_FORMAT'
        SummaryJson = 'ONRAMP_SUMMARY_JSON'
        ProgressListen = 'ONRAMP_PROGRESS_LISTEN'
        ProgressUrlFile = 'ONRAMP_PROGRESS_URL_FILE'
        ProgressLinger = 'ONRAMP_PROGRESS_LINGER'
        ProgressAllowOrigin = 'ONRAMP_PROGRESS_ALLOW_ORIGIN'
        StateTtl = 'ONRAMP_STATE_TTL_HOURS'
    }
    foreach ($k in $strings.Keys) {
        $v = [string]$Given[$k]
        if ([string]::IsNullOrEmpty($v)) {
            $v = Get-OnrampEnv $strings[$k]
        } else {
            Assert-OnrampValue $k $v
        }
        $o[$k] = $v
    }
    $switches = [ordered]@{
        Yes = 'ONRAMP_YES'
        Fresh = 'ONRAMP_FRESH'
        NoStart = 'ONRAMP_NO_START'
        ModifyPath = 'ONRAMP_MODIFY_PATH'
        DryRun = 'ONRAMP_DRY_RUN'
        RollbackOnFailure = 'ONRAMP_ROLLBACK_ON_FAILURE'
        Uninstall = 'ONRAMP_UNINSTALL'
        Check = 'ONRAMP_CHECK'
        Offline = 'ONRAMP_OFFLINE'
        AllowDowngrade = 'ONRAMP_ALLOW_DOWNGRADE'
        AllowExpired = 'ONRAMP_ALLOW_EXPIRED'
        AllowHttp = 'ONRAMP_ALLOW_HTTP'
        AllowSkipChecksums = 'ONRAMP_ALLOW_SKIP_CHECKSUMS'
        AllowUnpinnedCatalog = 'ONRAMP_ALLOW_UNPINNED_CATALOG'
    }
    foreach ($k in $switches.Keys) {
        $o[$k] = [bool]$Given[$k]
        if (-not $o[$k]) {
            $o[$k] = Test-OnrampYes $switches[$k]
        }
    }
    foreach ($k in @('KeepModels', 'PurgeCache', 'Deep', 'Repair', 'PrintTarget', 'Version', 'Help')) {
        $o[$k] = [bool]$Given[$k]
    }
    if ($o.Repair) {
        $o.Check = $true
    }
    $keys = @()
    $envKeys = Get-OnrampEnv 'ONRAMP_TRUST_KEY'
    if ($envKeys -ne '') {
        $keys += $envKeys
    }
    foreach ($k in @($Given['TrustKey'])) {
        if (-not [string]::IsNullOrEmpty($k)) {
            Assert-OnrampValue 'TrustKey' $k
            $keys += $k
        }
    }
    $o.TrustKey = $keys
    $o
}

# A path as the helper must see it: absolute, from PowerShell's current
# location (not .NET's current directory, which iex does not move).
function Get-OnrampAbsolute {
    param([string]$Path)
    $p = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($Path)
    # A trailing backslash before the closing quote Windows PowerShell
    # adds around a path with a space would escape that quote.
    if ($p.Length -gt 3) {
        $p = $p.TrimEnd('\')
    }
    $p
}

# The real OS architecture, not this process's: a 32-bit PowerShell on a
# 64-bit Windows, and an x64 PowerShell emulated on an ARM64 Windows, both
# report the wrong one in PROCESSOR_ARCHITECTURE. The machine-wide value in
# the registry is the native one (it is not redirected for emulated
# processes); PROCESSOR_ARCHITEW6432 is the next best.
function Get-OnrampNativeArch {
    $native = ''
    try {
        $key = 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager\Environment'
        $native = [string](Get-ItemProperty -LiteralPath $key -Name PROCESSOR_ARCHITECTURE -ErrorAction Stop).PROCESSOR_ARCHITECTURE
    } catch {
        $native = ''
    }
    if ($native -eq '') {
        $native = Get-OnrampEnv 'PROCESSOR_ARCHITEW6432'
    }
    if ($native -eq '') {
        $native = Get-OnrampEnv 'PROCESSOR_ARCHITECTURE'
    }
    $native
}

# Select-OnrampArch NATIVE PROCESS: the onramp architecture for the native
# architecture NATIVE, said when this process (PROCESS) is emulated.
function Select-OnrampArch {
    param([string]$Native, [string]$Process)
    switch ($Native.ToUpperInvariant()) {
        'AMD64' { $arch = 'x86_64' }
        'ARM64' { $arch = 'aarch64' }
        default {
            Stop-Onramp platform ("unsupported CPU architecture '" + $Native + "' (supported on Windows: x86_64, aarch64)")
        }
    }
    if ($arch -eq 'aarch64' -and $Process.ToUpperInvariant() -ne 'ARM64') {
        Write-OnrampSay ('running under ' + $Process + ' emulation on ARM64; using the native aarch64 build')
    }
    $arch
}

function Get-OnrampTarget {
    $isWin = $true
    if ($PSVersionTable.PSVersion.Major -ge 6) {
        $isWin = [System.Runtime.InteropServices.RuntimeInformation]::IsOSPlatform([System.Runtime.InteropServices.OSPlatform]::Windows)
    }
    if (-not $isWin) {
        Stop-Onramp platform 'install.ps1 is for Windows; on Linux and macOS, use install.sh (curl -fsSL URL/install.sh | sh)'
    }
    'windows-' + (Select-OnrampArch (Get-OnrampNativeArch) (Get-OnrampEnv 'PROCESSOR_ARCHITECTURE'))
}

# Is there a person to ask? Not with -NonInteractive, not in a service or
# a remoting session, not with input redirected (CI).
function Test-OnrampInteractive {
    if (-not [Environment]::UserInteractive) {
        return $false
    }
    foreach ($a in [Environment]::GetCommandLineArgs()) {
        if ($a -like '-NonI*') {
            return $false
        }
    }
    if ($Host.Name -eq 'ServerRemoteHost') {
        return $false
    }
    try {
        if ([Console]::IsInputRedirected) {
            return $false
        }
    } catch {
        return $true
    }
    $true
}

# Read-OnrampAnswer QUESTION DEFAULT: 'yes', 'no', or 'none' when there is
# no one to ask. Only an explicit yes is yes unless DEFAULT is 'yes'.
function Read-OnrampAnswer {
    param([string]$Question, [string]$Default)
    $answer = $null
    if (Test-OnrampInteractive) {
        $answer = Read-Host -Prompt $Question
    }
    if ($null -eq $answer) {
        return 'none'
    }
    $a = $answer.Trim().ToLowerInvariant()
    if ($a -eq 'y' -or $a -eq 'yes') {
        return 'yes'
    }
    if ($a -eq '' -and $Default -eq 'yes') {
        return 'yes'
    }
    'no'
}

# TLS 1.2 (and 1.3 where this .NET has it) is ORed into what Windows
# PowerShell 5.1 allows before any request: 5.1 may default to TLS 1.0.
function Enable-OnrampTls {
    $p = [Net.ServicePointManager]::SecurityProtocol
    $p = $p -bor [Net.SecurityProtocolType]::Tls12
    if ([Enum]::GetNames([Net.SecurityProtocolType]) -contains 'Tls13') {
        $p = $p -bor [Net.SecurityProtocolType]'Tls13'
    }
    [Net.ServicePointManager]::SecurityProtocol = $p
}

# Save-OnrampUrl URL FILE FAILED: download over https only; each redirect
# is followed by hand and must stay on https; a failure is said as
# "FAILED: why". Windows' own certificate store and proxy settings apply.
function Save-OnrampUrl {
    param([string]$Url, [string]$OutFile, [string]$Failed)
    $u = $Url
    for ($hop = 0; $hop -lt 10; $hop++) {
        if (-not $u.StartsWith('https://', [StringComparison]::OrdinalIgnoreCase)) {
            Stop-Onramp network ($Failed + ': refusing ' + $u + ' (only https:// URLs are followed)')
        }
        $req = [Net.HttpWebRequest]::Create($u)
        $req.AllowAutoRedirect = $false
        $req.Timeout = 30000
        $req.ReadWriteTimeout = 30000
        $req.UserAgent = 'onramp-installer/' + (Get-OnrampKitVersion)
        $resp = $null
        try {
            $resp = $req.GetResponse()
        } catch [Net.WebException] {
            $resp = $_.Exception.Response
            if ($null -eq $resp) {
                Stop-Onramp network ($Failed + ': ' + $_.Exception.Message)
            }
        }
        try {
            $status = [int]$resp.StatusCode
            if ($status -ge 300 -and $status -lt 400) {
                $loc = $resp.Headers['Location']
                if ([string]::IsNullOrEmpty($loc)) {
                    Stop-Onramp network ($Failed + ': HTTP ' + $status + ' from ' + $u + ' without a Location')
                }
                $u = (New-Object Uri ((New-Object Uri $u), $loc)).AbsoluteUri
                continue
            }
            if ($status -ne 200) {
                Stop-Onramp network ($Failed + ': HTTP ' + $status + ' from ' + $u)
            }
            $in = $resp.GetResponseStream()
            $out = [IO.File]::Open($OutFile, [IO.FileMode]::CreateNew, [IO.FileAccess]::Write, [IO.FileShare]::None)
            try {
                $in.CopyTo($out)
            } finally {
                $out.Dispose()
                $in.Dispose()
            }
            return
        } finally {
            $resp.Close()
        }
    }
    Stop-Onramp network ($Failed + ': more than 10 redirects')
}

function Get-OnrampSha256 {
    param([string]$Path)
    (Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash.ToLowerInvariant()
}

# Where the helper is kept: %LOCALAPPDATA%\onramp\cache\bin, private to
# the user by Windows' default ACL.
function Get-OnrampCacheHome {
    $base = Get-OnrampEnv 'LOCALAPPDATA'
    if ($base -eq '') {
        Stop-Onramp helper 'LOCALAPPDATA is not set; set it so the helper has a place to live'
    }
    Join-Path $base 'onramp\cache'
}

# Does the helper run? Application control (AppLocker, WDAC, Smart App
# Control) or antivirus are the usual reasons it does not.
function Test-OnrampHelperRuns {
    param([string]$Path)
    try {
        & $Path --version | Out-Null
        return ($LASTEXITCODE -eq 0)
    } catch {
        return $false
    }
}

function Assert-OnrampHelperRuns {
    param([string]$Path)
    if (-not (Test-OnrampHelperRuns $Path)) {
        Stop-Onramp helper ('the helper ' + $Path + ' exists but does not run here (blocked by application control or antivirus?); allow it, or set ONRAMP_HELPER to a copy that runs')
    }
}

# Install-OnrampHelperFile SOURCE SHA DEST: copy SOURCE beside DEST,
# check its sha256 there (the bytes that will run), then move it into
# place; on a mismatch nothing is left.
function Install-OnrampHelperFile {
    param([string]$Source, [string]$Sha, [string]$Dest)
    $tmp = Join-Path (Split-Path -Parent $Dest) ('.onramp-tmp-' + [guid]::NewGuid().ToString('N') + '.exe')
    Copy-Item -LiteralPath $Source -Destination $tmp
    if ((Get-OnrampSha256 $tmp) -ne $Sha) {
        Remove-Item -LiteralPath $tmp -Force
        Stop-Onramp integrity ('the helper from ' + $Source + ' does not match the sha256 pinned in this installer; refusing it')
    }
    Move-Item -LiteralPath $tmp -Destination $Dest -Force
}

# Use-OnrampVerified PATH SHA: PATH, when its bytes are the pinned ones
# now, just before it runs; else nothing.
function Use-OnrampVerified {
    param([string]$Path, [string]$Sha)
    if ((Test-Path -LiteralPath $Path -PathType Leaf) -and (Get-OnrampSha256 $Path) -eq $Sha) {
        Assert-OnrampHelperRuns $Path
        return $Path
    }
    $null
}

# The helper: in order, $ONRAMP_HELPER; the cached one whose sha256 is the
# pin; -From (a bundle or a directory); a download from ONRAMP_DIST_URL
# (default: beside a manifest given by URL, else the release's own base
# URL; https only, pinned sha256); a build from this source checkout.
function Get-OnrampHelper {
    param($S)
    $given = Get-OnrampEnv 'ONRAMP_HELPER'
    if ($given -ne '') {
        if (-not (Test-Path -LiteralPath $given -PathType Leaf)) {
            Stop-Onramp helper ('ONRAMP_HELPER=' + $given + ' is not an executable file')
        }
        Assert-OnrampHelperRuns $given
        return $given
    }
    $name = 'onramp-' + (Get-OnrampKitVersion) + '-' + $S.Target + '.exe'
    $pin = [string](Get-OnrampPin $S.Target)
    if ($pin -ne '') {
        $bin = Join-Path (Get-OnrampCacheHome) 'bin'
        $cached = Join-Path $bin $name
        $ok = Use-OnrampVerified $cached $pin
        if ($ok) {
            return $ok
        }
        New-Item -ItemType Directory -Force -Path $bin | Out-Null
        if ($S.From -like '*.tar.zst') {
            $out = Join-Path $S.Tmp $name
            $tar = Join-Path (Get-OnrampEnv 'SystemRoot') 'System32\tar.exe'
            if (Test-Path -LiteralPath $tar) {
                try {
                    & $tar -x -f $S.From -C $S.Tmp $name 2>$null
                } catch {
                    Write-OnrampWarn ('tar.exe: ' + $_.Exception.Message)
                }
            }
            if (-not (Test-Path -LiteralPath $out -PathType Leaf)) {
                Stop-Onramp helper ('cannot take the helper out of ' + $S.From + " (this Windows' tar.exe cannot read zstd); unpack it on another machine (mkdir D; zstd -dc BUNDLE | tar -xf - -C D) and pass -From D")
            }
            Install-OnrampHelperFile $out $pin $cached
            return (Use-OnrampVerified $cached $pin)
        }
        if ($S.From -ne '') {
            foreach ($cand in @((Join-Path $S.From $name), (Join-Path (Join-Path $S.From 'bin') $name))) {
                if (Test-Path -LiteralPath $cand -PathType Leaf) {
                    Install-OnrampHelperFile $cand $pin $cached
                    return (Use-OnrampVerified $cached $pin)
                }
            }
        }
        $dist = Get-OnrampEnv 'ONRAMP_DIST_URL'
        if ($dist -eq '') {
            $dist = $S.Release.Base
            if ($S.ManifestUrl -ne '') {
                $dist = $S.ManifestUrl.Substring(0, $S.ManifestUrl.LastIndexOf('/'))
            }
        }
        if ($dist -ne '' -and -not $S.O.Offline) {
            if (-not $dist.StartsWith('https://')) {
                Stop-Onramp helper ('ONRAMP_DIST_URL must be an https:// URL (got ' + $dist + ')')
            }
            $dl = Join-Path $S.Tmp $name
            Write-OnrampSay ('downloading the helper from ' + $dist + '/' + $name)
            Save-OnrampUrl ($dist + '/' + $name) $dl ('cannot download the helper from ' + $dist + '/' + $name)
            Install-OnrampHelperFile $dl $pin $cached
            return (Use-OnrampVerified $cached $pin)
        }
    }
    if ($S.SrcDir -ne '' -and (Test-Path -LiteralPath (Join-Path $S.SrcDir 'helper\Cargo.toml')) -and (Get-Command cargo -ErrorAction SilentlyContinue)) {
        Write-OnrampSay 'building the helper from source (cargo build --release, static CRT) ...'
        $old = Get-OnrampEnv 'RUSTFLAGS'
        try {
            $env:RUSTFLAGS = ($old + ' -C target-feature=+crt-static').Trim()
            & cargo build --quiet --release --locked -p onramp --manifest-path (Join-Path $S.SrcDir 'Cargo.toml') | Out-Host
            $rc = $LASTEXITCODE
        } finally {
            $env:RUSTFLAGS = $old
        }
        if ($rc -ne 0) {
            Stop-Onramp helper "building the helper failed (see cargo's output above)"
        }
        $built = Join-Path $S.SrcDir 'target\release\onramp.exe'
        Assert-OnrampHelperRuns $built
        return $built
    }
    if ($pin -eq '') {
        Stop-Onramp helper ('no helper: this install.ps1 has no pinned helper for ' + $S.Target + ' and is not in a source checkout with cargo; set ONRAMP_HELPER to the path of onramp.exe or use a release install.ps1')
    }
    Stop-Onramp helper ('no helper for ' + $S.Target + ': not cached, not in -From DIR, and ONRAMP_DIST_URL is not set (or -Offline); pass -From DIR with ' + $name + ' in it')
}

# Get-OnrampRc RC: a helper that ended abnormally (killed from Task
# Manager, out of memory, a crash: an NTSTATUS, not one of our codes) is
# exit 14, said with what to do; Ctrl-C is 130; any other code passes.
function Get-OnrampRc {
    param([long]$Rc)
    if ($Rc -eq 0xC000013A -or $Rc -eq -1073741510) {
        return (Get-OnrampCode interrupted)
    }
    if ($Rc -lt 0 -or $Rc -gt 255) {
        Write-OnrampSay ('the helper stopped abnormally (exit 0x' + ('{0:X8}' -f ([long]$Rc -band [long]4294967295)) + ': ended from outside, out of memory, or a crash)')
        Write-OnrampSay 'what finished is kept: run the installer again to resume'
        return (Get-OnrampCode killed)
    }
    [int]$Rc
}

# Invoke-OnrampHelper ARGS: the helper, its stdout shown (not returned),
# its exit code returned as install.sh maps it.
function Invoke-OnrampHelper {
    param($S, [string[]]$HelperArgs)
    & $S.Helper @HelperArgs | Out-Host
    Get-OnrampRc $LASTEXITCODE
}

# Get-OnrampHelperOutput ARGS: the helper's stdout as one string; a
# failure stops the install with the helper's code (it said why).
function Get-OnrampHelperOutput {
    param($S, [string[]]$HelperArgs)
    $out = & $S.Helper @HelperArgs
    $rc = Get-OnrampRc $LASTEXITCODE
    if ($rc -ne 0) {
        Stop-OnrampWith $rc ''
    }
    (@($out) -join "`n").Trim()
}

# The arguments every install command takes: this install's manifest and
# prefix, and the choices that decide the plan.
function Get-OnrampCommonArgs {
    param($S)
    $a = @('--manifest', $S.Manifest, '--prefix', $S.Prefix)
    if ($S.ManifestUrl -ne '') { $a += @('--manifest-url', $S.ManifestUrl) }
    if ($S.O.Gpu -ne '') { $a += @('--gpu', $S.O.Gpu) }
    if ($S.O.Profile -ne '') { $a += @('--profile', $S.O.Profile) }
    $a
}

# What lets the commands that check a manifest's serial and expiry (plan,
# resume-check, begin) take a rollback or an expired one.
function Get-OnrampFreshArgs {
    param($S)
    $a = @()
    if ($S.O.AllowDowngrade) { $a += '--allow-downgrade' }
    if ($S.O.AllowExpired) { $a += '--allow-expired' }
    $a
}

function Get-OnrampEventArgs {
    param($S)
    $a = @()
    if ($S.O.Events -ne '') { $a += @('--events', $S.O.Events) }
    if ($S.O.EventsFormat -ne '') { $a += @('--events-format', $S.O.EventsFormat) }
    $a
}

function Get-OnrampPhaseArgs {
    param($S)
    $o = $S.O
    $a = Get-OnrampEventArgs $S
    if ($S.From -ne '') { $a += @('--from', $S.From) }
    if ($o.Offline) { $a += '--offline' }
    if ($o.NoStart) { $a += '--no-start' }
    if ($o.ModifyPath) { $a += '--modify-path' }
    if ($o.AllowHttp) { $a += '--allow-http' }
    if ($o.AllowSkipChecksums) { $a += '--allow-skip-checksums' }
    if ($o.AllowUnpinnedCatalog) { $a += '--allow-unpinned-catalog' }
    if ($o.Connections -ne '') { $a += @('--connections', $o.Connections) }
    if ($o.Mirror -ne '') { $a += @('--mirror', $o.Mirror) }
    if ($o.CaFile -ne '') { $a += @('--ca-file', $o.CaFile) }
    $a
}

# Sets $S.Mode (--fresh, --resume or --upgrade), as lib/resume.sh does:
# the helper decides and says why; this asks its question, if any, and
# passes the answer back.
function Select-OnrampMode {
    param($S)
    $a = @('resume-check') + (Get-OnrampCommonArgs $S) + (Get-OnrampFreshArgs $S) + @('--owner', [string]$PID, '--decide', '--installer', 'ps1')
    $first = $a
    if ($S.O.Fresh) { $first += '--fresh' }
    if ($S.O.Yes) { $first += '--yes' }
    $line = Get-OnrampHelperOutput $S $first
    if ($line -clike 'ask *') {
        $line = Get-OnrampHelperOutput $S ($a + @('--answer', (Read-OnrampAnswer ('onramp: ' + $line.Substring(4)) 'yes')))
    }
    if (@('fresh', 'resume', 'upgrade') -notcontains $line) {
        Stop-Onramp internal ("the helper's resume-check said '" + $line + "'")
    }
    $S.Mode = '--' + $line
}

function Start-OnrampBegin {
    param($S)
    $rc = Invoke-OnrampHelper $S (@('begin') + (Get-OnrampCommonArgs $S) + (Get-OnrampFreshArgs $S) + @('--owner', [string]$PID, $S.Mode) + (Get-OnrampEventArgs $S))
    if ($rc -ne 0) {
        Stop-OnrampWith $rc ''
    }
}

# Every phase in order, then finish; returns the exit code. A Ctrl-C
# stops PowerShell and the helper together: what finished is kept.
function Invoke-OnrampPhases {
    param($S)
    $fatal = 0
    foreach ($phase in (Get-OnrampPhases)) {
        $fatal = Invoke-OnrampHelper $S (@('phase', $phase) + (Get-OnrampCommonArgs $S) + @('--owner', [string]$PID) + (Get-OnrampPhaseArgs $S))
        if ($fatal -ne 0) {
            break
        }
    }
    $fin = @('finish') + (Get-OnrampCommonArgs $S) + @('--owner', [string]$PID, '--code', [string]$fatal) + (Get-OnrampEventArgs $S)
    if ($S.O.SummaryJson -ne '') {
        $fin += @('--summary-json', $S.O.SummaryJson)
    }
    Invoke-OnrampHelper $S $fin
}

# -ProgressListen without -Events: the events go beside the install's
# state (events.ndjson), so a resumed install continues the same stream.
function Select-OnrampProgressFiles {
    param($S)
    if ($S.O.ProgressListen -eq '') {
        return
    }
    try {
        $first = @((Get-OnrampHelperOutput $S @('state', '--prefix', $S.Prefix)) -split "`n")[0]
    } catch {
        Stop-Onramp state ('cannot find the state directory of ' + $S.Prefix)
    }
    $dir = Split-Path -Parent $first
    if ($S.O.Events -eq '') {
        $S.O.Events = Join-Path $dir 'events.ndjson'
    }
    if ($S.O.ProgressUrlFile -eq '') {
        $S.O.ProgressUrlFile = Join-Path $dir 'progress.url'
    }
}

# -ProgressListen: the helper serves the events on a loopback port from
# the background (a process of its own: it outlives this window, says the
# install was interrupted if this installer dies, and lingers after the
# end); it prints the URL first.
function Start-OnrampProgress {
    param($S)
    $o = $S.O
    if ($o.ProgressListen -eq '') {
        return
    }
    $a = @('progress-serve', '--listen', $o.ProgressListen, '--events', $o.Events, '--owner', [string]$PID, '--url-file', $o.ProgressUrlFile)
    if ($o.ProgressLinger -ne '') { $a += @('--linger', $o.ProgressLinger) }
    if ($o.ProgressAllowOrigin -ne '') { $a += @('--allow-origin', $o.ProgressAllowOrigin) }
    $url = @((Get-OnrampHelperOutput $S $a) -split "`n")[0]
    Write-OnrampSay ('progress: ' + $url + ' (the URL is also in ' + $o.ProgressUrlFile + ')')
}

# A failed install: the helper decides whether it is undone (not an
# interrupted, killed or upgrading one: those are finished by running
# again) and says why; this asks its question, if any, and runs the undo.
function Invoke-OnrampAfterFailure {
    param($S, [int]$Rc)
    if ($Rc -eq 0) {
        return
    }
    $a = @('after-failure', '--prefix', $S.Prefix, '--code', [string]$Rc, '--installer', 'ps1', '--again', $S.Again)
    if ($S.Mode -eq '--upgrade') { $a += '--upgrade' }
    if ($S.O.RollbackOnFailure) { $a += '--rollback-on-failure' }
    # The install's own exit code stands whatever this step meets.
    try {
        $what = Get-OnrampHelperOutput $S $a
        if ($what -clike 'ask *') {
            $what = Get-OnrampHelperOutput $S ($a + @('--answer', (Read-OnrampAnswer ('onramp: ' + $what.Substring(4)) 'no')))
        }
    } catch {
        return
    }
    if ($what -eq 'undo') {
        $u = Invoke-OnrampHelper $S @('uninstall', '--prefix', $S.Prefix)
        if ($u -ne 0) {
            Write-OnrampSay ('the undo stopped (exit ' + $u + '); run: ' + $S.Again + " -Uninstall -Prefix '" + $S.Prefix.Replace("'", "''") + "'")
        }
    }
}

# -Uninstall: the helper reverts what the install recorded.
function Invoke-OnrampUninstall {
    param($S)
    $a = @('uninstall', '--prefix', $S.Prefix)
    if ($S.O.KeepModels) { $a += '--keep-models' }
    if ($S.O.PurgeCache) { $a += '--purge-cache' }
    if ($S.O.DryRun) { $a += '--dry-run' }
    Write-OnrampSay ('uninstalling from ' + $S.Prefix)
    Invoke-OnrampHelper $S $a
}

function Invoke-OnrampDoctor {
    param($S, [bool]$Repair)
    $a = @('doctor', '--prefix', $S.Prefix)
    if ($S.Manifest -ne '') { $a += @('--manifest', $S.Manifest) }
    if ($S.ManifestUrl -ne '') { $a += @('--manifest-url', $S.ManifestUrl) }
    if ($S.O.Deep) { $a += '--deep' }
    if ($Repair) { $a += '--repair' }
    Invoke-OnrampHelper $S $a
}

# -Check [-Deep] [-Repair]: the helper's doctor; a repair then resumes the
# install (only what doctor sent back runs, from the cache) and asks the
# doctor again.
function Invoke-OnrampCheck {
    param($S)
    $rc = Invoke-OnrampDoctor $S $S.O.Repair
    if ($rc -eq (Get-OnrampCode not_ready) -and $S.O.Repair) {
        Write-OnrampSay ('repairing ' + $S.Prefix + ': putting back what is missing or changed')
        $S.O.Yes = $true
        Select-OnrampMode $S
        Start-OnrampBegin $S
        Invoke-OnrampPhases $S | Out-Null
        $rc = Invoke-OnrampDoctor $S $false
    }
    $rc
}

# -From BUNDLE: an archive is unpacked by the helper (each member checked
# against the bundle's index before anything is installed), a directory
# checked byte for byte; the bundle's manifest is the default.
function Open-OnrampBundle {
    param($S)
    if ($S.From -like '*.tar.zst') {
        if (-not (Test-Path -LiteralPath $S.From -PathType Leaf)) {
            Stop-Onramp usage ('-From ' + $S.From + ': no such file')
        }
        Write-OnrampSay ('unpacking the bundle ' + $S.From + ' (each file checked against its index)')
        $dir = Join-Path $S.Tmp 'bundle'
        $rc = Invoke-OnrampHelper $S @('bundle', 'unpack', $S.From, '-o', $dir)
        if ($rc -ne 0) {
            Stop-OnrampWith $rc ''
        }
        $S.From = $dir
    } else {
        Write-OnrampSay ('checking the bundle ' + $S.From + ' (each file against its index)')
        $rc = Invoke-OnrampHelper $S @('bundle', 'verify', $S.From)
        if ($rc -ne 0) {
            Stop-OnrampWith $rc ''
        }
    }
    if ($S.Manifest -eq '') {
        $S.Manifest = Join-Path $S.From 'manifest.json'
    }
}

# Set-OnrampEnv S NAME VALUE: set an environment variable the helper
# reads, remembering the old value: under iex this is the user's session,
# and Invoke-OnrampEntry puts every one back.
function Set-OnrampEnv {
    param($S, [string]$Name, [string]$Value)
    if (-not $S.SavedEnv.Contains($Name)) {
        $S.SavedEnv[$Name] = [Environment]::GetEnvironmentVariable($Name)
    }
    [Environment]::SetEnvironmentVariable($Name, $Value)
}

function Invoke-OnrampMain {
    param($S, [hashtable]$Given)
    $o = Read-OnrampOptions $Given
    $S.O = $o
    if ($o.Help) {
        Show-OnrampUsage
        return 0
    }
    if ($o.Version) {
        [Console]::Out.WriteLine('onramp installer ' + (Get-OnrampKitVersion))
        return 0
    }
    $S.Target = Get-OnrampTarget
    if ($o.PrintTarget) {
        [Console]::Out.WriteLine($S.Target)
        return 0
    }
    $S.Release = Get-OnrampRelease
    # A released install.ps1 installs its own stack and trusts its keys.
    $S.Manifest = $o.Manifest
    if ($S.Manifest -eq '') {
        $S.Manifest = $S.Release.Manifest
    }
    $S.From = $o.From
    # A bundle (`onramp bundle create`: a .tar.zst, or a directory with an
    # index.json) carries the manifest and everything else: no network.
    $bundle = $false
    if ($S.From -ne '') {
        $S.From = Get-OnrampAbsolute $S.From
        if ($S.From -like '*.tar.zst' -or (Test-Path -LiteralPath (Join-Path $S.From 'index.json') -PathType Leaf)) {
            $bundle = $true
            $o.Offline = $true
        }
    }
    # An uninstall or a check of a prefix named on the command line needs
    # no manifest (and so no network); a repair reinstalls, so it does.
    $noManifest = ($o.Uninstall -or ($o.Check -and -not $o.Repair)) -and $o.Prefix -ne ''
    if ($o.Uninstall -and $o.Prefix -eq '' -and $S.Manifest -eq '' -and -not $bundle) {
        Stop-Onramp usage "-Uninstall needs -Prefix DIR (the install to undo), or -Manifest FILE|URL for the stack's default prefix"
    }
    if (-not $noManifest -and $S.Manifest -eq '' -and -not $bundle) {
        Stop-Onramp usage 'no manifest: pass -Manifest FILE|URL (or set ONRAMP_MANIFEST)'
    }
    # Every helper call checks the manifest's signature against these.
    $keys = @($S.Release.TrustKeys) + @($o.TrustKey) | Where-Object { $_ -ne '' }
    Set-OnrampEnv $S 'ONRAMP_TRUST_KEY' ((@($keys) -join ' ').Trim())
    if ($o.BuildUser -ne '') { Set-OnrampEnv $S 'ONRAMP_BUILD_USER' $o.BuildUser }
    if ($o.StateTtl -ne '') { Set-OnrampEnv $S 'ONRAMP_STATE_TTL_HOURS' $o.StateTtl }
    if ($o.BinDir -ne '') { Set-OnrampEnv $S 'ONRAMP_BIN_DIR' (Get-OnrampAbsolute $o.BinDir) }
    if ($noManifest) {
        $S.Manifest = ''
    }
    if ($S.Manifest -like 'https://*') {
        $S.ManifestUrl = $S.Manifest
    } elseif ($S.Manifest -like '*://*') {
        Stop-Onramp usage ('-Manifest ' + $S.Manifest + ': only https:// URLs are accepted (a manifest decides what runs)')
    } elseif ($S.Manifest -ne '') {
        $S.Manifest = Get-OnrampAbsolute $S.Manifest
        if (-not (Test-Path -LiteralPath $S.Manifest -PathType Leaf)) {
            Stop-Onramp manifest ('manifest ' + $S.Manifest + ' does not exist')
        }
    }
    if ($o.CaFile -ne '') {
        $o.CaFile = Get-OnrampAbsolute $o.CaFile
    }
    if ($o.Events -ne '') {
        $o.Events = Get-OnrampAbsolute $o.Events
    }
    if ($o.ProgressUrlFile -ne '') {
        $o.ProgressUrlFile = Get-OnrampAbsolute $o.ProgressUrlFile
    }
    Enable-OnrampTls
    $S.Tmp = Join-Path ([IO.Path]::GetTempPath()) ('onramp.' + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory -Path $S.Tmp | Out-Null
    $S.Helper = Get-OnrampHelper $S
    # The values given, checked before anything is done (by the helper:
    # the same checks and words as install.sh's, spelled -EventsFormat).
    $a = @('check-options', '--installer', 'ps1')
    foreach ($k in @('EventsFormat', 'ProgressListen', 'ProgressLinger', 'Connections', 'Gpu', 'StateTtl')) {
        if ($o[$k] -ne '') { $a += @(('--' + ($k -creplace '(?<!^)([A-Z])', '-$1').ToLowerInvariant()), $o[$k]) }
    }
    $rc = Invoke-OnrampHelper $S $a
    if ($rc -ne 0) {
        Stop-OnrampWith $rc ''
    }
    if ($bundle) {
        Open-OnrampBundle $S
    }
    if ($S.Manifest -eq '' -and -not $noManifest) {
        Stop-Onramp usage 'no manifest: pass -Manifest FILE|URL (or set ONRAMP_MANIFEST)'
    }
    if ($S.ManifestUrl -ne '') {
        $stack = ''
        if ($S.Release.Stack -ne '') { $stack = ' of ' + $S.Release.Stack }
        Write-OnrampSay ('fetching the manifest' + $stack + ': ' + $S.ManifestUrl)
        $a = @('fetch-manifest', $S.ManifestUrl)
        if ($o.CaFile -ne '') { $a += @('--ca-file', $o.CaFile) }
        if ($o.Offline) { $a += '--offline' }
        if ($o.AllowDowngrade) { $a += '--allow-downgrade' }
        if ($o.AllowExpired) { $a += '--allow-expired' }
        $S.Manifest = Get-OnrampHelperOutput $S $a
    }
    $S.Prefix = $o.Prefix
    if ($S.Prefix -eq '') {
        # The helper reads the manifest (JSON is its to parse).
        $a = @('prefix', '--manifest', $S.Manifest)
        if ($S.ManifestUrl -ne '') { $a += @('--manifest-url', $S.ManifestUrl) }
        $S.Prefix = Get-OnrampHelperOutput $S $a
    }
    $S.Prefix = Get-OnrampAbsolute $S.Prefix
    if ($o.Uninstall) {
        return (Invoke-OnrampUninstall $S)
    }
    if ($o.Check) {
        return (Invoke-OnrampCheck $S)
    }
    if ($o.DryRun) {
        return (Invoke-OnrampHelper $S (@('plan') + (Get-OnrampCommonArgs $S) + (Get-OnrampFreshArgs $S)))
    }
    Write-OnrampSay ('installing into ' + $S.Prefix + ' (' + $S.Target + ')')
    Select-OnrampMode $S
    Select-OnrampProgressFiles $S
    Start-OnrampBegin $S
    Start-OnrampProgress $S
    $rc = Invoke-OnrampPhases $S
    Invoke-OnrampAfterFailure $S $rc
    $rc
}

# Runs the install and leaves its exit code in $LASTEXITCODE. `exit` only
# when this is a script file run on its own (powershell -File, & .\install.ps1):
# under iex or a script block it would end the user's session.
function Invoke-OnrampEntry {
    param([hashtable]$Given, $Invocation, [string]$Eof)
    if ($Eof -ne 'onramp-eof') {
        [Console]::Error.WriteLine('onramp: error: this install.ps1 is incomplete (a truncated download?); download it again')
        $global:LASTEXITCODE = 2
        return
    }
    $asFile = $false
    if ($null -ne $Invocation -and $null -ne $Invocation.MyCommand) {
        if ([string]$Invocation.MyCommand.CommandType -eq 'ExternalScript') {
            $asFile = ([string]$Invocation.MyCommand.ScriptContents).Contains('function Invoke-OnrampEntry')
        }
    }
    $ErrorActionPreference = 'Stop'
    $S = @{ O = @{}; Tmp = ''; Helper = ''; Manifest = ''; ManifestUrl = ''; Prefix = ''; From = ''; Mode = ''; Target = ''; SavedEnv = @{}; Release = @{}; SrcDir = ''; Again = '' }
    if ($asFile) {
        $S.SrcDir = Split-Path -Parent ([string]$Invocation.MyCommand.Path)
    }
    # How the user runs this installer again, for the undo hint: the file
    # they ran, or (through irm, with no file to name) the release's one-liner.
    $S.Again = 'install.ps1'
    $base = (Get-OnrampRelease).Base
    if ($asFile) {
        $S.Again = "& '" + ([string]$Invocation.MyCommand.Path).Replace("'", "''") + "'"
    } elseif ($base -ne '') {
        $S.Again = '& ([scriptblock]::Create((irm ' + $base + '/install.ps1)))'
    }
    # The helper prints paths in UTF-8: read its output so (Windows
    # PowerShell 5.1 would decode it in the OEM code page, mangling a
    # non-ASCII user name), and put the console back afterwards.
    $oldEncoding = $null
    try {
        $oldEncoding = [Console]::OutputEncoding
        [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false
    } catch {
        $oldEncoding = $null
    }
    $rc = 130
    try {
        $out = @(Invoke-OnrampMain $S $Given)
        $rc = 0
        if ($out.Count -gt 0) {
            $rc = [int]$out[-1]
        }
    } catch {
        $ex = $_.Exception
        if ($ex.Data.Contains('OnrampExit')) {
            $rc = [int]$ex.Data['OnrampExit']
            if (-not $ex.Data['OnrampSaid']) {
                [Console]::Error.WriteLine($ex.Message)
            }
        } else {
            [Console]::Error.WriteLine('onramp: error: ' + $ex.Message + ' (at ' + $_.InvocationInfo.PositionMessage + ')')
            $rc = 1
        }
    } finally {
        if ($rc -eq 130) {
            Write-OnrampSay 'interrupted: what finished is kept; run the installer again to resume'
        }
        foreach ($k in @($S.SavedEnv.Keys)) {
            [Environment]::SetEnvironmentVariable($k, $S.SavedEnv[$k])
        }
        if ($null -ne $oldEncoding) {
            [Console]::OutputEncoding = $oldEncoding
        }
        if ($S.Tmp -ne '' -and (Test-Path -LiteralPath $S.Tmp)) {
            Remove-Item -LiteralPath $S.Tmp -Recurse -Force -ErrorAction SilentlyContinue
        }
        $global:LASTEXITCODE = $rc
    }
    if ($asFile) {
        exit $rc
    }
}

Invoke-OnrampEntry -Given @{ Manifest = $Manifest; Prefix = $Prefix; Yes = $Yes; Fresh = $Fresh; Profile = $StackProfile; Gpu = $Gpu; NoStart = $NoStart; ModifyPath = $ModifyPath; BinDir = $BinDir; DryRun = $DryRun; RollbackOnFailure = $RollbackOnFailure; Uninstall = $Uninstall; KeepModels = $KeepModels; PurgeCache = $PurgeCache; Check = $Check; Deep = $Deep; Repair = $Repair; Offline = $Offline; From = $From; TrustKey = $TrustKey; AllowDowngrade = $AllowDowngrade; AllowExpired = $AllowExpired; AllowHttp = $AllowHttp; AllowSkipChecksums = $AllowSkipChecksums; AllowUnpinnedCatalog = $AllowUnpinnedCatalog; BuildUser = $BuildUser; Connections = $Connections; Mirror = $Mirror; CaFile = $CaFile; Events = $Events; EventsFormat = $EventsFormat; SummaryJson = $SummaryJson; ProgressListen = $ProgressListen; ProgressUrlFile = $ProgressUrlFile; ProgressLinger = $ProgressLinger; ProgressAllowOrigin = $ProgressAllowOrigin; StateTtl = $StateTtl; PrintTarget = $PrintTarget; Version = $Version; Help = $Help } -Invocation $MyInvocation -Eof 'onramp-eof'
