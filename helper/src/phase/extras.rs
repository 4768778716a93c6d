//! Extras: run each extra's install command, then its check command (seed
//! 000's "verify imports"). Output streams as it happens.

use super::Ctx;
use crate::error::{Code, Result, err};
use std::time::Duration;

pub fn run(ctx: &mut Ctx) -> Result<String> {
    let todo = ctx.runnable("extras")?;
    if todo.is_empty() {
        return Ok("no extras to install".into());
    }
    let n = todo.len();
    for p in todo {
        let res = install(ctx, &p.id);
        ctx.record(&p.id, res)?;
    }
    Ok(format!("{n} extra(s) processed"))
}

fn install(ctx: &mut Ctx, id: &str) -> Result<Option<String>> {
    let Some(c) = ctx.man.component(id).cloned() else {
        return err(Code::Internal, format!("no component {id}"));
    };
    crate::fsutil::mkdirs(&ctx.prefix)?;
    let timeout = Duration::from_secs(c.timeout_s.unwrap_or(600));
    let env = ctx.env();
    if let Some(cmd) = &c.command {
        ctx.rep.info(&format!("{id}: running {}", cmd.join(" ")));
        let o = crate::run::run(cmd, &ctx.prefix, &env, timeout, true)?;
        if !o.ok() {
            return err(
                Code::Internal,
                format!("command {} failed ({})", cmd.join(" "), o.describe()),
            );
        }
    }
    if let Some(chk) = &c.check {
        let o = crate::run::run(chk, &ctx.prefix, &env, timeout, true)?;
        if !o.ok() {
            return err(
                Code::Internal,
                format!(
                    "installed, but its check {} failed ({})",
                    chk.join(" "),
                    o.describe()
                ),
            );
        }
        return Ok(Some("installed and checked".into()));
    }
    Ok(Some("installed".into()))
}
