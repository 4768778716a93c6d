//! Configure: create directories and write config files atomically. A file
//! the user changed since onramp wrote it is never overwritten: the new
//! version goes beside it as `<name>.new`, and the summary says so.

use super::Ctx;
use crate::error::{Code, Error, Result};
use crate::fsutil;

pub fn run(ctx: &mut Ctx) -> Result<String> {
    let cfg = ctx.man.m.configure.clone();
    fsutil::mkdirs(&ctx.prefix)?;
    for d in &cfg.dirs {
        fsutil::mkdirs(&ctx.prefix.join(d))?;
    }
    let mut written = 0;
    let mut kept = Vec::new();
    for f in &cfg.files {
        let data = match (&f.content, &f.source) {
            (Some(c), _) => c.clone().into_bytes(),
            (None, Some(s)) => {
                let p = ctx.man.dir.join(s);
                std::fs::read(&p).map_err(|e| {
                    Error::new(
                        Code::Manifest,
                        format!("configure: cannot read {}: {e}", p.display()),
                    )
                })?
            }
            (None, None) => continue,
        };
        let mode = f
            .mode
            .as_deref()
            .and_then(crate::manifest::parse_mode)
            .unwrap_or(0o644);
        let dest = ctx.prefix.join(&f.path);
        if let Some(parent) = dest.parent() {
            fsutil::mkdirs(parent)?;
            fsutil::remove_orphans(parent);
        }
        let new_sha = fsutil::sha256_bytes(&data);
        let cur_sha = std::fs::read(&dest).ok().map(|c| fsutil::sha256_bytes(&c));
        let user_changed = cur_sha
            .as_ref()
            .is_some_and(|c| c != &new_sha && ctx.st.managed_files.get(&f.path) != Some(c));
        // Already as it should be: left alone (same inode, same mtime).
        let same_mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::symlink_metadata(&dest)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o7777 == mode)
        };
        if cur_sha.as_ref() == Some(&new_sha) && same_mode {
            if ctx.st.managed_files.get(&f.path) != Some(&new_sha) {
                ctx.st.managed_files.insert(f.path.clone(), new_sha);
                ctx.save()?;
            }
            continue;
        }
        if user_changed {
            let side = dest.with_file_name(format!(
                "{}.new",
                dest.file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            fsutil::write_atomic(&side, &data, mode)?;
            ctx.rep.warn(&format!(
                "{} was changed by you; kept it and wrote the new version to {}",
                f.path,
                side.display()
            ));
            kept.push(f.path.clone());
            continue;
        }
        fsutil::write_atomic(&dest, &data, mode)?;
        ctx.st.managed_files.insert(f.path.clone(), new_sha);
        ctx.save()?;
        written += 1;
    }
    let mut msg = format!(
        "{} dir(s), {written} file(s) written, {} already as they should be",
        cfg.dirs.len(),
        cfg.files.len() - written - kept.len()
    );
    if !kept.is_empty() {
        msg.push_str(&format!(
            ", {} kept as changed by you (see *.new)",
            kept.len()
        ));
    }
    Ok(msg)
}
