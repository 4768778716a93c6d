//! `.SRCINFO` exactly as makepkg 6's `srcinfo.sh` writes it: the same
//! attribute order, whitespace normalisation, and the rule that a package
//! section shows an attribute only when its `package_*()` assigns it.

use super::{ARCH_ARRAYS as ARCH_ATTRS, HASHES, Recipe, Refusal, Val, overrides};

/// Collapse whitespace runs to one space and trim one at each end.
fn norm(s: &str) -> String {
    let mut out = String::new();
    let mut ws = false;
    for c in s.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c') {
            if !ws {
                out.push(' ');
            }
            ws = true;
        } else {
            out.push(c);
            ws = false;
        }
    }
    let out = out.strip_prefix(' ').unwrap_or(&out).to_string();
    out.strip_suffix(' ').map(str::to_string).unwrap_or(out)
}

fn line(out: &mut String, k: &str, v: &str) {
    out.push_str(&format!("\t{k} = {}\n", norm(v)));
}

/// Global attribute: strings when non-empty, arrays when non-empty.
fn global(out: &mut String, r: &Recipe, k: &str, multi: bool) {
    match (r.vars.get(k), multi) {
        (Some(v), false) => {
            let s = v.scalar();
            if !s.is_empty() {
                line(out, k, &s);
            }
        }
        (Some(v), true) => {
            for e in v.list() {
                line(out, k, &e);
            }
        }
        (None, _) => {}
    }
}

/// Package attribute: only when overridden; an empty override is one empty line.
fn package(out: &mut String, ov: &std::collections::BTreeMap<String, Val>, k: &str) {
    match ov.get(k) {
        Some(Val::Str(s)) => line(out, k, s),
        Some(Val::Arr(a)) if a.is_empty() => line(out, k, ""),
        Some(Val::Arr(a)) => {
            for e in a {
                line(out, k, e);
            }
        }
        None => {}
    }
}

/// `dir` is the recipe's directory (install and changelog files must exist there).
pub fn srcinfo(r: &Recipe, dir: Option<&std::path::Path>) -> Result<String, Refusal> {
    let need = |k: &str| -> Result<(), Refusal> {
        match r.vars.get(k) {
            Some(v) if !v.scalar().is_empty() => Ok(()),
            _ => Err(Refusal {
                line: 0,
                what: format!("{k} is not set (makepkg requires it)"),
            }),
        }
    };
    for k in ["pkgname", "pkgver", "pkgrel", "arch"] {
        need(k)?;
    }
    let names = r.vars.get("pkgname").map(Val::list).unwrap_or_default();
    let base = r
        .vars
        .get("pkgbase")
        .map(Val::scalar)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| names[0].clone());
    let arches: Vec<String> = r.vars.get("arch").map(Val::list).unwrap_or_default();
    super::lint::check(r, dir, &arches)?;
    let mut out = format!("pkgbase = {base}\n");
    for k in [
        "pkgdesc",
        "pkgver",
        "pkgrel",
        "epoch",
        "url",
        "install",
        "changelog",
    ] {
        global(&mut out, r, k, false);
    }
    let multi = [
        "arch",
        "groups",
        "license",
        "checkdepends",
        "makedepends",
        "depends",
        "optdepends",
        "provides",
        "conflicts",
        "replaces",
        "noextract",
        "options",
        "backup",
        "source",
        "validpgpkeys",
    ];
    for k in multi.iter().copied().chain(HASHES) {
        global(&mut out, r, k, true);
    }
    for a in arches.iter().filter(|a| *a != "any") {
        for k in ARCH_ATTRS.iter().copied().chain(HASHES) {
            global(&mut out, r, &format!("{k}_{a}"), true);
        }
    }
    for pkg in &names {
        out.push_str(&format!("\npkgname = {pkg}\n"));
        let ov = overrides(r, pkg, &arches)?;
        super::lint::check_overrides(&ov)?;
        for k in ["pkgdesc", "url", "install", "changelog"] {
            package(&mut out, &ov, k);
        }
        for k in [
            "arch",
            "groups",
            "license",
            "checkdepends",
            "depends",
            "optdepends",
            "provides",
            "conflicts",
            "replaces",
            "options",
            "backup",
        ] {
            package(&mut out, &ov, k);
        }
        let pkg_arch = match ov.get("arch") {
            Some(v) => v.list(),
            None => arches.clone(),
        };
        for a in pkg_arch.iter().filter(|a| *a != "any") {
            for k in ARCH_ATTRS.iter().copied().chain(HASHES) {
                package(&mut out, &ov, &format!("{k}_{a}"));
            }
        }
    }
    Ok(out)
}
