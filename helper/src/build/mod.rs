//! Building a worker from its PKGBUILD, safely, in makepkg's order:
//! recipe (pinned) -> static read -> platform check -> dependency check ->
//! sources (verified, unpacked fail-closed) -> prepare/build/check/package in
//! bash (minimal environment, own process group, timeout, output streamed)
//! -> pkgdir installed into the prefix by staging and one rename.
//! As root the recipe runs as `nobody` and package() under fakeroot.

pub mod catalog;
pub mod deps;
pub mod sources;

use crate::download::{Cache, Options, http};
use crate::error::{Code, Error, Result, err};
use crate::events::Progress;
use crate::fsutil;
use crate::manifest::Component;
use crate::pkgbuild::Meta;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Job<'a> {
    pub comp: &'a Component,
    pub man_dir: &'a Path,
    pub prefix: &'a Path,
    pub target: &'a str,
    pub cache: &'a Cache,
    pub opts: &'a Options,
    pub rep: &'a Progress,
    pub allow_skip_checksums: bool,
}

pub struct Built {
    pub version: String,
    /// Where it went, relative to the prefix.
    pub install_dir: String,
    /// Every file and link installed, relative to the prefix.
    pub files: Vec<String>,
    pub capabilities: Vec<String>,
}

/// The default time a whole build may take.
pub const DEFAULT_TIMEOUT_S: u64 = 3600;

/// Where a worker is installed, relative to the prefix.
pub fn install_dir(c: &Component) -> String {
    c.install_dir
        .clone()
        .unwrap_or_else(|| format!("workers/{}", c.id))
}

fn fail(what: impl Into<String>) -> Error {
    Error::new(Code::Internal, what)
}

pub fn run(job: &Job) -> Result<Built> {
    let id = job.comp.id.as_str();
    let client = if job.opts.offline {
        None
    } else {
        Some(http::Client::new(&job.opts.net)?)
    };
    let rec = catalog::fetch(job.comp, job.man_dir, client.as_ref())?;
    let (os, arch) = job.target.split_once('-').unwrap_or(("linux", job.target));
    let recipe = match crate::pkgbuild::parse(&rec.text, arch) {
        Ok(r) => r,
        Err(refusal) => {
            // The recipe is pinned by sha256, so sourcing it is no less
            // trusted than building it; makepkg would source it too.
            job.rep.info(&format!(
                "{id}: the recipe needs execution to be read ({refusal}); reading it in a locked-down bash"
            ));
            let (r, _) = crate::pkgbuild::eval(&rec.text, arch, Duration::from_secs(60))
                .map_err(|e| Error::new(e.code, format!("recipe for {id}: {}", e.msg)))?;
            r
        }
    };
    let lint_dir = match &rec.origin {
        catalog::Origin::Dir(d) => Some(d.as_path()),
        catalog::Origin::Url(_) => None,
    };
    crate::pkgbuild::srcinfo(&recipe, lint_dir)
        .and_then(|_| Meta::from_recipe(&recipe, arch))
        .map_err(|r| Error::new(Code::Manifest, format!("recipe for {id}: {r}")))
        .and_then(|meta| build(job, &rec, meta, (os, arch), client.as_ref()))
}

fn platform_check(
    job: &Job,
    meta: &Meta,
    e: Option<&catalog::Entry>,
    os: &str,
    arch: &str,
) -> Result<()> {
    let mut arches: Vec<String> = meta.arch.clone();
    let mut oses: Vec<String> = vec!["linux".into()];
    if let Some(e) = e {
        oses = e.platforms.clone();
        arches.retain(|a| a == "any" || e.architectures.contains(a));
        if meta.arch.iter().any(|a| a == "any") {
            arches = e.architectures.clone();
        }
    }
    if !job.comp.platforms.is_empty() {
        oses.retain(|o| {
            job.comp
                .platforms
                .iter()
                .any(|t| t.starts_with(&format!("{o}-")))
        });
        arches.retain(|a| {
            a == "any"
                || job
                    .comp
                    .platforms
                    .iter()
                    .any(|t| t.ends_with(&format!("-{a}")))
        });
    }
    let ok_os = oses.iter().any(|o| o == os);
    let ok_arch = arches.iter().any(|a| a == "any" || a == arch);
    if ok_os && ok_arch {
        return Ok(());
    }
    err(
        Code::Platform,
        format!(
            "Worker requires: {} {}; current: {os} {arch}",
            oses.join(", "),
            arches.join(", ")
        ),
    )
}

fn build(
    job: &Job,
    rec: &catalog::Fetched,
    meta: Meta,
    (os, arch): (&str, &str),
    client: Option<&http::Client>,
) -> Result<Built> {
    let id = job.comp.id.as_str();
    let rep = job.rep;
    platform_check(job, &meta, rec.entry.as_ref(), os, arch)?;
    let nocheck = job.comp.nocheck || meta.option_off("check") || !meta.has_fn("check");
    let fakeroot = deps::on_build_path("fakeroot");
    let mut build_tools = vec!["bash".to_string()];
    build_tools.extend(meta.makedepends.iter().cloned());
    let empty = Vec::new();
    let report = deps::check(
        &[
            ("Runtime", &meta.depends),
            ("Build", &build_tools),
            ("Check", if nocheck { &empty } else { &meta.checkdepends }),
        ],
        &job.comp.probes,
    );
    rep.info(&format!(
        "{id}: {} {} (PKGBUILD sha256 {}, from {})",
        meta.pkgbase,
        meta.version,
        &rec.sha256[..12],
        rec.origin.describe()
    ));
    rep.info(&format!("{id}: {}", report.line()));
    let missing = report.missing();
    if !missing.is_empty() {
        return err(
            Code::Platform,
            format!(
                "missing dependencies ({}): {}; install them (or add a probe in the manifest) and run again",
                missing.join(", "),
                report.line()
            ),
        );
    }
    let user = crate::run::build_user();
    let work = BuildDir::create(id, user)?;
    let res = build_in(job, rec, &meta, &work, (user, fakeroot, nocheck), client);
    if std::env::var_os("ONRAMP_KEEP_BUILD").is_some() {
        rep.info(&format!(
            "{id}: build directory kept at {}",
            work.root.display()
        ));
    } else {
        let _ = fs::remove_dir_all(&work.root);
    }
    res
}

/// A private build directory under the temp dir: startdir, srcdir, pkgdir.
struct BuildDir {
    root: PathBuf,
    startdir: PathBuf,
    srcdir: PathBuf,
}

impl BuildDir {
    fn create(id: &str, user: Option<(u32, u32)>) -> Result<BuildDir> {
        let root = crate::run::private_dir(&format!("build-{id}"), None)?;
        // The build user must be able to reach it (a private TMPDIR of
        // root's would make every recipe fail with "Permission denied").
        if let Some((uid, _)) = user {
            use std::os::unix::fs::MetadataExt;
            for dir in root.ancestors().skip(1) {
                let Ok(m) = fs::metadata(dir) else { continue };
                if m.mode() & 0o001 == 0 && m.uid() != uid {
                    let _ = fs::remove_dir_all(&root);
                    return err(
                        Code::Platform,
                        format!(
                            "{} is not reachable by the build user (uid {uid}); set TMPDIR to a directory others may enter, such as /tmp",
                            dir.display()
                        ),
                    );
                }
            }
        }
        let startdir = root.join("build");
        let srcdir = startdir.join("src");
        for d in [
            &startdir,
            &srcdir,
            &startdir.join("pkg"),
            &root.join("home"),
            &root.join("tmp"),
        ] {
            fs::create_dir_all(d).map_err(|e| Error::io("cannot create", d, e))?;
        }
        let bd = BuildDir {
            root,
            startdir,
            srcdir,
        };
        bd.chown(user)?;
        Ok(bd)
    }

    /// Hand the whole tree to the build user (as root).
    fn chown(&self, user: Option<(u32, u32)>) -> Result<()> {
        crate::run::chown_tree(&self.root, user)
    }
}

/// What runs each recipe function: source the recipe, then `set -e` and
/// call the function in srcdir, as makepkg's run_function_safe does.
const DRIVER: &str = r#"source "$startdir/PKGBUILD" || { echo "==> the recipe could not be sourced" >&2; exit 1; }
set -e
cd "$srcdir"
"$1""#;

/// `how`: the build user (as root), whether fakeroot is there, whether
/// check() is skipped.
fn build_in(
    job: &Job,
    rec: &catalog::Fetched,
    meta: &Meta,
    work: &BuildDir,
    (user, fakeroot, nocheck): (Option<(u32, u32)>, bool, bool),
    client: Option<&http::Client>,
) -> Result<Built> {
    let id = job.comp.id.as_str();
    let rep = job.rep;
    let recipe_path = work.startdir.join("PKGBUILD");
    fs::write(&recipe_path, &rec.text).map_err(|e| Error::io("cannot write", &recipe_path, e))?;
    let scx = sources::Ctx {
        job,
        origin: &rec.origin,
        client,
    };
    // Every source passes the scheme and checksum rules before any is fetched.
    for s in &meta.sources {
        sources::precheck(&scx, s)?;
    }
    for s in &meta.sources {
        crate::signal::check()?;
        let f = sources::fetch(&scx, s, &work.startdir)?;
        sources::extract(&f, &s.name, &work.srcdir, &meta.noextract)?;
    }
    work.chown(user)?;
    let timeout = Duration::from_secs(job.comp.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S));
    let deadline = Instant::now() + timeout;
    let mut steps: Vec<(String, Option<String>)> = Vec::new();
    for f in ["prepare", "build"] {
        if meta.has_fn(f) {
            steps.push((f.into(), None));
        }
    }
    if !nocheck {
        steps.push(("check".into(), None));
    } else if meta.has_fn("check") {
        rep.info(&format!("{id}: check() skipped"));
    }
    for name in &meta.pkgname {
        let f = format!("package_{name}");
        if meta.has_fn(&f) {
            steps.push((f, Some(name.clone())));
        } else if meta.has_fn("package") && meta.pkgname.len() == 1 {
            steps.push(("package".into(), Some(name.clone())));
        } else {
            return err(
                Code::Manifest,
                format!("recipe for {id}: no {f}() or package() for {name}"),
            );
        }
    }
    if !fakeroot {
        rep.warn(&format!(
            "{id}: fakeroot not found; package() runs without it (files are installed as the installing user anyway)"
        ));
    }
    let mut pkgdirs = Vec::new();
    for (f, pkg) in &steps {
        crate::signal::check()?;
        let pkgdir = work
            .startdir
            .join("pkg")
            .join(pkg.as_deref().unwrap_or(&meta.pkgname[0]));
        if pkg.is_some() {
            fs::create_dir_all(&pkgdir).map_err(|e| Error::io("cannot create", &pkgdir, e))?;
            crate::run::chown_tree(&pkgdir, user)?;
            pkgdirs.push(pkgdir.clone());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return err(
                Code::Internal,
                format!(
                    "{f}() not started: the build's {} s timeout is used up",
                    timeout.as_secs()
                ),
            );
        }
        rep.info(&format!("{id}: ==> {f}()"));
        let mut argv: Vec<String> = Vec::new();
        if pkg.is_some() && fakeroot {
            argv.extend(["fakeroot".into(), "--".into()]);
        }
        argv.extend([
            "bash".into(),
            "-c".into(),
            DRIVER.into(),
            "onramp-build".into(),
            f.clone(),
        ]);
        let env: Vec<(String, String)> = [
            ("PATH", deps::BUILD_PATH.to_string()),
            ("HOME", work.root.join("home").display().to_string()),
            ("TMPDIR", work.root.join("tmp").display().to_string()),
            ("LANG", "C".to_string()),
            ("startdir", work.startdir.display().to_string()),
            ("srcdir", work.srcdir.display().to_string()),
            ("pkgdir", pkgdir.display().to_string()),
            ("CARCH", meta.carch.clone()),
            ("SOURCE_DATE_EPOCH", fsutil::now_unix().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let rep2 = rep.clone();
        let cid = id.to_string();
        let spec = crate::run::Spec {
            env,
            clear_env: true,
            user,
            timeout: left,
            echo: false,
            sink: Some(std::sync::Arc::new(move |l: &str| rep2.output(&cid, l))),
            isolate_net: false,
        };
        let o = crate::run::run_spec(&argv, &work.srcdir, &spec)?;
        if !o.ok() {
            let how = if o.timed_out {
                format!(
                    "timed out after {} s (stopped with TERM, then KILL)",
                    timeout.as_secs()
                )
            } else {
                match o.code {
                    Some(c) => format!("failed with exit {c}"),
                    None => "was killed by a signal".into(),
                }
            };
            let last: Vec<&str> = o
                .tail
                .iter()
                .rev()
                .take(5)
                .rev()
                .map(|s| s.trim())
                .collect();
            return Err(fail(format!(
                "{f}() {how}; the prefix is untouched. Last output: {}",
                if last.is_empty() {
                    "(none)".into()
                } else {
                    last.join(" | ")
                }
            )));
        }
    }
    let dir = install_dir(job.comp);
    let files = install(&pkgdirs, job.prefix, &dir)?;
    let mut caps: Vec<String> = rec
        .entry
        .as_ref()
        .map(|e| e.capabilities.clone())
        .unwrap_or_default();
    if let Some(u) = &job.comp.unlocks
        && !caps.contains(&u.capability)
    {
        caps.push(u.capability.clone());
    }
    Ok(Built {
        version: meta.version.clone(),
        install_dir: dir,
        files,
        capabilities: caps,
    })
}

/// Copy every pkgdir into a staging tree beside `prefix/dir`, fsync it,
/// and swap it in with one rename. Returns the files, relative to prefix.
fn install(pkgdirs: &[PathBuf], prefix: &Path, dir: &str) -> Result<Vec<String>> {
    let dest = prefix.join(dir);
    let parent = dest.parent().unwrap_or(prefix).to_path_buf();
    fsutil::mkdirs(&parent)?;
    fsutil::remove_orphans(&parent);
    let staging = fsutil::temp_beside(&dest);
    fs::create_dir(&staging).map_err(|e| Error::io("cannot create", &staging, e))?;
    let mut files = Vec::new();
    let res = pkgdirs
        .iter()
        .try_for_each(|p| copy_tree(p, &staging, Path::new(""), &mut files));
    if let Err(e) = res {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    if files.is_empty() {
        let _ = fs::remove_dir_all(&staging);
        return Err(fail(
            "package() put nothing into $pkgdir; nothing to install".to_string(),
        ));
    }
    crate::phase::replace_dir(&staging, &dest)?;
    files.sort();
    Ok(files.into_iter().map(|f| format!("{dir}/{f}")).collect())
}

fn copy_tree(from: &Path, to: &Path, rel: &Path, files: &mut Vec<String>) -> Result<()> {
    let rd = fs::read_dir(from).map_err(|e| Error::io("cannot read", from, e))?;
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let src = e.path();
        let dst = to.join(e.file_name());
        let r = rel.join(e.file_name());
        let m = fs::symlink_metadata(&src).map_err(|er| Error::io("cannot stat", &src, er))?;
        let ft = m.file_type();
        if ft.is_dir() {
            if !dst.is_dir() {
                fs::create_dir(&dst).map_err(|er| Error::io("cannot create", &dst, er))?;
            }
            copy_tree(&src, &dst, &r, files)?;
            let mode = m.permissions().mode() & 0o755 | 0o700;
            let _ = fs::set_permissions(&dst, fs::Permissions::from_mode(mode));
        } else if ft.is_file() {
            if fs::symlink_metadata(&dst).is_ok() {
                return Err(fail(format!(
                    "two packages install {}; refusing to overwrite",
                    r.display()
                )));
            }
            fs::copy(&src, &dst).map_err(|er| Error::io("cannot copy to", &dst, er))?;
            // No setuid/setgid bits from a recipe.
            let mode = m.permissions().mode() & 0o777;
            fs::set_permissions(&dst, fs::Permissions::from_mode(mode))
                .map_err(|er| Error::io("cannot chmod", &dst, er))?;
            fs::File::open(&dst)
                .and_then(|f| f.sync_all())
                .map_err(|er| Error::io("cannot sync", &dst, er))?;
            files.push(r.display().to_string());
        } else if ft.is_symlink() {
            let t = fs::read_link(&src).map_err(|er| Error::io("cannot read link", &src, er))?;
            std::os::unix::fs::symlink(&t, &dst)
                .map_err(|er| Error::io("cannot create link", &dst, er))?;
            files.push(r.display().to_string());
        } else {
            return Err(fail(format!(
                "package() made {}, which is not a file, directory or link; onramp installs only those",
                r.display()
            )));
        }
    }
    Ok(())
}
