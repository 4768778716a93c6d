//! Fault injection for tests, compiled in only with the cargo feature
//! `fault-hook` (release builds have none: `io` is then just the call).
//!
//! Every durable operation (create, write, fsync, rename, unlink, mkdir,
//! link, directory fsync) goes through `io`. With `ONRAMP_FAULT_COUNTER`
//! set to a file, each one is counted there, across every helper process of
//! an install (the count is kept under a lock), and logged one per line in
//! `ONRAMP_FAULT_COUNTER.log` (number, operation, path). `ONRAMP_FAULT` says
//! what happens at operation N: `crash@N` kills the process with SIGKILL (a
//! power cut, as far as onramp can tell), `eio@N` and `enospc@N` make that
//! operation fail with EIO or ENOSPC.

use std::path::Path;

/// Run `f`, a durable operation `what` on `path`, unless the fault hook
/// says to crash first or to fail it.
#[inline(always)]
pub fn io<T>(
    what: &'static str,
    path: &Path,
    f: impl FnOnce() -> std::io::Result<T>,
) -> std::io::Result<T> {
    #[cfg(feature = "fault-hook")]
    hook::at(what, path)?;
    #[cfg(not(feature = "fault-hook"))]
    let _ = (what, path);
    f()
}

#[cfg(feature = "fault-hook")]
mod hook {
    use std::fs::OpenOptions;
    use std::io::{Read, Seek, Write};
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, OnceLock};

    enum Action {
        Crash,
        Fail(i32),
    }

    struct Plan {
        counter: Option<PathBuf>,
        at: Option<(u64, Action)>,
    }

    fn plan() -> &'static Plan {
        static P: OnceLock<Plan> = OnceLock::new();
        P.get_or_init(|| {
            let counter = std::env::var_os("ONRAMP_FAULT_COUNTER").map(PathBuf::from);
            let at = std::env::var("ONRAMP_FAULT").ok().and_then(|s| {
                let (kind, n) = s.split_once('@')?;
                let n: u64 = n.parse().ok()?;
                let a = match kind {
                    "crash" => Action::Crash,
                    "eio" => Action::Fail(crate::sys::ERR_IO),
                    "enospc" => Action::Fail(crate::sys::ERR_NO_SPACE),
                    _ => return None,
                };
                Some((n, a))
            });
            Plan { counter, at }
        })
    }

    /// The next operation number, from the shared counter file.
    fn next(counter: &Path, what: &str, path: &Path) -> Option<u64> {
        static LOCAL: Mutex<()> = Mutex::new(());
        let _g = LOCAL.lock().unwrap_or_else(|p| p.into_inner());
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(counter)
            .ok()?;
        let mut lock = fd_lock::RwLock::new(f.try_clone().ok()?);
        let _l = lock.write().ok()?;
        let mut s = String::new();
        f.read_to_string(&mut s).ok()?;
        let n = s.trim().parse::<u64>().unwrap_or(0) + 1;
        f.set_len(0).ok()?;
        f.rewind().ok()?;
        write!(f, "{n}").ok()?;
        let mut log = counter.as_os_str().to_owned();
        log.push(".log");
        if let Ok(mut l) = OpenOptions::new().append(true).create(true).open(&log) {
            let _ = writeln!(l, "{n} {what} {}", path.display());
        }
        Some(n)
    }

    pub fn at(what: &'static str, path: &Path) -> std::io::Result<()> {
        let p = plan();
        let Some(counter) = &p.counter else {
            return Ok(());
        };
        let Some(n) = next(counter, what, path) else {
            return Ok(());
        };
        match &p.at {
            Some((at, Action::Crash)) if *at == n => {
                // Ending our own process, as a power cut would.
                crate::sys::kill_self()
            }
            Some((at, Action::Fail(errno))) if *at == n => {
                Err(std::io::Error::from_raw_os_error(*errno))
            }
            _ => Ok(()),
        }
    }
}
