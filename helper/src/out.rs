//! Writing to stdout and stderr without ever panicking.
//!
//! `println!` panics when the stream is closed or the disk is full; an
//! installer must not die of that, so every diagnostic goes through here and
//! write errors are ignored.

use std::io::Write;

/// One line on stderr, write errors ignored.
pub fn line(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.write_all(b"\n");
    let _ = e.flush();
}

/// Raw text on stderr (used for `\r` progress updates).
pub fn raw(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.flush();
}

/// One line on stdout (machine-readable answers), write errors ignored.
pub fn stdout_line(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.write_all(b"\n");
    let _ = o.flush();
}

pub fn stderr_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(2) == 1 }
}

#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::out::line(&format!($($t)*)) };
}
