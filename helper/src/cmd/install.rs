//! The commands install.sh calls for an install: plan, resume-check,
//! begin, phase, finish.

use super::args::{self, Command, Events, Fetch, Fresh, Local, Parser};
use super::*;
use crate::download::{self, Cache};
use crate::error::{Code, Error, Result, err};
use crate::events::Reporter;
use crate::fsutil;
use crate::out;
use crate::phase::{self, Ctx};
use crate::plan;
use crate::state::{self, InstallStatus, State, Status};
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `onramp plan`.
pub struct Plan {
    install: Install,
    fresh: Fresh,
}

impl Command for Plan {
    const NAME: &'static str = "plan";
    const USAGE: &'static str = "--manifest FILE [--prefix DIR]";
    const ABOUT: &'static str =
        "Print the install plan for this machine and change nothing (the --dry-run of install.sh).";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(Plan {
            install: Install::parse(p)?,
            fresh: Fresh::parse(p),
        })
    }
    fn run(self) -> Result<i32> {
        plan(&self)
    }
}

fn plan(a: &Plan) -> Result<i32> {
    let i = &a.install;
    let mut man = need_manifest(&i.stack)?;
    check_fresh(&a.fresh, i.state_dir(), &man)?;
    let prefix = resolve_prefix(i.place.prefix.as_deref(), Some(&man))?;
    let target = crate::platform::target();
    // What a run would decide now; a saved install is only read, not locked.
    let saved = state::root(i.state_dir())
        .ok()
        .and_then(|r| state::peek(&state::dir_for(&r, &prefix)));
    select(&i.choice, false, &mut man, &prefix, saved.as_ref())?;
    let planned = plan::resolve(&man, &target)?;
    out::stdout_line(&format!(
        "Dry run: nothing will be changed. Prefix: {}",
        prefix.display()
    ));
    let stores = download::reuse_stores(&man.m.stores);
    let found = |w: &crate::manifest::Want| download::found_in(&stores, w);
    for l in plan::describe(&man, &planned, &target, &found) {
        out::stdout_line(&l);
    }
    for p in planned.iter().filter(|p| p.no_build && !p.optional) {
        out::stdout_line(
            &if p.kind == crate::manifest::Kind::Worker && plan::cannot_build(&target) {
                format!("  error: {}", plan::worker_unbuilt(&p.id, &target))
            } else {
                format!(
                    "  error: required component {} has no build for {target}",
                    p.id
                )
            },
        );
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

pub fn not_resumable(o: &Opened, st: &State, ttl: u64) -> Option<String> {
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

/// `onramp check-options`: the installer's option values, checked before
/// anything is done and refused in the installer's own spelling, so
/// install.sh and install.ps1 need no checks of their own.
pub struct CheckOptions {
    installer: args::Installer,
    given: Vec<(&'static str, Option<String>)>,
}

const PROGRESS_LISTEN: args::Opt = args::Opt {
    name: "--progress-listen",
    value: "ADDR",
    help: "a loopback address to serve progress on",
};
const PROGRESS_LINGER: args::Opt = args::Opt {
    name: "--progress-linger",
    value: "SECS",
    help: "seconds to keep serving after the end",
};
const STATE_TTL: args::Opt = args::Opt {
    name: "--state-ttl",
    value: "HOURS",
    help: "hours a saved install stays resumable",
};

impl Command for CheckOptions {
    const NAME: &'static str = "check-options";
    const USAGE: &'static str = "[--installer sh|ps1] [--events-format F] [--progress-listen ADDR] [--progress-linger SECS] [--connections N] [--gpu BACKEND] [--state-ttl HOURS]";
    const ABOUT: &'static str = "Check the values an installer was given before it starts: exit 2 naming the first bad one as that installer spells it (--events-format for install.sh, -EventsFormat for install.ps1).";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(CheckOptions {
            installer: p.value(&args::INSTALLER)?.unwrap_or_default(),
            given: vec![
                ("events-format", p.value(&args::EVENTS_FORMAT)?),
                ("progress-listen", p.value(&PROGRESS_LISTEN)?),
                ("progress-linger", p.value(&PROGRESS_LINGER)?),
                ("connections", p.value(&args::CONNECTIONS)?),
                ("gpu", p.value(&args::GPU)?),
                ("state-ttl", p.value(&STATE_TTL)?),
            ],
        })
    }
    fn run(self) -> Result<i32> {
        for (name, v) in &self.given {
            let Some(v) = v else { continue };
            if let Err(why) = check_option(name, v) {
                return err(
                    Code::Usage,
                    format!("{} {v}: {why}", self.installer.flag(name)),
                );
            }
        }
        Ok(0)
    }
}

/// Why the value `v` of option `name` would be refused later, if it would.
fn check_option(name: &str, v: &str) -> std::result::Result<(), String> {
    let whole = |lo: u64, unit: &str| match v.parse::<u64>() {
        Ok(n) if n >= lo => Ok(()),
        _ => Err(format!("use a whole number of {unit}, {lo} or more")),
    };
    match name {
        "events-format" => crate::events::Format::parse(v)
            .map(drop)
            .ok_or_else(|| "use ndjson or sse".to_string()),
        "progress-listen" => crate::progress::listen_addr(v)
            .map(drop)
            .map_err(|why| format!("{why}; use 127.0.0.1:PORT (0 picks a free port)")),
        "progress-linger" => whole(0, "seconds"),
        "connections" => match v.parse::<u64>() {
            Ok(1..=64) => Ok(()),
            _ => Err("use 1 to 64".into()),
        },
        "gpu" if crate::machine::BACKENDS.contains(&v) => Ok(()),
        "gpu" => Err(format!(
            "use one of {}",
            crate::machine::BACKENDS.join(", ")
        )),
        _ => whole(0, "hours"),
    }
}

/// `onramp after-failure`: what an installer does once an install failed
/// (lib's onramp_after_failure and install.ps1's, decided here once):
/// nothing for an interrupted, killed or locked-out one (they resume) or
/// an upgrade (it is finished by running again); else undo what it did,
/// when the user said so up front or answers yes.
pub struct AfterFailure {
    prefix: Option<PathBuf>,
    code: Option<i32>,
    upgrade: bool,
    rollback: bool,
    answer: Option<Answer>,
    installer: args::Installer,
    again: Option<String>,
}

const AGAIN: args::Opt = args::Opt {
    name: "--again",
    value: "CMD",
    help: "how the user runs this installer again, as they would type it (`curl ... | sh -s --`, `sh ./install.sh`, `& 'C:\\x\\install.ps1'`), for the undo hint",
};

const ROLLBACK: args::Opt = args::Opt {
    name: "--rollback-on-failure",
    value: "",
    help: "undo without asking",
};
const WAS_UPGRADE: args::Opt = args::Opt {
    name: "--upgrade",
    value: "",
    help: "the install was an upgrade (begin --upgrade)",
};

impl Command for AfterFailure {
    const NAME: &'static str = "after-failure";
    const USAGE: &'static str = "--prefix DIR --code N [--upgrade] [--rollback-on-failure] [--answer yes|no|none] [--installer sh|ps1] [--again CMD]";
    const ABOUT: &'static str = "Decide what an installer does after a failed install, and say why: print `keep`, `undo` (run `onramp uninstall --prefix DIR`) or `ask QUESTION` (ask, then call again with --answer).";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(AfterFailure {
            prefix: p.path(&args::PREFIX)?,
            code: p.value(&CODE)?,
            upgrade: p.switch(&WAS_UPGRADE),
            rollback: p.switch(&ROLLBACK),
            answer: p.value(&ANSWER)?,
            installer: p.value(&args::INSTALLER)?.unwrap_or_default(),
            again: p.value(&AGAIN)?,
        })
    }
    fn run(self) -> Result<i32> {
        let (Some(prefix), Some(code)) = (&self.prefix, self.code) else {
            return err(Code::Usage, "after-failure needs --prefix DIR and --code N");
        };
        out::stdout_line(&after_failure(&self, prefix, code));
        Ok(0)
    }
}

fn after_failure(a: &AfterFailure, prefix: &Path, code: i32) -> String {
    let resumes = [
        0,
        Code::Interrupted as i32,
        Code::Killed as i32,
        Code::LockHeld as i32,
    ];
    if resumes.contains(&code) {
        return "keep".into();
    }
    if a.upgrade {
        out::line("onramp: the upgrade did not finish; run the installer again to finish it");
        return "keep".into();
    }
    let yes = a.rollback || a.answer == Some(Answer::Yes);
    if !yes && a.answer.is_none() {
        return format!(
            "ask the install failed (exit {code}). Undo what it did (remove everything it placed in {})? [y/N]",
            prefix.display()
        );
    }
    if !yes {
        out::line(&format!(
            "onramp: kept what was installed: run the installer again to retry, or undo it with: {}",
            uninstall_hint(a.installer, a.again.as_deref(), prefix)
        ));
        return "keep".into();
    }
    out::line(&format!(
        "onramp: undoing what this install did ({})",
        a.installer.flag("rollback-on-failure")
    ));
    "undo".into()
}

/// The command that undoes an install, as the user would type it where
/// they are: `again` is how they run the installer (a piped one-liner has
/// no install.sh file to name); the prefix quoted for that shell.
fn uninstall_hint(i: args::Installer, again: Option<&str>, prefix: &Path) -> String {
    let p = prefix.display().to_string();
    match i {
        args::Installer::Sh => format!(
            "{} --uninstall --prefix {}",
            again.unwrap_or("sh install.sh"),
            super::sh_word(&p)
        ),
        args::Installer::Ps1 => format!(
            "{} -Uninstall -Prefix '{}'",
            again.unwrap_or("install.ps1"),
            p.replace('\'', "''")
        ),
    }
}

/// `onramp resume-check`.
pub struct ResumeCheck {
    install: Install,
    fresh: Fresh,
    owner: Option<u32>,
    ttl_hours: Option<u64>,
    cache_dir: Option<PathBuf>,
    decide: Decide,
}

/// What `resume-check --decide` is told: what the user asked for, what
/// they answered, and which installer the messages are for.
struct Decide {
    on: bool,
    fresh: bool,
    yes: bool,
    answer: Option<Answer>,
    installer: args::Installer,
}

/// The user's answer to the resume question, as the installer got it.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Yes,
    No,
    /// No one could be asked (no terminal, not interactive).
    NoOne,
}

impl std::str::FromStr for Answer {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Answer, String> {
        match s {
            "yes" => Ok(Answer::Yes),
            "no" => Ok(Answer::No),
            "none" => Ok(Answer::NoOne),
            _ => Err(format!("{s:?}: use yes, no or none")),
        }
    }
}

pub const TTL_HOURS: args::Opt = args::Opt {
    name: "--ttl-hours",
    value: "H",
    help: "a saved install older than H hours is not resumed (default 24, or $ONRAMP_STATE_TTL_HOURS)",
};
const DECIDE: args::Opt = args::Opt {
    name: "--decide",
    value: "",
    help: "decide for the installer and say why: print `fresh`, `resume` or `upgrade` (begin's mode), or `ask QUESTION`",
};
const WANT_FRESH: args::Opt = args::Opt {
    name: "--fresh",
    value: "",
    help: "with --decide: the user asked to start over",
};
const YES: args::Opt = args::Opt {
    name: "--yes",
    value: "",
    help: "with --decide: resume without asking",
};
const ANSWER: args::Opt = args::Opt {
    name: "--answer",
    value: "yes|no|none",
    help: "with --decide: the answer to the question it asked (none: there was no one to ask)",
};

impl Command for ResumeCheck {
    const NAME: &'static str = "resume-check";
    const USAGE: &'static str = "--manifest FILE --prefix DIR [--owner PID] [--ttl-hours H] [--decide [--fresh] [--yes] [--answer yes|no|none] [--installer sh|ps1]]";
    const ABOUT: &'static str = "Say whether a saved install can be resumed. Prints one line: `fresh`, `complete`, `upgrade` (the same stack, another manifest: begin --upgrade keeps what it repeats), `resume N NAME M NEXT` (interrupted; completed through phase N) or `retry N NAME M NEXT` (it finished, but steps failed or were skipped: they run again). What will be retried is said on stderr. With --decide it makes the installer's choice (install.sh and install.ps1 only ask the question and pass the answer back).";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(ResumeCheck {
            install: Install::parse(p)?,
            fresh: Fresh::parse(p),
            owner: p.value(&args::OWNER)?,
            ttl_hours: p.value(&TTL_HOURS)?,
            cache_dir: p.path(&args::CACHE_DIR)?,
            decide: Decide {
                on: p.switch(&DECIDE),
                fresh: p.switch(&WANT_FRESH),
                yes: p.switch(&YES),
                answer: p.value(&ANSWER)?,
                installer: p.value(&args::INSTALLER)?.unwrap_or_default(),
            },
        })
    }
    fn run(self) -> Result<i32> {
        let d = &self.decide;
        if !d.on && (d.fresh || d.yes || d.answer.is_some()) {
            return err(
                Code::Usage,
                "resume-check: --fresh, --yes and --answer go with --decide",
            );
        }
        let found = resume_check(&self)?;
        if d.on {
            out::stdout_line(decide(&found, d)?.as_str());
        } else {
            out::stdout_line(&found.line());
        }
        Ok(0)
    }
}

/// What resume-check found: a saved install's standing.
#[derive(Debug, PartialEq)]
enum Found {
    Fresh,
    Upgrade,
    Complete(String),
    /// It ran to its end but steps failed: completed through phase N.
    Retry(usize),
    /// It was interrupted after phase N.
    Resume(usize),
}

impl Found {
    /// The line resume-check prints without --decide.
    fn line(&self) -> String {
        let phases = |word: &str, n: usize| {
            let next = state::PHASES.get(n).copied().unwrap_or("summary");
            format!("{word} {n} {} {} {next}", state::PHASES[n - 1], n + 1)
        };
        match self {
            Found::Fresh => "fresh".into(),
            Found::Upgrade => "upgrade".into(),
            Found::Complete(_) => "complete".into(),
            Found::Retry(n) => phases("retry", *n),
            Found::Resume(n) => phases("resume", *n),
        }
    }
}

/// The installer's choice for what was found (lib/resume.sh's and
/// install.ps1's, made here once): begin's mode, said with its reason, or
/// `ask QUESTION` when only the user can choose. An installer asks, then
/// calls again with --answer.
fn decide(found: &Found, d: &Decide) -> Result<String> {
    let fresh = d.installer.flag("fresh");
    let start_over = |what: &str| {
        out::line(&format!(
            "onramp: {fresh}: {what} (verified downloads are reused)"
        ));
        Ok("fresh".to_string())
    };
    let (n, name) = match found {
        Found::Fresh => return Ok("fresh".into()),
        Found::Upgrade if d.fresh => {
            return start_over("installing this release over the old one from scratch");
        }
        Found::Upgrade => return Ok("upgrade".into()),
        Found::Complete(_) if d.fresh => {
            return start_over("installing again over the complete install");
        }
        Found::Complete(prefix) => {
            out::line(&format!(
                "onramp: already installed in {prefix}; checking its files, configuration and health"
            ));
            return Ok("resume".into());
        }
        Found::Retry(_) | Found::Resume(_) if d.fresh => return start_over("starting over"),
        Found::Retry(n) => {
            out::line(&format!(
                "onramp: the last install finished with problems; running again what did not install (completed through phase {n}, {})",
                state::PHASES[n - 1]
            ));
            return Ok("resume".into());
        }
        Found::Resume(n) => (*n, state::PHASES[n - 1]),
    };
    let next = state::PHASES.get(n).copied().unwrap_or("summary");
    let q = format!(
        "Completed through phase {n} ({name}). Resume from phase {} ({next})? [Y/n]",
        n + 1
    );
    if d.yes {
        out::line(&format!("onramp: {q} yes ({})", d.installer.flag("yes")));
        return Ok("resume".into());
    }
    match d.answer {
        None => Ok(format!("ask {q}")),
        Some(Answer::Yes) => Ok("resume".into()),
        Some(Answer::No) => {
            out::line("onramp: starting over (verified downloads are reused)");
            Ok("fresh".into())
        }
        Some(Answer::NoOne) => err(
            Code::NeedsConfirmation,
            format!(
                "a saved install (completed through phase {n}, {name}) can be resumed, but there is no one to ask (no terminal); pass {} to resume or {fresh} to start over",
                d.installer.flag("yes")
            ),
        ),
    }
}

fn resume_check(f: &ResumeCheck) -> Result<Found> {
    let o = open(&f.install, false)?;
    let me = owner(f.owner)?;
    check_fresh(&f.fresh, f.install.state_dir(), &o.man)?;
    let Some(st) = &o.st else {
        return Ok(Found::Fresh);
    };
    state::check_owner(st, me.as_ref())?;
    // A second call (--answer) says nothing the first one said.
    let say = f.decide.answer.is_none();
    if st.status == InstallStatus::Uninstalling {
        if say {
            out::line(&format!(
                "onramp: an uninstall of {} from {} did not finish; installing it again from the start (verified downloads are reused)",
                st.stack, st.prefix
            ));
        }
        return Ok(Found::Fresh);
    }
    if st.plan_id != o.plan_id
        && st.stack == o.man.m.name
        && st.prefix == o.prefix.display().to_string()
    {
        if say {
            out::line(&format!(
                "onramp: {} {} is installed in {}; this manifest is {} {}: upgrading (what it repeats unchanged is kept)",
                st.stack, st.stack_version, st.prefix, o.man.m.name, o.man.m.version
            ));
        }
        return Ok(Found::Upgrade);
    }
    if st.status == InstallStatus::Complete
        && st.plan_id == o.plan_id
        && st.unsettled().next().is_none()
    {
        return Ok(Found::Complete(o.prefix.display().to_string()));
    }
    if let Some(why) = not_resumable(&o, st, ttl_secs(f.ttl_hours)?) {
        if say {
            out::line(&format!(
                "onramp: a saved install from {} is not resumed: {why}; starting fresh",
                st.started_at
            ));
        }
        return Ok(Found::Fresh);
    }
    let n = st.completed_through();
    // Say what a rerun will retry, before the question is asked.
    if say {
        for line in st.clone().prepare_rerun() {
            out::line(&format!("onramp: {line}"));
        }
        if let Some(line) = inside_phase(f.cache_dir.as_deref(), &o, st, n) {
            out::line(&format!("onramp: {line}"));
        }
    }
    // An install that ran to its end is retried without a question (only
    // what did not install runs again); an interrupted one is offered.
    Ok(if st.status == InstallStatus::Complete {
        Found::Retry(n)
    } else {
        Found::Resume(n)
    })
}

/// What is done inside the phase a resume continues: "models: 3 of 4
/// done; model-vision 56 % downloaded (kept)".
fn inside_phase(cache_dir: Option<&Path>, o: &Opened, st: &State, n: usize) -> Option<String> {
    let phase = *state::PHASES.get(n)?;
    let steps: Vec<&state::Step> = st
        .steps
        .iter()
        .filter(|s| state::phase_of_kind(&s.kind) == phase)
        .collect();
    if steps.is_empty() {
        return None;
    }
    let done = steps.iter().filter(|s| s.settled()).count();
    let mut line = format!("{phase}: {done} of {} done", steps.len());
    if let (Ok(root), Ok(planned)) = (
        download::cache_root(cache_dir),
        plan::resolve(&o.man, &o.target),
    ) {
        let cache = Cache::new(root);
        for s in steps.iter().filter(|s| !s.settled()) {
            let Some(w) = planned
                .iter()
                .find(|p| p.id == s.id)
                .and_then(|p| p.want.as_ref())
            else {
                continue;
            };
            let got = cache.resumable(w);
            if got > 0 && w.size > 0 {
                line.push_str(&format!(
                    "; {} {} % downloaded (kept)",
                    s.id,
                    got * 100 / w.size
                ));
            }
        }
    }
    Some(line)
}

/// `onramp begin`.
pub struct Begin {
    install: Install,
    fresh: Fresh,
    owner: Option<u32>,
    resume: bool,
    new: bool,
    upgrade: bool,
    ttl_hours: Option<u64>,
    cache_dir: Option<PathBuf>,
    events: Events,
    summary_json: Option<PathBuf>,
}

const RESUME: args::Opt = args::Opt {
    name: "--resume",
    value: "",
    help: "take over the saved install and go on from where it stopped",
};
const FRESH: args::Opt = args::Opt {
    name: "--fresh",
    value: "",
    help: "start a new install (a saved one is set aside; verified downloads are reused)",
};
const UPGRADE: args::Opt = args::Opt {
    name: "--upgrade",
    value: "",
    help: "move the saved install to this manifest, keeping what it repeats unchanged",
};

impl Command for Begin {
    const NAME: &'static str = "begin";
    const USAGE: &'static str = "--manifest FILE --prefix DIR --owner PID (--resume | --fresh | --upgrade) [--events FILE] [--summary-json FILE]";
    const ABOUT: &'static str = "Start a new install, take over a saved one to resume it, or upgrade one to this manifest (done components it repeats unchanged are kept, dropped ones removed), owned by process PID (install.sh). Records the manifest's serial as accepted. --events and --summary-json are checked here, before anything is saved (see README, Security).";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(Begin {
            install: Install::parse(p)?,
            fresh: Fresh::parse(p),
            owner: p.value(&args::OWNER)?,
            resume: p.switch(&RESUME),
            new: p.switch(&FRESH),
            upgrade: p.switch(&UPGRADE),
            ttl_hours: p.value(&TTL_HOURS)?,
            cache_dir: p.path(&args::CACHE_DIR)?,
            events: Events::parse(p)?,
            summary_json: p.path(&args::SUMMARY_JSON)?,
        })
    }
    fn run(self) -> Result<i32> {
        begin(&self)
    }
}

fn begin(f: &Begin) -> Result<i32> {
    if [f.resume, f.new, f.upgrade].iter().filter(|b| **b).count() != 1 {
        return err(
            Code::Usage,
            "begin needs exactly one of --resume, --fresh or --upgrade",
        );
    }
    // A --summary-json root may not write (see `named`) is refused now,
    // not after the whole install.
    if let Some(p) = &f.summary_json {
        crate::named::precheck(p, "--summary-json")?;
    }
    if let Some(p) = &f.events.file {
        drop(crate::named::open_append(p, "--events")?);
    }
    let Some(me) = owner(f.owner)? else {
        return err(Code::Usage, "begin needs --owner PID");
    };
    let o = open(&f.install, f.new)?;
    trust_install_dirs(&o.prefix, f.cache_dir.as_deref())?;
    if let Some(st) = &o.st {
        state::check_owner(st, Some(&me))?;
    }
    check_fresh(&f.fresh, f.install.state_dir(), &o.man)?;
    let ttl = ttl_secs(f.ttl_hours)?;
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
            let again = phase::verify_placed(&mut st, &o.man, &o.store.dir, &o.prefix)?;
            for line in &again {
                out::line(&format!("onramp: {line}"));
            }
            // What fleet tools key on (README's Ansible task): said only
            // when the rerun will change nothing it installed.
            if complete && again.is_empty() {
                out::line("onramp: nothing to do: every component is as it was installed");
            }
            st
        }
        (true, None) => {
            return err(
                Code::State,
                "cannot resume: there is no saved install; run with --fresh",
            );
        }
        (false, old) => {
            let (phases, mut steps) = phase::fresh_lists(&o.man, &o.target);
            if f.upgrade
                && let Some(old) = &old
                && old.status != InstallStatus::Uninstalling
                && old.stack == o.man.m.name
                && old.prefix == o.prefix.display().to_string()
            {
                upgrade(old, &mut steps, &o.prefix)?;
            } else if let Some(old) = old
                .as_ref()
                .filter(|s| s.prefix == o.prefix.display().to_string())
            {
                // Starting over in place: what the old install recorded of
                // a component stays recorded (an extra that finds its
                // files already there makes nothing new), so an uninstall
                // still removes it.
                for s in steps.iter_mut() {
                    for f in old.step(&s.id).map(|p| p.files.clone()).unwrap_or_default() {
                        if !s.files.contains(&f) {
                            s.files.push(f);
                        }
                    }
                }
            }
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
                decided: state::Decided {
                    gpu: o.man.chosen.hardware.as_ref().map(|h| h.gpu.clone()),
                    hardware: o.man.chosen.hardware.clone(),
                    profile: o.man.chosen.profile.clone(),
                    variants: o
                        .man
                        .chosen
                        .choices
                        .iter()
                        .filter_map(|(id, c)| Some((id.clone(), c.variant.clone()?)))
                        .collect(),
                    ..Default::default()
                },
                phases,
                steps,
                // What onramp wrote and started before stays onramp's: a
                // re-install may update or restart it.
                managed_files: old
                    .as_ref()
                    .map(|o| o.managed_files.clone())
                    .unwrap_or_default(),
                // Noted before the prefix exists: an uninstall removes
                // the directories this install made, and only those.
                created: match old
                    .as_ref()
                    .filter(|s| s.prefix == o.prefix.display().to_string())
                {
                    Some(s) => s.created.clone(),
                    None => fsutil::missing_dirs(&o.prefix)
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect(),
                },
                config_dirs: old
                    .as_ref()
                    .map(|o| o.config_dirs.clone())
                    .unwrap_or_default(),
                exposed: old.as_ref().map(|o| o.exposed.clone()).unwrap_or_default(),
                path_blocks: old
                    .as_ref()
                    .map(|o| o.path_blocks.clone())
                    .unwrap_or_default(),
                awaiting_service: old
                    .as_ref()
                    .map(|o| o.awaiting_service.clone())
                    .unwrap_or_default(),
                services: old.map(|o| o.services).unwrap_or_default(),
            }
        }
    };
    // A service whose component this manifest no longer has is stopped.
    for (id, r) in st.services.clone() {
        if st.step(&id).is_none() {
            out::line(&format!(
                "onramp: stop service {id} (dropped from the manifest or the profile)"
            ));
            crate::service::stop(&r, std::time::Duration::from_secs(10))?;
            st.services.remove(&id);
        }
    }
    st.owner = Some(me);
    st.status = InstallStatus::Running;
    st.exit_code = None;
    o.store.save(&mut st)?;
    crate::freshness::accept(&o.man, &state::root(f.install.state_dir())?)?;
    if o.prefix.is_dir() {
        fsutil::remove_orphans_deep(&o.prefix);
    }
    if f.events.file.is_some() {
        let mode = if f.resume {
            "resume"
        } else if f.upgrade {
            "upgrade"
        } else {
            "fresh"
        };
        let sizes: std::collections::BTreeMap<String, u64> = plan::resolve(&o.man, &o.target)
            .map(|p| {
                p.iter()
                    .filter_map(|p| Some((p.id.clone(), p.want.as_ref()?.size)))
                    .collect()
            })
            .unwrap_or_default();
        let comps = serde_json::Value::Array(
            st.steps
                .iter()
                .map(|s| {
                    // The variant chosen for this machine, what its
                    // manifest calls it ("cuda tier") and why it fits.
                    let mut e = serde_json::json!({
                        "id": s.id, "kind": s.kind, "optional": s.optional,
                        "status": s.status.name(), "bytes_total": sizes.get(&s.id),
                    });
                    if let Some(c) = o.man.chosen.choices.get(&s.id)
                        && let Some(v) = &c.variant
                    {
                        e["variant"] = serde_json::json!(v);
                        e["variant_description"] = serde_json::json!(c.description);
                        e["variant_why"] = serde_json::json!(c.why);
                    }
                    e
                })
                .collect(),
        );
        let mut rep = Reporter::new(f.events.file.as_deref(), f.events.format()?, "preflight")?;
        rep.started(
            mode,
            &format!(
                "{} {} into {} ({mode})",
                st.stack,
                st.stack_version,
                o.prefix.display()
            ),
            &comps,
        );
    }
    Ok(0)
}

/// An upgrade: keep every done step the new manifest repeats unchanged,
/// say what changes, and remove what the new manifest dropped (the files
/// its steps recorded). Removal comes before the new state is saved, so a
/// kill here repeats it on the rerun.
fn upgrade(old: &State, steps: &mut [state::Step], prefix: &Path) -> Result<()> {
    let mut unchanged = 0;
    for s in steps.iter_mut() {
        let Some(prev) = old.step(&s.id) else {
            out::line(&format!("onramp: install {} (new in this release)", s.id));
            continue;
        };
        if prev.status == Status::Done
            && prev.fingerprint.is_some()
            && prev.fingerprint == s.fingerprint
        {
            // Its uninstall command is the new manifest's word.
            let undo = s.undo.take();
            *s = prev.clone();
            s.undo = undo;
            unchanged += 1;
            continue;
        }
        let why = if prev.status != Status::Done {
            format!("it was {} before", prev.status.name())
        } else if prev.artifact != s.artifact {
            "sha256 changed".to_string()
        } else if prev.version != s.version {
            format!(
                "version {} -> {}",
                prev.version.as_deref().unwrap_or("none"),
                s.version.as_deref().unwrap_or("none")
            )
        } else {
            "its definition changed".to_string()
        };
        out::line(&format!("onramp: upgrade {} ({why})", s.id));
        if s.kind == "worker" {
            // What it installed before, so the new build can clear what it
            // no longer installs.
            s.files = prev.files.clone();
        } else {
            // A model or server moved elsewhere: the old place goes.
            crate::beneath::remove_files(prefix, &prev.files, &s.files)?;
        }
    }
    out::line(&format!("onramp: unchanged: {unchanged}"));
    for prev in &old.steps {
        if steps.iter().any(|s| s.id == prev.id) {
            continue;
        }
        if prev.status != Status::Done || prev.files.is_empty() {
            if prev.status == Status::Done {
                out::line(&format!(
                    "onramp: {} was dropped from the manifest or the profile; it recorded no files, so what it made is left in place",
                    prev.id
                ));
            }
            continue;
        }
        out::line(&format!(
            "onramp: remove {} (dropped from the manifest or the profile)",
            prev.id
        ));
        crate::beneath::remove_files(prefix, &prev.files, &[])?;
    }
    Ok(())
}

/// `onramp phase NAME`.
pub struct Phase {
    name: String,
    install: Install,
    owner: Option<u32>,
    events: Events,
    local: Local,
    fetch: Fetch,
    cache_dir: Option<PathBuf>,
    allow_skip_checksums: bool,
    allow_unpinned_catalog: bool,
    build_user: Option<String>,
    no_start: bool,
    modify_path: bool,
}

const ALLOW_SKIP_CHECKSUMS: args::Opt = args::Opt {
    name: "--allow-skip-checksums",
    value: "",
    help: "build worker sources whose sums are SKIP, unverified",
};
const NO_START: args::Opt = args::Opt {
    name: "--no-start",
    value: "",
    help: "do not start the stack's services after configure",
};
const MODIFY_PATH: args::Opt = args::Opt {
    name: "--modify-path",
    value: "",
    help: "add a marked block to the user's shell profiles that puts the bin dir (ONRAMP_BIN_DIR, XDG_BIN_HOME or ~/.local/bin) on PATH, for `expose`d commands",
};

impl Command for Phase {
    const NAME: &'static str = "phase";
    const USAGE: &'static str = "NAME --manifest FILE --prefix DIR --owner PID [options]";
    const ABOUT: &'static str = "Run one phase: preflight, detect, plan, server, models, workers, extras, configure, validate. A phase already done is a no-op.";
    fn parse(p: &mut Parser) -> Result<Self> {
        let mut a = Phase {
            name: String::new(),
            install: Install::parse(p)?,
            owner: p.value(&args::OWNER)?,
            events: Events::parse(p)?,
            local: Local::parse(p)?,
            fetch: Fetch::parse(p)?,
            cache_dir: p.path(&args::CACHE_DIR)?,
            allow_skip_checksums: p.switch(&ALLOW_SKIP_CHECKSUMS),
            allow_unpinned_catalog: p.switch(&args::ALLOW_UNPINNED_CATALOG),
            build_user: p.value(&args::BUILD_USER)?,
            no_start: p.switch(&NO_START),
            modify_path: p.switch(&MODIFY_PATH),
        };
        a.name = p.words(1)?.remove(0);
        Ok(a)
    }
    fn run(self) -> Result<i32> {
        args::export_build_user(self.build_user.as_deref());
        phase(self)
    }
}

fn phase(f: Phase) -> Result<i32> {
    let name = f.name.clone();
    if state::phase_index(&name).is_none() {
        return err(
            Code::Usage,
            format!(
                "unknown phase {name:?} (phases: {})",
                state::PHASES.join(", ")
            ),
        );
    }
    let me = owner(f.owner)?;
    let o = open(&f.install, false)?;
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
    trust_install_dirs(&o.prefix, f.cache_dir.as_deref())?;
    let cache = Cache::new(download::cache_root(f.cache_dir.as_deref())?);
    let planned = plan::resolve(&o.man, &o.target)?;
    let rep = crate::events::Progress::new(Reporter::new(
        f.events.file.as_deref(),
        f.events.format()?,
        &name,
    )?);
    let mut opts = f.fetch.options(Some(&f.local))?;
    opts.mirrors.extend(o.man.m.mirrors.iter().cloned());
    opts.reuse = download::reuse_stores(&o.man.m.stores);
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
        no_start: f.no_start,
        modify_path: f.modify_path,
    };
    phase::run(&name, &mut ctx, me.as_ref())?;
    Ok(0)
}

/// `onramp finish`.
pub struct Finish {
    install: Install,
    owner: Option<u32>,
    events: Events,
    summary_json: Option<PathBuf>,
    code: Option<i32>,
}

const CODE: args::Opt = args::Opt {
    name: "--code",
    value: "N",
    help: "the install stopped on a fatal error with this exit code",
};

impl Command for Finish {
    const NAME: &'static str = "finish";
    const USAGE: &'static str =
        "--manifest FILE --prefix DIR --owner PID [--code N] [--summary-json FILE]";
    const ABOUT: &'static str = "Print the summary, write --summary-json and the final event, and exit with the install's code (0, or 9 when a required component failed). --code N records a fatal stop with that code.";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(Finish {
            install: Install::parse(p)?,
            owner: p.value(&args::OWNER)?,
            events: Events::parse(p)?,
            summary_json: p.path(&args::SUMMARY_JSON)?,
            code: p.value(&CODE)?,
        })
    }
    fn run(self) -> Result<i32> {
        finish(&self)
    }
}

fn finish(f: &Finish) -> Result<i32> {
    let me = owner(f.owner)?;
    let o = open(&f.install, false)?;
    let Some(mut st) = o.st else {
        return err(Code::State, "no install in progress for this prefix");
    };
    state::check_owner(&st, me.as_ref())?;
    // The terminal event stands at the phase the run stopped in, with the
    // whole install's bytes (planned, and done across runs).
    let at = state::PHASES
        .get(st.completed_through())
        .copied()
        .unwrap_or("validate");
    let mut rep = Reporter::new(f.events.file.as_deref(), f.events.format()?, at)?;
    let planned = plan::resolve(&o.man, &o.target)?;
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
        // A gated model or private registry is the one thing to fix: say so.
        _ if !req_failed.is_empty()
            && req_failed
                .iter()
                .all(|s| s.failed_as.as_deref() == Some(Code::Auth.name())) =>
        {
            Code::Auth.as_i32()
        }
        _ if !req_failed.is_empty() => Code::Partial.as_i32(),
        _ => 0,
    };
    let status = match code {
        0 => "success",
        130 | 14 => "interrupted",
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
        14 => format!(
            "{} {}: the helper was killed (exit 14); run the installer again to resume",
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
    let done_caps = |awaiting: bool| -> Vec<String> {
        st.steps
            .iter()
            .filter(|s| s.status == Status::Done)
            .filter(|s| st.awaiting_service.contains(&s.id) == awaiting)
            .filter_map(|s| s.capability.clone())
            .collect()
    };
    let caps = done_caps(false);
    if !caps.is_empty() {
        out::line(&format!("You can now use: {}", caps.join(", ")));
    }
    let later = done_caps(true);
    if !later.is_empty() {
        out::line(&format!(
            "Installed, usable once its service is ready (the next run of the installer starts it): {}",
            later.join(", ")
        ));
    }
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
    if let Some(p) = &f.summary_json {
        let mut data =
            serde_json::to_vec_pretty(&v).map_err(|e| Error::new(Code::Internal, e.to_string()))?;
        data.push(b'\n');
        crate::named::replace(p, "--summary-json", &data, 0o644)?;
    }
    rep.bytes_total = phase::total_bytes(&planned);
    rep.bytes_done = phase::done_bytes(&planned, &st);
    rep.finished(status, code, &head, Some(&v));
    st.status = match code {
        0 | 9 => InstallStatus::Complete,
        130 | 14 => InstallStatus::Interrupted,
        _ => InstallStatus::Failed,
    };
    st.exit_code = Some(code);
    st.owner = None;
    o.store.save(&mut st)?;
    Ok(code)
}

#[cfg(test)]
mod check_options_tests {
    use super::check_option;

    #[test]
    fn each_value_is_checked_as_its_command_would() {
        assert!(check_option("events-format", "sse").is_ok());
        assert_eq!(
            check_option("events-format", "xml"),
            Err("use ndjson or sse".into())
        );
        assert!(check_option("progress-listen", "127.0.0.1:0").is_ok());
        assert!(check_option("progress-listen", "[::1]:8080").is_ok());
        let e = check_option("progress-listen", "0.0.0.0:80").unwrap_err();
        assert!(e.starts_with("only a loopback address is served"), "{e}");
        assert!(check_option("connections", "64").is_ok());
        assert!(check_option("connections", "0").is_err());
        assert!(check_option("connections", "eight").is_err());
        assert!(check_option("gpu", "rocm").is_ok());
        assert!(
            check_option("gpu", "nvidia")
                .unwrap_err()
                .contains("cuda, rocm")
        );
        assert!(check_option("state-ttl", "48").is_ok());
        assert!(check_option("state-ttl", "-1").is_err());
        assert!(check_option("state-ttl", "0").is_ok());
        assert!(check_option("progress-linger", "0").is_ok());
    }
}

#[cfg(test)]
mod after_failure_tests {
    use super::*;

    fn a(code: i32, upgrade: bool, rollback: bool, answer: Option<Answer>) -> String {
        let f = AfterFailure {
            prefix: None,
            code: Some(code),
            upgrade,
            rollback,
            answer,
            installer: args::Installer::Ps1,
            again: None,
        };
        after_failure(&f, Path::new("C:\\AI stack"), code)
    }

    #[test]
    fn only_a_failure_that_will_not_resume_is_offered_an_undo() {
        for code in [0, 130, 14, 8] {
            assert_eq!(a(code, false, true, None), "keep");
        }
        assert_eq!(a(6, true, true, None), "keep");
        assert_eq!(a(6, false, true, None), "undo");
        assert_eq!(
            a(6, false, false, None),
            "ask the install failed (exit 6). Undo what it did (remove everything it placed in C:\\AI stack)? [y/N]"
        );
        assert_eq!(a(6, false, false, Some(Answer::Yes)), "undo");
        assert_eq!(a(6, false, false, Some(Answer::No)), "keep");
        assert_eq!(a(6, false, false, Some(Answer::NoOne)), "keep");
        assert_eq!(
            uninstall_hint(args::Installer::Ps1, None, Path::new("C:\\Bob's stack")),
            "install.ps1 -Uninstall -Prefix 'C:\\Bob''s stack'"
        );
        let irm = "& ([scriptblock]::Create((irm https://x.example/s/install.ps1)))";
        assert_eq!(
            uninstall_hint(args::Installer::Ps1, Some(irm), Path::new("C:\\AI")),
            format!("{irm} -Uninstall -Prefix 'C:\\AI'")
        );
        let curl =
            "curl --proto '=https' --tlsv1.2 -fsSL https://x.example/s/install.sh | sh -s --";
        assert_eq!(
            uninstall_hint(
                args::Installer::Sh,
                Some(curl),
                Path::new("/home/bob/AI stack")
            ),
            format!("{curl} --uninstall --prefix '/home/bob/AI stack'")
        );
        assert_eq!(
            uninstall_hint(args::Installer::Sh, None, Path::new("/opt/ai")),
            "sh install.sh --uninstall --prefix /opt/ai"
        );
        assert_eq!(super::super::sh_word("it's"), "'it'\\''s'");
    }
}

#[cfg(test)]
mod decide_tests {
    use super::*;

    fn d(fresh: bool, yes: bool, answer: Option<Answer>, installer: args::Installer) -> Decide {
        Decide {
            on: true,
            fresh,
            yes,
            answer,
            installer,
        }
    }

    #[test]
    fn the_choice_install_sh_and_install_ps1_make() {
        let sh = args::Installer::Sh;
        let ps1 = args::Installer::Ps1;
        let run = |f: Found, d: Decide| decide(&f, &d).map_err(|e| e.code);
        assert_eq!(
            run(Found::Fresh, d(false, false, None, sh)),
            Ok("fresh".into())
        );
        assert_eq!(
            run(Found::Upgrade, d(false, false, None, sh)),
            Ok("upgrade".into())
        );
        assert_eq!(
            run(Found::Upgrade, d(true, false, None, sh)),
            Ok("fresh".into())
        );
        let done = || Found::Complete("/p".into());
        assert_eq!(run(done(), d(false, false, None, sh)), Ok("resume".into()));
        assert_eq!(run(done(), d(true, true, None, sh)), Ok("fresh".into()));
        // A finished install with failures is retried without a question.
        assert_eq!(
            run(Found::Retry(9), d(false, false, None, sh)),
            Ok("resume".into())
        );
        // An interrupted one is asked about, unless --yes or --fresh.
        assert_eq!(
            run(Found::Resume(6), d(false, false, None, ps1)),
            Ok(
                "ask Completed through phase 6 (workers). Resume from phase 7 (extras)? [Y/n]"
                    .into()
            )
        );
        assert_eq!(
            run(Found::Resume(6), d(false, true, None, ps1)),
            Ok("resume".into())
        );
        assert_eq!(
            run(Found::Resume(6), d(true, true, None, ps1)),
            Ok("fresh".into())
        );
        let yes = Some(Answer::Yes);
        assert_eq!(
            run(Found::Resume(6), d(false, false, yes, ps1)),
            Ok("resume".into())
        );
        let no = Some(Answer::No);
        assert_eq!(
            run(Found::Resume(6), d(false, false, no, ps1)),
            Ok("fresh".into())
        );
        let none = Some(Answer::NoOne);
        assert_eq!(
            run(Found::Resume(6), d(false, false, none, ps1)),
            Err(Code::NeedsConfirmation)
        );
        let e = decide(&Found::Resume(6), &d(false, false, none, ps1)).unwrap_err();
        assert!(
            e.to_string()
                .contains("pass -Yes to resume or -Fresh to start over"),
            "{e}"
        );
        let e = decide(&Found::Resume(6), &d(false, false, none, sh)).unwrap_err();
        assert!(
            e.to_string()
                .contains("pass --yes to resume or --fresh to start over"),
            "{e}"
        );
    }
}
