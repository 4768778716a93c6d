//! Files whose names a caller gives (`--events`, `--summary-json`,
//! `--progress-url-file`): opened without following a link (`O_NOFOLLOW`)
//! and without blocking on a FIFO (`O_NONBLOCK`), regular files only, a new
//! one created exclusively; as root, only in a directory no other uid can
//! write (every directory up to `/` checked, see `trust`), and an existing
//! file only when root owns it and it has no other name (a hard link). A
//! file another user planted at that name is then refused, never appended
//! to, replaced through, or waited on.

use crate::error::{Code, Error, Result};
use crate::sys::dirfd::Kind;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

const FIX: &str = "as root, name a file in a directory only root can write (such as the state directory or /root)";

/// The absolute path, its directory checked as root.
fn checked(path: &Path, what: &str) -> Result<PathBuf> {
    let abs = crate::fsutil::absolute(path)?;
    if crate::fsutil::is_root() {
        let dir = abs.parent().unwrap_or(Path::new("/"));
        crate::trust::check(dir, FIX)
            .map_err(|e| Error::new(e.code, format!("{what} {}: {}", abs.display(), e.msg)))?;
    }
    Ok(abs)
}

/// Refuse, before any work, a path `replace` would refuse later.
pub fn precheck(path: &Path, what: &str) -> Result<()> {
    checked(path, what).map(|_| ())
}

/// An open file is what it should be: a regular file, and as root root's
/// own with one name.
fn judge(f: &File, path: &Path, what: &str) -> Result<()> {
    let st = crate::sys::dirfd::fstat(f).map_err(|e| Error::io("cannot stat", path, e))?;
    let why = if st.kind != Kind::File {
        Some("it is not a regular file (a FIFO, a device or a directory?)".to_string())
    } else if crate::fsutil::is_root() && st.uid != 0 {
        Some(format!("it belongs to uid {}, not root", st.uid))
    } else if crate::fsutil::is_root() && st.nlink > 1 {
        Some(format!("it has {} names (a hard link)", st.nlink))
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(w) => Err(Error::new(
            Code::Unsafe,
            format!(
                "refusing {what} {}: {w}; name a new file, or remove that one",
                path.display()
            ),
        )),
    }
}

/// Back to blocking I/O once the file is known to be a regular one.
fn blocking(f: &File) {
    crate::sys::set_blocking(f);
}

fn refuse_link(e: std::io::Error, path: &Path, what: &str) -> Error {
    if crate::sys::is_link_refused(&e) {
        return Error::new(
            Code::Unsafe,
            format!(
                "refusing {what} {}: it is a symbolic link, which onramp never follows there; name the file itself",
                path.display()
            ),
        );
    }
    if crate::sys::is_special_refused(&e) {
        return Error::new(
            Code::Unsafe,
            format!(
                "refusing {what} {}: it is a FIFO or socket, not a regular file",
                path.display()
            ),
        );
    }
    Error::io(&format!("cannot open {what}"), path, e)
}

/// Open `path` to read and append (the events file): created if missing
/// (mode 0644), else it must pass `judge`. `what` names it ("--events").
pub fn open_append(path: &Path, what: &str) -> Result<File> {
    let abs = checked(path, what)?;
    let open = |create: bool| {
        let mut o = OpenOptions::new();
        o.read(true).append(true);
        if create {
            crate::sys::create_mode(o.create_new(true), 0o644);
        }
        crate::sys::open_no_follow_nonblock(&mut o, &abs)
    };
    let f = match crate::fault::io("create", &abs, || open(true)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            open(false).map_err(|e| refuse_link(e, &abs, what))?
        }
        Err(e) => return Err(refuse_link(e, &abs, what)),
    };
    judge(&f, &abs, what)?;
    blocking(&f);
    Ok(f)
}

/// Open `path` to read; None when there is nothing there. With `own`, it
/// must belong to this process's uid (a file that decides whom onramp
/// talks to). Never through a link, never blocking on a FIFO.
pub fn open_read(path: &Path, what: &str, own: bool) -> Result<Option<File>> {
    let f = match crate::sys::open_no_follow_nonblock(OpenOptions::new().read(true), path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(refuse_link(e, path, what)),
    };
    judge(&f, path, what)?;
    if own {
        let me = crate::sys::my_uid();
        let st = crate::sys::dirfd::fstat(&f).map_err(|e| Error::io("cannot stat", path, e))?;
        if st.uid != me {
            return Err(Error::new(
                Code::Unsafe,
                format!(
                    "refusing {what} {}: it belongs to uid {}, not to you (uid {me})",
                    path.display(),
                    st.uid
                ),
            ));
        }
    }
    blocking(&f);
    Ok(Some(f))
}

/// Replace `path` with `data` atomically (a fresh temp name beside it, then
/// a rename over whatever is there, a link included: never written
/// through), as root only in a directory no other uid can write.
pub fn replace(path: &Path, what: &str, data: &[u8], mode: u32) -> Result<()> {
    let abs = checked(path, what)?;
    crate::fsutil::write_atomic(&abs, data, mode)
}

// Unix only: links and FIFOs.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn links_fifos_and_other_files_are_refused() {
        let d = std::env::temp_dir().join(format!("onramp-named-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("victim"), b"keep\n").unwrap();
        std::os::unix::fs::symlink(d.join("victim"), d.join("link")).unwrap();
        let e = open_append(&d.join("link"), "--events").unwrap_err();
        assert_eq!(e.code, Code::Unsafe, "{}", e.msg);
        assert!(e.msg.contains("symbolic link"), "{}", e.msg);
        assert_eq!(std::fs::read(d.join("victim")).unwrap(), b"keep\n");
        let fifo = std::ffi::CString::new(d.join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let t = std::time::Instant::now();
        assert!(open_append(&d.join("fifo"), "--events").is_err());
        assert!(open_read(&d.join("fifo"), "url file", true).is_err());
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        let mut f = open_append(&d.join("new"), "--events").unwrap();
        f.write_all(b"x\n").unwrap();
        drop(f);
        open_append(&d.join("new"), "--events").unwrap();
        assert!(
            open_read(&d.join("missing"), "url file", true)
                .unwrap()
                .is_none()
        );
        replace(&d.join("link"), "--summary-json", b"{}", 0o644).unwrap();
        assert_eq!(std::fs::read(d.join("victim")).unwrap(), b"keep\n");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
