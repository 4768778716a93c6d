//! Workers: components built from PKGBUILD recipes. This version of onramp
//! cannot build them yet; each worker component is marked failed with that
//! reason (never reported as installed), and a stack without workers passes
//! through this phase with nothing to do.

use super::Ctx;
use crate::error::Result;
use crate::state::Status;

pub fn run(ctx: &mut Ctx) -> Result<String> {
    let todo = ctx.runnable("workers")?;
    if todo.is_empty() {
        return Ok("no workers in this stack".into());
    }
    let n = todo.len();
    for p in todo {
        ctx.finish_step(
            &p.id,
            Status::Failed,
            Some("worker components (PKGBUILD recipes) are not supported by this onramp version; update onramp".into()),
        )?;
    }
    Ok(format!("{n} worker(s) could not be installed"))
}
