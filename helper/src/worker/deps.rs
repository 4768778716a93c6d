//! Dependency check before a build: each of a recipe's depends, makedepends
//! and checkdepends is looked up through a probe (a command on the build's
//! PATH, a pkg-config module, a shared library). Built-in probes cover
//! common names; the manifest's `probes` add or replace them; an unknown name
//! is looked for as a command of the same name.

use crate::manifest::Probe;
use crate::run::on_build_path;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn cmd(c: &str) -> Probe {
    Probe {
        command: Some(c.into()),
        ..Probe::default()
    }
}

fn lib(l: &str) -> Probe {
    Probe {
        library: Some(l.into()),
        ..Probe::default()
    }
}

fn pc(m: &str) -> Probe {
    Probe {
        pkg_config: Some(m.into()),
        ..Probe::default()
    }
}

/// The built-in probe for a dependency name (Arch package names mostly).
fn builtin(name: &str) -> Probe {
    match name {
        "glibc" => lib("libc.so.6"),
        "gcc-libs" => lib("libstdc++.so.6"),
        "python" => cmd("python3"),
        "cuda" => lib("libcudart.so"),
        "rocm-hip-runtime" | "hip-runtime-amd" => lib("libamdhip64.so"),
        "vulkan-icd-loader" => lib("libvulkan.so.1"),
        "openblas" => pc("openblas"),
        "zlib" => pc("zlib"),
        "openssl" => pc("openssl"),
        "curl" => cmd("curl"),
        other => cmd(other),
    }
}

/// `gcc>=10` -> `gcc`.
pub fn dep_name(d: &str) -> &str {
    d.split(['<', '>', '=']).next().unwrap_or(d).trim()
}

fn multiarch() -> Vec<String> {
    let a = crate::platform::arch();
    let triplet = match a {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "armv7" => "arm-linux-gnueabihf",
        "i686" => "i386-linux-gnu",
        _ => "",
    };
    if triplet.is_empty() {
        Vec::new()
    } else {
        vec![triplet.to_string()]
    }
}

fn lib_dirs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("LD_LIBRARY_PATH") {
        v.extend(std::env::split_paths(&p));
    }
    for base in ["/usr/local/lib", "/lib", "/usr/lib", "/lib64", "/usr/lib64"] {
        v.push(base.into());
        for t in multiarch() {
            v.push(Path::new(base).join(t));
        }
    }
    if let Ok(rd) = std::fs::read_dir("/etc/ld.so.conf.d") {
        for e in rd.flatten() {
            if let Ok(s) = std::fs::read_to_string(e.path()) {
                v.extend(
                    s.lines()
                        .map(str::trim)
                        .filter(|l| l.starts_with('/'))
                        .map(PathBuf::from),
                );
            }
        }
    }
    v
}

fn pc_dirs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("PKG_CONFIG_PATH") {
        v.extend(std::env::split_paths(&p));
    }
    for base in ["/usr/local/lib", "/usr/lib", "/usr/lib64", "/usr/share"] {
        v.push(Path::new(base).join("pkgconfig"));
        for t in multiarch() {
            v.push(Path::new(base).join(t).join("pkgconfig"));
        }
    }
    v
}

fn found(p: &Probe) -> bool {
    if let Some(c) = &p.command {
        return on_build_path(c);
    }
    if let Some(l) = &p.library {
        return lib_dirs().iter().any(|d| d.join(l).exists());
    }
    if let Some(m) = &p.pkg_config {
        return pc_dirs()
            .iter()
            .any(|d| d.join(format!("{m}.pc")).is_file());
    }
    false
}

/// One group of dependencies and what was found.
pub struct Group {
    pub label: &'static str,
    pub items: Vec<(String, bool)>,
}

pub struct Report {
    pub groups: Vec<Group>,
}

impl Report {
    pub fn missing(&self) -> Vec<&str> {
        self.groups
            .iter()
            .flat_map(|g| g.items.iter())
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// `Runtime: gcc ✓, cuda ✗; Build: make ✓`
    pub fn line(&self) -> String {
        self.groups
            .iter()
            .filter(|g| !g.items.is_empty())
            .map(|g| {
                let items: Vec<String> = g
                    .items
                    .iter()
                    .map(|(n, ok)| format!("{n} {}", if *ok { "✓" } else { "✗" }))
                    .collect();
                format!("{}: {}", g.label, items.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Probe every dependency; `extra` are the manifest's probes.
pub fn check(groups: &[(&'static str, &[String])], extra: &BTreeMap<String, Probe>) -> Report {
    Report {
        groups: groups
            .iter()
            .map(|(label, deps)| Group {
                label,
                items: deps
                    .iter()
                    .map(|d| {
                        let n = dep_name(d);
                        let p = extra.get(n).cloned().unwrap_or_else(|| builtin(n));
                        (n.to_string(), found(&p))
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_reads_like_the_issue() {
        let deps = vec!["sh".to_string(), "onramp-no-such-tool>=2".to_string()];
        let mk = vec!["glibc".to_string()];
        let r = check(&[("Runtime", &deps), ("Build", &mk)], &BTreeMap::new());
        assert_eq!(
            r.line(),
            "Runtime: sh ✓, onramp-no-such-tool ✗; Build: glibc ✓"
        );
        assert_eq!(r.missing(), ["onramp-no-such-tool"]);
    }

    #[test]
    fn manifest_probes_override() {
        let mut extra = BTreeMap::new();
        extra.insert("cuda".to_string(), cmd("sh"));
        let deps = vec!["cuda".to_string()];
        assert!(check(&[("Runtime", &deps)], &extra).missing().is_empty());
    }
}
