//! Exit codes and the error type every module returns.
//!
//! One table, shared word for word with `lib/exitcodes.sh`, README.md and the
//! `finished` event: a code means the same thing wherever it appears.

use std::fmt;

/// The documented exit codes. `install.sh` maps them one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// An internal error: a bug in onramp, or an I/O error with no better class.
    Internal = 1,
    /// Bad command line: unknown flag, missing value.
    Usage = 2,
    /// The manifest is unreadable or invalid.
    Manifest = 3,
    /// Not enough free disk space, or the disk filled up, failed or is read-only.
    Disk = 4,
    /// The stack has no build for this OS/arch.
    Platform = 5,
    /// A remote host is unreachable or a transfer failed.
    Network = 6,
    /// An artifact's size or sha256 does not match the manifest, or the
    /// manifest's signature, serial (a rollback) or expiry is refused.
    Integrity = 7,
    /// Another install of the same prefix is running.
    LockHeld = 8,
    /// The install finished, but a required component failed.
    Partial = 9,
    /// A saved install can be resumed, but there is no terminal to ask and no `--yes`.
    NeedsConfirmation = 10,
    /// The helper binary could not be obtained or verified (install.sh only).
    Helper = 11,
    /// The state file or its directory cannot be written.
    State = 12,
    /// Running as root, a directory onramp would write into can be changed
    /// by another user (owned by them, or group/other-writable).
    Unsafe = 13,
    /// The helper was killed by a signal it cannot catch (kill -9, the OOM
    /// killer): install.sh says so; what finished is kept and a rerun resumes.
    Killed = 14,
    /// `doctor`: the install is not ready (something recorded is missing or
    /// changed, a service is down, a health check fails); it says what.
    NotReady = 15,
    /// A source refused onramp's credentials or needs some it was not given
    /// (a gated model, a private registry): the message names the model,
    /// where to accept its terms and which variable to set.
    Auth = 16,
    /// Interrupted by Ctrl-C or SIGTERM.
    Interrupted = 130,
}

impl Code {
    /// Every code, in table order (for `onramp exit-codes`).
    pub const ALL: [Code; 17] = [
        Code::Internal,
        Code::Usage,
        Code::Manifest,
        Code::Disk,
        Code::Platform,
        Code::Network,
        Code::Integrity,
        Code::LockHeld,
        Code::Partial,
        Code::NeedsConfirmation,
        Code::Helper,
        Code::State,
        Code::Unsafe,
        Code::Killed,
        Code::NotReady,
        Code::Auth,
        Code::Interrupted,
    ];

    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The name used in events, the state file and README.
    pub fn name(self) -> &'static str {
        match self {
            Code::Internal => "internal",
            Code::Usage => "usage",
            Code::Manifest => "manifest",
            Code::Disk => "disk",
            Code::Platform => "platform",
            Code::Network => "network",
            Code::Integrity => "integrity",
            Code::LockHeld => "lock_held",
            Code::Partial => "partial",
            Code::NeedsConfirmation => "needs_confirmation",
            Code::Helper => "helper",
            Code::State => "state",
            Code::Unsafe => "unsafe",
            Code::Killed => "killed",
            Code::NotReady => "not_ready",
            Code::Auth => "auth",
            Code::Interrupted => "interrupted",
        }
    }
}

/// An error with its exit code and a one-line message that names the thing
/// and, where there is one, the fix.
#[derive(Debug)]
pub struct Error {
    pub code: Code,
    pub msg: String,
}

impl Error {
    pub fn new(code: Code, msg: impl Into<String>) -> Self {
        Error {
            code,
            msg: msg.into(),
        }
    }

    /// An I/O error on `path` while doing `what` (the operation), with the
    /// OS error. A full, failing or read-only disk is `Disk`.
    pub fn io(what: &str, path: &std::path::Path, e: std::io::Error) -> Self {
        let code = if crate::sys::is_disk_error(&e) {
            Code::Disk
        } else {
            Code::Internal
        };
        Error::new(code, format!("{what} {}: {e}", path.display()))
    }

    /// This error with `code` when it is an unclassified I/O failure
    /// (`Internal`): an EMFILE or ELOOP on a state file is that file's
    /// problem (exit 12), not a bug in onramp (exit 1).
    pub fn internal_as(self, code: Code) -> Self {
        if self.code == Code::Internal {
            Error { code, ..self }
        } else {
            self
        }
    }

    pub fn interrupted() -> Self {
        Error::new(Code::Interrupted, "interrupted")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand: `err(Code::Usage, "...")`.
pub fn err<T>(code: Code, msg: impl Into<String>) -> Result<T> {
    Err(Error::new(code, msg))
}
