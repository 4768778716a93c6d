//! The commands, one module each, each with its arguments as a type of its
//! own (`args`); `cli` only finds the command and dispatches. This file
//! holds what several commands share: loading the manifest with the
//! trusted keys, the prefix, the opened state.

use crate::download;
use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::manifest::{self, Loaded};
use crate::plan;
use crate::state::{self, State, Store};
use args::{Choice, Fresh, Parser, Place, Stack};
use std::path::{Path, PathBuf};

pub mod args;
pub mod artifact;
pub mod bundle;
pub mod cache;
pub mod doctor;
pub mod fetch;
pub mod info;
pub mod install;
pub mod lock;
pub mod pkgbuild;
pub mod progress;
pub mod release;
pub mod services;
pub mod uninstall;

/// The keys this command trusts: `--trust-key` and `ONRAMP_TRUST_KEY`.
pub fn trusted_keys(s: &Stack) -> Result<crate::sign::Keys> {
    crate::sign::Keys::from_specs(&s.trust_keys)
}

/// Refuse `man` when it is expired or a rollback (unless `fresh` allows it).
pub fn check_fresh(fresh: &Fresh, state_dir: Option<&Path>, man: &Loaded) -> Result<()> {
    let allow = crate::freshness::Allow {
        downgrade: fresh.allow_downgrade,
        expired: fresh.allow_expired,
    };
    crate::freshness::check(man, &state::root(state_dir)?, allow)
}

/// The manifest, its signature checked when any key is trusted (on every
/// command: the bytes are verified when they are used).
pub fn need_manifest(s: &Stack) -> Result<Loaded> {
    let keys = trusted_keys(s)?;
    match &s.manifest {
        Some(m) => manifest::load_signed(m, s.manifest_url.as_deref(), &keys),
        None => err(Code::Usage, "--manifest FILE is required"),
    }
}

/// `--manifest` when given (signature checked), else none.
pub fn given_manifest(s: &Stack) -> Result<Option<Loaded>> {
    s.manifest.as_ref().map(|_| need_manifest(s)).transpose()
}

pub fn resolve_prefix(given: Option<&Path>, man: Option<&Loaded>) -> Result<PathBuf> {
    let p = match (given, man.and_then(|m| m.m.default_prefix.as_deref())) {
        (Some(p), _) => fsutil::expand_home(&p.to_string_lossy()),
        (None, Some(d)) => fsutil::expand_home(d),
        (None, None) => {
            return err(
                Code::Usage,
                "--prefix DIR is required (the manifest has no default_prefix)",
            );
        }
    };
    if p.as_os_str().is_empty() {
        return err(Code::Usage, "--prefix must not be empty");
    }
    let abs = fsutil::absolute(&p)?;
    if abs == Path::new("/") {
        return err(
            Code::Usage,
            "--prefix / is refused; choose a directory of its own",
        );
    }
    // As root, every command that acts on a prefix (install, doctor's
    // checks run in it, uninstall, repair) refuses one others can change.
    crate::trust::check(&abs, crate::trust::PREFIX_FIX)?;
    Ok(abs)
}

pub fn ttl_secs(given: Option<u64>) -> Result<u64> {
    let h = match given {
        Some(h) => h,
        None => match std::env::var("ONRAMP_STATE_TTL_HOURS") {
            Ok(v) if !v.is_empty() => v.parse().map_err(|_| {
                Error::new(
                    Code::Usage,
                    format!("ONRAMP_STATE_TTL_HOURS={v:?} is not a whole number of hours"),
                )
            })?,
            _ => 24,
        },
    };
    Ok(h.saturating_mul(3600))
}

/// What every step of an install is called with (install.sh's
/// `onramp_helper_call`): the manifest, the choice of variants, the place.
pub struct Install {
    pub stack: Stack,
    pub choice: Choice,
    pub place: Place,
}

impl Install {
    pub fn parse(p: &mut Parser) -> Result<Install> {
        Ok(Install {
            stack: Stack::parse(p)?,
            choice: Choice::parse(p)?,
            place: Place::parse(p)?,
        })
    }

    pub fn state_dir(&self) -> Option<&Path> {
        self.place.state_dir.as_deref()
    }
}

pub struct Opened {
    man: Loaded,
    prefix: PathBuf,
    target: String,
    plan_id: String,
    store: Store,
    st: Option<State>,
}

/// The manifest, prefix and saved state of an install, its variants
/// chosen; `fresh`: a new install is starting (what was decided before is
/// not kept).
pub fn open(i: &Install, fresh: bool) -> Result<Opened> {
    let mut man = need_manifest(&i.stack)?;
    let prefix = resolve_prefix(i.place.prefix.as_deref(), Some(&man))?;
    let target = crate::platform::target();
    let root = state::root(i.state_dir())?;
    let store = Store::lock(&state::dir_for(&root, &prefix))?;
    let mut st = store.load()?;
    select(&i.choice, fresh, &mut man, &prefix, st.as_ref())?;
    let plan_id = plan::plan_id(&man, &prefix, &target);
    if let Some(s) = &st
        && s.plan_id == plan_id
    {
        let ids: Vec<&str> = man.m.components.iter().map(|c| c.id.as_str()).collect();
        if let Some(why) = s.inconsistency(Some(&ids)) {
            store.set_aside(&why)?;
            st = None;
        }
    }
    Ok(Opened {
        man,
        prefix,
        target,
        plan_id,
        store,
        st,
    })
}

/// Choose the profile and variants for this machine (`plan::select`). An
/// interrupted install keeps what its first run decided (the hardware and
/// the profile in its state), so a resume plans what that run planned; a
/// finished one is probed again, and a new GPU makes a new plan. `--gpu`
/// and `--profile` always win.
pub fn select(
    c: &Choice,
    fresh: bool,
    man: &mut Loaded,
    prefix: &Path,
    st: Option<&State>,
) -> Result<()> {
    if let Some(g) = &c.gpu {
        crate::machine::check_backend(g)?;
    }
    let saved = st.filter(|s| s.prefix == prefix.display().to_string());
    let mut hw = match saved.filter(|s| s.status != state::InstallStatus::Complete && !fresh) {
        Some(s) if s.decided.hardware.is_some() => s.decided.hardware.clone().unwrap_or_default(),
        _ => crate::hardware::probe(prefix),
    };
    if let Some(g) = &c.gpu {
        crate::machine::force(&mut hw, g);
    }
    let profile = c
        .profile
        .clone()
        .or_else(|| saved.and_then(|s| s.decided.profile.clone()));
    plan::select(man, &hw, profile.as_deref())
}

/// As root, refuse a prefix or cache another user could change (the state
/// directory is checked when it is locked).
pub fn trust_install_dirs(prefix: &Path, cache_dir: Option<&Path>) -> Result<()> {
    crate::trust::check(prefix, crate::trust::PREFIX_FIX)?;
    crate::trust::check(&download::cache_root(cache_dir)?, crate::trust::CACHE_FIX)
}

pub fn owner(pid: Option<u32>) -> Result<Option<state::Owner>> {
    pid.map(state::owner_of).transpose()
}

/// `w` as one POSIX shell word: as it is when nothing in it is special,
/// else in single quotes.
pub fn sh_word(w: &str) -> String {
    if !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,=@%".contains(&b))
    {
        return w.to_string();
    }
    format!("'{}'", w.replace('\'', "'\\''"))
}
