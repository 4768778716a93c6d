//! Command-line arguments: how a command declares the options it takes, and
//! the groups several commands share (the manifest and its trust, the
//! prefix and state, fetching, events). A command's `parse` asks for each
//! option it reads; the same function, run on no arguments in listing mode,
//! tells `cli` what the command accepts (an option it never asks for is an
//! error) and writes its help. So a command's help and its checks come
//! from one place, and an option no code reads cannot be accepted.

use crate::download::{self, Options};
use crate::error::{Code, Error, Result, err};
use crate::events::Format;
use crate::fsutil;
use std::ffi::OsString;
use std::path::PathBuf;
use std::str::FromStr;

/// One option: how it is spelled, the value it takes ("" for a switch),
/// and its line of help.
pub struct Opt {
    pub name: &'static str,
    pub value: &'static str,
    pub help: &'static str,
}

/// A command: its arguments as a type of its own, parsed from the words
/// after the command's name, and what it does with them.
pub trait Command: Sized {
    const NAME: &'static str;
    /// What follows `onramp NAME` in the usage line.
    const USAGE: &'static str;
    /// What it does; the first sentence is its line in `onramp help`.
    const ABOUT: &'static str;
    /// Its words go to it untouched (no options, no checks).
    const RAW: bool = false;
    /// Ask `p` for every option and word the command reads. Collect only:
    /// checks that can fail belong in `run`, so that listing mode sees
    /// every option.
    fn parse(p: &mut Parser) -> Result<Self>;
    fn run(self) -> Result<i32>;
}

/// A command as the dispatcher holds it.
pub struct Entry {
    pub name: &'static str,
    pub usage: &'static str,
    pub about: &'static str,
    pub raw: bool,
    /// Parse in listing mode: the options the command accepts.
    list: fn(&mut Parser) -> Result<()>,
    /// Parse the arguments and run.
    main: fn(&mut Parser) -> Result<i32>,
}

fn list_of<C: Command>(p: &mut Parser) -> Result<()> {
    C::parse(p).map(drop)
}

fn main_of<C: Command>(p: &mut Parser) -> Result<i32> {
    let c = C::parse(p)?;
    if p.args.is_some() {
        // It took no words: there must be none.
        p.words(0)?;
    }
    c.run()
}

impl Entry {
    pub const fn of<C: Command>() -> Entry {
        Entry {
            name: C::NAME,
            usage: C::USAGE,
            about: C::ABOUT,
            raw: C::RAW,
            list: list_of::<C>,
            main: main_of::<C>,
        }
    }

    /// The options this command accepts, in the order its parse asks.
    pub fn options(&self) -> Vec<&'static Opt> {
        let mut p = Parser {
            args: None,
            listed: Some(Vec::new()),
            command: self.name,
        };
        // Listing mode returns defaults and never fails; a failure would
        // shorten the list (the unit tests in cli list every command).
        let listed = (self.list)(&mut p);
        debug_assert!(
            listed.is_ok(),
            "onramp {}: parse failed in listing mode",
            self.name
        );
        p.listed.unwrap_or_default()
    }

    /// `onramp NAME --help`.
    pub fn help(&self) -> String {
        let mut s = format!(
            "Usage: onramp {} {}\n\n{}",
            self.name, self.usage, self.about
        );
        let opts = self.options();
        if !opts.is_empty() {
            s.push_str("\n\nOptions:");
            for o in opts {
                let spec = match o.value {
                    "" => o.name.to_string(),
                    v => format!("{} {v}", o.name),
                };
                let pad = if spec.len() < 22 { 22 - spec.len() } else { 1 };
                s.push_str(&format!("\n  {spec}{:pad$} {}", "", o.help));
            }
        }
        s
    }

    /// Refuse an option the command does not take, before any value is
    /// read (`--name=value` counts as `--name`).
    pub fn check_options(&self, raw: &[OsString]) -> Result<()> {
        let accepted = self.options();
        for a in raw {
            let s = a.to_string_lossy();
            if s.starts_with('-') && s != "-" {
                let name = s.split('=').next().unwrap_or("");
                if !accepted.iter().any(|o| o.name == name) {
                    return err(
                        Code::Usage,
                        format!(
                            "unknown option {name} for `onramp {}`; see `onramp {} --help`",
                            self.name, self.name
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    pub fn run(&self, raw: Vec<OsString>) -> Result<i32> {
        let mut p = Parser {
            args: Some(pico_args::Arguments::from_vec(raw)),
            listed: None,
            command: self.name,
        };
        (self.main)(&mut p)
    }
}

/// The words after a command's name. In listing mode it holds none: every
/// option reads as absent and is recorded instead.
pub struct Parser {
    args: Option<pico_args::Arguments>,
    listed: Option<Vec<&'static Opt>>,
    command: &'static str,
}

fn bad_value(flag: &str, e: pico_args::Error) -> Error {
    Error::new(Code::Usage, format!("{flag}: {e}"))
}

impl Parser {
    fn args(&mut self, o: &'static Opt) -> Option<&mut pico_args::Arguments> {
        if let Some(l) = &mut self.listed {
            l.push(o);
        }
        self.args.as_mut()
    }

    /// A switch: given or not.
    pub fn switch(&mut self, o: &'static Opt) -> bool {
        self.args(o).is_some_and(|a| a.contains(o.name))
    }

    /// An option's value, parsed (`--connections 8`).
    pub fn value<T: FromStr>(&mut self, o: &'static Opt) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        match self.args(o) {
            Some(a) => a
                .opt_value_from_str(o.name)
                .map_err(|e| bad_value(o.name, e)),
            None => Ok(None),
        }
    }

    /// A path, taken as given (it need not be UTF-8).
    pub fn path(&mut self, o: &'static Opt) -> Result<Option<PathBuf>> {
        match self.args(o) {
            Some(a) => a
                .opt_value_from_os_str(o.name, |s| Ok::<_, String>(PathBuf::from(s)))
                .map_err(|e| bad_value(o.name, e)),
            None => Ok(None),
        }
    }

    /// A repeatable option's values, in order.
    pub fn values<T: FromStr>(&mut self, o: &'static Opt) -> Result<Vec<T>>
    where
        T::Err: std::fmt::Display,
    {
        match self.args(o) {
            Some(a) => a.values_from_str(o.name).map_err(|e| bad_value(o.name, e)),
            None => Ok(Vec::new()),
        }
    }

    /// The words left once every option is taken (UTF-8).
    pub fn rest(&mut self) -> Result<Vec<String>> {
        let Some(a) = self.args.take() else {
            return Ok(Vec::new());
        };
        a.finish()
            .into_iter()
            .map(|w| {
                w.into_string()
                    .map_err(|w| Error::new(Code::Usage, format!("argument {w:?} is not UTF-8")))
            })
            .collect()
    }

    /// Every word as given (lossy UTF-8), options included: for a
    /// command that passes them on.
    pub fn raw(&mut self) -> Vec<String> {
        let Some(a) = self.args.take() else {
            return Vec::new();
        };
        a.finish()
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect()
    }

    /// Exactly `n` words (in listing mode, `n` empty ones).
    pub fn words(&mut self, n: usize) -> Result<Vec<String>> {
        if self.listed.is_some() {
            return Ok(vec![String::new(); n]);
        }
        let w = self.rest()?;
        if w.len() != n {
            return err(
                Code::Usage,
                format!(
                    "`onramp {}` takes {n} positional argument(s); see `onramp {} --help`",
                    self.command, self.command
                ),
            );
        }
        Ok(w)
    }
}

// The options several commands take.

pub const MANIFEST: Opt = Opt {
    name: "--manifest",
    value: "FILE",
    help: "the stack's manifest (JSON)",
};
pub const MANIFEST_URL: Opt = Opt {
    name: "--manifest-url",
    value: "URL",
    help: "where --manifest FILE was fetched from (fetch-manifest): relative paths resolve against it",
};
pub const TRUST_KEY: Opt = Opt {
    name: "--trust-key",
    value: "KEY",
    help: "trust manifests signed by this minisign public key (RW... or a .pub file; repeatable; also ONRAMP_TRUST_KEY); with any key trusted an unsigned manifest is refused",
};
pub const ALLOW_DOWNGRADE: Opt = Opt {
    name: "--allow-downgrade",
    value: "",
    help: "accept a manifest whose serial is lower than one this machine accepted",
};
pub const ALLOW_EXPIRED: Opt = Opt {
    name: "--allow-expired",
    value: "",
    help: "accept a manifest whose \"expires\" has passed",
};
pub const GPU: Opt = Opt {
    name: "--gpu",
    value: "BACKEND",
    help: "choose variants for this GPU backend (cuda, rocm, metal, intel, cpu) instead of the one detected",
};
pub const PROFILE: Opt = Opt {
    name: "--profile",
    value: "NAME",
    help: "install this profile of the manifest (default: its default_profile, else everything)",
};
pub const PREFIX: Opt = Opt {
    name: "--prefix",
    value: "DIR",
    help: "where the stack is installed (default: the manifest's default_prefix)",
};
pub const STATE_DIR: Opt = Opt {
    name: "--state-dir",
    value: "DIR",
    help: "state root (default $ONRAMP_STATE_DIR or $XDG_STATE_HOME/onramp)",
};
pub const CACHE_DIR: Opt = Opt {
    name: "--cache-dir",
    value: "DIR",
    help: "download cache (default $ONRAMP_CACHE_DIR or $XDG_CACHE_HOME/onramp)",
};
pub const OWNER: Opt = Opt {
    name: "--owner",
    value: "PID",
    help: "the install.sh process that owns this install",
};
pub const OUTPUT: Opt = Opt {
    name: "-o",
    value: "PATH",
    help: "where the result goes",
};
pub const EVENTS: Opt = Opt {
    name: "--events",
    value: "FILE",
    help: "append progress events to FILE",
};
pub const EVENTS_FORMAT: Opt = Opt {
    name: "--events-format",
    value: "F",
    help: "ndjson (default) or sse",
};
pub const SUMMARY_JSON: Opt = Opt {
    name: "--summary-json",
    value: "FILE",
    help: "write the final summary as JSON",
};
pub const OFFLINE: Opt = Opt {
    name: "--offline",
    value: "",
    help: "make no network connection; missing artifacts are errors",
};
pub const FROM: Opt = Opt {
    name: "--from",
    value: "DIR",
    help: "a pre-seeded cache (files named by sha256) to use first",
};
pub const ALLOW_HTTP: Opt = Opt {
    name: "--allow-http",
    value: "",
    help: "accept plain http URLs (a redirect from https to http is never followed)",
};
pub const CONNECTIONS: Opt = Opt {
    name: "--connections",
    value: "N",
    help: "connections per artifact (default 8, 1 to 64)",
};
pub const MIRROR: Opt = Opt {
    name: "--mirror",
    value: "BASE",
    help: "try BASE/<file name> first (repeatable, in order; plain http allowed)",
};
pub const CA_FILE: Opt = Opt {
    name: "--ca-file",
    value: "FILE",
    help: "trust this PEM CA as well as the bundled roots (also: SSL_CERT_FILE)",
};
pub const READ_TIMEOUT: Opt = Opt {
    name: "--read-timeout",
    value: "SECS",
    help: "give up on a connection silent this long (default 30)",
};
pub const ALLOW_UNPINNED_CATALOG: Opt = Opt {
    name: "--allow-unpinned-catalog",
    value: "",
    help: "build a catalog PKGBUILD the manifest does not pin (development catalogs)",
};
pub const BUILD_USER: Opt = Opt {
    name: "--build-user",
    value: "NAME|UID",
    help: "as root, run recipes as this account instead of onramp's own build uids (also ONRAMP_BUILD_USER; it must have no running processes)",
};
pub const DRY_RUN: Opt = Opt {
    name: "--dry-run",
    value: "",
    help: "print what it would do and change nothing",
};
pub const HELPER: Opt = Opt {
    name: "--helper",
    value: "TARGET=PATH",
    help: "the helper binary for TARGET (repeatable; default: this one, for this machine)",
};

/// Which manifest, and the keys its signature is checked with.
pub struct Stack {
    pub manifest: Option<PathBuf>,
    pub manifest_url: Option<String>,
    pub trust_keys: Vec<String>,
}

impl Stack {
    pub fn parse(p: &mut Parser) -> Result<Stack> {
        Ok(Stack {
            manifest: p.path(&MANIFEST)?,
            manifest_url: p.value(&MANIFEST_URL)?,
            trust_keys: p.values(&TRUST_KEY)?,
        })
    }
}

/// What may override a manifest's serial and expiry checks.
pub struct Fresh {
    pub allow_downgrade: bool,
    pub allow_expired: bool,
}

impl Fresh {
    pub fn parse(p: &mut Parser) -> Fresh {
        Fresh {
            allow_downgrade: p.switch(&ALLOW_DOWNGRADE),
            allow_expired: p.switch(&ALLOW_EXPIRED),
        }
    }
}

/// The GPU backend and profile a user chose over what is detected.
#[derive(Default)]
pub struct Choice {
    pub gpu: Option<String>,
    pub profile: Option<String>,
}

impl Choice {
    pub fn parse(p: &mut Parser) -> Result<Choice> {
        Ok(Choice {
            gpu: p.value(&GPU)?,
            profile: p.value(&PROFILE)?,
        })
    }
}

/// The install acted on: its prefix and where its state lives.
pub struct Place {
    pub prefix: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
}

impl Place {
    pub fn parse(p: &mut Parser) -> Result<Place> {
        Ok(Place {
            prefix: p.path(&PREFIX)?,
            state_dir: p.path(&STATE_DIR)?,
        })
    }
}

/// Where progress events go.
pub struct Events {
    pub file: Option<PathBuf>,
    pub format: Option<String>,
}

impl Events {
    pub fn parse(p: &mut Parser) -> Result<Events> {
        Ok(Events {
            file: p.path(&EVENTS)?,
            format: p.value(&EVENTS_FORMAT)?,
        })
    }

    pub fn format(&self) -> Result<Format> {
        match self.format.as_deref() {
            None => Ok(Format::Ndjson),
            Some(s) => Format::parse(s).ok_or_else(|| {
                Error::new(
                    Code::Usage,
                    format!("--events-format {s:?}: use ndjson or sse"),
                )
            }),
        }
    }
}

/// How to reach the network: TLS trust and patience.
pub struct Tls {
    pub ca_file: Option<PathBuf>,
    pub read_timeout: Option<u64>,
}

impl Tls {
    pub fn parse(p: &mut Parser) -> Result<Tls> {
        Ok(Tls {
            ca_file: p.path(&CA_FILE)?,
            read_timeout: p.value(&READ_TIMEOUT)?,
        })
    }

    pub fn net(&self, allow_http: bool) -> Result<download::http::Net> {
        let mut net = download::http::Net {
            allow_http,
            ca_file: self.ca_file.clone(),
            ..Default::default()
        };
        if let Some(s) = self.read_timeout {
            if s == 0 {
                return err(Code::Usage, "--read-timeout must be at least 1 second");
            }
            net.read_timeout = std::time::Duration::from_secs(s);
        }
        Ok(net)
    }
}

/// How artifacts are fetched: connections, mirrors, plain http.
pub struct Fetch {
    pub tls: Tls,
    pub allow_http: bool,
    pub connections: Option<usize>,
    pub mirrors: Vec<String>,
}

impl Fetch {
    pub fn parse(p: &mut Parser) -> Result<Fetch> {
        Ok(Fetch {
            allow_http: p.switch(&ALLOW_HTTP),
            connections: p.value(&CONNECTIONS)?,
            mirrors: p.values(&MIRROR)?,
            tls: Tls::parse(p)?,
        })
    }

    /// The download engine's options; `local` adds --offline and --from.
    pub fn options(&self, local: Option<&Local>) -> Result<Options> {
        let connections = self.connections.unwrap_or(download::DEFAULT_CONNECTIONS);
        if !(1..=64).contains(&connections) {
            return err(
                Code::Usage,
                format!("--connections {connections}: use 1 to 64"),
            );
        }
        for m in &self.mirrors {
            if !(m.starts_with("https://") || m.starts_with("http://")) {
                return err(
                    Code::Usage,
                    format!("--mirror {m:?}: a mirror is an http(s) base URL"),
                );
            }
        }
        let net = self.tls.net(self.allow_http)?;
        Ok(Options {
            offline: local.is_some_and(|l| l.offline),
            from: local
                .and_then(|l| l.from.as_deref())
                .map(fsutil::absolute)
                .transpose()?,
            connections,
            mirrors: self.mirrors.clone(),
            net,
            budget: None,
            reuse: Vec::new(),
        })
    }
}

/// What may stand in for the network: nothing (--offline), a pre-seeded
/// cache (--from).
pub struct Local {
    pub offline: bool,
    pub from: Option<PathBuf>,
}

impl Local {
    pub fn parse(p: &mut Parser) -> Result<Local> {
        Ok(Local {
            offline: p.switch(&OFFLINE),
            from: p.path(&FROM)?,
        })
    }
}

/// `--build-user`: the one place that reads it (sandbox) reads the
/// environment, so the flag wins by setting it, before any thread starts.
pub fn export_build_user(user: Option<&str>) {
    if let Some(u) = user {
        // SAFETY: called at the start of a command, before any thread of
        // ours starts.
        unsafe { std::env::set_var("ONRAMP_BUILD_USER", u) };
    }
}

pub const INSTALLER: Opt = Opt {
    name: "--installer",
    value: "sh|ps1",
    help: "which installer the messages are for: flags spelled --fresh (sh, the default) or -Fresh (ps1)",
};

/// The installer a message is for: install.sh spells a flag `--no-start`,
/// install.ps1 `-NoStart`. What the helper says on an installer's behalf
/// names the flag the user would type.
#[derive(Clone, Copy, Default, PartialEq, Debug)]
pub enum Installer {
    #[default]
    Sh,
    Ps1,
}

impl FromStr for Installer {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Installer, String> {
        match s {
            "sh" => Ok(Installer::Sh),
            "ps1" => Ok(Installer::Ps1),
            _ => Err(format!("{s:?}: use sh or ps1")),
        }
    }
}

impl Installer {
    /// The flag `kebab` ("allow-http") as this installer spells it.
    pub fn flag(self, kebab: &str) -> String {
        match self {
            Installer::Sh => format!("--{kebab}"),
            Installer::Ps1 => {
                let words = kebab.split('-').map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                });
                format!("-{}", words.collect::<String>())
            }
        }
    }
}

#[cfg(test)]
mod installer_tests {
    use super::Installer;

    #[test]
    fn flags_are_spelled_as_each_installer_takes_them() {
        assert_eq!(Installer::Sh.flag("allow-http"), "--allow-http");
        assert_eq!(Installer::Ps1.flag("allow-http"), "-AllowHttp");
        assert_eq!(Installer::Ps1.flag("yes"), "-Yes");
        assert_eq!("ps1".parse::<Installer>(), Ok(Installer::Ps1));
        assert!("bash".parse::<Installer>().is_err());
    }
}
