//! `bundle create|verify|list|unpack`: everything an install needs, for a
//! machine with no network, in one directory or one `.tar.zst`, in the
//! layout `--from` reads: `install.sh` and `install.ps1` (self-contained, the helpers pinned),
//! `onramp-VERSION-TARGET` helpers, `manifest.json` (and its `.minisig`),
//! every file the manifest names by relative path, `sha256/HEX` for every
//! artifact fetched by URL (every variant, for each `--target`) and every
//! worker source fetched by URL, and `index.json`: every file's path, size
//! and sha256 (the first member of an archive, so it is checked as it
//! streams). `create` fetches through the download engine into the bundle
//! itself, so a killed `create` resumes where it stopped. `verify` checks
//! every byte against the index (and that nothing is missing or extra),
//! then the manifest (its signature when a key is trusted) and that every
//! artifact it names for the bundle's targets is there. `unpack` streams an
//! archive (bounded memory) into a new directory, checking each entry
//! against the index as it is written; on any mismatch nothing is left.

use crate::cli::Flags;
use crate::cmd::{options, trusted_keys};
use crate::download::Cache;
use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::manifest::{self, Kind, Loaded};
use crate::manifest::{Source, Want};
use crate::out;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const INDEX: &str = "index.json";
/// Present while `create` has not finished (what lets it resume).
const INCOMPLETE: &str = ".onramp-bundle-incomplete";
/// Most entries an index may list (bounds what a hostile bundle makes
/// onramp hold).
const MAX_FILES: usize = 1_000_000;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub schema: u32,
    pub stack: String,
    pub version: String,
    pub targets: Vec<String>,
    pub files: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

pub fn cmd_bundle(f: &Flags) -> Result<i32> {
    let want = match f.free.first().map(String::as_str) {
        Some("create") => 1,
        Some("verify" | "list" | "unpack") => 2,
        _ => {
            return err(
                Code::Usage,
                "bundle: use create, verify FILE|DIR, list FILE|DIR or unpack FILE -o DIR",
            );
        }
    };
    if f.free.len() != want {
        return err(
            Code::Usage,
            format!(
                "`onramp bundle {}` takes {} argument(s); see `onramp bundle --help`",
                f.free[0],
                want - 1
            ),
        );
    }
    match f.free[0].as_str() {
        "create" => create(f),
        "verify" => {
            let b = fsutil::absolute(Path::new(&f.free[1]))?;
            let idx = verify(&b, f)?;
            let bytes: u64 = idx.files.iter().map(|e| e.size).sum();
            out::stdout_line(&format!(
                "bundle ok: {} {} for {}, {} files, {}",
                idx.stack,
                idx.version,
                idx.targets.join(", "),
                idx.files.len(),
                fsutil::human_bytes(bytes)
            ));
            Ok(0)
        }
        "list" => {
            let b = fsutil::absolute(Path::new(&f.free[1]))?;
            let idx = read_index(&b)?;
            out::stdout_line(&format!(
                "{} {} for {}",
                idx.stack,
                idx.version,
                idx.targets.join(", ")
            ));
            for e in &idx.files {
                out::stdout_line(&format!(
                    "{}  {:>10}  {}",
                    e.sha256,
                    fsutil::human_bytes(e.size),
                    e.path
                ));
            }
            Ok(0)
        }
        _ => {
            let b = fsutil::absolute(Path::new(&f.free[1]))?;
            let Some(o) = &f.output else {
                return err(Code::Usage, "bundle unpack needs -o DIR (a new directory)");
            };
            let o = fsutil::absolute(o)?;
            let idx = unpack(&b, &o, &trusted_keys(f)?)?;
            if let Err(e) = check_manifest(&o, &idx, f) {
                fsutil::remove_tree(&o);
                return Err(e);
            }
            out::stdout_line(&o.display().to_string());
            Ok(0)
        }
    }
}

/// An archive that cannot be read (bad compression, a broken tar header)
/// is a damaged bundle: exit 7, like an altered file.
fn damaged_read(b: &Path, e: std::io::Error) -> Error {
    Error::new(
        Code::Integrity,
        format!(
            "{}: cannot read the bundle ({e}); it is damaged, get it again",
            b.display()
        ),
    )
}

fn is_archive(p: &Path) -> bool {
    p.to_string_lossy().ends_with(".tar.zst")
}

/// A path an index may name: relative, plain components, no `.`/`..`.
fn safe_rel(p: &str) -> Result<()> {
    if p.is_empty()
        || p.starts_with('/')
        || p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
        || p.chars().any(|c| c.is_control())
    {
        return err(
            Code::Integrity,
            format!(
                "the bundle names {:?}, which is not a plain relative path; refusing the bundle",
                crate::out::bounded(p, 200)
            ),
        );
    }
    Ok(())
}

fn parse_index(bytes: &[u8], at: &str) -> Result<Index> {
    let idx: Index = serde_json::from_slice(bytes).map_err(|e| {
        Error::new(
            Code::Integrity,
            format!("{at}: the bundle's index does not parse ({e}); the bundle is damaged, make it again"),
        )
    })?;
    if idx.files.len() > MAX_FILES {
        return err(Code::Integrity, format!("{at}: too many files"));
    }
    let mut seen = BTreeSet::new();
    for e in &idx.files {
        safe_rel(&e.path)?;
        if e.path == INDEX || !seen.insert(e.path.as_str()) {
            return err(Code::Integrity, format!("{at}: {} is listed twice", e.path));
        }
    }
    Ok(idx)
}

/// The index of a bundle directory or archive (an archive's first member).
pub fn read_index(b: &Path) -> Result<Index> {
    if !is_archive(b) {
        let p = b.join(INDEX);
        let bytes = std::fs::read(&p).map_err(|e| {
            Error::new(
                Code::Integrity,
                format!(
                    "{}: not a bundle ({e}); make one with `onramp bundle create`",
                    p.display()
                ),
            )
        })?;
        return parse_index(&bytes, &p.display().to_string());
    }
    let mut ar = open_archive(b)?;
    let mut entries = ar.entries().map_err(|e| damaged_read(b, e))?;
    let first = entries.next();
    match first {
        Some(Ok(mut e)) if e.path().is_ok_and(|p| p == Path::new(INDEX)) => {
            let mut bytes = Vec::new();
            e.by_ref()
                .take(64 << 20)
                .read_to_end(&mut bytes)
                .map_err(|er| damaged_read(b, er))?;
            parse_index(&bytes, &b.display().to_string())
        }
        _ => err(
            Code::Integrity,
            format!(
                "{}: its first member is not {INDEX}; not an onramp bundle (or damaged)",
                b.display()
            ),
        ),
    }
}

fn open_archive(
    b: &Path,
) -> Result<tar::Archive<zstd::Decoder<'static, std::io::BufReader<std::fs::File>>>> {
    let f = crate::download::open_nofollow(b).map_err(|e| Error::io("cannot open", b, e))?;
    let d = zstd::Decoder::new(f).map_err(|e| damaged_read(b, e))?;
    Ok(tar::Archive::new(d))
}

/// Check a bundle (see the module doc); its index when it is whole.
pub fn verify(b: &Path, f: &Flags) -> Result<Index> {
    if is_archive(b) {
        // Streamed into a scratch directory beside it, checked, removed.
        let tmp = fsutil::temp_beside(b);
        let r = unpack_into(b, &tmp, true, &trusted_keys(f)?).and_then(|idx| {
            check_manifest(&tmp, &idx, f)?;
            Ok(idx)
        });
        fsutil::remove_tree(&tmp);
        return r;
    }
    let idx = {
        let idx = read_index(b)?;
        let listed: BTreeSet<&str> = idx.files.iter().map(|e| e.path.as_str()).collect();
        for rel in files_below(b)? {
            if rel != INDEX && rel != INCOMPLETE && !listed.contains(rel.as_str()) {
                return err(
                    Code::Integrity,
                    format!(
                        "{}: {rel} is not in the bundle's index; refusing the bundle (something was added to it)",
                        b.display()
                    ),
                );
            }
        }
        for e in &idx.files {
            crate::signal::check()?;
            let p = b.join(&e.path);
            let m = std::fs::symlink_metadata(&p).map_err(|_| {
                Error::new(
                    Code::Integrity,
                    format!(
                        "{}: {} is missing from the bundle; get the bundle again",
                        b.display(),
                        e.path
                    ),
                )
            })?;
            if !m.is_file() || m.len() != e.size || fsutil::sha256_file(&p)? != e.sha256 {
                return err(
                    Code::Integrity,
                    format!(
                        "{}: {} does not match the bundle's index (size or sha256); the bundle is damaged or altered, get it again",
                        b.display(),
                        e.path
                    ),
                );
            }
        }
        idx
    };
    check_manifest(b, &idx, f)?;
    Ok(idx)
}

/// The bundled manifest passes the trusted keys, and every artifact it
/// fetches by URL for the bundle's targets is in `sha256/`.
fn check_manifest(b: &Path, idx: &Index, f: &Flags) -> Result<()> {
    let keys = trusted_keys(f)?;
    let man = manifest::load_signed(&b.join("manifest.json"), None, &keys)?;
    let have: BTreeSet<&str> = idx
        .files
        .iter()
        .filter_map(|e| e.path.strip_prefix("sha256/"))
        .collect();
    for (id, w) in url_wants(&man, &idx.targets, None) {
        if !have.contains(w.sha256.as_str()) {
            return err(
                Code::Integrity,
                format!(
                    "{}: {id}'s artifact sha256/{} is not in the bundle; make the bundle again",
                    b.display(),
                    w.sha256
                ),
            );
        }
    }
    Ok(())
}

/// Every artifact fetched by URL, of every variant (or only the chosen
/// ones when `chosen` is given), for `targets` (and `any`).
fn url_wants(
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
                let url = match (&a.url, &a.path) {
                    (Some(u), _) => u.clone(),
                    (None, Some(p)) => match man.resolve(p) {
                        manifest::Origin::Url(u) => u,
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
                        source: Source::Url(url),
                        size,
                        sha256: sha.clone(),
                    },
                ));
            }
        }
    }
    v
}

/// Stream an archive into `dest` (a new directory) after checking each
/// member against the index; `keep` false only checks. Nothing is left at
/// `dest` when a member fails.
fn unpack_into(b: &Path, dest: &Path, keep: bool, keys: &crate::sign::Keys) -> Result<Index> {
    let res = unpack_inner(b, dest, keys);
    if res.is_err() || !keep {
        fsutil::remove_tree(dest);
    }
    res
}

pub fn unpack(b: &Path, dest: &Path, keys: &crate::sign::Keys) -> Result<Index> {
    if std::fs::symlink_metadata(dest).is_ok() {
        return err(
            Code::Usage,
            format!("{} exists; unpack into a new directory", dest.display()),
        );
    }
    unpack_into(b, dest, true, keys)
}

/// The members a trusted key signs, which an archive carries right after
/// its index: with a key trusted, they are checked before any other member
/// is written (a forged bundle fills no disk).
const SIGNED: [&str; 2] = ["manifest.json", "manifest.json.minisig"];

fn unpack_inner(b: &Path, dest: &Path, keys: &crate::sign::Keys) -> Result<Index> {
    use sha2::Digest;
    let idx = read_index(b)?;
    let by_path: BTreeMap<&str, &Entry> = idx.files.iter().map(|e| (e.path.as_str(), e)).collect();
    fsutil::mkdirs(dest)?;
    // Room for what the index lists, before anything is written.
    let total: u64 = idx.files.iter().fold(0u64, |a, e| a.saturating_add(e.size));
    if let Ok(free) = fsutil::free_bytes(dest)
        && total > free
    {
        return err(
            Code::Disk,
            format!(
                "{}: unpacking it needs {} and {} has {} free; make room or set TMPDIR elsewhere",
                b.display(),
                fsutil::human_bytes(total),
                dest.display(),
                fsutil::human_bytes(free)
            ),
        );
    }
    // With a key trusted, the signed members come first and are checked
    // before any other member is written.
    let signed: Vec<&str> = SIGNED
        .iter()
        .copied()
        .filter(|s| by_path.contains_key(s))
        .collect();
    let mut verified = keys.is_empty();
    let mut ar = open_archive(b)?;
    let entries = ar.entries().map_err(|e| damaged_read(b, e))?;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (i, ent) in entries.enumerate() {
        crate::signal::check()?;
        let mut ent = ent.map_err(|e| damaged_read(b, e))?;
        let path = ent
            .path()
            .map_err(|e| damaged_read(b, e))?
            .to_string_lossy()
            .into_owned();
        if i == 0 {
            // the index itself, read above
            continue;
        }
        let damaged = |why: &str| {
            Error::new(
                Code::Integrity,
                format!(
                    "{}: {} {why}; the bundle is damaged or altered, get it again",
                    b.display(),
                    crate::out::bounded(&path, 200)
                ),
            )
        };
        let Some(e) = by_path.get(path.as_str()) else {
            return Err(damaged("is not in the bundle's index"));
        };
        if ent.header().entry_type() != tar::EntryType::Regular {
            return Err(damaged("is not a regular file"));
        }
        if !seen.insert(path.clone()) {
            return Err(damaged("appears twice"));
        }
        safe_rel(&path)?;
        if !verified && !signed.contains(&path.as_str()) {
            return Err(damaged(
                "comes before the signed manifest (a bundle from an older onramp, or altered); make the bundle again with `onramp bundle create`",
            ));
        }
        // Written before the signature is checked: bounded.
        let cap = match path.as_str() {
            "manifest.json" => manifest::MAX_MANIFEST,
            "manifest.json.minisig" => crate::sign::MAX_SIG,
            _ => u64::MAX,
        };
        if !verified && e.size > cap {
            return Err(damaged(&format!(
                "is listed at {} bytes, more than the {cap} it may have",
                e.size
            )));
        }
        let to = dest.join(&path);
        if let Some(d) = to.parent() {
            fsutil::mkdirs(d)?;
        }
        let mut w = fsutil::create_new(&to, 0o644)?;
        let mut h = sha2::Sha256::new();
        let mut n = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let k = ent.read(&mut buf).map_err(|er| damaged_read(b, er))?;
            if k == 0 {
                break;
            }
            n += k as u64;
            if n > e.size {
                return Err(damaged("is larger than the index says"));
            }
            h.update(&buf[..k]);
            w.write_all(&buf[..k])
                .map_err(|er| Error::io("cannot write", &to, er))?;
        }
        if n != e.size || fsutil::hex(&h.finalize()) != e.sha256 {
            return Err(damaged(
                "does not match the bundle's index (size or sha256)",
            ));
        }
        if !verified && signed.iter().all(|s| seen.contains(*s)) {
            manifest::load_signed(&dest.join("manifest.json"), None, keys)?;
            verified = true;
        }
        if e.path.starts_with("onramp-") || e.path == "install.sh" {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755));
        }
    }
    if let Some(missing) = idx.files.iter().find(|e| !seen.contains(&e.path)) {
        return err(
            Code::Integrity,
            format!(
                "{}: {} is missing from the bundle; get the bundle again",
                b.display(),
                missing.path
            ),
        );
    }
    Ok(idx)
}

/// Every regular file below `dir`, relative, sorted; anything else (a
/// link, a device) is refused as a damaged bundle.
fn files_below(dir: &Path) -> Result<Vec<String>> {
    crate::cmd::release::files_below(dir).map_err(|e| match e.code {
        Code::Manifest => Error::new(Code::Integrity, e.msg),
        _ => e,
    })
}

fn create(f: &Flags) -> Result<i32> {
    let Some(out_path) = &f.output else {
        return err(Code::Usage, "bundle create needs -o FILE.tar.zst or -o DIR");
    };
    let out_path = fsutil::absolute(out_path)?;
    let archive = is_archive(&out_path);
    let stage = if archive {
        PathBuf::from(format!("{}.partial", out_path.display()))
    } else {
        out_path.clone()
    };
    if archive && out_path.exists() {
        return err(
            Code::Usage,
            format!("{} exists; bundle into a new file", out_path.display()),
        );
    }
    let marker = stage.join(INCOMPLETE);
    if let Ok(mut rd) = std::fs::read_dir(&stage)
        && rd.next().is_some()
        && !marker.exists()
    {
        return err(
            Code::Usage,
            format!(
                "{} is not empty; bundle into a new directory",
                stage.display()
            ),
        );
    }
    let resumed = marker.exists();
    fsutil::mkdirs(&stage)?;
    if !resumed {
        fsutil::write_atomic(&marker, b"", 0o644)?;
    } else {
        out::line(&format!(
            "onramp: resuming the bundle in {} (what is there is checked, not fetched again)",
            stage.display()
        ));
        // What the killed run was writing when it stopped.
        fsutil::remove_orphans_deep(&stage);
    }
    let keys = trusted_keys(f)?;
    let Some(mpath) = &f.manifest else {
        return err(Code::Usage, "bundle create needs --manifest FILE");
    };
    let mut man = manifest::load_signed(mpath, f.manifest_url.as_deref(), &keys)?;
    let mut targets: Vec<String> = f.targets.clone();
    if targets.is_empty() {
        targets.push(crate::platform::target());
    }
    for t in &targets {
        if !crate::platform::KNOWN_TARGETS.contains(&t.as_str()) {
            return err(Code::Usage, format!("--target {t:?}: unknown target"));
        }
    }
    // Only the variants and profile named, when any is.
    let chosen: Option<BTreeSet<String>> = if f.gpu.is_some() || f.profile.is_some() {
        let mut hw = crate::machine::Hardware::default();
        if let Some(g) = &f.gpu {
            crate::machine::check_backend(g)?;
            crate::machine::force(&mut hw, g);
        }
        crate::plan::select(&mut man, &hw, f.profile.as_deref())?;
        Some(man.m.components.iter().map(|c| c.id.clone()).collect())
    } else {
        None
    };
    // What install.sh, the helpers and the manifest's own files need.
    let helpers = crate::cmd::release::helpers(f)?;
    let pins = crate::cmd::release::copy_helpers(&helpers, &stage)?;
    crate::cmd::release::copy_named(&man, &stage)?;
    for (i, cf) in man.m.configure.files.iter().enumerate() {
        if let Some(s) = &cf.source {
            crate::cmd::release::copy_file(
                &man,
                &stage,
                &format!("configure.files[{i}].source"),
                s,
                None,
            )?;
        }
    }
    let bytes = std::fs::read(&man.path).map_err(|e| Error::io("cannot read", &man.path, e))?;
    fsutil::write_atomic(&stage.join("manifest.json"), &bytes, 0o644)?;
    let sig = crate::sign::sig_path(&man.path);
    let sig_to = crate::sign::sig_path(&stage.join("manifest.json"));
    match std::fs::read(&sig) {
        Ok(s) => fsutil::write_atomic(&sig_to, &s, 0o644)?,
        Err(_) => fsutil::remove(&sig_to),
    }
    let bake = crate::cmd::release::Bake {
        base: String::new(),
        stack: man.m.name.clone(),
        manifest: String::new(),
        keys: keys.texts(),
        pins,
    };
    let script = crate::cmd::release::installer(&bake)?;
    fsutil::write_atomic(&stage.join("install.sh"), script.as_bytes(), 0o755)?;
    let ps1 = crate::cmd::release::installer_ps1(&bake)?;
    fsutil::write_atomic(&stage.join("install.ps1"), ps1.as_bytes(), 0o644)?;
    // Artifacts and worker sources by URL: through the download engine,
    // into the bundle itself (resumable).
    let mut opts = options(f)?;
    opts.from = None;
    let cache = Cache::new(stage.clone());
    let rep = crate::events::Progress::new(crate::events::Reporter::new(
        None,
        crate::events::Format::Ndjson,
        "models",
    )?);
    let wants = url_wants(&man, &targets, chosen.as_ref());
    for (_, w) in &wants {
        crate::signal::check()?;
        cache.ensure(w, &opts, &rep)?;
    }
    let prefix = stage.join(".no-prefix");
    for c in man.m.components.iter().filter(|c| c.kind == Kind::Worker) {
        if chosen.as_ref().is_some_and(|s| !s.contains(&c.id)) {
            continue;
        }
        if c.catalog.as_ref().is_some_and(|k| k.base.contains("://"))
            || c.recipe.as_ref().is_some_and(|r| r.url.is_some())
        {
            return err(
                Code::Manifest,
                format!(
                    "{}: its recipe comes from a URL; a bundle carries only recipes beside the manifest (a local catalog or recipe.path)",
                    c.id
                ),
            );
        }
        for t in &targets {
            let job = crate::worker::Job {
                comp: c,
                man: &man,
                prefix: &prefix,
                target: t,
                cache: &cache,
                opts: &opts,
                rep: &rep,
                allow_skip_checksums: false,
                allow_unpinned_catalog: f.allow_unpinned_catalog,
            };
            crate::worker::prefetch(&job)?;
        }
    }
    // The cache's own bookkeeping is not part of the bundle.
    for d in ["partial", "seals"] {
        fsutil::remove_tree(stage.join(d));
    }
    fsutil::remove(stage.join(fsutil::CREATED_NOTE));
    let mut files = Vec::new();
    for rel in files_below(&stage)? {
        if rel == INDEX || rel == INCOMPLETE {
            continue;
        }
        let p = stage.join(&rel);
        let size = std::fs::metadata(&p)
            .map_err(|e| Error::io("cannot stat", &p, e))?
            .len();
        files.push(Entry {
            sha256: fsutil::sha256_file(&p)?,
            path: rel,
            size,
        });
    }
    let idx = Index {
        schema: 1,
        stack: man.m.name.clone(),
        version: man.m.version.clone(),
        targets: targets.clone(),
        files,
    };
    let body = serde_json::to_vec_pretty(&idx)
        .map_err(|e| Error::new(Code::Internal, format!("bundle index: {e}")))?;
    fsutil::write_atomic(&stage.join(INDEX), &body, 0o644)?;
    let total: u64 = idx.files.iter().map(|e| e.size).sum();
    if archive {
        write_archive(&stage, &idx, &out_path)?;
        fsutil::remove_tree(&stage);
    } else {
        fsutil::remove(&marker);
    }
    out::line(&format!(
        "onramp: bundle of {} {} for {} written to {}: {} files, {}",
        idx.stack,
        idx.version,
        targets.join(", "),
        out_path.display(),
        idx.files.len(),
        fsutil::human_bytes(total)
    ));
    out::stdout_line(&format!("sh install.sh --from {}", out_path.display()));
    Ok(0)
}

/// The staged bundle as one `.tar.zst`: the index first, then every file
/// in index order; written beside `out` and renamed into place.
fn write_archive(stage: &Path, idx: &Index, out: &Path) -> Result<()> {
    let tmp = fsutil::temp_beside(out);
    let res = (|| -> Result<()> {
        let f = fsutil::create_new(&tmp, 0o644)?;
        let enc = zstd::Encoder::new(f, 3).map_err(|e| Error::io("cannot compress", &tmp, e))?;
        let mut tb = tar::Builder::new(enc);
        tb.mode(tar::HeaderMode::Deterministic);
        let mut add = |rel: &str| -> Result<()> {
            let p = stage.join(rel);
            let mut src =
                crate::download::open_nofollow(&p).map_err(|e| Error::io("cannot open", &p, e))?;
            tb.append_file(rel, &mut src)
                .map_err(|e| Error::io("cannot write the bundle", &tmp, e))
        };
        add(INDEX)?;
        // The signed members next, so an unpack checks them first.
        let listed = |p: &str| idx.files.iter().any(|e| e.path == p);
        for s in SIGNED.iter().filter(|s| listed(s)) {
            add(s)?;
        }
        for e in idx
            .files
            .iter()
            .filter(|e| !SIGNED.contains(&e.path.as_str()))
        {
            crate::signal::check()?;
            add(&e.path)?;
        }
        let enc = tb
            .into_inner()
            .map_err(|e| Error::io("cannot write the bundle", &tmp, e))?;
        let f = enc
            .finish()
            .map_err(|e| Error::io("cannot write the bundle", &tmp, e))?;
        f.sync_all()
            .map_err(|e| Error::io("cannot sync", &tmp, e))?;
        Ok(())
    })();
    if let Err(e) = res {
        fsutil::remove(&tmp);
        return Err(e);
    }
    crate::fault::io("rename", out, || std::fs::rename(&tmp, out))
        .map_err(|e| Error::io("cannot move into place", out, e))?;
    if let Some(d) = out.parent() {
        fsutil::sync_dir(d)?;
    }
    Ok(())
}
