//! The checks `makepkg --printsrcinfo` runs before it answers (its
//! lint_pkgbuild): a recipe makepkg rejects is refused here too, never
//! answered. Ported: package and dependency names, pkgver, pkgrel, epoch,
//! versions in dependencies, architecture-specific variables for `any`,
//! install and changelog files, option names.

use super::{Recipe, Refusal, Val};
use std::path::Path;

fn no(what: String) -> Result<(), Refusal> {
    Err(Refusal {
        line: 0,
        what: format!("makepkg rejects this recipe: {what}"),
    })
}

fn name_ok(kind: &str, name: &str) -> Result<(), Refusal> {
    if name.is_empty() {
        return no(format!("{kind} is not allowed to be empty"));
    }
    if name.starts_with('-') || name.starts_with('.') {
        return no(format!("{kind} {name:?} starts with a hyphen or a dot"));
    }
    if !name.is_ascii()
        || name
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || "+_.@-".contains(c)))
    {
        return no(format!("{kind} {name:?} contains invalid characters"));
    }
    Ok(())
}

fn pkgver_ok(v: &str, kind: &str) -> Result<(), Refusal> {
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || "/:-".contains(c)) || !v.is_ascii() {
        return no(format!(
            "pkgver in {kind} {v:?} is empty or has colons, slashes, hyphens, whitespace or non-ascii"
        ));
    }
    Ok(())
}

fn pkgrel_ok(r: &str, kind: &str) -> Result<(), Refusal> {
    let ok = match r.split_once('.') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.chars().all(|c| c.is_ascii_digit())
                && b.chars().all(|c| c.is_ascii_digit())
        }
        None => !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()),
    };
    if ok {
        Ok(())
    } else {
        no(format!(
            "pkgrel in {kind} must be integer[.integer], not {r:?}"
        ))
    }
}

fn epoch_ok(e: &str, kind: &str) -> Result<(), Refusal> {
    if e.is_empty() || !e.chars().all(|c| c.is_ascii_digit()) {
        return no(format!("epoch in {kind} must be an integer, not {e:?}"));
    }
    Ok(())
}

fn fullver_ok(v: &str, kind: &str) -> Result<(), Refusal> {
    let mut v = v;
    if let Some((e, rest)) = v.split_once(':') {
        epoch_ok(e, kind)?;
        v = rest;
    }
    if let Some(i) = v.rfind('-').filter(|i| *i > 0) {
        pkgrel_ok(&v[i + 1..], kind)?;
        v = &v[..i];
    }
    pkgver_ok(v, kind)
}

/// The options makepkg 6.0.2 knows (Debian's: its tidy scripts'
/// `packaging_options` and its buildenv scripts' `build_options`).
const KNOWN_OPTIONS: &[&str] = &[
    "strip",
    "debug",
    "docs",
    "libtool",
    "staticlibs",
    "emptydirs",
    "zipman",
    "purge",
    "lto",
    "makeflags",
    "buildflags",
    "ccache",
    "distcc",
];

/// makepkg's lint_options: every entry of `options` is a known option or
/// one with `!` before it ("options array contains unknown option").
fn options_ok(v: &Val) -> Result<(), Refusal> {
    for o in v.list() {
        if !KNOWN_OPTIONS.contains(&o.strip_prefix('!').unwrap_or(&o)) {
            return no(format!("options array contains unknown option {o:?}"));
        }
    }
    Ok(())
}

/// A package function's overrides get the same dependency and option checks.
pub fn check_overrides(ov: &std::collections::BTreeMap<String, Val>) -> Result<(), Refusal> {
    for (k, v) in ov {
        let base = k.split('_').next().unwrap_or(k);
        match base {
            "options" if k == "options" => options_ok(v)?,
            "depends" | "makedepends" | "checkdepends" | "provides" | "conflicts" | "replaces" => {
                for d in v.list() {
                    dep_ok(k, &d)?;
                }
            }
            "optdepends" => {
                for d in v.list() {
                    dep_ok(k, d.split(':').next().unwrap_or("").trim_end())?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// `name<op>version` as makepkg splits it (at the first <, > or =).
fn dep_ok(kind: &str, dep: &str) -> Result<(), Refusal> {
    let cut = dep.find(['<', '>', '=']).unwrap_or(dep.len());
    let name = &dep[..cut];
    name_ok(kind, name)?;
    let ver = dep[cut..].trim_start_matches(['<', '>', '=']);
    if !ver.is_empty() {
        fullver_ok(ver, kind)?;
    }
    Ok(())
}

/// makepkg's lint_package_function: which package functions must exist.
fn package_functions(r: &Recipe) -> Result<(), Refusal> {
    let names = r.vars.get("pkgname").map(Val::list).unwrap_or_default();
    let has = |f: &str| r.functions.contains_key(f);
    match names.as_slice() {
        [one] => {
            let own = format!("package_{one}");
            if has("package") && has(&own) {
                return no(format!("conflicting package() and {own}() functions"));
            }
            if has("build") && !has("package") && !has(&own) {
                return no("missing package() function".into());
            }
        }
        many => {
            if has("package") {
                return no("extra package() function for a split package".into());
            }
            for n in many {
                if !has(&format!("package_{n}")) {
                    return no(format!(
                        "missing package_{n}() function for split package {n:?}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// makepkg's lint_variable: arrays are arrays and strings are strings,
/// globally and where a package function assigns them.
fn variable_kinds(r: &Recipe, arches: &[String]) -> Result<(), Refusal> {
    let arrays: Vec<String> = ARRAYS
        .iter()
        .chain(super::HASHES.iter())
        .map(|s| s.to_string())
        .collect();
    let mut arch_arrays: Vec<String> = Vec::new();
    for a in arches.iter().filter(|a| *a != "any") {
        for i in super::ARCH_ARRAYS.iter().chain(super::HASHES.iter()) {
            arch_arrays.push(format!("{i}_{a}"));
        }
    }
    for i in arrays.iter().chain(arch_arrays.iter()) {
        if matches!(r.vars.get(i), Some(Val::Str(_))) {
            return no(format!("{i} should be an array"));
        }
    }
    for i in STRINGS {
        if matches!(r.vars.get(i), Some(Val::Arr(_))) {
            return no(format!("{i} should not be an array"));
        }
    }
    let as_string: Vec<(String, super::Form)> = arrays
        .iter()
        .chain(arch_arrays.iter())
        .map(|n| (n.clone(), super::Form::Scalar))
        .collect();
    let as_array: Vec<(String, super::Form)> = STRINGS
        .iter()
        .map(|n| (n.to_string(), super::Form::Array))
        .collect();
    for pkg in r.vars.get("pkgname").map(Val::list).unwrap_or_default() {
        if let Some(k) = super::function_assignments(r, &pkg, &as_string)?
            .keys()
            .next()
        {
            return no(format!("{k} should be an array"));
        }
        if let Some(k) = super::function_assignments(r, &pkg, &as_array)?
            .keys()
            .next()
        {
            return no(format!("{k} should not be an array"));
        }
    }
    Ok(())
}

/// makepkg's schema: the array and string attributes of a recipe.
const ARRAYS: [&str; 15] = [
    "arch",
    "backup",
    "checkdepends",
    "conflicts",
    "depends",
    "groups",
    "license",
    "makedepends",
    "noextract",
    "optdepends",
    "options",
    "provides",
    "replaces",
    "source",
    "validpgpkeys",
];
const STRINGS: [&str; 8] = [
    "changelog",
    "epoch",
    "install",
    "pkgbase",
    "pkgdesc",
    "pkgrel",
    "pkgver",
    "url",
];

/// makepkg's lint_package_function_variable: attributes that are not
/// overrides may not be set inside a package function.
fn package_function_variables(r: &Recipe, arches: &[String]) -> Result<(), Refusal> {
    let plain: Vec<String> = ARRAYS
        .iter()
        .chain(STRINGS.iter())
        .map(|s| s.to_string())
        .chain(super::HASHES.iter().map(|s| s.to_string()))
        .filter(|n| !super::OVERRIDES.contains(&n.as_str()))
        .collect();
    let mut names: Vec<(String, super::Form)> = plain
        .iter()
        .map(|n| (n.clone(), super::Form::Either))
        .collect();
    for a in arches.iter().filter(|a| *a != "any") {
        names.extend(
            plain
                .iter()
                .map(|n| (format!("{n}_{a}"), super::Form::Either)),
        );
    }
    for pkg in r.vars.get("pkgname").map(Val::list).unwrap_or_default() {
        if let Some(k) = super::function_assignments(r, &pkg, &names)?.keys().next() {
            return no(format!("{k} can not be set inside a package function"));
        }
    }
    Ok(())
}

pub fn check(r: &Recipe, dir: Option<&Path>, arches: &[String]) -> Result<(), Refusal> {
    package_functions(r)?;
    variable_kinds(r, arches)?;
    package_function_variables(r, arches)?;
    for n in r.vars.get("pkgname").map(Val::list).unwrap_or_default() {
        name_ok("pkgname", &n)?;
    }
    if let Some(b) = r.vars.get("pkgbase") {
        name_ok("pkgbase", &b.scalar())?;
    }
    pkgver_ok(
        &r.vars.get("pkgver").map(Val::scalar).unwrap_or_default(),
        "pkgver",
    )?;
    pkgrel_ok(
        &r.vars.get("pkgrel").map(Val::scalar).unwrap_or_default(),
        "pkgrel",
    )?;
    if let Some(e) = r.vars.get("epoch") {
        epoch_ok(&e.scalar(), "epoch")?;
    }
    if let Some(o) = r.vars.get("options") {
        options_ok(o)?;
    }
    let dep_kinds = [
        "depends",
        "makedepends",
        "checkdepends",
        "provides",
        "conflicts",
        "replaces",
    ];
    let mut names: Vec<String> = dep_kinds.iter().map(|s| s.to_string()).collect();
    for a in arches {
        for k in dep_kinds {
            names.push(format!("{k}_{a}"));
        }
    }
    for k in &names {
        for d in r.vars.get(k).map(Val::list).unwrap_or_default() {
            dep_ok(k, &d)?;
        }
    }
    for k in ["optdepends".to_string()]
        .into_iter()
        .chain(arches.iter().map(|a| format!("optdepends_{a}")))
    {
        for d in r.vars.get(&k).map(Val::list).unwrap_or_default() {
            let name = d.split(':').next().unwrap_or("");
            dep_ok(&k, name.trim_end())?;
        }
    }
    if arches.iter().any(|a| a == "any") {
        for k in r.vars.keys() {
            if let Some(base) = k.strip_suffix("_any")
                && (super::ARCH_ARRAYS.contains(&base) || super::HASHES.contains(&base))
            {
                return no(format!("architecture-specific variable {k} for 'any'"));
            }
        }
    }
    for k in ["install", "changelog"] {
        if let Some(f) = r.vars.get(k).map(Val::scalar).filter(|s| !s.is_empty()) {
            match dir {
                Some(d) if d.join(&f).is_file() => {}
                Some(_) => return no(format!("its {k} file {f:?} does not exist")),
                None => {
                    return Err(Refusal {
                        line: 0,
                        what: format!("cannot check the {k} file without the recipe's directory"),
                    });
                }
            }
        }
    }
    Ok(())
}
