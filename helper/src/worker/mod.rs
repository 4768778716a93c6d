//! Building a worker from its PKGBUILD, safely, in makepkg's order:
//! recipe (pinned) -> static read -> platform check -> dependency check ->
//! sources (verified, unpacked fail-closed) -> prepare/build/check/package in
//! bash (minimal environment, own process group, timeout, output streamed)
//! -> pkgdir installed into the prefix by staging and one rename.
//! As root the recipe runs as a dedicated build user (see `sandbox`) and
//! package() under fakeroot; root never acts by path inside a directory
//! the build user can write: every directory the build gets is made in a
//! root-owned parent before recipe code runs, and pkgdir is collected
//! through descriptors opened before that (see `dirfd`).

pub mod catalog;
pub mod deps;
pub mod sources;

use crate::download::{Cache, Options, http};
use crate::error::{Code, Error, Result, err};
use crate::events::Progress;
use crate::fsutil;
use crate::manifest::Component;
use crate::pkgbuild::Meta;
use crate::sandbox::BuildUser;
use crate::sys::dirfd::{self, Dir, Kind};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Job<'a> {
    pub comp: &'a Component,
    pub man: &'a crate::manifest::Loaded,
    pub prefix: &'a Path,
    pub target: &'a str,
    pub cache: &'a Cache,
    pub opts: &'a Options,
    pub rep: &'a Progress,
    pub allow_skip_checksums: bool,
    /// Accept a catalog PKGBUILD that the manifest does not pin.
    pub allow_unpinned_catalog: bool,
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
    let client = client(job)?;
    let (rec, meta) = recipe(job, client.as_ref())?;
    let (os, arch) = job.target.split_once('-').unwrap_or(("linux", job.target));
    build(job, &rec, meta, (os, arch), client.as_ref())
}

/// Every verified URL source of the worker's recipe, in the job's cache
/// (what `bundle create` gathers); nothing is built. Their sha256s.
pub fn prefetch(job: &Job) -> Result<Vec<String>> {
    let client = client(job)?;
    let (rec, meta) = recipe(job, client.as_ref())?;
    let scx = sources::Ctx {
        job,
        origin: &rec.origin,
        client: client.as_ref(),
    };
    let mut v = Vec::new();
    for s in &meta.sources {
        crate::signal::check()?;
        v.extend(sources::prefetch(&scx, s)?);
    }
    Ok(v)
}

fn client(job: &Job) -> Result<Option<http::Client>> {
    Ok(if job.opts.offline {
        None
    } else {
        Some(http::Client::new(&job.opts.net)?)
    })
}

/// The worker's recipe (catalog or pinned PKGBUILD, its sha256 checked),
/// read for the job's target.
fn recipe(job: &Job, client: Option<&http::Client>) -> Result<(catalog::Fetched, Meta)> {
    let id = job.comp.id.as_str();
    let rec = catalog::fetch(job.comp, job.man, client, job.allow_unpinned_catalog)?;
    let arch = job.target.split_once('-').map_or(job.target, |t| t.1);
    let lint_dir = match &rec.origin {
        catalog::Origin::Dir(d) => Some(d.as_path()),
        catalog::Origin::Url(_) => None,
    };
    let recipe = crate::pkgbuild::read(&rec.text, arch, lint_dir, |refusal| {
        job.rep.info(&format!(
            "{id}: the recipe needs execution to be read ({refusal}); reading it in a locked-down bash"
        ))
    })
    .map_err(|e| Error::new(e.code, format!("recipe for {id}: {}", e.msg)))?;
    let meta = crate::pkgbuild::srcinfo(&recipe, lint_dir)
        .and_then(|_| Meta::from_recipe(&recipe, arch))
        .map_err(|r| Error::new(Code::Manifest, format!("recipe for {id}: {r}")))?;
    Ok((rec, meta))
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
    let fakeroot = crate::run::on_build_path("fakeroot");
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
    let user = crate::sandbox::acquire()?;
    if let Some(u) = &user {
        rep.info(&format!("{id}: building as {}", u.name));
    }
    let mut work = BuildDir::create(id, &meta.pkgname, user.as_ref())?;
    let res = build_in(
        job,
        rec,
        &meta,
        &mut work,
        (user.as_ref(), fakeroot, nocheck),
        client,
    );
    if std::env::var_os("ONRAMP_KEEP_BUILD").is_some() {
        rep.info(&format!(
            "{id}: build directory kept at {}",
            work.root.display()
        ));
    } else {
        crate::fsutil::remove_tree(&work.root);
    }
    res
}

/// A private build directory under the temp dir, in makepkg's layout:
///
/// ```text
/// R/                root:build-group 0710 (ours, 0700, when not root)
/// R/build/          startdir: PKGBUILD and sources, root:build-group 0750
/// R/build/src/      srcdir, the build user's
/// R/build/pkg/      root:build-group 0750
/// R/build/pkg/NAME  pkgdir of each package, the build user's
/// R/home, R/tmp     the build user's HOME and TMPDIR
/// ```
///
/// Everything is made (and sources unpacked) while R is root's alone;
/// `hand_over` then gives the build user its directories and opens each
/// pkgdir, so the recipe can neither replace a directory root later reads
/// nor make root follow a link out of the tree.
struct BuildDir {
    root: PathBuf,
    startdir: PathBuf,
    srcdir: PathBuf,
    /// Package name, its pkgdir, and that directory opened before any
    /// recipe code ran (set by `hand_over`).
    pkgdirs: Vec<(String, PathBuf, Option<Dir>)>,
}

fn mkdir(p: &Path) -> Result<()> {
    fs::create_dir(p).map_err(|e| Error::io("cannot create", p, e))
}

impl BuildDir {
    fn create(id: &str, pkgnames: &[String], user: Option<&BuildUser>) -> Result<BuildDir> {
        let root = crate::run::private_dir(&format!("build-{id}"))?;
        // The build user must be able to reach it (a private TMPDIR of
        // root's would make every recipe fail with "Permission denied").
        if let Some(u) = user {
            for dir in root.ancestors().skip(1) {
                let Ok(m) = fs::metadata(dir) else { continue };
                if crate::sys::mode_of(&m) & 0o001 == 0 && crate::sys::owner_of(&m) != u.uid {
                    crate::fsutil::remove_tree(&root);
                    return err(
                        Code::Platform,
                        format!(
                            "{} is not reachable by the build user (uid {}); set TMPDIR to a directory others may enter, such as /tmp",
                            dir.display(),
                            u.uid
                        ),
                    );
                }
            }
        }
        let startdir = root.join("build");
        let srcdir = startdir.join("src");
        let bd = BuildDir {
            pkgdirs: pkgnames
                .iter()
                .map(|n| (n.clone(), startdir.join("pkg").join(n), None))
                .collect(),
            root,
            startdir,
            srcdir,
        };
        let made = (|| {
            for d in [
                &bd.startdir,
                &bd.srcdir,
                &bd.startdir.join("pkg"),
                &bd.root.join("home"),
                &bd.root.join("tmp"),
            ] {
                mkdir(d)?;
            }
            bd.pkgdirs.iter().try_for_each(|(_, p, _)| mkdir(p))
        })();
        if let Err(e) = made {
            crate::fsutil::remove_tree(&bd.root);
            return Err(e);
        }
        Ok(bd)
    }

    /// Give the build user its directories (srcdir with what was unpacked
    /// into it, each pkgdir, HOME, TMPDIR), by descriptor, and open every
    /// pkgdir for the collection after package(). Called once, before the
    /// first recipe function.
    fn hand_over(&mut self, user: Option<&BuildUser>) -> Result<()> {
        let io = |what: &str, p: &Path| {
            let p = p.to_path_buf();
            let what = what.to_string();
            move |e: std::io::Error| Error::io(&what, &p, e)
        };
        let open = |p: &Path| Dir::open(p).map_err(io("cannot open", p));
        match user {
            Some(u) => {
                let (uid, gid) = u.ids();
                let src = open(&self.srcdir)?;
                src.chown_tree(uid, gid)
                    .map_err(io("cannot hand to the build user", &self.srcdir))?;
                src.chown_chmod(uid, gid, 0o755)
                    .map_err(io("cannot chmod", &self.srcdir))?;
                for d in [self.root.join("home"), self.root.join("tmp")] {
                    open(&d)?
                        .chown_chmod(uid, gid, 0o700)
                        .map_err(io("cannot hand to the build user", &d))?;
                }
                for (_, p, fd) in &mut self.pkgdirs {
                    let d = open(p)?;
                    d.chown_chmod(uid, gid, 0o755)
                        .map_err(io("cannot hand to the build user", p))?;
                    *fd = Some(d);
                }
                for (d, mode) in [
                    (self.startdir.join("pkg"), 0o750),
                    (self.startdir.clone(), 0o750),
                    (self.root.clone(), 0o710),
                ] {
                    open(&d)?
                        .chown_chmod(0, gid, mode)
                        .map_err(io("cannot chmod", &d))?;
                }
            }
            None => {
                for (_, p, fd) in &mut self.pkgdirs {
                    *fd = Some(open(p)?);
                }
                crate::sys::set_path_mode(&self.srcdir, 0o755)
                    .map_err(io("cannot chmod", &self.srcdir))?;
            }
        }
        Ok(())
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
    work: &mut BuildDir,
    (user, fakeroot, nocheck): (Option<&BuildUser>, bool, bool),
    client: Option<&http::Client>,
) -> Result<Built> {
    let id = job.comp.id.as_str();
    let rep = job.rep;
    let recipe_path = work.startdir.join("PKGBUILD");
    fsutil::write_new(&recipe_path, rec.text.as_bytes(), 0o644)?;
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
        let (f, sha) = sources::fetch(&scx, s, &work.startdir)?;
        sources::extract(&f, sha.as_deref(), &s.name, &work.srcdir, &meta.noextract)?;
    }
    work.hand_over(user)?;
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
    let mut packaged: Vec<&str> = Vec::new();
    for (f, pkg) in &steps {
        crate::signal::check()?;
        let pkgdir = work
            .startdir
            .join("pkg")
            .join(pkg.as_deref().unwrap_or(&meta.pkgname[0]));
        if let Some(p) = pkg {
            packaged.push(p);
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
            ("PATH", crate::run::BUILD_PATH.to_string()),
            ("HOME", work.root.join("home").display().to_string()),
            ("TMPDIR", work.root.join("tmp").display().to_string()),
            ("LANG", "C.UTF-8".to_string()),
            ("USER", "onramp-build".to_string()),
            ("LOGNAME", "onramp-build".to_string()),
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
            user: user.map(BuildUser::ids),
            timeout: left,
            echo: false,
            sink: Some(std::sync::Arc::new(move |l: &str| rep2.output(&cid, l))),
            isolate_net: false,
            contain: true,
            read_only: Vec::new(),
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
    let pkgdirs: Vec<&Dir> = work
        .pkgdirs
        .iter()
        .filter(|(n, _, _)| packaged.contains(&n.as_str()))
        .filter_map(|(_, _, d)| d.as_ref())
        .collect();
    let files = install(&pkgdirs, job.prefix, &dir, user.map(|u| u.uid))?;
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
/// `owner`: as root, the build user, whose files alone may be installed.
fn install(pkgdirs: &[&Dir], prefix: &Path, dir: &str, owner: Option<u32>) -> Result<Vec<String>> {
    let dest = prefix.join(dir);
    let parent = dest.parent().unwrap_or(prefix).to_path_buf();
    fsutil::mkdirs(prefix)?;
    crate::beneath::mkdirs_above(prefix, dir)?;
    fsutil::remove_orphans(&parent);
    let staging = fsutil::temp_beside(&dest);
    crate::fault::io("mkdir", &staging, || fs::create_dir(&staging))
        .map_err(|e| Error::io("cannot create", &staging, e))?;
    let mut files = Vec::new();
    let mut links = Vec::new();
    let res = Dir::open(&staging)
        .map_err(|e| Error::io("cannot open", &staging, e))
        .and_then(|to| {
            pkgdirs
                .iter()
                .try_for_each(|p| collect(p, &to, Path::new(""), &mut files, &mut links, owner))
        })
        .and_then(|()| links_stay(&files, &links));
    if let Err(e) = res {
        crate::fsutil::remove_tree(&staging);
        return Err(e);
    }
    if files.is_empty() {
        crate::fsutil::remove_tree(&staging);
        return Err(fail(
            "package() put nothing into $pkgdir; nothing to install".to_string(),
        ));
    }
    crate::fsutil::replace_dir(&staging, &dest)?;
    files.sort();
    Ok(files.into_iter().map(|f| format!("{dir}/{f}")).collect())
}

/// Every link the package installs stays inside its install dir, as an
/// archive's must (Python tarfile's `data` filter): an absolute target, one
/// that climbs out, or one through another link that does is refused, so
/// nothing onramp later writes or removes there (configure, an upgrade)
/// can land outside the prefix.
fn links_stay(files: &[String], links: &[(String, std::path::PathBuf)]) -> Result<()> {
    let targets: std::collections::HashMap<&str, &std::path::PathBuf> =
        links.iter().map(|(l, t)| (l.as_str(), t)).collect();
    let entries: Vec<(std::path::PathBuf, Option<std::path::PathBuf>)> = files
        .iter()
        .map(|f| (f.into(), targets.get(f.as_str()).map(|t| (*t).clone())))
        .collect();
    match crate::archive::link_leaving(&entries) {
        None => Ok(()),
        Some((l, t)) => Err(fail(format!(
            "package() made the link {} -> {}, which leaves the install dir; links in a package must point inside it (relative, not through ..)",
            l.display(),
            crate::out::bounded(&t.to_string_lossy(), 200)
        ))),
    }
}

/// Copy the tree under `from` (a pkgdir the build user filled) into `to`
/// (root's staging directory), by descriptor: regular files, directories
/// and links only, no setuid/setgid bits and no group/other write, and, as
/// root, only files the build user owns (a hard link to someone else's
/// file is refused, not copied).
fn collect(
    from: &Dir,
    to: &Dir,
    rel: &Path,
    files: &mut Vec<String>,
    links: &mut Vec<(String, std::path::PathBuf)>,
    owner: Option<u32>,
) -> Result<()> {
    let bad = |what: String| Err(fail(what));
    let names = from
        .entries()
        .map_err(|e| Error::io("cannot read", &Path::new("$pkgdir").join(rel), e))?;
    for name in names {
        let r = rel.join(&name);
        let shown = r.display().to_string();
        let io = |what: &'static str| {
            let r = Path::new("$pkgdir").join(&r);
            move |e: std::io::Error| Error::io(what, &r, e)
        };
        let st = from.stat_at(&name).map_err(io("cannot stat"))?;
        match st.kind {
            Kind::Dir => {
                let sub = from.open_dir(&name).map_err(io("cannot open"))?;
                if !sub.stat().map_err(io("cannot stat"))?.same(&st) {
                    return bad(format!("{shown} changed while it was being installed"));
                }
                match to.stat_at(&name) {
                    Ok(d) if d.kind == Kind::Dir => {}
                    Ok(_) => {
                        return bad(format!(
                            "two packages install {shown}; refusing to overwrite"
                        ));
                    }
                    Err(_) => to.mkdir(&name, 0o700).map_err(io("cannot create"))?,
                }
                let dsub = to.open_dir(&name).map_err(io("cannot open"))?;
                collect(&sub, &dsub, &r, files, links, owner)?;
                let mode = st.mode & 0o755 | 0o700;
                dsub.chmod(mode).map_err(io("cannot chmod"))?;
            }
            Kind::File => {
                let mut f = from.open_file(&name).map_err(io("cannot open"))?;
                let fst = dirfd::fstat(&f).map_err(io("cannot stat"))?;
                if !fst.same(&st) || fst.kind != Kind::File {
                    return bad(format!("{shown} changed while it was being installed"));
                }
                if let Some(uid) = owner
                    && fst.uid != uid
                {
                    return bad(format!(
                        "{shown} belongs to uid {}, not the build user; package() may install only files the build made (a hard link to another user's file?)",
                        fst.uid
                    ));
                }
                let mut out = match to.create_file(&name, 0o600) {
                    Ok(o) => o,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return bad(format!(
                            "two packages install {shown}; refusing to overwrite"
                        ));
                    }
                    Err(e) => return Err(io("cannot create")(e)),
                };
                let at = Path::new("$pkgdir").join(&r);
                crate::fault::io("write", &at, || std::io::copy(&mut f, &mut out))
                    .map_err(io("cannot copy"))?;
                crate::sys::set_file_mode(&out, st.mode & 0o755).map_err(io("cannot chmod"))?;
                crate::fault::io("fsync", &at, || out.sync_all()).map_err(io("cannot sync"))?;
                files.push(shown);
            }
            Kind::Link => {
                let t = from.readlink(&name).map_err(io("cannot read link"))?;
                to.symlink(&t, &name).map_err(io("cannot create link"))?;
                links.push((shown.clone(), t));
                files.push(shown);
            }
            Kind::Other => {
                return bad(format!(
                    "package() made {shown}, which is not a file, directory or link; onramp installs only those"
                ));
            }
        }
    }
    Ok(())
}
