//! Extras: fetch and place each extra's own artifact (a wheel, a tarball),
//! run its install command, then its check command (seed 000's "verify
//! imports") with retries. Output streams as it happens.

use super::Ctx;
use crate::error::{Code, Result, err};
use std::time::Duration;

/// Most files an extra's command may leave in the prefix that onramp
/// records (what an untrusted command can make onramp hold in memory).
const MAX_FILES: usize = 200_000;

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
    ctx.rep.working(id, "");
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
        ctx.rep.working(id, &format!("running {}", cmd.join(" ")));
        let before = crate::fsutil::list_files(&ctx.prefix, MAX_FILES);
        let res = crate::run::run(cmd, &ctx.prefix, &env, timeout, true);
        // What it made in the prefix is its own, for an uninstall, even
        // when it failed.
        record_new_files(ctx, id, &before)?;
        let o = res?;
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

/// Add to `id`'s step the files that appeared in the prefix since `before`
/// and that nothing else records (another step, a config file).
fn record_new_files(
    ctx: &mut Ctx,
    id: &str,
    before: &std::collections::BTreeSet<String>,
) -> Result<()> {
    let after = crate::fsutil::list_files(&ctx.prefix, MAX_FILES);
    let claimed = |f: &str| {
        ctx.st.managed_files.contains_key(f)
            || f == crate::capabilities::FILE
            || ctx.st.steps.iter().any(|s| {
                s.files
                    .iter()
                    .any(|o| f == o || f.starts_with(&format!("{o}/")))
            })
    };
    let new: Vec<String> = after
        .difference(before)
        .filter(|f| !claimed(f))
        .cloned()
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let step = ctx.st.step_mut(id)?;
    step.files.extend(new);
    ctx.save()
}
