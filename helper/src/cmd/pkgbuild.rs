//! `onramp pkgbuild`: read a PKGBUILD (statically or locked down) and print
//! its .SRCINFO or JSON.

use super::args::{self, Command, Parser};
use crate::error::{Code, Error, Result, err};
use crate::out;
use std::path::Path;

/// `onramp pkgbuild (srcinfo | json) FILE`.
pub struct Pkgbuild {
    action: String,
    file: String,
    carch: Option<String>,
    eval: bool,
    timeout: Option<u64>,
    build_user: Option<String>,
}

const CARCH: args::Opt = args::Opt {
    name: "--carch",
    value: "ARCH",
    help: "read it for this architecture (default: this machine's)",
};
const EVAL: args::Opt = args::Opt {
    name: "--eval",
    value: "",
    help: "source it in a locked-down bash instead of reading it statically",
};
const TIMEOUT: args::Opt = args::Opt {
    name: "--timeout",
    value: "SECS",
    help: "(--eval) give up after this long (default 30)",
};

impl Command for Pkgbuild {
    const NAME: &'static str = "pkgbuild";
    const USAGE: &'static str = "(srcinfo | json) FILE [--carch ARCH] [--eval [--timeout S]]";
    const ABOUT: &'static str = "Read a PKGBUILD without running it and print its .SRCINFO as makepkg --printsrcinfo would (srcinfo), or what the build engine uses, for ARCH, as JSON (json); refuses (exit 3, naming the construct and line) what needs execution. --eval sources it in a locked-down bash instead (no environment, no network, as nobody when root, 30 s), as makepkg does: only for recipes you would build anyway.";
    fn parse(p: &mut Parser) -> Result<Self> {
        let carch = p.value(&CARCH)?;
        let eval = p.switch(&EVAL);
        let timeout = p.value(&TIMEOUT)?;
        let build_user = p.value(&args::BUILD_USER)?;
        let mut w = p.words(2)?.into_iter();
        Ok(Pkgbuild {
            action: w.next().unwrap_or_default(),
            file: w.next().unwrap_or_default(),
            carch,
            eval,
            timeout,
            build_user,
        })
    }
    fn run(self) -> Result<i32> {
        args::export_build_user(self.build_user.as_deref());
        pkgbuild(&self)
    }
}

fn pkgbuild(f: &Pkgbuild) -> Result<i32> {
    let json = match f.action.as_str() {
        "srcinfo" => false,
        "json" => true,
        other => {
            return err(
                Code::Usage,
                format!("unknown pkgbuild action {other:?} (srcinfo, json)"),
            );
        }
    };
    let path = Path::new(&f.file);
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
            path.parent(),
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
