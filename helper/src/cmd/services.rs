//! The commands about an install's services: `services status|stop`, and
//! `supervise`, which keeps one service running where systemd --user is
//! not available.

use super::args::{Command, Parser, Place};
use super::resolve_prefix;
use crate::error::{Code, Result, err};
use crate::out;
use crate::state::{self, Store};

/// `onramp services status|stop`.
pub struct Services {
    what: String,
    place: Place,
}

impl Command for Services {
    const NAME: &'static str = "services";
    const USAGE: &'static str = "(status | stop) --prefix DIR";
    const ABOUT: &'static str = "Say whether each service onramp started for PREFIX is running, or stop them all (what an uninstall will do).";
    fn parse(p: &mut Parser) -> Result<Self> {
        let place = Place::parse(p)?;
        Ok(Services {
            what: p.words(1)?.remove(0),
            place,
        })
    }
    fn run(self) -> Result<i32> {
        services(&self)
    }
}

fn services(f: &Services) -> Result<i32> {
    let what = f.what.as_str();
    if !matches!(what, "status" | "stop") {
        return err(
            Code::Usage,
            format!("services {what:?}: use status or stop"),
        );
    }
    let prefix = resolve_prefix(f.place.prefix.as_deref(), None)?;
    let root = state::root(f.place.state_dir.as_deref())?;
    let store = Store::lock(&state::dir_for(&root, &prefix))?;
    let Some(st) = store.load()? else {
        out::stdout_line("no install of this prefix");
        return Ok(0);
    };
    if st.services.is_empty() {
        out::stdout_line(
            "no service was started for this install (none in its stack, --no-start, or their components are not installed)",
        );
        return Ok(0);
    }
    // A stopped service keeps its record: `status` still names it, a rerun
    // starts it again, and an uninstall still takes its unit away.
    let mut all_up = true;
    for (id, r) in &st.services {
        if what == "stop" {
            crate::service::stop(r, std::time::Duration::from_secs(10))?;
            out::stdout_line(&format!("{id}: stopped ({})", r.manager));
        } else if crate::service::running(r) {
            out::stdout_line(&format!("{id}: running ({} {})", r.manager, r.handle));
        } else {
            all_up = false;
            out::stdout_line(&format!(
                "{id}: not running ({} {}); run the installer again to start it",
                r.manager, r.handle
            ));
        }
    }
    Ok(if all_up { 0 } else { 1 })
}

/// `onramp supervise SECS -- COMMAND...`.
pub struct Supervise {
    words: Vec<String>,
}

impl Command for Supervise {
    const NAME: &'static str = "supervise";
    const USAGE: &'static str = "SECS -- COMMAND...";
    const ABOUT: &'static str = "Run COMMAND and restart it when it exits; on SIGTERM stop it (KILL after SECS). onramp starts services this way where systemd --user is not available.";
    const RAW: bool = true;
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(Supervise { words: p.raw() })
    }
    fn run(self) -> Result<i32> {
        crate::service::supervise_main(&self.words)
    }
}
