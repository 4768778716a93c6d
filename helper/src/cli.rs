//! Command-line parsing and the commands themselves. Each command checks
//! its flags against its own list, so a flag that means nothing to it is an
//! error rather than silently ignored.

use crate::download::{self, Cache, Options, Source, Want};
use crate::error::{Code, Error, Result, err};
use crate::events::{Format, Reporter};
use crate::fsutil;
use crate::manifest::{self, Loaded};
use crate::out;
use crate::phase::{self, Ctx};
use crate::plan;
use crate::state::{self, InstallStatus, State, Status, Store};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

const VERSION: &str = env!("CARGO_PKG_VERSION");

struct Cmd {
    name: &'static str,
    args: &'static str,
    about: &'static str,
    flags: &'static [&'static str],
}

const COMMON: &[&str] = &["--manifest", "--prefix", "--state-dir"];

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
        about: "Say whether a saved install can be resumed. Prints one line: `fresh`, `complete`, `resume N NAME M NEXT` (interrupted; completed through phase N) or `retry N NAME M NEXT` (it finished, but steps failed or were skipped: they run again). What will be retried is said on stderr.",
        flags: &["--owner", "--ttl-hours"],
    },
    Cmd {
        name: "begin",
        args: "--manifest FILE --prefix DIR --owner PID (--resume | --fresh)",
        about: "Start a new install, or take over a saved one to resume it, owned by process PID (install.sh).",
        flags: &[
            "--owner",
            "--resume",
            "--fresh",
            "--ttl-hours",
            "--cache-dir",
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
        name: "state",
        args: "--prefix DIR",
        about: "Print where the install state of PREFIX lives, and its contents.",
        flags: &[],
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
  --summary-json FILE    write the final summary as JSON";

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
struct Flags {
    manifest: Option<PathBuf>,
    prefix: Option<PathBuf>,
    owner: Option<u32>,
    state_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    events: Option<PathBuf>,
    format: Option<String>,
    offline: bool,
    allow_http: bool,
    allow_skip_checksums: bool,
    allow_unpinned_catalog: bool,
    build_user: Option<String>,
    from: Option<PathBuf>,
    fresh: bool,
    resume: bool,
    ttl_hours: Option<u64>,
    summary_json: Option<PathBuf>,
    code: Option<i32>,
    output: Option<PathBuf>,
    sha256: Option<String>,
    size: Option<u64>,
    connections: Option<usize>,
    mirrors: Vec<String>,
    ca_file: Option<PathBuf>,
    read_timeout: Option<u64>,
    carch: Option<String>,
    eval: bool,
    timeout: Option<u64>,
    free: Vec<String>,
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
    let f = parse(cmd, rest)?;
    if let Some(u) = &f.build_user {
        // One place reads it (sandbox): the flag wins over the environment.
        // SAFETY: set once, before any thread of ours starts.
        unsafe { std::env::set_var("ONRAMP_BUILD_USER", u) };
    }
    let expect_free = match cmd.name {
        "phase" | "download" | "sha256" => 1,
        "pkgbuild" => 2,
        _ => 0,
    };
    if f.free.len() != expect_free {
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
        "plan" => cmd_plan(&f),
        "resume-check" => cmd_resume_check(&f),
        "begin" => cmd_begin(&f),
        "phase" => cmd_phase(&f),
        "finish" => cmd_finish(&f),
        "download" => cmd_download(&f),
        "state" => cmd_state(&f),
        "pkgbuild" => cmd_pkgbuild(&f),
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

fn need_manifest(f: &Flags) -> Result<Loaded> {
    match &f.manifest {
        Some(m) => manifest::load(m),
        None => err(Code::Usage, "--manifest FILE is required"),
    }
}

fn resolve_prefix(f: &Flags, man: Option<&Loaded>) -> Result<PathBuf> {
    let p = match (&f.prefix, man.and_then(|m| m.m.default_prefix.as_deref())) {
        (Some(p), _) => fsutil::expand_home(&p.to_string_lossy()),
        (None, Some(d)) => fsutil::expand_home(d),
        (None, None) => {
            return err(
                Code::Usage,
                "--prefix DIR is required (the manifest has no default_prefix)",
            );
        }
    };
    if p.as_os_str().is_empty() {
        return err(Code::Usage, "--prefix must not be empty");
    }
    let abs = fsutil::absolute(&p)?;
    if abs == Path::new("/") {
        return err(
            Code::Usage,
            "--prefix / is refused; choose a directory of its own",
        );
    }
    Ok(abs)
}

fn ttl_secs(f: &Flags) -> Result<u64> {
    let h = match f.ttl_hours {
        Some(h) => h,
        None => match std::env::var("ONRAMP_STATE_TTL_HOURS") {
            Ok(v) if !v.is_empty() => v.parse().map_err(|_| {
                Error::new(
                    Code::Usage,
                    format!("ONRAMP_STATE_TTL_HOURS={v:?} is not a whole number of hours"),
                )
            })?,
            _ => 24,
        },
    };
    Ok(h.saturating_mul(3600))
}

fn events_format(f: &Flags) -> Result<Format> {
    match f.format.as_deref() {
        None => Ok(Format::Ndjson),
        Some(s) => Format::parse(s).ok_or_else(|| {
            Error::new(
                Code::Usage,
                format!("--events-format {s:?}: use ndjson or sse"),
            )
        }),
    }
}

fn cmd_plan(f: &Flags) -> Result<i32> {
    let man = need_manifest(f)?;
    let prefix = resolve_prefix(f, Some(&man))?;
    let target = crate::platform::target();
    let planned = plan::resolve(&man, &target)?;
    out::stdout_line(&format!(
        "Dry run: nothing will be changed. Prefix: {}",
        prefix.display()
    ));
    for l in plan::describe(&man, &planned, &target) {
        out::stdout_line(&l);
    }
    for p in planned.iter().filter(|p| p.no_build && !p.optional) {
        out::stdout_line(&format!(
            "  error: required component {} has no build for {target}",
            p.id
        ));
    }
    out::stdout_line(&format!("Phases: {}", state::PHASES.join(", ")));
    out::stdout_line(&format!(
        "Configure: {} dir(s), {} file(s); {} health check(s)",
        man.m.configure.dirs.len(),
        man.m.configure.files.len(),
        man.m.health_checks.len()
    ));
    Ok(0)
}

struct Opened {
    man: Loaded,
    prefix: PathBuf,
    target: String,
    plan_id: String,
    store: Store,
    st: Option<State>,
}

fn open(f: &Flags) -> Result<Opened> {
    let man = need_manifest(f)?;
    let prefix = resolve_prefix(f, Some(&man))?;
    let target = crate::platform::target();
    let plan_id = plan::plan_id(&man, &prefix, &target);
    let root = state::root(f.state_dir.as_deref())?;
    let store = Store::lock(&state::dir_for(&root, &prefix))?;
    let mut st = store.load()?;
    if let Some(s) = &st
        && s.plan_id == plan_id
    {
        let ids: Vec<&str> = man.m.components.iter().map(|c| c.id.as_str()).collect();
        if let Some(why) = s.inconsistency(Some(&ids)) {
            store.set_aside(&why)?;
            st = None;
        }
    }
    Ok(Opened {
        man,
        prefix,
        target,
        plan_id,
        store,
        st,
    })
}

/// As root, refuse a prefix or cache another user could change (the state
/// directory is checked when it is locked).
fn trust_install_dirs(prefix: &Path, f: &Flags) -> Result<()> {
    crate::trust::check(prefix, crate::trust::PREFIX_FIX)?;
    crate::trust::check(
        &download::cache_root(f.cache_dir.as_deref())?,
        crate::trust::CACHE_FIX,
    )
}

fn owner(f: &Flags) -> Result<Option<state::Owner>> {
    f.owner.map(state::owner_of).transpose()
}

/// Why a saved state cannot be resumed, or None when it can.
fn not_resumable(o: &Opened, st: &State, ttl: u64) -> Option<String> {
    if st.prefix != o.prefix.display().to_string() {
        return Some(format!("it was for prefix {}", st.prefix));
    }
    if st.plan_id != o.plan_id {
        return Some("the manifest or the machine changed since it was saved".into());
    }
    let age = fsutil::now_unix().saturating_sub(st.updated_unix);
    if age > ttl {
        return Some(format!(
            "it is older than {} h (last update {})",
            ttl / 3600,
            st.updated_at
        ));
    }
    if st.completed_through() == 0 {
        return Some("no phase had completed".into());
    }
    None
}

fn cmd_resume_check(f: &Flags) -> Result<i32> {
    let o = open(f)?;
    let me = owner(f)?;
    let Some(st) = &o.st else {
        out::stdout_line("fresh");
        return Ok(0);
    };
    state::check_owner(st, me.as_ref())?;
    if st.status == InstallStatus::Complete
        && st.plan_id == o.plan_id
        && st.unsettled().next().is_none()
    {
        out::stdout_line("complete");
        return Ok(0);
    }
    if let Some(why) = not_resumable(&o, st, ttl_secs(f)?) {
        out::line(&format!(
            "onramp: a saved install from {} is not resumed: {why}; starting fresh",
            st.started_at
        ));
        out::stdout_line("fresh");
        return Ok(0);
    }
    // Say what a rerun will retry, before the question is asked.
    for line in st.clone().prepare_rerun() {
        out::line(&format!("onramp: {line}"));
    }
    let n = st.completed_through();
    let next = state::PHASES.get(n).copied().unwrap_or("summary");
    // An install that ran to its end is retried without a question (only
    // what did not install runs again); an interrupted one is offered.
    let word = if st.status == InstallStatus::Complete {
        "retry"
    } else {
        "resume"
    };
    out::stdout_line(&format!(
        "{word} {n} {} {} {next}",
        state::PHASES[n - 1],
        n + 1
    ));
    Ok(0)
}

fn cmd_begin(f: &Flags) -> Result<i32> {
    if f.resume == f.fresh {
        return err(
            Code::Usage,
            "begin needs exactly one of --resume or --fresh",
        );
    }
    let Some(me) = owner(f)? else {
        return err(Code::Usage, "begin needs --owner PID");
    };
    let o = open(f)?;
    trust_install_dirs(&o.prefix, f)?;
    if let Some(st) = &o.st {
        state::check_owner(st, Some(&me))?;
    }
    let ttl = ttl_secs(f)?;
    let now = fsutil::now_unix();
    let mut st = match (f.resume, o.st.clone()) {
        (true, Some(mut st)) => {
            let complete = st.status == InstallStatus::Complete
                && st.plan_id == o.plan_id
                && st.unsettled().next().is_none();
            if !complete && let Some(why) = not_resumable(&o, &st, ttl) {
                return err(
                    Code::State,
                    format!("cannot resume: {why}; run with --fresh"),
                );
            }
            st.prepare_rerun();
            st
        }
        (true, None) => {
            return err(
                Code::State,
                "cannot resume: there is no saved install; run with --fresh",
            );
        }
        (false, old) => {
            let (phases, steps) = phase::fresh_lists(&o.man);
            State {
                schema: state::SCHEMA,
                kit_version: VERSION.to_string(),
                plan_id: o.plan_id.clone(),
                stack: o.man.m.name.clone(),
                stack_version: o.man.m.version.clone(),
                manifest: o.man.path.display().to_string(),
                prefix: o.prefix.display().to_string(),
                started_at: fsutil::rfc3339(now),
                started_unix: now,
                updated_at: fsutil::rfc3339(now),
                updated_unix: now,
                status: InstallStatus::Running,
                exit_code: None,
                owner: None,
                decided: Default::default(),
                phases,
                steps,
                // What onramp wrote before stays onramp's: a re-install may update it.
                managed_files: old.map(|o| o.managed_files).unwrap_or_default(),
            }
        }
    };
    st.owner = Some(me);
    st.status = InstallStatus::Running;
    st.exit_code = None;
    o.store.save(&mut st)?;
    if o.prefix.is_dir() {
        fsutil::remove_orphans_deep(&o.prefix);
    }
    Ok(0)
}

fn options(f: &Flags) -> Result<Options> {
    let connections = f.connections.unwrap_or(download::DEFAULT_CONNECTIONS);
    if !(1..=64).contains(&connections) {
        return err(
            Code::Usage,
            format!("--connections {connections}: use 1 to 64"),
        );
    }
    for m in &f.mirrors {
        if !(m.starts_with("https://") || m.starts_with("http://")) {
            return err(
                Code::Usage,
                format!("--mirror {m:?}: a mirror is an http(s) base URL"),
            );
        }
    }
    let mut net = download::http::Net {
        allow_http: f.allow_http,
        ca_file: f.ca_file.clone(),
        ..Default::default()
    };
    if let Some(s) = f.read_timeout {
        if s == 0 {
            return err(Code::Usage, "--read-timeout must be at least 1 second");
        }
        net.read_timeout = std::time::Duration::from_secs(s);
    }
    Ok(Options {
        offline: f.offline,
        from: f.from.as_deref().map(fsutil::absolute).transpose()?,
        connections,
        mirrors: f.mirrors.clone(),
        net,
        budget: None,
    })
}

fn cmd_phase(f: &Flags) -> Result<i32> {
    let name = f.free[0].clone();
    if state::phase_index(&name).is_none() {
        return err(
            Code::Usage,
            format!(
                "unknown phase {name:?} (phases: {})",
                state::PHASES.join(", ")
            ),
        );
    }
    let me = owner(f)?;
    let o = open(f)?;
    let Some(st) = o.st else {
        return err(
            Code::State,
            "no install in progress for this prefix; start one with `onramp begin`",
        );
    };
    if st.plan_id != o.plan_id {
        return err(
            Code::State,
            "the saved install belongs to another manifest, prefix or machine; start again with --fresh",
        );
    }
    trust_install_dirs(&o.prefix, f)?;
    let cache = Cache::new(download::cache_root(f.cache_dir.as_deref())?);
    let planned = plan::resolve(&o.man, &o.target)?;
    let rep = crate::events::Progress::new(Reporter::new(
        f.events.as_deref(),
        events_format(f)?,
        &name,
    )?);
    let mut opts = options(f)?;
    opts.mirrors.extend(o.man.m.mirrors.iter().cloned());
    let mut ctx = Ctx {
        man: o.man,
        prefix: o.prefix,
        target: o.target,
        plan: planned,
        store: o.store,
        st,
        rep,
        opts,
        cache,
        allow_skip_checksums: f.allow_skip_checksums,
        allow_unpinned_catalog: f.allow_unpinned_catalog,
    };
    phase::run(&name, &mut ctx, me.as_ref())?;
    Ok(0)
}

fn cmd_finish(f: &Flags) -> Result<i32> {
    let me = owner(f)?;
    let o = open(f)?;
    let Some(mut st) = o.st else {
        return err(Code::State, "no install in progress for this prefix");
    };
    state::check_owner(&st, me.as_ref())?;
    let mut rep = Reporter::new(f.events.as_deref(), events_format(f)?, "validate")?;
    let req_failed: Vec<&state::Step> = st
        .steps
        .iter()
        .filter(|s| {
            !s.optional
                && matches!(
                    s.status,
                    Status::Failed | Status::Skipped | Status::Pending | Status::Running
                )
        })
        .filter(|s| {
            !(s.status == Status::Skipped
                && s.reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with("no build for")))
        })
        .collect();
    let code = match f.code {
        Some(c) if c != 0 => c,
        _ if !req_failed.is_empty() => Code::Partial.as_i32(),
        _ => 0,
    };
    let status = match code {
        0 => "success",
        130 => "interrupted",
        9 => "partial",
        _ => "failed",
    };
    out::line("");
    let head = match code {
        0 => format!(
            "{} {} is installed in {}",
            st.stack, st.stack_version, st.prefix
        ),
        130 => format!(
            "{} {}: interrupted; run the installer again to resume",
            st.stack, st.stack_version
        ),
        _ => format!(
            "{} {}: finished with problems (exit {code}) in {}",
            st.stack, st.stack_version, st.prefix
        ),
    };
    out::line(&head);
    for s in &st.steps {
        let opt = if s.optional { " (optional)" } else { "" };
        let detail = s.reason.clone().unwrap_or_default();
        out::line(&format!(
            "  {:<8} {}{opt}{}{detail}",
            s.status.name(),
            s.id,
            if detail.is_empty() { "" } else { ": " }
        ));
    }
    let caps: Vec<String> = st
        .steps
        .iter()
        .filter(|s| s.status == Status::Done)
        .filter_map(|s| s.capability.clone())
        .collect();
    if !caps.is_empty() {
        out::line(&format!("You can now use: {}", caps.join(", ")));
    }
    if let Some(p) = &f.summary_json {
        let v = serde_json::json!({
            "stack": st.stack,
            "version": st.stack_version,
            "prefix": st.prefix,
            "status": status,
            "exit_code": code,
            "capabilities": caps,
            "components": st.steps.iter().map(|s| serde_json::json!({
                "id": s.id, "kind": s.kind, "status": s.status.name(), "optional": s.optional,
                "reason": s.reason, "version": s.version, "capability": s.capability,
            })).collect::<Vec<_>>(),
            "state_file": o.store.file.display().to_string(),
        });
        let mut data =
            serde_json::to_vec_pretty(&v).map_err(|e| Error::new(Code::Internal, e.to_string()))?;
        data.push(b'\n');
        let p = fsutil::absolute(p)?;
        fsutil::write_atomic(&p, &data, 0o644)?;
    }
    rep.bytes_total = st
        .steps
        .iter()
        .fold(0u64, |a, s| a.saturating_add(s.bytes_total));
    rep.bytes_done = st
        .steps
        .iter()
        .fold(0u64, |a, s| a.saturating_add(s.bytes_done));
    rep.finished(status, code, &head);
    st.status = match code {
        0 | 9 => InstallStatus::Complete,
        130 => InstallStatus::Interrupted,
        _ => InstallStatus::Failed,
    };
    st.exit_code = Some(code);
    st.owner = None;
    o.store.save(&mut st)?;
    Ok(code)
}

fn cmd_download(f: &Flags) -> Result<i32> {
    let url = f.free[0].clone();
    let (Some(out_path), Some(sha)) = (&f.output, &f.sha256) else {
        return err(
            Code::Usage,
            "download needs -o PATH and --sha256 HEX (no checksum, no install)",
        );
    };
    let sha = sha.to_ascii_lowercase();
    if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return err(Code::Usage, "--sha256 must be 64 hex digits");
    }
    let source = if url.starts_with("http://") || url.starts_with("https://") {
        Source::Url(url.clone())
    } else {
        Source::Path(fsutil::absolute(Path::new(&url))?)
    };
    let opts = options(f)?;
    let size = match (f.size, &source) {
        (Some(n), _) => n,
        (None, Source::Path(p)) => std::fs::metadata(p)
            .map_err(|e| Error::io("cannot read", p, e))?
            .len(),
        (None, Source::Url(u)) => {
            download::http::probe_size(&download::http::Client::new(&opts.net)?, u)?
        }
    };
    let want = Want {
        label: out_path.display().to_string(),
        source,
        size,
        sha256: sha,
    };
    let cache_root = download::cache_root(f.cache_dir.as_deref())?;
    crate::trust::check(&cache_root, crate::trust::CACHE_FIX)?;
    let cache = Cache::new(cache_root);
    let rep = crate::events::Progress::new(Reporter::new(None, Format::Ndjson, "models")?);
    rep.set_bytes(0, size);
    let cached = cache.ensure(&want, &opts, &rep)?;
    download::place(&cache, &cached, &fsutil::absolute(out_path)?, &want.sha256)?;
    Ok(0)
}

fn cmd_state(f: &Flags) -> Result<i32> {
    let prefix = resolve_prefix(f, None)?;
    let root = state::root(f.state_dir.as_deref())?;
    let file = state::dir_for(&root, &prefix).join("state.json");
    out::stdout_line(&file.display().to_string());
    if let Ok(s) = std::fs::read_to_string(&file) {
        out::stdout_line(s.trim_end());
    }
    Ok(0)
}

fn cmd_pkgbuild(f: &Flags) -> Result<i32> {
    let json = match f.free[0].as_str() {
        "srcinfo" => false,
        "json" => true,
        other => {
            return err(
                Code::Usage,
                format!("unknown pkgbuild action {other:?} (srcinfo, json)"),
            );
        }
    };
    let path = Path::new(&f.free[1]);
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            Code::Manifest,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let carch = f
        .carch
        .clone()
        .unwrap_or_else(|| crate::platform::arch().to_string());
    let refuse = |r: crate::pkgbuild::Refusal| {
        let hint = if f.eval || r.what.starts_with("makepkg rejects") {
            ""
        } else {
            "; this recipe needs --eval (running it in bash) to be read"
        };
        Error::new(Code::Manifest, format!("{}: {r}{hint}", path.display()))
    };
    let recipe = if f.eval {
        let (r, printed) = crate::pkgbuild::eval(
            &text,
            &carch,
            std::time::Duration::from_secs(f.timeout.unwrap_or(30)),
        )
        .map_err(|e| Error::new(e.code, format!("{}: {}", path.display(), e.msg)))?;
        // makepkg passes on what the recipe prints while it is sourced.
        if !printed.is_empty() {
            out::stdout_line(printed.trim_end_matches('\n'));
        }
        r
    } else {
        crate::pkgbuild::parse(&text, &carch).map_err(refuse)?
    };
    let out = crate::pkgbuild::srcinfo(&recipe, path.parent()).map_err(refuse)?;
    if json {
        let meta = crate::pkgbuild::Meta::from_recipe(&recipe, &carch).map_err(refuse)?;
        let text = serde_json::to_string_pretty(&meta)
            .map_err(|e| Error::new(Code::Internal, format!("cannot encode JSON: {e}")))?;
        out::stdout_line(&text);
        return Ok(0);
    }
    out::stdout_line(out.trim_end_matches('\n'));
    Ok(0)
}
