//! A bundle's format: `index.json` (every file's path, size and sha256,
//! the first member of an archive, so it is checked as it streams), the
//! `.tar.zst` archive (the index, then the signed manifest, then the rest),
//! and checking one: `verify` (every byte, nothing missing or added, the
//! signature, every artifact there) and `unpack` (streamed, bounded
//! memory, each member checked as it is written; nothing left on failure).

use super::{files_below as below_dir, needs, url_wants};
use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::manifest;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;

pub const INDEX: &str = "index.json";

/// Present while `create` has not finished (what lets it resume).
pub const INCOMPLETE: &str = ".onramp-bundle-incomplete";

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

pub fn is_archive(p: &Path) -> bool {
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
pub fn verify(b: &Path, keys: &crate::sign::Keys) -> Result<Index> {
    if is_archive(b) {
        // Streamed into a scratch directory beside it, checked, removed.
        let tmp = fsutil::temp_beside(b);
        let r = unpack_into(b, &tmp, true, keys).and_then(|idx| {
            check_manifest(&tmp, &idx, keys)?;
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
    check_manifest(b, &idx, keys)?;
    Ok(idx)
}

/// The bundled manifest passes the trusted keys, every artifact it fetches
/// by URL for the bundle's targets is in `sha256/`, and every file it names
/// beside itself (`needs`: the list bundle create copied) is in the index.
pub fn check_manifest(b: &Path, idx: &Index, keys: &crate::sign::Keys) -> Result<()> {
    let man = manifest::load_signed(&b.join("manifest.json"), None, keys)?;
    let listed: BTreeSet<&str> = idx.files.iter().map(|e| e.path.as_str()).collect();
    for n in needs(&man)? {
        if !listed.contains(n.rel.as_str()) {
            return err(
                Code::Integrity,
                format!(
                    "{}: {} ({}) is not in the bundle; make the bundle again with this onramp",
                    b.display(),
                    n.rel,
                    n.at
                ),
            );
        }
    }
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
            let _ = crate::sys::set_path_mode(&to, 0o755);
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
pub fn files_below(dir: &Path) -> Result<Vec<String>> {
    below_dir(dir).map_err(|e| match e.code {
        Code::Manifest => Error::new(Code::Integrity, e.msg),
        _ => e,
    })
}

/// The staged bundle as one `.tar.zst`: the index first, then every file
/// in index order; written beside `out` and renamed into place.
pub fn write_archive(stage: &Path, idx: &Index, out: &Path) -> Result<()> {
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
