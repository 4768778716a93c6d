//! Models: fetch, verify and place each model. Downloads run at once under
//! one connection budget that serves the smallest model first; each model
//! is placed and its capability announced the moment it is verified, while
//! larger ones carry on. A model that depends on another model waits for it.

use super::Ctx;
use crate::download::Cache;
use crate::download::budget::Budget;
use crate::error::{Code, Error, Result};
use crate::plan::Planned;
use crate::state::Status;
use std::path::PathBuf;
use std::sync::Arc;

pub fn run(ctx: &mut Ctx) -> Result<String> {
    let todo = ctx.runnable("models")?;
    if todo.is_empty() {
        return Ok("no models to install".into());
    }
    let n = todo.len();
    let phase_total: u64 = todo
        .iter()
        .filter_map(|p| p.want.as_ref())
        .fold(0u64, |a, w| a.saturating_add(w.size));
    let base = ctx.rep.bytes_done();
    ctx.rep.set_phase_bytes(base, phase_total);
    // Models whose dependencies are all done go together; the others after.
    let (ready, after): (Vec<Planned>, Vec<Planned>) = todo
        .into_iter()
        .partition(|p| ctx.blocked_by(&p.id).is_none());
    // Local files and cached artifacts gain nothing from running at once:
    // they go first, smallest first, then the downloads overlap.
    let (together, local): (Vec<Planned>, Vec<Planned>) = ready.into_iter().partition(|p| {
        p.want
            .as_ref()
            .is_some_and(|w| w.source.remote() && ctx.cache.lookup(w).is_none())
    });
    for p in local {
        ctx.rep.working(&p.id, "");
        let res = ctx.fetch(&p).and_then(|path| place(ctx, &p, &path));
        ctx.record(&p.id, res)?;
    }
    let mut opts = ctx.opts.clone();
    let budget = Arc::new(Budget::new(opts.connections));
    for w in together.iter().filter_map(|p| p.want.as_ref()) {
        budget.expect(w.size);
    }
    opts.budget = Some(budget);
    let cache = Cache::new(ctx.cache.root.clone());
    let rep = ctx.rep.clone();
    let mut fatal: Option<Error> = None;
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel::<(String, Result<PathBuf>)>();
        for p in &together {
            rep.working(&p.id, "");
            let (tx, cache, opts, rep) = (tx.clone(), &cache, &opts, &rep);
            s.spawn(move || {
                let res = match &p.want {
                    Some(w) => cache.ensure(w, opts, rep),
                    None => Err(Error::new(
                        Code::Internal,
                        format!("{} has no artifact", p.id),
                    )),
                };
                let _ = tx.send((p.id.clone(), res));
            });
        }
        drop(tx);
        // In the order they finish: place, record, announce.
        for (id, res) in rx {
            let Some(p) = together.iter().find(|p| p.id == id) else {
                continue;
            };
            let res = res.and_then(|path| place(ctx, p, &path));
            if let Err(e) = ctx.record(&id, res)
                && fatal.is_none()
            {
                fatal = Some(e);
            }
        }
    });
    if let Some(e) = fatal {
        return Err(e);
    }
    for p in after {
        if let Some(why) = ctx.blocked_by(&p.id) {
            ctx.finish_step(&p.id, Status::Skipped, Some(why))?;
            continue;
        }
        ctx.rep.working(&p.id, "");
        let res = ctx.fetch(&p).and_then(|path| place(ctx, &p, &path));
        ctx.record(&p.id, res)?;
    }
    Ok(format!("{n} model(s) processed"))
}

/// Put a verified artifact (a model's, an extra's) into the prefix:
/// unpacked, or as a single file.
pub(super) fn place(
    ctx: &mut Ctx,
    p: &Planned,
    cached: &std::path::Path,
) -> Result<Option<String>> {
    let c = ctx
        .man
        .component(&p.id)
        .cloned()
        .ok_or_else(|| Error::new(Code::Internal, format!("no component {}", p.id)))?;
    let size = p.want.as_ref().map(|w| w.size).unwrap_or(0);
    let step = ctx.st.step_mut(&p.id)?;
    step.bytes_done = size;
    step.bytes_total = size;
    if let Some(dir) = &c.install_dir
        && p.unpack.is_some()
    {
        ctx.unpack_into(p, cached, dir)?;
        return Ok(Some(format!("unpacked into {dir}")));
    }
    let rel = c
        .install_path
        .ok_or_else(|| Error::new(Code::Manifest, format!("{} has no install_path", p.id)))?;
    let sha = p
        .want
        .as_ref()
        .map(|w| w.sha256.as_str())
        .unwrap_or_default();
    // The directories inside the prefix are made (and checked) by
    // descriptor: a link on the way is refused, never placed through.
    crate::fsutil::mkdirs(&ctx.prefix)?;
    crate::beneath::mkdirs_above(&ctx.prefix, &rel)?;
    crate::download::place(&ctx.cache, cached, &ctx.prefix.join(&rel), sha)?;
    let mut said = format!("installed {rel}");
    if c.hub_cache
        && let Some(crate::manifest::Source::Hf(h)) = p.want.as_ref().map(|w| &w.source)
    {
        let (st, store, id) = (&mut ctx.st, &ctx.store, p.id.clone());
        let mut note = |ch: crate::state::HubChange| -> Result<()> {
            let step = st.step_mut(&id)?;
            if !step.hub.contains(&ch) {
                step.hub.push(ch);
            }
            store.save(st)
        };
        let how = crate::hubcache::put(&ctx.cache, cached, h, sha, &mut note)?;
        ctx.rep.info(&format!("{}: {how}", p.id));
        said.push_str(&format!("; {how}"));
    }
    Ok(Some(said))
}
