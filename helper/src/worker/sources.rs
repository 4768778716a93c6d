//! A recipe's sources: each one fetched through the download cache and
//! checked against its sums (sha256 required; sha224/384/512 also checked
//! when given), `SKIP` refused unless allowed, VCS and other schemes refused
//! by name, and local files taken only from inside the recipe's own
//! directory (never `file://` or an absolute path: root would copy any file
//! of the machine into the build). Verified files are copied into the
//! build's startdir and hashed again as they are copied (the bytes used are
//! the bytes checked), linked into srcdir, and archives are unpacked into
//! srcdir as makepkg does (noextract honoured), failing closed on any entry
//! that escapes.

use super::catalog::Origin;
use crate::download::http;
use crate::error::{Code, Error, Result, err};
use crate::manifest::Unpack;
use crate::manifest::{Source, Want};
use crate::pkgbuild::SourceEntry;
use sha2::Digest;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a source is fetched for: the worker's job, where its recipe lives,
/// and the HTTP client of this build (None when offline).
pub struct Ctx<'a> {
    pub job: &'a super::Job<'a>,
    pub origin: &'a Origin,
    pub client: Option<&'a http::Client>,
}

impl Ctx<'_> {
    /// The client, or the --offline refusal naming what was needed.
    fn client(&self, url: &str) -> Result<&http::Client> {
        self.client.ok_or_else(|| {
            Error::new(
                Code::Network,
                format!("source {url} is not in the cache and --offline is set; pre-seed it with --from DIR"),
            )
        })
    }
}

enum Loc {
    Url(String),
    File(PathBuf),
}

fn locate(s: &SourceEntry, origin: &Origin) -> Result<Loc> {
    let l = &s.location;
    if let Some((scheme, _)) = l.split_once("://") {
        return match scheme {
            "http" | "https" => Ok(Loc::Url(l.clone())),
            "file" => err(
                Code::Manifest,
                format!(
                    "source {:?} is a file:// URL; onramp takes local sources only from the recipe's own directory (name the file relative to the PKGBUILD)",
                    s.entry
                ),
            ),
            other => err(
                Code::Manifest,
                format!(
                    "source {:?} uses {other}://, which onramp does not fetch (http, https and files beside the recipe only); vendor it as a tarball",
                    s.entry
                ),
            ),
        };
    }
    if l.starts_with('/') || Path::new(l).components().any(|c| c.as_os_str() == "..") {
        return err(
            Code::Manifest,
            format!(
                "source {:?} leaves the recipe's directory; local sources must be files beside the PKGBUILD",
                s.entry
            ),
        );
    }
    Ok(match origin.join(l) {
        Origin::Dir(p) => Loc::File(p),
        Origin::Url(u) => Loc::Url(u),
    })
}

/// A local source, resolved: it must really be inside the recipe's
/// directory (a link in there that points out is refused).
fn inside(origin: &Origin, p: &Path, entry: &str) -> Result<PathBuf> {
    let Origin::Dir(dir) = origin else {
        return Ok(p.to_path_buf());
    };
    let real = fs::canonicalize(p).map_err(|e| Error::io(&format!("source {entry:?}"), p, e))?;
    let base = fs::canonicalize(dir).map_err(|e| Error::io("cannot resolve", dir, e))?;
    if !real.starts_with(&base) {
        return err(
            Code::Manifest,
            format!(
                "source {entry:?} resolves to {}, outside the recipe's directory {}; refusing it",
                real.display(),
                base.display()
            ),
        );
    }
    Ok(real)
}

fn new_file(path: &Path) -> Result<fs::File> {
    crate::fsutil::create_new(path, 0o644)
}

/// The sha2 digests a recipe may list, computed in one pass.
struct Sums {
    sha224: sha2::Sha224,
    sha256: sha2::Sha256,
    sha384: sha2::Sha384,
    sha512: sha2::Sha512,
}

impl Sums {
    fn new() -> Sums {
        Sums {
            sha224: Digest::new(),
            sha256: Digest::new(),
            sha384: Digest::new(),
            sha512: Digest::new(),
        }
    }

    fn update(&mut self, b: &[u8], kinds: &[&str]) {
        self.sha256.update(b);
        for k in kinds {
            match *k {
                "sha224" => self.sha224.update(b),
                "sha384" => self.sha384.update(b),
                "sha512" => self.sha512.update(b),
                _ => {}
            }
        }
    }

    fn get(self, kinds: &[&str]) -> Vec<(String, String)> {
        let mut v = vec![(
            "sha256".to_string(),
            crate::fsutil::hex(&self.sha256.finalize()),
        )];
        for k in kinds {
            let h = match *k {
                "sha224" => crate::fsutil::hex(&self.sha224.clone().finalize()),
                "sha384" => crate::fsutil::hex(&self.sha384.clone().finalize()),
                "sha512" => crate::fsutil::hex(&self.sha512.clone().finalize()),
                _ => continue,
            };
            v.push((k.to_string(), h));
        }
        v
    }
}

/// Check what can be checked before anything is downloaded: the scheme,
/// the file name and the checksum policy. `Some(sha256)` when verified.
pub fn precheck(cx: &Ctx, s: &SourceEntry) -> Result<Option<String>> {
    locate(s, cx.origin)?;
    if s.name.is_empty() || s.name.contains('/') || s.name == "." || s.name == ".." {
        return err(
            Code::Manifest,
            format!("source {:?} has no usable file name", s.entry),
        );
    }
    let sha = s.sums.get("sha256").map(String::as_str);
    match sha {
        Some("SKIP") | None if !cx.job.allow_skip_checksums => {
            let why = match sha {
                Some(_) => "has sha256sums SKIP".to_string(),
                None if s.sums.is_empty() => "has no checksums".to_string(),
                None => format!(
                    "has only {} sums; onramp needs sha256sums",
                    s.sums.keys().cloned().collect::<Vec<_>>().join("/")
                ),
            };
            err(
                Code::Integrity,
                format!(
                    "source {:?} {why}: no checksum, no build (add its sha256, or pass --allow-skip-checksums to trust it unverified)",
                    s.entry
                ),
            )
        }
        Some("SKIP") | None => Ok(None),
        Some(sha) => {
            let sha = sha.to_ascii_lowercase();
            if !crate::manifest::is_sha256(&sha) {
                return err(
                    Code::Manifest,
                    format!("source {:?}: sha256 {sha:?} is not 64 hex digits", s.entry),
                );
            }
            Ok(Some(sha))
        }
    }
}

/// Fetch and verify `s`; put it at `startdir/NAME`. Returns that path and
/// its sha256 when verified.
pub fn fetch(cx: &Ctx, s: &SourceEntry, startdir: &Path) -> Result<(PathBuf, Option<String>)> {
    let mut loc = locate(s, cx.origin)?;
    if let Loc::File(p) = &loc {
        loc = Loc::File(inside(cx.origin, p, &s.entry)?);
    }
    let dest = startdir.join(&s.name);
    match precheck(cx, s)? {
        None => {
            cx.job.rep.warn(&format!(
                "{}: source {:?} is not verified (--allow-skip-checksums)",
                cx.job.comp.id, s.entry
            ));
            fetch_unverified(cx, &loc, &dest)?;
            Ok((dest, None))
        }
        Some(sha) => {
            let (cached, want) = into_cache(cx, s, &loc, sha)?;
            copy_verified(&cached, &dest, s, &want.sha256)?;
            Ok((dest, Some(want.sha256)))
        }
    }
}

/// A verified URL source into the cache (what `bundle create` gathers);
/// a local one is part of the recipe's directory. The sha256, when fetched.
pub fn prefetch(cx: &Ctx, s: &SourceEntry) -> Result<Option<String>> {
    let loc = locate(s, cx.origin)?;
    match (precheck(cx, s)?, &loc) {
        (Some(sha), Loc::Url(_)) => Ok(Some(into_cache(cx, s, &loc, sha)?.1.sha256)),
        _ => Ok(None),
    }
}

/// Fetch (or find) a verified source in the cache.
fn into_cache(cx: &Ctx, s: &SourceEntry, loc: &Loc, sha: String) -> Result<(PathBuf, Want)> {
    let (source, size) = match loc {
        Loc::File(p) => (
            Source::Path(p.clone()),
            fs::symlink_metadata(p)
                .map_err(|e| Error::io(&format!("source {:?}", s.entry), p, e))?
                .len(),
        ),
        Loc::Url(u) => {
            // Already verified in the cache: no network needed.
            let size = match fs::metadata(cx.job.cache.verified_path(&sha)) {
                Ok(m) if m.is_file() => m.len(),
                _ => http::probe_size(cx.client(u)?, u)?,
            };
            (Source::Url(u.clone()), size)
        }
    };
    let want = Want {
        label: format!("{}: {}", cx.job.comp.id, s.name),
        source,
        size,
        sha256: sha,
    };
    if cx.job.cache.lookup(&want).is_none() {
        cx.job.rep.add_total(want.size);
    }
    let cached = cx.job.cache.ensure(&want, cx.job.opts, cx.job.rep)?;
    Ok((cached, want))
}

/// Copy the cached source into startdir, computing its sums as it is
/// written: the copy is used only when they are the recipe's.
fn copy_verified(cached: &Path, dest: &Path, s: &SourceEntry, sha256: &str) -> Result<()> {
    let kinds: Vec<&str> = s
        .sums
        .iter()
        .filter(|(k, v)| *v != "SKIP" && matches!(k.as_str(), "sha224" | "sha384" | "sha512"))
        .map(|(k, _)| k.as_str())
        .collect();
    let mut from =
        crate::download::open_nofollow(cached).map_err(|e| Error::io("cannot open", cached, e))?;
    let mut to = new_file(dest)?;
    let mut sums = Sums::new();
    crate::fsutil::read_chunks(&mut from, cached, |b| {
        sums.update(b, &kinds);
        to.write_all(b)
            .map_err(|e| Error::io("cannot write", dest, e))
    })?;
    for (kind, got) in sums.get(&kinds) {
        let want = if kind == "sha256" {
            sha256.to_string()
        } else {
            s.sums
                .get(&kind)
                .map(|v| v.to_ascii_lowercase())
                .unwrap_or_default()
        };
        if got != want {
            crate::fsutil::remove(dest);
            return err(
                Code::Integrity,
                format!(
                    "source {:?}: {kind} {got} does not match the recipe's {want}",
                    s.entry
                ),
            );
        }
    }
    to.sync_all().map_err(|e| Error::io("cannot sync", dest, e))
}

fn fetch_unverified(cx: &Ctx, loc: &Loc, dest: &Path) -> Result<()> {
    match loc {
        Loc::File(p) => {
            let mut from =
                crate::download::open_nofollow(p).map_err(|e| Error::io("cannot open", p, e))?;
            let mut to = new_file(dest)?;
            std::io::copy(&mut from, &mut to).map_err(|e| Error::io("cannot copy", p, e))?;
        }
        Loc::Url(u) => {
            http::get_body(cx.client(u)?, u, |r| {
                crate::fsutil::remove(dest);
                let mut f = new_file(dest).map_err(|e| std::io::Error::other(e.msg))?;
                std::io::copy(r, &mut f)?;
                f.sync_all()
            })?;
        }
    }
    Ok(())
}

/// The archive kind onramp unpacks for a file name, `Err` for an archive
/// kind it cannot unpack, `Ok(None)` for a plain file.
fn archive_kind(name: &str) -> std::result::Result<Option<Unpack>, &'static str> {
    let n = name.to_ascii_lowercase();
    if n.ends_with(".tar") {
        Ok(Some(Unpack::Tar))
    } else if n.ends_with(".tar.gz") || n.ends_with(".tgz") {
        Ok(Some(Unpack::TarGz))
    } else if n.ends_with(".tar.zst") || n.ends_with(".tzst") {
        Ok(Some(Unpack::TarZst))
    } else {
        for ext in [
            ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar.lz", ".zip", ".7z", ".rar",
        ] {
            if n.ends_with(ext) {
                return Err(ext);
            }
        }
        Ok(None)
    }
}

/// Link the source into srcdir and unpack it there unless noextract.
/// `sha256`: the source's verified hash, checked again as it is unpacked.
pub fn extract(
    file: &Path,
    sha256: Option<&str>,
    name: &str,
    srcdir: &Path,
    noextract: &[String],
) -> Result<()> {
    let link = srcdir.join(name);
    crate::sys::symlink(&Path::new("..").join(name), &link)
        .map_err(|e| Error::io("cannot link", &link, e))?;
    if noextract.iter().any(|n| n == name) {
        return Ok(());
    }
    let kind = match archive_kind(name) {
        Ok(Some(k)) => k,
        Ok(None) => return Ok(()),
        Err(ext) => {
            return err(
                Code::Manifest,
                format!(
                    "source {name}: onramp does not unpack {ext} (it unpacks .tar, .tar.gz, .tar.zst); add it to noextract=() and unpack it in prepare()"
                ),
            );
        }
    };
    // Unpack into a fresh directory, then move its entries into srcdir.
    let tmp = srcdir.join(format!(".onramp-unpack-{name}"));
    let limits = crate::archive::Limits::for_file(file, None, sha256);
    let res = crate::archive::extract(file, kind, &tmp, &limits).and_then(|()| {
        let rd = fs::read_dir(&tmp).map_err(|e| Error::io("cannot read", &tmp, e))?;
        for e in rd {
            let e = e.map_err(|e| Error::io("cannot read", &tmp, e))?;
            let to = srcdir.join(e.file_name());
            if fs::symlink_metadata(&to).is_ok() {
                return err(
                    Code::Manifest,
                    format!(
                        "source {name}: {} is already in srcdir (two sources unpack the same name)",
                        e.file_name().to_string_lossy()
                    ),
                );
            }
            fs::rename(e.path(), &to).map_err(|er| Error::io("cannot move", &to, er))?;
        }
        Ok(())
    });
    crate::fsutil::remove_tree(&tmp);
    // The archive's path is a temporary one; name the source instead.
    res.map_err(|e| {
        let msg = e
            .msg
            .replacen(&format!("archive {}: ", file.display()), "", 1);
        Error::new(e.code, format!("source {name}: {msg}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        let s = |l: &str| SourceEntry {
            entry: l.into(),
            name: "x".into(),
            location: l.into(),
            sums: Default::default(),
        };
        let o = Origin::Dir("/r".into());
        let e = locate(&s("git+https://h/x.git"), &o).err().unwrap();
        assert!(e.msg.contains("git+https://"), "{}", e.msg);
        let e = locate(&s("file:///etc/shadow"), &o).err().unwrap();
        assert!(e.msg.contains("file:// URL"), "{}", e.msg);
        let e = locate(&s("/etc/shadow"), &o).err().unwrap();
        assert!(e.msg.contains("leaves the recipe's directory"), "{}", e.msg);
        assert!(
            matches!(locate(&s("a.tar.gz"), &o), Ok(Loc::File(p)) if p == Path::new("/r/a.tar.gz"))
        );
        let u = Origin::Url("http://h/w/x".into());
        assert!(matches!(locate(&s("a.c"), &u), Ok(Loc::Url(x)) if x == "http://h/w/x/a.c"));
        assert!(locate(&s("../up.c"), &o).is_err());
    }

    #[test]
    fn kinds() {
        assert!(matches!(archive_kind("a.tar.gz"), Ok(Some(Unpack::TarGz))));
        assert!(matches!(archive_kind("a.c"), Ok(None)));
        assert!(archive_kind("a.tar.xz").is_err());
    }
}
