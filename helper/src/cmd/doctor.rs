//! `doctor`: is an install ready? Read-only: every required component
//! done, every file it placed present and unchanged (its stamps: a stat, or
//! a re-hash with `--deep`), every config file there, every service
//! running, every health check passing. Prints `ready`, or `not ready` and
//! each reason in plain words (exit 15, `not_ready`). `--repair` marks
//! what is missing or changed, and a service that is down, to be put back;
//! the installer's next run does it from the cache, touching nothing else
//! (`install.sh --check --repair` does both).

use super::args::{Command, Opt, Parser, Place, Stack};
use crate::cmd::{resolve_prefix, trusted_keys};
use crate::error::{Code, Result};
use crate::manifest::{self, Loaded};
use crate::out;
use crate::state::{self, InstallStatus, State, Status, Store};
use std::path::Path;
use std::time::Duration;

/// What doctor found.
#[derive(Default)]
struct Report {
    /// Why it is not ready, one reason each.
    problems: Vec<String>,
    /// Worth saying, not a reason (an optional extra failed, a config file
    /// the user changed).
    notes: Vec<String>,
    /// Components whose files must be placed again.
    replace: Vec<String>,
    /// Configure must run again (a config file is missing, a service down).
    configure: bool,
}

/// `onramp doctor`.
pub struct Doctor {
    stack: Stack,
    place: Place,
    deep: bool,
    repair: bool,
}

const DEEP: Opt = Opt {
    name: "--deep",
    value: "",
    help: "re-hash every recorded file instead of comparing size and time",
};
const REPAIR: Opt = Opt {
    name: "--repair",
    value: "",
    help: "mark what is missing or changed to be put back by the installer's next run",
};

impl Command for Doctor {
    const NAME: &'static str = "doctor";
    const USAGE: &'static str = "--prefix DIR [--manifest FILE] [--deep] [--repair]";
    const ABOUT: &'static str = "Say whether an install is ready, changing nothing: every required component done, every file it placed present and unchanged (size and time; --deep re-hashes), config files there, services running, health checks passing. Prints `ready` (exit 0) or `not ready` and each reason (exit 15). --repair marks what is missing or changed to be put back by the installer's next run, from the cache (install.sh --check --repair does both).";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(Doctor {
            stack: Stack::parse(p)?,
            place: Place::parse(p)?,
            deep: p.switch(&DEEP),
            repair: p.switch(&REPAIR),
        })
    }
    fn run(self) -> Result<i32> {
        doctor(&self)
    }
}

fn doctor(f: &Doctor) -> Result<i32> {
    let keys = trusted_keys(&f.stack)?;
    let given = match &f.stack.manifest {
        Some(m) => Some(manifest::load_signed(
            m,
            f.stack.manifest_url.as_deref(),
            &keys,
        )?),
        None => None,
    };
    let prefix = resolve_prefix(f.place.prefix.as_deref(), given.as_ref())?;
    let root = state::root(f.place.state_dir.as_deref())?;
    let dir = state::dir_for(&root, &prefix);
    if !dir.join("state.json").is_file() {
        out::stdout_line(&format!(
            "not ready: nothing is installed in {} (no install recorded in {})",
            prefix.display(),
            root.display()
        ));
        return Ok(Code::NotReady.as_i32());
    }
    // Read-only unless repairing: only a repair takes the lock and writes.
    let store = if f.repair {
        Some(Store::lock(&dir)?)
    } else {
        None
    };
    let Some(mut st) = state::peek(&dir) else {
        out::stdout_line(&format!(
            "not ready: the state of {} ({}) cannot be read or does not parse; run the installer again (it sets a bad one aside)",
            prefix.display(),
            dir.join("state.json").display()
        ));
        return Ok(Code::NotReady.as_i32());
    };
    state::check_owner(&st, None)?;
    // The health checks come from the manifest it was installed from.
    let man = match given {
        Some(m) => Ok(m),
        None => manifest::load_signed(Path::new(&st.manifest), None, &keys),
    };
    let mut r = Report::default();
    check_state(&st, &prefix, &dir, f.deep, &mut r)?;
    match &man {
        Ok(m) if m.m.name == st.stack => health(m, &st, &prefix, &mut r)?,
        Ok(m) => r.notes.push(format!(
            "health checks not run: the manifest is for {}, the install is {}",
            m.m.name, st.stack
        )),
        Err(e) => r
            .notes
            .push(format!("health checks not run: {}; pass --manifest", e.msg)),
    }
    out::stdout_line(&format!(
        "{} {} in {}",
        st.stack,
        st.stack_version,
        prefix.display()
    ));
    for n in &r.notes {
        out::stdout_line(&format!("  note: {n}"));
    }
    for p in &r.problems {
        out::stdout_line(&format!("  - {p}"));
    }
    if r.problems.is_empty() {
        out::stdout_line("ready");
        return Ok(0);
    }
    out::stdout_line(&format!("not ready: {} problem(s)", r.problems.len()));
    if let Some(store) = store {
        mark(&mut st, &r);
        store.save(&mut st)?;
        out::stdout_line(&format!(
            "repair: {} will be put back from the cache by the installer's next run (install.sh --check --repair runs it)",
            if r.replace.is_empty() {
                "the services and config files".to_string()
            } else {
                r.replace.join(", ")
            }
        ));
    }
    Ok(Code::NotReady.as_i32())
}

/// The state's own word, each component's files, the config files and
/// the services.
fn check_state(st: &State, prefix: &Path, dir: &Path, deep: bool, r: &mut Report) -> Result<()> {
    match st.status {
        InstallStatus::Complete => {}
        InstallStatus::Uninstalling => r
            .problems
            .push("an uninstall of it did not finish; run the uninstall again".into()),
        s => r.problems.push(format!(
            "the install did not finish ({}); run the installer again to resume",
            match s {
                InstallStatus::Running => "it is running or was killed",
                InstallStatus::Failed => "it failed",
                _ => "it was interrupted",
            }
        )),
    }
    for s in &st.steps {
        if s.settled() && s.status != Status::Done {
            continue;
        }
        if s.status != Status::Done {
            let why = s.reason.as_deref().unwrap_or("not installed yet");
            let line = format!("{} is {} ({why})", s.id, s.status.name());
            if s.optional {
                r.notes.push(format!("optional {line}"));
            } else {
                r.problems.push(line);
            }
            continue;
        }
        let findings = crate::phase::placed_findings(s, dir, prefix, deep)?;
        if !findings.is_empty() {
            r.problems.push(format!(
                "{}: {}",
                s.id,
                crate::phase::describe_findings(&findings)
            ));
            r.replace.push(s.id.clone());
        }
    }
    for (path, sha) in &st.managed_files {
        let p = prefix.join(path);
        match crate::fsutil::sha256_file(&p) {
            Ok(h) if &h == sha => {}
            Ok(_) => r.notes.push(format!(
                "{path} was changed after onramp wrote it (yours now: doctor and repair leave it)"
            )),
            Err(_) => {
                r.problems.push(format!("config file {path} is missing"));
                r.configure = true;
            }
        }
    }
    for (id, rec) in &st.services {
        if !crate::service::running(rec) {
            let log = crate::service::paths(dir, id).1;
            r.problems.push(format!(
                "service {id} is not running ({} {}); its log: {}",
                rec.manager,
                rec.handle,
                crate::service::log_tail(&log)
            ));
            r.configure = true;
        }
    }
    Ok(())
}

/// Each health check of a component that is done, once (no retries: a
/// doctor reports what is, now).
fn health(man: &Loaded, st: &State, prefix: &Path, r: &mut Report) -> Result<()> {
    let target = st
        .decided
        .target
        .clone()
        .unwrap_or_else(crate::platform::target);
    let env = crate::phase::command_env(&man.m.env, prefix, &target, st);
    for h in &man.m.health_checks {
        crate::signal::check()?;
        if st
            .step(&h.component)
            .is_none_or(|s| s.status != Status::Done)
        {
            continue;
        }
        let timeout = Duration::from_secs(h.timeout_s.unwrap_or(10));
        let tries = h.retries.unwrap_or(1).clamp(1, 3);
        if let Err(why) = crate::phase::validate::retry(tries, || {
            crate::phase::validate::probe_in(h, prefix, &env, timeout)
        }) {
            r.problems
                .push(format!("health check {} fails: {why}", h.name));
        }
    }
    Ok(())
}

/// Send what must be put back to pending: its phase (and validate) run
/// again on the next resume and place it from the cache.
fn mark(st: &mut State, r: &Report) {
    let also: &[&str] = if r.configure {
        &["configure", "validate"]
    } else {
        &["validate"]
    };
    st.reopen(&r.replace, also);
}
