//! `onramp pkgbuild`: read a PKGBUILD (statically or locked down) and print
//! its .SRCINFO or JSON.

use crate::cli::Flags;
use crate::error::{Code, Error, Result, err};
use crate::out;
use std::path::Path;

pub fn cmd_pkgbuild(f: &Flags) -> Result<i32> {
    let json = match f.free[0].as_str() {
        "srcinfo" => false,
        "json" => true,
        other => {
            return err(
                Code::Usage,
                format!("unknown pkgbuild action {other:?} (srcinfo, json)"),
            );
        }
    };
    let path = Path::new(&f.free[1]);
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            Code::Manifest,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let carch = f
        .carch
        .clone()
        .unwrap_or_else(|| crate::platform::arch().to_string());
    let refuse = |r: crate::pkgbuild::Refusal| {
        let hint = if f.eval || r.what.starts_with("makepkg rejects") {
            ""
        } else {
            "; this recipe needs --eval (running it in bash) to be read"
        };
        Error::new(Code::Manifest, format!("{}: {r}{hint}", path.display()))
    };
    let recipe = if f.eval {
        let (r, printed) = crate::pkgbuild::eval(
            &text,
            &carch,
            std::time::Duration::from_secs(f.timeout.unwrap_or(30)),
        )
        .map_err(|e| Error::new(e.code, format!("{}: {}", path.display(), e.msg)))?;
        // makepkg passes on what the recipe prints while it is sourced.
        if !printed.is_empty() {
            out::stdout_line(printed.trim_end_matches('\n'));
        }
        r
    } else {
        crate::pkgbuild::parse(&text, &carch).map_err(refuse)?
    };
    let out = crate::pkgbuild::srcinfo(&recipe, path.parent()).map_err(refuse)?;
    if json {
        let meta = crate::pkgbuild::Meta::from_recipe(&recipe, &carch).map_err(refuse)?;
        let text = serde_json::to_string_pretty(&meta)
            .map_err(|e| Error::new(Code::Internal, format!("cannot encode JSON: {e}")))?;
        out::stdout_line(&text);
        return Ok(0);
    }
    out::stdout_line(out.trim_end_matches('\n'));
    Ok(0)
}
