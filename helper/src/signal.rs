//! Ctrl-C and SIGTERM: a flag that long-running work polls.
//!
//! The handler only stores to an atomic; the code that notices it records
//! "interrupted" in the state and exits 130.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn on_signal() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Set the flag on SIGINT and SIGTERM (Ctrl-C, Ctrl-Break and a closed
/// console on Windows), and ignore SIGPIPE so a closed stdout becomes an
/// error we ignore rather than a silent death.
pub fn install() {
    crate::sys::on_interrupt(on_signal);
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
