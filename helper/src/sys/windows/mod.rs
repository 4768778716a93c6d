//! The Windows halves: handles instead of descriptors, reparse points
//! instead of symbolic links, volume serial and file index instead of
//! device and inode, ACLs instead of permission bits, Job Objects instead
//! of process groups, a console control handler instead of signals.
//! There are no uids: `my_uid` and `owner_of` are 0, and an elevated
//! (Administrator) process is judged by `distrust` on owners and ACLs.

pub mod dirfd;
mod ffi;

use super::{Confine, Identity};
use ffi::Handle;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
const FILE_ATTRIBUTE_READONLY: u32 = 0x1;
const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
/// ERROR_STOPPED_ON_SYMLINK: what a refused reparse point reports.
const ERROR_STOPPED_ON_SYMLINK: i32 = 681;

fn wide(p: &Path) -> Vec<u16> {
    p.as_os_str().encode_wide().chain(Some(0)).collect()
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// Put `from` in place of `to` in one step (std's rename is MoveFileExW
/// with MOVEFILE_REPLACE_EXISTING). While another process holds a handle
/// on either file without FILE_SHARE_DELETE (an antivirus scanning the new
/// file, the search indexer), it fails with ERROR_ACCESS_DENIED (5) or
/// ERROR_SHARING_VIOLATION (32): try again for about 2.5 s before failing.
pub fn replace_file(from: &Path, to: &Path) -> io::Result<()> {
    let mut wait = std::time::Duration::from_millis(10);
    for _ in 0..8 {
        match std::fs::rename(from, to) {
            Err(e) if matches!(e.raw_os_error(), Some(5) | Some(32)) => {
                std::thread::sleep(wait);
                wait *= 2;
            }
            done => return done,
        }
    }
    std::fs::rename(from, to)
}

/// NTFS journals directory entries itself; a rename is durable once it
/// returns (MoveFileEx is not write-through, but the journal is).
pub fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// The user's home directory: `%USERPROFILE%` (Windows sets no HOME).
pub fn home_dir() -> Option<std::ffi::OsString> {
    std::env::var_os("USERPROFILE").filter(|h| !h.is_empty())
}

/// Where onramp keeps its `kind` on Windows: `%LOCALAPPDATA%\onramp\<kind>`
/// (private to the user; install.ps1 keeps the helper in `cache\bin`).
pub fn default_home(_unix_rel: &str, kind: &str) -> Option<PathBuf> {
    std::env::var_os("LOCALAPPDATA")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join("onramp").join(kind))
}

/// Is this process elevated (an Administrator past UAC), so that the
/// trust checks apply?
pub fn is_admin() -> bool {
    let mut token = std::ptr::null_mut();
    // SAFETY: our own process's token, opened to query.
    if unsafe { ffi::OpenProcessToken(ffi::GetCurrentProcess(), ffi::TOKEN_QUERY, &mut token) } == 0
    {
        return false;
    }
    let token = Handle(token);
    let mut elevated: u32 = 0;
    let mut len = 0u32;
    // SAFETY: TOKEN_ELEVATION is one u32; we pass its size.
    let ok = unsafe {
        ffi::GetTokenInformation(
            token.0,
            ffi::TOKEN_ELEVATION_CLASS,
            (&mut elevated as *mut u32).cast(),
            4,
            &mut len,
        )
    };
    ok != 0 && elevated != 0
}

/// No uids on Windows: 0, as `owner_of` says of every file.
pub fn my_uid() -> u32 {
    0
}

/// New files inherit their directory's ACL: nothing to narrow.
pub fn set_umask() {}

fn refuse_reparse(f: File) -> io::Result<File> {
    if f.metadata()?.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        return Err(io::Error::from_raw_os_error(ERROR_STOPPED_ON_SYMLINK));
    }
    Ok(f)
}

/// Open `p` as `o` says, never following a reparse point (a symbolic link,
/// a junction) at its last component: one there fails (`is_link_refused`).
pub fn open_no_follow(o: &mut OpenOptions, p: &Path) -> io::Result<File> {
    refuse_reparse(o.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT).open(p)?)
}

/// `open_no_follow` (Windows has no FIFOs to block on).
pub fn open_no_follow_nonblock(o: &mut OpenOptions, p: &Path) -> io::Result<File> {
    open_no_follow(o, p)
}

/// Nothing to undo: `open_no_follow_nonblock` opens blocking files.
pub fn set_blocking(_f: &File) {}

/// New files inherit their directory's ACL; no bits to give.
pub fn create_mode(o: &mut OpenOptions, _mode: u32) -> &mut OpenOptions {
    o
}

/// Windows files keep the ACL they inherit; the read-only attribute is
/// not used (it would make a verified file impossible to replace or
/// remove, which uninstall, prune and upgrades must do).
pub fn set_file_mode(_f: &File, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// `set_file_mode` by path: nothing to do.
pub fn set_path_mode(_p: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// Permission bits as Unix would show them: directories 0o755, files
/// 0o644, or 0o444 when read-only.
pub fn mode_of(m: &Metadata) -> u32 {
    if m.file_attributes() & FILE_ATTRIBUTE_DIRECTORY != 0 {
        0o755
    } else if m.file_attributes() & FILE_ATTRIBUTE_READONLY != 0 {
        0o444
    } else {
        0o644
    }
}

/// No uids on Windows (see `distrust` for owners).
pub fn owner_of(_m: &Metadata) -> u32 {
    0
}

/// Windows runs any file by its extension: a regular file.
pub fn is_executable(m: &Metadata) -> bool {
    m.is_file()
}

/// Did an open fail because the name is a reparse point?
pub fn is_link_refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(ERROR_STOPPED_ON_SYMLINK)
}

/// No FIFOs or sockets by name on Windows.
pub fn is_special_refused(_e: &io::Error) -> bool {
    false
}

/// ERROR_HANDLE_DISK_FULL (39), ERROR_DISK_FULL (112), ERROR_WRITE_PROTECT
/// (19), ERROR_CRC (23), ERROR_IO_DEVICE (1117), ERROR_DISK_QUOTA_EXCEEDED
/// (1295).
pub fn is_disk_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(39 | 112 | 19 | 23 | 1117 | 1295))
}

/// The OS error numbers the fault hook injects: an I/O error, a full disk.
pub const ERR_IO: i32 = 1117;
pub const ERR_NO_SPACE: i32 = 112;

/// 100 ns intervals since 1601 to (seconds, nanoseconds) since 1970.
fn unix_time(t: i64) -> (i64, i64) {
    const EPOCH_DIFF: i64 = 11_644_473_600;
    let secs = t.div_euclid(10_000_000) - EPOCH_DIFF;
    (secs, t.rem_euclid(10_000_000) * 100)
}

fn info_of(h: ffi::HANDLE) -> io::Result<(ffi::ByHandleFileInformation, ffi::FileBasicInfo)> {
    let mut info = ffi::ByHandleFileInformation::default();
    // SAFETY: `h` is an open handle; `info` is the struct the call fills.
    if unsafe { ffi::GetFileInformationByHandle(h, &mut info) } == 0 {
        return Err(last_error());
    }
    let mut basic = ffi::FileBasicInfo::default();
    // SAFETY: FileBasicInfo (class 0) fills a FILE_BASIC_INFO of that size.
    if unsafe {
        ffi::GetFileInformationByHandleEx(
            h,
            ffi::FILE_BASIC_INFO_CLASS,
            (&mut basic as *mut ffi::FileBasicInfo).cast(),
            std::mem::size_of::<ffi::FileBasicInfo>() as u32,
        )
    } == 0
    {
        return Err(last_error());
    }
    Ok((info, basic))
}

fn identity_of_handle(h: ffi::HANDLE) -> io::Result<(Identity, u32, u32)> {
    let (info, basic) = info_of(h)?;
    Ok((
        Identity {
            dev: u64::from(info.volume_serial),
            ino: (u64::from(info.index_high) << 32) | u64::from(info.index_low),
            size: (u64::from(info.size_high) << 32) | u64::from(info.size_low),
            mtime: unix_time(basic.last_write),
            ctime: unix_time(basic.change),
        },
        info.attributes,
        info.links,
    ))
}

/// Identity (volume serial number and file index), size and times (last
/// write, last change) of an open file.
pub fn identity(f: &File) -> io::Result<Identity> {
    identity_of_handle(f.as_raw_handle()).map(|i| i.0)
}

/// Identity of what `p` names; a reparse point is followed when `follow`,
/// else described itself.
pub fn identity_path(p: &Path, follow: bool) -> io::Result<Identity> {
    let mut o = OpenOptions::new();
    o.access_mode(0).share_mode(7);
    let flags = FILE_FLAG_BACKUP_SEMANTICS
        | if follow {
            0
        } else {
            FILE_FLAG_OPEN_REPARSE_POINT
        };
    identity(&o.custom_flags(flags).open(p)?)
}

/// Bytes available to this user on the volume of `p` (quotas counted).
pub fn free_bytes(p: &Path) -> io::Result<u64> {
    let w = wide(p);
    let (mut free, mut total, mut all) = (0u64, 0u64, 0u64);
    // SAFETY: a NUL-terminated path and three u64 outputs.
    if unsafe { ffi::GetDiskFreeSpaceExW(w.as_ptr(), &mut free, &mut total, &mut all) } == 0 {
        return Err(last_error());
    }
    Ok(free)
}

/// Fill `buf` from `off` (the OVERLAPPED offset: the shared cursor is not
/// relied on); seek_read may read less, so loop.
pub fn read_exact_at(f: &File, mut buf: &mut [u8], mut off: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(f, buf, off) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                off += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Write all of `buf` at `off`; seek_write may write less, so loop.
pub fn write_all_at(f: &File, mut buf: &[u8], mut off: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_write(f, buf, off) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                off += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A symbolic link at `link` to `target` (a file link, or a directory link
/// when `target` is one). Making one needs Developer Mode or a privilege
/// most users lack (and wine 8 only pretends to): without it `link` is a
/// copy of what `target` names, as Python's tarfile does on Windows. The
/// callers have checked that `target` stays inside their tree.
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    let full = link.parent().unwrap_or(Path::new(".")).join(target);
    let made = if full.is_dir() {
        std::os::windows::fs::symlink_dir(target, link)
    } else {
        std::os::windows::fs::symlink_file(target, link)
    };
    if made.is_ok() && std::fs::symlink_metadata(link).is_ok() {
        return Ok(());
    }
    if full.is_dir() {
        // A directory that holds the link itself cannot be copied into it.
        let (dir, at) = (
            std::fs::canonicalize(&full)?,
            std::fs::canonicalize(link.parent().unwrap_or(Path::new(".")))?,
        );
        if at.starts_with(&dir) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{} leads to a directory that holds it; without symbolic links (Developer Mode) Windows cannot have it",
                    link.display()
                ),
            ));
        }
        copy_tree(&full, link)
    } else {
        std::fs::copy(&full, link).map(|_| ())
    }
}

/// The note in a `link_dir` copy that says which directory it shows.
const LINK_NOTE: &str = ".onramp-link";

/// Make `link` show the directory `target` (relative to `link`'s parent).
/// A symbolic link needs a privilege most users lack and a junction an
/// absolute target (and neither exists under wine): `link` is a copy of
/// the tree, with a note naming `target`. Reparse points in the tree are
/// refused, never copied or followed.
pub fn link_dir(target: &Path, link: &Path) -> io::Result<()> {
    let from = link.parent().unwrap_or(Path::new(".")).join(target);
    copy_tree(&from, link)?;
    let mut note = target.to_string_lossy().replace('\\', "/");
    note.push('\n');
    std::fs::write(link.join(LINK_NOTE), note)
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let t = e.file_type()?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if t.is_symlink() {
            return Err(io::Error::from_raw_os_error(ERROR_STOPPED_ON_SYMLINK));
        } else if t.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// Where a `link_dir` copy leads, from its note.
pub fn read_dir_link(link: &Path) -> io::Result<PathBuf> {
    let note = std::fs::read_to_string(link.join(LINK_NOTE))?;
    Ok(PathBuf::from(note.trim_end()))
}

/// Put the `link_dir` copy `from` in place of `to`: directories cannot be
/// renamed over one another, so the old one is moved aside first and
/// removed after (a crash between leaves no `to`, and the server phase
/// makes it again on resume).
pub fn replace_dir_link(from: &Path, to: &Path) -> io::Result<()> {
    let aside = to.with_extension("onramp-old");
    let _ = std::fs::remove_dir_all(&aside);
    let had = std::fs::symlink_metadata(to).is_ok();
    if had {
        replace_file(to, &aside)?;
    }
    if let Err(e) = replace_file(from, to) {
        if had {
            let _ = replace_file(&aside, to);
        }
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(&aside);
    Ok(())
}

/// Remove a `link_dir` copy.
pub fn remove_dir_link(link: &Path) -> io::Result<()> {
    std::fs::remove_dir_all(link)
}

/// Columns of the console on stderr (0 when it is not one).
pub fn term_width() -> usize {
    let mut info = ffi::ConsoleInfo::default();
    // SAFETY: the process's stderr handle; the call fills `info`.
    let ok = unsafe {
        ffi::GetConsoleScreenBufferInfo(ffi::GetStdHandle(ffi::STD_ERROR_HANDLE), &mut info)
    };
    if ok == 0 {
        return 0;
    }
    (i32::from(info.window[2]) - i32::from(info.window[0]) + 1).max(0) as usize
}

static HANDLER: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

unsafe extern "system" fn on_ctrl(_event: u32) -> ffi::BOOL {
    if let Some(h) = HANDLER.get() {
        h();
    }
    // Handled: the helper notices the flag, records "interrupted" and
    // exits 130 itself (for a close or logoff Windows ends it after 5 s).
    1
}

/// Call `handler` on Ctrl-C, Ctrl-Break and console close (a console
/// control handler, on a thread of its own).
pub fn on_interrupt(handler: fn()) {
    let _ = HANDLER.set(handler);
    // SAFETY: registering a handler that lives as long as the process.
    unsafe { ffi::SetConsoleCtrlHandler(Some(on_ctrl), 1) };
}

/// Die at once, as TerminateProcess from outside would (the fault hook).
pub fn kill_self() -> ! {
    // SAFETY: ending our own process.
    unsafe { ffi::TerminateProcess(ffi::GetCurrentProcess(), 137) };
    std::process::abort()
}

fn open_process(pid: u32, access: u32) -> Option<Handle> {
    // SAFETY: OpenProcess returns null or a handle we own.
    let h = unsafe { ffi::OpenProcess(access, 0, pid) };
    (!h.is_null()).then_some(Handle(h))
}

/// When `pid` was created (100 ns since 1601), None when it is gone: a pid
/// and its start identify one process across pid reuse.
pub fn process_start(pid: u32) -> Option<u64> {
    let h = open_process(pid, ffi::PROCESS_QUERY_LIMITED_INFORMATION)?;
    let mut code = 0u32;
    // SAFETY: a live process handle and a u32 output.
    if unsafe { ffi::GetExitCodeProcess(h.0, &mut code) } == 0 || code != ffi::STILL_ACTIVE {
        return None;
    }
    let mut t = [ffi::FileTime::default(); 4];
    let [c, e, k, u] = &mut t;
    // SAFETY: four FILETIME outputs.
    if unsafe { ffi::GetProcessTimes(h.0, c, e, k, u) } == 0 {
        return Some(0);
    }
    Some((u64::from(c.high) << 32) | u64::from(c.low))
}

/// The parent is not read on Windows (a service's port is not traced to it).
pub fn parent_pid(_pid: u32) -> Option<u32> {
    None
}

/// Who holds a port is not read on Windows (GetExtendedTcpTable is not
/// used); the caller falls back to whether the port answers.
pub fn listening_on(_port: u16) -> io::Result<super::Listening> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "who holds a port is not read on Windows",
    ))
}

/// Is `pid` a live process?
pub fn process_alive(pid: u32) -> bool {
    process_start(pid).is_some()
}

const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
const DETACHED_PROCESS: u32 = 0x0000_0008;
const CREATE_NO_WINDOW: u32 = 0x0800_0000;

/// Start `cmd` in a console process group of its own: a Ctrl-C meant for
/// the installer is not delivered to it twice. Group puts it in a Job.
pub fn own_group(cmd: &mut Command) {
    use std::os::windows::process::CommandExt;
    cmd.creation_flags(CREATE_NEW_PROCESS_GROUP);
}

/// Start `cmd` detached from the installer's console (a service run by
/// `onramp supervise`): no console, a process group of its own.
pub fn detached(cmd: &mut Command) {
    use std::os::windows::process::CommandExt;
    cmd.creation_flags(CREATE_NEW_PROCESS_GROUP | DETACHED_PROCESS | CREATE_NO_WINDOW);
}

/// Stop `pid`: Windows has no polite stop for a process without a window
/// or console of ours, so it is ended (exit code 143, as after SIGTERM).
pub fn stop_process(pid: u32) {
    if let Some(h) = open_process(pid, ffi::PROCESS_TERMINATE) {
        // SAFETY: a process handle opened to terminate.
        unsafe { ffi::TerminateProcess(h.0, 143) };
    }
}

/// End `pid` (a service's supervisor); its command and what that started
/// are in a Job that closes with it (`onramp supervise`).
pub fn kill_tree_of(pid: u32) {
    kill_process(pid);
}

/// A supervisor stops its command itself (the caller kills the child):
/// there is no console group of ours to signal.
pub fn stop_own_group() {}

/// End `pid` now.
pub fn kill_process(pid: u32) {
    if let Some(h) = open_process(pid, ffi::PROCESS_TERMINATE) {
        // SAFETY: a process handle opened to terminate.
        unsafe { ffi::TerminateProcess(h.0, 137) };
    }
}

/// Windows has no zombies to reap.
pub fn reap_exited() {}

/// Build users do not exist on Windows (PKGBUILD workers are refused at
/// plan time).
pub fn kill_all_of(_uid: u32, _gid: u32) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "Windows has no build users: PKGBUILD workers need a Unix machine",
    ))
}

/// Take an exclusive lock on `f` without waiting (LockFileEx); Ok(false)
/// when another process holds it. Released when `f` is closed.
pub fn try_lock(f: &File) -> io::Result<bool> {
    let mut ov = ffi::Overlapped {
        internal: 0,
        internal_high: 0,
        offset: 0,
        offset_high: 0,
        event: std::ptr::null_mut(),
    };
    // SAFETY: an open file handle and a zeroed OVERLAPPED (offset 0).
    let ok = unsafe {
        ffi::LockFileEx(
            f.as_raw_handle(),
            ffi::LOCKFILE_EXCLUSIVE_LOCK | ffi::LOCKFILE_FAIL_IMMEDIATELY,
            0,
            u32::MAX,
            u32::MAX,
            &mut ov,
        )
    };
    if ok != 0 {
        return Ok(true);
    }
    let e = last_error();
    // ERROR_LOCK_VIOLATION, ERROR_IO_PENDING: held by another.
    match e.raw_os_error() {
        Some(33 | 997) => Ok(false),
        _ => Err(e),
    }
}

/// The processes a command started, in a Job Object that ends them all
/// when it is terminated or closed (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE:
/// also when the helper itself dies). A process the command starts
/// before it is assigned to the Job escapes it: the window is the few
/// microseconds between spawn and `Group::of`.
pub struct Group {
    job: Handle,
}

impl Group {
    /// A new Job holding `child`.
    pub fn of(child: &Child) -> io::Result<Group> {
        // SAFETY: no security attributes, no name: a new anonymous Job.
        let job = Handle(unsafe { ffi::CreateJobObjectW(std::ptr::null_mut(), std::ptr::null()) });
        if job.0.is_null() {
            return Err(last_error());
        }
        // SAFETY: an all-zero JOBOBJECT_EXTENDED_LIMIT_INFORMATION is valid
        // (integers only): no limits.
        let mut info: ffi::JobExtendedLimits = unsafe { std::mem::zeroed() };
        info.basic.limit_flags = ffi::JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: `info` is a JOBOBJECT_EXTENDED_LIMIT_INFORMATION (class 9)
        // of the size passed; `job` is the handle just created.
        let ok = unsafe {
            ffi::SetInformationJobObject(
                job.0,
                ffi::JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS,
                (&mut info as *mut ffi::JobExtendedLimits).cast(),
                std::mem::size_of::<ffi::JobExtendedLimits>() as u32,
            )
        };
        if ok == 0 {
            return Err(last_error());
        }
        // SAFETY: the child's process handle stays open while `child` lives.
        if unsafe { ffi::AssignProcessToJobObject(job.0, child.as_raw_handle()) } == 0 {
            return Err(last_error());
        }
        Ok(Group { job })
    }

    /// Windows has no polite stop for a process without a window or a
    /// console of its own: the same as kill.
    pub fn terminate(&self) {
        self.kill();
    }

    /// End every process in the Job now.
    pub fn kill(&self) {
        // SAFETY: `job` is a live Job handle owned by self.
        unsafe { ffi::TerminateJobObject(self.job.0, 1) };
    }
}

/// `n` bytes from the system's preferred random generator (tokens).
pub fn random_bytes(n: usize) -> io::Result<Vec<u8>> {
    const BCRYPT_USE_SYSTEM_PREFERRED_RNG: u32 = 2;
    let mut b = vec![0u8; n];
    // SAFETY: `b` is `n` writable bytes; no algorithm handle is needed with
    // BCRYPT_USE_SYSTEM_PREFERRED_RNG.
    let status = unsafe {
        ffi::BCryptGenRandom(
            std::ptr::null_mut(),
            b.as_mut_ptr(),
            n as u32,
            BCRYPT_USE_SYSTEM_PREFERRED_RNG,
        )
    };
    if status != 0 {
        return Err(io::Error::other(format!(
            "BCryptGenRandom failed (NTSTATUS {status:#x})"
        )));
    }
    Ok(b)
}

/// The standard handles this process was given are inheritable (that is
/// how it got them), and Windows hands every inheritable handle to every
/// child. A service or progress server started detached would then hold
/// the installer's output pipe open, and PowerShell, reading the helper's
/// output to its end, would wait for that child to exit. Clear the flag:
/// std duplicates a handle it passes to a child anyway.
pub fn seal_inherited_fds() {
    for which in [
        ffi::STD_INPUT_HANDLE,
        ffi::STD_OUTPUT_HANDLE,
        ffi::STD_ERROR_HANDLE,
    ] {
        // SAFETY: GetStdHandle returns a handle of ours or null/invalid,
        // which SetHandleInformation refuses harmlessly.
        unsafe { ffi::SetHandleInformation(ffi::GetStdHandle(which), ffi::HANDLE_FLAG_INHERIT, 0) };
    }
}

/// The volume (serial number) `p` is on.
pub fn device_of(p: &Path) -> Option<u64> {
    identity_path(p, true).ok().map(|i| i.dev)
}

/// Reserve `size` bytes for `f` (FileAllocationInfo: a full disk shows
/// now), then set its length.
pub fn preallocate(f: &File, size: u64) -> io::Result<()> {
    let mut info = ffi::FileAllocationInfo {
        size: size.min(i64::MAX as u64) as i64,
    };
    // SAFETY: FILE_ALLOCATION_INFO of the size passed, on our handle.
    let ok = unsafe {
        ffi::SetFileInformationByHandle(
            f.as_raw_handle(),
            ffi::FILE_ALLOCATION_INFO_CLASS,
            (&mut info as *mut ffi::FileAllocationInfo).cast(),
            std::mem::size_of::<ffi::FileAllocationInfo>() as u32,
        )
    };
    if ok == 0 {
        let e = last_error();
        if is_disk_error(&e) {
            return Err(e);
        }
    }
    f.set_len(size)
}

/// No writeback hint on Windows.
pub fn start_writeback(_f: &File, _off: u64, _len: u64) {}

/// Block cloning (ReFS) is not used: a copy.
pub fn reflink(_from: &File, _to: &File) -> bool {
    false
}

/// Nothing started by a command outlives its Job: no subreaper needed.
pub fn become_subreaper() {}

/// Recipes do not run on Windows (PKGBUILD workers are refused at plan
/// time): only an unconfined command may be started.
pub fn confine(_cmd: &mut Command, c: &Confine) -> io::Result<()> {
    if c.user.is_some() || c.isolate_net || c.contain {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "recipes (PKGBUILD builds) need a Unix machine: Windows has no build users or namespaces",
        ));
    }
    Ok(())
}

/// A SID as text (S-1-5-32-544), read from its bytes.
fn sid_string(sid: *const u8) -> String {
    // SAFETY: a SID is revision, count, 6 authority bytes, `count` u32s;
    // the pointer comes from a security descriptor or ACE the OS gave us.
    unsafe {
        let count = usize::from(*sid.add(1));
        let auth = (0..6).fold(0u64, |a, i| (a << 8) | u64::from(*sid.add(2 + i)));
        let mut s = format!("S-{}-{auth}", *sid);
        for i in 0..count {
            let p = sid.add(8 + 4 * i) as *const u32;
            s.push_str(&format!("-{}", p.read_unaligned()));
        }
        s
    }
}

/// The SIDs an elevated install may trust: SYSTEM, Administrators,
/// TrustedInstaller, and the installing user.
fn trusted_sid(s: &str) -> bool {
    matches!(
        s,
        "S-1-5-18"
            | "S-1-5-32-544"
            | "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
            | "S-1-3-0"
    ) || Some(s) == my_sid().as_deref()
}

fn my_sid() -> Option<String> {
    static ME: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ME.get_or_init(|| {
        let mut token = std::ptr::null_mut();
        // SAFETY: our own process's token, opened to query.
        if unsafe { ffi::OpenProcessToken(ffi::GetCurrentProcess(), ffi::TOKEN_QUERY, &mut token) }
            == 0
        {
            return None;
        }
        let token = Handle(token);
        let mut buf = vec![0usize; 128];
        let mut len = 0u32;
        // SAFETY: TOKEN_USER into a buffer of the size passed; aligned.
        let ok = unsafe {
            ffi::GetTokenInformation(
                token.0,
                ffi::TOKEN_USER_CLASS,
                buf.as_mut_ptr().cast(),
                (buf.len() * std::mem::size_of::<usize>()) as u32,
                &mut len,
            )
        };
        // TOKEN_USER starts with SID_AND_ATTRIBUTES: the SID pointer first.
        (ok != 0).then(|| sid_string(buf[0] as *const u8))
    })
    .clone()
}

/// Rights that let another account replace or re-point what is in a
/// directory: DELETE, WRITE_DAC, WRITE_OWNER, FILE_DELETE_CHILD and the
/// generic write/all rights.
const REPLACE_RIGHTS: u32 =
    0x0001_0000 | 0x0004_0000 | 0x0008_0000 | 0x40 | 0x4000_0000 | 0x1000_0000;
/// Rights that only add entries (FILE_ADD_FILE, FILE_ADD_SUBDIRECTORY):
/// like a sticky /tmp, fine but for a directory onramp fills itself.
const ADD_RIGHTS: u32 = 0x2 | 0x4;

/// The trust verdict on one directory an elevated install uses (see
/// `fsutil::walk`): None when only SYSTEM, Administrators, TrustedInstaller
/// or this user can change it; else why not. The owner and the DACL are
/// read from a handle on the directory itself (a reparse point is not
/// followed). `shared_ok`: entries others may only add are fine.
pub fn distrust(path: &Path, _m: &Metadata, shared_ok: bool) -> Option<(String, Option<String>)> {
    let mut o = OpenOptions::new();
    // READ_CONTROL only; every sharing mode, so nothing is disturbed.
    o.access_mode(0x0002_0000)
        .share_mode(7)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT);
    let f = match o.open(path) {
        Ok(f) => f,
        Err(e) => return Some((format!("its owner and ACL cannot be read: {e}"), None)),
    };
    let (mut owner, mut dacl, mut sd) = (
        std::ptr::null_mut(),
        std::ptr::null_mut::<ffi::Acl>(),
        std::ptr::null_mut(),
    );
    // SAFETY: the handle is open with READ_CONTROL; the outputs point into
    // `sd`, which we free with LocalFree.
    let rc = unsafe {
        ffi::GetSecurityInfo(
            f.as_raw_handle(),
            ffi::SE_FILE_OBJECT,
            ffi::OWNER_SECURITY_INFORMATION | ffi::DACL_SECURITY_INFORMATION,
            &mut owner,
            std::ptr::null_mut(),
            &mut dacl,
            std::ptr::null_mut(),
            &mut sd,
        )
    };
    if rc != 0 {
        return Some((
            format!(
                "its owner and ACL cannot be read: {}",
                io::Error::from_raw_os_error(rc as i32)
            ),
            None,
        ));
    }
    let verdict = (|| {
        let owner_sid = sid_string(owner as *const u8);
        if !trusted_sid(&owner_sid) {
            return Some((
                format!("it is owned by {owner_sid} (not an administrator)"),
                None,
            ));
        }
        if dacl.is_null() {
            return Some((
                "it has no ACL: everyone may change it".to_string(),
                Some("give it an ACL (icacls)".into()),
            ));
        }
        // SAFETY: `dacl` is a valid ACL of `count` ACEs inside `sd`.
        unsafe {
            let count = (*dacl).count;
            let mut ace = (dacl as *const u8).add(std::mem::size_of::<ffi::Acl>());
            for _ in 0..count {
                let head = &*(ace as *const ffi::AceHeader);
                if head.kind == ffi::ACCESS_ALLOWED_ACE_TYPE
                    && head.flags & ffi::INHERIT_ONLY_ACE == 0
                {
                    let a = &*(ace as *const ffi::AccessAllowedAce);
                    let sid = sid_string((&a.sid_start as *const u32).cast());
                    let bad = REPLACE_RIGHTS | if shared_ok { 0 } else { ADD_RIGHTS };
                    if !trusted_sid(&sid) && a.mask & bad != 0 {
                        return Some((
                            format!("its ACL lets {sid} change it (rights {:#x})", a.mask),
                            Some(format!("icacls it /remove {sid}")),
                        ));
                    }
                }
                ace = ace.add(usize::from(head.size));
            }
        }
        None
    })();
    // SAFETY: `sd` was allocated by GetSecurityInfo for us.
    unsafe { ffi::LocalFree(sd) };
    verdict
}

/// Who owns a reparse point, for a refusal: None when it is trusted.
pub fn link_distrust(path: &Path, m: &Metadata) -> Option<String> {
    distrust(path, m, true).map(|(why, _)| format!("a link (reparse point) whose {why}"))
}
