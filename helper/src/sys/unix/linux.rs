//! What only Linux has: /proc, close_range, posix_fallocate, reflinks,
//! writeback hints, the parent-death signal, no_new_privs, namespaces and
//! the child subreaper.

use super::super::Confine;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// When `pid` started (clock ticks since boot), None when it is gone or a
/// zombie: a pid and its start identify one process across pid reuse.
pub fn process_start(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22; the command name (field 2) may hold spaces, so split after ')'.
    let mut fields = s.rsplit_once(')')?.1.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// The parent of `pid` (field 4 of /proc/PID/stat), None when it is gone.
pub fn parent_pid(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Who listens on TCP `port`: the LISTEN sockets of /proc/net/tcp and tcp6
/// (this network namespace's), then the processes whose descriptors are
/// one of those sockets (/proc/PID/fd, readable for our own processes, and
/// for all as root).
pub fn listening_on(port: u16) -> io::Result<super::super::Listening> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(t) => t,
            // No IPv6 in this kernel: no tcp6 table.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        inodes.extend(listen_inodes(&text, port));
    }
    let mut l = super::super::Listening {
        sockets: inodes.len(),
        holders: Vec::new(),
    };
    if inodes.is_empty() {
        return Ok(l);
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for e in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|t| wanted.iter().any(|w| t.as_os_str() == w.as_str()))
        });
        if holds {
            let name = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            l.holders.push((pid, name.trim().to_string()));
        }
    }
    Ok(l)
}

/// The inodes of the sockets listening on `port` in one /proc/net/tcp*
/// table (state 0A; the local address's port is hex after the colon).
fn listen_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = f.get(1)?;
            let p = u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()?;
            (p == port && *f.get(3)? == "0A")
                .then(|| f.get(9)?.parse().ok())
                .flatten()
        })
        .collect()
}

/// Mark every descriptor above stderr close-on-exec in one call (false
/// on kernels before 5.11).
pub(super) fn cloexec_range() -> bool {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) == 0
    }
}

/// Reserve `size` bytes for `f` (the file grows to `size`), so a full
/// disk shows now and not at 90 %.
pub fn preallocate(f: &File, size: u64) -> io::Result<()> {
    // SAFETY: posix_fallocate on our own open descriptor.
    match unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, size as libc::off_t) } {
        0 => Ok(()),
        rc => Err(io::Error::from_raw_os_error(rc)),
    }
}

/// Ask the kernel to begin writeback of a range; a hint only.
pub fn start_writeback(f: &File, off: u64, len: u64) {
    // SAFETY: a hint on our own descriptor; failure is harmless.
    unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            off as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Give `to` the same bytes as `from` without copying them (a reflink, on
/// filesystems that share extents: btrfs, XFS). False where unsupported.
pub fn reflink(from: &File, to: &File) -> bool {
    // _IOW(0x94, 9, int): the same on x86, x86_64, arm and aarch64.
    const FICLONE: libc::c_ulong = 0x4004_9409;
    // SAFETY: an ioctl between two descriptors we own.
    unsafe { libc::ioctl(to.as_raw_fd(), FICLONE as _, from.as_raw_fd()) == 0 }
}

/// Not as root: make this process the reaper of every orphan its children
/// leave, so they stay findable as its descendants.
pub fn become_subreaper() {
    // SAFETY: a process attribute of our own.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
}

/// The mount flags of the filesystem of `p` that a remount in a user
/// namespace must keep (the kernel locks them), for `read_only`.
fn locked_flags(p: &Path) -> libc::c_ulong {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return 0;
    };
    // SAFETY: statvfs fills the struct we pass.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return 0;
    }
    let f = s.f_flag;
    let mut out: libc::c_ulong = 0;
    for (st, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st != 0 {
            out |= ms;
        }
    }
    out
}

/// Arrange, between fork and exec, what `c` asks: the parent-death signal
/// (if the helper is killed, even with SIGKILL, the command dies with it),
/// nothing inherited above stderr, no_new_privs for recipe code, a network
/// namespace (and, not as root, a user and mount namespace with
/// `read_only` bind-mounted read-only), and the build user.
pub fn confine(cmd: &mut Command, c: &Confine) -> io::Result<()> {
    let (user, isolate_net, contain) = (c.user, c.isolate_net, c.contain);
    // Prepared before the fork: pre_exec may not allocate.
    let read_only: Vec<(std::ffi::CString, libc::c_ulong)> = c
        .read_only
        .iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| {
            let s = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).ok()?;
            Some((s, locked_flags(p)))
        })
        .collect();
    // SAFETY: prctl, unshare, mount, setgroups, setgid and setuid are
    // async-signal-safe and touch no memory of ours but `read_only`.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if contain {
                // No setuid binary gives recipe code more than it has.
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            }
            if isolate_net {
                let root = libc::geteuid() == 0;
                let flags = if root {
                    libc::CLONE_NEWNET
                } else {
                    libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::CLONE_NEWNS
                };
                // Unprivileged user namespaces may be disabled: then the
                // recipe keeps the network (documented), it still runs as us.
                let ok = libc::unshare(flags) == 0;
                if !ok && root {
                    return Err(io::Error::last_os_error());
                }
                if ok && !root && !read_only.is_empty() {
                    // Our own copy of the mount table, changes kept to it.
                    libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    );
                    for (p, keep) in &read_only {
                        if libc::mount(
                            p.as_ptr(),
                            p.as_ptr(),
                            std::ptr::null(),
                            libc::MS_BIND | libc::MS_REC,
                            std::ptr::null(),
                        ) == 0
                        {
                            libc::mount(
                                std::ptr::null(),
                                p.as_ptr(),
                                std::ptr::null(),
                                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | keep,
                                std::ptr::null(),
                            );
                        }
                    }
                }
            }
            if let Some((uid, gid)) = user {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            }
            Ok(())
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn listening_sockets_are_read_from_the_tcp_table() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0 20 4 30 10 -1
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0 100 0 0 10 0
";
        assert_eq!(super::listen_inodes(t, 8080), vec![4242]);
        assert_eq!(super::listen_inodes(t, 80), vec![77]);
        assert!(super::listen_inodes(t, 81).is_empty());
    }

    #[test]
    fn a_listener_of_ours_is_found_with_its_name() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = super::listening_on(port).unwrap();
        assert_eq!(got.sockets, 1);
        assert!(
            got.holders.iter().any(|(p, _)| *p == std::process::id()),
            "{got:?}"
        );
        assert_eq!(
            super::parent_pid(std::process::id()),
            Some(std::os::unix::process::parent_id())
        );
        drop(l);
        assert_eq!(super::listening_on(port).unwrap().sockets, 0);
    }
}
