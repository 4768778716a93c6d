//! `onramp progress-serve`: its arguments; the server is `progress`.

use super::args::{self, Command, Opt, Parser};
use crate::error::Result;
use crate::progress::Serve;

/// `onramp progress-serve`.
pub struct ProgressServe(Serve);

const LISTEN: Opt = Opt {
    name: "--listen",
    value: "ADDR",
    help: "a loopback address and port (0: a free one)",
};
const LINGER: Opt = Opt {
    name: "--linger",
    value: "SECS",
    help: "keep serving this long after the end (default 30)",
};
const URL_FILE: Opt = Opt {
    name: "--url-file",
    value: "FILE",
    help: "write the URL (with its token) here, mode 0600",
};
const ALLOW_ORIGIN: Opt = Opt {
    name: "--allow-origin",
    value: "ORIGIN",
    help: "let pages of this origin read the endpoints (CORS)",
};
const FOREGROUND: Opt = Opt {
    name: "--foreground",
    value: "",
    help: "serve in this process instead of the background",
};
const HEARTBEAT: Opt = Opt {
    name: "--heartbeat",
    value: "SECS",
    help: "a comment on a quiet event stream this often (default 10)",
};

impl Command for ProgressServe {
    const NAME: &'static str = "progress-serve";
    const USAGE: &'static str = "--listen 127.0.0.1:PORT --events FILE [--owner PID] [--linger SECS] [--url-file FILE] [--allow-origin ORIGIN] [--heartbeat SECS] [--foreground]";
    const ABOUT: &'static str = "Serve an install's progress on a loopback port: GET /events (Server-Sent Events, replay from Last-Event-ID), GET /status (a JSON snapshot), GET / (a progress page); each needs the token in the URL it prints. Prints the URL and the events file, then runs in the background (--foreground: here) while the installer PID lives, marks the install interrupted if it dies without finishing, and stops --linger seconds (default 30) after the end.";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(ProgressServe(Serve {
            listen: p.value(&LISTEN)?,
            events: p.path(&args::EVENTS)?,
            owner: p.value(&args::OWNER)?,
            linger: p.value(&LINGER)?,
            url_file: p.path(&URL_FILE)?,
            allow_origin: p.value(&ALLOW_ORIGIN)?,
            foreground: p.switch(&FOREGROUND),
            heartbeat: p.value(&HEARTBEAT)?,
        }))
    }
    fn run(self) -> Result<i32> {
        crate::progress::serve_main(&self.0)
    }
}
