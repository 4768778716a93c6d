//! `onramp`: the helper that install.sh calls once per phase.
//!
//! `main` only installs signal handlers, runs the command (the library,
//! `lib.rs`, does the work) and maps its result to a documented exit code. It never panics out (exit 101): a
//! panic is reported as an internal error, exit 1.

use onramp::{cli, error, out, signal, sys};

fn main() {
    // Files and directories onramp creates are never group/other-writable,
    // whatever umask the caller had (install.sh sets the same).
    sys::set_umask();
    // Descriptors inherited from the caller (`install.sh 7<secret`) must not
    // reach the recipes and commands onramp runs.
    sys::seal_inherited_fds();
    // As root, another user's HOME/XDG_* (sudo -E) places nothing: they are
    // dropped here, before any thread, for every command and child.
    for note in onramp::trust::own_environment() {
        out::line(&format!("onramp: {note}"));
    }
    signal::install();
    std::panic::set_hook(Box::new(|info| {
        out::line(&format!(
            "onramp: internal error: {info}; please report this with the command you ran"
        ));
    }));
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = match std::panic::catch_unwind(|| cli::main(args)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            out::line(&format!("onramp: error: {}", e.msg));
            e.code.as_i32()
        }
        Err(_) => error::Code::Internal.as_i32(),
    };
    std::process::exit(code);
}
