//! Command-line parsing and dispatch; the commands live in `cmd/`. Each
//! command checks its flags against its own list, so a flag that means
//! nothing to it is an error rather than silently ignored.

use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::out;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

const VERSION: &str = env!("CARGO_PKG_VERSION");

struct Cmd {
    name: &'static str,
    args: &'static str,
    about: &'static str,
    flags: &'static [&'static str],
}

const COMMON: &[&str] = &[
    "--manifest",
    "--manifest-url",
    "--prefix",
    "--state-dir",
    "--trust-key",
    "--allow-downgrade",
    "--allow-expired",
    "--gpu",
    "--profile",
];

const CMDS: &[Cmd] = &[
    Cmd {
        name: "plan",
        args: "--manifest FILE [--prefix DIR]",
        about: "Print the install plan for this machine and change nothing (the --dry-run of install.sh).",
        flags: &["--cache-dir"],
    },
    Cmd {
        name: "resume-check",
        args: "--manifest FILE --prefix DIR [--owner PID] [--ttl-hours H]",
        about: "Say whether a saved install can be resumed. Prints one line: `fresh`, `complete`, `upgrade` (the same stack, another manifest: begin --upgrade keeps what it repeats), `resume N NAME M NEXT` (interrupted; completed through phase N) or `retry N NAME M NEXT` (it finished, but steps failed or were skipped: they run again). What will be retried is said on stderr.",
        flags: &["--owner", "--ttl-hours", "--cache-dir"],
    },
    Cmd {
        name: "begin",
        args: "--manifest FILE --prefix DIR --owner PID (--resume | --fresh | --upgrade) [--events FILE] [--summary-json FILE]",
        about: "Start a new install, take over a saved one to resume it, or upgrade one to this manifest (done components it repeats unchanged are kept, dropped ones removed), owned by process PID (install.sh). Records the manifest's serial as accepted. --events and --summary-json are checked here, before anything is saved (see README, Security).",
        flags: &[
            "--owner",
            "--resume",
            "--fresh",
            "--upgrade",
            "--ttl-hours",
            "--cache-dir",
            "--events",
            "--events-format",
            "--summary-json",
        ],
    },
    Cmd {
        name: "phase",
        args: "NAME --manifest FILE --prefix DIR --owner PID [options]",
        about: "Run one phase: preflight, detect, plan, server, models, workers, extras, configure, validate. A phase already done is a no-op.",
        flags: &[
            "--owner",
            "--events",
            "--events-format",
            "--offline",
            "--allow-http",
            "--from",
            "--cache-dir",
            "--connections",
            "--mirror",
            "--ca-file",
            "--read-timeout",
            "--allow-skip-checksums",
            "--allow-unpinned-catalog",
            "--build-user",
            "--no-start",
            "--modify-path",
        ],
    },
    Cmd {
        name: "finish",
        args: "--manifest FILE --prefix DIR --owner PID [--code N] [--summary-json FILE]",
        about: "Print the summary, write --summary-json and the final event, and exit with the install's code (0, or 9 when a required component failed). --code N records a fatal stop with that code.",
        flags: &[
            "--owner",
            "--events",
            "--events-format",
            "--summary-json",
            "--code",
        ],
    },
    Cmd {
        name: "download",
        args: "URL -o PATH --sha256 HEX --size BYTES [--connections N] [--mirror BASE]... [--allow-http]",
        about: "Fetch one artifact through the cache; PATH holds exactly the verified bytes on exit 0, nothing otherwise.",
        flags: &[
            "-o",
            "--sha256",
            "--size",
            "--allow-http",
            "--cache-dir",
            "--offline",
            "--from",
            "--connections",
            "--mirror",
            "--ca-file",
            "--read-timeout",
        ],
    },
    Cmd {
        name: "fetch-manifest",
        args: "URL [--trust-key KEY]... [--ca-file FILE] [--offline]",
        about: "Fetch a stack's manifest and its .minisig over https, check the signature (with any key trusted), serial and expiry before anything it names is requested, keep the verified pair in the state root and print the kept file's path (pass it as --manifest FILE --manifest-url URL). --offline prints the copy fetched before.",
        flags: &["--ca-file", "--offline", "--read-timeout"],
    },
    Cmd {
        name: "release",
        args: "--manifest FILE --base-url URL -o DIR [--helper TARGET=PATH]... [--minisign-key FILE] [--trust-key KEY]...",
        about: "Write a directory to upload as is to any static host: a self-contained install.sh (base URL, stack, manifest location, trusted keys and helper pins baked in), the helpers, manifest.json signed with minisign, every file the manifest names by relative path, SHA256SUMS; and print the one-liners to publish. The same inputs give the same bytes.",
        flags: &["--base-url", "-o", "--helper", "--minisign-key"],
    },
    Cmd {
        name: "pkgbuild",
        args: "(srcinfo | json) FILE [--carch ARCH] [--eval [--timeout S]]",
        about: "Read a PKGBUILD without running it and print its .SRCINFO as makepkg --printsrcinfo would (srcinfo), or what the build engine uses, for ARCH, as JSON (json); refuses (exit 3, naming the construct and line) what needs execution. --eval sources it in a locked-down bash instead (no environment, no network, as nobody when root, 30 s), as makepkg does: only for recipes you would build anyway.",
        flags: &["--carch", "--eval", "--timeout", "--build-user"],
    },
    Cmd {
        name: "sha256",
        args: "FILE",
        about: "Print the sha256 of FILE (as the downloader computes it), e.g. to pre-seed a cache for --from.",
        flags: &[],
    },
    Cmd {
        name: "services",
        args: "(status | stop) --prefix DIR",
        about: "Say whether each service onramp started for PREFIX is running, or stop them all (what an uninstall will do).",
        flags: &[],
    },
    Cmd {
        name: "uninstall",
        args: "--prefix DIR [--dry-run] [--keep-models] [--purge-cache]",
        about: "Undo an install, last change first: stop its services and remove their units, run extras' uninstall commands, remove every file and directory it recorded (a config file you changed is kept and named), then its state, the stack's serial record when no other install has it, and the state and cache roots when onramp made them and they are empty. --keep-models keeps the models; --purge-cache also removes the cache entries no other install uses; --dry-run prints what it would do. Killed midway, run it again.",
        flags: &["--dry-run", "--keep-models", "--purge-cache", "--cache-dir"],
    },
    Cmd {
        name: "bundle",
        args: "create --manifest FILE [--target T]... [--gpu B] [--profile P] [--helper TARGET=PATH]... -o FILE.tar.zst|DIR | verify FILE|DIR | list FILE|DIR | unpack FILE -o DIR",
        about: "Make, check, list or unpack an air-gapped bundle: install.sh, the helpers, the manifest (and its signature), every file it names, every artifact and worker source fetched by URL (every variant for each --target, default this machine's; only those chosen with --gpu/--profile), and index.json (every file's size and sha256). create fetches through the download engine and resumes when run again; verify checks every byte, that nothing is missing or added, the signature (with a trusted key) and that every artifact is there; install.sh --from FILE|DIR installs from it with no network.",
        flags: &[
            "--target",
            "-o",
            "--helper",
            "--cache-dir",
            "--allow-unpinned-catalog",
            "--connections",
            "--mirror",
            "--ca-file",
            "--read-timeout",
            "--allow-http",
        ],
    },
    Cmd {
        name: "doctor",
        args: "--prefix DIR [--manifest FILE] [--deep] [--repair]",
        about: "Say whether an install is ready, changing nothing: every required component done, every file it placed present and unchanged (size and time; --deep re-hashes), config files there, services running, health checks passing. Prints `ready` (exit 0) or `not ready` and each reason (exit 15). --repair marks what is missing or changed to be put back by the installer's next run, from the cache (install.sh --check --repair does both).",
        flags: &["--deep", "--repair"],
    },
    Cmd {
        name: "cache",
        args: "(list | prune) [--dry-run]",
        about: "List the download cache (each entry's size and which installs use it), or prune it: remove verified files and partial downloads no recorded install uses (an entry being downloaded is left alone).",
        flags: &["--dry-run", "--cache-dir"],
    },
    Cmd {
        name: "supervise",
        args: "SECS -- COMMAND...",
        about: "Run COMMAND and restart it when it exits; on SIGTERM stop it (KILL after SECS). onramp starts services this way where systemd --user is not available.",
        flags: &[],
    },
    Cmd {
        name: "prefix",
        args: "--manifest FILE [--prefix DIR]",
        about: "Print the absolute prefix an install would use: --prefix, else the manifest's default_prefix (~ expanded). install.sh asks this instead of reading JSON itself.",
        flags: &[],
    },
    Cmd {
        name: "state",
        args: "--prefix DIR",
        about: "Print where the install state of PREFIX lives, and its contents.",
        flags: &[],
    },
    Cmd {
        name: "progress-serve",
        args: "--listen 127.0.0.1:PORT --events FILE [--owner PID] [--linger SECS] [--url-file FILE] [--allow-origin ORIGIN] [--heartbeat SECS] [--foreground]",
        about: "Serve an install's progress on a loopback port: GET /events (Server-Sent Events, replay from Last-Event-ID), GET /status (a JSON snapshot), GET / (a progress page); each needs the token in the URL it prints. Prints the URL and the events file, then runs in the background (--foreground: here) while the installer PID lives, marks the install interrupted if it dies without finishing, and stops --linger seconds (default 30) after the end.",
        flags: &[
            "--listen",
            "--events",
            "--owner",
            "--linger",
            "--url-file",
            "--allow-origin",
            "--foreground",
            "--heartbeat",
        ],
    },
    Cmd {
        name: "exit-codes",
        args: "",
        about: "Print the exit code table (name and number), the same as install.sh's and README's.",
        flags: &[],
    },
    Cmd {
        name: "target",
        args: "",
        about: "Print this machine's target name (e.g. linux-x86_64).",
        flags: &[],
    },
    Cmd {
        name: "version",
        args: "",
        about: "Print the version.",
        flags: &[],
    },
    Cmd {
        name: "help",
        args: "[COMMAND]",
        about: "Show help for onramp or one command.",
        flags: &[],
    },
];

const OPTIONS_HELP: &str = "Options:
  --manifest FILE        the stack's manifest (JSON)
  --prefix DIR           where the stack is installed (default: the manifest's default_prefix)
  --owner PID            the install.sh process that owns this install
  --state-dir DIR        state root (default $ONRAMP_STATE_DIR or $XDG_STATE_HOME/onramp)
  --cache-dir DIR        download cache (default $ONRAMP_CACHE_DIR or $XDG_CACHE_HOME/onramp)
  --events FILE          append progress events to FILE
  --events-format F      ndjson (default) or sse
  --offline              make no network connection; missing artifacts are errors
  --allow-http           accept plain http URLs (a redirect from https to http is never followed)
  --connections N        connections per artifact (default 8, 1 to 64)
  --mirror BASE          try BASE/<file name> first (repeatable, in order; plain http allowed)
  --ca-file FILE         trust this PEM CA as well as the bundled roots (also: SSL_CERT_FILE)
  --read-timeout SECS    give up on a connection silent this long (default 30)
  --from DIR             a pre-seeded cache (files named by sha256) to use first
  --allow-skip-checksums build worker sources whose sums are SKIP, unverified
  --allow-unpinned-catalog  build a catalog PKGBUILD the manifest does not pin (development catalogs)
  --build-user NAME|UID  as root, run recipes as this account instead of onramp's own build uids
                         (also ONRAMP_BUILD_USER; it must have no running processes)
  --ttl-hours H          a saved install older than H hours is not resumed (default 24, or $ONRAMP_STATE_TTL_HOURS)
  --summary-json FILE    write the final summary as JSON
  --manifest-url URL     where --manifest FILE was fetched from (fetch-manifest): relative paths resolve against it
  --trust-key KEY        trust manifests signed by this minisign public key (RW... or a .pub file; repeatable;
                         also ONRAMP_TRUST_KEY); with any key trusted an unsigned manifest is refused
  --no-start             do not start the stack's services after configure
  --modify-path          add a marked block to the user's shell profiles that puts the bin dir
                         (ONRAMP_BIN_DIR, XDG_BIN_HOME or ~/.local/bin) on PATH, for `expose`d commands
  --allow-downgrade      accept a manifest whose serial is lower than one this machine accepted
  --allow-expired        accept a manifest whose \"expires\" has passed
  --gpu cuda|rocm|metal|intel|cpu  choose variants for this GPU backend instead of the one detected
  --profile NAME         install this profile of the manifest (default: its default_profile, else everything)
  --dry-run              (uninstall, cache prune) print what it would do and change nothing
  --keep-models          (uninstall) keep the model files
  --purge-cache          (uninstall) also remove the cache entries no other install uses
  --deep                 (doctor) re-hash every recorded file instead of comparing size and time
  --repair               (doctor) put back what is missing or changed, from the cache
  --listen ADDR          (progress-serve) a loopback address and port (0: a free one)
  --linger SECS          (progress-serve) keep serving this long after the end (default 30)
  --url-file FILE        (progress-serve) write the URL (with its token) here, mode 0600
  --allow-origin ORIGIN  (progress-serve) let pages of this origin read the endpoints (CORS)
  --foreground           (progress-serve) serve in this process instead of the background
  --heartbeat SECS       (progress-serve) a comment on a quiet event stream this often (default 10)";

fn usage() -> String {
    let mut s = format!(
        "onramp {VERSION}: the helper behind onramp's install.sh\n\nUsage: onramp COMMAND [options]\n\nCommands:\n"
    );
    for c in CMDS {
        s.push_str(&format!(
            "  {:<13} {}\n",
            c.name,
            c.about.split(". ").next().unwrap_or("")
        ));
    }
    s.push_str("\nRun `onramp COMMAND --help` for a command's options. Exit codes are listed in README.md.");
    s
}

fn cmd_help(c: &Cmd) -> String {
    format!(
        "Usage: onramp {} {}\n\n{}\n\n{OPTIONS_HELP}",
        c.name, c.args, c.about
    )
}

/// Parsed flags (the union of every command's; each command checks its list).
#[derive(Default)]
pub struct Flags {
    pub manifest: Option<PathBuf>,
    pub prefix: Option<PathBuf>,
    pub owner: Option<u32>,
    pub state_dir: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub events: Option<PathBuf>,
    pub format: Option<String>,
    pub offline: bool,
    pub allow_http: bool,
    pub allow_skip_checksums: bool,
    pub allow_unpinned_catalog: bool,
    pub build_user: Option<String>,
    pub from: Option<PathBuf>,
    pub fresh: bool,
    pub resume: bool,
    pub upgrade: bool,
    pub ttl_hours: Option<u64>,
    pub summary_json: Option<PathBuf>,
    pub code: Option<i32>,
    pub output: Option<PathBuf>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub connections: Option<usize>,
    pub mirrors: Vec<String>,
    pub ca_file: Option<PathBuf>,
    pub read_timeout: Option<u64>,
    pub carch: Option<String>,
    pub eval: bool,
    pub timeout: Option<u64>,
    pub manifest_url: Option<String>,
    pub trust_keys: Vec<String>,
    pub allow_downgrade: bool,
    pub allow_expired: bool,
    pub gpu: Option<String>,
    pub no_start: bool,
    pub modify_path: bool,
    pub profile: Option<String>,
    pub base_url: Option<String>,
    pub helpers: Vec<String>,
    pub minisign_key: Option<PathBuf>,
    pub dry_run: bool,
    pub targets: Vec<String>,
    pub keep_models: bool,
    pub purge_cache: bool,
    pub deep: bool,
    pub repair: bool,
    pub listen: Option<String>,
    pub linger: Option<u64>,
    pub url_file: Option<PathBuf>,
    pub allow_origin: Option<String>,
    pub foreground: bool,
    pub heartbeat: Option<u64>,
    pub free: Vec<String>,
}

fn bad_value(flag: &str, e: pico_args::Error) -> Error {
    Error::new(Code::Usage, format!("{flag}: {e}"))
}

fn parse(cmd: &Cmd, raw: Vec<OsString>) -> Result<Flags> {
    for a in &raw {
        let s = a.to_string_lossy();
        if s.starts_with('-') && s != "-" {
            let name = s.split('=').next().unwrap_or("");
            if !(COMMON.contains(&name) || cmd.flags.contains(&name)) {
                return err(
                    Code::Usage,
                    format!(
                        "unknown option {name} for `onramp {}`; see `onramp {} --help`",
                        cmd.name, cmd.name
                    ),
                );
            }
        }
    }
    let mut p = pico_args::Arguments::from_vec(raw);
    let mut f = Flags {
        manifest: p
            .opt_value_from_os_str("--manifest", |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(|e| bad_value("--manifest", e))?,
        prefix: p
            .opt_value_from_os_str("--prefix", |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(|e| bad_value("--prefix", e))?,
        owner: p
            .opt_value_from_str("--owner")
            .map_err(|e| bad_value("--owner", e))?,
        state_dir: p
            .opt_value_from_os_str("--state-dir", |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(|e| bad_value("--state-dir", e))?,
        cache_dir: p
            .opt_value_from_os_str("--cache-dir", |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(|e| bad_value("--cache-dir", e))?,
        events: p
            .opt_value_from_os_str("--events", |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(|e| bad_value("--events", e))?,
        format: p
            .opt_value_from_str("--events-format")
            .map_err(|e| bad_value("--events-format", e))?,
        offline: p.contains("--offline"),
        allow_http: p.contains("--allow-http"),
        allow_skip_checksums: p.contains("--allow-skip-checksums"),
        allow_unpinned_catalog: p.contains("--allow-unpinned-catalog"),
        build_user: p
            .opt_value_from_str("--build-user")
            .map_err(|e| bad_value("--build-user", e))?,
        from: p
            .opt_value_from_os_str("--from", |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(|e| bad_value("--from", e))?,
        fresh: p.contains("--fresh"),
        resume: p.contains("--resume"),
        upgrade: p.contains("--upgrade"),
        ttl_hours: p
            .opt_value_from_str("--ttl-hours")
            .map_err(|e| bad_value("--ttl-hours", e))?,
        summary_json: p
            .opt_value_from_os_str("--summary-json", |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(|e| bad_value("--summary-json", e))?,
        code: p
            .opt_value_from_str("--code")
            .map_err(|e| bad_value("--code", e))?,
        output: p
            .opt_value_from_os_str("-o", |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(|e| bad_value("-o", e))?,
        sha256: p
            .opt_value_from_str("--sha256")
            .map_err(|e| bad_value("--sha256", e))?,
        size: p
            .opt_value_from_str("--size")
            .map_err(|e| bad_value("--size", e))?,
        connections: p
            .opt_value_from_str("--connections")
            .map_err(|e| bad_value("--connections", e))?,
        mirrors: p
            .values_from_str("--mirror")
            .map_err(|e| bad_value("--mirror", e))?,
        ca_file: p
            .opt_value_from_os_str("--ca-file", |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(|e| bad_value("--ca-file", e))?,
        read_timeout: p
            .opt_value_from_str("--read-timeout")
            .map_err(|e| bad_value("--read-timeout", e))?,
        carch: p
            .opt_value_from_str("--carch")
            .map_err(|e| bad_value("--carch", e))?,
        eval: p.contains("--eval"),
        timeout: p
            .opt_value_from_str("--timeout")
            .map_err(|e| bad_value("--timeout", e))?,
        manifest_url: p
            .opt_value_from_str("--manifest-url")
            .map_err(|e| bad_value("--manifest-url", e))?,
        trust_keys: p
            .values_from_str("--trust-key")
            .map_err(|e| bad_value("--trust-key", e))?,
        allow_downgrade: p.contains("--allow-downgrade"),
        allow_expired: p.contains("--allow-expired"),
        no_start: p.contains("--no-start"),
        modify_path: p.contains("--modify-path"),
        gpu: p
            .opt_value_from_str("--gpu")
            .map_err(|e| bad_value("--gpu", e))?,
        profile: p
            .opt_value_from_str("--profile")
            .map_err(|e| bad_value("--profile", e))?,
        base_url: p
            .opt_value_from_str("--base-url")
            .map_err(|e| bad_value("--base-url", e))?,
        helpers: p
            .values_from_str("--helper")
            .map_err(|e| bad_value("--helper", e))?,
        minisign_key: p
            .opt_value_from_os_str("--minisign-key", |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(|e| bad_value("--minisign-key", e))?,
        dry_run: p.contains("--dry-run"),
        targets: p
            .values_from_str("--target")
            .map_err(|e| bad_value("--target", e))?,
        keep_models: p.contains("--keep-models"),
        purge_cache: p.contains("--purge-cache"),
        deep: p.contains("--deep"),
        repair: p.contains("--repair"),
        listen: p
            .opt_value_from_str("--listen")
            .map_err(|e| bad_value("--listen", e))?,
        linger: p
            .opt_value_from_str("--linger")
            .map_err(|e| bad_value("--linger", e))?,
        url_file: p
            .opt_value_from_os_str("--url-file", |s| Ok::<_, String>(PathBuf::from(s)))
            .map_err(|e| bad_value("--url-file", e))?,
        allow_origin: p
            .opt_value_from_str("--allow-origin")
            .map_err(|e| bad_value("--allow-origin", e))?,
        foreground: p.contains("--foreground"),
        heartbeat: p
            .opt_value_from_str("--heartbeat")
            .map_err(|e| bad_value("--heartbeat", e))?,
        free: Vec::new(),
    };
    for a in p.finish() {
        f.free.push(
            a.into_string()
                .map_err(|a| Error::new(Code::Usage, format!("argument {a:?} is not UTF-8")))?,
        );
    }
    Ok(f)
}

pub fn main(args: Vec<OsString>) -> Result<i32> {
    let first = args.first().map(|a| a.to_string_lossy().into_owned());
    let name = match first.as_deref() {
        None | Some("-h") | Some("--help") => {
            out::stdout_line(&usage());
            return Ok(0);
        }
        Some("-V") | Some("--version") => "version",
        Some(n) => n,
    };
    let Some(cmd) = CMDS.iter().find(|c| c.name == name) else {
        return err(
            Code::Usage,
            format!("unknown command {name:?}; run `onramp help` for the list"),
        );
    };
    let rest: Vec<OsString> = args.into_iter().skip(1).collect();
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        out::stdout_line(&cmd_help(cmd));
        return Ok(0);
    }
    if cmd.name == "help" {
        match rest.first().map(|a| a.to_string_lossy().into_owned()) {
            None => out::stdout_line(&usage()),
            Some(n) => match CMDS.iter().find(|c| c.name == n) {
                Some(c) => out::stdout_line(&cmd_help(c)),
                None => return err(Code::Usage, format!("no command {n:?}; run `onramp help`")),
            },
        }
        return Ok(0);
    }
    if cmd.name == "supervise" {
        let words: Vec<String> = rest
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return crate::service::supervise_main(&words);
    }
    let f = parse(cmd, rest)?;
    if let Some(u) = &f.build_user {
        // One place reads it (sandbox): the flag wins over the environment.
        // SAFETY: set once, before any thread of ours starts.
        unsafe { std::env::set_var("ONRAMP_BUILD_USER", u) };
    }
    let expect_free = match cmd.name {
        "phase" | "download" | "sha256" | "fetch-manifest" | "services" | "cache" => 1,
        "pkgbuild" => 2,
        _ => 0,
    };
    if f.free.len() != expect_free && cmd.name != "bundle" {
        return err(
            Code::Usage,
            format!(
                "`onramp {}` takes {expect_free} positional argument(s); see `onramp {} --help`",
                cmd.name, cmd.name
            ),
        );
    }
    match cmd.name {
        "version" => {
            out::stdout_line(&format!("onramp {VERSION} ({})", crate::platform::target()));
            Ok(0)
        }
        "exit-codes" => {
            for c in Code::ALL {
                out::stdout_line(&format!("{} {}", c.name(), c.as_i32()));
            }
            Ok(0)
        }
        "target" => {
            out::stdout_line(&crate::platform::target());
            Ok(0)
        }
        "plan" => crate::cmd::install::cmd_plan(&f),
        "resume-check" => crate::cmd::install::cmd_resume_check(&f),
        "begin" => crate::cmd::install::cmd_begin(&f),
        "phase" => crate::cmd::install::cmd_phase(&f),
        "finish" => crate::cmd::install::cmd_finish(&f),
        "download" => crate::cmd::artifact::cmd_download(&f),
        "state" => crate::cmd::install::cmd_state(&f),
        "services" => crate::cmd::install::cmd_services(&f),
        "uninstall" => crate::cmd::uninstall::cmd_uninstall(&f),
        "cache" => crate::cmd::cache::cmd_cache(&f),
        "doctor" => crate::cmd::doctor::cmd_doctor(&f),
        "bundle" => crate::cmd::bundle::cmd_bundle(&f),
        "prefix" => {
            let man = crate::cmd::need_manifest(&f)?;
            out::stdout_line(
                &crate::cmd::resolve_prefix(&f, Some(&man))?
                    .display()
                    .to_string(),
            );
            Ok(0)
        }
        "pkgbuild" => crate::cmd::pkgbuild::cmd_pkgbuild(&f),
        "fetch-manifest" => crate::cmd::fetch::cmd_fetch_manifest(&f),
        "release" => crate::cmd::release::cmd_release(&f),
        "progress-serve" => crate::progress::cmd_progress_serve(&f),
        "sha256" => {
            let p = fsutil::absolute(Path::new(&f.free[0]))?;
            out::stdout_line(&format!("{}  {}", fsutil::sha256_file(&p)?, f.free[0]));
            Ok(0)
        }
        _ => err(
            Code::Internal,
            format!("command {} has no handler", cmd.name),
        ),
    }
}
