//! `onramp download`: one artifact through the cache.

use super::args::{self, Command, Fetch, Local, Parser};
use crate::download::{self, Cache};
use crate::error::{Code, Error, Result, err};
use crate::events::{Format, Reporter};
use crate::fsutil;
use crate::manifest::{Source, Want};
use std::path::Path;

/// `onramp download URL -o PATH --sha256 HEX`.
pub struct Download {
    url: String,
    output: Option<std::path::PathBuf>,
    sha256: Option<String>,
    size: Option<u64>,
    cache_dir: Option<std::path::PathBuf>,
    local: Local,
    fetch: Fetch,
}

const SHA256: args::Opt = args::Opt {
    name: "--sha256",
    value: "HEX",
    help: "the artifact's sha256: the bytes are checked against it",
};
const SIZE: args::Opt = args::Opt {
    name: "--size",
    value: "BYTES",
    help: "the artifact's size (default: asked of the server)",
};

impl Command for Download {
    const NAME: &'static str = "download";
    const USAGE: &'static str =
        "URL -o PATH --sha256 HEX --size BYTES [--connections N] [--mirror BASE]... [--allow-http]";
    const ABOUT: &'static str = "Fetch one artifact through the cache; PATH holds exactly the verified bytes on exit 0, nothing otherwise.";
    fn parse(p: &mut Parser) -> Result<Self> {
        let mut a = Download {
            url: String::new(),
            output: p.path(&args::OUTPUT)?,
            sha256: p.value(&SHA256)?,
            size: p.value(&SIZE)?,
            cache_dir: p.path(&args::CACHE_DIR)?,
            local: Local::parse(p)?,
            fetch: Fetch::parse(p)?,
        };
        a.url = p.words(1)?.remove(0);
        Ok(a)
    }
    fn run(self) -> Result<i32> {
        download(&self)
    }
}

fn download(f: &Download) -> Result<i32> {
    let url = f.url.clone();
    let (Some(out_path), Some(sha)) = (&f.output, &f.sha256) else {
        return err(
            Code::Usage,
            "download needs -o PATH and --sha256 HEX (no checksum, no install)",
        );
    };
    let sha = sha.to_ascii_lowercase();
    if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return err(Code::Usage, "--sha256 must be 64 hex digits");
    }
    let source = if url.starts_with("http://") || url.starts_with("https://") {
        Source::Url(url.clone())
    } else {
        Source::Path(fsutil::absolute(Path::new(&url))?)
    };
    let opts = f.fetch.options(Some(&f.local))?;
    let size = match (f.size, &source) {
        (Some(n), _) => n,
        (None, Source::Path(p)) => std::fs::metadata(p)
            .map_err(|e| Error::io("cannot read", p, e))?
            .len(),
        (None, Source::Url(u)) => {
            download::http::probe_size(&download::http::Client::new(&opts.net)?, u)?
        }
        (None, _) => return err(Code::Usage, "download needs --size BYTES"),
    };
    let want = Want {
        label: out_path.display().to_string(),
        source,
        size,
        sha256: sha,
    };
    let cache_root = download::cache_root(f.cache_dir.as_deref())?;
    crate::trust::check(&cache_root, crate::trust::CACHE_FIX)?;
    let cache = Cache::new(cache_root);
    let rep = crate::events::Progress::new(Reporter::new(None, Format::Ndjson, "models")?);
    rep.set_bytes(0, size);
    let cached = cache.ensure(&want, &opts, &rep)?;
    download::place(&cache, &cached, &fsutil::absolute(out_path)?, &want.sha256)?;
    Ok(0)
}
