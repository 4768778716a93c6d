//! Everything that differs between operating systems, and only that: each
//! item exists once per OS family under the same name, so the rest of the
//! helper reads the same on Linux, macOS and Windows. `unix/` holds what
//! Linux and macOS share (`unix/linux.rs` and `unix/macos.rs` what they do
//! not); `windows/` holds the Windows halves, which use std and a few
//! kernel32/advapi32 calls declared in `windows/ffi.rs`.
//! `tests/windows/check_ps1.py platform` checks that every public item of
//! one family has its twin in the other, and that no module outside this
//! folder names `libc`, `std::os::unix`, `std::os::windows` or a
//! `cfg(unix|windows|target_os)`.
//!
//! What cannot exist on an OS says so with `ErrorKind::Unsupported` and a
//! sentence (builds as a dedicated user, namespaces, fork): callers refuse
//! such work earlier, at plan time, where they can name the fix.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

/// What an open file looked like: identity (volume and file number), size
/// and times, as seals and stamps compare them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Last write, (seconds, nanoseconds) since the Unix epoch.
    pub mtime: (i64, i64),
    /// Last change of data or metadata (ctime; Windows' ChangeTime).
    pub ctime: (i64, i64),
}

/// What `fstatat`/`fstat` (or a handle's information) says of an entry,
/// the parts onramp looks at; each family's `dirfd` fills it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Link,
    Other,
}

impl Stat {
    /// The same object as `other` (device and inode; volume serial and
    /// file index on Windows)?
    pub fn same(&self, other: &Stat) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// Who listens on one TCP port of this machine (its network namespace):
/// how many listening sockets there are, and the processes holding one
/// that onramp can see (pid and name; another user's are hidden from a
/// non-root caller).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listening {
    pub sockets: usize,
    pub holders: Vec<(u32, String)>,
}

/// How a recipe's command is confined (see `run::Spec`).
#[derive(Clone, Default)]
pub struct Confine {
    /// Run as this uid/gid, no supplementary groups (needs root).
    pub user: Option<(u32, u32)>,
    /// No network (a namespace of its own).
    pub isolate_net: bool,
    /// Recipe code: no_new_privs.
    pub contain: bool,
    /// Read-only to the command (an unprivileged mount namespace).
    pub read_only: Vec<std::path::PathBuf>,
}
