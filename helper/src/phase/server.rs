//! Server: install or upgrade the inference server. Versions live side by
//! side under `<install_dir>/versions/<version>`; `<install_dir>/current` is
//! a symlink (on Windows a copy, see `sys::link_dir`) switched only after
//! the new version passes its version check. A failed upgrade leaves (or
//! puts back) the previous one.

use super::Ctx;
use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::manifest::Component;
use std::path::Path;
use std::time::Duration;

pub fn run(ctx: &mut Ctx) -> Result<String> {
    let todo = ctx.runnable("server")?;
    if todo.is_empty() {
        return Ok("no server to install".into());
    }
    for p in todo {
        ctx.rep.working(&p.id, "");
        let res = install(ctx, &p);
        ctx.record(&p.id, res)?;
    }
    Ok(String::new())
}

/// Does the version in `dir` answer its check with the expected version?
fn check(ctx: &Ctx, c: &Component, dir: &Path) -> std::result::Result<(), String> {
    let Some(vc) = &c.version_check else {
        return Ok(());
    };
    let timeout = Duration::from_secs(vc.timeout_s.unwrap_or(30));
    match crate::run::run(&vc.command, dir, &ctx.env(), timeout, false) {
        Ok(o) if o.ok() && o.stdout.contains(&vc.expect) => Ok(()),
        Ok(o) if o.ok() => Err(format!(
            "it reports {:?}, expected {:?}",
            o.stdout.trim(),
            vc.expect
        )),
        Ok(o) => Err(o.describe()),
        Err(e) => Err(e.msg),
    }
}

fn install(ctx: &mut Ctx, p: &crate::plan::Planned) -> Result<Option<String>> {
    let c = ctx
        .man
        .component(&p.id)
        .cloned()
        .ok_or_else(|| Error::new(Code::Internal, format!("no component {}", p.id)))?;
    let (Some(dir), Some(version)) = (c.install_dir.clone(), c.version.clone()) else {
        return err(
            Code::Manifest,
            format!("{}: a server needs install_dir and version", p.id),
        );
    };
    let base = ctx.prefix.join(&dir);
    let current = base.join("current");
    let versions = base.join("versions");
    let previous = crate::sys::read_dir_link(&current).ok();
    // Installed already: trusted only while its files are as placed.
    let intact = crate::stamp::load(&ctx.store.dir, &p.id)
        .is_none_or(|s| crate::stamp::check(&ctx.prefix, &s, false).is_ok_and(|f| f.is_empty()));
    if previous.is_some() && intact && check(ctx, &c, &current).is_ok() {
        return Ok(Some(format!("{version} is current; nothing to do")));
    }
    let cached = ctx.fetch(p)?;
    fsutil::mkdirs(&versions)?;
    fsutil::remove_orphans(&versions);
    fsutil::remove_orphans(&base);
    let staging = fsutil::temp_beside(&versions.join(&version));
    let kind = p.unpack.ok_or_else(|| {
        Error::new(
            Code::Manifest,
            format!("{}: server artifact is not an archive", p.id),
        )
    })?;
    let sha = p.want.as_ref().map(|w| w.sha256.as_str());
    let limits = crate::archive::Limits::for_file(&cached, p.unpacked_size, sha);
    if let Err(e) = crate::archive::extract(&cached, kind, &staging, &limits) {
        crate::fsutil::remove_tree(&staging);
        return Err(e);
    }
    let prev_name = previous
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "none".into());
    if let Err(why) = check(ctx, &c, &staging) {
        crate::fsutil::remove_tree(&staging);
        return err(
            Code::Internal,
            format!("{version} failed its version check ({why}); rolled back, kept {prev_name}"),
        );
    }
    let target_rel = Path::new("versions").join(&version);
    crate::fsutil::replace_dir(&staging, &base.join(&target_rel))?;
    switch(&base, &target_rel)?;
    if let Err(why) = check(ctx, &c, &current) {
        // Put the previous version back.
        match &previous {
            Some(prev) => switch(&base, prev)?,
            None => {
                let _ =
                    crate::fault::io("unlink", &current, || crate::sys::remove_dir_link(&current));
            }
        }
        crate::fsutil::remove_tree(base.join(&target_rel));
        return err(
            Code::Internal,
            format!(
                "{version} failed its check after the switch ({why}); rolled back to {prev_name}"
            ),
        );
    }
    // The new version is live: drop the others.
    if let Ok(rd) = std::fs::read_dir(&versions) {
        for e in rd.flatten() {
            if e.file_name() != version.as_str() {
                crate::fsutil::remove_tree(e.path());
            }
        }
    }
    let how = match previous {
        Some(p) if p == target_rel => {
            format!("reinstalled {version} (its installed files had changed)")
        }
        Some(_) => format!("upgraded from {prev_name} to {version}"),
        None => format!("installed {version}"),
    };
    Ok(Some(how))
}

/// Point `base/current` at `rel` atomically (new symlink, rename over).
fn switch(base: &Path, rel: &Path) -> Result<()> {
    let current = base.join("current");
    let tmp = fsutil::temp_beside(&current);
    let _ = crate::fault::io("unlink", &tmp, || crate::sys::remove_dir_link(&tmp));
    crate::fault::io("symlink", &tmp, || crate::sys::link_dir(rel, &tmp))
        .map_err(|e| Error::io("cannot create link", &tmp, e))?;
    crate::fault::io("rename", &current, || {
        crate::sys::replace_dir_link(&tmp, &current)
    })
    .map_err(|e| Error::io("cannot switch", &current, e))?;
    fsutil::sync_dir(base)
}
