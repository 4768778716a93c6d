//! The helper binaries a release or bundle carries, one per target, named
//! `onramp-VERSION-TARGET` (`.exe` for Windows) and pinned by sha256 in the
//! installers. Those for other targets are copied and hashed, never run.

use super::copy_in;
use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Is `target` a Windows one (its helper is an `.exe`, pinned in install.ps1)?
pub fn is_windows(target: &str) -> bool {
    target.starts_with("windows-")
}

/// The file name a release gives the helper for `target`.
pub fn helper_file(target: &str) -> String {
    if is_windows(target) {
        format!("onramp-{VERSION}-{target}.exe")
    } else {
        format!("onramp-{VERSION}-{target}")
    }
}

/// The helpers to ship, `--helper TARGET=PATH`; by default this helper,
/// for this machine (it must be static: it runs on every machine).
pub fn helpers(given: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    let mut helpers: BTreeMap<String, PathBuf> = BTreeMap::new();
    for h in given {
        let Some((t, p)) = h.split_once('=') else {
            return err(
                Code::Usage,
                format!("--helper {h:?}: use TARGET=PATH (e.g. linux-aarch64=./onramp)"),
            );
        };
        if t == "any" || !crate::platform::KNOWN_TARGETS.contains(&t) {
            return err(Code::Usage, format!("--helper {h:?}: unknown target {t:?}"));
        }
        helpers.insert(t.to_string(), fsutil::absolute(Path::new(p))?);
    }
    if helpers.is_empty() {
        let me = std::env::current_exe().map_err(|e| {
            Error::new(
                Code::Internal,
                format!("cannot find this helper's file: {e}"),
            )
        })?;
        if !is_static(&me)? {
            return err(
                Code::Usage,
                format!(
                    "{} is not statically linked, so it would not run on every machine; pass --helper {}=PATH to a static build (sh tools/build-helper.sh)",
                    me.display(),
                    crate::platform::target()
                ),
            );
        }
        helpers.insert(crate::platform::target(), me);
    }
    Ok(helpers)
}

/// Copy the helpers in as `onramp-VERSION-TARGET`; their sha256 by target.
pub fn copy_helpers(
    helpers: &BTreeMap<String, PathBuf>,
    out_dir: &Path,
) -> Result<BTreeMap<String, String>> {
    let mut pins = BTreeMap::new();
    for (t, p) in helpers {
        check_format(t, p)?;
        let sha = copy_in(p, out_dir, &helper_file(t), None)?;
        pins.insert(t.clone(), sha);
    }
    Ok(pins)
}

/// A Windows helper must be a PE file (it starts with `MZ`) and any other
/// must not be: a swapped `--helper` would be pinned and shipped otherwise.
fn check_format(target: &str, p: &Path) -> Result<()> {
    let mut head = [0u8; 2];
    let n = std::fs::File::open(p)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|e| Error::io("cannot read", p, e))?;
    let pe = n == 2 && &head == b"MZ";
    if pe != is_windows(target) {
        return err(
            Code::Usage,
            format!(
                "--helper {target}={}: {}",
                p.display(),
                if pe {
                    "this is a Windows program (PE), not a helper for this target"
                } else {
                    "a Windows helper must be a Windows program (onramp.exe, a PE file); build it on Windows (README, Windows)"
                }
            ),
        );
    }
    Ok(())
}

/// Is the ELF file at `p` free of a program interpreter (static)?
fn is_static(p: &Path) -> Result<bool> {
    let b = std::fs::read(p).map_err(|e| Error::io("cannot read", p, e))?;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return Ok(false);
    }
    let u16at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16at(54), u16at(56));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > b.len() {
            return Ok(false);
        }
        if u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) == 3 {
            return Ok(false); // PT_INTERP
        }
    }
    Ok(true)
}
