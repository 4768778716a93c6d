//! Models: fetch, verify and place each model, smallest first, announcing
//! each capability the moment its model is in place.

use super::Ctx;
use crate::error::{Code, Error, Result};

pub fn run(ctx: &mut Ctx) -> Result<String> {
    let todo = ctx.runnable("models")?;
    if todo.is_empty() {
        return Ok("no models to install".into());
    }
    let n = todo.len();
    let phase_total: u64 = todo
        .iter()
        .filter_map(|p| p.want.as_ref())
        .map(|w| w.size)
        .sum();
    let base = ctx.rep.bytes_done;
    ctx.rep.set_phase_bytes(base, phase_total);
    for p in todo {
        let res = install(ctx, &p);
        ctx.record(&p.id, res)?;
    }
    Ok(format!("{n} model(s) processed"))
}

fn install(ctx: &mut Ctx, p: &crate::plan::Planned) -> Result<Option<String>> {
    let c = ctx
        .man
        .component(&p.id)
        .cloned()
        .ok_or_else(|| Error::new(Code::Internal, format!("no component {}", p.id)))?;
    let cached = ctx.fetch(p)?;
    if let Some(dir) = &c.install_dir
        && p.unpack.is_some()
    {
        ctx.unpack_into(p, &cached, dir)?;
        return Ok(Some(format!("unpacked into {dir}")));
    }
    let rel = c
        .install_path
        .ok_or_else(|| Error::new(Code::Manifest, format!("{} has no install_path", p.id)))?;
    crate::download::place(&cached, &ctx.prefix.join(&rel))?;
    Ok(Some(format!("installed {rel}")))
}
