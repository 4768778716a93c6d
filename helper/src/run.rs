//! Running a command from the manifest or a recipe: argv only (no shell of
//! ours), its own process group, a timeout with TERM then KILL, output
//! streamed line by line to stderr and the last lines kept for the error
//! message. What untrusted output fills is bounded: a line is cut at
//! `MAX_LINE` bytes, stdout is kept up to `MAX_STDOUT`, the tail is 20 lines.
//! A contained command (a recipe) also leaves nothing running behind it
//! (see `sandbox`) and can never gain privileges (no_new_privs). A recipe
//! (a build, or a PKGBUILD read with `--eval`) gets `BUILD_PATH`.

use crate::error::{Code, Error, Result};
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

/// Longest output line kept; the rest of a longer one is counted, not kept.
pub const MAX_LINE: usize = 4096;
/// How much of stdout is kept for the caller (version checks read it).
pub const MAX_STDOUT: usize = 64 * 1024;
const TAIL_LINES: usize = 20;

/// Split `r` into lines of at most `MAX_LINE` bytes (a longer line ends
/// with a note of what was cut) and hand each to `each`: memory stays
/// bounded whatever the command prints, with or without newlines.
fn read_lines(mut r: impl std::io::Read, mut each: impl FnMut(String)) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut line: Vec<u8> = Vec::new();
    let mut cut: u64 = 0;
    let emit = |line: &mut Vec<u8>, cut: &mut u64, each: &mut dyn FnMut(String)| {
        let mut s = String::from_utf8_lossy(line).into_owned();
        if *cut > 0 {
            s.push_str(&format!("… ({} more bytes on this line)", *cut));
        }
        line.clear();
        *cut = 0;
        each(s);
    };
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            let (part, rest, end) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (&chunk[..i], &chunk[i + 1..], true),
                None => (chunk, &chunk[chunk.len()..], false),
            };
            let room = MAX_LINE.saturating_sub(line.len()).min(part.len());
            line.extend_from_slice(&part[..room]);
            cut += (part.len() - room) as u64;
            if end {
                emit(&mut line, &mut cut, &mut each);
            }
            chunk = rest;
        }
    }
    if !line.is_empty() || cut > 0 {
        emit(&mut line, &mut cut, &mut each);
    }
}

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
    /// Recipe code: no_new_privs, and nothing it starts outlives it (every
    /// process of the build user is killed after it, or, not as root,
    /// every descendant of onramp).
    pub contain: bool,
    /// Not as root, with `isolate_net`: these directories are read-only to
    /// the command (a bind mount in its own mount namespace), where the
    /// kernel allows unprivileged user namespaces.
    pub read_only: Vec<std::path::PathBuf>,
}

/// A fresh private directory `onramp-TAG-PID-N` under the temp dir, mode
/// 0700, ours. Ones of ours left by a killed onramp (PID gone) are removed
/// first.
pub fn private_dir(tag: &str) -> Result<std::path::PathBuf> {
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
                crate::sys::set_path_mode(&p, 0o700)
                    .map_err(|e| Error::io("cannot chmod", &p, e))?;
                return Ok(p);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(e) => return Err(Error::io("cannot create a private directory", &p, e)),
        }
    }
}

/// Remove `PREFIX...-PID-N` directories of ours whose PID is gone.
fn sweep_stale(base: &Path, prefix: &str) {
    let me = crate::sys::my_uid();
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
            .map(crate::sys::process_alive)
            .unwrap_or(true);
        let ours = std::fs::symlink_metadata(e.path())
            .is_ok_and(|m| m.is_dir() && crate::sys::owner_of(&m) == me);
        if !alive && ours {
            crate::fsutil::remove_tree(e.path());
        }
    }
}

/// Run a manifest command: `argv` in `cwd` with exactly the environment
/// `env` (nothing else of ours); stream output when `echo` is set.
pub fn run(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
    timeout: Duration,
    echo: bool,
) -> Result<Outcome> {
    let spec = Spec {
        env: env.to_vec(),
        clear_env: true,
        timeout,
        echo,
        ..Spec::default()
    };
    run_spec(argv, cwd, &spec)
}

/// `run`, as a check: Ok when it exits 0 in time, else why not (for the
/// retries of health checks, extras' checks and services' ready checks).
pub fn check(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
    timeout: Duration,
    echo: bool,
) -> std::result::Result<(), String> {
    match run(argv, cwd, env, timeout, echo) {
        Ok(o) if o.ok() => Ok(()),
        Ok(o) => Err(o.describe()),
        Err(e) => Err(e.msg),
    }
}

/// Where `prog` is run from: a relative path with a slash is relative to
/// `cwd` (like a shell), anything else as given (PATH lookup).
pub fn program_path(prog: &str, cwd: &Path) -> std::path::PathBuf {
    if prog.contains('/') && !prog.starts_with('/') {
        cwd.join(prog)
    } else {
        prog.into()
    }
}

/// PATH given to builds (and used to probe commands).
pub const BUILD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A command on the build PATH (or an executable path).
pub fn on_build_path(c: &str) -> bool {
    if c.contains('/') {
        return is_exec(Path::new(c));
    }
    BUILD_PATH
        .split(':')
        .any(|d| is_exec(&Path::new(d).join(c)))
}

fn is_exec(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| crate::sys::is_executable(&m))
}

/// Run `argv` in `cwd` as `spec` says.
pub fn run_spec(argv: &[String], cwd: &Path, spec: &Spec) -> Result<Outcome> {
    let (timeout, echo) = (spec.timeout, spec.echo);
    let Some((prog, args)) = argv.split_first() else {
        return Err(Error::new(Code::Manifest, "empty command"));
    };
    let prog_path = program_path(prog, cwd);
    let mut cmd = Command::new(&prog_path);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    crate::sys::own_group(&mut cmd);
    if spec.clear_env {
        cmd.env_clear();
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let (user, contain) = (spec.user, spec.contain);
    if contain && user.is_none() {
        crate::sys::become_subreaper();
    }
    // If the helper is killed (even with SIGKILL), the command dies with it
    // instead of running on unsupervised; dropping to another user happens
    // after that, so the death signal stays armed (see `sys::confine`).
    let confine = crate::sys::Confine {
        user,
        isolate_net: spec.isolate_net,
        contain,
        read_only: spec.read_only.clone(),
    };
    crate::sys::confine(&mut cmd, &confine).map_err(|e| {
        Error::new(
            Code::Platform,
            format!("cannot run {} here: {e}", prog_path.display()),
        )
    })?;
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
    let tail = Arc::new(Mutex::new(std::collections::VecDeque::<String>::new()));
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
            read_lines(s, |line| {
                if echo {
                    crate::out::line(&format!("    | {line}"));
                }
                if let Some(f) = &sink {
                    f(&line);
                }
                if keep
                    && let Ok(mut b) = sb.lock()
                    && b.len() + line.len() < MAX_STDOUT
                {
                    b.push_str(&line);
                    b.push('\n');
                }
                if let Ok(mut t) = tail.lock() {
                    t.push_back(line);
                    if t.len() > TAIL_LINES {
                        t.pop_front();
                    }
                }
            });
        }));
    }
    let start = Instant::now();
    let group = crate::sys::Group::of(&child).map_err(|e| {
        Error::new(
            Code::Internal,
            format!("cannot group the processes of {prog}: {e}"),
        )
    })?;
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
            kill_group(&group, &mut child);
            let s = child
                .wait()
                .map_err(|e| Error::new(Code::Internal, format!("waiting for {prog}: {e}")))?;
            if interrupted {
                end_everything(&group, user, contain)?;
                return Err(Error::interrupted());
            }
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    end_everything(&group, user, contain)?;
    // A process of a command that is not contained (a server an extra
    // started) may still hold the pipes: stop waiting for them after a
    // moment rather than hang; the readers end when it does.
    let until = Instant::now() + Duration::from_secs(2);
    for r in readers {
        while !r.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        if r.is_finished() {
            let _ = r.join();
        }
    }
    let stdout = stdout_buf.lock().map(|b| b.clone()).unwrap_or_default();
    let tail: Vec<String> = tail
        .lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default();
    Ok(Outcome {
        code: status.code(),
        timed_out,
        stdout,
        tail,
    })
}

/// After the command: its process group is killed; a contained one also
/// loses every process of the build user (as root) or every descendant of
/// ours (not as root), wherever they moved (`setsid`, a double fork).
fn end_everything(
    group: &crate::sys::Group,
    user: Option<(u32, u32)>,
    contain: bool,
) -> Result<()> {
    group.kill();
    if !contain {
        return Ok(());
    }
    match user {
        Some((uid, gid)) => crate::sandbox::kill_uid(uid, gid),
        None => {
            crate::sandbox::kill_descendants();
            Ok(())
        }
    }
}

/// TERM the whole group, wait up to 3 s, then KILL.
fn kill_group(group: &crate::sys::Group, child: &mut std::process::Child) {
    group.terminate();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    group.kill();
}

// Unix only: they run sh and true.
#[cfg(all(test, unix))]
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
    fn output_is_bounded_whatever_is_printed() {
        let mut lines = Vec::new();
        let big = [b'x'; 3 * MAX_LINE].repeat(50);
        let input = [b"short\n".as_slice(), &big, b"\nlast"].concat();
        read_lines(&input[..], |l| lines.push(l));
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "short");
        assert!(lines[1].len() < MAX_LINE + 64, "{}", lines[1].len());
        assert!(lines[1].ends_with(&format!(
            "({} more bytes on this line)",
            big.len() - MAX_LINE
        )));
        assert_eq!(lines[2], "last");
        let argv: Vec<String> = [
            "sh",
            "-c",
            "head -c 3000000 /dev/zero | tr '\\0' x; echo; seq 1 100000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let o = run(&argv, Path::new("/"), &[], Duration::from_secs(30), false).unwrap();
        assert!(o.stdout.len() <= MAX_STDOUT, "{}", o.stdout.len());
        assert_eq!(o.tail.len(), TAIL_LINES);
        assert_eq!(o.tail.last().map(String::as_str), Some("100000"));
    }

    #[test]
    fn a_contained_command_leaves_nothing_running() {
        let marker = format!("onramp-contain-{}", std::process::id());
        let argv: Vec<String> = [
            "sh".to_string(),
            "-c".to_string(),
            format!(
                "setsid sh -c 'exec -a {marker} sleep 60' </dev/null >/dev/null 2>&1 & sleep 0.2"
            ),
        ]
        .to_vec();
        let spec = Spec {
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            clear_env: true,
            timeout: Duration::from_secs(20),
            contain: true,
            ..Spec::default()
        };
        // Not as root this kills our descendants; as root (no build user
        // here) the same path applies, since `user` is None.
        let o = run_spec(&argv, Path::new("/"), &spec).unwrap();
        assert!(o.ok());
        let alive = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .any(|c| String::from_utf8_lossy(&c).contains(&marker));
        assert!(!alive, "a process started with setsid survived");
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
