//! Detect: decide the values later phases depend on (OS, arch, target, GPU,
//! paths) and record them in the state. A value already decided is never
//! re-decided, so a resumed install sees exactly what the first run saw.

use super::Ctx;
use crate::error::Result;

pub fn run(ctx: &mut Ctx) -> Result<String> {
    let d = &mut ctx.st.decided;
    d.os.get_or_insert_with(|| crate::platform::os().to_string());
    d.arch
        .get_or_insert_with(|| crate::platform::arch().to_string());
    d.target.get_or_insert_with(|| ctx.target.clone());
    d.gpu.get_or_insert_with(crate::platform::gpu);
    d.prefix
        .get_or_insert_with(|| ctx.prefix.display().to_string());
    d.cache_dir
        .get_or_insert_with(|| ctx.cache.root.display().to_string());
    let msg = format!(
        "os {}, arch {}, gpu {}, prefix {}",
        d.os.as_deref().unwrap_or("?"),
        d.arch.as_deref().unwrap_or("?"),
        d.gpu.as_deref().unwrap_or("?"),
        d.prefix.as_deref().unwrap_or("?")
    );
    ctx.save()?;
    Ok(msg)
}
