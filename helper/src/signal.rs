//! Ctrl-C and SIGTERM: a flag that long-running work polls.
//!
//! The handler only stores to an atomic; the code that notices it records
//! "interrupted" in the state and exits 130.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Install handlers for SIGINT and SIGTERM, and ignore SIGPIPE so a closed
/// stdout becomes an error we ignore rather than a silent death.
pub fn install() {
    // SAFETY: the handler is async-signal-safe (one atomic store).
    unsafe {
        let h = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, h);
        libc::signal(libc::SIGTERM, h);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `Err(interrupted)` once a signal arrived.
pub fn check() -> crate::error::Result<()> {
    if interrupted() {
        Err(crate::error::Error::interrupted())
    } else {
        Ok(())
    }
}
