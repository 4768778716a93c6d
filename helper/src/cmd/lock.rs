//! `onramp lock`: resolve a manifest's `hf` and `oci` sources once, as
//! uv's lock file does, and write a manifest that installs exactly that
//! everywhere: each `hf` revision (a branch or tag) becomes its commit,
//! each `oci` tag its manifest digest, and each gets the `size` and
//! `sha256` the hub's headers or the registry's manifest give, without the
//! files being downloaded. An entry that cannot be pinned is named and
//! nothing is written.

use super::args::{Command, OUTPUT, Parser, Tls};
use crate::download::hub;
use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::manifest::{self, HfRef, OciRef};
use crate::out;
use serde_json::Value;
use std::path::{Path, PathBuf};

const UPGRADE: super::args::Opt = super::args::Opt {
    name: "--upgrade",
    value: "",
    help: "resolve pinned entries again from the branch or tag they were locked from",
};

/// `onramp lock`.
pub struct Lock {
    manifest: Option<PathBuf>,
    output: Option<PathBuf>,
    upgrade: bool,
    allow_http: bool,
    tls: Tls,
}

impl Command for Lock {
    const NAME: &'static str = "lock";
    const USAGE: &'static str = "--manifest M [-o M.lock.json] [--upgrade] [--ca-file FILE]";
    const ABOUT: &'static str = "Pin a manifest's hf and oci sources: each Hugging Face revision (branch or tag) to its commit, each registry tag to its manifest digest, with the size and sha256 from the hub's headers or the registry's manifest, nothing downloaded (a small non-LFS file excepted). Writes M.lock.json beside M (or -o); an entry that cannot be pinned is named and nothing is written. Entries already pinned keep their commit or digest unless --upgrade, and their size and sha256 are checked there. Credentials as for an install: HF_TOKEN, ONRAMP_REGISTRY_AUTH, docker's config.";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(Lock {
            manifest: p.path(&super::args::MANIFEST)?,
            output: p.path(&OUTPUT)?,
            upgrade: p.switch(&UPGRADE),
            allow_http: p.switch(&super::args::ALLOW_HTTP),
            tls: Tls::parse(p)?,
        })
    }
    fn run(self) -> Result<i32> {
        lock(&self)
    }
}

/// `dir/name.json` -> `dir/name.lock.json`.
fn default_output(m: &Path) -> PathBuf {
    let stem = m
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".json").to_string())
        .unwrap_or_else(|| "manifest".into());
    m.with_file_name(format!("{stem}.lock.json"))
}

fn lock(a: &Lock) -> Result<i32> {
    let Some(m) = &a.manifest else {
        return err(Code::Usage, "lock needs --manifest FILE");
    };
    let path = fsutil::absolute(m)?;
    let bytes = read_bounded(&path)?;
    let mut doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::new(Code::Manifest, format!("{}: not JSON: {e}", path.display())))?;
    let net = a.tls.net(a.allow_http)?;
    let mut failed = Vec::new();
    let mut pinned = 0usize;
    let mut checked = 0usize;
    let comps = doc
        .get_mut("components")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| {
            Error::new(
                Code::Manifest,
                format!("{}: no components array", path.display()),
            )
        })?;
    for (ci, c) in comps.iter_mut().enumerate() {
        let id = c
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let mut sets: Vec<(String, &mut Value)> = Vec::new();
        let (arts, vars) = split_mut(c);
        if let Some(x) = arts {
            sets.push((format!("components[{ci}].artifacts"), x));
        }
        for (vi, v) in vars.into_iter().enumerate() {
            if let Some(x) = v.get_mut("artifacts") {
                sets.push((format!("components[{ci}].variants[{vi}].artifacts"), x));
            }
        }
        for (at, set) in sets {
            let Some(map) = set.as_object_mut() else {
                continue;
            };
            for (t, art) in map.iter_mut() {
                let at = format!("{at}.{t}");
                match pin(art, &id, &at, a.upgrade, &net) {
                    Ok(Some(true)) => pinned += 1,
                    Ok(Some(false)) => checked += 1,
                    Ok(None) => {}
                    Err(e) if e.code == Code::Interrupted => return Err(e),
                    Err(e) => failed.push((e.code, e.msg)),
                }
            }
        }
    }
    if let Some((code, _)) = failed.first() {
        let code = *code;
        for (_, m) in &failed {
            crate::say!("onramp: lock: {m}");
        }
        return err(
            code,
            format!(
                "{} entr{} could not be pinned; nothing written",
                failed.len(),
                if failed.len() == 1 { "y" } else { "ies" }
            ),
        );
    }
    let out_path = match &a.output {
        Some(p) => fsutil::absolute(p)?,
        None => default_output(&path),
    };
    let mut text = serde_json::to_vec_pretty(&doc)
        .map_err(|e| Error::new(Code::Internal, format!("cannot write the lock: {e}")))?;
    text.push(b'\n');
    // The lock must itself be a manifest an install accepts: checked from a
    // file beside where it goes (relative paths resolve the same), then
    // moved into place.
    let tmp = fsutil::temp_beside(&out_path);
    fsutil::write_atomic(&tmp, &text, 0o644)?;
    if let Err(e) = manifest::load(&tmp) {
        fsutil::remove(&tmp);
        return Err(Error::new(
            e.code,
            format!("the locked manifest is still not installable: {}", e.msg),
        ));
    }
    std::fs::rename(&tmp, &out_path).map_err(|e| {
        fsutil::remove(&tmp);
        Error::io("cannot write", &out_path, e)
    })?;
    fsutil::sync_dir(out_path.parent().unwrap_or(Path::new(".")))?;
    out::stdout_line(&format!(
        "locked {pinned} source{} into {}{}",
        if pinned == 1 { "" } else { "s" },
        out_path.display(),
        match checked {
            0 => String::new(),
            n => format!("; {n} already pinned, checked and kept"),
        }
    ));
    Ok(0)
}

/// The component's `artifacts` and its variants, both mutable.
fn split_mut(c: &mut Value) -> (Option<&mut Value>, Vec<&mut Value>) {
    let Some(o) = c.as_object_mut() else {
        return (None, Vec::new());
    };
    let mut arts = None;
    let mut vars = Vec::new();
    for (k, v) in o.iter_mut() {
        match k.as_str() {
            "artifacts" => arts = Some(v),
            "variants" => {
                if let Some(a) = v.as_array_mut() {
                    vars.extend(a.iter_mut());
                }
            }
            _ => {}
        }
    }
    (arts, vars)
}

/// Pin one artifact: `Some(true)` when it changed a pin, `Some(false)`
/// when a pin was checked and kept, `None` for a url or path. An entry already
/// pinned keeps its commit or digest (unless `upgrade`), but its size and
/// sha256 are checked against the hub or registry there (a file or layer
/// edited since is pinned anew), never trusted as written.
fn pin(
    art: &mut Value,
    id: &str,
    at: &str,
    upgrade: bool,
    net: &crate::download::http::Net,
) -> Result<Option<bool>> {
    let sums = (
        art.get("sha256")
            .and_then(Value::as_str)
            .map(str::to_string),
        art.get("size").and_then(Value::as_u64),
    );
    let label = format!("{id} ({at})");
    if let Some(h) = art.get("hf") {
        let mut h: HfRef = serde_json::from_value(h.clone())
            .map_err(|e| Error::new(Code::Manifest, format!("{at}.hf: {e}")))?;
        let from = match (&h.branch, h.pinned(), upgrade) {
            (Some(b), true, true) => b.clone(),
            (None, true, true) => {
                out::stdout_line(&format!(
                    "{id}: pinned to a commit without a branch to upgrade from; checked at {}",
                    h.revision
                ));
                h.revision.clone()
            }
            _ => h.revision.clone(),
        };
        let asked = HfRef {
            revision: from.clone(),
            ..h.clone()
        };
        let (commit, sha, size) = hub::lock_hf(&asked, &label, net)?;
        if commit == h.revision && sums == (Some(sha.clone()), Some(size)) {
            return Ok(Some(false));
        }
        if commit != from {
            h.branch = Some(from.clone());
        }
        h.revision = commit.clone();
        out::stdout_line(&format!(
            "{id}: hf {}/{} {from} -> {commit} ({}, sha256 {sha})",
            h.repo,
            h.file,
            fsutil::human_bytes(size)
        ));
        return write_pin(art, "hf", &h, sha, size);
    }
    if let Some(o) = art.get("oci") {
        let mut o: OciRef = serde_json::from_value(o.clone())
            .map_err(|e| Error::new(Code::Manifest, format!("{at}.oci: {e}")))?;
        let name = o
            .name()
            .map_err(|e| Error::new(Code::Manifest, format!("{at}.oci.ref: {e}")))?;
        let asked = match (&name.digest, &o.tag, upgrade) {
            (Some(_), Some(t), true) => OciRef {
                reference: format!("{}/{}:{t}", name.registry, name.repository),
                ..o.clone()
            },
            (Some(d), None, true) => {
                out::stdout_line(&format!(
                    "{id}: pinned to a digest without a tag to upgrade from; checked at sha256:{d}"
                ));
                o.clone()
            }
            _ => o.clone(),
        };
        let (digest, sha, size) = hub::lock_oci(&asked, &label, net)?;
        if name.digest.as_deref() == Some(digest.as_str())
            && sums == (Some(sha.clone()), Some(size))
        {
            return Ok(Some(false));
        }
        let tag = asked.name().ok().and_then(|n| n.tag).or(o.tag.clone());
        o.reference = format!("{}/{}@sha256:{digest}", name.registry, name.repository);
        o.tag = tag;
        out::stdout_line(&format!(
            "{id}: oci {} -> sha256:{digest} (layer {}, sha256 {sha})",
            asked.reference,
            fsutil::human_bytes(size)
        ));
        return write_pin(art, "oci", &o, sha, size);
    }
    if sums.0.is_none() || sums.1.is_none() {
        return err(
            Code::Manifest,
            format!(
                "{label}: a url or path without size and sha256 cannot be pinned by lock (it pins hf and oci sources); add them (`onramp sha256 FILE`)"
            ),
        );
    }
    Ok(None)
}

/// Put a source's new pin and its sums into the artifact.
fn write_pin(
    art: &mut Value,
    key: &str,
    source: &impl serde::Serialize,
    sha: String,
    size: u64,
) -> Result<Option<bool>> {
    art[key] =
        serde_json::to_value(source).map_err(|e| Error::new(Code::Internal, e.to_string()))?;
    art["sha256"] = Value::from(sha);
    art["size"] = Value::from(size);
    Ok(Some(true))
}

fn read_bounded(p: &Path) -> Result<Vec<u8>> {
    let f = crate::download::open_nofollow(p).map_err(|e| Error::io("cannot read", p, e))?;
    let mut v = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(f, manifest::MAX_MANIFEST + 1),
        &mut v,
    )
    .map_err(|e| Error::io("cannot read", p, e))?;
    if v.len() as u64 > manifest::MAX_MANIFEST {
        return err(
            Code::Manifest,
            format!(
                "{}: larger than {} bytes",
                p.display(),
                manifest::MAX_MANIFEST
            ),
        );
    }
    Ok(v)
}
