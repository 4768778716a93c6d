//! Unpacking archives safely into a fresh directory.
//!
//! Every entry is checked before anything is written: only plain relative
//! paths, only regular files, directories and symlinks that stay inside the
//! tree. Absolute paths, `..`, hard links, devices and FIFOs fail the whole
//! extraction (the `tar` crate would skip some of these silently).

use crate::error::{Code, Error, Result};
use crate::manifest::Unpack;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// Extract `archive` into `dest`, which must not exist yet.
pub fn extract(archive: &Path, kind: Unpack, dest: &Path) -> Result<()> {
    let f = File::open(archive).map_err(|e| Error::io("cannot open archive", archive, e))?;
    let reader: Box<dyn Read> = match kind {
        Unpack::Tar => Box::new(f),
        Unpack::TarGz => Box::new(flate2::read::GzDecoder::new(f)),
        Unpack::TarZst => Box::new(
            zstd::stream::read::Decoder::new(f)
                .map_err(|e| Error::io("cannot read zstd archive", archive, e))?,
        ),
    };
    fs::create_dir(dest).map_err(|e| Error::io("cannot create", dest, e))?;
    let bad = |what: String| {
        Error::new(
            Code::Integrity,
            format!(
                "archive {}: {what}; refusing to unpack it",
                archive.display()
            ),
        )
    };
    let mut ar = tar::Archive::new(reader);
    let entries = ar.entries().map_err(|e| bad(format!("unreadable: {e}")))?;
    for entry in entries {
        crate::signal::check()?;
        let mut entry = entry.map_err(|e| bad(format!("unreadable entry: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| bad(format!("bad entry name: {e}")))?
            .into_owned();
        let rel = safe_rel(&raw)
            .ok_or_else(|| bad(format!("entry {:?} escapes the target directory", raw)))?;
        let Some(rel) = rel else { continue }; // "./" itself
        let target = dest.join(&rel);
        check_no_symlink_parents(dest, &rel)
            .map_err(|p| bad(format!("entry {:?} goes through the link {:?}", raw, p)))?;
        let et = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        match et {
            tar::EntryType::Directory => {
                fs::create_dir_all(&target).map_err(|e| Error::io("cannot create", &target, e))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(p) = target.parent() {
                    fs::create_dir_all(p).map_err(|e| Error::io("cannot create", p, e))?;
                }
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode | 0o600)
                    .open(&target)
                    .map_err(|e| Error::io("cannot create", &target, e))?;
                std::io::copy(&mut entry, &mut out)
                    .map_err(|e| Error::io("cannot write", &target, e))?;
                fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(mode))
                    .map_err(|e| Error::io("cannot chmod", &target, e))?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| bad(format!("bad link target: {e}")))?
                    .ok_or_else(|| bad(format!("symlink {:?} has no target", raw)))?
                    .into_owned();
                if !link_stays_inside(&rel, &link) {
                    return Err(bad(format!(
                        "symlink {:?} -> {:?} points outside the target directory",
                        raw, link
                    )));
                }
                if let Some(p) = target.parent() {
                    fs::create_dir_all(p).map_err(|e| Error::io("cannot create", p, e))?;
                }
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(|e| Error::io("cannot create link", &target, e))?;
            }
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {}
            other => {
                return Err(bad(format!(
                    "entry {:?} is a {:?}, which onramp does not unpack",
                    raw, other
                )));
            }
        }
    }
    Ok(())
}

/// `Some(None)` for the archive root, `Some(Some(rel))` for a clean relative
/// path, `None` for anything absolute or containing `..`.
fn safe_rel(p: &Path) -> Option<Option<PathBuf>> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

fn check_no_symlink_parents(root: &Path, rel: &Path) -> std::result::Result<(), PathBuf> {
    let mut cur = root.to_path_buf();
    let mut parts: Vec<_> = rel.components().collect();
    parts.pop();
    for c in parts {
        cur.push(c);
        if fs::symlink_metadata(&cur)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
        {
            return Err(cur);
        }
    }
    Ok(())
}

/// Does a link at `rel` pointing to `link` resolve (lexically) inside the tree?
fn link_stays_inside(rel: &Path, link: &Path) -> bool {
    if link.is_absolute() {
        return false;
    }
    let mut depth: i64 = rel.components().count() as i64 - 1;
    for c in link.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, t, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*t);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // Write the raw name so "../x" and "/x" survive into the archive.
            let raw = name.as_bytes();
            h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn run(name: &str, bytes: Vec<u8>) -> (Result<()>, PathBuf) {
        let d = std::env::temp_dir().join(format!("onramp-ar-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let a = d.join("a.tar");
        fs::write(&a, bytes).unwrap();
        let out = d.join("out");
        (extract(&a, Unpack::Tar, &out), d)
    }

    #[test]
    fn clean_archive_unpacks() {
        let (r, d) = run(
            "ok",
            tar_with(&[
                ("bin/x", tar::EntryType::Regular, b"hi", None),
                ("l", tar::EntryType::Symlink, b"", Some("bin/x")),
            ]),
        );
        r.unwrap();
        assert_eq!(fs::read(d.join("out/bin/x")).unwrap(), b"hi");
        assert_eq!(fs::read(d.join("out/l")).unwrap(), b"hi");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn escapes_fail_closed() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "dotdot",
                tar_with(&[("../evil", tar::EntryType::Regular, b"x", None)]),
            ),
            (
                "abs",
                tar_with(&[("/tmp/evil", tar::EntryType::Regular, b"x", None)]),
            ),
            (
                "linkout",
                tar_with(&[("l", tar::EntryType::Symlink, b"", Some("../../etc"))]),
            ),
            (
                "linkabs",
                tar_with(&[("l", tar::EntryType::Symlink, b"", Some("/etc"))]),
            ),
            (
                "through",
                tar_with(&[
                    ("l", tar::EntryType::Symlink, b"", Some(".")),
                    ("l/x", tar::EntryType::Regular, b"x", None),
                ]),
            ),
            (
                "hard",
                tar_with(&[("h", tar::EntryType::Link, b"", Some("/etc/passwd"))]),
            ),
            ("dev", tar_with(&[("d", tar::EntryType::Char, b"", None)])),
            ("fifo", tar_with(&[("f", tar::EntryType::Fifo, b"", None)])),
        ];
        for (name, bytes) in cases {
            let (r, d) = run(name, bytes);
            let e = r.expect_err(name);
            assert_eq!(e.code, Code::Integrity, "{name}: {}", e.msg);
            assert!(!d.join("evil").exists());
            fs::remove_dir_all(d).unwrap();
        }
    }
}
