//! Where a worker's PKGBUILD comes from: a pinned recipe (file or URL) or a
//! catalog entry (`GET {base}/workers/{id}`, then its PKGBUILD). The recipe
//! text is always checked against a sha256 before anything reads it, and
//! relative sources resolve against the recipe's own location.

use crate::download::http;
use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::manifest::Component;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Catalog documents and recipes are small; anything bigger is a mistake.
const MAX_DOC: u64 = 1 << 20;

/// A catalog entry, as served at `{base}/workers/{id}` (a static catalog
/// keeps it at `workers/{id}/index.json`). See schema/catalog-entry.schema.json.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub schema: u32,
    pub id: String,
    pub version: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Operating systems (`linux`, `macos`, `windows`).
    pub platforms: Vec<String>,
    /// CPU architectures (`x86_64`, `aarch64`, ...).
    pub architectures: Vec<String>,
    /// The PKGBUILD, relative to the entry's directory.
    #[serde(default = "default_pkgbuild")]
    pub pkgbuild: String,
    pub pkgbuild_sha256: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
}

fn default_pkgbuild() -> String {
    "PKGBUILD".into()
}

pub use crate::manifest::Origin;

pub struct Fetched {
    pub text: String,
    pub sha256: String,
    /// The directory (or URL directory) the recipe lives in.
    pub origin: Origin,
    pub entry: Option<Entry>,
}

/// Read a document; `client` is None when offline.
fn read_doc(o: &Origin, client: Option<&http::Client>) -> Result<Vec<u8>> {
    match o {
        Origin::Dir(p) => {
            let meta = std::fs::metadata(p).map_err(|e| Error::io("cannot read", p, e))?;
            if meta.len() > MAX_DOC {
                return err(
                    Code::Manifest,
                    format!("{}: larger than {MAX_DOC} bytes", p.display()),
                );
            }
            std::fs::read(p).map_err(|e| Error::io("cannot read", p, e))
        }
        Origin::Url(u) => match client {
            Some(c) => http::get_small(c, u, MAX_DOC),
            None => err(
                Code::Network,
                format!(
                    "{u} is needed and --offline is set; use a catalog directory or a recipe path"
                ),
            ),
        },
    }
}

fn parent(o: &Origin) -> Origin {
    match o {
        Origin::Dir(p) => Origin::Dir(p.parent().unwrap_or(Path::new("/")).to_path_buf()),
        Origin::Url(u) => Origin::Url(match u.rfind('/') {
            Some(i) => u[..i].to_string(),
            None => u.clone(),
        }),
    }
}

fn verify(what: &str, bytes: Vec<u8>, want: &str) -> Result<(String, String)> {
    let got = fsutil::sha256_bytes(&bytes);
    if got != want {
        return err(
            Code::Integrity,
            format!("{what}: sha256 {got} does not match the pinned {want}; refusing to read it"),
        );
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::new(Code::Manifest, format!("{what}: not UTF-8 text")))?;
    Ok((text, got))
}

/// Get and verify the recipe of worker component `c`. A catalog PKGBUILD
/// must be pinned by the manifest (`catalog.sha256`): the catalog's own
/// `pkgbuild_sha256` is vouched for by the same server that serves the
/// recipe, so it proves nothing. `allow_unpinned` accepts it anyway (a
/// development catalog), with the server's word as the only check.
pub fn fetch(
    c: &Component,
    man: &crate::manifest::Loaded,
    client: Option<&http::Client>,
    allow_unpinned: bool,
) -> Result<Fetched> {
    if let Some(r) = &c.recipe {
        let o = match (&r.url, &r.path) {
            (Some(u), _) => Origin::Url(u.clone()),
            (None, Some(p)) => man.resolve(p),
            (None, None) => return err(Code::Manifest, format!("{}: recipe has no source", c.id)),
        };
        let bytes = read_doc(&o, client)?;
        let (text, sha256) = verify(&format!("recipe {}", o.describe()), bytes, &r.sha256)?;
        return Ok(Fetched {
            text,
            sha256,
            origin: parent(&o),
            entry: None,
        });
    }
    let Some(k) = &c.catalog else {
        return err(
            Code::Manifest,
            format!("{}: a worker needs a recipe or a catalog", c.id),
        );
    };
    // A catalog service answers `{base}/workers/{id}`; a catalog beside
    // the manifest is files (a release on a static host), read as
    // `workers/{id}/index.json` wherever the manifest came from.
    let remote = k.base.starts_with("http://") || k.base.starts_with("https://");
    let base = if remote {
        Origin::Url(k.base.clone())
    } else {
        man.resolve(&k.base)
    };
    let dir = base.join(&format!("workers/{}", k.id));
    let entry_at = if remote {
        dir.clone()
    } else {
        dir.join("index.json")
    };
    let bytes = read_doc(&entry_at, client)?;
    let entry = parse_entry(&bytes, &k.id, &entry_at.describe())?;
    if k.sha256.is_none() && !allow_unpinned {
        return err(
            Code::Integrity,
            format!(
                "worker {}: the manifest does not pin its catalog PKGBUILD, so only the catalog at {} vouches for the recipe root would build; pin it with \"catalog\": {{\"sha256\": \"{}\"}} after checking that recipe, or pass --allow-unpinned-catalog for a development catalog",
                c.id,
                base.describe(),
                entry.pkgbuild_sha256
            ),
        );
    }
    if let Some(pin) = &k.sha256
        && pin != &entry.pkgbuild_sha256
    {
        return err(
            Code::Integrity,
            format!(
                "catalog entry {} names PKGBUILD sha256 {}, the manifest pins {pin}; refusing it",
                entry_at.describe(),
                entry.pkgbuild_sha256
            ),
        );
    }
    let recipe_at = dir.join(&entry.pkgbuild);
    let bytes = read_doc(&recipe_at, client)?;
    let (text, sha256) = verify(
        &format!("PKGBUILD {}", recipe_at.describe()),
        bytes,
        &entry.pkgbuild_sha256,
    )?;
    Ok(Fetched {
        text,
        sha256,
        origin: parent(&recipe_at),
        entry: Some(entry),
    })
}

/// A catalog entry for worker `id`, read from `bytes` (found at `at`) and
/// checked: no repeated key, known fields only, a plain relative PKGBUILD
/// path, a sha256 pin.
pub fn parse_entry(bytes: &[u8], id: &str, at: &str) -> Result<Entry> {
    crate::json::no_duplicate_keys(bytes)
        .map_err(|e| Error::new(Code::Manifest, format!("catalog entry {at}: {e}")))?;
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let entry: Entry = serde_path_to_error::deserialize(de).map_err(|e| {
        Error::new(
            Code::Manifest,
            format!(
                "catalog entry {at}: at {}: {}; see schema/catalog-entry.schema.json",
                e.path(),
                e.inner()
            ),
        )
    })?;
    check_entry(&entry, id, at)?;
    Ok(entry)
}

fn check_entry(e: &Entry, id: &str, at: &str) -> Result<()> {
    let bad = |m: String| err(Code::Manifest, format!("catalog entry {at}: {m}"));
    if e.schema != 1 {
        return bad(format!(
            "schema {} is not supported (this onramp reads schema 1)",
            e.schema
        ));
    }
    if e.id != id {
        return bad(format!("is for worker {:?}, not {id:?}", e.id));
    }
    let rel = Path::new(&e.pkgbuild);
    if e.pkgbuild.is_empty()
        || !rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return bad(format!(
            "pkgbuild {:?} must be a plain relative path",
            e.pkgbuild
        ));
    }
    if !crate::manifest::is_sha256(&e.pkgbuild_sha256) {
        return bad("pkgbuild_sha256 must be 64 lowercase hex digits".into());
    }
    Ok(())
}
