//! Phases: the fixed sequence an install walks, one helper call each.
//!
//! This module owns the context a phase runs in and the bookkeeping around
//! it (owner check, running/done/failed in the state, events). Each phase's
//! own work lives in its file; component failures are recorded on their step
//! and never stop independent components.

mod configure;
mod detect;
mod extras;
mod models;
mod preflight;
pub use preflight::host_port;
mod server;
pub(crate) mod validate;
mod workers;

use crate::download::{Cache, Options};
use crate::error::{Code, Error, Result};
use crate::events::Progress;
use crate::fsutil;
use crate::manifest::Loaded;
use crate::plan::Planned;
use crate::state::{InstallStatus, Owner, State, Status, Store};
use std::path::PathBuf;

/// The caller's variables every manifest command sees (README: Commands):
/// where programs and home are, locale and terminal, and the network
/// settings onramp itself honours (a command that downloads needs them).
pub const PASSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TERM",
    "TZ",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Longest reason or error text kept in the state (it quotes output).
pub const MAX_REASON: usize = 4096;

pub struct Ctx {
    pub man: Loaded,
    pub prefix: PathBuf,
    pub target: String,
    pub plan: Vec<Planned>,
    pub store: Store,
    pub st: State,
    pub rep: Progress,
    pub opts: Options,
    pub cache: Cache,
    /// Build sources whose sums are SKIP (never by default).
    pub allow_skip_checksums: bool,
    /// Build catalog recipes the manifest does not pin (never by default).
    pub allow_unpinned_catalog: bool,
    /// Do not start services (`--no-start`).
    pub no_start: bool,
    /// Add a PATH block to the user's shell profiles (`--modify-path`).
    pub modify_path: bool,
}

impl Ctx {
    pub fn save(&mut self) -> Result<()> {
        self.store.save(&mut self.st)
    }

    /// Why a component cannot run now: a dependency that is not done.
    pub fn blocked_by(&self, id: &str) -> Option<String> {
        self.blocked(id, true)
    }

    /// Like `blocked_by`, but a dependency still pending does not block.
    pub fn blocked_by_failure(&self, id: &str) -> Option<String> {
        self.blocked(id, false)
    }

    fn blocked(&self, id: &str, strict: bool) -> Option<String> {
        let final_only = strict;
        let c = self.man.component(id)?;
        for d in &c.depends_on {
            match self.st.step(d).map(|s| s.status) {
                Some(Status::Done) => {}
                // Not run yet: in the same phase, dependencies run first.
                Some(Status::Pending | Status::Running) if !final_only => {}
                Some(s) => {
                    return Some(format!(
                        "depends on {d}, which {}",
                        if s == Status::Failed {
                            "failed"
                        } else {
                            "was not installed"
                        }
                    ));
                }
                None => return Some(format!("depends on unknown {d}")),
            }
        }
        None
    }

    /// Record a component's final status, save, and report it.
    pub fn finish_step(&mut self, id: &str, status: Status, reason: Option<String>) -> Result<()> {
        // A reason quotes output others control: it is kept bounded.
        let reason = reason.map(|r| crate::out::bounded(&r, MAX_REASON).into_owned());
        if status == Status::Done {
            self.stamp(id)?;
        }
        let step = self.st.step_mut(id)?;
        step.status = status;
        step.reason = reason.clone();
        step.finished_at = Some(fsutil::now_rfc3339());
        self.save()?;
        // A capability served by a service that is not up is announced
        // when it is (`announce_served`), not now.
        let waits = status == Status::Done && self.service_down(id).is_some();
        let was = self.st.awaiting_service.contains(&id.to_string());
        if waits != was {
            if waits {
                self.st.awaiting_service.push(id.to_string());
            } else {
                self.st.awaiting_service.retain(|a| a != id);
            }
            self.save()?;
        }
        if status == Status::Done {
            crate::capabilities::write(&self.prefix, &self.st)?;
        }
        self.rep
            .step(id, status.name(), reason.as_deref().unwrap_or(""));
        if status == Status::Done && !waits {
            self.announce(id);
        }
        Ok(())
    }

    fn announce(&mut self, id: &str) {
        if let Some(u) = self.man.component(id).and_then(|c| c.unlocks.clone()) {
            self.rep.capability(id, &u.capability, &u.message);
        }
    }

    /// The component with a service that `id`'s capability needs and that
    /// is not running now: `id` itself or one it depends on, at any depth.
    /// None when every such service runs (or there is none).
    pub fn service_down(&self, id: &str) -> Option<String> {
        let mut todo = vec![id.to_string()];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(c) = todo.pop() {
            if !seen.insert(c.clone()) {
                continue;
            }
            let Some(comp) = self.man.component(&c) else {
                continue;
            };
            if comp.service.is_some() {
                let up = !self.no_start
                    && self
                        .st
                        .services
                        .get(&c)
                        .is_some_and(crate::service::running);
                if !up {
                    return Some(c);
                }
            }
            todo.extend(comp.depends_on.iter().cloned());
        }
        None
    }

    /// After a service is ready: announce the capabilities that waited
    /// for it (and for nothing else still down), in the plan's order.
    pub fn announce_served(&mut self) -> Result<()> {
        let ready: Vec<String> = self
            .st
            .awaiting_service
            .iter()
            .filter(|id| self.service_down(id).is_none())
            .cloned()
            .collect();
        if ready.is_empty() {
            return Ok(());
        }
        self.st.awaiting_service.retain(|a| !ready.contains(a));
        self.save()?;
        crate::capabilities::write(&self.prefix, &self.st)?;
        let order: Vec<String> = self.st.steps.iter().map(|s| s.id.clone()).collect();
        for id in order.iter().filter(|i| ready.contains(i)) {
            if self.st.step(id).is_some_and(|s| s.status == Status::Done) {
                self.announce(id);
            }
        }
        Ok(())
    }

    /// Stamp the files `id` placed (`stamp`), before it is recorded done.
    fn stamp(&self, id: &str) -> Result<()> {
        let Some(step) = self.st.step(id) else {
            return Ok(());
        };
        if step.files.is_empty() {
            // No stamps from an earlier install of it either.
            crate::fsutil::remove(crate::stamp::file(&self.store.dir, id));
            return Ok(());
        }
        let mut known = std::collections::BTreeMap::new();
        if let (Some(rel), Some(sha)) = (
            self.man.component(id).and_then(|c| c.install_path.clone()),
            step.artifact.clone(),
        ) {
            known.insert(rel, sha);
        }
        let stamps = crate::stamp::take(&self.prefix, &step.files, &known)?;
        crate::stamp::save(&self.store.dir, id, &stamps)
    }

    /// Mark `id` running (saved), unless it is already final.
    pub fn start_step(&mut self, id: &str) -> Result<bool> {
        let step = self.st.step_mut(id)?;
        if matches!(step.status, Status::Done | Status::Skipped | Status::Failed) {
            return Ok(false);
        }
        step.status = Status::Running;
        self.save()?;
        Ok(true)
    }

    /// The components of this phase that still have to run, with
    /// dependency failures turned into skips on the way.
    pub fn runnable(&mut self, phase: &str) -> Result<Vec<Planned>> {
        let order: Vec<Planned> = crate::plan::for_phase(&self.man, &self.plan, phase)
            .into_iter()
            .cloned()
            .collect();
        let mut out = Vec::new();
        for p in order {
            if !self.start_step(&p.id)? {
                continue;
            }
            if let Some(why) = self.blocked_by_failure(&p.id) {
                self.finish_step(&p.id, Status::Skipped, Some(why))?;
                continue;
            }
            out.push(p);
        }
        Ok(out)
    }

    /// The whole environment of every command the manifest runs: the
    /// caller's `PASSED_ENV` variables, those the manifest's `env` names,
    /// and `ONRAMP_PREFIX`, `ONRAMP_TARGET`, `ONRAMP_GPU` (the backend:
    /// cuda, rocm, metal, intel or cpu), `ONRAMP_PROFILE` (when one is
    /// installed). Nothing else of the caller's (tokens, credentials)
    /// reaches a command.
    pub fn env(&self) -> Vec<(String, String)> {
        command_env(&self.man.m.env, &self.prefix, &self.target, &self.st)
    }

    pub fn total_bytes(&self) -> u64 {
        total_bytes(&self.plan)
    }

    /// Bytes of artifacts whose components are already done.
    pub fn done_bytes(&self) -> u64 {
        done_bytes(&self.plan, &self.st)
    }
}

/// The environment of a manifest command (see `Ctx::env`), from what the
/// state decided: also what `doctor` and `uninstall` run commands with.
pub fn command_env(
    names: &[String],
    prefix: &std::path::Path,
    target: &str,
    st: &State,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = PASSED_ENV
        .iter()
        .copied()
        .chain(names.iter().map(String::as_str))
        .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
        .collect();
    env.extend([
        ("ONRAMP_PREFIX".into(), prefix.display().to_string()),
        ("ONRAMP_TARGET".into(), target.to_string()),
        (
            "ONRAMP_GPU".into(),
            st.decided.gpu.clone().unwrap_or_else(|| "cpu".into()),
        ),
    ]);
    if let Some(p) = &st.decided.profile {
        env.push(("ONRAMP_PROFILE".into(), p.clone()));
    }
    env
}

/// What is wrong with the files a done step placed, as doctor sees them:
/// its stamps checked (`deep`: hashed), or, for a step stamped by no
/// earlier onramp, whether its files are there at all.
pub fn placed_findings(
    s: &crate::state::Step,
    state_dir: &std::path::Path,
    prefix: &std::path::Path,
    deep: bool,
) -> Result<Vec<crate::stamp::Finding>> {
    Ok(match crate::stamp::load(state_dir, &s.id) {
        Some(stamps) => crate::stamp::check(prefix, &stamps, deep)?,
        None => s
            .files
            .iter()
            .filter(|f| std::fs::symlink_metadata(prefix.join(f)).is_err())
            .map(|f| crate::stamp::Finding::Missing(f.clone()))
            .collect(),
    })
}

/// A few findings in words: the first five, then how many more.
pub fn describe_findings(findings: &[crate::stamp::Finding]) -> String {
    let mut words: Vec<String> = findings.iter().take(5).map(|f| f.describe()).collect();
    if findings.len() > 5 {
        words.push(format!("and {} more", findings.len() - 5));
    }
    words.join(", ")
}

/// Verified at use: before a rerun trusts a done step, what it placed is
/// checked as doctor checks it. A model's file is hashed again; the files
/// of a server, worker or extra are compared with their stamps (a deleted
/// venv, an edited server binary). A step whose files are missing or
/// changed (a disk error, a hand edit, a same-size corruption) goes back
/// to pending, with its phase, so this rerun installs it again (a model
/// from the verified cache). Returns one line per step sent back.
pub fn verify_placed(
    st: &mut State,
    man: &Loaded,
    state_dir: &std::path::Path,
    prefix: &std::path::Path,
) -> Result<Vec<String>> {
    let mut said = Vec::new();
    let mut again = Vec::new();
    for s in st.steps.iter() {
        if s.status != Status::Done {
            continue;
        }
        crate::signal::check()?;
        let model = man
            .component(&s.id)
            .filter(|_| s.kind == "model")
            .and_then(|c| Some((c.install_path.clone()?, s.artifact.clone()?)));
        let why = match model {
            Some((rel, want)) => match fsutil::sha256_file(&prefix.join(&rel)) {
                Ok(got) if got == want => continue,
                Ok(got) => format!("{rel} changed on disk since it was installed (sha256 {got})"),
                Err(_) => format!("{rel} is missing or unreadable"),
            },
            None if s.kind == "model" => continue,
            None => {
                let findings = placed_findings(s, state_dir, prefix, false)?;
                if findings.is_empty() {
                    continue;
                }
                describe_findings(&findings)
            }
        };
        said.push(format!("{}: {why}; installing it again", s.id));
        again.push(s.id.clone());
    }
    st.reopen(&again, &[]);
    Ok(said)
}

/// Bytes of every artifact the plan installs: the work planned, whatever
/// run does it.
pub fn total_bytes(plan: &[Planned]) -> u64 {
    plan.iter()
        .filter(|p| !p.no_build)
        .filter_map(|p| p.want.as_ref())
        .fold(0u64, |a, w| a.saturating_add(w.size))
}

/// Bytes of artifacts whose components are done, in this run or earlier.
pub fn done_bytes(plan: &[Planned], st: &crate::state::State) -> u64 {
    plan.iter()
        .filter(|p| st.step(&p.id).is_some_and(|s| s.status == Status::Done))
        .filter_map(|p| p.want.as_ref())
        .fold(0u64, |a, w| a.saturating_add(w.size))
}

/// Fresh phase and step lists for a new install.
/// A component as it installs on `target`: its definition with only the
/// artifact chosen for this target, hashed.
pub fn fingerprint(c: &crate::manifest::Component, target: &str) -> (String, Option<String>) {
    let mut c = c.clone();
    let chosen = c
        .artifacts
        .get(target)
        .or_else(|| c.artifacts.get("any"))
        .cloned();
    c.artifacts.clear();
    if let Some(a) = &chosen {
        c.artifacts.insert("chosen".into(), a.clone());
    }
    // Words that do not change what is installed stay out (a service is
    // restarted when it changes, not reinstalled).
    c.description = None;
    c.unlocks = None;
    c.service = None;
    c.uninstall = None;
    let text = serde_json::to_string(&c).unwrap_or_default();
    (
        fsutil::sha256_bytes(text.as_bytes())[..16].to_string(),
        chosen.and_then(|a| a.sha256),
    )
}

/// The files a component owns in the prefix before anything records more
/// (a model's file, a server's directory); a worker's build adds its own.
fn owned_paths(c: &crate::manifest::Component) -> Vec<String> {
    match c.kind {
        crate::manifest::Kind::Model => c.install_path.iter().cloned().collect(),
        crate::manifest::Kind::Server => c.install_dir.iter().cloned().collect(),
        // An extra's own artifact; what its command makes is added after it runs.
        crate::manifest::Kind::Extra => c
            .install_path
            .iter()
            .chain(c.install_dir.iter())
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

pub fn fresh_lists(
    man: &Loaded,
    target: &str,
) -> (Vec<crate::state::PhaseState>, Vec<crate::state::Step>) {
    let phases = crate::state::PHASES
        .iter()
        .map(|n| crate::state::PhaseState {
            name: n.to_string(),
            status: Status::Pending,
            started_at: None,
            finished_at: None,
            error: None,
        })
        .collect();
    let steps = man
        .m
        .components
        .iter()
        .map(|c| (c, fingerprint(c, target)))
        .map(|(c, (fp, art))| crate::state::Step {
            id: c.id.clone(),
            kind: c.kind.name().to_string(),
            status: Status::Pending,
            optional: c.optional,
            reason: None,
            bytes_done: 0,
            bytes_total: 0,
            version: c.version.clone(),
            capability: c.unlocks.as_ref().map(|u| u.capability.clone()),
            finished_at: None,
            unlocked: Vec::new(),
            files: owned_paths(c),
            fingerprint: Some(fp),
            artifact: art,
            undo: c.uninstall.clone(),
            cached: Vec::new(),
            hub: Vec::new(),
            failed_as: None,
        })
        .collect();
    (phases, steps)
}

/// Run phase `name` with bookkeeping. Idempotent: a done phase is a no-op.
pub fn run(name: &str, ctx: &mut Ctx, owner: Option<&Owner>) -> Result<()> {
    crate::state::check_owner(&ctx.st, owner)?;
    if ctx.st.phase(name).is_some_and(|p| p.status == Status::Done) {
        crate::say!(
            "[{}/{}] {name}: done earlier",
            crate::state::phase_index(name).map(|i| i + 1).unwrap_or(0),
            crate::state::PHASES.len()
        );
        return Ok(());
    }
    ctx.rep.set_bytes(ctx.done_bytes(), ctx.total_bytes());
    if let Some(p) = ctx.st.phase_mut(name) {
        p.status = Status::Running;
        p.started_at = Some(fsutil::now_rfc3339());
        p.error = None;
    }
    ctx.st.status = InstallStatus::Running;
    ctx.save()?;
    ctx.rep.phase_started();
    let res = match name {
        "preflight" => preflight::run(ctx),
        "detect" => detect::run(ctx),
        "plan" => plan_phase(ctx),
        "server" => server::run(ctx),
        "models" => models::run(ctx),
        "workers" => workers::run(ctx),
        "extras" => extras::run(ctx),
        "configure" => configure::run(ctx),
        "validate" => validate::run(ctx),
        other => Err(Error::new(
            Code::Usage,
            format!(
                "unknown phase {other:?} (phases: {})",
                crate::state::PHASES.join(", ")
            ),
        )),
    };
    match res {
        Ok(msg) => {
            if let Some(p) = ctx.st.phase_mut(name) {
                p.status = Status::Done;
                p.finished_at = Some(fsutil::now_rfc3339());
            }
            ctx.save()?;
            ctx.rep.phase_finished("done", &msg);
            Ok(())
        }
        Err(e) => {
            let interrupted = e.code == Code::Interrupted;
            if let Some(p) = ctx.st.phase_mut(name) {
                p.status = if interrupted {
                    Status::Pending
                } else {
                    Status::Failed
                };
                p.error = Some(crate::out::bounded(&e.msg, MAX_REASON).into_owned());
            }
            // Steps left running go back to pending: they will run again.
            for s in ctx
                .st
                .steps
                .iter_mut()
                .filter(|s| s.status == Status::Running)
            {
                s.status = Status::Pending;
            }
            ctx.st.status = if interrupted {
                InstallStatus::Interrupted
            } else {
                InstallStatus::Failed
            };
            ctx.st.exit_code = Some(e.code.as_i32());
            // The state write must not hide the real error.
            if let Err(se) = ctx.save() {
                crate::say!("onramp: warning: {}", se.msg);
            }
            // The run's one terminal event comes from `finish`, which
            // install.sh calls after any phase ends the run.
            ctx.rep
                .phase_finished(if interrupted { "interrupted" } else { "failed" }, "");
            Err(e)
        }
    }
}

/// The plan phase: skip what has no build here, then print the plan.
fn plan_phase(ctx: &mut Ctx) -> Result<String> {
    let noop: Vec<String> = ctx
        .plan
        .iter()
        .filter(|p| p.no_build)
        .map(|p| p.id.clone())
        .collect();
    for id in noop {
        if ctx
            .st
            .step(&id)
            .is_some_and(|s| s.status == Status::Pending)
        {
            let mut why = format!("{} {}", crate::state::NO_BUILD, ctx.target);
            if let Some(ch) = ctx
                .man
                .chosen
                .choices
                .get(&id)
                .filter(|c| c.variant.is_none())
            {
                why.push_str(&format!(": no variant fits this machine ({})", ch.why));
            }
            ctx.finish_step(&id, Status::Skipped, Some(why))?;
        }
    }
    let found = |w: &crate::manifest::Want| {
        (ctx.cache.lookup(w).is_none())
            .then(|| crate::download::found_in(&ctx.opts.reuse, w))
            .flatten()
    };
    for line in crate::plan::describe(&ctx.man, &ctx.plan, &ctx.target, &found) {
        ctx.rep.info(&line);
    }
    let n = ctx.plan.iter().filter(|p| !p.no_build).count();
    Ok(format!("{n} components planned"))
}

impl Ctx {
    /// Turn a component's outcome into its step status. Interruption, a full
    /// disk and an unwritable state stop the install; anything else fails
    /// only this component.
    pub fn record(&mut self, id: &str, res: Result<Option<String>>) -> Result<()> {
        match res {
            Ok(msg) => {
                self.st.step_mut(id)?.failed_as = None;
                self.finish_step(id, Status::Done, msg)
            }
            Err(e) if matches!(e.code, Code::Interrupted | Code::Disk | Code::State) => Err(e),
            Err(e) => {
                let as_auth = (e.code == Code::Auth).then(|| e.code.name().to_string());
                self.st.step_mut(id)?.failed_as = as_auth;
                self.finish_step(id, Status::Failed, Some(e.msg))
            }
        }
    }

    /// Make sure a verified copy of `p`'s artifact is in the cache.
    pub fn fetch(&mut self, p: &Planned) -> Result<PathBuf> {
        let want = p
            .want
            .as_ref()
            .ok_or_else(|| Error::new(Code::Internal, format!("{} has no artifact", p.id)))?;
        let path = self.cache.ensure(want, &self.opts, &self.rep)?;
        let size = want.size;
        let step = self.st.step_mut(&p.id)?;
        step.bytes_done = size;
        step.bytes_total = size;
        Ok(path)
    }

    /// Unpack an archive into `dir` (relative to the prefix), replacing what
    /// was there only once the new tree is complete.
    pub fn unpack_into(&mut self, p: &Planned, archive: &std::path::Path, dir: &str) -> Result<()> {
        let kind = p
            .unpack
            .ok_or_else(|| Error::new(Code::Internal, format!("{} is not an archive", p.id)))?;
        let dest = self.prefix.join(dir);
        let parent = dest.parent().unwrap_or(&self.prefix).to_path_buf();
        fsutil::mkdirs(&self.prefix)?;
        crate::beneath::mkdirs_above(&self.prefix, dir)?;
        fsutil::remove_orphans(&parent);
        let staging = fsutil::temp_beside(&dest);
        let sha = p.want.as_ref().map(|w| w.sha256.as_str());
        let mut limits = crate::archive::Limits::for_file(archive, p.unpacked_size, sha);
        limits.strip = p.strip;
        if let Err(e) = crate::archive::extract(archive, kind, &staging, &limits) {
            crate::fsutil::remove_tree(&staging);
            return Err(e);
        }
        fsutil::replace_dir(&staging, &dest)
    }
}
