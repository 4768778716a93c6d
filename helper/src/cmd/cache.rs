//! `cache list` and `cache prune`: what the download cache holds, which
//! recorded installs use each entry, and dropping what none does (as
//! `uv cache prune` and `brew cleanup` do). An entry is used when a
//! recorded install names it: a component's artifact (done or still to
//! come, so an interrupted install keeps its partial download) or a cache
//! entry a worker's build used (its sources). An entry another process is
//! writing (its lock is held) is never touched.

use super::args::{self, Command, Parser};
use crate::download::{self, Cache};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::out;
use crate::state;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// sha256 -> who uses it ("stack in PREFIX (component)").
fn users(state_root: &Path) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, st) in state::all(state_root) {
        if st.status == state::InstallStatus::Uninstalling {
            continue;
        }
        for s in &st.steps {
            for sha in s.artifact.iter().chain(s.cached.iter()) {
                m.entry(sha.clone())
                    .or_default()
                    .push(format!("{} in {} ({})", st.stack, st.prefix, s.id));
            }
        }
    }
    m
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Verified,
    Partial,
    /// A seal or lock whose file is gone.
    Leftover,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Verified => "verified",
            Kind::Partial => "partial download",
            Kind::Leftover => "leftover",
        }
    }
}

/// One thing in the cache: a verified file, or the pieces of a partial
/// download (`.part`, its sidecars, its lock), grouped by sha256.
struct Entry {
    sha: String,
    kind: Kind,
    bytes: u64,
    files: Vec<PathBuf>,
}

fn entries(root: &Path) -> Vec<Entry> {
    let mut by: BTreeMap<String, Entry> = BTreeMap::new();
    // A verified file's seal and its download's pieces first, the file
    // itself last: what a killed prune leaves is still an entry.
    for sub in ["seals", "partial", "sha256"] {
        let Ok(rd) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let sha = name.split('.').next().unwrap_or("").to_string();
            let bytes = e.metadata().map(|m| m.len()).unwrap_or(0);
            let ent = by.entry(sha.clone()).or_insert(Entry {
                sha,
                kind: Kind::Leftover,
                bytes: 0,
                files: Vec::new(),
            });
            match sub {
                "sha256" => ent.kind = Kind::Verified,
                "partial" if name.ends_with(".part") && ent.kind == Kind::Leftover => {
                    ent.kind = Kind::Partial
                }
                _ => {}
            }
            if sub != "seals" {
                ent.bytes += bytes;
            }
            ent.files.push(e.path());
        }
    }
    let mut v: Vec<Entry> = by.into_values().collect();
    for e in v.iter_mut() {
        e.files.sort_by_key(|f| f.starts_with(root.join("sha256")));
    }
    v
}

/// Drop every entry no recorded install uses. Returns (entries, bytes).
pub fn prune(cache_root: &Path, state_root: &Path, dry_run: bool) -> Result<(usize, u64)> {
    let used = users(state_root);
    let mut n = 0;
    let mut bytes = 0;
    for e in entries(cache_root) {
        if used.contains_key(&e.sha) || Cache::new(cache_root.to_path_buf()).in_use(&e.sha) {
            continue;
        }
        let what = e.kind.word();
        out::line(&format!(
            "onramp: {} {} ({what}, {}): no install uses it",
            if dry_run { "would remove" } else { "removed" },
            &e.sha,
            fsutil::human_bytes(e.bytes)
        ));
        if !dry_run {
            for f in &e.files {
                match crate::fault::io("unlink", f, || std::fs::remove_file(f)) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => return Err(Error::io("cannot remove", f, err)),
                }
            }
        }
        n += 1;
        bytes += e.bytes;
    }
    if !dry_run {
        fsutil::tidy_root(cache_root, &["sha256", "partial", "seals"])?;
    }
    Ok((n, bytes))
}

/// `onramp cache list|prune [--dry-run]`.
pub struct CacheCmd {
    what: String,
    cache_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    dry_run: bool,
}

impl Command for CacheCmd {
    const NAME: &'static str = "cache";
    const USAGE: &'static str = "(list | prune) [--dry-run]";
    const ABOUT: &'static str = "List the download cache (each entry's size and which installs use it), or prune it: remove verified files and partial downloads no recorded install uses (an entry being downloaded is left alone).";
    fn parse(p: &mut Parser) -> Result<Self> {
        let mut a = CacheCmd {
            what: String::new(),
            cache_dir: p.path(&args::CACHE_DIR)?,
            state_dir: p.path(&args::STATE_DIR)?,
            dry_run: p.switch(&args::DRY_RUN),
        };
        a.what = p.words(1)?.remove(0);
        Ok(a)
    }
    fn run(self) -> Result<i32> {
        cache(&self)
    }
}

fn cache(f: &CacheCmd) -> Result<i32> {
    let cache_root = download::cache_root(f.cache_dir.as_deref())?;
    let state_root = state::root(f.state_dir.as_deref())?;
    match f.what.as_str() {
        "list" => {
            let used = users(&state_root);
            let all = entries(&cache_root);
            let mut total = 0;
            let mut free = 0;
            out::stdout_line(&format!("cache {}", cache_root.display()));
            for e in &all {
                total += e.bytes;
                let who = match used.get(&e.sha) {
                    Some(u) => u.join("; "),
                    None => {
                        free += e.bytes;
                        "no install uses it (cache prune removes it)".into()
                    }
                };
                out::stdout_line(&format!(
                    "{}  {:>10}  {}  {who}",
                    e.sha,
                    fsutil::human_bytes(e.bytes),
                    e.kind.word()
                ));
            }
            let installs: BTreeSet<String> = state::all(&state_root)
                .into_iter()
                .map(|(_, s)| format!("{} {} in {}", s.stack, s.stack_version, s.prefix))
                .collect();
            out::stdout_line(&format!(
                "{} entries, {}; {} used by no install; installs: {}",
                all.len(),
                fsutil::human_bytes(total),
                fsutil::human_bytes(free),
                if installs.is_empty() {
                    "none".to_string()
                } else {
                    installs.into_iter().collect::<Vec<_>>().join(", ")
                }
            ));
            Ok(0)
        }
        "prune" => {
            let (n, bytes) = prune(&cache_root, &state_root, f.dry_run)?;
            out::stdout_line(&format!(
                "{} {n} entries, {}",
                if f.dry_run { "would remove" } else { "removed" },
                fsutil::human_bytes(bytes)
            ));
            Ok(0)
        }
        other => Err(Error::new(
            crate::error::Code::Usage,
            format!("cache {other:?}: use list or prune"),
        )),
    }
}
