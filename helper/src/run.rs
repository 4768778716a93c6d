//! Running a command from the manifest: argv only (no shell of ours), its
//! own process group, a timeout with TERM then KILL, output streamed line by
//! line to stderr and the last lines kept for the error message.

use crate::error::{Code, Error, Result};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Outcome {
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub tail: Vec<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// "exit 3: last line" style summary for an error message.
    pub fn describe(&self) -> String {
        let how = if self.timed_out {
            "timed out".to_string()
        } else {
            match self.code {
                Some(c) => format!("exit {c}"),
                None => "killed by a signal".to_string(),
            }
        };
        match self.tail.last() {
            Some(l) => format!("{how}: {}", l.trim()),
            None => how,
        }
    }
}

/// Where each output line goes as it arrives (besides the kept tail).
pub type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// How to run a command beyond argv and cwd.
#[derive(Clone, Default)]
pub struct Spec {
    pub env: Vec<(String, String)>,
    /// Start from an empty environment (only `env` is set).
    pub clear_env: bool,
    /// Run as this uid/gid (no supplementary groups); needs root.
    pub user: Option<(u32, u32)>,
    pub timeout: Duration,
    /// Print each line to stderr, indented.
    pub echo: bool,
    pub sink: Option<LineSink>,
    /// A network namespace of its own: no network at all (as root; else a
    /// user namespace too, when the kernel allows it unprivileged).
    pub isolate_net: bool,
}

/// Mark every descriptor above stderr close-on-exec, so nothing inherited
/// by this process (`install.sh 7<secret`) reaches a child. The helper's own
/// files are opened close-on-exec by std; this covers what it was given.
pub fn seal_inherited_fds() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        if rc == 0 {
            return;
        }
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

/// Look up a user in /etc/passwd (no NSS: this binary is static).
fn passwd_user(name: &str) -> Option<(u32, u32)> {
    let s = std::fs::read_to_string("/etc/passwd").ok()?;
    s.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

/// Who runs recipe code: `nobody` when we are root, else ourselves (None).
pub fn build_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        Some(passwd_user("nobody").unwrap_or((65534, 65534)))
    } else {
        None
    }
}

/// A fresh private directory `onramp-TAG-PID-N` under the temp dir, mode
/// 0700, handed to `user`. Ones left by a killed onramp (PID gone) are
/// removed first.
pub fn private_dir(tag: &str, user: Option<(u32, u32)>) -> Result<std::path::PathBuf> {
    let base = std::env::temp_dir();
    sweep_stale(&base, &format!("onramp-{tag}-"));
    let mut n = 0u32;
    loop {
        let p = base.join(format!(
            "onramp-{tag}-{}-{}",
            std::process::id(),
            crate::fsutil::now_unix() % 100_000 + u64::from(n)
        ));
        match std::fs::create_dir(&p) {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| Error::io("cannot chmod", &p, e))?;
                chown_tree(&p, user)?;
                return Ok(p);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(Error::io("cannot create a private directory", &p, e)),
        }
    }
}

/// Remove `PREFIX...-PID-N` directories whose PID is gone.
fn sweep_stale(base: &Path, prefix: &str) {
    let Ok(rd) = std::fs::read_dir(base) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let mut parts = rest.rsplitn(3, '-');
        let (_, Some(pid)) = (parts.next(), parts.next()) else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .map(|p| Path::new(&format!("/proc/{p}")).exists())
            .unwrap_or(true);
        if !alive && e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Hand a whole tree to `user` (no-op for None).
pub fn chown_tree(p: &Path, user: Option<(u32, u32)>) -> Result<()> {
    let Some((uid, gid)) = user else {
        return Ok(());
    };
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
        .map_err(|e| Error::io("cannot chown", p, e))?;
    let m = std::fs::symlink_metadata(p).map_err(|e| Error::io("cannot stat", p, e))?;
    if m.is_dir() {
        for e in std::fs::read_dir(p).map_err(|e| Error::io("cannot read", p, e))? {
            let e = e.map_err(|e| Error::io("cannot read", p, e))?;
            chown_tree(&e.path(), user)?;
        }
    }
    Ok(())
}

/// Run `argv` in `cwd` with extra `env`; stream output when `echo` is set.
pub fn run(
    argv: &[String],
    cwd: &Path,
    env: &[(&str, String)],
    timeout: Duration,
    echo: bool,
) -> Result<Outcome> {
    let spec = Spec {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        timeout,
        echo,
        ..Spec::default()
    };
    run_spec(argv, cwd, &spec)
}

/// Run `argv` in `cwd` as `spec` says.
pub fn run_spec(argv: &[String], cwd: &Path, spec: &Spec) -> Result<Outcome> {
    let (timeout, echo) = (spec.timeout, spec.echo);
    let Some((prog, args)) = argv.split_first() else {
        return Err(Error::new(Code::Manifest, "empty command"));
    };
    // A relative program path with a slash is relative to cwd (like a shell).
    let prog_path = if prog.contains('/') && !prog.starts_with('/') {
        cwd.join(prog)
    } else {
        prog.into()
    };
    let mut cmd = Command::new(&prog_path);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if spec.clear_env {
        cmd.env_clear();
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let user = spec.user;
    let isolate_net = spec.isolate_net;
    // If the helper is killed (even with SIGKILL), the command dies with it
    // instead of running on unsupervised. Dropping to another user happens
    // after that, so the death signal stays armed.
    // SAFETY: prctl, setgroups, setgid and setuid are async-signal-safe and
    // touch no memory of ours.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if isolate_net {
                let flags = if libc::geteuid() == 0 {
                    libc::CLONE_NEWNET
                } else {
                    libc::CLONE_NEWUSER | libc::CLONE_NEWNET
                };
                // Unprivileged user namespaces may be disabled: then the
                // recipe keeps the network (documented), it still runs as us.
                if libc::unshare(flags) != 0 && libc::geteuid() == 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some((uid, gid)) = user {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        Error::new(
            Code::Internal,
            format!(
                "cannot run {} (in {}): {e}",
                prog_path.display(),
                cwd.display()
            ),
        )
    })?;
    let stdout_buf = Arc::new(Mutex::new(String::new()));
    let tail = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut readers = Vec::new();
    for (stream, keep) in [
        (
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            true,
        ),
        (
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            false,
        ),
    ] {
        let Some(s) = stream else { continue };
        let tail = Arc::clone(&tail);
        let sb = Arc::clone(&stdout_buf);
        let sink = spec.sink.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(s).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line).into_owned();
                if echo {
                    crate::out::line(&format!("    | {line}"));
                }
                if let Some(f) = &sink {
                    f(&line);
                }
                if keep && let Ok(mut b) = sb.lock() {
                    b.push_str(&line);
                    b.push('\n');
                }
                if let Ok(mut t) = tail.lock() {
                    t.push(line);
                    if t.len() > 20 {
                        t.remove(0);
                    }
                }
            }
        }));
    }
    let start = Instant::now();
    let pgid = child.id() as libc::pid_t;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => {
                return Err(Error::new(
                    Code::Internal,
                    format!("waiting for {prog}: {e}"),
                ));
            }
        }
        let interrupted = crate::signal::interrupted();
        if start.elapsed() >= timeout || interrupted {
            timed_out = !interrupted;
            kill_group(pgid, &mut child);
            let s = child
                .wait()
                .map_err(|e| Error::new(Code::Internal, format!("waiting for {prog}: {e}")))?;
            if interrupted {
                return Err(Error::interrupted());
            }
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The group may have left children holding the pipes; end them too.
    // SAFETY: signalling our own child's process group.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    for r in readers {
        let _ = r.join();
    }
    let stdout = stdout_buf.lock().map(|b| b.clone()).unwrap_or_default();
    let tail = tail.lock().map(|t| t.clone()).unwrap_or_default();
    Ok(Outcome {
        code: status.code(),
        timed_out,
        stdout,
        tail,
    })
}

/// TERM the whole group, wait up to 3 s, then KILL.
fn kill_group(pgid: libc::pid_t, child: &mut std::process::Child) {
    // SAFETY: signalling the process group we created.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_kills_the_group() {
        let argv: Vec<String> = ["sh", "-c", "sleep 30 & sleep 30"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let t = Instant::now();
        let o = run(
            &argv,
            Path::new("/"),
            &[],
            Duration::from_millis(300),
            false,
        )
        .unwrap();
        assert!(o.timed_out);
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn captures_stdout_and_exit_code() {
        let argv: Vec<String> = ["sh", "-c", "echo hello; echo oops >&2; exit 3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = run(&argv, Path::new("/"), &[], Duration::from_secs(10), false).unwrap();
        assert_eq!(o.code, Some(3));
        assert_eq!(o.stdout, "hello\n");
        assert!(o.describe().starts_with("exit 3"));
    }
}
