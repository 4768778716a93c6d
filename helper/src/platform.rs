//! What machine this is: OS, CPU architecture, GPU, and the target name
//! (`linux-x86_64`) that manifests key their artifacts by; and everything
//! that differs between Unix and Windows (replacing a file, making a
//! directory durable, the default homes, ending a command's processes),
//! each item once per platform under the same name.

/// The target this helper runs on, e.g. `linux-x86_64`.
pub fn target() -> String {
    format!("{}-{}", os(), arch())
}

pub fn os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "macos",
        "windows" => "windows",
        other => other,
    }
}

pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        "arm" => "armv7",
        "x86" => "i686",
        other => other,
    }
}

/// Every target name a manifest may use, plus `any`.
pub const KNOWN_TARGETS: &[&str] = &[
    "any",
    "linux-x86_64",
    "linux-aarch64",
    "linux-armv7",
    "linux-i686",
    "macos-x86_64",
    "macos-aarch64",
    "windows-x86_64",
    "windows-aarch64",
];

// What differs between Unix and Windows lives below, and only here: each
// item exists once for `cfg(unix)` and once, by the same name, for
// `cfg(windows)` (tests/windows.bats checks the pairs). The Windows halves
// use std alone, but for the few kernel32 calls a Job Object needs; they
// are compiled on Windows only (README, Windows, says how).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// Put `from` in place of `to` in one step: a reader sees the old file or
/// the new one, never a mix.
#[cfg(unix)]
pub fn replace_file(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)
}

/// Put `from` in place of `to` in one step (std's rename is MoveFileExW
/// with MOVEFILE_REPLACE_EXISTING). While another process holds a handle
/// on either file without FILE_SHARE_DELETE (an antivirus scanning the new
/// file, the search indexer), it fails with ERROR_ACCESS_DENIED (5) or
/// ERROR_SHARING_VIOLATION (32): try again for about 2.5 s before failing.
#[cfg(windows)]
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

/// Make the entries of `dir` (a file just renamed into it) durable.
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// NTFS journals directory entries itself, and std cannot open a directory
/// as a file (that needs FILE_FLAG_BACKUP_SEMANTICS): nothing to do.
#[cfg(windows)]
pub fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// The user's home directory: `$HOME`.
#[cfg(unix)]
pub fn home_dir() -> Option<std::ffi::OsString> {
    std::env::var_os("HOME").filter(|h| !h.is_empty())
}

/// The user's home directory: `%USERPROFILE%` (Windows sets no HOME).
#[cfg(windows)]
pub fn home_dir() -> Option<std::ffi::OsString> {
    std::env::var_os("USERPROFILE").filter(|h| !h.is_empty())
}

/// Where onramp keeps its `kind` ("cache" or "state") when no variable
/// names a place: `~/<unix_rel>` (`.cache/onramp`, `.local/state/onramp`).
#[cfg(unix)]
pub fn default_home(unix_rel: &str, _kind: &str) -> Option<PathBuf> {
    home_dir().map(|h| PathBuf::from(h).join(unix_rel))
}

/// Where onramp keeps its `kind` on Windows: `%LOCALAPPDATA%\onramp\<kind>`
/// (private to the user; install.ps1 keeps the helper in `cache\bin`).
#[cfg(windows)]
pub fn default_home(_unix_rel: &str, kind: &str) -> Option<PathBuf> {
    std::env::var_os("LOCALAPPDATA")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join("onramp").join(kind))
}

/// Start `cmd` in a process group of its own, so that it and everything
/// it starts can be ended together (Group).
#[cfg(unix)]
pub fn own_group(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
}

/// Start `cmd` in a console process group of its own: a Ctrl-C meant for
/// the installer is not delivered to it twice. Group puts it in a Job.
#[cfg(windows)]
pub fn own_group(cmd: &mut Command) {
    use std::os::windows::process::CommandExt;
    const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
    cmd.creation_flags(CREATE_NEW_PROCESS_GROUP);
}

/// The processes a command started (its process group), ended as one.
#[cfg(unix)]
pub struct Group {
    pgid: libc::pid_t,
}

#[cfg(unix)]
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

/// The processes a command started, in a Job Object that ends them all
/// when it is terminated or closed (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE:
/// also when the helper itself dies). A process the command starts
/// before it is assigned to the Job escapes it: the window is the few
/// microseconds between spawn and `Group::of`.
#[cfg(windows)]
pub struct Group {
    job: win::Handle,
}

#[cfg(windows)]
impl Group {
    /// A new Job holding `child`.
    pub fn of(child: &Child) -> io::Result<Group> {
        use std::os::windows::io::AsRawHandle;
        // SAFETY: no security attributes, no name: a new anonymous Job.
        let job =
            win::Handle(unsafe { win::CreateJobObjectW(std::ptr::null_mut(), std::ptr::null()) });
        if job.0.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: an all-zero JOBOBJECT_EXTENDED_LIMIT_INFORMATION is valid
        // (integers only): no limits.
        let mut info: win::JobExtendedLimits = unsafe { std::mem::zeroed() };
        info.basic.limit_flags = win::JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: `info` is a JOBOBJECT_EXTENDED_LIMIT_INFORMATION (class 9)
        // of the size passed; `job` is the handle just created.
        let ok = unsafe {
            win::SetInformationJobObject(
                job.0,
                win::JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS,
                (&mut info as *mut win::JobExtendedLimits).cast(),
                std::mem::size_of::<win::JobExtendedLimits>() as u32,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the child's process handle stays open while `child` lives.
        if unsafe { win::AssignProcessToJobObject(job.0, child.as_raw_handle()) } == 0 {
            return Err(io::Error::last_os_error());
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
        unsafe { win::TerminateJobObject(self.job.0, 1) };
    }
}

/// The kernel32 calls and structures a Job Object needs (std has none).
/// Layouts as in winnt.h, for 64-bit and 32-bit Windows alike.
#[cfg(windows)]
mod win {
    use std::ffi::c_void;

    pub const JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: u32 = 0x0000_2000;
    /// JobObjectExtendedLimitInformation.
    pub const JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS: i32 = 9;

    /// JOBOBJECT_BASIC_LIMIT_INFORMATION.
    #[repr(C)]
    pub struct JobBasicLimits {
        pub per_process_user_time_limit: i64,
        pub per_job_user_time_limit: i64,
        pub limit_flags: u32,
        pub minimum_working_set_size: usize,
        pub maximum_working_set_size: usize,
        pub active_process_limit: u32,
        pub affinity: usize,
        pub priority_class: u32,
        pub scheduling_class: u32,
    }

    /// IO_COUNTERS.
    #[repr(C)]
    pub struct IoCounters {
        pub counts: [u64; 6],
    }

    /// JOBOBJECT_EXTENDED_LIMIT_INFORMATION.
    #[repr(C)]
    pub struct JobExtendedLimits {
        pub basic: JobBasicLimits,
        pub io_info: IoCounters,
        pub process_memory_limit: usize,
        pub job_memory_limit: usize,
        pub peak_process_memory_used: usize,
        pub peak_job_memory_used: usize,
    }

    /// A handle closed when dropped.
    pub struct Handle(pub *mut c_void);

    impl Drop for Handle {
        fn drop(&mut self) {
            if !self.0.is_null() {
                // SAFETY: the handle is ours and closed once.
                unsafe { CloseHandle(self.0) };
            }
        }
    }

    #[link(name = "kernel32")]
    unsafe extern "system" {
        pub fn CreateJobObjectW(attributes: *mut c_void, name: *const u16) -> *mut c_void;
        pub fn SetInformationJobObject(
            job: *mut c_void,
            class: i32,
            info: *mut c_void,
            len: u32,
        ) -> i32;
        pub fn AssignProcessToJobObject(job: *mut c_void, process: *mut c_void) -> i32;
        pub fn TerminateJobObject(job: *mut c_void, exit_code: u32) -> i32;
        pub fn CloseHandle(handle: *mut c_void) -> i32;
    }
}

/// Leave the caller: the process forks, the parent exits 0 at once, and
/// the child goes on in a session of its own (so a kill of the installer's
/// process group does not take it along) with stdin, stdout and stderr on
/// /dev/null (so `$(onramp progress-serve ...)` returns). Call it before
/// any thread is started.
#[cfg(unix)]
pub fn detach() -> io::Result<()> {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: no other thread exists yet, so the child may go on running
    // Rust code after fork.
    match unsafe { libc::fork() } {
        -1 => return Err(io::Error::last_os_error()),
        0 => {}
        // SAFETY: the parent leaves without running destructors or atexit
        // handlers that belong to the child now.
        _ => unsafe { libc::_exit(0) },
    }
    // SAFETY: setsid and dup2 on descriptors we own.
    unsafe {
        libc::setsid();
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            libc::close(null);
        }
    }
    Ok(())
}

/// Windows has no fork: install.ps1 starts `onramp progress-serve
/// --foreground` with Start-Process instead.
#[cfg(windows)]
pub fn detach() -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "run progress-serve with --foreground (Start-Process) on Windows",
    ))
}

/// `n` bytes from the kernel's random source (tokens).
#[cfg(unix)]
pub fn random_bytes(n: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// `n` bytes from the system's preferred random generator (tokens).
#[cfg(windows)]
pub fn random_bytes(n: usize) -> io::Result<Vec<u8>> {
    const BCRYPT_USE_SYSTEM_PREFERRED_RNG: u32 = 2;
    #[link(name = "bcrypt")]
    unsafe extern "system" {
        fn BCryptGenRandom(alg: *mut std::ffi::c_void, buf: *mut u8, len: u32, flags: u32) -> i32;
    }
    let mut b = vec![0u8; n];
    // SAFETY: `b` is `n` writable bytes; no algorithm handle is needed with
    // BCRYPT_USE_SYSTEM_PREFERRED_RNG.
    let status = unsafe {
        BCryptGenRandom(
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
