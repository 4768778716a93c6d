//! Workers: components built from PKGBUILD recipes (see `worker`). Each one
//! is built and installed in turn; its version, installed files and
//! capabilities go into the state (and `capabilities.json`). A worker that
//! fails leaves the prefix untouched and fails only itself.

use super::Ctx;
use crate::error::{Code, Result, err};

pub fn run(ctx: &mut Ctx) -> Result<String> {
    let todo = ctx.runnable("workers")?;
    if todo.is_empty() {
        let all = crate::plan::for_phase(&ctx.man, &ctx.plan, "workers").len();
        return Ok(if all == 0 {
            "no workers in this stack".into()
        } else {
            format!("nothing to do for its {all} worker(s)")
        });
    }
    let n = todo.len();
    let mut built = 0;
    for p in todo {
        ctx.rep.working(&p.id, "");
        let res = if p.want.is_some() {
            prebuilt(ctx, &p)
        } else {
            install(ctx, &p.id)
        };
        if res.is_ok() {
            built += 1;
        }
        ctx.record(&p.id, res)?;
    }
    Ok(format!("{built} of {n} worker(s) built and installed"))
}

/// A worker's prebuilt archive for this target, verified and unpacked into
/// its install_dir (the tree swapped in whole), in place of a build.
fn prebuilt(ctx: &mut Ctx, p: &crate::plan::Planned) -> Result<Option<String>> {
    let Some(c) = ctx.man.component(&p.id).cloned() else {
        return err(Code::Internal, format!("no component {}", p.id));
    };
    let dir = crate::worker::install_dir(&c);
    let cached = ctx.fetch(p)?;
    ctx.unpack_into(p, &cached, &dir)?;
    let files: Vec<String> = crate::fsutil::list_files(&ctx.prefix.join(&dir), 100_000)
        .into_iter()
        .map(|f| format!("{dir}/{}", f.replace('\\', "/")))
        .collect();
    let step = ctx.st.step_mut(&p.id)?;
    step.version = c.version.clone();
    let old = std::mem::replace(&mut step.files, files.clone());
    step.unlocked = c.unlocks.iter().map(|u| u.capability.clone()).collect();
    crate::beneath::remove_files(&ctx.prefix, &old, &files)?;
    Ok(Some(format!(
        "{} installed into {dir} ({} files)",
        match &c.version {
            Some(v) => format!("prebuilt {v}"),
            None => "prebuilt build".into(),
        },
        files.len()
    )))
}

fn install(ctx: &mut Ctx, id: &str) -> Result<Option<String>> {
    let Some(c) = ctx.man.component(id).cloned() else {
        return err(Code::Internal, format!("no component {id}"));
    };
    let job = crate::worker::Job {
        comp: &c,
        man: &ctx.man,
        prefix: &ctx.prefix,
        target: &ctx.target,
        cache: &ctx.cache,
        opts: &ctx.opts,
        rep: &ctx.rep,
        allow_skip_checksums: ctx.allow_skip_checksums,
        allow_unpinned_catalog: ctx.allow_unpinned_catalog,
    };
    ctx.cache.take_used();
    let b = crate::worker::run(&job)?;
    let used = ctx.cache.take_used();
    let step = ctx.st.step_mut(id)?;
    step.cached = used;
    step.version = Some(b.version.clone());
    // An upgrade: what the old build installed and this one does not goes.
    let old = std::mem::replace(&mut step.files, b.files.clone());
    step.unlocked = b.capabilities.clone();
    crate::beneath::remove_files(&ctx.prefix, &old, &b.files)?;
    Ok(Some(format!(
        "{} built and installed into {} ({} files)",
        b.version,
        b.install_dir,
        b.files.len()
    )))
}
