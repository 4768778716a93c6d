//! The commands, one module each; `cli` only parses flags and dispatches.
//! This file holds what several commands share: loading the manifest with
//! the trusted keys, the prefix, the opened state, download options.

use crate::cli::Flags;
use crate::download::{self, Options};
use crate::error::{Code, Error, Result, err};
use crate::events::Format;
use crate::fsutil;
use crate::manifest::{self, Loaded};
use crate::plan;
use crate::state::{self, State, Store};
use std::path::{Path, PathBuf};

pub mod artifact;
pub mod bundle;
pub mod cache;
pub mod doctor;
pub mod fetch;
pub mod install;
pub mod pkgbuild;
pub mod release;
pub mod uninstall;

/// The keys this command trusts: `--trust-key` and `ONRAMP_TRUST_KEY`.
pub fn trusted_keys(f: &Flags) -> Result<crate::sign::Keys> {
    crate::sign::Keys::from_specs(&f.trust_keys)
}

/// Refuse `man` when it is expired or a rollback (unless the flags allow it).
pub fn check_fresh(f: &Flags, man: &Loaded) -> Result<()> {
    let allow = crate::freshness::Allow {
        downgrade: f.allow_downgrade,
        expired: f.allow_expired,
    };
    crate::freshness::check(man, &state::root(f.state_dir.as_deref())?, allow)
}

/// The manifest, its signature checked when any key is trusted (on every
/// command: the bytes are verified when they are used).
pub fn need_manifest(f: &Flags) -> Result<Loaded> {
    let keys = trusted_keys(f)?;
    match &f.manifest {
        Some(m) => manifest::load_signed(m, f.manifest_url.as_deref(), &keys),
        None => err(Code::Usage, "--manifest FILE is required"),
    }
}

/// Signature, then serial and expiry: what an install accepts before it
/// starts (plan, resume-check, begin).
pub fn need_fresh_manifest(f: &Flags) -> Result<Loaded> {
    let man = need_manifest(f)?;
    check_fresh(f, &man)?;
    Ok(man)
}

pub fn resolve_prefix(f: &Flags, man: Option<&Loaded>) -> Result<PathBuf> {
    let p = match (&f.prefix, man.and_then(|m| m.m.default_prefix.as_deref())) {
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

pub fn ttl_secs(f: &Flags) -> Result<u64> {
    let h = match f.ttl_hours {
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

pub fn events_format(f: &Flags) -> Result<Format> {
    match f.format.as_deref() {
        None => Ok(Format::Ndjson),
        Some(s) => Format::parse(s).ok_or_else(|| {
            Error::new(
                Code::Usage,
                format!("--events-format {s:?}: use ndjson or sse"),
            )
        }),
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

pub fn open(f: &Flags) -> Result<Opened> {
    let mut man = need_manifest(f)?;
    let prefix = resolve_prefix(f, Some(&man))?;
    let target = crate::platform::target();
    let root = state::root(f.state_dir.as_deref())?;
    let store = Store::lock(&state::dir_for(&root, &prefix))?;
    let mut st = store.load()?;
    select(f, &mut man, &prefix, st.as_ref())?;
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
pub fn select(f: &Flags, man: &mut Loaded, prefix: &Path, st: Option<&State>) -> Result<()> {
    if let Some(g) = &f.gpu {
        crate::machine::check_backend(g)?;
    }
    let saved = st.filter(|s| s.prefix == prefix.display().to_string());
    let mut hw = match saved.filter(|s| s.status != state::InstallStatus::Complete && !f.fresh) {
        Some(s) if s.decided.hardware.is_some() => s.decided.hardware.clone().unwrap_or_default(),
        _ => crate::hardware::probe(prefix),
    };
    if let Some(g) = &f.gpu {
        crate::machine::force(&mut hw, g);
    }
    let profile = f
        .profile
        .clone()
        .or_else(|| saved.and_then(|s| s.decided.profile.clone()));
    plan::select(man, &hw, profile.as_deref())
}

/// As root, refuse a prefix or cache another user could change (the state
/// directory is checked when it is locked).
pub fn trust_install_dirs(prefix: &Path, f: &Flags) -> Result<()> {
    crate::trust::check(prefix, crate::trust::PREFIX_FIX)?;
    crate::trust::check(
        &download::cache_root(f.cache_dir.as_deref())?,
        crate::trust::CACHE_FIX,
    )
}

pub fn owner(f: &Flags) -> Result<Option<state::Owner>> {
    f.owner.map(state::owner_of).transpose()
}

/// Why a saved state cannot be resumed, or None when it can.
pub fn options(f: &Flags) -> Result<Options> {
    let connections = f.connections.unwrap_or(download::DEFAULT_CONNECTIONS);
    if !(1..=64).contains(&connections) {
        return err(
            Code::Usage,
            format!("--connections {connections}: use 1 to 64"),
        );
    }
    for m in &f.mirrors {
        if !(m.starts_with("https://") || m.starts_with("http://")) {
            return err(
                Code::Usage,
                format!("--mirror {m:?}: a mirror is an http(s) base URL"),
            );
        }
    }
    let mut net = download::http::Net {
        allow_http: f.allow_http,
        ca_file: f.ca_file.clone(),
        ..Default::default()
    };
    if let Some(s) = f.read_timeout {
        if s == 0 {
            return err(Code::Usage, "--read-timeout must be at least 1 second");
        }
        net.read_timeout = std::time::Duration::from_secs(s);
    }
    Ok(Options {
        offline: f.offline,
        from: f.from.as_deref().map(fsutil::absolute).transpose()?,
        connections,
        mirrors: f.mirrors.clone(),
        net,
        budget: None,
    })
}
