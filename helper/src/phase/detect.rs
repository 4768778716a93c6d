//! Detect: decide the values later phases depend on (OS, arch, target, GPU,
//! paths) and record them in the state. A value already decided is never
//! re-decided, so a resumed install sees exactly what the first run saw.
//! The hardware (`hardware::probe`) is decided earlier, at `begin`, because
//! the plan's variant choices depend on it; this phase reports it.

use super::Ctx;
use crate::error::Result;

pub fn run(ctx: &mut Ctx) -> Result<String> {
    let d = &mut ctx.st.decided;
    d.os.get_or_insert_with(|| crate::platform::os().to_string());
    d.arch
        .get_or_insert_with(|| crate::platform::arch().to_string());
    d.target.get_or_insert_with(|| ctx.target.clone());
    if d.hardware.is_none() {
        d.hardware = ctx.man.chosen.hardware.clone();
    }
    let hw = d.hardware.clone().unwrap_or_default();
    d.gpu.get_or_insert_with(|| hw.gpu.clone());
    d.prefix
        .get_or_insert_with(|| ctx.prefix.display().to_string());
    d.cache_dir
        .get_or_insert_with(|| ctx.cache.root.display().to_string());
    let mut msg = format!(
        "os {}, arch {}, {}, prefix {}",
        d.os.as_deref().unwrap_or("?"),
        d.arch.as_deref().unwrap_or("?"),
        hw.describe(),
        d.prefix.as_deref().unwrap_or("?")
    );
    if let Some(p) = &ctx.man.chosen.profile {
        msg.push_str(&format!("; profile {p}"));
    }
    for l in ctx.man.chosen.describe() {
        msg.push_str(&format!("; {l}"));
    }
    ctx.save()?;
    Ok(msg)
}
