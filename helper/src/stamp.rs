//! Stamps: what every file a component placed looked like when onramp
//! placed it (size, modification time, sha256), kept beside the state as
//! `files/<component>.json`. `doctor` compares them (a stat, or a re-hash
//! with `--deep`) and names a file that is missing or changed; the server
//! phase trusts an installed version only while its stamps still match.
//! A model's sha256 is its artifact's (its bytes came from the verified
//! cache), so a multi-GB file is not read again to stamp it.

use crate::error::{Code, Error, Result};
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Most entries one component's stamps hold (a bound on what an untrusted
/// archive or command can make onramp keep).
const MAX_ENTRIES: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    pub size: u64,
    /// Seconds and nanoseconds.
    pub mtime: (i64, i64),
    /// Of the bytes, or for a symbolic link of its target's text.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub link: bool,
}

/// Path relative to the prefix -> its stamp.
pub type Stamps = BTreeMap<String, Stamp>;

/// One thing `check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Missing(String),
    Changed(String),
}

impl Finding {
    pub fn describe(&self) -> String {
        match self {
            Finding::Missing(p) => format!("{p} is missing"),
            Finding::Changed(p) => format!("{p} changed since onramp placed it"),
        }
    }
}

pub fn file(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("files").join(format!("{id}.json"))
}

/// Stamp `paths` (files or trees, relative to `prefix`); `known` gives the
/// sha256 of files whose bytes are known already.
pub fn take(prefix: &Path, paths: &[String], known: &BTreeMap<String, String>) -> Result<Stamps> {
    let mut out = Stamps::new();
    let mut todo: Vec<String> = paths.to_vec();
    while let Some(rel) = todo.pop() {
        if out.len() >= MAX_ENTRIES {
            break;
        }
        let p = prefix.join(&rel);
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            let rd = std::fs::read_dir(&p).map_err(|e| Error::io("cannot read", &p, e))?;
            for e in rd.flatten() {
                todo.push(format!("{rel}/{}", e.file_name().to_string_lossy()));
            }
            continue;
        }
        let (sha256, link) = if m.file_type().is_symlink() {
            let t = std::fs::read_link(&p).map_err(|e| Error::io("cannot read link", &p, e))?;
            (fsutil::sha256_bytes(t.as_os_str().as_encoded_bytes()), true)
        } else if let Some(h) = known.get(&rel) {
            (h.clone(), false)
        } else {
            (fsutil::sha256_file(&p)?, false)
        };
        out.insert(
            rel,
            Stamp {
                size: m.len(),
                mtime: mtime(&m),
                sha256,
                link,
            },
        );
    }
    Ok(out)
}

pub fn save(state_dir: &Path, id: &str, s: &Stamps) -> Result<()> {
    let f = file(state_dir, id);
    if let Some(d) = f.parent() {
        fsutil::mkdirs(d)?;
    }
    let body = serde_json::to_vec(s)
        .map_err(|e| Error::new(Code::Internal, format!("stamps of {id}: {e}")))?;
    fsutil::write_atomic(&f, &body, 0o644)
}

/// The stamps of `id`, when it has any (an install made before stamps
/// existed has none).
pub fn load(state_dir: &Path, id: &str) -> Option<Stamps> {
    let b = std::fs::read(file(state_dir, id)).ok()?;
    serde_json::from_slice(&b).ok()
}

/// What differs from `stamps` now: a stat (size and time) by default; with
/// `deep`, the bytes are hashed again.
pub fn check(prefix: &Path, stamps: &Stamps, deep: bool) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for (rel, s) in stamps {
        crate::signal::check()?;
        let p = prefix.join(rel);
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            out.push(Finding::Missing(rel.clone()));
            continue;
        };
        let changed = if m.file_type().is_symlink() != s.link {
            true
        } else if s.link {
            std::fs::read_link(&p)
                .map(|t| fsutil::sha256_bytes(t.as_os_str().as_encoded_bytes()) != s.sha256)
                .unwrap_or(true)
        } else if m.len() != s.size {
            true
        } else if deep {
            fsutil::sha256_file(&p)
                .map(|h| h != s.sha256)
                .unwrap_or(true)
        } else {
            mtime(&m) != s.mtime
        };
        if changed {
            out.push(Finding::Changed(rel.clone()));
        }
    }
    Ok(out)
}

/// Last modification as (seconds, nanoseconds) since the Unix epoch, the
/// way `stat` gives it (-1.5 s is (-2, 500000000)).
fn mtime(m: &std::fs::Metadata) -> (i64, i64) {
    let Ok(t) = m.modified() else { return (0, 0) };
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, i64::from(d.subsec_nanos())),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (d.as_secs() as i64, i64::from(d.subsec_nanos()));
            if n == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - n)
            }
        }
    }
}
