//! Services: a component's long-running process (an inference server),
//! started after configure and ready before the health checks run.
//!
//! Two managers. With `systemctl --user` working (not as root), a user unit
//! `onramp-STACK-ID.service` (Restart=on-failure, enabled for the next
//! login). Otherwise onramp's own supervisor: the helper re-executed as
//! `onramp supervise`, in a session of its own, detached, restarting the
//! command when it exits (backing off, giving up after 5 exits in a
//! minute), with a pid file (pid and process start time, so a reused pid is
//! never signalled) and a log under the install's state directory.
//! `ONRAMP_SERVICE_MANAGER=pidfile|systemd` chooses one.

use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::manifest::Service;
use crate::state::Record;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Systemd,
    Pidfile,
}

impl Manager {
    pub fn name(self) -> &'static str {
        match self {
            Manager::Systemd => "systemd",
            Manager::Pidfile => "pidfile",
        }
    }
}

/// Which manager this machine gets.
pub fn manager() -> Result<Manager> {
    match std::env::var("ONRAMP_SERVICE_MANAGER").ok().as_deref() {
        Some("systemd") => return Ok(Manager::Systemd),
        Some("pidfile") => return Ok(Manager::Pidfile),
        None | Some("") => {}
        Some(o) => {
            return err(
                Code::Usage,
                format!("ONRAMP_SERVICE_MANAGER={o:?}: use systemd or pidfile"),
            );
        }
    }
    if crate::sys::is_admin() {
        return Ok(Manager::Pidfile);
    }
    Ok(if systemctl(&["show-environment"]).is_ok() {
        Manager::Systemd
    } else {
        Manager::Pidfile
    })
}

fn systemctl(args: &[&str]) -> std::result::Result<String, String> {
    let mut argv = vec!["systemctl".to_string(), "--user".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let env: Vec<(String, String)> = [
        "PATH",
        "HOME",
        "XDG_RUNTIME_DIR",
        "DBUS_SESSION_BUS_ADDRESS",
    ]
    .iter()
    .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
    .collect();
    let o = crate::run::run(&argv, Path::new("/"), &env, Duration::from_secs(20), false)
        .map_err(|e| e.msg)?;
    if o.ok() {
        Ok(o.stdout)
    } else {
        Err(o.describe())
    }
}

/// Where one service's pid file and log live.
pub fn paths(state_dir: &Path, id: &str) -> (PathBuf, PathBuf) {
    let d = state_dir.join("services");
    (d.join(format!("{id}.pid")), d.join(format!("{id}.log")))
}

/// The unit name of a component's service.
pub fn unit_name(stack: &str, id: &str) -> String {
    let s: String = stack
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("onramp-{s}-{id}.service")
}

/// What a service runs, to compare across runs: its definition and the
/// fingerprints of what it runs (the component's, the config files').
pub fn fingerprint(svc: &Service, parts: &[String]) -> String {
    let mut s = serde_json::to_string(svc).unwrap_or_default();
    for p in parts {
        s.push('\0');
        s.push_str(p);
    }
    fsutil::sha256_bytes(s.as_bytes())[..16].to_string()
}

/// Whether the service a record names is running now.
pub fn running(r: &Record) -> bool {
    match r.manager.as_str() {
        "systemd" => systemctl(&["is-active", "--quiet", &r.handle]).is_ok(),
        _ => pid_alive(Path::new(&r.handle)).is_some(),
    }
}

/// The process at the root of a running service: the supervisor's pid, or
/// the unit's main pid under systemd. None when it is not running or
/// cannot be told.
pub fn root_pid(r: &Record) -> Option<u32> {
    match r.manager.as_str() {
        "systemd" => systemctl(&["show", "-p", "MainPID", "--value", &r.handle])
            .ok()?
            .trim()
            .parse()
            .ok()
            .filter(|p| *p > 1),
        _ => pid_alive(Path::new(&r.handle)),
    }
}

/// Who holds a service's port.
#[derive(Debug, PartialEq, Eq)]
pub enum Holder {
    /// Nothing listens on it.
    Free,
    /// The service (its root process or one it started) listens.
    Ours,
    /// Another process listens: named as well as it can be seen.
    Theirs(String),
    /// This OS does not say who holds a port, or the service's root process
    /// cannot be found: the port answering is all that is known.
    Unknown,
}

/// Who listens on `port` (see `sys::listening_on`): ours when a holder is
/// `root` or descends from it, theirs when someone else holds it.
pub fn port_holder(port: u16, root: Option<u32>) -> Holder {
    let Ok(l) = crate::sys::listening_on(port) else {
        return Holder::Unknown;
    };
    if l.sockets == 0 {
        return Holder::Free;
    }
    let ours = |mut pid: u32| {
        // Up the parents from the holder; a bounded walk (pids can be reused
        // while it walks).
        for _ in 0..64 {
            if Some(pid) == root {
                return true;
            }
            match crate::sys::parent_pid(pid) {
                Some(p) if p > 1 && p != pid => pid = p,
                _ => return false,
            }
        }
        false
    };
    if l.holders.iter().any(|(pid, _)| ours(*pid)) {
        return Holder::Ours;
    }
    match (l.holders.first(), root) {
        (Some((pid, name)), _) => {
            Holder::Theirs(format!("pid {pid} ({})", crate::out::clean(name)))
        }
        // A socket no visible process holds: another user's, when we are
        // not root; with no root pid to compare, nothing is known.
        (None, Some(_)) => Holder::Theirs("a process of another user".into()),
        (None, None) if crate::sys::is_admin() => Holder::Unknown,
        (None, None) => Holder::Theirs("a process of another user".into()),
    }
}

/// The supervisor's pid when the pid file names a live process that is
/// still the one it recorded (same start time).
fn pid_alive(pidfile: &Path) -> Option<u32> {
    let s = std::fs::read_to_string(pidfile).ok()?;
    let mut w = s.split_whitespace();
    let pid: u32 = w.next()?.parse().ok()?;
    let start: u64 = w.next()?.parse().ok()?;
    (pid > 1 && crate::state::process_start(pid) == Some(start)).then_some(pid)
}

/// How to start one service.
pub struct Start<'a> {
    pub stack: &'a str,
    pub id: &'a str,
    pub svc: &'a Service,
    pub prefix: &'a Path,
    pub state_dir: &'a Path,
    pub env: &'a [(String, String)],
    pub fingerprint: String,
}

/// Start (or restart) it; returns its record.
pub fn start(s: &Start, m: Manager) -> Result<Record> {
    match m {
        Manager::Systemd => start_unit(s),
        Manager::Pidfile => start_supervised(s),
    }
}

/// A relative program with a slash is relative to the prefix.
fn program(argv: &[String], cwd: &Path) -> Result<(PathBuf, Vec<String>)> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| Error::new(Code::Manifest, "a service needs a command"))?;
    Ok((crate::run::program_path(prog, cwd), args.to_vec()))
}

fn start_supervised(s: &Start) -> Result<Record> {
    let (pidfile, log) = paths(s.state_dir, s.id);
    if let Some(p) = log.parent() {
        fsutil::mkdirs(p)?;
    }
    stop_pidfile(&pidfile, stop_timeout(s.svc))?;
    let exe = std::env::current_exe().map_err(|e| {
        Error::new(
            Code::Internal,
            format!("cannot find the helper itself: {e}"),
        )
    })?;
    let out = crate::sys::open_no_follow(
        crate::sys::create_mode(std::fs::OpenOptions::new().create(true).append(true), 0o600),
        &log,
    )
    .map_err(|e| Error::io("cannot open the service log", &log, e))?;
    let err_out = out
        .try_clone()
        .map_err(|e| Error::io("cannot open the service log", &log, e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("supervise")
        .arg(stop_timeout(s.svc).as_secs().to_string())
        .arg("--")
        .args(&s.svc.command)
        .current_dir(s.prefix)
        .env_clear()
        .envs(s.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err_out);
    // A session of its own, so the installer's Ctrl-C or its end does not
    // reach the service.
    crate::sys::detached(&mut cmd);
    let child = cmd.spawn().map_err(|e| {
        Error::new(
            Code::Internal,
            format!("cannot start service {}: {e}", s.id),
        )
    })?;
    let pid = child.id();
    let started = crate::state::process_start(pid).unwrap_or(0);
    fsutil::write_atomic(&pidfile, format!("{pid} {started}\n").as_bytes(), 0o600)?;
    Ok(Record {
        manager: Manager::Pidfile.name().into(),
        handle: pidfile.display().to_string(),
        fingerprint: s.fingerprint.clone(),
        created: Vec::new(),
    })
}

fn stop_timeout(svc: &Service) -> Duration {
    Duration::from_secs(svc.stop_timeout_s.unwrap_or(10))
}

/// systemd's quoting of one ExecStart word: double quotes, with `\`, `"`,
/// `$` and `%` escaped.
fn unit_word(w: &str) -> String {
    let mut o = String::from("\"");
    for c in w.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '$' => o.push_str("$$"),
            '%' => o.push_str("%%"),
            '\n' | '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn unit_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".config"),
            None => return err(Code::Internal, "no HOME for the systemd user unit"),
        },
    };
    Ok(base.join("systemd/user"))
}

fn start_unit(s: &Start) -> Result<Record> {
    let unit = unit_name(s.stack, s.id);
    let (prog, args) = program(&s.svc.command, s.prefix)?;
    let mut exec = unit_word(&prog.to_string_lossy());
    for a in &args {
        exec.push(' ');
        exec.push_str(&unit_word(a));
    }
    let mut text = format!(
        "# Written by onramp for {} ({}); onramp rewrites it.\n[Unit]\nDescription=onramp: {} {}\n\n[Service]\nWorkingDirectory={}\nExecStart={exec}\nRestart=on-failure\nRestartSec=2\nTimeoutStopSec={}\n",
        s.stack,
        s.id,
        s.stack,
        s.id,
        unit_word(&s.prefix.to_string_lossy()),
        stop_timeout(s.svc).as_secs()
    );
    for (k, v) in s.env {
        text.push_str(&format!("Environment={}\n", unit_word(&format!("{k}={v}"))));
    }
    text.push_str("\n[Install]\nWantedBy=default.target\n");
    let dir = unit_dir()?;
    let created = fsutil::missing_dirs(&dir)
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    fsutil::mkdirs(&dir)?;
    fsutil::write_atomic(&dir.join(&unit), text.as_bytes(), 0o644)?;
    for args in [
        vec!["daemon-reload"],
        vec!["enable", unit.as_str()],
        vec!["restart", unit.as_str()],
    ] {
        systemctl(&args).map_err(|why| {
            Error::new(
                Code::Internal,
                format!("systemctl --user {}: {why}", args.join(" ")),
            )
        })?;
    }
    Ok(Record {
        manager: Manager::Systemd.name().into(),
        handle: unit,
        fingerprint: s.fingerprint.clone(),
        created,
    })
}

/// Stop what a record names (nothing when it is not running).
pub fn stop(r: &Record, timeout: Duration) -> Result<()> {
    match r.manager.as_str() {
        "systemd" => systemctl(&["stop", &r.handle]).map(|_| ()).map_err(|why| {
            Error::new(
                Code::Internal,
                format!("systemctl --user stop {}: {why}", r.handle),
            )
        }),
        _ => stop_pidfile(Path::new(&r.handle), timeout),
    }
}

/// Stop it and take away what starts it again: a systemd unit is disabled
/// and its file removed (then systemd reloads); a supervisor's pid file goes
/// with the stop. What an uninstall does with each service.
pub fn remove(r: &Record, timeout: Duration) -> Result<()> {
    stop(r, timeout)?;
    if r.manager != Manager::Systemd.name() {
        return Ok(());
    }
    let unit = unit_dir()?.join(&r.handle);
    // Disabling an already-disabled (or unknown) unit is not an error here.
    let _ = systemctl(&["disable", &r.handle]);
    match std::fs::remove_file(&unit) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("cannot remove unit", &unit, e)),
    }
    systemctl(&["daemon-reload"]).map_err(|why| {
        Error::new(
            Code::Internal,
            format!("systemctl --user daemon-reload: {why}"),
        )
    })?;
    for d in r.created.iter().rev() {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
    }
    Ok(())
}

/// TERM to the supervisor (it stops its process group, waiting `timeout`),
/// then KILL to whatever of that group is still there.
fn stop_pidfile(pidfile: &Path, timeout: Duration) -> Result<()> {
    let Some(pid) = pid_alive(pidfile) else {
        fsutil::remove(pidfile);
        return Ok(());
    };
    crate::sys::stop_process(pid);
    let deadline = Instant::now() + timeout + Duration::from_secs(2);
    while Instant::now() < deadline && pid_alive(pidfile).is_some() {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Whatever is left in its process group (the supervisor, when it did
    // not stop in time; a grandchild the command left behind) is killed.
    crate::sys::kill_tree_of(pid);
    fsutil::remove(pidfile);
    Ok(())
}

/// The last lines of a service's log, for an error message.
pub fn log_tail(log: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(log) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(2048)));
    let mut buf = Vec::new();
    let _ = f.take(2048).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    let joined: Vec<&str> = lines.into_iter().rev().collect();
    crate::out::clean(&joined.join(" | ")).into_owned()
}

/// `onramp supervise SECS -- ARGV...`: run ARGV, restart it when it exits
/// (1 s, 2 s, ... up to 30 s apart; after 5 exits within a minute, give
/// up), and on SIGTERM/SIGINT stop it (TERM, then KILL after SECS) and exit.
pub fn supervise_main(rest: &[String]) -> Result<i32> {
    let (Some(secs), Some("--")) = (rest.first(), rest.get(1).map(String::as_str)) else {
        return err(Code::Usage, "usage: onramp supervise SECS -- COMMAND...");
    };
    let timeout = Duration::from_secs(
        secs.parse()
            .map_err(|_| Error::new(Code::Usage, format!("supervise: {secs:?} is not seconds")))?,
    );
    let argv = &rest[2..];
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let (prog, args) = program(argv, &cwd)?;
    let say =
        |m: &str| crate::out::line(&format!("onramp supervise: {} {m}", fsutil::now_rfc3339()));
    let mut exits: Vec<Instant> = Vec::new();
    loop {
        let mut child = match Command::new(&prog).args(&args).stdin(Stdio::null()).spawn() {
            Ok(c) => c,
            Err(e) => {
                say(&format!("cannot start {}: {e}", prog.display()));
                return Ok(1);
            }
        };
        say(&format!("started {} (pid {})", argv.join(" "), child.id()));
        // On Windows the command goes into a Job that closes with this
        // supervisor, so a stop (TerminateProcess) takes along the command
        // and what it started; on Unix the session we lead does that.
        let _job = crate::sys::Group::of(&child).ok();
        let status = loop {
            if crate::signal::interrupted() {
                // TERM to our whole process group (the session we lead):
                // the command and whatever it started. Ours is a flag.
                crate::sys::stop_own_group();
                let deadline = Instant::now() + timeout;
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        say("stopped");
                        return Ok(0);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
                let _ = child.wait();
                say(&format!("killed after {} s", timeout.as_secs()));
                return Ok(0);
            }
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => {
                    say(&format!("cannot wait for it: {e}"));
                    return Ok(1);
                }
            }
        };
        exits.retain(|t| t.elapsed() < Duration::from_secs(60));
        exits.push(Instant::now());
        if exits.len() >= 5 {
            say(&format!(
                "it exited ({status}) 5 times within a minute; giving up"
            ));
            return Ok(1);
        }
        let wait = Duration::from_secs((1u64 << (exits.len() - 1)).min(30));
        say(&format!(
            "it exited ({status}); restarting in {} s",
            wait.as_secs()
        ));
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if crate::signal::interrupted() {
                return Ok(0);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_words_are_quoted_for_systemd() {
        assert_eq!(unit_word("a b"), "\"a b\"");
        assert_eq!(
            unit_word("$HOME 100% \"x\" \\"),
            "\"$$HOME 100%% \\\"x\\\" \\\\\""
        );
        assert_eq!(
            unit_name("GAIA stack", "srv"),
            "onramp-GAIA-stack-srv.service"
        );
    }
}
