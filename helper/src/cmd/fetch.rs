//! `onramp fetch-manifest URL`: get a stack's manifest (and its `.minisig`)
//! over https, check the signature, serial and expiry before anything it
//! names is requested, and keep the verified pair in the state root, where
//! later commands read it with `--manifest FILE --manifest-url URL`.

use super::args::{Command, Fresh, Parser, Tls};
use super::check_fresh;
use crate::download::http;
use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::manifest;
use crate::out;
use crate::state;
use std::path::PathBuf;

/// Largest manifest accepted (the demo's is 6 KB).
use crate::manifest::MAX_MANIFEST;

/// Where the copy of the manifest from `url` lives.
fn local_copy(root: &std::path::Path, url: &str) -> PathBuf {
    let h = fsutil::sha256_bytes(url.as_bytes());
    root.join("manifests").join(&h[..16]).join("manifest.json")
}

/// `onramp fetch-manifest URL`.
pub struct FetchManifest {
    url: String,
    trust_keys: Vec<String>,
    fresh: Fresh,
    state_dir: Option<PathBuf>,
    offline: bool,
    tls: Tls,
}

impl Command for FetchManifest {
    const NAME: &'static str = "fetch-manifest";
    const USAGE: &'static str = "URL [--trust-key KEY]... [--ca-file FILE] [--offline]";
    const ABOUT: &'static str = "Fetch a stack's manifest and its .minisig over https, check the signature (with any key trusted), serial and expiry before anything it names is requested, keep the verified pair in the state root and print the kept file's path (pass it as --manifest FILE --manifest-url URL). --offline prints the copy fetched before.";
    fn parse(p: &mut Parser) -> Result<Self> {
        let mut a = FetchManifest {
            url: String::new(),
            trust_keys: p.values(&super::args::TRUST_KEY)?,
            fresh: Fresh::parse(p),
            state_dir: p.path(&super::args::STATE_DIR)?,
            offline: p.switch(&super::args::OFFLINE),
            tls: Tls::parse(p)?,
        };
        a.url = p.words(1)?.remove(0);
        Ok(a)
    }
    fn run(self) -> Result<i32> {
        fetch_manifest(&self)
    }
}

/// A manifest's bytes and its `.minisig` (when the server has one) from
/// `url`, the signature checked when `keys` trusts any (then it must be
/// there). Nothing is kept: the caller parses and stores them.
pub fn fetch_verified(
    url: &str,
    keys: &crate::sign::Keys,
    net: &http::Net,
) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
    check_url(url)?;
    let client = http::Client::new(net)?;
    let bytes = http::get_small(&client, url, MAX_MANIFEST)
        .map_err(|e| Error::new(e.code, format!("cannot fetch the manifest: {}", e.msg)))?;
    let sig_url = format!("{url}.minisig");
    let sig = match http::get_small(&client, &sig_url, crate::sign::MAX_SIG) {
        Ok(s) => Some(s),
        Err(e) if e.code == Code::Network && e.msg.contains(": HTTP 4") => None,
        Err(e) => return Err(e),
    };
    if !keys.is_empty() {
        let Some(sig) = &sig else {
            return err(
                Code::Integrity,
                format!(
                    "manifest {url} is not signed ({sig_url} is missing) and this install trusts only signed manifests; refusing it"
                ),
            );
        };
        let text = String::from_utf8_lossy(sig);
        keys.verify(url, &bytes, &text)?;
    }
    Ok((bytes, sig))
}

/// A manifest URL is https (a manifest decides what runs) and one word.
fn check_url(url: &str) -> Result<()> {
    if !url.starts_with("https://") {
        return err(
            Code::Usage,
            format!(
                "manifest URL {url:?}: only https:// is accepted (a manifest decides what runs as you)"
            ),
        );
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return err(
            Code::Usage,
            format!("manifest URL {url:?} holds spaces or control characters"),
        );
    }
    Ok(())
}

fn fetch_manifest(f: &FetchManifest) -> Result<i32> {
    let url = f.url.clone();
    check_url(&url)?;
    let keys = crate::sign::Keys::from_specs(&f.trust_keys)?;
    if keys.is_empty() {
        out::line(&format!(
            "onramp: warning: no signing key is trusted, so only TLS vouches for {url}; pass --trust-key (a released install.sh trusts its publisher's key)"
        ));
    }
    let root = state::root(f.state_dir.as_deref())?;
    let dest = local_copy(&root, &url);
    let sig_dest = crate::sign::sig_path(&dest);
    if f.offline {
        if !dest.is_file() {
            return err(
                Code::Network,
                format!(
                    "--offline: the manifest {url} was never fetched on this machine; run once online, or pass --manifest FILE"
                ),
            );
        }
        let man = manifest::load_signed(&dest, Some(&url), &keys)?;
        check_fresh(&f.fresh, f.state_dir.as_deref(), &man)?;
        out::stdout_line(&dest.display().to_string());
        return Ok(0);
    }
    let (bytes, sig) = fetch_verified(&url, &keys, &f.tls.net(false)?)?;
    // Parse it and check its paths, serial and expiry before keeping it:
    // a refused manifest never replaces the copy kept before.
    let man = manifest::from_bytes(dest.clone(), &bytes, Some(&url))?;
    check_fresh(&f.fresh, f.state_dir.as_deref(), &man)?;
    fsutil::make_root(&root, crate::trust::STATE_FIX)?;
    if let Some(dir) = dest.parent() {
        fsutil::mkdirs(dir)?;
    }
    match &sig {
        Some(s) => fsutil::write_atomic(&sig_dest, s, 0o644)?,
        None => fsutil::remove(&sig_dest),
    }
    fsutil::write_atomic(&dest, &bytes, 0o644)?;
    out::stdout_line(&dest.display().to_string());
    Ok(0)
}
