//! Unpacking archives safely into a fresh directory.
//!
//! Every entry is checked before anything is written, and the extraction
//! fails closed (Python tarfile's `data` filter, plus what it missed):
//! - only plain relative paths: absolute paths and `..` are refused;
//! - only regular files, directories and symbolic links: hard links,
//!   devices and FIFOs are refused (the `tar` crate skips some silently);
//! - no entry is written through a link already extracted;
//! - a link is resolved against the tree as built so far, following the
//!   links it passes through, and must land inside; every directory its
//!   target passes through that does not exist yet is reserved, so a later
//!   entry cannot make it a link (`sub/up -> ..` then `sub/p1 -> up/..`,
//!   chained, would otherwise reach `/etc`);
//! - modes lose setuid, setgid, sticky and group/other write bits;
//! - the total unpacked is bounded (`Limits`): a bomb stops, it does not
//!   fill the disk;
//! - when the archive's sha256 is known, the bytes are hashed as they are
//!   read and the unpacked tree is refused unless they match: what is
//!   unpacked is what was verified, even if the file changed meanwhile.

use crate::error::{Code, Error, Result};
use crate::manifest::Unpack;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

/// Each entry counts this much against the budget besides its bytes, so a
/// million empty files is as bounded as a large one.
const PER_ENTRY: u64 = 512;

/// What an archive may unpack to, and what its bytes must hash to.
pub struct Limits {
    /// Most bytes (file contents plus `PER_ENTRY` per entry).
    pub max_bytes: u64,
    /// What it was verified against; checked again while it is read.
    pub sha256: Option<String>,
    /// How `max_bytes` was chosen, for the message when it is reached.
    why: String,
    /// Leading path components dropped from every entry (tar's
    /// --strip-components); entries with no more than that are skipped.
    pub strip: usize,
}

impl Limits {
    /// The budget for `file`: its `unpacked_size` plus 10 % and 1 MiB of
    /// slack when the manifest gives one, else 50 times its size (at least
    /// 64 MiB).
    pub fn for_file(file: &Path, unpacked_size: Option<u64>, sha256: Option<&str>) -> Limits {
        let (max_bytes, why) = match unpacked_size {
            Some(u) => (
                u.saturating_add(u / 10).saturating_add(1 << 20),
                format!("its unpacked_size is {u} bytes; 10 % and 1 MiB more are allowed"),
            ),
            None => {
                let size = fs::metadata(file).map(|m| m.len()).unwrap_or(0);
                (
                    size.saturating_mul(50).max(64 << 20),
                    "no unpacked_size is given, so 50 times its size (at least 64 MiB) is allowed"
                        .to_string(),
                )
            }
        };
        Limits {
            max_bytes,
            sha256: sha256.map(str::to_string),
            why,
            strip: 0,
        }
    }
}

/// Reads the archive file and hashes every byte read, in order.
struct Hashing {
    f: File,
    h: Rc<RefCell<Sha256>>,
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.f.read(buf)?;
        self.h.borrow_mut().update(&buf[..n]);
        Ok(n)
    }
}

/// What is extracted so far, to resolve links against.
#[derive(Default)]
struct Tree {
    nodes: HashMap<PathBuf, Node>,
    /// Paths a link's target passes through before they exist: they may
    /// only ever become real directories.
    reserved: HashSet<PathBuf>,
}

enum Node {
    Dir,
    File,
    Link(PathBuf),
}

impl Tree {
    /// Why an entry at `rel` may not be made: a parent is a link or a file.
    fn parents_ok(&self, rel: &Path) -> std::result::Result<(), PathBuf> {
        let mut cur = PathBuf::new();
        let parts: Vec<_> = rel.components().collect();
        for c in &parts[..parts.len().saturating_sub(1)] {
            cur.push(c);
            match self.nodes.get(&cur) {
                Some(Node::Link(_)) | Some(Node::File) => return Err(cur),
                _ => {}
            }
        }
        Ok(())
    }

    fn add_parents(&mut self, rel: &Path) {
        let mut cur = PathBuf::new();
        let parts: Vec<_> = rel.components().collect();
        for c in &parts[..parts.len().saturating_sub(1)] {
            cur.push(c);
            self.nodes.entry(cur.clone()).or_insert(Node::Dir);
        }
    }

    /// Where a link in directory `dir` pointing to `target` lands, relative
    /// to the root; `None` when it leaves the tree. Links on the way are
    /// followed; missing directories on the way are reserved.
    fn resolve(&mut self, dir: &Path, target: &Path, depth: u32) -> Option<PathBuf> {
        if depth > 40 || target.is_absolute() {
            return None;
        }
        let mut cur: Vec<OsString> = dir.iter().map(|s| s.to_os_string()).collect();
        let comps: Vec<Component> = target.components().collect();
        for (i, c) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    cur.pop()?;
                }
                Component::Normal(n) => {
                    cur.push(n.to_os_string());
                    let here: PathBuf = cur.iter().collect();
                    match self.nodes.get(&here) {
                        Some(Node::Link(t)) if !last => {
                            let t = t.clone();
                            let parent: PathBuf = cur[..cur.len() - 1].iter().collect();
                            let to = self.resolve(&parent, &t, depth + 1)?;
                            cur = to.iter().map(|s| s.to_os_string()).collect();
                        }
                        None if !last => {
                            self.reserved.insert(here);
                        }
                        _ => {}
                    }
                }
                _ => return None,
            }
        }
        Some(cur.iter().collect())
    }
}

/// The first link of a tree that leaves it (the data filter's rule, for a
/// tree not read from an archive, such as a package): `entries` are paths
/// relative to the tree's root, each a file (None) or a link with its
/// target. A target is absolute, or climbs out, or goes through another
/// link that does: `(link, target)`.
pub fn link_leaving(entries: &[(PathBuf, Option<PathBuf>)]) -> Option<(PathBuf, PathBuf)> {
    let mut tree = Tree::default();
    for (rel, link) in entries {
        tree.add_parents(rel);
        let node = match link {
            Some(t) => Node::Link(t.clone()),
            None => Node::File,
        };
        tree.nodes.insert(rel.clone(), node);
    }
    entries.iter().find_map(|(rel, link)| {
        let t = link.as_ref()?;
        let dir = rel.parent().unwrap_or(Path::new(""));
        tree.resolve(dir, t, 0)
            .is_none()
            .then(|| (rel.clone(), t.clone()))
    })
}

/// Extract `archive` into `dest`, which must not exist yet.
pub fn extract(archive: &Path, kind: Unpack, dest: &Path, limits: &Limits) -> Result<()> {
    let f = crate::download::open_nofollow(archive)
        .map_err(|e| Error::io("cannot open archive", archive, e))?;
    // Shares the file offset: after the archive ends, it reads on from
    // where the decompressor stopped, so every byte is hashed exactly once.
    let rest = f
        .try_clone()
        .map_err(|e| Error::io("cannot open archive", archive, e))?;
    let h = Rc::new(RefCell::new(Sha256::new()));
    let raw = Hashing {
        f,
        h: Rc::clone(&h),
    };
    let reader: Box<dyn Read> = match kind {
        Unpack::Tar => Box::new(raw),
        Unpack::TarGz => Box::new(flate2::read::GzDecoder::new(raw)),
        Unpack::TarZst => Box::new(
            zstd::stream::read::Decoder::new(raw)
                .map_err(|e| Error::io("cannot read zstd archive", archive, e))?,
        ),
    };
    crate::fault::io("mkdir", dest, || fs::create_dir(dest))
        .map_err(|e| Error::io("cannot create", dest, e))?;
    let bad = |what: String| {
        Error::new(
            Code::Integrity,
            format!(
                "archive {}: {what}; refusing to unpack it",
                archive.display()
            ),
        )
    };
    let mut tree = Tree::default();
    let mut used: u64 = 0;
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
        let rel: PathBuf = if limits.strip > 0 {
            let parts: Vec<_> = rel.components().collect();
            if parts.len() <= limits.strip {
                continue;
            }
            parts[limits.strip..].iter().collect()
        } else {
            rel
        };
        let et = entry.header().entry_type();
        used = used
            .saturating_add(PER_ENTRY)
            .saturating_add(if et.is_file() { entry.size() } else { 0 });
        if used > limits.max_bytes {
            return Err(bad(format!(
                "it unpacks to more than {} bytes ({})",
                limits.max_bytes, limits.why
            )));
        }
        let target = dest.join(&rel);
        tree.parents_ok(&rel).map_err(|p| {
            bad(format!(
                "entry {:?} goes through the link or file {:?}",
                raw, p
            ))
        })?;
        // Data filter: no setuid/setgid/sticky, no group/other write.
        let mode = entry.header().mode().unwrap_or(0o644) & 0o755;
        match et {
            tar::EntryType::Directory => {
                if matches!(tree.nodes.get(&rel), Some(Node::Link(_) | Node::File)) {
                    return Err(bad(format!("directory {:?} replaces a link or file", raw)));
                }
                crate::fault::io("mkdir", &target, || fs::create_dir_all(&target))
                    .map_err(|e| Error::io("cannot create", &target, e))?;
                let _ = crate::sys::set_path_mode(&target, mode | 0o700);
                tree.add_parents(&rel);
                tree.nodes.insert(rel, Node::Dir);
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(p) = target.parent() {
                    fs::create_dir_all(p).map_err(|e| Error::io("cannot create", p, e))?;
                }
                let mut out = crate::fault::io("create", &target, || {
                    crate::sys::open_no_follow(
                        crate::sys::create_mode(
                            OpenOptions::new().write(true).create_new(true),
                            0o600,
                        ),
                        &target,
                    )
                })
                .map_err(|e| Error::io("cannot create", &target, e))?;
                crate::fault::io("write", &target, || std::io::copy(&mut entry, &mut out))
                    .map_err(|e| Error::io("cannot write", &target, e))?;
                crate::sys::set_file_mode(&out, mode | 0o600)
                    .map_err(|e| Error::io("cannot chmod", &target, e))?;
                tree.add_parents(&rel);
                tree.nodes.insert(rel, Node::File);
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| bad(format!("bad link target: {e}")))?
                    .ok_or_else(|| bad(format!("symlink {:?} has no target", raw)))?
                    .into_owned();
                if tree.reserved.contains(&rel) || tree.nodes.contains_key(&rel) {
                    return Err(bad(format!(
                        "symlink {:?} would replace a directory that another link goes through",
                        raw
                    )));
                }
                let dir = rel.parent().unwrap_or(Path::new("")).to_path_buf();
                if tree.resolve(&dir, &link, 0).is_none() {
                    return Err(bad(format!(
                        "symlink {:?} -> {:?} points outside the target directory",
                        raw, link
                    )));
                }
                if let Some(p) = target.parent() {
                    fs::create_dir_all(p).map_err(|e| Error::io("cannot create", p, e))?;
                }
                crate::fault::io("symlink", &target, || crate::sys::symlink(&link, &target))
                    .map_err(|e| Error::io("cannot create link", &target, e))?;
                tree.add_parents(&rel);
                tree.nodes.insert(rel, Node::Link(link));
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
    drop(ar);
    if let Some(want) = &limits.sha256 {
        let mut rest = Hashing {
            f: rest,
            h: Rc::clone(&h),
        };
        std::io::copy(&mut rest, &mut std::io::sink())
            .map_err(|e| Error::io("cannot read", archive, e))?;
        let got = crate::fsutil::hex(&h.borrow().clone().finalize());
        if &got != want {
            return Err(Error::new(
                Code::Integrity,
                format!(
                    "archive {}: its bytes changed since they were verified (sha256 {got}, want {want}); nothing unpacked is used",
                    archive.display()
                ),
            ));
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
        let lim = Limits::for_file(&a, None, None);
        (extract(&a, Unpack::Tar, &out, &lim), d)
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
    #[cfg(unix)] // a link to a directory above it: Windows copies links
    fn links_within_the_tree_still_unpack() {
        let (r, d) = run(
            "inside",
            tar_with(&[
                ("lib/libx.so.1", tar::EntryType::Regular, b"so", None),
                (
                    "lib/libx.so",
                    tar::EntryType::Symlink,
                    b"",
                    Some("libx.so.1"),
                ),
                ("lib64", tar::EntryType::Symlink, b"", Some("lib")),
                (
                    "bin/x",
                    tar::EntryType::Symlink,
                    b"",
                    Some("../lib64/libx.so"),
                ),
                (
                    "share/doc/x",
                    tar::EntryType::Symlink,
                    b"",
                    Some("../../lib"),
                ),
                ("up", tar::EntryType::Symlink, b"", Some("share/..")),
            ]),
        );
        r.unwrap();
        assert_eq!(fs::read(d.join("out/bin/x")).unwrap(), b"so");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    #[cfg(unix)]
    fn bombs_stop_at_the_budget_and_changed_bytes_are_refused() {
        let d = std::env::temp_dir().join(format!("onramp-ar-bomb-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let big = vec![0u8; 3 << 20];
        let a = d.join("a.tar");
        fs::write(
            &a,
            tar_with(&[("zeros", tar::EntryType::Regular, &big, None)]),
        )
        .unwrap();
        let lim = Limits::for_file(&a, Some(1000), None);
        let e = extract(&a, Unpack::Tar, &d.join("o1"), &lim).unwrap_err();
        assert!(e.msg.contains("unpacks to more than"), "{}", e.msg);
        assert!(!d.join("o1/zeros").exists());
        let sha = crate::fsutil::sha256_file(&a).unwrap();
        let ok = Limits::for_file(&a, None, Some(&sha));
        extract(&a, Unpack::Tar, &d.join("o2"), &ok).unwrap();
        let wrong = Limits::for_file(&a, None, Some(&"0".repeat(64)));
        let e = extract(&a, Unpack::Tar, &d.join("o3"), &wrong).unwrap_err();
        assert!(
            e.msg.contains("changed since they were verified"),
            "{}",
            e.msg
        );
        // Modes lose setuid and group/other write.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o6777);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_path("s").unwrap();
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        fs::write(&a, b.into_inner().unwrap()).unwrap();
        extract(
            &a,
            Unpack::Tar,
            &d.join("o4"),
            &Limits::for_file(&a, None, None),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        let m = fs::metadata(d.join("o4/s")).unwrap().permissions().mode() & 0o7777;
        assert_eq!(m, 0o755);
        fs::remove_dir_all(&d).unwrap();
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
            // Each link alone stays inside; chained they reach the root's
            // parent and beyond (the finding's sub/up, sub/p1, ... chain).
            (
                "chain-up",
                tar_with(&[
                    ("sub/up", tar::EntryType::Symlink, b"", Some("..")),
                    ("sub/p1", tar::EntryType::Symlink, b"", Some("up/..")),
                ]),
            ),
            (
                "chain-order",
                tar_with(&[
                    ("sub/p1", tar::EntryType::Symlink, b"", Some("up/..")),
                    ("sub/up", tar::EntryType::Symlink, b"", Some("..")),
                ]),
            ),
            (
                "chain-deep",
                tar_with(&[
                    ("a/b/c/up", tar::EntryType::Symlink, b"", Some("..")),
                    ("a/b/c/p1", tar::EntryType::Symlink, b"", Some("up/up")),
                    ("a/b/c/p2", tar::EntryType::Symlink, b"", Some("p1/../..")),
                    (
                        "a/b/c/p3",
                        tar::EntryType::Symlink,
                        b"",
                        Some("p2/../../.."),
                    ),
                ]),
            ),
            (
                "dir-then-link",
                tar_with(&[
                    ("x", tar::EntryType::Symlink, b"", Some("d/e/../..")),
                    ("d", tar::EntryType::Symlink, b"", Some("..")),
                ]),
            ),
        ];
        for (name, bytes) in cases {
            let (r, d) = run(name, bytes);
            let e = r.expect_err(name);
            // Where links cannot be made (Windows without Developer Mode),
            // the link itself is refused first: closed all the same.
            assert!(
                e.code == Code::Integrity || e.msg.contains("Windows cannot have it"),
                "{name}: {}",
                e.msg
            );
            assert!(!d.join("evil").exists());
            fs::remove_dir_all(d).unwrap();
        }
    }
}
