//! What the build engine needs from a recipe, for one target architecture:
//! names, version, architectures, dependencies, sources with their sums
//! (arch-specific entries appended as makepkg does), noextract and options.
//! `onramp pkgbuild json` prints this.

use super::{HASHES, Recipe, Refusal, Val};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub pkgbase: String,
    pub pkgname: Vec<String>,
    pub pkgver: String,
    pub pkgrel: String,
    pub epoch: Option<String>,
    /// `[epoch:]pkgver-pkgrel`
    pub version: String,
    pub pkgdesc: Option<String>,
    pub arch: Vec<String>,
    pub carch: String,
    pub depends: Vec<String>,
    pub makedepends: Vec<String>,
    pub checkdepends: Vec<String>,
    pub sources: Vec<SourceEntry>,
    pub noextract: Vec<String>,
    pub options: Vec<String>,
    /// Functions the recipe defines, of prepare, pkgver, build, check,
    /// package and package_NAME.
    pub functions: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceEntry {
    /// The entry as written (`name::url` included).
    pub entry: String,
    /// The file name in srcdir.
    pub name: String,
    /// The URL or relative path it comes from.
    pub location: String,
    /// Sums by kind (`sha256` -> hex or `SKIP`), for the kinds the recipe gives.
    pub sums: std::collections::BTreeMap<String, String>,
}

fn list(r: &Recipe, k: &str) -> Vec<String> {
    r.vars.get(k).map(Val::list).unwrap_or_default()
}

fn scalar(r: &Recipe, k: &str) -> Option<String> {
    r.vars.get(k).map(Val::scalar).filter(|s| !s.is_empty())
}

/// Global list plus its `_CARCH` variant, as makepkg merges them.
fn for_arch(r: &Recipe, k: &str, carch: &str) -> Vec<String> {
    let mut v = list(r, k);
    v.extend(list(r, &format!("{k}_{carch}")));
    v
}

/// Split a source entry into (file name, location) the way makepkg does.
pub fn split_source(entry: &str) -> (String, String) {
    if let Some((name, loc)) = entry.split_once("::") {
        return (name.to_string(), loc.to_string());
    }
    let loc = entry.to_string();
    let base = loc
        .split(['?', '#'])
        .next()
        .unwrap_or(&loc)
        .trim_end_matches('/');
    let name = base.rsplit('/').next().unwrap_or(base).to_string();
    (name, loc)
}

impl Meta {
    pub fn from_recipe(r: &Recipe, carch: &str) -> Result<Meta, Refusal> {
        let need = |k: &str| {
            scalar(r, k).ok_or_else(|| Refusal {
                line: 0,
                what: format!("{k} is not set"),
            })
        };
        let pkgname = list(r, "pkgname");
        let first = pkgname.first().cloned().ok_or_else(|| Refusal {
            line: 0,
            what: "pkgname is not set".into(),
        })?;
        let pkgver = need("pkgver")?;
        let pkgrel = need("pkgrel")?;
        let epoch = scalar(r, "epoch").filter(|e| e != "0");
        let version = match &epoch {
            Some(e) => format!("{e}:{pkgver}-{pkgrel}"),
            None => format!("{pkgver}-{pkgrel}"),
        };
        let entries = for_arch(r, "source", carch);
        let mut sources: Vec<SourceEntry> = entries
            .iter()
            .map(|e| {
                let (name, location) = split_source(e);
                SourceEntry {
                    entry: e.clone(),
                    name,
                    location,
                    sums: Default::default(),
                }
            })
            .collect();
        for h in HASHES {
            if !r.vars.contains_key(h) && !r.vars.contains_key(&format!("{h}_{carch}")) {
                continue;
            }
            let sums = for_arch(r, h, carch);
            if sums.len() != sources.len() {
                return Err(Refusal {
                    line: 0,
                    what: format!(
                        "{h} has {} entries for {} sources (with the {carch} ones)",
                        sums.len(),
                        sources.len()
                    ),
                });
            }
            let kind = h.trim_end_matches("sums").to_string();
            for (s, v) in sources.iter_mut().zip(sums) {
                s.sums.insert(kind.clone(), v);
            }
        }
        let mut functions: Vec<String> = r
            .functions
            .keys()
            .filter(|f| {
                ["prepare", "pkgver", "build", "check", "package"].contains(&f.as_str())
                    || f.starts_with("package_")
            })
            .cloned()
            .collect();
        functions.sort();
        Ok(Meta {
            pkgbase: scalar(r, "pkgbase").unwrap_or(first),
            pkgname,
            pkgver,
            pkgrel,
            epoch,
            version,
            pkgdesc: scalar(r, "pkgdesc"),
            arch: list(r, "arch"),
            carch: carch.to_string(),
            depends: for_arch(r, "depends", carch),
            makedepends: for_arch(r, "makedepends", carch),
            checkdepends: for_arch(r, "checkdepends", carch),
            sources,
            noextract: list(r, "noextract"),
            options: list(r, "options"),
            functions,
        })
    }

    /// makepkg's `options=(!check)`.
    pub fn option_off(&self, name: &str) -> bool {
        self.options.iter().any(|o| o == &format!("!{name}"))
    }

    pub fn has_fn(&self, f: &str) -> bool {
        self.functions.iter().any(|x| x == f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_sources_and_sums_are_appended() {
        let r = super::super::parse(
            "pkgname=w\npkgver=1\npkgrel=2\nepoch=1\narch=(x86_64 aarch64)\nsource=(a.tar.gz n::https://h/x.bin)\nsource_x86_64=(b)\nsha256sums=(SKIP 11)\nsha256sums_x86_64=(22)\nsha256sums_aarch64=(33)\noptions=(!check)\nbuild() { :; }\npackage() { :; }\n",
            "x86_64",
        )
        .unwrap();
        let m = Meta::from_recipe(&r, "x86_64").unwrap();
        assert_eq!(m.version, "1:1-2");
        let names: Vec<_> = m.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a.tar.gz", "n", "b"]);
        assert_eq!(m.sources[1].location, "https://h/x.bin");
        assert_eq!(m.sources[2].sums["sha256"], "22");
        assert!(m.option_off("check"));
        assert_eq!(m.functions, ["build", "package"]);
    }

    #[test]
    fn sums_count_must_match() {
        let r = super::super::parse(
            "pkgname=w\npkgver=1\npkgrel=1\narch=(any)\nsource=(a b)\nsha256sums=(1)\n",
            "x86_64",
        )
        .unwrap();
        let e = Meta::from_recipe(&r, "x86_64").unwrap_err();
        assert!(e.what.contains("sha256sums has 1 entries for 2 sources"));
    }

    #[test]
    fn source_names() {
        assert_eq!(
            split_source("https://h/p/f-1.tar.gz?x=1"),
            ("f-1.tar.gz".into(), "https://h/p/f-1.tar.gz?x=1".into())
        );
        assert_eq!(
            split_source("local.c"),
            ("local.c".into(), "local.c".into())
        );
    }
}
