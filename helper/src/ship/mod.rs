//! What a stack ships, in one place: the files a manifest needs from
//! beside it (`needs`), the installers with the release's values baked in
//! (`installer`), the helper binaries (`helpers`), and a bundle's index and
//! archive (`bundle`). Both layouts are built from these pieces:
//!
//! | path                       | release | bundle |
//! |----------------------------|---------|--------|
//! | install.sh, install.ps1    | yes (base URL, manifest URL, keys, pins) | yes (pins, keys) |
//! | onramp-VERSION-TARGET[.exe]| yes     | yes    |
//! | manifest.json[.minisig]    | yes (configure sources inlined, signed here) | yes (as given) |
//! | every file `needs` lists   | yes, but configure sources | yes |
//! | sha256/HEX (what URLs name)| no      | yes (a download cache: what `--from` reads) |
//! | SHA256SUMS                 | yes     | no     |
//! | index.json                 | no      | yes    |
//!
//! `onramp release` and `onramp bundle` (in `cmd/`) only put them together.

use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::manifest::{self, Loaded};
use crate::manifest::{Source, Want};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub mod bundle;
pub mod helpers;
pub mod installer;

/// A path a release copies: relative, below the manifest's directory.
fn below(at: &str, p: &str) -> Result<()> {
    if p.is_empty() || p.starts_with('/') || p.split('/').any(|c| c == ".." || c == ".") {
        return err(
            Code::Manifest,
            format!(
                "{at} {p:?} is not below the manifest's directory; a release copies only files below it (or give a url)"
            ),
        );
    }
    Ok(())
}

/// Copy `src` to `out/rel` in chunks (a model may be larger than memory),
/// hashing while copying; with `want`, the bytes must have that sha256
/// (and size), or nothing is left at `out/rel`.
pub fn copy_in(
    src: &Path,
    out: &Path,
    rel: &str,
    want: Option<(&str, Option<u64>)>,
) -> Result<String> {
    use sha2::Digest;
    use std::io::Write;
    let mut f =
        crate::download::open_nofollow(src).map_err(|e| Error::io("cannot open", src, e))?;
    let meta = f.metadata().map_err(|e| Error::io("cannot read", src, e))?;
    if !meta.is_file() {
        return err(
            Code::Manifest,
            format!("{} is not a regular file", src.display()),
        );
    }
    let dest = out.join(rel);
    if let Some(d) = dest.parent() {
        fsutil::mkdirs(d)?;
    }
    let tmp = fsutil::temp_beside(&dest);
    let mut w = std::fs::File::create(&tmp).map_err(|e| Error::io("cannot create", &tmp, e))?;
    let mut h = sha2::Sha256::new();
    let mut n = 0u64;
    let copied = fsutil::read_chunks(&mut f, src, |b| {
        h.update(b);
        n += b.len() as u64;
        w.write_all(b)
            .map_err(|e| Error::io("cannot write", &tmp, e))
    })
    .and_then(|()| w.sync_all().map_err(|e| Error::io("cannot sync", &tmp, e)));
    if let Err(e) = copied {
        fsutil::remove(&tmp);
        return Err(e);
    }
    let sha = fsutil::hex(&h.finalize());
    if let Some((w, size)) = want
        && (sha != w || size.is_some_and(|s| s != n))
    {
        fsutil::remove(&tmp);
        return err(
            Code::Integrity,
            format!(
                "{}: sha256 {sha} ({n} bytes) is not what the manifest says ({w}); fix the manifest or the file before releasing",
                src.display(),
            ),
        );
    }
    if dest.exists() {
        // Named twice (two targets sharing a file): identical, or refused.
        fsutil::remove(&tmp);
        if fsutil::sha256_file(&dest)? != sha {
            return err(
                Code::Manifest,
                format!("{rel} is named twice with different contents"),
            );
        }
        return Ok(sha);
    }
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io("cannot move into place", &dest, e))?;
    Ok(sha)
}

/// Why a stack ships a file from beside its manifest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A component's artifact named by relative `path`.
    Artifact,
    /// A worker's pinned PKGBUILD (`recipe.path`).
    Recipe,
    /// A file beside a pinned PKGBUILD that it names: a local source (of
    /// any architecture), its install or changelog file.
    RecipeFile,
    /// A file of a worker's entry in a local catalog.
    Catalog,
    /// A configure file's `source` (a release writes its text into the
    /// manifest instead).
    ConfigSource,
}

/// The sha256 (and size) a shipped file must have, when it is pinned.
type Pin = Option<(String, Option<u64>)>;

/// A file below the manifest's directory that an install of the stack
/// reads: where the manifest names it (for messages), its relative path,
/// and the sha256 (and size) it must have, when pinned.
pub struct Need {
    pub at: String,
    pub rel: String,
    pub want: Pin,
    pub role: Role,
}

/// Every file the manifest names by relative path, the one list release
/// and bundle ship (a bundle is what `--from` installs from): artifacts
/// (every variant), pinned recipes, local catalog entries, configure
/// sources. What is copied must be below the manifest's directory
/// (`copy_needs` checks it; a release inlines configure sources instead).
pub fn needs(m: &Loaded) -> Result<Vec<Need>> {
    let mut v = Vec::new();
    for (i, c) in m.m.components.iter().enumerate() {
        let sets = std::iter::once((String::new(), &c.artifacts)).chain(
            c.variants
                .iter()
                .enumerate()
                .map(|(j, v)| (format!(".variants[{j}]"), &v.artifacts)),
        );
        for (at, arts) in sets {
            for (t, a) in arts {
                if let Some(p) = &a.path {
                    v.push(Need {
                        at: format!("components[{i}]{at}.artifacts.{t}.path"),
                        rel: p.clone(),
                        want: a.sha256.clone().map(|s| (s, a.size)),
                        role: Role::Artifact,
                    });
                }
            }
        }
        if let Some(r) = &c.recipe
            && let Some(p) = &r.path
        {
            let at = format!("components[{i}].recipe.path");
            below(&at, p)?;
            v.extend(recipe_files(m, &at, p, &r.sha256)?);
            v.push(Need {
                at,
                rel: p.clone(),
                want: Some((r.sha256.clone(), None)),
                role: Role::Recipe,
            });
        }
        if let Some(k) = &c.catalog
            && !k.base.contains("://")
        {
            let at = format!("components[{i}].catalog.base");
            below(&at, &k.base)?;
            let rel = format!("{}/workers/{}", k.base.trim_end_matches('/'), k.id);
            for file in files_below(&m.dir.join(&rel))? {
                v.push(Need {
                    at: at.clone(),
                    rel: format!("{rel}/{file}"),
                    want: None,
                    role: Role::Catalog,
                });
            }
        }
    }
    for (i, cf) in m.m.configure.files.iter().enumerate() {
        if let Some(s) = &cf.source {
            v.push(Need {
                at: format!("configure.files[{i}].source"),
                rel: s.clone(),
                want: None,
                role: Role::ConfigSource,
            });
        }
    }
    Ok(v)
}

/// The architectures a worker is built for (onramp builds on Linux only).
const BUILD_ARCHES: [&str; 2] = ["x86_64", "aarch64"];

/// The files a pinned PKGBUILD (`rel`, its sha256 `sha`) names beside
/// itself: its local sources, for every architecture onramp builds on,
/// pinned by the recipe's sha256sums where it has them, and its install and
/// changelog files. The recipe is read as the workers phase reads it
/// (statically, or sourced in the locked-down bash when it must be), after
/// its bytes are checked against the pin.
fn recipe_files(m: &Loaded, at: &str, rel: &str, sha: &str) -> Result<Vec<Need>> {
    let path = m.dir.join(rel);
    let bytes = std::fs::read(&path).map_err(|e| Error::io("cannot read", &path, e))?;
    use sha2::Digest;
    if fsutil::hex(&sha2::Sha256::digest(&bytes)) != sha {
        return err(
            Code::Integrity,
            format!(
                "{at}: {} is not the recipe the manifest pins (sha256 {sha}); fix the manifest or the file before releasing",
                path.display()
            ),
        );
    }
    let text = String::from_utf8_lossy(&bytes);
    let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
    let beside = |f: &str| {
        if dir.is_empty() {
            f.to_string()
        } else {
            format!("{dir}/{f}")
        }
    };
    let mut v: Vec<Need> = Vec::new();
    for arch in BUILD_ARCHES {
        let recipe = crate::pkgbuild::read(&text, arch, path.parent(), |_| {})
            .map_err(|e| Error::new(e.code, format!("{at}: cannot read the recipe: {}", e.msg)))?;
        let meta = crate::pkgbuild::Meta::from_recipe(&recipe, arch)
            .map_err(|r| Error::new(Code::Manifest, format!("{at}: {r}")))?;
        let mut files: Vec<(String, Pin)> = meta
            .sources
            .iter()
            .filter(|s| !s.location.contains("://"))
            .map(|s| {
                let pin = s.sums.get("sha256").filter(|h| h.as_str() != "SKIP");
                (s.location.clone(), pin.map(|h| (h.clone(), None)))
            })
            .collect();
        for k in ["install", "changelog"] {
            if let Some(f) = recipe
                .vars
                .get(k)
                .map(|x| x.scalar())
                .filter(|f| !f.is_empty())
            {
                files.push((f, None));
            }
        }
        for (f, want) in files {
            let rel = beside(&f);
            let at = format!("{at} ({f:?}, beside the recipe)");
            below(&at, &rel)?;
            if !v.iter().any(|n| n.rel == rel) {
                v.push(Need {
                    at,
                    rel,
                    want,
                    role: Role::RecipeFile,
                });
            }
        }
    }
    Ok(v)
}

/// Catalog entries and unpinned small files (install scripts, configure
/// sources) fetched by URL are at most this big.
const MAX_SMALL: u64 = 1 << 20;

/// A stack published at a URL (`man.url`), brought into `stage` as its
/// release directory holds it, for a bundle: the recipes and catalog
/// entries first (they name the rest), then every file `needs` lists, each
/// fetched from beside the manifest's URL to the same relative path and
/// checked against its pin (a pinned one through the download engine, so a
/// large artifact resumes). What is already there with its pin is kept (a
/// resumed bundle). Returns the manifest as read from `stage`, which the
/// bundle then ships as it would from a directory.
pub fn mirror_remote(
    man: &Loaded,
    stage: &Path,
    opts: &crate::download::Options,
    rep: &crate::events::Progress,
) -> Result<Loaded> {
    let client = crate::download::http::Client::new(&opts.net)?;
    let cache = crate::download::Cache::new(stage.to_path_buf());
    let local = Loaded {
        dir: stage.to_path_buf(),
        url: None,
        ..man.clone()
    };
    let url_of = |rel: &str| match man.resolve(rel) {
        manifest::Origin::Url(u) => u,
        manifest::Origin::Dir(d) => d.display().to_string(),
    };
    let fetch = |at: &str, rel: &str, want: &Pin| -> Result<()> {
        below(at, rel)?;
        let dest = stage.join(rel);
        let url = url_of(rel);
        match want {
            Some((sha, size)) => {
                if fsutil::sha256_file(&dest).is_ok_and(|h| &h == sha) {
                    return Ok(());
                }
                let size = match size {
                    Some(z) => *z,
                    None => crate::download::http::probe_size(&client, &url)?,
                };
                let w = Want {
                    label: rel.to_string(),
                    source: Source::Url(url),
                    size,
                    sha256: sha.clone(),
                };
                let cached = cache.ensure(&w, opts, rep)?;
                fsutil::mkdirs_for_file(dest.parent().unwrap_or(stage))?;
                // Out of the bundle's cache, into its place (the cache's
                // bookkeeping is dropped when the bundle is done).
                std::fs::rename(&cached, &dest)
                    .map_err(|e| Error::io("cannot move into place", &dest, e))
            }
            None => {
                let bytes = crate::download::http::get_small(&client, &url, MAX_SMALL)
                    .map_err(|e| Error::new(e.code, format!("{at}: {}", e.msg)))?;
                fsutil::mkdirs_for_file(dest.parent().unwrap_or(stage))?;
                fsutil::write_atomic(&dest, &bytes, 0o644)
            }
        }
    };
    // What names the rest: pinned recipes (checked by `recipe_files`) and
    // the entries of catalogs beside the manifest, with their PKGBUILDs.
    let mut more = Vec::new();
    for (i, c) in man.m.components.iter().enumerate() {
        if let Some(r) = &c.recipe
            && let Some(p) = &r.path
        {
            fetch(
                &format!("components[{i}].recipe.path"),
                p,
                &Some((r.sha256.clone(), None)),
            )?;
        }
        if let Some(k) = &c.catalog
            && !k.base.contains("://")
        {
            let at = format!("components[{i}].catalog.base");
            below(&at, &k.base)?;
            let dir = format!("{}/workers/{}", k.base.trim_end_matches('/'), k.id);
            let index = format!("{dir}/index.json");
            fetch(&at, &index, &None)?;
            let bytes = std::fs::read(stage.join(&index))
                .map_err(|e| Error::io("cannot read", &stage.join(&index), e))?;
            let entry = crate::worker::catalog::parse_entry(&bytes, &k.id, &url_of(&index))?;
            let pkgbuild = format!("{dir}/{}", entry.pkgbuild);
            fetch(&at, &pkgbuild, &Some((entry.pkgbuild_sha256.clone(), None)))?;
            more.extend(recipe_files(
                &local,
                &at,
                &pkgbuild,
                &entry.pkgbuild_sha256,
            )?);
        }
    }
    let mut all = needs(&local)?;
    all.extend(more);
    for n in &all {
        crate::signal::check()?;
        if n.want.is_none() && std::fs::symlink_metadata(stage.join(&n.rel)).is_ok() {
            continue;
        }
        fetch(&n.at, &n.rel, &n.want)?;
    }
    Ok(local)
}

/// Copy each of `needs` from beside the manifest to the same relative path
/// under `out_dir`, checked against its sha256 when it has one.
pub fn copy_needs(m: &Loaded, needs: &[Need], out_dir: &Path) -> Result<()> {
    for n in needs {
        below(&n.at, &n.rel)?;
        let src = m.dir.join(&n.rel);
        if std::fs::symlink_metadata(&src).is_err() {
            return err(
                Code::Manifest,
                format!(
                    "{}: {} is missing ({}); a release or bundle carries every file the stack names: put it there",
                    n.at,
                    n.rel,
                    src.display()
                ),
            );
        }
        copy_in(
            &src,
            out_dir,
            &n.rel,
            n.want.as_ref().map(|(s, z)| (s.as_str(), *z)),
        )?;
    }
    Ok(())
}

/// Into `out` (made when missing): the helpers (`--helper` values, see
/// `helpers::helpers`) and every file `needs` lists whose role is not
/// `skip`. The helpers' sha256 by target, for the installers' pins.
pub fn copy_stack(
    m: Option<&Loaded>,
    given_helpers: &[String],
    out: &Path,
    skip: Option<Role>,
) -> Result<BTreeMap<String, String>> {
    let helpers = helpers::helpers(given_helpers)?;
    fsutil::mkdirs(out)?;
    let pins = helpers::copy_helpers(&helpers, out)?;
    if let Some(m) = m {
        let mut n = needs(m)?;
        n.retain(|n| Some(n.role) != skip);
        copy_needs(m, &n, out)?;
    }
    Ok(pins)
}

/// install.sh and install.ps1 into `out`, with `bake`'s values.
pub fn write_installers(out: &Path, bake: &installer::Bake) -> Result<()> {
    let script = installer::installer(bake)?;
    fsutil::write_atomic(&out.join("install.sh"), script.as_bytes(), 0o755)?;
    let ps1 = installer::installer_ps1(bake)?;
    fsutil::write_atomic(&out.join("install.ps1"), ps1.as_bytes(), 0o644)
}

/// Every regular file below `dir`, relative to it, sorted.
pub fn files_below(dir: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let abs = dir.join(&rel);
        let rd = std::fs::read_dir(&abs).map_err(|e| Error::io("cannot list", &abs, e))?;
        for e in rd {
            let e = e.map_err(|e| Error::io("cannot list", &abs, e))?;
            let r = rel.join(e.file_name());
            let t = e
                .file_type()
                .map_err(|er| Error::io("cannot read", &e.path(), er))?;
            if t.is_dir() {
                todo.push(r);
            } else if t.is_file() {
                found.push(r.to_string_lossy().into_owned());
            } else {
                return err(
                    Code::Manifest,
                    format!(
                        "{} is not a regular file or directory; a release or bundle carries only those",
                        e.path().display()
                    ),
                );
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Every artifact fetched over the network (by URL, from a hub or a
/// registry), of every variant (or only the chosen
/// ones when `chosen` is given), for `targets` (and `any`).
pub fn url_wants(
    man: &Loaded,
    targets: &[String],
    chosen: Option<&BTreeSet<String>>,
) -> Vec<(String, Want)> {
    let mut v = Vec::new();
    for c in &man.m.components {
        if chosen.is_some_and(|s| !s.contains(&c.id)) {
            continue;
        }
        let sets = std::iter::once(&c.artifacts).chain(c.variants.iter().map(|x| &x.artifacts));
        for arts in sets {
            for (t, a) in arts {
                if t != "any" && !targets.contains(t) {
                    continue;
                }
                let source = match (&a.url, &a.path, &a.hf, &a.oci) {
                    (_, _, Some(h), _) => Source::Hf(h.clone()),
                    (_, _, _, Some(o)) => Source::Oci(o.clone()),
                    (Some(u), ..) => Source::Url(u.clone()),
                    (None, Some(p), ..) => match man.resolve(p) {
                        manifest::Origin::Url(u) => Source::Url(u),
                        manifest::Origin::Dir(_) => continue,
                    },
                    _ => continue,
                };
                let (Some(sha), Some(size)) = (&a.sha256, a.size) else {
                    continue;
                };
                v.push((
                    c.id.clone(),
                    Want {
                        label: format!("{} ({t})", c.id),
                        source,
                        size,
                        sha256: sha.clone(),
                    },
                ));
            }
        }
    }
    v
}
