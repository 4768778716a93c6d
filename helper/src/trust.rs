//! Which directories root may write into: OpenSSH's StrictModes for the
//! prefix, the cache, the state directory and everything onramp creates
//! below them.
//!
//! Running as root, onramp acts by path, and a path is only as safe as the
//! least trusted directory on it: another user who owns a directory on the
//! way (or can write into a non-sticky one) can swap an entry for a symbolic
//! link between onramp's check and its write, and have root write, chmod or
//! delete anywhere. So, as root, every directory from `/` down to the one
//! onramp uses must be owned by root; above it, a directory others can write
//! is accepted only with the sticky bit (`/tmp`), where nobody may rename or
//! delete what root owns; the directory itself must not be group/other-
//! writable at all. Symbolic links on the way are followed only when root
//! owns them. Missing directories are created one by one (mode 0755) and
//! checked after creation, so a directory someone else made first in a
//! race is caught. Not as root, none of this applies: a user's files are
//! theirs to change. The walk itself is `fsutil::dir` (below this module,
//! so that every directory onramp makes goes through it); this module
//! holds the checks without creating anything and what to do instead.
//!
//! Root with another user's environment (`sudo -E`, a sudoers or macOS sudo
//! that keeps `HOME`): the variables that place onramp's directories by
//! default (`HOME`, `XDG_*_HOME`, `XDG_RUNTIME_DIR`, `TMPDIR`) are
//! ignored, with a note naming each, when the directory they name fails
//! the check above, or does not exist yet in a directory others can write
//! (they could make it first); `HOME` then becomes root's own home from the
//! password database. `PATH` keeps only its entries that pass (else the
//! system's default), so no program of another user's runs as root. Explicit choices (`--prefix`,
//! `ONRAMP_CACHE_DIR`, `ONRAMP_STATE_DIR`, ...) are refused instead (exit
//! 13). `own_environment` does this once, at the helper's start, so every
//! command sees the same environment and passes it on.

use crate::error::{Error, Result};
use crate::fsutil::{self, Last};
use std::path::{Path, PathBuf};

/// What to do instead, per directory.
pub const PREFIX_FIX: &str = "choose a prefix only root can write (such as /opt/NAME), or run the installer as the owner of that directory, without sudo";
pub const CACHE_FIX: &str = "set ONRAMP_CACHE_DIR (or XDG_CACHE_HOME) to a directory only root can write, or run the installer without sudo";
pub const STATE_FIX: &str = "set ONRAMP_STATE_DIR (or XDG_STATE_HOME) to a directory only root can write, or run the installer without sudo";

/// As root, check the part of `dir` that exists without creating anything
/// (what is missing is checked when onramp creates it). Not as root: Ok.
pub fn check(dir: &Path, fix: &str) -> Result<()> {
    if !fsutil::is_root() {
        return Ok(());
    }
    fsutil::walk(dir, Last::Private, false, Some(fix))
}

/// The variables that place onramp's directories (and the shell profiles
/// `--modify-path` edits) when nothing explicit does.
pub const HOME_VARS: &[&str] = &[
    "HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_BIN_HOME",
    "XDG_RUNTIME_DIR",
];

/// Why, as root, `dir` may not be used (None: it may). Checks what exists
/// of it, creating nothing; a relative path is refused.
pub fn untrusted(dir: &Path, last: Last) -> Option<String> {
    if !dir.is_absolute() {
        return Some(format!("{} is not an absolute path", dir.display()));
    }
    // The reason alone, without the advice that follows it.
    let why = |e: Error| {
        let m = e.msg.trim_start_matches("refusing ");
        m.split_once("; ").map_or(m, |(w, _)| w).to_string()
    };
    if let Err(e) = fsutil::walk(dir, last, false, Some("")) {
        return Some(why(e));
    }
    // Missing: the directory it would be made in must be one only root
    // can write, or another user could make it first.
    let have = dir
        .ancestors()
        .find(|a| std::fs::symlink_metadata(a).is_ok())?;
    if have != dir {
        return fsutil::walk(have, Last::Private, false, Some(""))
            .err()
            .map(|e| format!("{} does not exist yet and {}", dir.display(), why(e)));
    }
    None
}

/// The system's PATH, for root when none of the caller's entries pass.
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Root's home directory from the password database (`/etc/passwd`), else
/// `/root`.
pub fn root_home() -> PathBuf {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 7 && f[2] == "0" && f[5].starts_with('/')).then(|| PathBuf::from(f[5]))
            })
        })
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// As root, drop the `HOME_VARS` whose directory another user could change
/// (see the module doc): `HOME` becomes root's home, the others are unset.
/// Returns one note per variable ignored. Call it before any thread starts
/// (it changes the environment).
pub fn own_environment() -> Vec<String> {
    let mut notes = Vec::new();
    if !fsutil::is_root() {
        return notes;
    }
    for var in HOME_VARS.iter().chain(&["TMPDIR"]) {
        let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) else {
            continue;
        };
        // TMPDIR only receives private directories of fresh names: a
        // sticky one (/tmp) is fine.
        let last = if *var == "TMPDIR" {
            Last::Shared
        } else {
            Last::Private
        };
        let Some(why) = untrusted(Path::new(&v), last) else {
            continue;
        };
        let shown = crate::out::bounded(&v.to_string_lossy(), 200).into_owned();
        if *var == "HOME" {
            let home = root_home();
            let used = if untrusted(&home, Last::Private).is_none() {
                // SAFETY: called at the start of main, before any thread.
                unsafe { std::env::set_var(var, &home) };
                format!("using root's home {}", home.display())
            } else {
                // SAFETY: as above.
                unsafe { std::env::remove_var(var) };
                "root's own home is not usable either; HOME is unset".to_string()
            };
            notes.push(format!(
                "as root, ignoring HOME={shown} ({why}): another user's environment (sudo -E?); {used}"
            ));
        } else {
            // SAFETY: as above.
            unsafe { std::env::remove_var(var) };
            notes.push(format!(
                "as root, ignoring {var}={shown} ({why}): another user's environment (sudo -E?); onramp uses root's own directories"
            ));
        }
    }
    // PATH: only entries no other user can change.
    if let Some(path) = std::env::var_os("PATH") {
        let (keep, drop): (Vec<PathBuf>, Vec<PathBuf>) =
            std::env::split_paths(&path).partition(|d| untrusted(d, Last::Private).is_none());
        if !drop.is_empty() {
            let shown: Vec<String> = drop
                .iter()
                .map(|d| crate::out::bounded(&d.to_string_lossy(), 200).into_owned())
                .collect();
            let new = if keep.is_empty() {
                std::ffi::OsString::from(SYSTEM_PATH)
            } else {
                std::env::join_paths(&keep).unwrap_or_else(|_| SYSTEM_PATH.into())
            };
            // SAFETY: as above.
            unsafe { std::env::set_var("PATH", &new) };
            notes.push(format!(
                "as root, leaving out of PATH what another user could change: {}",
                shown.join(", ")
            ));
        }
    }
    notes
}

// Unix only: they make links, chown and chmod.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("onramp-trust-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    #[test]
    fn as_root_check_creates_nothing() {
        if !fsutil::is_root() || !std::env::temp_dir().starts_with("/tmp") {
            return;
        }
        let d = tmp("check");
        std::fs::create_dir(d.join("a")).unwrap();
        std::fs::create_dir(d.join("theirs")).unwrap();
        std::os::unix::fs::chown(d.join("theirs"), Some(65534), Some(65534)).unwrap();
        // Checking without creating stops at what is missing.
        check(&d.join("a/missing/deeper"), "fix").unwrap();
        assert!(!d.join("a/missing").exists());
        assert!(check(&d.join("theirs/missing"), "fix").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
