//! The Unix halves (Linux and macOS): descriptors, permission bits, uids,
//! process groups and signals. What only Linux or only macOS has is in
//! `linux.rs` and `macos.rs`, under the same names.

pub mod dirfd;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(not(target_os = "linux"))]
mod macos;
#[cfg(not(target_os = "linux"))]
pub use macos::*;

use super::Identity;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// Put `from` in place of `to` in one step: a reader sees the old file or
/// the new one, never a mix.
pub fn replace_file(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)
}

/// Make the entries of `dir` (a file just renamed into it) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The user's home directory: `$HOME`.
pub fn home_dir() -> Option<std::ffi::OsString> {
    std::env::var_os("HOME").filter(|h| !h.is_empty())
}

/// Where onramp keeps its `kind` ("cache" or "state") when no variable
/// names a place: `~/<unix_rel>` (`.cache/onramp`, `.local/state/onramp`).
pub fn default_home(unix_rel: &str, _kind: &str) -> Option<PathBuf> {
    home_dir().map(|h| PathBuf::from(h).join(unix_rel))
}

/// Is this process privileged (root), so that the trust checks apply?
pub fn is_admin() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// This process's effective uid.
pub fn my_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Files and directories onramp creates are never group/other-writable,
/// whatever umask the caller had.
pub fn set_umask() {
    // SAFETY: umask has no preconditions.
    unsafe { libc::umask(0o022) };
}

/// Open `p` as `o` says, never following a symbolic link at its last
/// component: a link there fails (`is_link_refused`).
pub fn open_no_follow(o: &mut OpenOptions, p: &Path) -> io::Result<File> {
    o.custom_flags(libc::O_NOFOLLOW).open(p)
}

/// `open_no_follow`, never blocking on a FIFO (one opened to write with
/// no reader fails: `is_special_refused`). `set_blocking` after checking
/// it is a regular file.
pub fn open_no_follow_nonblock(o: &mut OpenOptions, p: &Path) -> io::Result<File> {
    o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(p)
}

/// Back to blocking I/O on a file opened with `no_follow_nonblock`.
pub fn set_blocking(f: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
}

/// Permission bits a new file gets (narrowed by the umask).
pub fn create_mode(o: &mut OpenOptions, mode: u32) -> &mut OpenOptions {
    o.mode(mode)
}

/// Set the permission bits of an open file exactly.
pub fn set_file_mode(f: &File, mode: u32) -> io::Result<()> {
    f.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// Set the permission bits of `p` exactly (a link is followed).
pub fn set_path_mode(p: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}

/// The permission bits (with setuid, setgid and sticky).
pub fn mode_of(m: &Metadata) -> u32 {
    m.mode() & 0o7777
}

/// The owner's uid.
pub fn owner_of(m: &Metadata) -> u32 {
    m.uid()
}

/// May this be run (a regular file with an execute bit)?
pub fn is_executable(m: &Metadata) -> bool {
    m.is_file() && m.mode() & 0o111 != 0
}

/// Did an open fail because the name is a symbolic link (`no_follow`)?
pub fn is_link_refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// Did a nonblocking open fail because the name is a FIFO or a socket?
pub fn is_special_refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENXIO)
}

/// Is this the disk's fault (full, over quota, failing, read-only)?
pub fn is_disk_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EIO | libc::EROFS)
    )
}

/// The OS error numbers the fault hook injects: an I/O error, a full disk.
pub const ERR_IO: i32 = libc::EIO;
pub const ERR_NO_SPACE: i32 = libc::ENOSPC;

/// Identity, size and times of an open file.
pub fn identity(f: &File) -> io::Result<Identity> {
    Ok(identity_of(&f.metadata()?))
}

fn identity_of(m: &Metadata) -> Identity {
    Identity {
        dev: m.dev(),
        ino: m.ino(),
        size: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    }
}

/// Identity, size and times of what `p` names; a link is followed when
/// `follow`, else described itself.
pub fn identity_path(p: &Path, follow: bool) -> io::Result<Identity> {
    let m = if follow {
        std::fs::metadata(p)?
    } else {
        std::fs::symlink_metadata(p)?
    };
    Ok(identity_of(&m))
}

/// Bytes available to an unprivileged user on the filesystem of `p`.
pub fn free_bytes(p: &Path) -> io::Result<u64> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: statvfs fills the struct we pass; zeroed is a valid start.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)]
    Ok((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

/// Fill `buf` from `off` without moving a shared cursor (threads share
/// the file).
pub fn read_exact_at(f: &File, buf: &mut [u8], off: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, off)
}

/// Write all of `buf` at `off` without moving a shared cursor.
pub fn write_all_at(f: &File, buf: &[u8], off: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, off)
}

/// Make a symbolic link at `link` pointing to `target`.
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

/// Make `link` show the directory `target` (relative to `link`'s parent):
/// a symbolic link. `replace_dir_link` puts it in place in one step.
pub fn link_dir(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

/// Where a `link_dir` link leads (relative, as made).
pub fn read_dir_link(link: &Path) -> io::Result<PathBuf> {
    std::fs::read_link(link)
}

/// Put the `link_dir` link `from` in place of `to` (a link or nothing):
/// one rename.
pub fn replace_dir_link(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)
}

/// Remove a `link_dir` link (not what it leads to).
pub fn remove_dir_link(link: &Path) -> io::Result<()> {
    std::fs::remove_file(link)
}

/// Columns of the terminal on stderr (0 when it is not one).
pub fn term_width() -> usize {
    // SAFETY: TIOCGWINSZ fills the winsize we pass; fd 2 may be anything.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) } == 0 {
        return usize::from(ws.ws_col);
    }
    0
}

static HANDLER: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

extern "C" fn on_signal(_sig: libc::c_int) {
    if let Some(h) = HANDLER.get() {
        h();
    }
}

/// Call `handler` (async-signal-safe: an atomic store) on SIGINT and
/// SIGTERM, and ignore SIGPIPE so a closed stdout becomes an error.
pub fn on_interrupt(handler: fn()) {
    let _ = HANDLER.set(handler);
    // SAFETY: the handler only reads a set OnceLock and calls `handler`.
    unsafe {
        let h = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, h);
        libc::signal(libc::SIGTERM, h);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Die at once, as `kill -9` would (the fault hook's crash).
pub fn kill_self() -> ! {
    // SAFETY: signalling ourselves.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    std::process::abort()
}

/// Is `pid` a live process (a zombie is not)?
pub fn process_alive(pid: u32) -> bool {
    process_start(pid).is_some()
}

/// Start `cmd` in a process group of its own, so that it and everything
/// it starts can be ended together (Group).
pub fn own_group(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
}

/// Start `cmd` detached from the installer: a session of its own, so the
/// installer's Ctrl-C or its end does not reach it (a service).
pub fn detached(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

/// Ask `pid` to stop (SIGTERM).
pub fn stop_process(pid: u32) {
    // SAFETY: a plain signal to a process the caller verified.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
}

/// Kill what is left of the process group (session) `pid` led.
pub fn kill_tree_of(pid: u32) {
    // SAFETY: signal 0 checks the group still has a member first.
    unsafe {
        let pg = -(pid as libc::pid_t);
        if libc::kill(pg, 0) == 0 {
            libc::kill(pg, libc::SIGKILL);
        }
    }
}

/// Ask every process of our own group (the session a supervisor leads)
/// to stop: the command and whatever it started.
pub fn stop_own_group() {
    // SAFETY: signals to our own group; ours only sets a flag.
    unsafe { libc::kill(0, libc::SIGTERM) };
}

/// Kill `pid` now.
pub fn kill_process(pid: u32) {
    // SAFETY: signalling a process the caller found (a descendant).
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

/// Reap children of ours that exited, without blocking.
pub fn reap_exited() {
    loop {
        let mut st = 0;
        // SAFETY: reaping our own exited children, without blocking.
        if unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) } <= 0 {
            break;
        }
    }
}

/// Send SIGKILL to every process of `uid`, as that uid, from a forked
/// child: `kill(-1)` reaches exactly the processes the uid could signal,
/// atomically with respect to fork.
pub fn kill_all_of(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: the child only drops to the uid, signals and exits: no
    // allocation or lock, which is what a forked child of a threaded
    // process may do. As root, setgid and setuid set the real, effective
    // and saved ids alike (the libc wrappers: on i686 and armv7 the raw
    // calls take 16-bit ids).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                libc::_exit(2);
            }
            libc::kill(-1, libc::SIGKILL);
            libc::_exit(0);
        }
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut status = 0;
    // SAFETY: waiting for the child we just forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    Ok(())
}

/// Take an exclusive lock on `f` without waiting (flock); Ok(false) when
/// another process holds it. Released when `f` is closed.
pub fn try_lock(f: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on our own descriptor.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock => Ok(false),
        _ => Err(e),
    }
}

/// The processes a command started (its process group), ended as one.
pub struct Group {
    pgid: libc::pid_t,
}

impl Group {
    /// The group of `child`, started with `own_group`.
    pub fn of(child: &Child) -> io::Result<Group> {
        Ok(Group {
            pgid: child.id() as libc::pid_t,
        })
    }

    /// Ask every process of the group to stop (SIGTERM).
    pub fn terminate(&self) {
        // SAFETY: signalling the process group this helper created.
        unsafe { libc::kill(-self.pgid, libc::SIGTERM) };
    }

    /// End every process of the group now (SIGKILL).
    pub fn kill(&self) {
        // SAFETY: as above.
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
    }
}

/// `n` bytes from the kernel's random source (tokens).
pub fn random_bytes(n: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut b = vec![0u8; n];
    File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// Mark every descriptor above stderr close-on-exec, so nothing inherited
/// by this process (`install.sh 7<secret`) reaches a child. The helper's own
/// files are opened close-on-exec by std; this covers what it was given.
pub fn seal_inherited_fds() {
    if cloexec_range() {
        return;
    }
    // Older kernels and other systems: the descriptors that are open.
    let dir = if Path::new("/proc/self/fd").is_dir() {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    };
    let fds: Vec<libc::c_int> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|fd| *fd > 2)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        // SAFETY: F_SETFD on a descriptor number; a closed one gives EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// The trust verdict on one directory root uses (see `fsutil::walk`):
/// None when only root can change it; else why not, and the fix when
/// there is a simple one. `shared_ok`: a sticky directory (/tmp) passes.
pub fn distrust(_path: &Path, m: &Metadata, shared_ok: bool) -> Option<(String, Option<String>)> {
    if m.uid() != 0 {
        return Some((format!("it is owned by uid {} (not root)", m.uid()), None));
    }
    let mode = m.mode();
    let writable = mode & 0o022 != 0;
    let sticky = mode & 0o1000 != 0;
    if !writable || (shared_ok && sticky) {
        return None;
    }
    Some((
        format!(
            "it is writable by {} (mode {:04o})",
            if mode & 0o002 != 0 {
                "every user"
            } else {
                "its group"
            },
            mode & 0o7777
        ),
        Some("chmod go-w it".into()),
    ))
}

/// Who owns a link, for a refusal: None when root does.
pub fn link_distrust(_path: &Path, m: &Metadata) -> Option<String> {
    (m.uid() != 0).then(|| format!("a symbolic link owned by uid {} (not root)", m.uid()))
}

/// The device (filesystem) `p` is on.
pub fn device_of(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.dev())
}
