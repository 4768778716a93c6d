//! The resolved plan: which artifact each component uses on this target, in
//! which order things happen, and the plan id that a saved state must match.

use crate::error::{Code, Result, err};
use crate::fsutil;
use crate::machine::Hardware;
use crate::manifest::{Choice, Component, Kind, Loaded, Selection, Source, Unpack, Want};
use std::collections::BTreeSet;
use std::path::Path;

/// Narrow `man` to what this machine installs: the profile's components
/// (`profile`, else the manifest's default; every component without
/// either) with what they depend on, each replaced by the first of its
/// variants that fits `hw`. Health checks of components left out go too.
pub fn select(man: &mut Loaded, hw: &Hardware, profile: Option<&str>) -> Result<()> {
    let profile = profile
        .map(str::to_string)
        .or_else(|| man.m.default_profile.clone());
    let mut keep: Option<BTreeSet<String>> = None;
    if let Some(name) = &profile {
        let Some(p) = man.m.profiles.get(name) else {
            let have: Vec<&str> = man.m.profiles.keys().map(String::as_str).collect();
            return err(
                Code::Usage,
                if have.is_empty() {
                    format!("--profile {name}: this manifest has no profiles; leave --profile out")
                } else {
                    format!(
                        "--profile {name}: no such profile; this manifest has {}",
                        have.join(", ")
                    )
                },
            );
        };
        let mut set: BTreeSet<String> = BTreeSet::new();
        let mut todo: Vec<String> = p.components.clone();
        while let Some(id) = todo.pop() {
            if set.insert(id.clone())
                && let Some(c) = man.component(&id)
            {
                todo.extend(c.depends_on.iter().cloned());
            }
        }
        keep = Some(set);
    }
    let mut sel = Selection {
        profile,
        hardware: Some(hw.clone()),
        ..Default::default()
    };
    if let Some(keep) = &keep {
        sel.left_out = man
            .m
            .components
            .iter()
            .filter(|c| !keep.contains(&c.id))
            .map(|c| c.id.clone())
            .collect();
        man.m.components.retain(|c| keep.contains(&c.id));
        man.m.health_checks.retain(|h| keep.contains(&h.component));
    }
    for c in man.m.components.iter_mut() {
        if c.variants.is_empty() {
            continue;
        }
        let mut passed = Vec::new();
        let mut chosen = None;
        for v in &c.variants {
            match hw.fits(&v.requires) {
                Ok(why) => {
                    chosen = Some((v.clone(), why));
                    break;
                }
                Err(why) => passed.push(format!("{}: {why}", v.id)),
            }
        }
        let choice = match chosen {
            Some((v, why)) => {
                let why = if passed.is_empty() {
                    why
                } else {
                    format!("{why}; passed over {}", passed.join("; "))
                };
                *c = c.with_variant(&v);
                Choice {
                    variant: Some(v.id),
                    why,
                    description: v.description,
                }
            }
            None => {
                c.variants.clear();
                c.artifacts.clear();
                Choice {
                    variant: None,
                    why: passed.join("; "),
                    description: None,
                }
            }
        };
        sel.choices.insert(c.id.clone(), choice);
    }
    man.chosen = sel;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Planned {
    pub id: String,
    pub kind: Kind,
    pub optional: bool,
    pub want: Option<Want>,
    pub unpack: Option<Unpack>,
    pub unpacked_size: Option<u64>,
    /// Leading components an archive's entries lose (`strip_components`).
    pub strip: usize,
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
    // Only a manifest with profiles or variants adds its choices, so the
    // plan of one without them is what it was before they existed.
    let key = man.chosen.key();
    if !key.is_empty() {
        s.push('\0');
        s.push_str(&key);
    }
    fsutil::sha256_bytes(s.as_bytes())[..16].to_string()
}

fn resolve_one(man: &Loaded, c: &Component, target: &str) -> Planned {
    let art = c.artifacts.get(target).or_else(|| c.artifacts.get("any"));
    let want = art.map(|a| Want {
        label: c.id.clone(),
        source: match (&a.url, &a.path, &a.hf, &a.oci) {
            (_, _, Some(h), _) => Source::Hf(h.clone()),
            (_, _, _, Some(o)) => Source::Oci(o.clone()),
            (Some(u), ..) => Source::Url(u.clone()),
            (None, Some(p), ..) => match man.resolve(p) {
                crate::manifest::Origin::Url(u) => Source::Url(u),
                crate::manifest::Origin::Dir(d) => Source::Path(d),
            },
            (None, None, ..) => Source::Path(man.dir.clone()),
        },
        size: a.size.unwrap_or(0),
        sha256: a.sha256.clone().unwrap_or_default(),
    });
    let unfit = man
        .chosen
        .choices
        .get(&c.id)
        .is_some_and(|ch| ch.variant.is_none());
    // A worker without a prebuilt artifact here is built from its recipe,
    // which only a Unix target can do.
    let unbuilt = match c.kind {
        Kind::Worker => {
            art.is_none() && (cannot_build(target) || (c.recipe.is_none() && c.catalog.is_none()))
        }
        _ => !c.artifacts.is_empty() && art.is_none(),
    };
    Planned {
        id: c.id.clone(),
        kind: c.kind,
        optional: c.optional,
        no_build: unfit || unbuilt,
        unpack: art.and_then(|a| a.unpack),
        unpacked_size: art.and_then(|a| a.unpacked_size),
        strip: art.and_then(|a| a.strip_components).unwrap_or(0) as usize,
        want,
    }
}

/// Targets where a PKGBUILD cannot be built (no bash, no build users):
/// workers install there only from a prebuilt artifact.
pub fn cannot_build(target: &str) -> bool {
    target.starts_with("windows-")
}

/// Why a worker has no build for `target`, and the fix.
pub fn worker_unbuilt(id: &str, target: &str) -> String {
    format!(
        "worker {id} is built from a PKGBUILD, which needs bash and a Unix build user: {target} cannot build it; give {id} a prebuilt archive for {target} (\"artifacts\": {{\"{target}\": {{... \"unpack\": \"tar.gz\"}}}}, in the component or in a variant), or mark it optional"
    )
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
/// `found`: where a verified copy of an artifact already is on this
/// machine (another tool's store), so it is not downloaded.
pub fn describe(
    man: &Loaded,
    plan: &[Planned],
    target: &str,
    found: &dyn Fn(&Want) -> Option<String>,
) -> Vec<String> {
    let mut lines = vec![format!("{} {} for {target}:", man.m.name, man.m.version)];
    if let Some(hw) = &man.chosen.hardware {
        lines.push(format!("  machine: {}", hw.describe()));
    }
    if let Some(p) = &man.chosen.profile {
        lines.push(format!("  profile: {p}"));
    }
    for l in man.chosen.describe() {
        lines.push(format!("  choice: {l}"));
    }
    if !man.chosen.left_out.is_empty() {
        lines.push(format!(
            "  not in this profile: {}",
            man.chosen.left_out.join(", ")
        ));
    }
    for phase in ["server", "models", "workers", "extras"] {
        for p in for_phase(man, plan, phase) {
            let c = man.component(&p.id);
            let unfit = man
                .chosen
                .choices
                .get(&p.id)
                .filter(|c| c.variant.is_none());
            let what = match (&p.want, p.no_build) {
                (_, true) if unfit.is_some() => "no variant fits this machine, skipped".to_string(),
                (_, true) if p.kind == Kind::Worker && cannot_build(target) => {
                    "a PKGBUILD build, which this target cannot run: skipped".to_string()
                }
                (Some(w), _) if p.kind == Kind::Worker => format!(
                    "prebuilt, {} from {}",
                    fsutil::human_bytes(w.size),
                    w.source.describe()
                ),
                (_, true) => "no build for this target, skipped".to_string(),
                (Some(w), _) if let Some(at) = found(w) => {
                    format!("found in {at} (verified when taken), nothing to download")
                }
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
    // What comes over the network and what is copied from disk (a stack
    // installed from its own directory downloads nothing).
    let sum = |by_url: bool| -> u64 {
        plan.iter()
            .filter_map(|p| p.want.as_ref())
            .filter(|w| w.source.remote() == by_url && found(w).is_none())
            .fold(0u64, |a, w| a.saturating_add(w.size))
    };
    let (net, disk) = (sum(true), sum(false));
    let mut total = Vec::new();
    if net > 0 || disk == 0 {
        total.push(format!("{} to download at most", fsutil::human_bytes(net)));
    }
    if disk > 0 {
        total.push(format!("{} to copy from disk", fsutil::human_bytes(disk)));
    }
    lines.push(format!("  {}", total.join(", ")));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn loaded(extra: &str) -> Loaded {
        let text = format!(
            r#"{{"schema":1,"name":"s","version":"1",{extra}"components":[{{"id":"m","kind":"model","install_path":"m.bin","artifacts":{{"any":{{"path":"m.bin","size":1,"sha256":"{}"}}}}}}]}}"#,
            "a".repeat(64)
        );
        crate::manifest::from_bytes(PathBuf::from("/x/manifest.json"), text.as_bytes(), None)
            .expect("manifest")
    }

    #[test]
    fn a_manifest_without_profiles_or_variants_keeps_the_plan_id_it_had() {
        let mut man = loaded("");
        select(&mut man, &Hardware::default(), None).expect("select");
        let want = fsutil::sha256_bytes(format!("{}\0/p\0linux-x86_64", man.sha256).as_bytes())
            [..16]
            .to_string();
        assert_eq!(plan_id(&man, Path::new("/p"), "linux-x86_64"), want);
        // A profile is a choice: another plan.
        let mut man = loaded(r#""profiles":{"all":{"components":["m"]}},"#);
        let before = plan_id(&man, Path::new("/p"), "linux-x86_64");
        select(&mut man, &Hardware::default(), Some("all")).expect("select");
        assert_ne!(plan_id(&man, Path::new("/p"), "linux-x86_64"), before);
    }

    fn with_worker(worker: &str) -> Loaded {
        let text = format!(r#"{{"schema":1,"name":"s","version":"1","components":[{worker}]}}"#);
        crate::manifest::from_bytes(PathBuf::from("/x/manifest.json"), text.as_bytes(), None)
            .expect("manifest")
    }

    #[test]
    fn a_worker_builds_on_unix_and_needs_a_prebuilt_archive_on_windows() {
        let sha = "b".repeat(64);
        let recipe = format!(r#""recipe":{{"path":"w/PKGBUILD","sha256":"{sha}"}}"#);
        let man = with_worker(&format!(r#"{{"id":"w","kind":"worker",{recipe}}}"#));
        let on = |t: &str| resolve(&man, t).expect("resolve").remove(0);
        assert!(!on("linux-x86_64").no_build);
        assert!(on("linux-x86_64").want.is_none());
        assert!(on("windows-x86_64").no_build);
        let msg = worker_unbuilt("w", "windows-x86_64");
        assert!(msg.contains("worker w") && msg.contains("prebuilt archive for windows-x86_64"));
        // A prebuilt archive for Windows: fetched there, built elsewhere.
        let art = format!(
            r#""artifacts":{{"windows-x86_64":{{"path":"w.tar.gz","size":9,"sha256":"{sha}","unpack":"tar.gz"}}}}"#
        );
        let man = with_worker(&format!(r#"{{"id":"w","kind":"worker",{recipe},{art}}}"#));
        let on = |t: &str| resolve(&man, t).expect("resolve").remove(0);
        assert!(!on("windows-x86_64").no_build);
        assert_eq!(on("windows-x86_64").want.map(|w| w.size), Some(9));
        assert!(!on("linux-aarch64").no_build);
        assert!(on("linux-aarch64").want.is_none());
        // Prebuilt only: no build where there is no archive.
        let man = with_worker(&format!(r#"{{"id":"w","kind":"worker",{art}}}"#));
        assert!(resolve(&man, "linux-x86_64").expect("resolve")[0].no_build);
        // A worker's artifact must be an archive.
        let text = format!(
            r#"{{"schema":1,"name":"s","version":"1","components":[{{"id":"w","kind":"worker","artifacts":{{"any":{{"path":"w","size":9,"sha256":"{sha}"}}}}}}]}}"#
        );
        let Err(e) = crate::manifest::from_bytes(PathBuf::from("/x/m.json"), text.as_bytes(), None)
        else {
            panic!("a worker's single-file artifact was accepted");
        };
        assert!(e.msg.contains("prebuilt builds"), "{}", e.msg);
    }
}
