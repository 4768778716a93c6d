//! Extras: fetch and place each extra's own artifact (a wheel, a tarball),
//! run its install command, then its check command (seed 000's "verify
//! imports") with retries. Output streams as it happens.

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
        let res = install(ctx, &p);
        ctx.record(&p.id, res)?;
    }
    Ok(format!("{n} extra(s) processed"))
}

fn install(ctx: &mut Ctx, p: &crate::plan::Planned) -> Result<Option<String>> {
    let id = p.id.as_str();
    let Some(c) = ctx.man.component(id).cloned() else {
        return err(Code::Internal, format!("no component {id}"));
    };
    crate::fsutil::mkdirs(&ctx.prefix)?;
    // Its artifact first, verified like any other, where the command expects it.
    if p.want.is_some() {
        let cached = ctx.fetch(p)?;
        if let Some(msg) = super::models::place(ctx, p, &cached)? {
            ctx.rep.info(&format!("{id}: {msg}"));
        }
    }
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
        let tries = c.retries.unwrap_or(3).max(1);
        let prefix = ctx.prefix.clone();
        let res = super::validate::retry(tries, || {
            crate::run::check(chk, &prefix, &env, timeout, true)
        });
        crate::signal::check()?;
        if let Err(last) = res {
            return err(
                Code::Internal,
                format!(
                    "installed, but its check {} failed after {tries} tries ({last})",
                    chk.join(" ")
                ),
            );
        }
        return Ok(Some("installed and checked".into()));
    }
    Ok(Some("installed".into()))
}
