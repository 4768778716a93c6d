//! Rollback and freeze protection (TUF's): a manifest's `serial` must not
//! be lower than the highest this machine accepted for the same stack, and
//! its `expires` must not have passed. What was accepted is kept per stack
//! in the state root (`serials/`, outside any prefix), written atomically.
//! Both fields are covered by the manifest's signature.

use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::manifest::Loaded;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What the user allowed.
#[derive(Clone, Copy, Default)]
pub struct Allow {
    pub downgrade: bool,
    pub expired: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    stack: String,
    serial: u64,
    manifest_sha256: String,
    accepted_at: String,
}

/// Drop what this machine accepted for `stack` (its last install went).
pub fn forget(root: &Path, stack: &str) -> Result<()> {
    let p = record_path(root, stack);
    match crate::fault::io("unlink", &p, || std::fs::remove_file(&p)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("cannot remove", &p, e).internal_as(Code::State)),
    }
}

fn record_path(root: &Path, stack: &str) -> PathBuf {
    let h = fsutil::sha256_bytes(stack.as_bytes());
    root.join("serials").join(format!("{}.json", &h[..16]))
}

/// The highest serial accepted for `stack`, if any. An unreadable record is
/// an error, not "none": losing it would allow a rollback.
fn accepted(root: &Path, stack: &str) -> Result<Option<Record>> {
    let p = record_path(root, stack);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            Error::new(
                Code::State,
                format!(
                    "{} is damaged ({e}); it records the newest release of {stack} this machine accepted. Remove it only if you trust the manifest you are installing",
                    p.display()
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("cannot read", &p, e).internal_as(Code::State)),
    }
}

/// Refuse an expired manifest or one older than what was accepted.
pub fn check(man: &Loaded, root: &Path, allow: Allow) -> Result<()> {
    if let Some(exp) = &man.m.expires
        && let Some(t) = fsutil::parse_rfc3339(exp)
        && (fsutil::now_unix() as i64) > t
    {
        if allow.expired {
            crate::out::line(&format!(
                "onramp: warning: manifest {} expired at {exp}; installing it anyway (--allow-expired)",
                man.m.name
            ));
        } else {
            return err(
                Code::Integrity,
                format!(
                    "the manifest of {} expired at {exp}: a mirror may be serving an old release; get the current one, or pass --allow-expired to install this one (an air-gapped bundle)",
                    man.m.name
                ),
            );
        }
    }
    let Some(rec) = accepted(root, &man.m.name)? else {
        return Ok(());
    };
    let serial = man.m.serial.unwrap_or(0);
    if serial < rec.serial {
        if allow.downgrade {
            crate::out::line(&format!(
                "onramp: warning: installing serial {serial} of {} over serial {} (--allow-downgrade)",
                man.m.name, rec.serial
            ));
            return Ok(());
        }
        return err(
            Code::Integrity,
            format!(
                "the manifest of {} has serial {serial}, but this machine accepted serial {} on {}: that is a rollback to an older release; refusing it (pass --allow-downgrade to install an older release on purpose)",
                man.m.name, rec.serial, rec.accepted_at
            ),
        );
    }
    Ok(())
}

/// Record `man`'s serial as accepted when it is the highest yet (a
/// downgrade allowed by the user lowers it).
pub fn accept(man: &Loaded, root: &Path) -> Result<()> {
    let Some(serial) = man.m.serial else {
        return Ok(());
    };
    if let Some(rec) = accepted(root, &man.m.name)?
        && rec.serial == serial
        && rec.manifest_sha256 == man.sha256
    {
        return Ok(());
    }
    let rec = Record {
        stack: man.m.name.clone(),
        serial,
        manifest_sha256: man.sha256.clone(),
        accepted_at: fsutil::now_rfc3339(),
    };
    let p = record_path(root, &man.m.name);
    let state = |e: Error| e.internal_as(Code::State);
    fsutil::make_root(root, crate::trust::STATE_FIX).map_err(state)?;
    if let Some(dir) = p.parent() {
        fsutil::mkdirs(dir).map_err(state)?;
    }
    let mut body = serde_json::to_vec_pretty(&rec)
        .map_err(|e| Error::new(Code::Internal, format!("serial record: {e}")))?;
    body.push(b'\n');
    fsutil::write_atomic(&p, &body, 0o644).map_err(state)
}
