//! Placing a verified model file into the Hugging Face hub cache, laid out
//! as huggingface_hub lays it out, so the servers that load models through
//! it (Lemonade, transformers, llama.cpp's `-hf`) find it without a second
//! download: `models--ORG--NAME/blobs/SHA256` (a link to onramp's verified
//! cache entry where the filesystem allows, else a verified copy),
//! `snapshots/COMMIT/FILE` as a relative link to the blob (a copy where
//! links cannot be made), and `refs/BRANCH` holding the commit. Every
//! change is noted (`state::HubChange`) before it is made, and `revert`
//! undoes exactly those.

use crate::download::{Cache, place};
use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::manifest::HfRef;
use crate::state::HubChange;
use std::fs;
use std::path::{Path, PathBuf};

const FIX: &str = "set HF_HUB_CACHE (or HF_HOME) to a directory only root can write, or run the installer without sudo";

/// The hub cache to place into, made and (as root) checked: no directory
/// on the way may be writable by another user.
pub fn root(note: &mut dyn FnMut(HubChange) -> Result<()>) -> Result<PathBuf> {
    let hub = crate::download::hub::hub_cache_dir().ok_or_else(|| {
        Error::new(
            Code::State,
            "cannot find the Hugging Face hub cache: set HF_HUB_CACHE, HF_HOME or HOME",
        )
    })?;
    let hub = fsutil::absolute(&hub)?;
    make_dirs(&hub, note)?;
    Ok(hub)
}

/// Make `dir` (each missing directory noted first), checking every
/// directory on the way: as root, nothing is written into one another user
/// could change, one that was already there included.
fn make_dirs(dir: &Path, note: &mut dyn FnMut(HubChange) -> Result<()>) -> Result<()> {
    for d in fsutil::missing_dirs(dir) {
        note(HubChange {
            path: d.display().to_string(),
            made: "dir".into(),
            was: None,
        })?;
    }
    fsutil::dir(dir, fsutil::Last::Private, Some(FIX))
}

/// Place `cached` (verified, sha256 `sha`) as `h.file` of `h.revision`.
/// Returns what it did, in words.
pub fn put(
    cache: &Cache,
    cached: &Path,
    h: &HfRef,
    sha: &str,
    note: &mut dyn FnMut(HubChange) -> Result<()>,
) -> Result<String> {
    let hub = root(note)?;
    let repo = hub.join(h.cache_folder());
    let blob = repo.join("blobs").join(sha);
    make_dirs(&repo.join("blobs"), note)?;
    match fs::symlink_metadata(&blob) {
        Ok(m) if m.is_file() && fsutil::sha256_file(&blob).is_ok_and(|s| s == sha) => {}
        Ok(m) if !m.is_file() => {
            return err(
                Code::State,
                format!(
                    "{} is there and is not a file; remove it and run the installer again",
                    blob.display()
                ),
            );
        }
        other => {
            // Missing, or bytes that are not its name: ours replace them.
            if other.is_err() {
                note(HubChange {
                    path: blob.display().to_string(),
                    made: "blob".into(),
                    was: None,
                })?;
            }
            place(cache, cached, &blob, sha)?;
        }
    }
    let snap = repo.join("snapshots").join(&h.revision).join(&h.file);
    let depth = h.file.matches('/').count();
    let target = PathBuf::from(format!("{}../../blobs/{sha}", "../".repeat(depth)));
    make_dirs(snap.parent().unwrap_or(&repo), note)?;
    match fs::symlink_metadata(&snap) {
        Ok(m) if m.file_type().is_symlink() && fs::read_link(&snap).is_ok_and(|t| t == target) => {}
        Ok(m) if m.is_file() && fsutil::sha256_file(&snap).is_ok_and(|s| s == sha) => {}
        Ok(_) => {
            return err(
                Code::State,
                format!(
                    "{} is there with other content; remove it (huggingface_hub fetches it again) and run the installer again",
                    snap.display()
                ),
            );
        }
        Err(_) => {
            note(HubChange {
                path: snap.display().to_string(),
                made: "link".into(),
                was: None,
            })?;
            if crate::sys::symlink(&target, &snap).is_err() {
                // Where links cannot be made (Windows without the
                // privilege), huggingface_hub keeps a copy: so do we.
                place(cache, cached, &snap, sha)?;
            }
        }
    }
    let mut said = format!(
        "placed in the Hugging Face cache as {}/snapshots/{}/{}",
        h.cache_folder(),
        &h.revision[..h.revision.len().min(12)],
        h.file
    );
    if let Some(b) = &h.branch {
        // Checked when the manifest was read; again here, where it names a
        // file root writes.
        if !crate::manifest::is_ref_name(b) {
            return err(Code::Manifest, format!("branch {b:?} is not a ref name"));
        }
        let refs = repo.join("refs");
        make_dirs(&refs, note)?;
        let rf = refs.join(b);
        if b.contains('/') {
            make_dirs(rf.parent().unwrap_or(&refs), note)?;
        }
        let old = crate::download::open_nofollow(&rf).ok().and_then(|f| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::Read::take(f, 257), &mut s)
                .ok()
                .map(|_| s)
        });
        if old.as_ref().is_some_and(|o| o.len() > 256)
            || (old.is_none() && fs::symlink_metadata(&rf).is_ok())
        {
            return err(
                Code::State,
                format!(
                    "{} is not a ref file; remove it and run the installer again",
                    rf.display()
                ),
            );
        }
        if old.as_deref().map(str::trim) != Some(h.revision.as_str()) {
            note(HubChange {
                path: rf.display().to_string(),
                made: "ref".into(),
                was: old,
            })?;
            fsutil::write_atomic(&rf, h.revision.as_bytes(), 0o644)?;
            said.push_str(&format!(", refs/{b}"));
        }
    }
    Ok(said)
}

/// Undo changes (last first). Returns what was undone, in words.
pub fn revert(changes: &[HubChange]) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for c in changes.iter().rev() {
        crate::signal::check()?;
        let p = Path::new(&c.path);
        let Ok(m) = fs::symlink_metadata(p) else {
            continue;
        };
        // As root, nothing is removed by path in a directory another user
        // could have changed since the install.
        if let Some(dir) = p.parent() {
            crate::trust::check(dir, FIX)?;
        }
        match c.made.as_str() {
            "dir" => {
                if m.is_dir() && fs::remove_dir(p).is_ok() {
                    done.push(format!("removed directory {}", p.display()));
                }
            }
            "ref" => match &c.was {
                Some(old) => {
                    fsutil::write_atomic(p, old.as_bytes(), 0o644)?;
                    done.push(format!("put back {}", p.display()));
                }
                None => {
                    fs::remove_file(p).map_err(|e| Error::io("cannot remove", p, e))?;
                    done.push(format!("removed {}", p.display()));
                }
            },
            _ => {
                if !m.is_dir() {
                    fs::remove_file(p).map_err(|e| Error::io("cannot remove", p, e))?;
                    done.push(format!("removed {}", p.display()));
                }
            }
        }
    }
    Ok(done)
}
