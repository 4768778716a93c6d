//! Writing, reading and removing inside the prefix without ever following a
//! link: the directory the install chose (`root`, which `trust` checked) is
//! opened once, and every directory below it by descriptor with
//! `O_NOFOLLOW` (`dirfd`), the `openat2(RESOLVE_NO_SYMLINKS)` rule by hand.
//! A link inside the prefix (from a package, an archive, or an older
//! onramp) is then an entry like any other: replaced or removed itself,
//! never written, read or deleted through. Paths are relative to `root`
//! and plain (`check_rel`, which also judges the manifest's paths into the
//! prefix). Putting a tree in place and removing what a step recorded go
//! through here too (`mkdirs_above`, `remove_files`).

use crate::error::{Code, Error, Result, err};
use crate::fsutil::TMP_MARK;
use crate::sys::dirfd::{Dir, Kind};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Component, Path};

/// A refused path, as the manifest's checks word it.
fn bad<T>(path: &str, msg: impl std::fmt::Display) -> Result<T> {
    err(Code::Manifest, format!("at {path}: {msg}"))
}

/// Longest path, and path component, onramp accepts (Linux's PATH_MAX and
/// NAME_MAX), so an over-long name fails here and not halfway through.
const PATH_MAX: usize = 4096;
const NAME_MAX: usize = 255;

/// A path as text: no NUL, no control or bidirectional characters (a name
/// with U+202E reads differently than it is), within Linux's limits.
pub fn check_path_text(at: &str, p: &str) -> Result<()> {
    if p.contains('\0') || crate::out::has_control(p) {
        return bad(
            at,
            format!(
                "{:?} holds a control or invisible formatting character; use plain text",
                p
            ),
        );
    }
    if p.len() > PATH_MAX || p.split('/').any(|c| c.len() > NAME_MAX) {
        return bad(
            at,
            format!("path is longer than {PATH_MAX} bytes or has a component over {NAME_MAX}"),
        );
    }
    Ok(())
}

/// A path inside the prefix: relative, no `..`, not empty, plain text.
pub fn check_rel(path: &str, what: &str) -> Result<()> {
    check_path_text(path, what)?;
    let p = Path::new(what);
    let ok = !what.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && p.components().any(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        bad(
            path,
            format!("{what:?} must be a relative path inside the prefix (no '..', not absolute)"),
        )
    }
}

/// The plain components of `rel` (an error names anything else).
fn parts(rel: &str) -> Result<Vec<&OsStr>> {
    check_rel("a path in the prefix", rel)?;
    Ok(Path::new(rel)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect())
}

/// Why an entry on the way cannot be entered: missing, or not a real
/// directory (a link among them).
enum Way {
    Open(Dir),
    Blocked,
}

/// Open the directory `dirs` below `root`, never through a link; with
/// `create`, missing ones are made (mode 0755). `Blocked` when one is
/// missing (without `create`) or is not a directory.
fn open_dirs(root: &Path, dirs: &[&OsStr], create: bool) -> Result<Way> {
    let mut d = match Dir::open_follow(root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => {
            return Ok(Way::Blocked);
        }
        Err(e) => return Err(Error::io("cannot open", root, e)),
    };
    let mut at = root.to_path_buf();
    for name in dirs {
        at.push(name);
        let next = match d.open_dir(name) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                match crate::fault::io("mkdir", &at, || d.mkdir(name, 0o755)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(Error::io("cannot create directory", &at, e)),
                }
                match d.open_dir(name) {
                    Ok(n) => n,
                    Err(e) => return Err(blocked(&at, e)),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Way::Blocked),
            Err(e)
                if crate::sys::is_link_refused(&e)
                    || e.kind() == std::io::ErrorKind::NotADirectory =>
            {
                if create {
                    return Err(blocked(&at, e));
                }
                return Ok(Way::Blocked);
            }
            Err(e) => return Err(Error::io("cannot open", &at, e)),
        };
        d = next;
    }
    Ok(Way::Open(d))
}

fn blocked(at: &Path, e: std::io::Error) -> Error {
    Error::new(
        crate::error::Code::Unsafe,
        format!(
            "{} is not a directory (a symbolic link?); onramp writes inside the prefix only through real directories ({e}); remove it and run again",
            at.display()
        ),
    )
}

/// Make the directory `rel` below `root` and the ones above it.
pub fn mkdirs(root: &Path, rel: &str) -> Result<()> {
    open_dirs(root, &parts(rel)?, true).map(|_| ())
}

/// The bytes of the regular file `rel` below `root`, or None when there is
/// none (missing, a link, or not a regular file).
pub fn read(root: &Path, rel: &str) -> Result<Option<Vec<u8>>> {
    let p = parts(rel)?;
    let Some((name, dirs)) = p.split_last() else {
        return Ok(None);
    };
    let Way::Open(d) = open_dirs(root, dirs, false)? else {
        return Ok(None);
    };
    match d.stat_at(name) {
        Ok(st) if st.kind == Kind::File => {}
        _ => return Ok(None),
    }
    let at = root.join(rel);
    let mut f = d
        .open_file(name)
        .map_err(|e| Error::io("cannot open", &at, e))?;
    if crate::sys::dirfd::fstat(&f)
        .map_err(|e| Error::io("cannot stat", &at, e))?
        .kind
        != Kind::File
    {
        return Ok(None);
    }
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)
        .map_err(|e| Error::io("cannot read", &at, e))?;
    Ok(Some(buf))
}

/// The permission bits of the regular file `rel`, None when it is not one.
pub fn file_mode(root: &Path, rel: &str) -> Result<Option<u32>> {
    let p = parts(rel)?;
    let Some((name, dirs)) = p.split_last() else {
        return Ok(None);
    };
    let Way::Open(d) = open_dirs(root, dirs, false)? else {
        return Ok(None);
    };
    Ok(d.stat_at(name)
        .ok()
        .filter(|s| s.kind == Kind::File)
        .map(|s| s.mode & 0o7777))
}

/// Whether anything (a link included) is at `rel`, reached without
/// following a link.
pub fn exists(root: &Path, rel: &str) -> Result<bool> {
    let p = parts(rel)?;
    let Some((name, dirs)) = p.split_last() else {
        return Ok(false);
    };
    Ok(match open_dirs(root, dirs, false)? {
        Way::Open(d) => d.stat_at(name).is_ok(),
        Way::Blocked => false,
    })
}

/// Write `data` to `rel` below `root` atomically (a fresh temp name in the
/// same directory, fsync, rename over whatever is at `rel`, a link
/// included, fsync of the directory), with permission bits `mode`.
/// Directories on the way are made; temp files a killed run left in that
/// directory are removed first.
pub fn write_atomic(root: &Path, rel: &str, data: &[u8], mode: u32) -> Result<()> {
    let p = parts(rel)?;
    let Some((name, dirs)) = p.split_last() else {
        return Err(Error::new(
            crate::error::Code::Internal,
            "write_atomic: an empty path",
        ));
    };
    let Way::Open(d) = open_dirs(root, dirs, true)? else {
        return Err(blocked(&root.join(rel), std::io::Error::other("blocked")));
    };
    for e in d.entries().unwrap_or_default() {
        if e.as_encoded_bytes().starts_with(TMP_MARK.as_bytes())
            && d.stat_at(&e).is_ok_and(|s| s.kind != Kind::Dir)
        {
            let _ = crate::fault::io("unlink", &root.join(rel), || d.unlink_at(&e, false));
        }
    }
    let at = root.join(rel);
    let tmp: OsString = crate::fsutil::temp_beside(Path::new(name))
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_default();
    let res = (|| {
        let mut f = crate::fault::io("create", &at, || d.create_file(&tmp, 0o600))
            .map_err(|e| Error::io("cannot create a temp file for", &at, e))?;
        crate::fault::io("write", &at, || f.write_all(data))
            .map_err(|e| Error::io("cannot write", &at, e))?;
        crate::sys::set_file_mode(&f, mode).map_err(|e| Error::io("cannot chmod", &at, e))?;
        crate::fault::io("fsync", &at, || f.sync_all())
            .map_err(|e| Error::io("cannot sync", &at, e))?;
        crate::fault::io("rename", &at, || d.rename_at(&tmp, name))
            .map_err(|e| Error::io("cannot rename into place", &at, e))?;
        crate::fault::io("fsync-dir", &at, || d.sync())
            .map_err(|e| Error::io("cannot sync directory of", &at, e))
    })();
    if res.is_err() {
        let _ = d.unlink_at(&tmp, false);
    }
    res
}

/// Remove `rel` below `root` (a whole tree when it is a directory; a link
/// itself), then the directories that leaves empty, up to `root`. Nothing
/// is removed through a link: when a directory on the way is a link (or
/// missing), there is nothing of onramp's there.
pub fn remove(root: &Path, rel: &str) -> Result<()> {
    let p = parts(rel)?;
    let Some((name, dirs)) = p.split_last() else {
        return Ok(());
    };
    if let Way::Open(d) = open_dirs(root, dirs, false)? {
        let at = root.join(rel);
        if let Ok(st) = d.stat_at(name) {
            if st.kind == Kind::Dir {
                let sub = d
                    .open_dir(name)
                    .map_err(|e| Error::io("cannot open", &at, e))?;
                crate::fault::io("unlink", &at, || sub.clear())
                    .map_err(|e| Error::io("cannot remove", &at, e))?;
            }
            match crate::fault::io("unlink", &at, || d.unlink_at(name, st.kind == Kind::Dir)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("cannot remove", &at, e)),
            }
        }
    }
    // The directories it leaves empty (or a killed run left), innermost
    // first; missing ones are passed over.
    for n in (1..=dirs.len()).rev() {
        if rmdir_parts(root, &dirs[..n])? == Some(false) {
            break;
        }
    }
    Ok(())
}

/// Remove the directory `rel` below `root` when it is empty (never through
/// a link). True when it went.
pub fn rmdir_if_empty(root: &Path, rel: &str) -> Result<bool> {
    Ok(rmdir_parts(root, &parts(rel)?)? == Some(true))
}

/// Remove an empty directory: Some(true) when it went, Some(false) when it
/// stays (not empty, not a directory), None when nothing is there.
fn rmdir_parts(root: &Path, p: &[&OsStr]) -> Result<Option<bool>> {
    let Some((name, dirs)) = p.split_last() else {
        return Ok(Some(false));
    };
    let Way::Open(d) = open_dirs(root, dirs, false)? else {
        return Ok(None);
    };
    let at: std::path::PathBuf = std::iter::once(root.as_os_str())
        .chain(p.iter().copied())
        .collect();
    match d.stat_at(name) {
        Ok(st) if st.kind == Kind::Dir => {}
        Ok(_) => return Ok(Some(false)),
        Err(_) => return Ok(None),
    }
    match crate::fault::io("unlink", &at, || d.unlink_at(name, true)) {
        Ok(()) => Ok(Some(true)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if not_removable(&e) => Ok(Some(false)),
        Err(e) => Err(Error::io("cannot remove directory", &at, e)),
    }
}

/// Make the directories above `dir` (relative to the prefix) by descriptor:
/// a link among them is refused, so nothing is placed through one.
pub fn mkdirs_above(prefix: &Path, dir: &str) -> Result<()> {
    match std::path::Path::new(dir).parent() {
        Some(p) if !p.as_os_str().is_empty() => mkdirs(prefix, &p.to_string_lossy()),
        _ => Ok(()),
    }
}

/// Remove the files (or trees) a step recorded that `keep` does not list,
/// relative to the prefix, and the directories that leaves empty, up to the
/// prefix; by descriptor, never through a link (see the module doc).
pub fn remove_files(prefix: &Path, files: &[String], keep: &[String]) -> Result<()> {
    for rel in files.iter().filter(|f| !keep.contains(f)) {
        check_rel("a recorded file", rel)?;
        remove(prefix, rel)?;
    }
    Ok(())
}

/// A directory that is not empty (or not a directory) is left, not an
/// error.
pub fn not_removable(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{AlreadyExists, DirectoryNotEmpty, NotADirectory};
    matches!(e.kind(), DirectoryNotEmpty | AlreadyExists | NotADirectory)
}

// Unix only: they make links, chown and chmod.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn nothing_is_written_read_or_removed_through_a_link() {
        let d = std::env::temp_dir().join(format!("onramp-beneath-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let (root, out) = (d.join("prefix"), d.join("outside"));
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("settings.json"), b"theirs").unwrap();
        std::fs::write(out.join("f"), b"keep").unwrap();
        symlink(&out, root.join("conf")).unwrap();
        symlink(out.join("f"), root.join("real/lf")).unwrap();
        // Writing through a directory link is refused; nothing outside changes.
        let e = write_atomic(&root, "conf/settings.json", b"ours", 0o644).unwrap_err();
        assert!(e.msg.contains("not a directory"), "{}", e.msg);
        assert_eq!(std::fs::read(out.join("settings.json")).unwrap(), b"theirs");
        // A file link is replaced itself, its target untouched.
        write_atomic(&root, "real/lf", b"ours", 0o600).unwrap();
        assert_eq!(std::fs::read(out.join("f")).unwrap(), b"keep");
        assert_eq!(std::fs::read(root.join("real/lf")).unwrap(), b"ours");
        assert!(!root.join("real/lf").is_symlink());
        // Read and remove see nothing through the link.
        assert_eq!(read(&root, "conf/settings.json").unwrap(), None);
        remove(&root, "conf/settings.json").unwrap();
        remove(&root, "conf/f").unwrap();
        assert!(out.join("settings.json").exists() && out.join("f").exists());
        // The link itself goes; its target stays.
        remove(&root, "conf").unwrap();
        assert!(!root.join("conf").exists() && out.join("f").exists());
        // A tree with a link inside: the link goes, not what it points to.
        std::fs::create_dir_all(root.join("t/a")).unwrap();
        symlink(&out, root.join("t/a/out")).unwrap();
        remove(&root, "t").unwrap();
        assert!(!root.join("t").exists() && out.join("f").exists());
        // A missing root: nothing to read or remove.
        remove(&d.join("gone"), "a/b").unwrap();
        assert_eq!(read(&d.join("gone"), "a").unwrap(), None);
        // Empty parents go up to the root, not beyond.
        write_atomic(&root, "x/y/z.txt", b"1", 0o644).unwrap();
        assert_eq!(file_mode(&root, "x/y/z.txt").unwrap(), Some(0o644));
        remove(&root, "x/y/z.txt").unwrap();
        assert!(!root.join("x").exists() && root.is_dir());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
