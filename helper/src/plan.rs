//! The resolved plan: which artifact each component uses on this target, in
//! which order things happen, and the plan id that a saved state must match.

use crate::download::{Source, Want};
use crate::error::{Code, Result, err};
use crate::fsutil;
use crate::manifest::{Component, Kind, Loaded, Unpack};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Planned {
    pub id: String,
    pub kind: Kind,
    pub optional: bool,
    pub want: Option<Want>,
    pub unpack: Option<Unpack>,
    pub unpacked_size: Option<u64>,
    /// The component has artifacts, but none for this target.
    pub no_build: bool,
}

/// Which phase installs a component of this kind.
pub fn phase_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Server => "server",
        Kind::Model => "models",
        Kind::Worker => "workers",
        Kind::Extra => "extras",
    }
}

/// The plan id: changes when the manifest, the prefix or the target changes.
pub fn plan_id(man: &Loaded, prefix: &Path, target: &str) -> String {
    let mut s = man.sha256.clone();
    s.push('\0');
    s.push_str(&prefix.to_string_lossy());
    s.push('\0');
    s.push_str(target);
    fsutil::sha256_bytes(s.as_bytes())[..16].to_string()
}

fn resolve_one(man: &Loaded, c: &Component, target: &str) -> Planned {
    let art = c.artifacts.get(target).or_else(|| c.artifacts.get("any"));
    let want = art.map(|a| Want {
        label: c.id.clone(),
        source: match (&a.url, &a.path) {
            (Some(u), _) => Source::Url(u.clone()),
            (None, Some(p)) => match man.resolve(p) {
                crate::manifest::Origin::Url(u) => Source::Url(u),
                crate::manifest::Origin::Dir(d) => Source::Path(d),
            },
            (None, None) => Source::Path(man.dir.clone()),
        },
        size: a.size.unwrap_or(0),
        sha256: a.sha256.clone().unwrap_or_default(),
    });
    Planned {
        id: c.id.clone(),
        kind: c.kind,
        optional: c.optional,
        no_build: !c.artifacts.is_empty() && art.is_none(),
        unpack: art.and_then(|a| a.unpack),
        unpacked_size: art.and_then(|a| a.unpacked_size),
        want,
    }
}

/// Resolve every component for `target`, checking that dependencies point
/// to the same or an earlier phase.
pub fn resolve(man: &Loaded, target: &str) -> Result<Vec<Planned>> {
    let order = |k: Kind| crate::state::phase_index(phase_of(k)).unwrap_or(0);
    for c in &man.m.components {
        for d in &c.depends_on {
            if let Some(dc) = man.component(d)
                && order(dc.kind) > order(c.kind)
            {
                return err(
                    Code::Manifest,
                    format!(
                        "manifest {}: {} ({}) depends on {} ({}), which is installed in a later phase",
                        man.path.display(),
                        c.id,
                        c.kind.name(),
                        d,
                        dc.kind.name()
                    ),
                );
            }
        }
    }
    Ok(man
        .m
        .components
        .iter()
        .map(|c| resolve_one(man, c, target))
        .collect())
}

/// The components a phase installs, in order: dependencies first, then (for
/// models) smallest first, so the first capability comes as early as possible.
pub fn for_phase<'a>(man: &Loaded, plan: &'a [Planned], phase: &str) -> Vec<&'a Planned> {
    let mut items: Vec<&Planned> = plan.iter().filter(|p| phase_of(p.kind) == phase).collect();
    items.sort_by_key(|p| p.want.as_ref().map(|w| w.size).unwrap_or(0));
    // Stable topological pass: take the first item whose same-phase deps are placed.
    let mut out: Vec<&Planned> = Vec::new();
    while !items.is_empty() {
        let pos = items
            .iter()
            .position(|p| {
                man.component(&p.id).is_none_or(|c| {
                    c.depends_on.iter().all(|d| {
                        out.iter().any(|o| &o.id == d) || !items.iter().any(|i| &i.id == d)
                    })
                })
            })
            .unwrap_or(0);
        out.push(items.remove(pos));
    }
    out
}

/// Human description of the plan, one line per component.
pub fn describe(man: &Loaded, plan: &[Planned], target: &str) -> Vec<String> {
    let mut lines = vec![format!("{} {} for {target}:", man.m.name, man.m.version)];
    for phase in ["server", "models", "workers", "extras"] {
        for p in for_phase(man, plan, phase) {
            let c = man.component(&p.id);
            let what = match (&p.want, p.no_build) {
                (_, true) => "no build for this target, skipped".to_string(),
                (Some(w), _) => format!(
                    "{} from {}",
                    fsutil::human_bytes(w.size),
                    w.source.describe()
                ),
                (None, _) => match c.and_then(|c| c.catalog.as_ref().map(|k| (k, c))) {
                    Some((k, _)) => {
                        format!("built from PKGBUILD (catalog {}, worker {})", k.base, k.id)
                    }
                    None if p.kind == Kind::Worker => "built from its PKGBUILD".to_string(),
                    None => "runs a command".to_string(),
                },
            };
            let unlock = c
                .and_then(|c| c.unlocks.as_ref())
                .map(|u| format!(", unlocks {}", u.capability))
                .unwrap_or_default();
            let opt = if p.optional { " (optional)" } else { "" };
            lines.push(format!("  {phase:<7} {}{opt}: {what}{unlock}", p.id));
        }
    }
    let total: u64 = plan
        .iter()
        .filter_map(|p| p.want.as_ref())
        .fold(0u64, |a, w| a.saturating_add(w.size));
    lines.push(format!(
        "  {} to download at most",
        fsutil::human_bytes(total)
    ));
    lines
}
