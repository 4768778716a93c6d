//! The install state: one JSON file per prefix, written only here. Its
//! records of what onramp made outside its own files (a started service's
//! `Record`, an exposed command's `Link`, a shell profile's PATH `Block`)
//! are defined here too; `service` and `expose` fill them in.
//!
//! Location: `$ONRAMP_STATE_DIR` or `$XDG_STATE_HOME/onramp` (default
//! `~/.local/state/onramp`), then `installs/<hash of prefix>/state.json`, so
//! it never depends on the prefix existing. Every write is atomic (temp,
//! fsync, rename, fsync dir) and happens under an exclusive `fd-lock` on
//! `lock` beside it. The lock fd is close-on-exec (std opens files with
//! O_CLOEXEC), so a child never keeps it. An install is *owned* by the
//! install.sh process that began it; another live owner means "refuse".

use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const SCHEMA: u32 = 1;

/// Phases in their fixed order; the same names as install.sh and README.
pub const PHASES: [&str; 9] = [
    "preflight",
    "detect",
    "plan",
    "server",
    "models",
    "workers",
    "extras",
    "configure",
    "validate",
];

pub fn phase_index(name: &str) -> Option<usize> {
    PHASES.iter().position(|p| *p == name)
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Running,
    Done,
    Failed,
    Skipped,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum InstallStatus {
    Running,
    Complete,
    Failed,
    Interrupted,
    /// `onramp uninstall` began and has not finished: run it again.
    Uninstalling,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub pid: u32,
    /// Process start time in clock ticks since boot (guards against PID reuse).
    pub start: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseState {
    pub name: String,
    pub status: Status,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    pub kind: String,
    pub status: Status,
    pub optional: bool,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub version: Option<String>,
    pub capability: Option<String>,
    pub finished_at: Option<String>,
    /// More capabilities it unlocked (a worker's catalog entry lists them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unlocked: Vec<String>,
    /// Files it installed, relative to the prefix (workers), so an
    /// uninstall can remove exactly them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// The component's definition for this target, hashed: an upgrade
    /// keeps a done step whose fingerprint the new manifest repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The sha256 of the artifact it installs here (to say why it changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// An extra's `uninstall` command, kept so an uninstall needs no manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Vec<String>>,
    /// Other cache entries it used (a worker's sources), by sha256, so
    /// `cache prune` keeps what a rebuild needs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cached: Vec<String>,
    /// What it added to the Hugging Face hub cache (outside the prefix),
    /// each noted before it is made, so an uninstall removes exactly them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hub: Vec<HubChange>,
    /// Why it failed, as an exit code name, where that is not a plain
    /// failure (`auth`: the install ends with that code when it is every
    /// required failure's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_as: Option<String>,
}

/// One change to the Hugging Face hub cache, by absolute path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubChange {
    pub path: String,
    /// `dir`, `blob`, `link` or `ref`.
    pub made: String,
    /// A `ref` file's content before onramp wrote it (put back on uninstall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<String>,
}

impl Step {
    /// Final for good: done, or skipped for a reason a rerun cannot change
    /// (no build for this target).
    pub fn settled(&self) -> bool {
        match self.status {
            Status::Done => true,
            Status::Skipped => self
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with(NO_BUILD)),
            _ => false,
        }
    }
}

/// How the reason of a step skipped for want of a build starts.
pub const NO_BUILD: &str = "no build for";

/// The phase that installs a step of this kind (`Step::kind`).
pub fn phase_of_kind(kind: &str) -> &'static str {
    match kind {
        "server" => "server",
        "model" => "models",
        "worker" => "workers",
        _ => "extras",
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decided {
    pub os: Option<String>,
    pub arch: Option<String>,
    pub target: Option<String>,
    pub gpu: Option<String>,
    pub prefix: Option<String>,
    pub cache_dir: Option<String>,
    /// What the first run found (`hardware::probe`); a resume plans with it.
    #[serde(default)]
    pub hardware: Option<crate::machine::Hardware>,
    #[serde(default)]
    pub profile: Option<String>,
    /// Component -> the variant installed.
    #[serde(default)]
    pub variants: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub schema: u32,
    pub kit_version: String,
    pub plan_id: String,
    pub stack: String,
    pub stack_version: String,
    pub manifest: String,
    pub prefix: String,
    pub started_at: String,
    pub started_unix: u64,
    pub updated_at: String,
    pub updated_unix: u64,
    pub status: InstallStatus,
    pub exit_code: Option<i32>,
    pub owner: Option<Owner>,
    pub decided: Decided,
    pub phases: Vec<PhaseState>,
    pub steps: Vec<Step>,
    /// Files onramp wrote into the prefix (configure), path -> sha256 written.
    pub managed_files: BTreeMap<String, String>,
    /// Services onramp started, component id -> how to find and stop it.
    #[serde(default)]
    pub services: BTreeMap<String, Record>,
    /// Directories the install created for the prefix (the prefix and its
    /// missing parents, outermost first), noted before they were made: an
    /// uninstall removes those it leaves empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<String>,
    /// The configure directories (relative), noted before they are made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_dirs: Vec<String>,
    /// The links to exposed commands onramp made (`expose`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed: Vec<Link>,
    /// The PATH blocks onramp added to shell profiles (`--modify-path`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_blocks: Vec<Block>,
    /// Done components whose capability waits for a service (theirs, or
    /// one they depend on) to be ready: announced, and listed in
    /// `capabilities.json` and the summary, only then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaiting_service: Vec<String>,
}

/// What the state keeps of a started service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// `systemd` or `pidfile`.
    pub manager: String,
    /// The unit name, or the pid file's path.
    pub handle: String,
    /// What it ran when it was started: a different one means restart.
    pub fingerprint: String,
    /// Directories onramp made for its unit (`~/.config/systemd/user` and
    /// parents that did not exist), removed with it when they are empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<String>,
}

/// A link onramp made: where, and what it points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub path: String,
    pub target: String,
}

/// A block onramp added to a shell profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub file: String,
    /// The file did not exist: it goes when the block leaves it empty.
    pub created: bool,
    /// The file did not end with a newline: one was added before the block.
    #[serde(default)]
    pub added_newline: bool,
}

impl State {
    pub fn phase(&self, name: &str) -> Option<&PhaseState> {
        self.phases.iter().find(|p| p.name == name)
    }

    pub fn phase_mut(&mut self, name: &str) -> Option<&mut PhaseState> {
        self.phases.iter_mut().find(|p| p.name == name)
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub fn step_mut(&mut self, id: &str) -> Result<&mut Step> {
        self.steps
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| Error::new(Code::Internal, format!("state has no step {id:?}")))
    }

    /// Why this state cannot be what onramp wrote for `ids` (the manifest's
    /// component ids, when the plan id says it is that manifest's): phases
    /// missing or out of order, steps missing, repeated or unknown. A state
    /// like that would fail every run ("state has no step"), so it is set
    /// aside like one that does not parse.
    pub fn inconsistency(&self, ids: Option<&[&str]>) -> Option<String> {
        let names: Vec<&str> = self.phases.iter().map(|p| p.name.as_str()).collect();
        if names != PHASES {
            return Some(format!("its phases are {names:?}, not onramp's nine"));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = self.steps.iter().find(|s| !seen.insert(s.id.as_str())) {
            return Some(format!("step {:?} appears twice", dup.id));
        }
        if let Some(ids) = ids {
            let want: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
            if seen != want {
                let missing: Vec<&&str> = want.difference(&seen).collect();
                let extra: Vec<&&str> = seen.difference(&want).collect();
                return Some(format!(
                    "its steps do not match the manifest's components (missing {missing:?}, unknown {extra:?})"
                ));
            }
        }
        None
    }

    /// How many phases, from the first, are done with every step of theirs
    /// settled: "completed through phase N".
    pub fn completed_through(&self) -> usize {
        PHASES
            .iter()
            .take_while(|p| {
                self.phase(p).is_some_and(|s| s.status == Status::Done)
                    && self
                        .steps
                        .iter()
                        .filter(|s| phase_of_kind(&s.kind) == **p)
                        .all(Step::settled)
            })
            .count()
    }

    /// Steps a rerun must run again: failed ones (optional too) and those
    /// skipped because something they depend on failed.
    pub fn unsettled(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| !s.settled())
    }

    /// Prepare a rerun: every unsettled step goes back to pending, and so do
    /// the phases that hold one, and validate (its checks of them). A
    /// complete install gets configure and validate again (they check and
    /// change nothing that is as it should be). Returns what will be retried,
    /// one line each ("model-chat failed earlier: retry it").
    /// Send steps `ids` back to pending, with their phases and the phases
    /// `also` names, so the next resume installs them again (what doctor
    /// --repair and a rerun's check of placed models do).
    pub fn reopen(&mut self, ids: &[String], also: &[&str]) {
        let mut phases: Vec<&'static str> = Vec::new();
        for s in self.steps.iter_mut().filter(|s| ids.contains(&s.id)) {
            s.status = Status::Pending;
            s.reason = None;
            s.finished_at = None;
            phases.push(phase_of_kind(&s.kind));
        }
        for p in self
            .phases
            .iter_mut()
            .filter(|p| phases.contains(&p.name.as_str()) || also.contains(&p.name.as_str()))
        {
            p.status = Status::Pending;
        }
    }

    pub fn prepare_rerun(&mut self) -> Vec<String> {
        let mut said = Vec::new();
        let mut phases: Vec<&'static str> = Vec::new();
        for s in self.steps.iter_mut().filter(|s| !s.settled()) {
            // Steps that never ran simply run; only a failure or a skip is news.
            let how = match s.status {
                Status::Failed => Some("failed earlier".to_string()),
                Status::Skipped => Some(format!(
                    "was skipped ({})",
                    s.reason
                        .as_deref()
                        .unwrap_or("a dependency was not installed")
                )),
                _ => None,
            };
            if let Some(how) = how {
                said.push(format!("{} {how}: retry it", s.id));
            }
            phases.push(phase_of_kind(&s.kind));
            s.status = Status::Pending;
            s.reason = None;
            s.finished_at = None;
        }
        // Configure derives from what the phases before it installed (links
        // on PATH, capabilities, services): a rerun that installs anything,
        // or checks a complete install, runs it again (it is idempotent).
        if !phases.is_empty() || self.status == InstallStatus::Complete {
            phases.push("configure");
        }
        phases.push("validate");
        for p in self
            .phases
            .iter_mut()
            .filter(|p| phases.contains(&p.name.as_str()))
        {
            p.status = Status::Pending;
            p.error = None;
        }
        said
    }
}

/// Where state lives, and the open lock on it.
pub struct Store {
    pub dir: PathBuf,
    pub file: PathBuf,
    /// The lock file, locked; closing it releases the lock.
    _lock: File,
}

/// The state directory root.
///
/// As root, a root another user could change is refused here (exit 13),
/// so every command that reads state (install, doctor, uninstall, cache,
/// services, repair) is checked before it reads what decides what runs or
/// what is removed.
pub fn root(override_dir: Option<&Path>) -> Result<PathBuf> {
    let root = fsutil::onramp_dir(
        override_dir,
        "ONRAMP_STATE_DIR",
        "XDG_STATE_HOME",
        ".local/state/onramp",
        "state file",
    )?;
    crate::trust::check(&root, crate::trust::STATE_FIX)?;
    Ok(root)
}

/// Every install recorded under `root`, read without taking their locks
/// (for `cache` and `uninstall`, which only read them): its directory and
/// its state. One that does not parse is skipped.
pub fn all(root: &Path) -> Vec<(PathBuf, State)> {
    let Ok(rd) = std::fs::read_dir(root.join("installs")) else {
        return Vec::new();
    };
    let mut v: Vec<(PathBuf, State)> = rd
        .flatten()
        .filter_map(|e| Some((e.path(), peek(&e.path())?)))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The state in the install directory `dir`, read without its lock and
/// without setting aside one that does not parse (None then): for the
/// commands that only look (`plan`, `doctor`, `cache`, `uninstall`).
pub fn peek(dir: &Path) -> Option<State> {
    let bytes = std::fs::read(dir.join("state.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The per-prefix directory (exists or not).
pub fn dir_for(root: &Path, prefix: &Path) -> PathBuf {
    let h = fsutil::sha256_bytes(prefix.as_os_str().as_encoded_bytes());
    root.join("installs").join(&h[..16])
}

impl Store {
    /// Create the directory and take the exclusive lock, or say who holds it.
    pub fn lock(dir: &Path) -> Result<Store> {
        // The state root (above installs/<hash>) notes what it created.
        if let Some(root) = dir.parent().and_then(Path::parent) {
            fsutil::make_root(root, crate::trust::STATE_FIX).map_err(|e| match e.code {
                Code::Unsafe | Code::Disk => e,
                _ => Error::new(Code::State, e.msg),
            })?;
        }
        crate::fsutil::dir(
            dir,
            crate::fsutil::Last::Private,
            Some(crate::trust::STATE_FIX),
        )
        .map_err(|e| match e.code {
            Code::Unsafe => e,
            _ => Error::new(Code::State, e.msg),
        })?;
        let lock_path = dir.join("lock");
        let f = crate::fault::io("create", &lock_path, || {
            crate::fsutil::open_lock(&lock_path)
        })
        .map_err(|e| {
            Error::new(
                Code::State,
                format!("cannot open lock {}: {e}", lock_path.display()),
            )
        })?;
        // A holder that was just killed releases the lock only when the kernel
        // has torn it down: wait a moment before calling it busy.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let tried = crate::fault::io("lock", &lock_path, || Ok(()))
                .and_then(|()| crate::sys::try_lock(&f));
            match tried {
                Ok(true) => break,
                // Another live process holds it: that, and only that, is
                // "another onramp is working on this install".
                Ok(false) => {}
                Err(e) => {
                    return Err(Error::new(
                        Code::State,
                        format!("cannot lock {}: {e}", lock_path.display()),
                    ));
                }
            }
            if std::time::Instant::now() >= deadline || crate::signal::interrupted() {
                let mut s = String::new();
                let _ = File::open(&lock_path).and_then(|mut f| f.read_to_string(&mut s));
                let who = s.trim();
                let who = if who.is_empty() {
                    "another process".to_string()
                } else {
                    format!("PID {who}")
                };
                return err(
                    Code::LockHeld,
                    format!(
                        "another onramp ({who}) is working on this install right now; wait for it to finish or stop it"
                    ),
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let mut f = f;
        let _ = f.set_len(0);
        let _ = f.rewind();
        let _ = writeln!(f, "{}", std::process::id());
        fsutil::remove_orphans(dir);
        Ok(Store {
            dir: dir.to_path_buf(),
            file: dir.join("state.json"),
            _lock: f,
        })
    }

    /// Read the state. A file that does not parse, or of another schema, is
    /// moved aside as `state.json.<time>.corrupt` and reported; `None` then.
    pub fn load(&self) -> Result<Option<State>> {
        let bytes = match std::fs::read(&self.file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::new(
                    Code::State,
                    format!("cannot read state {}: {e}", self.file.display()),
                ));
            }
        };
        match serde_json::from_slice::<State>(&bytes) {
            Ok(s) if s.schema == SCHEMA => match s.inconsistency(None) {
                None => Ok(Some(s)),
                Some(why) => self.set_aside(&why).map(|()| None),
            },
            res => {
                let why = match res {
                    Ok(s) => format!("schema {} (this onramp reads {SCHEMA})", s.schema),
                    Err(e) => e.to_string(),
                };
                self.set_aside(&why).map(|()| None)
            }
        }
    }

    /// Keep a state that cannot be used as `state.json.<time>.corrupt`, say
    /// so, and let the install start fresh.
    pub fn set_aside(&self, why: &str) -> Result<()> {
        let aside = self
            .dir
            .join(format!("state.json.{}.corrupt", fsutil::now_unix()));
        crate::fault::io("rename", &aside, || std::fs::rename(&self.file, &aside)).map_err(
            |e| {
                Error::new(
                    Code::State,
                    format!(
                        "cannot move unreadable state {} aside: {e}",
                        self.file.display()
                    ),
                )
            },
        )?;
        let _ = fsutil::sync_dir(&self.dir);
        crate::say!(
            "onramp: warning: the saved state could not be used ({why}); kept it as {} and starting fresh",
            aside.display()
        );
        Ok(())
    }

    pub fn save(&self, st: &mut State) -> Result<()> {
        st.updated_unix = fsutil::now_unix();
        st.updated_at = fsutil::rfc3339(st.updated_unix);
        let mut data = serde_json::to_vec_pretty(st)
            .map_err(|e| Error::new(Code::Internal, format!("cannot encode state: {e}")))?;
        data.push(b'\n');
        fsutil::write_atomic(&self.file, &data, 0o600).map_err(|e| {
            Error::new(
                if e.code == Code::Disk {
                    Code::Disk
                } else {
                    Code::State
                },
                format!("cannot save install state: {}", e.msg),
            )
        })
    }
}

/// Start time of process `pid` in clock ticks, from /proc; `None` if it is
/// gone, or dead and not yet reaped (a zombie: a killed installer whose
/// parent died with it lingers so until init reaps it).
pub fn process_start(pid: u32) -> Option<u64> {
    crate::sys::process_start(pid)
}

pub fn owner_of(pid: u32) -> Result<Owner> {
    match process_start(pid) {
        Some(start) => Ok(Owner { pid, start }),
        None => err(Code::Usage, format!("--owner {pid}: no such process")),
    }
}

/// Refuse when a different, live process owns the install.
pub fn check_owner(st: &State, me: Option<&Owner>) -> Result<()> {
    let Some(o) = &st.owner else { return Ok(()) };
    if rival(o, me, process_start(o.pid)) {
        return err(
            Code::LockHeld,
            format!(
                "another install of {} is running (PID {}); wait for it to finish or stop it (kill {})",
                st.prefix, o.pid, o.pid
            ),
        );
    }
    Ok(())
}

/// Is the recorded owner `o` another live install? Alive means its PID now
/// runs with the start time recorded (`now_start`). The caller's own PID is
/// never a rival: it is the same process, or a dead owner's PID reused (a
/// start time misread under an I/O error must not make the caller a rival
/// of itself).
fn rival(o: &Owner, me: Option<&Owner>, now_start: Option<u64>) -> bool {
    me.is_none_or(|m| m.pid != o.pid) && now_start == Some(o.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_another_live_process_is_a_rival() {
        let o = Owner {
            pid: 10,
            start: 500,
        };
        let other = Owner { pid: 11, start: 7 };
        // another installer, alive with the recorded start
        assert!(rival(&o, Some(&other), Some(500)));
        assert!(rival(&o, None, Some(500)));
        // it is gone, or its PID now runs something else
        assert!(!rival(&o, Some(&other), None));
        assert!(!rival(&o, Some(&other), Some(501)));
        // the caller itself, even with its own start time misread
        let me_misread = Owner { pid: 10, start: 0 };
        assert!(!rival(&o, Some(&me_misread), Some(500)));
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("onramp-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    #[cfg(unix)] // runs sh, true or bash
    fn a_zombie_owner_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Exited but not reaped: a zombie until wait().
        for _ in 0..200 {
            let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if st.contains(") Z ") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(process_start(pid), None);
        child.wait().unwrap();
        assert!(process_start(std::process::id()).is_some());
    }

    #[test]
    fn corrupt_state_is_kept_aside() {
        let d = tmp("corrupt");
        let s = Store::lock(&d).unwrap();
        std::fs::write(&s.file, b"{\"schema\":1, trunc").unwrap();
        assert!(s.load().unwrap().is_none());
        assert!(!s.file.exists());
        let aside: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".corrupt"))
            .collect();
        assert_eq!(aside.len(), 1);
        drop(s);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    #[cfg(unix)] // runs sh, true or bash
    fn process_start_of_self_and_of_a_dead_pid() {
        assert!(process_start(std::process::id()).is_some());
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        assert!(process_start(pid).is_none());
    }

    #[test]
    #[cfg(unix)] // runs sh, true or bash
    fn lock_fd_is_close_on_exec() {
        let d = tmp("cloexec");
        let s = Store::lock(&d).unwrap();
        // A child's view of its open fds must not include our lock file.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("ls -l /proc/$$/fd")
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(
            !listing.contains(&*d.join("lock").to_string_lossy()),
            "{listing}"
        );
        drop(s);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
