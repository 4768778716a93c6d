//! Who runs recipe code, and making sure nothing it starts outlives it.
//!
//! As root, recipes (builds and `--eval`) run as a build user that nothing
//! else on the machine runs as, the way Nix's build users work: by default
//! a uid of onramp's own range (`BASE_UID` and up) with no passwd entry, no
//! login, no service, outside every /etc/subuid range a container could
//! map; one uid per concurrent build, taken with a lock under /run/onramp.
//! Every process of that uid is killed before a build starts (leftovers of
//! an onramp that was killed) and after each recipe function, so a
//! `setsid sleep &` or a daemon does not survive the build or its timeout.
//! `--build-user NAME` (or `ONRAMP_BUILD_USER`) picks an account instead;
//! it is refused while any process runs as it (a service account such as
//! `nobody`, shared with nginx workers, is not a private build user).
//!
//! Not as root, recipes run as the user; onramp makes itself a child
//! subreaper, so whatever a build leaves running is re-parented to it and
//! killed as one of its descendants.

use crate::error::{Code, Error, Result, err};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The first uid (and gid) of onramp's build users: above systemd's
/// container range (524288-1879048191), below 2^31 and below the "foreign"
/// range 0x7FFE0000, so no distribution, login or container hands it out.
pub const BASE_UID: u32 = 0x7000_0000;
/// How many builds may run at once (one uid each).
const SLOTS: u32 = 32;

/// A build user taken for one build (or one `--eval`); the lock on it is
/// released when this is dropped.
pub struct BuildUser {
    pub uid: u32,
    pub gid: u32,
    /// For messages: the account name, or `uid N`.
    pub name: String,
    _lock: File,
}

impl BuildUser {
    pub fn ids(&self) -> (u32, u32) {
        (self.uid, self.gid)
    }

    /// Kill every process running as this user; an error names the ones
    /// that would not go.
    pub fn kill_all(&self) -> Result<()> {
        kill_uid(self.uid, self.gid)
    }
}

fn passwd() -> Vec<(String, u32, u32)> {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((
                f.first()?.to_string(),
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
            ))
        })
        .collect()
}

fn group_ids() -> Vec<u32> {
    std::fs::read_to_string("/etc/group")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').nth(2)?.parse().ok())
        .collect()
}

/// Is `id` inside a range of /etc/subuid or /etc/subgid (a container's)?
fn in_sub_ranges(id: u32) -> bool {
    ["/etc/subuid", "/etc/subgid"].iter().any(|f| {
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .any(|l| {
                let v: Vec<&str> = l.split(':').collect();
                let (Some(Ok(start)), Some(Ok(n))) = (
                    v.get(1).map(|s| s.parse::<u64>()),
                    v.get(2).map(|s| s.parse::<u64>()),
                ) else {
                    return false;
                };
                (start..start + n).contains(&u64::from(id))
            })
    })
}

/// Is `uid` usable here (mapped in this user namespace: a container may map
/// only a few uids)?
fn mapped(uid: u32) -> bool {
    let Ok(map) = std::fs::read_to_string("/proc/self/uid_map") else {
        return true;
    };
    map.lines().any(|l| {
        let v: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        v.len() == 3 && (v[0]..v[0] + v[2]).contains(&u64::from(uid))
    })
}

/// PIDs of live (not zombie) processes whose real, effective or saved uid
/// is `uid`.
pub fn processes_of(uid: u32) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let zombie = status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'));
        let has = status.lines().any(|l| {
            l.strip_prefix("Uid:").is_some_and(|ids| {
                ids.split_whitespace()
                    .take(3)
                    .any(|x| x.parse::<u32>().ok() == Some(uid))
            })
        });
        if has && !zombie {
            out.push(pid);
        }
    }
    out
}

fn pid_list(pids: &[u32]) -> String {
    pids.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Send SIGKILL to every process of `uid`, as that uid: `kill(-1)` reaches
/// exactly the processes the uid could signal, atomically with respect to
/// fork, and a process with a kill pending cannot fork again.
pub fn kill_uid(uid: u32, gid: u32) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        crate::sys::kill_all_of(uid, gid).map_err(|e| {
            Error::new(
                Code::Internal,
                format!("cannot stop the build user's processes: {e}"),
            )
        })?;
        if !Path::new("/proc/self").exists() {
            return Ok(());
        }
        let left = processes_of(uid);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return err(
                Code::Internal,
                format!(
                    "processes of the build user (uid {uid}) would not stop: PID {}",
                    pid_list(&left)
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Where build-user locks live: root's own directory under /run (or the
/// temp dir when there is no /run), checked like every directory root uses.
fn lock_dir() -> Result<PathBuf> {
    let run = PathBuf::from("/run/onramp");
    if Path::new("/run").is_dir()
        && crate::fsutil::dir(&run, crate::fsutil::Last::Private, None).is_ok()
    {
        return Ok(run);
    }
    let tmp = std::env::temp_dir().join("onramp-root-locks");
    crate::fsutil::dir(&tmp, crate::fsutil::Last::Private, None)?;
    Ok(tmp)
}

fn open_lock(dir: &Path, uid: u32) -> Result<File> {
    let p = dir.join(format!("build-user-{uid}.lock"));
    crate::fsutil::open_lock(&p).map_err(|e| Error::io("cannot open", &p, e))
}

fn try_lock(f: &File) -> bool {
    crate::sys::try_lock(f).unwrap_or(false)
}

/// The build user for one build: None when not root (recipes run as the
/// user). `ONRAMP_BUILD_USER` names an account or uid to use instead of
/// onramp's own range.
pub fn acquire() -> Result<Option<BuildUser>> {
    if !crate::fsutil::is_root() {
        return Ok(None);
    }
    let dir = lock_dir()?;
    match std::env::var("ONRAMP_BUILD_USER")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(who) => named(&who, &dir).map(Some),
        None => pooled(&dir).map(Some),
    }
}

fn named(who: &str, dir: &Path) -> Result<BuildUser> {
    let users = passwd();
    let (name, uid, gid) = match who.parse::<u32>() {
        Ok(uid) => users
            .iter()
            .find(|u| u.1 == uid)
            .cloned()
            .unwrap_or((format!("uid {uid}"), uid, uid)),
        Err(_) => users.iter().find(|u| u.0 == who).cloned().ok_or_else(|| {
            Error::new(
                Code::Usage,
                format!("build user {who:?} does not exist (ONRAMP_BUILD_USER / --build-user); give an account name or a uid"),
            )
        })?,
    };
    if uid == 0 || gid == 0 {
        return err(
            Code::Usage,
            format!(
                "build user {name:?} is root; recipes never run as root: choose an unprivileged account"
            ),
        );
    }
    if !mapped(uid) {
        return err(
            Code::Usage,
            format!(
                "build user {name} (uid {uid}) is not mapped in this user namespace; choose a uid the container maps"
            ),
        );
    }
    let lock = open_lock(dir, uid)?;
    let mut said = false;
    while !try_lock(&lock) {
        crate::signal::check()?;
        if !said {
            crate::say!("onramp: waiting for build user {name}: another onramp is building as it");
            said = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let busy = processes_of(uid);
    if !busy.is_empty() {
        return err(
            Code::Usage,
            format!(
                "build user {name} (uid {uid}) has running processes (PID {}); onramp builds as a user nothing else runs as: stop them, or choose another with --build-user (by default onramp uses uids from {BASE_UID} that no account has)",
                pid_list(&busy)
            ),
        );
    }
    Ok(BuildUser {
        uid,
        gid,
        name,
        _lock: lock,
    })
}

fn pooled(dir: &Path) -> Result<BuildUser> {
    let users = passwd();
    let groups = group_ids();
    let free = |id: u32| {
        !users.iter().any(|u| u.1 == id || u.2 == id)
            && !groups.contains(&id)
            && !in_sub_ranges(id)
            && mapped(id)
    };
    if !mapped(BASE_UID) {
        return err(
            Code::Usage,
            format!(
                "onramp's build users (uid {BASE_UID} and up) are not mapped in this user namespace (a container?); pass --build-user NAME with an unprivileged account that nothing else runs as"
            ),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut said = false;
    loop {
        for uid in (BASE_UID..BASE_UID + SLOTS).filter(|id| free(*id)) {
            let lock = open_lock(dir, uid)?;
            if !try_lock(&lock) {
                continue;
            }
            let u = BuildUser {
                uid,
                gid: uid,
                name: format!("onramp build user (uid {uid})"),
                _lock: lock,
            };
            // Nothing but onramp runs as this uid, and we hold its lock:
            // whatever runs now was left by an onramp that was killed.
            u.kill_all()?;
            return Ok(u);
        }
        crate::signal::check()?;
        if Instant::now() >= deadline {
            return err(
                Code::Internal,
                format!("all {SLOTS} onramp build users stayed busy for 10 minutes"),
            );
        }
        if !said {
            crate::say!("onramp: all {SLOTS} build users are busy with other builds; waiting");
            said = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// PIDs of the live descendants of this process.
fn descendants() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut parent: Vec<(i32, i32)> = Vec::new();
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        let Some((_, after)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut f = after.split_whitespace();
        let state = f.next().unwrap_or("");
        let ppid: i32 = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        if state != "Z" && state != "X" {
            parent.push((pid, ppid));
        }
    }
    let mut out: Vec<i32> = Vec::new();
    let mut frontier = vec![me];
    while let Some(p) = frontier.pop() {
        for (c, _) in parent.iter().filter(|(_, pp)| *pp == p) {
            if !out.contains(c) {
                out.push(*c);
                frontier.push(*c);
            }
        }
    }
    out
}

/// Not as root, after a recipe's command ended: kill every process it left
/// behind (this process's descendants) and reap them. Call only when no
/// other child of this process is running.
pub fn kill_descendants() {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = descendants();
        for p in &left {
            crate::sys::kill_process(*p as u32);
        }
        // Reap what died (we are their subreaper).
        crate::sys::reap_exited();
        if left.is_empty() || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_ranges_and_maps_are_read() {
        // Whatever this machine has, uid 0 is mapped wherever we run.
        assert!(mapped(0));
        assert!(!in_sub_ranges(u32::MAX));
    }
}
