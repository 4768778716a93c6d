//! The commands that print one fact and change nothing: `version`,
//! `target`, `exit-codes`, `sha256`, `prefix`, `state`.

use super::args::{Command, Parser, Place, Stack};
use super::{need_manifest, resolve_prefix};
use crate::error::{Code, Result};
use crate::fsutil;
use crate::out;
use crate::state;
use std::path::Path;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `onramp version` (also `--version`, `-V`).
pub struct Version;

impl Command for Version {
    const NAME: &'static str = "version";
    const USAGE: &'static str = "";
    const ABOUT: &'static str = "Print the version.";
    fn parse(_: &mut Parser) -> Result<Self> {
        Ok(Version)
    }
    fn run(self) -> Result<i32> {
        out::stdout_line(&format!("onramp {VERSION} ({})", crate::platform::target()));
        Ok(0)
    }
}

/// `onramp exit-codes`.
pub struct ExitCodes;

impl Command for ExitCodes {
    const NAME: &'static str = "exit-codes";
    const USAGE: &'static str = "";
    const ABOUT: &'static str =
        "Print the exit code table (name and number), the same as install.sh's and README's.";
    fn parse(_: &mut Parser) -> Result<Self> {
        Ok(ExitCodes)
    }
    fn run(self) -> Result<i32> {
        for c in Code::ALL {
            out::stdout_line(&format!("{} {}", c.name(), c.as_i32()));
        }
        Ok(0)
    }
}

/// `onramp target`.
pub struct Target;

impl Command for Target {
    const NAME: &'static str = "target";
    const USAGE: &'static str = "";
    const ABOUT: &'static str = "Print this machine's target name (e.g. linux-x86_64).";
    fn parse(_: &mut Parser) -> Result<Self> {
        Ok(Target)
    }
    fn run(self) -> Result<i32> {
        out::stdout_line(&crate::platform::target());
        Ok(0)
    }
}

/// `onramp sha256 FILE`.
pub struct Sha256 {
    file: String,
}

impl Command for Sha256 {
    const NAME: &'static str = "sha256";
    const USAGE: &'static str = "FILE";
    const ABOUT: &'static str = "Print the sha256 of FILE (as the downloader computes it), e.g. to pre-seed a cache for --from.";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(Sha256 {
            file: p.words(1)?.remove(0),
        })
    }
    fn run(self) -> Result<i32> {
        let p = fsutil::absolute(Path::new(&self.file))?;
        out::stdout_line(&format!("{}  {}", fsutil::sha256_file(&p)?, self.file));
        Ok(0)
    }
}

/// `onramp prefix`.
pub struct Prefix {
    stack: Stack,
    prefix: Option<std::path::PathBuf>,
}

impl Command for Prefix {
    const NAME: &'static str = "prefix";
    const USAGE: &'static str = "--manifest FILE [--prefix DIR]";
    const ABOUT: &'static str = "Print the absolute prefix an install would use: --prefix, else the manifest's default_prefix (~ expanded). install.sh asks this instead of reading JSON itself.";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(Prefix {
            stack: Stack::parse(p)?,
            prefix: p.path(&super::args::PREFIX)?,
        })
    }
    fn run(self) -> Result<i32> {
        let man = need_manifest(&self.stack)?;
        out::stdout_line(
            &resolve_prefix(self.prefix.as_deref(), Some(&man))?
                .display()
                .to_string(),
        );
        Ok(0)
    }
}

/// `onramp state`.
pub struct State {
    place: Place,
}

impl Command for State {
    const NAME: &'static str = "state";
    const USAGE: &'static str = "--prefix DIR";
    const ABOUT: &'static str = "Print where the install state of PREFIX lives, and its contents.";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(State {
            place: Place::parse(p)?,
        })
    }
    fn run(self) -> Result<i32> {
        let prefix = resolve_prefix(self.place.prefix.as_deref(), None)?;
        let root = state::root(self.place.state_dir.as_deref())?;
        let file = state::dir_for(&root, &prefix).join("state.json");
        out::stdout_line(&file.display().to_string());
        if let Ok(s) = std::fs::read_to_string(&file) {
            out::stdout_line(s.trim_end());
        }
        Ok(0)
    }
}
