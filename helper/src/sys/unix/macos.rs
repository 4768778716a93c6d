//! What macOS does instead of Linux: no /proc (process liveness by signal
//! 0), F_PREALLOCATE, no reflink ioctl, no namespaces, no parent-death
//! signal and no subreaper. A recipe still runs as the dedicated build
//! user (as root) with its process group killed after it; it keeps the
//! network and the file system view (README, macOS, says what that gives
//! up).

use super::super::Confine;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Whether `pid` is alive (Some(0)); no start time without /proc.
pub fn process_start(pid: u32) -> Option<u64> {
    // SAFETY: signal 0 only checks for existence.
    let alive = unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
        || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    alive.then_some(0)
}

/// No /proc: the parent is not read (a service's port is not traced to it).
pub fn parent_pid(_pid: u32) -> Option<u32> {
    None
}

/// No /proc/net: who holds a port is not known here (the caller falls
/// back to whether the port answers).
pub fn listening_on(_port: u16) -> io::Result<super::super::Listening> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "who holds a port is read from /proc, which macOS does not have",
    ))
}

/// No close_range: the caller walks /dev/fd.
pub(super) fn cloexec_range() -> bool {
    false
}

/// Reserve `size` bytes for `f` (F_PREALLOCATE, contiguous first, then
/// any), then set its length.
pub fn preallocate(f: &File, size: u64) -> io::Result<()> {
    let have = f.metadata()?.len();
    let mut fs = libc::fstore_t {
        fst_flags: libc::F_ALLOCATECONTIG | libc::F_ALLOCATEALL,
        fst_posmode: libc::F_PEOFPOSMODE,
        fst_offset: 0,
        fst_length: size.saturating_sub(have) as libc::off_t,
        fst_bytesalloc: 0,
    };
    // SAFETY: F_PREALLOCATE reads and fills the fstore_t we pass.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_PREALLOCATE, &mut fs) } == -1 {
        fs.fst_flags = libc::F_ALLOCATEALL;
        // SAFETY: as above.
        if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_PREALLOCATE, &mut fs) } == -1 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOSPC) {
                return Err(e);
            }
        }
    }
    f.set_len(size)
}

/// No writeback hint on macOS.
pub fn start_writeback(_f: &File, _off: u64, _len: u64) {}

/// No reflink between open files (clonefile works on paths): a copy.
pub fn reflink(_from: &File, _to: &File) -> bool {
    false
}

/// No subreaper on macOS: leftovers are found by process group only.
pub fn become_subreaper() {}

/// The build user, between fork and exec; no namespaces exist, so
/// `isolate_net` and `read_only` are not available (README says so).
pub fn confine(cmd: &mut Command, c: &Confine) -> io::Result<()> {
    let user = c.user;
    // SAFETY: setgroups, setgid and setuid are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid)) = user
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0)
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}
