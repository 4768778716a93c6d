//! Acting on a tree another user can write, without ever following a path
//! through it: every directory is opened relative to its parent's open
//! descriptor with `O_NOFOLLOW | O_DIRECTORY`, every entry is looked at with
//! `fstatat(AT_SYMLINK_NOFOLLOW)` and opened `O_NOFOLLOW`, and what was
//! opened is checked with `fstat` against what was looked at. A symbolic
//! link swapped in at any moment is then either seen as a link or refused,
//! never followed (the `openat2(RESOLVE_BENEATH)` guarantee, by hand).
//!
//! Used by root to collect a build's `$pkgdir` and to hand a prepared tree
//! to the build user; see `worker`.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// An open directory.
pub struct Dir(OwnedFd);

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

#[cfg(target_os = "linux")]
fn errno() -> *mut libc::c_int {
    // SAFETY: the calling thread's errno.
    unsafe { libc::__errno_location() }
}

#[cfg(not(target_os = "linux"))]
fn errno() -> *mut libc::c_int {
    // SAFETY: the calling thread's errno.
    unsafe { libc::__error() }
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

pub use super::super::{Kind, Stat};

impl Stat {
    fn from(st: &libc::stat) -> Stat {
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFREG => Kind::File,
            libc::S_IFLNK => Kind::Link,
            _ => Kind::Other,
        };
        // The field types differ by OS (macOS: a u16 mode, an i32 device).
        #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
        Stat {
            kind,
            mode: u32::from(st.st_mode & 0o7777),
            uid: st.st_uid,
            dev: st.st_dev as u64,
            ino: st.st_ino,
            nlink: st.st_nlink.into(),
        }
    }
}

fn fstat_fd(fd: RawFd) -> io::Result<Stat> {
    // SAFETY: fstat fills the struct we pass; zeroed is a valid start.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(Stat::from(&st))
}

/// The stat of an open file.
pub fn fstat(f: &File) -> io::Result<Stat> {
    fstat_fd(f.as_raw_fd())
}

impl Dir {
    /// Open `path` as a directory; its last component must not be a link.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let c = cstr(path.as_os_str())?;
        // SAFETY: open with a valid C string; the descriptor is ours.
        let fd = check(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: fd was just opened and is owned by nobody else.
        Ok(Dir(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Open `path` as a directory, following links on the way (for a root
    /// the caller chose and `trust` checked; below it, `open_dir` never
    /// follows one).
    pub fn open_follow(path: &Path) -> io::Result<Dir> {
        let c = cstr(path.as_os_str())?;
        // SAFETY: open with a valid C string; the descriptor is ours.
        let fd = check(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: fd was just opened and is owned by nobody else.
        Ok(Dir(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Rename `from` to `to`, both in this directory (an entry at `to` is
    /// replaced; a link there is replaced, never followed).
    pub fn rename_at(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        let (f, t) = (cstr(from)?, cstr(to)?);
        let fd = self.0.as_raw_fd();
        // SAFETY: renameat within our own descriptor, valid C strings.
        check(unsafe { libc::renameat(fd, f.as_ptr(), fd, t.as_ptr()) })?;
        Ok(())
    }

    /// Remove the entry `name` (an empty directory with `dir`); a link is
    /// removed itself.
    pub fn unlink_at(&self, name: &OsStr, dir: bool) -> io::Result<()> {
        let c = cstr(name)?;
        let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
        // SAFETY: unlinkat relative to our descriptor.
        check(unsafe { libc::unlinkat(self.0.as_raw_fd(), c.as_ptr(), flags) })?;
        Ok(())
    }

    /// fsync this directory (a rename in it is then durable).
    pub fn sync(&self) -> io::Result<()> {
        // SAFETY: fsync on our own descriptor.
        check(unsafe { libc::fsync(self.0.as_raw_fd()) })?;
        Ok(())
    }

    /// Remove everything below this directory, by descriptor: a link is
    /// removed, never followed, and a directory swapped meanwhile is left.
    pub fn clear(&self) -> io::Result<()> {
        for name in self.entries()? {
            let st = self.stat_at(&name)?;
            if st.kind == Kind::Dir {
                let sub = self.open_dir(&name)?;
                if !sub.stat()?.same(&st) {
                    return Err(io::Error::other("a directory changed while being removed"));
                }
                sub.clear()?;
            }
            self.unlink_at(&name, st.kind == Kind::Dir)?;
        }
        Ok(())
    }

    /// `openat` relative to this directory, the descriptor owned.
    fn open_at(&self, name: &OsStr, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
        let c = cstr(name)?;
        // SAFETY: openat relative to our descriptor, with a valid C string.
        let fd = check(unsafe {
            libc::openat(
                self.0.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        })?;
        // SAFETY: fd was just opened and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Open the directory `name` inside this one, never through a link.
    pub fn open_dir(&self, name: &OsStr) -> io::Result<Dir> {
        self.open_at(name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .map(Dir)
    }

    /// Open the regular file `name` to read, never through a link (and
    /// without blocking on a FIFO someone put there).
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        self.open_at(name, libc::O_RDONLY | libc::O_NONBLOCK, 0)
            .map(File::from)
    }

    /// Create the file `name` here (it must not exist) to write.
    pub fn create_file(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        self.open_at(name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, mode)
            .map(File::from)
    }

    /// Create the directory `name` here.
    pub fn mkdir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        let c = cstr(name)?;
        // SAFETY: mkdirat relative to our descriptor.
        check(unsafe { libc::mkdirat(self.0.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) })?;
        Ok(())
    }

    /// Create a symbolic link `name` here pointing to `target`.
    pub fn symlink(&self, target: &Path, name: &OsStr) -> io::Result<()> {
        let t = cstr(target.as_os_str())?;
        let c = cstr(name)?;
        // SAFETY: symlinkat relative to our descriptor.
        check(unsafe { libc::symlinkat(t.as_ptr(), self.0.as_raw_fd(), c.as_ptr()) })?;
        Ok(())
    }

    /// The stat of the entry `name`, a link itself rather than its target.
    pub fn stat_at(&self, name: &OsStr) -> io::Result<Stat> {
        let c = cstr(name)?;
        // SAFETY: fstatat fills the struct we pass.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        check(unsafe {
            libc::fstatat(
                self.0.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        Ok(Stat::from(&st))
    }

    /// The stat of this directory.
    pub fn stat(&self) -> io::Result<Stat> {
        fstat_fd(self.0.as_raw_fd())
    }

    /// The target of the link `name`.
    pub fn readlink(&self, name: &OsStr) -> io::Result<PathBuf> {
        let c = cstr(name)?;
        let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
        // SAFETY: readlinkat writes at most buf.len() bytes into buf.
        let n = unsafe {
            libc::readlinkat(
                self.0.as_raw_fd(),
                c.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        Ok(PathBuf::from(OsString::from_vec(buf)))
    }

    /// Change the owner of the entry `name` (a link itself, not its target).
    pub fn chown_at(&self, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
        let c = cstr(name)?;
        // SAFETY: fchownat relative to our descriptor, not following links.
        check(unsafe {
            libc::fchownat(
                self.0.as_raw_fd(),
                c.as_ptr(),
                uid,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        Ok(())
    }

    /// Change this directory's owner and mode.
    pub fn chown_chmod(&self, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
        // SAFETY: fchown and fchmod on our own descriptor.
        check(unsafe { libc::fchown(self.0.as_raw_fd(), uid, gid) })?;
        check(unsafe { libc::fchmod(self.0.as_raw_fd(), mode as libc::mode_t) })?;
        Ok(())
    }

    /// Change this directory's mode.
    pub fn chmod(&self, mode: u32) -> io::Result<()> {
        // SAFETY: fchmod on our own descriptor.
        check(unsafe { libc::fchmod(self.0.as_raw_fd(), mode as libc::mode_t) })?;
        Ok(())
    }

    /// The names in this directory (not `.` and `..`), sorted.
    pub fn entries(&self) -> io::Result<Vec<OsString>> {
        // SAFETY: dup gives fdopendir a descriptor of its own to close.
        let fd = check(unsafe { libc::fcntl(self.0.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })?;
        // SAFETY: fd is a fresh directory descriptor; closedir closes it.
        let d = unsafe { libc::fdopendir(fd) };
        if d.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so fd is still ours to close.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        // SAFETY: rewind, since the dup shares its offset with our descriptor.
        unsafe { libc::rewinddir(d) };
        let mut out = Vec::new();
        loop {
            // SAFETY: readdir on the stream we opened; errno tells EOF from error.
            unsafe { *errno() = 0 };
            let ent = unsafe { libc::readdir(d) };
            if ent.is_null() {
                let e = io::Error::last_os_error();
                // SAFETY: closing the stream we opened.
                unsafe { libc::closedir(d) };
                if e.raw_os_error().unwrap_or(0) != 0 {
                    return Err(e);
                }
                break;
            }
            // SAFETY: d_name is a NUL-terminated name inside the entry.
            let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
            let b = name.to_bytes();
            if b != b"." && b != b".." {
                out.push(OsStr::from_bytes(b).to_os_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Give this directory and everything below it to `uid`/`gid`, walking
    /// by descriptor. Only regular files, directories and links are
    /// expected; anything else is an error.
    pub fn chown_tree(&self, uid: u32, gid: u32) -> io::Result<()> {
        // SAFETY: fchown on our own descriptor.
        check(unsafe { libc::fchown(self.0.as_raw_fd(), uid, gid) })?;
        for name in self.entries()? {
            let st = self.stat_at(&name)?;
            match st.kind {
                Kind::Dir => {
                    let sub = self.open_dir(&name)?;
                    if !sub.stat()?.same(&st) {
                        return Err(io::Error::other("a directory changed while being walked"));
                    }
                    sub.chown_tree(uid, gid)?;
                }
                Kind::File | Kind::Link => self.chown_at(&name, uid, gid)?,
                Kind::Other => {
                    return Err(io::Error::other(format!(
                        "{} is not a file, directory or link",
                        Path::new(&name).display()
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_are_seen_never_followed() {
        let d = std::env::temp_dir().join(format!("onramp-dirfd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("t/sub")).unwrap();
        std::fs::write(d.join("t/f"), b"x").unwrap();
        std::fs::write(d.join("outside"), b"secret").unwrap();
        symlink(d.join("outside"), d.join("t/lf")).unwrap();
        symlink(d.join("t/sub"), d.join("t/ld")).unwrap();
        let t = Dir::open(&d.join("t")).unwrap();
        assert_eq!(
            t.entries().unwrap(),
            ["f", "ld", "lf", "sub"].map(OsString::from).to_vec()
        );
        assert_eq!(t.stat_at(OsStr::new("lf")).unwrap().kind, Kind::Link);
        assert_eq!(
            t.open_file(OsStr::new("lf")).unwrap_err().raw_os_error(),
            Some(libc::ELOOP)
        );
        assert!(t.open_dir(OsStr::new("ld")).is_err());
        assert_eq!(t.readlink(OsStr::new("lf")).unwrap(), d.join("outside"));
        assert!(Dir::open(&d.join("t/ld")).is_err());
        t.create_file(OsStr::new("new"), 0o600).unwrap();
        assert!(t.create_file(OsStr::new("lf"), 0o600).is_err());
        assert_eq!(std::fs::read(d.join("outside")).unwrap(), b"secret");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
