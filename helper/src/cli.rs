//! The entry point's dispatcher: find the command named by the first word
//! and hand it the rest. Each command owns its arguments and help
//! (`cmd::args::Command`); nothing below this module imports it.

use crate::cmd::args::Entry;
use crate::cmd::{
    artifact, bundle, cache, doctor, fetch, info, install, lock, pkgbuild, progress, release,
    services, uninstall,
};
use crate::error::{Code, Result, err};
use crate::out;
use std::ffi::OsString;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every command, in the order `onramp help` lists them.
const COMMANDS: &[Entry] = &[
    Entry::of::<install::Plan>(),
    Entry::of::<install::ResumeCheck>(),
    Entry::of::<install::CheckOptions>(),
    Entry::of::<install::AfterFailure>(),
    Entry::of::<install::Begin>(),
    Entry::of::<install::Phase>(),
    Entry::of::<install::Finish>(),
    Entry::of::<artifact::Download>(),
    Entry::of::<fetch::FetchManifest>(),
    Entry::of::<lock::Lock>(),
    Entry::of::<release::Release>(),
    Entry::of::<pkgbuild::Pkgbuild>(),
    Entry::of::<info::Sha256>(),
    Entry::of::<services::Services>(),
    Entry::of::<uninstall::Uninstall>(),
    Entry::of::<bundle::Bundle>(),
    Entry::of::<doctor::Doctor>(),
    Entry::of::<cache::CacheCmd>(),
    Entry::of::<services::Supervise>(),
    Entry::of::<info::Prefix>(),
    Entry::of::<info::State>(),
    Entry::of::<progress::ProgressServe>(),
    Entry::of::<info::ExitCodes>(),
    Entry::of::<info::Target>(),
    Entry::of::<info::Version>(),
];

/// Up to the first ". " that ends a sentence (not "e.g. ").
fn first_sentence(s: &str) -> &str {
    let mut from = 0;
    while let Some(i) = s[from..].find(". ") {
        let end = from + i;
        if !s[..end].ends_with("e.g") {
            return &s[..end];
        }
        from = end + 2;
    }
    s
}

fn usage() -> String {
    let mut s = format!(
        "onramp {VERSION}: the helper behind onramp's install.sh\n\nUsage: onramp COMMAND [options]\n\nCommands:\n"
    );
    for c in COMMANDS {
        s.push_str(&format!("  {:<14} {}\n", c.name, first_sentence(c.about)));
    }
    s.push_str(&format!(
        "  {:<14} Show help for onramp or one command.\n",
        "help"
    ));
    s.push_str("\nRun `onramp COMMAND --help` for a command's options. Exit codes are listed in README.md.");
    s
}

fn find(name: &str) -> Option<&'static Entry> {
    COMMANDS.iter().find(|c| c.name == name)
}

pub fn main(args: Vec<OsString>) -> Result<i32> {
    let first = args.first().map(|a| a.to_string_lossy().into_owned());
    let name = match first.as_deref() {
        None | Some("-h") | Some("--help") => {
            out::stdout_line(&usage());
            return Ok(0);
        }
        Some("-V") | Some("--version") => "version",
        Some(n) => n,
    };
    let rest: Vec<OsString> = args.into_iter().skip(1).collect();
    if name == "help" {
        match rest.first().map(|a| a.to_string_lossy().into_owned()) {
            None => out::stdout_line(&usage()),
            Some(h) if matches!(h.as_str(), "help" | "--help" | "-h") => out::stdout_line(
                "Usage: onramp help [COMMAND]\n\nShow help for onramp or one command.",
            ),
            Some(n) => match find(&n) {
                Some(c) => out::stdout_line(&c.help()),
                None => return err(Code::Usage, format!("no command {n:?}; run `onramp help`")),
            },
        }
        return Ok(0);
    }
    let Some(cmd) = find(name) else {
        return err(
            Code::Usage,
            format!("unknown command {name:?}; run `onramp help` for the list"),
        );
    };
    let asks_help = |a: &OsString| a == "--help" || a == "-h";
    if cmd.raw && rest.first().is_some_and(asks_help) {
        out::stdout_line(&cmd.help());
        return Ok(0);
    }
    if !cmd.raw {
        if rest.iter().any(asks_help) {
            out::stdout_line(&cmd.help());
            return Ok(0);
        }
        cmd.check_options(&rest)?;
    }
    cmd.run(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_command_asks_for_an_option_twice() {
        // Two groups asking for one option would split its value between
        // them (the first takes it, the second reads it as absent).
        for c in COMMANDS {
            let mut names: Vec<&str> = c.options().iter().map(|o| o.name).collect();
            let n = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), n, "onramp {} lists an option twice", c.name);
        }
    }

    #[test]
    fn every_command_has_a_unique_name_and_a_first_sentence() {
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len());
        assert_eq!(
            first_sentence("Print the sha256, e.g. to seed it. More."),
            "Print the sha256, e.g. to seed it"
        );
    }
}
