//! `onramp download`: one artifact through the cache.

use super::*;
use crate::cli::Flags;
use crate::download::{self, Cache};
use crate::error::{Code, Error, Result, err};
use crate::events::{Format, Reporter};
use crate::fsutil;
use crate::manifest::{Source, Want};
use std::path::Path;

pub fn cmd_download(f: &Flags) -> Result<i32> {
    let url = f.free[0].clone();
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
    let opts = options(f)?;
    let size = match (f.size, &source) {
        (Some(n), _) => n,
        (None, Source::Path(p)) => std::fs::metadata(p)
            .map_err(|e| Error::io("cannot read", p, e))?
            .len(),
        (None, Source::Url(u)) => {
            download::http::probe_size(&download::http::Client::new(&opts.net)?, u)?
        }
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
