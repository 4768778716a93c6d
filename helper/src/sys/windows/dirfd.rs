//! Acting on a tree another account can write, on Windows: every directory
//! is opened, from the one the caller trusts down, with
//! FILE_FLAG_OPEN_REPARSE_POINT (a symbolic link or junction is opened
//! itself and refused, never followed) and without FILE_SHARE_DELETE, so
//! while a `Dir` is held nobody can rename, delete or replace it, and a
//! directory that holds an open one cannot be renamed either. Entries
//! below are then named by path under a directory that cannot move. The
//! same API as the Unix `dirfd`; what needs uids (chown) is Unsupported.

use super::identity_of_handle;
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};

const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
/// FILE_SHARE_READ | FILE_SHARE_WRITE: not FILE_SHARE_DELETE.
const SHARE_NO_DELETE: u32 = 0x1 | 0x2;
const ERROR_STOPPED_ON_SYMLINK: i32 = 681;
const ERROR_DIRECTORY: i32 = 267;

/// An open directory and the path it was opened by.
pub struct Dir {
    path: PathBuf,
    handle: File,
}

pub use super::super::{Kind, Stat};

fn stat_handle(f: &File) -> io::Result<Stat> {
    let (id, attrs, links) = identity_of_handle(f.as_raw_handle())?;
    let kind = if attrs & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        Kind::Link
    } else if attrs & FILE_ATTRIBUTE_DIRECTORY != 0 {
        Kind::Dir
    } else {
        Kind::File
    };
    Ok(Stat {
        kind,
        mode: if kind == Kind::Dir { 0o755 } else { 0o644 },
        uid: 0,
        dev: id.dev,
        ino: id.ino,
        nlink: u64::from(links),
    })
}

/// The stat of an open file.
pub fn fstat(f: &File) -> io::Result<Stat> {
    stat_handle(f)
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} needs uids, which Windows does not have"),
    )
}

/// Open `p` itself (a reparse point is not followed), for reading its
/// attributes and, with `dir`, as a directory that cannot be moved.
fn open_itself(p: &Path, dir: bool, follow: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true)
        .share_mode(if dir { SHARE_NO_DELETE } else { 7 });
    let mut flags = FILE_FLAG_BACKUP_SEMANTICS;
    if !follow {
        flags |= FILE_FLAG_OPEN_REPARSE_POINT;
    }
    o.custom_flags(flags).open(p)
}

impl Dir {
    fn from_path(p: &Path, follow: bool) -> io::Result<Dir> {
        let handle = open_itself(p, true, follow)?;
        match stat_handle(&handle)?.kind {
            Kind::Dir => Ok(Dir {
                path: p.to_path_buf(),
                handle,
            }),
            Kind::Link => Err(io::Error::from_raw_os_error(ERROR_STOPPED_ON_SYMLINK)),
            _ => Err(io::Error::from_raw_os_error(ERROR_DIRECTORY)),
        }
    }

    /// Open `path` as a directory; its last component must not be a link.
    pub fn open(path: &Path) -> io::Result<Dir> {
        Dir::from_path(path, false)
    }

    /// Open `path` as a directory, following links on the way (for a root
    /// the caller chose and `trust` checked; below it, `open_dir` never
    /// follows one).
    pub fn open_follow(path: &Path) -> io::Result<Dir> {
        Dir::from_path(path, true)
    }

    fn at(&self, name: &OsStr) -> io::Result<PathBuf> {
        let n = Path::new(name);
        let mut c = n.components();
        match (c.next(), c.next()) {
            (Some(std::path::Component::Normal(_)), None) => Ok(self.path.join(n)),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a single name", n.display()),
            )),
        }
    }

    /// Rename `from` to `to`, both in this directory (an entry at `to` is
    /// replaced; a link there is replaced, never followed).
    pub fn rename_at(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        super::replace_file(&self.at(from)?, &self.at(to)?)
    }

    /// Remove the entry `name` (an empty directory with `dir`); a link is
    /// removed itself.
    pub fn unlink_at(&self, name: &OsStr, dir: bool) -> io::Result<()> {
        let p = self.at(name)?;
        let link_to_dir = std::fs::symlink_metadata(&p)
            .is_ok_and(|m| m.is_symlink() && std::fs::metadata(&p).is_ok_and(|t| t.is_dir()));
        if dir || link_to_dir {
            std::fs::remove_dir(&p)
        } else {
            std::fs::remove_file(&p)
        }
    }

    /// NTFS journals directory entries: nothing to flush.
    pub fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    /// Remove everything below this directory: a link is removed, never
    /// followed, and a directory swapped meanwhile is left.
    pub fn clear(&self) -> io::Result<()> {
        for name in self.entries()? {
            let st = self.stat_at(&name)?;
            if st.kind == Kind::Dir {
                let sub = self.open_dir(&name)?;
                if !sub.stat()?.same(&st) {
                    return Err(io::Error::other("a directory changed while being removed"));
                }
                sub.clear()?;
                drop(sub);
            }
            self.unlink_at(&name, st.kind == Kind::Dir)?;
        }
        Ok(())
    }

    /// Open the directory `name` inside this one, never through a link.
    pub fn open_dir(&self, name: &OsStr) -> io::Result<Dir> {
        Dir::open(&self.at(name)?)
    }

    /// Open the regular file `name` to read, never through a link.
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .open(self.at(name)?)?;
        match stat_handle(&f)?.kind {
            Kind::Link => Err(io::Error::from_raw_os_error(ERROR_STOPPED_ON_SYMLINK)),
            _ => Ok(f),
        }
    }

    /// Create the file `name` here (it must not exist) to write.
    pub fn create_file(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .open(self.at(name)?)?;
        super::set_file_mode(&f, mode)?;
        Ok(f)
    }

    /// Create the directory `name` here (it inherits this one's ACL).
    pub fn mkdir(&self, name: &OsStr, _mode: u32) -> io::Result<()> {
        std::fs::create_dir(self.at(name)?)
    }

    /// Create a symbolic link `name` here pointing to `target`.
    pub fn symlink(&self, target: &Path, name: &OsStr) -> io::Result<()> {
        super::symlink(target, &self.at(name)?)
    }

    /// The stat of the entry `name`, a link itself rather than its target.
    pub fn stat_at(&self, name: &OsStr) -> io::Result<Stat> {
        stat_handle(&open_itself(&self.at(name)?, false, false)?)
    }

    /// The stat of this directory.
    pub fn stat(&self) -> io::Result<Stat> {
        stat_handle(&self.handle)
    }

    /// The target of the link `name`.
    pub fn readlink(&self, name: &OsStr) -> io::Result<PathBuf> {
        std::fs::read_link(self.at(name)?)
    }

    /// Owners are uids: not on Windows (build users are Unix only).
    pub fn chown_at(&self, _name: &OsStr, _uid: u32, _gid: u32) -> io::Result<()> {
        Err(unsupported("chown"))
    }

    /// Owners are uids: not on Windows.
    pub fn chown_chmod(&self, _uid: u32, _gid: u32, _mode: u32) -> io::Result<()> {
        Err(unsupported("chown"))
    }

    /// A directory's ACL is inherited; no bits to set.
    pub fn chmod(&self, _mode: u32) -> io::Result<()> {
        Ok(())
    }

    /// The names in this directory, sorted.
    pub fn entries(&self) -> io::Result<Vec<OsString>> {
        let mut out: Vec<OsString> = std::fs::read_dir(&self.path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        out.sort();
        Ok(out)
    }

    /// Owners are uids: not on Windows.
    pub fn chown_tree(&self, _uid: u32, _gid: u32) -> io::Result<()> {
        Err(unsupported("chown"))
    }
}
