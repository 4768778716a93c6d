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
    for l in plan::describe(&man, &planned, &target) {
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

/// `onramp resume-check`.
pub struct ResumeCheck {
    install: Install,
    fresh: Fresh,
    owner: Option<u32>,
    ttl_hours: Option<u64>,
    cache_dir: Option<PathBuf>,
}

pub const TTL_HOURS: args::Opt = args::Opt {
    name: "--ttl-hours",
    value: "H",
    help: "a saved install older than H hours is not resumed (default 24, or $ONRAMP_STATE_TTL_HOURS)",
};

impl Command for ResumeCheck {
    const NAME: &'static str = "resume-check";
    const USAGE: &'static str = "--manifest FILE --prefix DIR [--owner PID] [--ttl-hours H]";
    const ABOUT: &'static str = "Say whether a saved install can be resumed. Prints one line: `fresh`, `complete`, `upgrade` (the same stack, another manifest: begin --upgrade keeps what it repeats), `resume N NAME M NEXT` (interrupted; completed through phase N) or `retry N NAME M NEXT` (it finished, but steps failed or were skipped: they run again). What will be retried is said on stderr.";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(ResumeCheck {
            install: Install::parse(p)?,
            fresh: Fresh::parse(p),
            owner: p.value(&args::OWNER)?,
            ttl_hours: p.value(&TTL_HOURS)?,
            cache_dir: p.path(&args::CACHE_DIR)?,
        })
    }
    fn run(self) -> Result<i32> {
        resume_check(&self)
    }
}

fn resume_check(f: &ResumeCheck) -> Result<i32> {
    let o = open(&f.install, false)?;
    let me = owner(f.owner)?;
    check_fresh(&f.fresh, f.install.state_dir(), &o.man)?;
    let Some(st) = &o.st else {
        out::stdout_line("fresh");
        return Ok(0);
    };
    state::check_owner(st, me.as_ref())?;
    if st.status == InstallStatus::Uninstalling {
        out::line(&format!(
            "onramp: an uninstall of {} from {} did not finish; installing it again from the start (verified downloads are reused)",
            st.stack, st.prefix
        ));
        out::stdout_line("fresh");
        return Ok(0);
    }
    if st.plan_id != o.plan_id
        && st.stack == o.man.m.name
        && st.prefix == o.prefix.display().to_string()
    {
        out::line(&format!(
            "onramp: {} {} is installed in {}; this manifest is {} {}: upgrading (what it repeats unchanged is kept)",
            st.stack, st.stack_version, st.prefix, o.man.m.name, o.man.m.version
        ));
        out::stdout_line("upgrade");
        return Ok(0);
    }
    if st.status == InstallStatus::Complete
        && st.plan_id == o.plan_id
        && st.unsettled().next().is_none()
    {
        out::stdout_line("complete");
        return Ok(0);
    }
    if let Some(why) = not_resumable(&o, st, ttl_secs(f.ttl_hours)?) {
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
    if let Some(line) = inside_phase(f.cache_dir.as_deref(), &o, st, n) {
        out::line(&format!("onramp: {line}"));
    }
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
            for line in phase::verify_placed(&mut st, &o.man, &o.prefix)? {
                out::line(&format!("onramp: {line}"));
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
                    serde_json::json!({
                        "id": s.id, "kind": s.kind, "optional": s.optional,
                        "status": s.status.name(), "bytes_total": sizes.get(&s.id),
                    })
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
    let caps: Vec<String> = st
        .steps
        .iter()
        .filter(|s| s.status == Status::Done)
        .filter_map(|s| s.capability.clone())
        .collect();
    if !caps.is_empty() {
        out::line(&format!("You can now use: {}", caps.join(", ")));
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
