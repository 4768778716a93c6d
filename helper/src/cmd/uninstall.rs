//! `uninstall`: revert what an install did (its receipt, last change
//! first), then forget it: its state, the stack's serial record and the
//! fetched manifest when no other install needs them, the cache with
//! `--purge-cache`, and the state and cache roots when onramp made them and
//! nothing else is in them. Killed midway, it finishes when run again: the
//! state says "uninstalling" until the very end and every revert is
//! idempotent.

use super::args::{self, Command, Parser, Place, Stack};
use super::{given_manifest, resolve_prefix};
use crate::download;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::out;
use crate::receipt::{self, Outcome, Revert};
use crate::state::{self, InstallStatus, State, Store};
use std::path::Path;

/// How many files left in the prefix the summary names.
const SHOW_LEFT: usize = 20;

/// `onramp uninstall`.
pub struct Uninstall {
    stack: Stack,
    place: Place,
    cache_dir: Option<std::path::PathBuf>,
    dry_run: bool,
    keep_models: bool,
    purge_cache: bool,
}

const KEEP_MODELS: args::Opt = args::Opt {
    name: "--keep-models",
    value: "",
    help: "keep the model files",
};
const PURGE_CACHE: args::Opt = args::Opt {
    name: "--purge-cache",
    value: "",
    help: "also remove the cache entries no other install uses",
};

impl Command for Uninstall {
    const NAME: &'static str = "uninstall";
    const USAGE: &'static str = "--prefix DIR [--dry-run] [--keep-models] [--purge-cache]";
    const ABOUT: &'static str = "Undo an install, last change first: stop its services and remove their units, run extras' uninstall commands, remove every file and directory it recorded (a config file you changed is kept and named), then its state, the stack's serial record when no other install has it, and the state and cache roots when onramp made them and they are empty. --keep-models keeps the models; --purge-cache also removes the cache entries no other install uses; --dry-run prints what it would do. Killed midway, run it again.";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(Uninstall {
            stack: Stack::parse(p)?,
            place: Place::parse(p)?,
            cache_dir: p.path(&args::CACHE_DIR)?,
            dry_run: p.switch(&args::DRY_RUN),
            keep_models: p.switch(&KEEP_MODELS),
            purge_cache: p.switch(&PURGE_CACHE),
        })
    }
    fn run(self) -> Result<i32> {
        uninstall(&self)
    }
}

fn uninstall(f: &Uninstall) -> Result<i32> {
    let man = given_manifest(&f.stack)?;
    let prefix = resolve_prefix(f.place.prefix.as_deref(), man.as_ref())?;
    crate::trust::check(&prefix, crate::trust::PREFIX_FIX)?;
    let root = state::root(f.place.state_dir.as_deref())?;
    let dir = state::dir_for(&root, &prefix);
    let mut cache_root = download::cache_root(f.cache_dir.as_deref())?;
    let st = if dir.join("state.json").is_file() {
        let store = Store::lock(&dir)?;
        store.load()?.map(|st| (store, st))
    } else {
        None
    };
    let Some((store, mut st)) = st else {
        out::line(&format!(
            "onramp: nothing to uninstall: no install of {} is recorded (state in {})",
            prefix.display(),
            root.display()
        ));
        if !f.dry_run {
            // What a killed uninstall may have left of its own records.
            forget(&root, &dir, None)?;
            if f.purge_cache {
                purge(&cache_root, &root)?;
            }
        }
        return Ok(0);
    };
    state::check_owner(&st, None)?;
    // The cache the install used, unless told otherwise.
    if f.cache_dir.is_none()
        && std::env::var_os("ONRAMP_CACHE_DIR").is_none()
        && let Some(c) = &st.decided.cache_dir
    {
        cache_root = c.into();
        // Read (and pruned) only with --purge-cache: checked then, so an
        // install recorded with a cache root now refused still uninstalls.
        if f.purge_cache {
            crate::trust::check(&cache_root, crate::trust::CACHE_FIX)?;
        }
    }
    let acts = receipt::actions(&st);
    if f.dry_run {
        out::stdout_line(&format!(
            "uninstall {} {} from {} would, last change first:",
            st.stack,
            st.stack_version,
            prefix.display()
        ));
        for a in acts.iter().rev() {
            out::stdout_line(&format!("  {}", a.describe(f.keep_models)));
        }
        out::stdout_line(&format!("  forget the install's state ({})", dir.display()));
        out::stdout_line(&format!(
            "  {} the download cache ({})",
            if f.purge_cache {
                "remove what no other install uses from"
            } else {
                "keep"
            },
            cache_root.display()
        ));
        return Ok(0);
    }
    out::line(&format!(
        "onramp: uninstalling {} {} from {}",
        st.stack,
        st.stack_version,
        prefix.display()
    ));
    st.status = InstallStatus::Uninstalling;
    st.owner = None;
    store.save(&mut st)?;
    // An extra's uninstall command runs as its install command did (the
    // manifest's own `env` names are not kept, so not passed).
    let target = st
        .decided
        .target
        .clone()
        .unwrap_or_else(crate::platform::target);
    let env = crate::phase::command_env(&[], &prefix, &target, &st);
    let r = Revert {
        prefix: &prefix,
        keep_models: f.keep_models,
        env: &env,
    };
    let mut kept = Vec::new();
    for a in acts.iter().rev() {
        match a.revert(&r)? {
            Outcome::Undone(m) => out::line(&format!("onramp: {m}")),
            Outcome::Kept(m) => kept.push(m),
            Outcome::Nothing => {}
        }
    }
    let left = fsutil::list_left(&prefix, SHOW_LEFT + 1);
    forget(&root, &dir, Some(&st))?;
    drop(store);
    // Windows removes the lock file only once it is closed (just now):
    // its directory and the roots it leaves empty go now (on Unix they are
    // gone already).
    receipt::rmdir_if_empty(&dir)?;
    fsutil::tidy_root(&root, &["installs", "serials", "manifests"])?;
    if f.purge_cache {
        purge(&cache_root, &root)?;
    }
    for k in &kept {
        out::line(&format!("onramp: kept {k}"));
    }
    if !left.is_empty() {
        let mut names: Vec<&str> = left.iter().take(SHOW_LEFT).map(String::as_str).collect();
        if left.len() > SHOW_LEFT {
            names.push("...");
        }
        out::line(&format!(
            "onramp: left in {} (not onramp's, or kept): {}",
            prefix.display(),
            names.join(", ")
        ));
    }
    out::line(&format!(
        "onramp: uninstalled {} from {}{}",
        st.stack,
        prefix.display(),
        if f.purge_cache {
            String::new()
        } else {
            format!(
                "; the download cache is kept (--purge-cache removes it; later, `{} cache prune` frees what no install uses)",
                self_command()
            )
        }
    ));
    Ok(0)
}

/// This helper as a command the user can type where they are: onramp is
/// seldom on PATH (the installer runs it from its own cache), so its path.
fn self_command() -> String {
    match std::env::current_exe() {
        Ok(p) => super::sh_word(&p.display().to_string()),
        Err(_) => "onramp".into(),
    }
}

/// Forget the install of `dir`: first the stack's records no other install
/// needs (while the state still says what they are), then the install's
/// own directory (the state file last but one, the lock last), then the
/// state root's directories when they are empty.
fn forget(root: &Path, dir: &Path, st: Option<&State>) -> Result<()> {
    if let Some(st) = st {
        let others: Vec<State> = state::all(root)
            .into_iter()
            .filter(|(d, _)| d != dir)
            .map(|(_, s)| s)
            .collect();
        if !others.iter().any(|o| o.stack == st.stack) {
            crate::freshness::forget(root, &st.stack)?;
        }
        let fetched = root.join("manifests");
        if Path::new(&st.manifest).starts_with(&fetched)
            && !others.iter().any(|o| o.manifest == st.manifest)
            && let Some(d) = Path::new(&st.manifest).parent()
        {
            remove(d)?;
        }
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name();
            if n != "state.json" && n != "lock" {
                remove(&e.path())?;
            }
        }
    }
    remove(&dir.join("state.json"))?;
    remove(&dir.join("lock"))?;
    receipt::rmdir_if_empty(dir)?;
    fsutil::tidy_root(root, &["installs", "serials", "manifests"])?;
    Ok(())
}

/// `--purge-cache`: what no install still recorded uses goes.
fn purge(cache_root: &Path, state_root: &Path) -> Result<()> {
    let (n, bytes) = crate::cmd::cache::prune(cache_root, state_root, false)?;
    out::line(&format!(
        "onramp: removed {n} cache entries ({}) no other install uses",
        fsutil::human_bytes(bytes)
    ));
    // The helper install.sh keeps (`bin/` of its cache home) goes with the
    // last install.
    if state::all(state_root).is_empty()
        && let Some(home) = helper_home()
    {
        crate::trust::check(&home, crate::trust::CACHE_FIX)?;
        remove(&home.join("bin"))?;
        fsutil::tidy_root(&home, &[])?;
    }
    Ok(())
}

/// Where install.sh keeps the helper: `$XDG_CACHE_HOME/onramp`, else
/// `~/.cache/onramp` (lib/helper.sh's onramp_cache_home).
fn helper_home() -> Option<std::path::PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    match var("XDG_CACHE_HOME") {
        Some(d) => Some(std::path::PathBuf::from(d).join("onramp")),
        None => var("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/onramp")),
    }
}

/// Remove a file or a whole directory; gone already is fine.
fn remove(p: &Path) -> Result<()> {
    let res = match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => crate::fault::io("unlink", p, || std::fs::remove_dir_all(p)),
        Ok(_) => crate::fault::io("unlink", p, || std::fs::remove_file(p)),
        Err(_) => return Ok(()),
    };
    match res {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("cannot remove", p, e)),
    }
}
