//! The receipt: what an install changed, read back from its state as
//! actions in the order they were done. Each action says in words what
//! undoing it does, and undoes itself; `uninstall` reverts them last to
//! first and `--dry-run` prints them. Every revert is idempotent (what is
//! gone already is fine), so a killed uninstall finishes when run again.
//! nix-installer's plan of revertible actions is the model.
//!
//! The state records each change before (or, for a file written atomically,
//! as) it is made: the directories made for the prefix (`created`, noted
//! before they exist), a component's files (`Step::files`: a model's path
//! and a server's directory from the plan, a worker's from its package, an
//! extra's from what its command left in the prefix), the configure
//! directories and files (with the sha256 written), the services.

use crate::error::{Error, Result};
use crate::state::{Record, State, Status};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One change an install made.
#[derive(Debug, Clone)]
pub enum Action {
    /// A directory made for the prefix: the prefix, or a parent of it.
    Dir(PathBuf),
    /// A component's files in the prefix (relative): a model, a server's
    /// tree, a worker's or an extra's files.
    Files {
        id: String,
        kind: String,
        paths: Vec<String>,
    },
    /// What a model added to the Hugging Face hub cache (absolute paths).
    Hub {
        id: String,
        changes: Vec<crate::state::HubChange>,
    },
    /// An extra's own uninstall command (run before its files go).
    Undo { id: String, argv: Vec<String> },
    /// A directory configure made (relative to the prefix).
    ConfigDir(String),
    /// A config file onramp wrote, and the sha256 of what it wrote.
    Config { path: String, sha256: String },
    /// `capabilities.json` in the prefix.
    Capabilities,
    /// A service onramp started.
    Service { id: String, record: Record },
    /// A link to an exposed command.
    Link(crate::state::Link),
    /// A PATH block in a shell profile.
    Profile {
        block: crate::state::Block,
        stack: String,
    },
}

/// What reverting one action did.
pub enum Outcome {
    /// Undone: the words say what went.
    Undone(String),
    /// Left in place on purpose (the words say why); listed at the end.
    Kept(String),
    /// Nothing was there to undo.
    Nothing,
}

/// How an uninstall reverts: where, and what it keeps.
pub struct Revert<'a> {
    pub prefix: &'a Path,
    pub keep_models: bool,
    /// The environment of an extra's uninstall command.
    pub env: &'a [(String, String)],
}

/// The install's changes, in the order they were made.
pub fn actions(st: &State) -> Vec<Action> {
    let mut v: Vec<Action> = st
        .created
        .iter()
        .map(|d| Action::Dir(PathBuf::from(d)))
        .collect();
    for s in &st.steps {
        if !s.files.is_empty() {
            v.push(Action::Files {
                id: s.id.clone(),
                kind: s.kind.clone(),
                paths: s.files.clone(),
            });
        }
        if !s.hub.is_empty() {
            v.push(Action::Hub {
                id: s.id.clone(),
                changes: s.hub.clone(),
            });
        }
        // Its command ran (done or failed): its own undo runs first.
        if let Some(argv) = &s.undo
            && matches!(s.status, Status::Done | Status::Failed)
        {
            v.push(Action::Undo {
                id: s.id.clone(),
                argv: argv.clone(),
            });
        }
    }
    v.extend(st.config_dirs.iter().cloned().map(Action::ConfigDir));
    v.extend(st.managed_files.iter().map(|(p, h)| Action::Config {
        path: p.clone(),
        sha256: h.clone(),
    }));
    v.push(Action::Capabilities);
    v.extend(st.services.iter().map(|(id, r)| Action::Service {
        id: id.clone(),
        record: r.clone(),
    }));
    v.extend(st.exposed.iter().cloned().map(Action::Link));
    v.extend(st.path_blocks.iter().map(|b| Action::Profile {
        block: b.clone(),
        stack: st.stack.clone(),
    }));
    v
}

impl Action {
    /// What reverting it does, in words (`--dry-run` prints these).
    pub fn describe(&self, keep_models: bool) -> String {
        match self {
            Action::Dir(d) => format!("remove directory {} if nothing else is in it", d.display()),
            Action::Files { id, kind, paths } if kind == "model" && keep_models => {
                format!("keep {} ({id}, --keep-models)", paths.join(", "))
            }
            Action::Files { id, paths, .. } => format!("remove {} ({id})", paths.join(", ")),
            Action::Hub { id, changes } if keep_models => format!(
                "keep what {id} added to the Hugging Face cache ({} entries, --keep-models)",
                changes.len()
            ),
            Action::Hub { id, changes } => format!(
                "remove what {id} added to the Hugging Face cache: {}",
                some_of(
                    changes
                        .iter()
                        .filter(|c| c.made != "dir")
                        .map(|c| c.path.as_str())
                )
            ),
            Action::Undo { id, argv } => {
                format!("run {id}'s uninstall command: {}", argv.join(" "))
            }
            Action::ConfigDir(d) => format!("remove directory {d} if nothing else is in it"),
            Action::Config { path, .. } => {
                format!("remove {path} (kept if you changed it since onramp wrote it)")
            }
            Action::Capabilities => format!("remove {}", crate::capabilities::FILE),
            Action::Service { id, record } => format!(
                "stop service {id} and remove what starts it ({} {})",
                record.manager, record.handle
            ),
            Action::Link(l) => format!("remove the link {} (to {})", l.path, l.target),
            Action::Profile { block, .. } => {
                format!("remove onramp's PATH block from {}", block.file)
            }
        }
    }

    /// Undo it. Errors are the ones that leave something behind (a file
    /// that cannot be removed); a failing extra uninstall command is said
    /// and the uninstall goes on.
    pub fn revert(&self, r: &Revert) -> Result<Outcome> {
        crate::signal::check()?;
        match self {
            Action::Dir(d) => Ok(match rmdir_if_empty(d)? {
                true => Outcome::Undone(format!("removed directory {}", d.display())),
                false => Outcome::Nothing,
            }),
            Action::Files { id, kind, paths } => {
                if kind == "model" && r.keep_models {
                    return Ok(Outcome::Kept(format!(
                        "{} ({id}, --keep-models)",
                        some_of(paths.iter().map(String::as_str))
                    )));
                }
                let there: Vec<&String> = paths
                    .iter()
                    .filter(|p| crate::beneath::exists(r.prefix, p).unwrap_or(false))
                    .collect();
                crate::beneath::remove_files(r.prefix, paths, &[])?;
                Ok(match there.is_empty() {
                    true => Outcome::Nothing,
                    false => Outcome::Undone(format!(
                        "removed {} ({id})",
                        some_of(there.iter().map(|s| s.as_str()))
                    )),
                })
            }
            Action::Hub { id, changes } => {
                if r.keep_models {
                    return Ok(Outcome::Kept(format!(
                        "what {id} added to the Hugging Face cache (--keep-models)"
                    )));
                }
                let done = crate::hubcache::revert(changes)?;
                Ok(match done.is_empty() {
                    true => Outcome::Nothing,
                    false => Outcome::Undone(format!(
                        "removed what {id} added to the Hugging Face cache ({} entries)",
                        done.len()
                    )),
                })
            }
            Action::Undo { id, argv } => {
                if !r.prefix.is_dir() {
                    return Ok(Outcome::Nothing);
                }
                let o = crate::run::run(argv, r.prefix, r.env, Duration::from_secs(600), true)?;
                Ok(match o.ok() {
                    true => Outcome::Undone(format!("ran {id}'s uninstall command")),
                    false => Outcome::Kept(format!(
                        "{id}'s uninstall command failed ({}); its files are removed anyway, undo the rest by hand",
                        o.describe()
                    )),
                })
            }
            Action::ConfigDir(d) => {
                crate::beneath::check_rel("a configure directory", d)?;
                Ok(match crate::beneath::rmdir_if_empty(r.prefix, d)? {
                    true => Outcome::Undone(format!("removed directory {d}")),
                    false => Outcome::Nothing,
                })
            }
            Action::Config { path, sha256 } => {
                crate::beneath::check_rel("a config file", path)?;
                let now = match crate::beneath::read(r.prefix, path)? {
                    Some(b) => crate::fsutil::sha256_bytes(&b),
                    None if !crate::beneath::exists(r.prefix, path)? => {
                        return Ok(Outcome::Nothing);
                    }
                    // A link or something else onramp did not write.
                    None => String::new(),
                };
                if &now != sha256 {
                    return Ok(Outcome::Kept(format!(
                        "{path} (you changed it after onramp wrote it)"
                    )));
                }
                crate::beneath::remove_files(r.prefix, std::slice::from_ref(path), &[])?;
                Ok(Outcome::Undone(format!("removed {path}")))
            }
            Action::Capabilities => {
                let f = crate::capabilities::FILE.to_string();
                if !crate::beneath::exists(r.prefix, &f)? {
                    return Ok(Outcome::Nothing);
                }
                crate::beneath::remove_files(r.prefix, std::slice::from_ref(&f), &[])?;
                Ok(Outcome::Undone(format!("removed {f}")))
            }
            Action::Service { id, record } => {
                crate::service::remove(record, Duration::from_secs(10))?;
                Ok(Outcome::Undone(format!(
                    "stopped service {id} ({})",
                    record.manager
                )))
            }
            Action::Link(l) => Ok(match crate::expose::remove_link(l)? {
                true => Outcome::Undone(format!("removed the link {}", l.path)),
                false if std::fs::symlink_metadata(&l.path).is_ok() => {
                    Outcome::Kept(format!("{} (it is no longer onramp's link)", l.path))
                }
                false => Outcome::Nothing,
            }),
            Action::Profile { block, stack } => {
                Ok(match crate::expose::remove_block(block, stack)? {
                    true => {
                        Outcome::Undone(format!("removed onramp's PATH block from {}", block.file))
                    }
                    false => Outcome::Nothing,
                })
            }
        }
    }
}

/// Remove `d` when it is an empty directory. True when it went.
pub fn rmdir_if_empty(d: &Path) -> Result<bool> {
    match crate::fault::io("unlink", d, || std::fs::remove_dir(d)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound || crate::beneath::not_removable(&e) => {
            Ok(false)
        }
        Err(e) => Err(Error::io("cannot remove directory", d, e)),
    }
}

/// Paths for one line of output: all of a few, else the first ones and
/// how many more (an extra's venv is thousands of files).
fn some_of<'a>(paths: impl Iterator<Item = &'a str>) -> String {
    const SHOWN: usize = 5;
    let all: Vec<&str> = paths.collect();
    if all.len() <= SHOWN {
        return all.join(", ");
    }
    format!(
        "{} files: {}, and {} more",
        all.len(),
        all[..SHOWN].join(", "),
        all.len() - SHOWN
    )
}

#[cfg(test)]
mod some_of_tests {
    #[test]
    fn a_long_list_is_summarized() {
        let few = ["a", "b"];
        assert_eq!(super::some_of(few.into_iter()), "a, b");
        let many: Vec<String> = (0..1500).map(|i| format!("venv/lib/f{i}.py")).collect();
        let line = super::some_of(many.iter().map(String::as_str));
        assert!(line.starts_with("1500 files: venv/lib/f0.py, "), "{line}");
        assert!(line.ends_with(", and 1495 more"), "{line}");
        assert!(line.len() < 200);
    }
}
