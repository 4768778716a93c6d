//! The manifest: what a stack is made of, parsed strictly.
//!
//! Unknown fields are errors that carry their JSON path; every artifact must
//! carry a size and a sha256 ("no checksum, no install"). This module only
//! reads and validates; `plan` decides what to do with it. The plain types
//! that pass between them live here too: what `plan::select` chose
//! (`Selection`, kept on the loaded manifest), an artifact resolved for
//! this target (`Want`, which `plan` makes and `download` fetches), and the
//! command name an `expose` entry gets (`name_of`).

use crate::beneath::{check_path_text, check_rel};
use crate::error::{Code, Error, Result, err};
use crate::machine::{Hardware, Requires};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The manifest schema version this helper reads.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: u32,
    pub name: String,
    pub version: String,
    /// Raised with every release; a lower one than a machine has accepted
    /// is a rollback and refused (see `freshness`).
    #[serde(default)]
    pub serial: Option<u64>,
    /// RFC 3339 time after which this manifest is refused (a frozen mirror
    /// cannot keep serving it forever).
    #[serde(default)]
    pub expires: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub default_prefix: Option<String>,
    pub components: Vec<Component>,
    #[serde(default)]
    pub configure: Configure,
    #[serde(default)]
    pub health_checks: Vec<HealthCheck>,
    /// Base URLs tried in order before each artifact's own URL (a mirror
    /// serves `BASE/<file name>`).
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Variables of the caller's environment that the stack's commands may
    /// see, beyond the documented minimal set (see `phase::Ctx::env`).
    #[serde(default)]
    pub env: Vec<String>,
    /// Named subsets of components (`--profile NAME`); what a profile
    /// names pulls in what it depends on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, Profile>,
    /// The profile installed when none is asked for; without one, every
    /// component is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_profile: Option<String>,
    /// Executables in the prefix (relative paths) linked into the user's
    /// bin directory by their file name (see `expose`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    /// Directories other tools keep verified blobs in, named by their
    /// sha256 (`HEX`, `sha256/HEX` or `sha256-HEX`, as ollama's
    /// `models/blobs`): an artifact found there (and in the Hugging Face
    /// hub cache) is verified and taken instead of downloaded. Absolute or
    /// `~/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub components: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A component's long-running process.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// argv, run in the prefix (a relative program with a slash is
    /// relative to the prefix).
    pub command: Vec<String>,
    /// How to tell it is ready; without one, running is ready.
    #[serde(default)]
    pub ready: Option<Ready>,
    /// How long it may take to stop after SIGTERM (default 10 s).
    #[serde(default)]
    pub stop_timeout_s: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    /// A loopback http:// URL that must answer 2xx.
    #[serde(default)]
    pub http: Option<String>,
    /// argv that must exit 0.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// How long it may take to become ready (default 60 s).
    #[serde(default)]
    pub timeout_s: Option<u64>,
}

/// One way to install a component, for the machines its `requires` fits.
/// What it gives replaces the component's own field.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub requires: Requires,
    #[serde(default)]
    pub artifacts: BTreeMap<String, Artifact>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub install_dir: Option<String>,
    #[serde(default)]
    pub install_path: Option<String>,
    #[serde(default)]
    pub recipe: Option<RecipeRef>,
    #[serde(default)]
    pub catalog: Option<CatalogRef>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Server,
    Model,
    Worker,
    Extra,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Model => "model",
            Kind::Worker => "worker",
            Kind::Extra => "extra",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub id: String,
    pub kind: Kind,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Per-target artifacts, keyed `linux-x86_64`, ... or `any`.
    #[serde(default)]
    pub artifacts: BTreeMap<String, Artifact>,
    /// Where an unpacked archive (or a server's versions) lives, relative to the prefix.
    #[serde(default)]
    pub install_dir: Option<String>,
    /// Where a single-file artifact is placed, relative to the prefix.
    #[serde(default)]
    pub install_path: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub unlocks: Option<Unlock>,
    /// Server: how to ask an installed version what it is.
    #[serde(default)]
    pub version_check: Option<VersionCheck>,
    /// Extra: the command that installs it (argv, run in the prefix).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Extra: the command that proves it works.
    #[serde(default)]
    pub check: Option<Vec<String>>,
    /// Extra: how often its check is tried before it counts as failed
    /// (default 3, with the health checks' back-off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Extra: the command that undoes what its command did outside the
    /// files onramp records (argv, run in the prefix before those files go).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uninstall: Option<Vec<String>>,
    #[serde(default)]
    pub timeout_s: Option<u64>,
    /// Worker: its PKGBUILD, pinned by sha256.
    #[serde(default)]
    pub recipe: Option<RecipeRef>,
    /// Worker: a catalog entry that names the PKGBUILD (instead of `recipe`).
    #[serde(default)]
    pub catalog: Option<CatalogRef>,
    /// Worker: how to find dependencies the built-in probes do not know.
    #[serde(default)]
    pub probes: BTreeMap<String, Probe>,
    /// Worker: targets it supports (`linux-x86_64`, ...); empty means any
    /// target whose arch the recipe's `arch=()` lists.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Worker: do not run the recipe's check() (makepkg --nocheck).
    #[serde(default)]
    pub nocheck: bool,
    /// A long-running process started after configure (see `service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// Ways to install it, best first; the plan takes the first whose
    /// `requires` fits the machine (tiers of a model are variants).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
    /// Model: also place its `hf` files into the Hugging Face hub cache,
    /// where huggingface_hub (and the servers using it) look for them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hub_cache: bool,
}

impl Component {
    /// This component as variant `v` installs it: the variant's fields
    /// replace the component's, and the result has no variants.
    pub fn with_variant(&self, v: &Variant) -> Component {
        let mut c = self.clone();
        c.variants.clear();
        c.artifacts = v.artifacts.clone();
        if v.version.is_some() {
            c.version = v.version.clone();
        }
        if v.install_dir.is_some() {
            c.install_dir = v.install_dir.clone();
        }
        if v.install_path.is_some() {
            c.install_path = v.install_path.clone();
        }
        if v.recipe.is_some() {
            c.recipe = v.recipe.clone();
            c.catalog = None;
        }
        if v.catalog.is_some() {
            c.catalog = v.catalog.clone();
            c.recipe = None;
        }
        c
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeRef {
    #[serde(default)]
    pub url: Option<String>,
    /// A path relative to the manifest's directory.
    #[serde(default)]
    pub path: Option<String>,
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogRef {
    /// An http(s) base URL, or a directory relative to the manifest.
    pub base: String,
    pub id: String,
    /// Pin the PKGBUILD's sha256 here too (the catalog entry always carries one).
    #[serde(default)]
    pub sha256: Option<String>,
}

/// One way to find a dependency; exactly one field.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// A command on PATH.
    #[serde(default)]
    pub command: Option<String>,
    /// A pkg-config module (`pkg-config --exists`).
    #[serde(default)]
    pub pkg_config: Option<String>,
    /// A shared library file name (`libcuda.so.1`) in the linker's paths.
    #[serde(default)]
    pub library: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    #[serde(default)]
    pub url: Option<String>,
    /// A path relative to the manifest's directory.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub unpack: Option<Unpack>,
    /// Bytes the archive takes once unpacked, for the disk check.
    #[serde(default)]
    pub unpacked_size: Option<u64>,
    /// Leading directories to drop from every entry (a tarball whose files
    /// sit under `name-1.2/`), as tar's --strip-components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_components: Option<u32>,
    /// A file of a Hugging Face Hub repository (instead of `url`/`path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf: Option<HfRef>,
    /// A layer of an OCI artifact in a registry (instead of `url`/`path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciRef>,
}

/// `hf`: one file of a Hugging Face Hub repository, fetched from
/// `$HF_ENDPOINT/{repo}/resolve/{revision}/{file}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HfRef {
    /// `org/name`.
    pub repo: String,
    /// The file's path in the repository.
    pub file: String,
    /// A branch or tag before `onramp lock`; the 40-hex commit after.
    #[serde(default = "default_revision")]
    pub revision: String,
    /// The branch or tag the commit was locked from (the hub cache's
    /// `refs/` entry names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// `model` (default), `dataset` or `space`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_type: Option<String>,
}

fn default_revision() -> String {
    "main".to_string()
}

impl HfRef {
    /// The repository's path under the endpoint (`datasets/` for datasets).
    pub fn repo_path(&self) -> String {
        match self.repo_type.as_deref() {
            Some("dataset") => format!("datasets/{}", self.repo),
            Some("space") => format!("spaces/{}", self.repo),
            _ => self.repo.clone(),
        }
    }

    /// Whether `revision` is a commit (what a locked manifest holds).
    pub fn pinned(&self) -> bool {
        self.revision.len() == 40
            && self
                .revision
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    /// The folder huggingface_hub's cache keeps this repository in.
    pub fn cache_folder(&self) -> String {
        let kind = match self.repo_type.as_deref() {
            Some("dataset") => "datasets",
            Some("space") => "spaces",
            _ => "models",
        };
        format!("{kind}--{}", self.repo.replace('/', "--"))
    }
}

/// `oci`: one layer of an artifact in an OCI registry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OciRef {
    /// `registry/repository@sha256:DIGEST` (a manifest's digest) once
    /// locked; `registry/repository:tag` before.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The layer's media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The layer's `org.opencontainers.image.title` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The tag the digest was locked from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// An OCI reference taken apart: registry host, repository, and a tag or a
/// `sha256:` digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciName {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl OciRef {
    pub fn name(&self) -> std::result::Result<OciName, String> {
        parse_oci(&self.reference)
    }
}

/// Read `registry/repo[:tag][@sha256:hex]`.
pub fn parse_oci(r: &str) -> std::result::Result<OciName, String> {
    let (rest, digest) = match r.split_once('@') {
        Some((a, d)) => {
            let hex = d
                .strip_prefix("sha256:")
                .ok_or_else(|| format!("{r:?}: the digest must be sha256:HEX"))?;
            if !is_sha256(hex) {
                return Err(format!(
                    "{r:?}: the digest must be sha256: and 64 lowercase hex digits"
                ));
            }
            (a, Some(hex.to_string()))
        }
        None => (r, None),
    };
    let (registry, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("{r:?}: give registry/repository (a host first)"))?;
    if registry.is_empty()
        || !registry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    {
        return Err(format!("{r:?}: {registry:?} is not a registry host"));
    }
    let (repository, tag) = match path.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, Some(t.to_string())),
        _ => (path, None),
    };
    let ok_repo = !repository.is_empty()
        && repository.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
    if !ok_repo {
        return Err(format!(
            "{r:?}: {repository:?} is not a repository name (lowercase, digits, ._- and /)"
        ));
    }
    if let Some(t) = &tag
        && (t.is_empty()
            || t.len() > 128
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
    {
        return Err(format!("{r:?}: {t:?} is not a tag"));
    }
    if tag.is_none() && digest.is_none() {
        return Err(format!(
            "{r:?}: give a tag (:latest) or a digest (@sha256:...)"
        ));
    }
    Ok(OciName {
        registry: registry.to_string(),
        repository: repository.to_string(),
        tag,
        digest,
    })
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum Unpack {
    #[serde(rename = "tar")]
    Tar,
    #[serde(rename = "tar.gz")]
    TarGz,
    #[serde(rename = "tar.zst")]
    TarZst,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Unlock {
    pub capability: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VersionCheck {
    /// argv, run with the installed version's directory as working directory.
    pub command: Vec<String>,
    /// The version string the output must contain.
    pub expect: String,
    #[serde(default)]
    pub timeout_s: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Configure {
    #[serde(default)]
    pub dirs: Vec<String>,
    #[serde(default)]
    pub files: Vec<ConfigFile>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub path: String,
    #[serde(default)]
    pub content: Option<String>,
    /// A file relative to the manifest's directory.
    #[serde(default)]
    pub source: Option<String>,
    /// The sha256 of `source`, checked when it is read; required in a
    /// signed manifest (every byte it makes onramp read is pinned by it).
    #[serde(default)]
    pub sha256: Option<String>,
    /// Octal permission bits as a string, e.g. "0644".
    #[serde(default)]
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    pub name: String,
    /// The component this check vouches for; a failure marks it failed.
    pub component: String,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// A loopback http:// URL that must answer 2xx.
    #[serde(default)]
    pub http: Option<String>,
    #[serde(default)]
    pub timeout_s: Option<u64>,
    #[serde(default)]
    pub retries: Option<u32>,
}

/// The most bytes a manifest may have (fetched, or unpacked from a bundle
/// before its signature is checked).
pub const MAX_MANIFEST: u64 = 4 << 20;

/// A loaded manifest with the bytes it came from and its directory.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub m: Manifest,
    pub path: PathBuf,
    pub dir: PathBuf,
    pub sha256: String,
    /// The URL it was fetched from (`fetch-manifest`); relative paths then
    /// resolve against it instead of `dir`.
    pub url: Option<String>,
    /// What `plan::select` chose for this machine (empty until it runs):
    /// `m.components` then holds only the profile's components, each as
    /// its chosen variant installs it.
    pub chosen: Selection,
}

/// What the plan chose on this machine: the profile, and for each component
/// with variants the one that installs, with why.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub profile: Option<String>,
    pub hardware: Option<Hardware>,
    pub choices: BTreeMap<String, Choice>,
    /// Components the profile leaves out.
    pub left_out: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// None: no variant fits this machine.
    pub variant: Option<String>,
    pub why: String,
    /// The chosen variant's `description` ("cuda tier").
    pub description: Option<String>,
}

impl Selection {
    /// What goes into the plan id: a changed choice is a changed plan.
    pub fn key(&self) -> String {
        if self.profile.is_none() && self.choices.is_empty() {
            return String::new();
        }
        let mut k = format!("profile={}", self.profile.as_deref().unwrap_or(""));
        for (id, c) in &self.choices {
            k.push_str(&format!(";{id}={}", c.variant.as_deref().unwrap_or("-")));
        }
        k
    }

    /// "model-chat: qwen-9b (needs 12 GB VRAM, found 24)", one per choice.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (id, c) in &self.choices {
            out.push(match &c.variant {
                Some(v) => format!("{id}: {v} ({})", c.why),
                None => format!("{id}: no variant fits this machine ({})", c.why),
            });
        }
        out
    }
}

/// Where the files a manifest names by relative path are found.
#[derive(Debug, Clone)]
pub enum Origin {
    Dir(PathBuf),
    Url(String),
}

impl Origin {
    pub fn join(&self, rel: &str) -> Origin {
        match self {
            Origin::Dir(d) => Origin::Dir(d.join(rel)),
            Origin::Url(u) => Origin::Url(format!("{}/{}", u.trim_end_matches('/'), rel)),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Origin::Dir(d) => d.display().to_string(),
            Origin::Url(u) => u.clone(),
        }
    }
}

/// `rel` against the directory of URL `base` (a file's URL): plain
/// components only, each percent-encoded.
pub fn url_beside(base: &str, rel: &str) -> String {
    let dir = match base.rfind('/') {
        Some(i) => &base[..i],
        None => base,
    };
    let mut out = dir.to_string();
    for part in rel.split('/').filter(|p| !p.is_empty() && *p != ".") {
        out.push('/');
        for b in part.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

impl Loaded {
    /// A file this manifest names by relative path.
    pub fn resolve(&self, rel: &str) -> Origin {
        match &self.url {
            Some(u) => Origin::Url(url_beside(u, rel)),
            None => Origin::Dir(self.dir.join(rel)),
        }
    }

    pub fn component(&self, id: &str) -> Option<&Component> {
        self.m.components.iter().find(|c| c.id == id)
    }
}

/// What to fetch: one artifact resolved for this target.
#[derive(Debug, Clone)]
pub struct Want {
    pub label: String,
    pub source: Source,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub enum Source {
    Url(String),
    Path(PathBuf),
    Hf(HfRef),
    Oci(OciRef),
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Url(u) => u.clone(),
            Source::Path(p) => p.display().to_string(),
            Source::Hf(h) => format!("hf:{}@{}/{}", h.repo, h.revision, h.file),
            Source::Oci(o) => format!("oci:{}", o.reference),
        }
    }

    /// Whether fetching it goes over the network.
    pub fn remote(&self) -> bool {
        !matches!(self, Source::Path(_))
    }
}

pub fn load(path: &Path) -> Result<Loaded> {
    load_signed(path, None, &crate::sign::Keys::default())
}

/// Load a manifest; with trusted `keys`, its bytes must carry a good
/// signature by one of them in `FILE.minisig` (checked on the bytes that are
/// then parsed). `url`: where it was fetched from.
pub fn load_signed(path: &Path, url: Option<&str>, keys: &crate::sign::Keys) -> Result<Loaded> {
    let path = crate::fsutil::absolute(path)?;
    let bytes = std::fs::read(&path).map_err(|e| {
        Error::new(
            Code::Manifest,
            format!("cannot read manifest {}: {e}", path.display()),
        )
    })?;
    if !keys.is_empty() {
        keys.verify_file(&path, &bytes)?;
    }
    let man = from_bytes(path, &bytes, url)?;
    if !keys.is_empty() {
        pinned_sources(&man.m)?;
    }
    Ok(man)
}

/// A signed manifest pins every byte it makes onramp read: a configure
/// `source` (a file beside it, in a bundle or a directory others may
/// change) needs its sha256 (TUF's rule: sign every file a client reads).
pub fn pinned_sources(m: &Manifest) -> Result<()> {
    for (i, f) in m.configure.files.iter().enumerate() {
        if let (Some(src), None) = (&f.source, &f.sha256) {
            return bad(
                &format!("configure.files[{i}]"),
                format!(
                    "a signed manifest must pin its source {src:?} with \"sha256\" (or give its text as \"content\", as `onramp release` does); sign it again with the pin"
                ),
            );
        }
    }
    Ok(())
}

/// A manifest from `bytes` that were read from (or will be kept at) `path`.
pub fn from_bytes(path: PathBuf, bytes: &[u8], url: Option<&str>) -> Result<Loaded> {
    let m = parse(bytes).map_err(|e| {
        Error::new(
            Code::Manifest,
            format!(
                "manifest {}: {}",
                url.map(str::to_string)
                    .unwrap_or_else(|| path.display().to_string()),
                e.msg
            ),
        )
    })?;
    if let Some(u) = url {
        remote_paths(&m, u)?;
    }
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    Ok(Loaded {
        m,
        sha256: crate::fsutil::sha256_bytes(bytes),
        path,
        dir,
        url: url.map(str::to_string),
        chosen: Default::default(),
    })
}

/// A manifest fetched from `url` names other files by plain relative paths
/// below its directory (a release directory copied to a mirror works as
/// is), and cannot name local files for configure.
fn remote_paths(m: &Manifest, url: &str) -> Result<()> {
    let below = |at: &str, p: &str| -> Result<()> {
        if p.starts_with('/') || p.split('/').any(|c| c == "..") {
            return bad(
                at,
                format!(
                    "{p:?} is outside the directory of {url}; a manifest fetched by URL names files below it (or gives a url)"
                ),
            );
        }
        Ok(())
    };
    for (i, c) in m.components.iter().enumerate() {
        for (t, a) in &c.artifacts {
            if let Some(p) = &a.path {
                below(&format!("components[{i}].artifacts.{t}.path"), p)?;
            }
        }
        if let Some(p) = c.recipe.as_ref().and_then(|r| r.path.as_ref()) {
            below(&format!("components[{i}].recipe.path"), p)?;
        }
        if let Some(k) = &c.catalog
            && !k.base.contains("://")
        {
            below(&format!("components[{i}].catalog.base"), &k.base)?;
        }
    }
    for (i, f) in m.configure.files.iter().enumerate() {
        if f.source.is_some() {
            return bad(
                &format!("configure.files[{i}].source"),
                "a manifest fetched by URL cannot name a local file; `onramp release` puts its text in \"content\"",
            );
        }
    }
    Ok(())
}

/// Parse and validate manifest bytes.
pub fn parse(bytes: &[u8]) -> Result<Manifest> {
    // Read the schema first so a newer manifest gets the right advice, not a
    // complaint about fields this version does not know.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(s) = v.get("schema").and_then(|s| s.as_u64())
        && s != u64::from(SCHEMA)
    {
        return err(
            Code::Manifest,
            format!(
                "schema {s} is not supported (this onramp reads schema {SCHEMA}); use a matching onramp release"
            ),
        );
    }
    crate::json::no_duplicate_keys(bytes).map_err(|e| Error::new(Code::Manifest, e))?;
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let m: Manifest = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." {
            String::new()
        } else {
            format!("at {path}: ")
        };
        Error::new(Code::Manifest, format!("{at}{inner}"))
    })?;
    validate(&m)?;
    Ok(m)
}

/// The command name a path in the prefix is exposed as (its file name).
pub fn name_of(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

fn bad<T>(path: &str, msg: impl std::fmt::Display) -> Result<T> {
    err(Code::Manifest, format!("at {path}: {msg}"))
}

fn is_id(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && s.len() <= 64
}

/// A version used as a directory name: one plain path component.
fn check_version(at: &str, v: &str) -> Result<()> {
    check_path_text(at, v)?;
    let plain = !v.is_empty()
        && v != "."
        && v != ".."
        && !v.contains('/')
        && !v.starts_with(crate::fsutil::TMP_MARK)
        && v.len() <= 128;
    if plain {
        Ok(())
    } else {
        bad(
            at,
            format!(
                "{v:?} is not a usable version: it names a directory, so it must be one plain path component (no '/', not '.' or '..', at most 128 bytes)"
            ),
        )
    }
}

fn validate(m: &Manifest) -> Result<()> {
    if m.name.trim().is_empty() {
        return bad("name", "must not be empty");
    }
    check_path_text("name", &m.name)?;
    if let Some(e) = &m.expires
        && crate::fsutil::parse_rfc3339(e).is_none()
    {
        return bad(
            "expires",
            format!("{e:?} is not an RFC 3339 time (e.g. 2027-01-31T00:00:00Z)"),
        );
    }
    if m.components.is_empty() {
        return bad("components", "a stack needs at least one component");
    }
    let mut ids = BTreeSet::new();
    for (i, c) in m.components.iter().enumerate() {
        let at = format!("components[{i}]");
        unique_id(&at, "component", &c.id, &mut ids)?;
        if c.variants.is_empty() {
            validate_component(c, &at)?;
        } else {
            validate_variants(c, &at)?;
        }
    }
    for (i, c) in m.components.iter().enumerate() {
        for (j, d) in c.depends_on.iter().enumerate() {
            if !ids.contains(d.as_str()) {
                return bad(
                    &format!("components[{i}].depends_on[{j}]"),
                    format!("no component has id {d:?}"),
                );
            }
        }
    }
    validate_profiles(m, &ids)?;
    if let Some(cycle) = find_cycle(m) {
        return bad("components", format!("depends_on forms a cycle: {cycle}"));
    }
    let mut names = BTreeSet::new();
    for (i, e) in m.expose.iter().enumerate() {
        let at = format!("expose[{i}]");
        check_rel(&at, e)?;
        let name = name_of(e);
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
            || name.starts_with(['.', '-'])
        {
            return bad(
                &at,
                format!("{name:?} is not a command name (letters, digits, . _ + -)"),
            );
        }
        if !names.insert(name) {
            return bad(&at, format!("two exposed commands are named {name:?}"));
        }
    }
    for (i, d) in m.configure.dirs.iter().enumerate() {
        check_rel(&format!("configure.dirs[{i}]"), d)?;
    }
    for (i, f) in m.configure.files.iter().enumerate() {
        let at = format!("configure.files[{i}]");
        check_rel(&format!("{at}.path"), &f.path)?;
        if f.content.is_some() == f.source.is_some() {
            return bad(&at, "give exactly one of \"content\" or \"source\"");
        }
        if let Some(src) = &f.source {
            check_path_text(&format!("{at}.source"), src)?;
        }
        match (&f.sha256, &f.source) {
            (Some(_), None) => {
                return bad(
                    &format!("{at}.sha256"),
                    "pins a \"source\"; this file has none",
                );
            }
            (Some(h), Some(_)) if !is_sha256(h) => {
                return bad(&format!("{at}.sha256"), "must be 64 lowercase hex digits");
            }
            _ => {}
        }
        match f.mode.as_deref().map(|m| (m, parse_mode(m))) {
            Some((m, None)) => {
                return bad(
                    &format!("{at}.mode"),
                    format!("{m:?} is not an octal mode like \"0644\""),
                );
            }
            Some((m, Some(v))) if v > 0o777 => {
                return bad(
                    &format!("{at}.mode"),
                    format!(
                        "{m:?} sets setuid, setgid or sticky bits, which onramp does not write; use permission bits only (\"0755\")"
                    ),
                );
            }
            _ => {}
        }
    }
    for (i, name) in m.env.iter().enumerate() {
        let ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return bad(
                &format!("env[{i}]"),
                format!("{name:?} is not an environment variable name"),
            );
        }
    }
    for (i, m) in m.mirrors.iter().enumerate() {
        if !(m.starts_with("https://") || m.starts_with("http://")) {
            return bad(
                &format!("mirrors[{i}]"),
                format!("{m:?} is not an http(s) base URL"),
            );
        }
    }
    let mut names = BTreeSet::new();
    for (i, h) in m.health_checks.iter().enumerate() {
        let at = format!("health_checks[{i}]");
        if !names.insert(h.name.as_str()) {
            return bad(
                &format!("{at}.name"),
                format!("duplicate health check {:?}", h.name),
            );
        }
        if !ids.contains(h.component.as_str()) {
            return bad(
                &format!("{at}.component"),
                format!("no component has id {:?}", h.component),
            );
        }
        match (&h.command, &h.http) {
            (Some(c), None) if !c.is_empty() => {}
            (None, Some(u)) => {
                if let Err(why) = loopback_http(u) {
                    return bad(&format!("{at}.http"), format!("{u:?}: {why}"));
                }
            }
            _ => return bad(&at, "give exactly one of \"command\" (argv) or \"http\""),
        }
    }
    Ok(())
}

/// The checks of one component as it installs (a variant applied).
fn validate_component(c: &Component, at: &str) -> Result<()> {
    for (t, a) in &c.artifacts {
        let aat = format!("{at}.artifacts.{t}");
        if !crate::platform::KNOWN_TARGETS.contains(&t.as_str()) {
            return bad(
                &aat,
                format!(
                    "unknown target {t:?} (known: {})",
                    crate::platform::KNOWN_TARGETS.join(", ")
                ),
            );
        }
        check_hub_source(a, &aat)?;
        match (&a.url, &a.path) {
            (Some(_), Some(_)) => return bad(&aat, "give either url or path, not both"),
            (None, None) if a.hf.is_none() && a.oci.is_none() => {
                return bad(&aat, "needs a url, a path, hf or oci");
            }
            (Some(u), None) if !(u.starts_with("https://") || u.starts_with("http://")) => {
                return bad(
                    &format!("{aat}.url"),
                    format!("{u:?} is not an http(s) URL"),
                );
            }
            _ => {}
        }
        let Some(sha) = &a.sha256 else {
            return bad(
                &aat,
                "no sha256: no checksum, no install (add \"sha256\" and \"size\")",
            );
        };
        if a.size.is_none() {
            return bad(
                &aat,
                "no size: no checksum, no install (add \"size\" in bytes)",
            );
        }
        if !is_sha256(sha) {
            return bad(&format!("{aat}.sha256"), "must be 64 lowercase hex digits");
        }
        if a.strip_components.is_some() && a.unpack.is_none() {
            return bad(
                &format!("{aat}.strip_components"),
                "only an archive (\"unpack\") has components to strip",
            );
        }
        if a.strip_components.is_some_and(|n| n > 16) {
            return bad(&format!("{aat}.strip_components"), "at most 16");
        }
        if a.unpack.is_some() && c.install_dir.is_none() && c.kind != Kind::Worker {
            return bad(at, "an artifact with \"unpack\" needs \"install_dir\"");
        }
        if a.unpack.is_none()
            && !matches!(c.kind, Kind::Server | Kind::Worker)
            && c.install_path.is_none()
        {
            return bad(at, "a single-file artifact needs \"install_path\"");
        }
    }
    if c.hub_cache && (c.kind != Kind::Model || c.artifacts.values().any(|a| a.hf.is_none())) {
        return bad(
            &format!("{at}.hub_cache"),
            "only a model whose artifacts are all hf sources can be placed in the Hugging Face cache",
        );
    }
    if let Some(v) = &c.version {
        check_version(&format!("{at}.version"), v)?;
    }
    for (t, a) in &c.artifacts {
        if let Some(p) = &a.path {
            check_path_text(&format!("{at}.artifacts.{t}.path"), p)?;
        }
    }
    if let Some(p) = c.recipe.as_ref().and_then(|r| r.path.as_ref()) {
        check_path_text(&format!("{at}.recipe.path"), p)?;
    }
    if let Some(k) = &c.catalog {
        check_path_text(&format!("{at}.catalog.base"), &k.base)?;
    }
    if let Some(p) = &c.install_dir {
        check_rel(&format!("{at}.install_dir"), p)?;
    }
    if let Some(p) = &c.install_path {
        check_rel(&format!("{at}.install_path"), p)?;
    }
    match c.kind {
        Kind::Server => {
            if c.version.is_none() || c.version_check.is_none() || c.install_dir.is_none() {
                return bad(
                    at,
                    "a server needs \"version\", \"version_check\" and \"install_dir\"",
                );
            }
            if c.artifacts.values().any(|a| a.unpack.is_none()) {
                return bad(
                    &format!("{at}.artifacts"),
                    "a server artifact must be an archive (set \"unpack\")",
                );
            }
        }
        Kind::Worker => validate_worker(c, at)?,
        Kind::Model => {
            if c.artifacts.is_empty() {
                return bad(
                    &format!("{at}.artifacts"),
                    format!("a {} needs at least one artifact", c.kind.name()),
                );
            }
        }
        Kind::Extra => {
            if c.command.as_ref().is_none_or(|v| v.is_empty()) {
                return bad(
                    &format!("{at}.command"),
                    "an extra needs a command (argv array)",
                );
            }
        }
    }
    if let Some(u) = &c.uninstall {
        if c.kind != Kind::Extra {
            return bad(
                &format!("{at}.uninstall"),
                "only an extra has an uninstall command (onramp removes the rest itself)",
            );
        }
        if u.is_empty() {
            return bad(&format!("{at}.uninstall"), "must not be empty");
        }
    }
    if let Some(vc) = &c.version_check
        && vc.command.is_empty()
    {
        return bad(&format!("{at}.version_check.command"), "must not be empty");
    }
    if let Some(s) = &c.service {
        if s.command.is_empty() {
            return bad(&format!("{at}.service.command"), "must not be empty");
        }
        if s.stop_timeout_s.is_some_and(|t| t == 0 || t > 600) {
            return bad(
                &format!("{at}.service.stop_timeout_s"),
                "use 1 to 600 seconds",
            );
        }
        if let Some(r) = &s.ready {
            match (&r.http, &r.command) {
                (Some(u), None) => {
                    if let Err(why) = loopback_http(u) {
                        return bad(&format!("{at}.service.ready.http"), format!("{u:?}: {why}"));
                    }
                }
                (None, Some(c)) if !c.is_empty() => {}
                _ => {
                    return bad(
                        &format!("{at}.service.ready"),
                        "give exactly one of \"http\" (a loopback URL) or \"command\" (argv)",
                    );
                }
            }
        }
    }
    Ok(())
}

/// A git branch or tag name as the hub's refs hold them: relative, no empty,
/// `.` or `..` component, letters, digits and `._-/` only, at most 200 bytes
/// (it names a file under the hub cache's `refs/`).
pub fn is_ref_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.split('/').all(|c| !c.is_empty() && !c.starts_with('.'))
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
}

/// An `hf` or `oci` source: the only source of its artifact, well formed,
/// and locked (a commit, a manifest digest, the layer's size and sha256),
/// as a URL needs its sha256.
fn check_hub_source(a: &Artifact, aat: &str) -> Result<()> {
    let n = [
        a.url.is_some(),
        a.path.is_some(),
        a.hf.is_some(),
        a.oci.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if n > 1 {
        return bad(aat, "give one source: url, path, hf or oci");
    }
    let lock = "; run `onramp lock --manifest FILE` to pin it";
    if let Some(h) = &a.hf {
        let hat = format!("{aat}.hf");
        let repo_ok = h.repo.split('/').count() == 2
            && h.repo.split('/').all(|c| {
                !c.is_empty()
                    && c != "."
                    && c != ".."
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        if !repo_ok {
            return bad(
                &format!("{hat}.repo"),
                format!("{:?} is not ORG/NAME", h.repo),
            );
        }
        if h.file.is_empty()
            || h.file.starts_with('/')
            || h.file
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
            || h.file
                .chars()
                .any(|c| c.is_control() || c == '\\' || c == '?' || c == '#')
        {
            return bad(
                &format!("{hat}.file"),
                format!("{:?} is not a file path in the repository", h.file),
            );
        }
        if !is_ref_name(&h.revision) {
            return bad(
                &format!("{hat}.revision"),
                format!("{:?} is not a branch, tag or commit", h.revision),
            );
        }
        if let Some(b) = &h.branch
            && !is_ref_name(b)
        {
            return bad(
                &format!("{hat}.branch"),
                format!("{b:?} is not a branch or tag name"),
            );
        }
        if let Some(t) = &h.repo_type
            && !["model", "dataset", "space"].contains(&t.as_str())
        {
            return bad(
                &format!("{hat}.repo_type"),
                format!("{t:?}: use model, dataset or space"),
            );
        }
        if !h.pinned() {
            return bad(
                &format!("{hat}.revision"),
                format!("{:?} is a branch or tag, not a commit{lock}", h.revision),
            );
        }
    }
    if let Some(o) = &a.oci {
        let oat = format!("{aat}.oci");
        let name = o
            .name()
            .map_err(|e| Error::new(Code::Manifest, format!("{oat}.ref: {e}")))?;
        if name.digest.is_none() {
            return bad(
                &format!("{oat}.ref"),
                format!("{:?} names a tag, not a manifest digest{lock}", o.reference),
            );
        }
    }
    if (a.hf.is_some() || a.oci.is_some()) && (a.sha256.is_none() || a.size.is_none()) {
        return bad(aat, format!("no size or sha256{lock}"));
    }
    Ok(())
}

/// `id` at `at` is a valid id and the first of its kind with that name.
fn unique_id<'a>(at: &str, kind: &str, id: &'a str, seen: &mut BTreeSet<&'a str>) -> Result<()> {
    if !is_id(id) {
        return bad(
            &format!("{at}.id"),
            format!("{id:?} is not a valid id (lowercase letters, digits, '.', '_', '-')"),
        );
    }
    if !seen.insert(id) {
        return bad(&format!("{at}.id"), format!("duplicate {kind} id {id:?}"));
    }
    Ok(())
}

fn validate_variants(c: &Component, at: &str) -> Result<()> {
    if !c.artifacts.is_empty() {
        return bad(
            &format!("{at}.artifacts"),
            "a component with \"variants\" gives its artifacts in each variant",
        );
    }
    let mut seen = BTreeSet::new();
    for (j, v) in c.variants.iter().enumerate() {
        let vat = format!("{at}.variants[{j}]");
        unique_id(&vat, "variant", &v.id, &mut seen)?;
        for (k, g) in v.requires.gpu.iter().enumerate() {
            if !crate::machine::BACKENDS.contains(&g.as_str()) {
                return bad(
                    &format!("{vat}.requires.gpu[{k}]"),
                    format!(
                        "{g:?} is not a GPU backend (use {})",
                        crate::machine::BACKENDS.join(", ")
                    ),
                );
            }
        }
        for (name, val) in [
            ("min_vram_gb", v.requires.min_vram_gb),
            ("min_ram_gb", v.requires.min_ram_gb),
        ] {
            if val.is_some_and(|x| !(x.is_finite() && x >= 0.0)) {
                return bad(
                    &format!("{vat}.requires.{name}"),
                    "must be a number of GB, 0 or more",
                );
            }
        }
        if let Some(d) = &v.requires.min_driver
            && !(d.chars().next().is_some_and(|ch| ch.is_ascii_digit())
                && d.chars().all(|ch| ch.is_ascii_digit() || ch == '.'))
        {
            return bad(
                &format!("{vat}.requires.min_driver"),
                format!("{d:?} is not a dotted version like \"535.104\""),
            );
        }
        validate_component(&c.with_variant(v), &vat)?;
    }
    Ok(())
}

fn validate_profiles(m: &Manifest, ids: &BTreeSet<&str>) -> Result<()> {
    for (name, p) in &m.profiles {
        let at = format!("profiles.{name}");
        if !is_id(name) {
            return bad(
                &at,
                format!(
                    "{name:?} is not a valid profile name (lowercase letters, digits, '.', '_', '-')"
                ),
            );
        }
        if p.components.is_empty() {
            return bad(
                &format!("{at}.components"),
                "a profile names at least one component",
            );
        }
        for (j, id) in p.components.iter().enumerate() {
            if !ids.contains(id.as_str()) {
                return bad(
                    &format!("{at}.components[{j}]"),
                    format!("no component has id {id:?}"),
                );
            }
        }
    }
    if let Some(d) = &m.default_profile
        && !m.profiles.contains_key(d)
    {
        return bad("default_profile", format!("no profile is named {d:?}"));
    }
    Ok(())
}

/// 64 lowercase hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

fn validate_worker(c: &Component, at: &str) -> Result<()> {
    // Artifacts of a worker are prebuilt builds, by target (Windows has no
    // PKGBUILD builds): archives unpacked into its install_dir.
    if c.artifacts.values().any(|a| a.unpack.is_none()) {
        return bad(
            &format!("{at}.artifacts"),
            "a worker's artifacts are prebuilt builds for their targets: each must be an archive (set \"unpack\"); the recipe's sources go in the PKGBUILD",
        );
    }
    match (&c.recipe, &c.catalog) {
        (None, None) if !c.artifacts.is_empty() => {}
        (Some(r), None) => {
            let rat = format!("{at}.recipe");
            match (&r.url, &r.path) {
                (Some(u), None) if u.starts_with("https://") || u.starts_with("http://") => {}
                (Some(u), None) => {
                    return bad(
                        &format!("{rat}.url"),
                        format!("{u:?} is not an http(s) URL"),
                    );
                }
                (None, Some(_)) => {}
                _ => return bad(&rat, "give exactly one of \"url\" or \"path\""),
            }
            if !is_sha256(&r.sha256) {
                return bad(&format!("{rat}.sha256"), "must be 64 lowercase hex digits");
            }
        }
        (None, Some(k)) => {
            let kat = format!("{at}.catalog");
            if !is_id(&k.id) {
                return bad(
                    &format!("{kat}.id"),
                    format!("{:?} is not a valid id", k.id),
                );
            }
            if k.base.is_empty() {
                return bad(&format!("{kat}.base"), "must be a URL or a directory");
            }
            if let Some(sha) = &k.sha256
                && !is_sha256(sha)
            {
                return bad(&format!("{kat}.sha256"), "must be 64 lowercase hex digits");
            }
        }
        _ => {
            return bad(
                at,
                "a worker needs exactly one of \"recipe\" (a pinned PKGBUILD) or \"catalog\", or prebuilt \"artifacts\"",
            );
        }
    }
    for (name, p) in &c.probes {
        let n = [&p.command, &p.pkg_config, &p.library]
            .iter()
            .filter(|x| x.is_some())
            .count();
        if n != 1 {
            return bad(
                &format!("{at}.probes.{name}"),
                "give exactly one of \"command\", \"pkg_config\" or \"library\"",
            );
        }
    }
    for (i, t) in c.platforms.iter().enumerate() {
        if !crate::platform::KNOWN_TARGETS.contains(&t.as_str()) || t == "any" {
            return bad(
                &format!("{at}.platforms[{i}]"),
                format!(
                    "unknown target {t:?} (known: {})",
                    crate::platform::KNOWN_TARGETS.join(", ")
                ),
            );
        }
    }
    Ok(())
}

pub fn parse_mode(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 4 {
        return None;
    }
    u32::from_str_radix(s, 8).ok().filter(|m| *m <= 0o7777)
}

/// A health-check URL taken apart: the loopback addresses to connect to
/// (never looked up in DNS), the port, and the path with its query.
#[derive(Debug, PartialEq, Eq)]
pub struct Loopback {
    pub addrs: Vec<std::net::IpAddr>,
    pub host: String,
    pub port: u16,
    pub path: String,
}

/// Parse an `http://` URL that may only reach this machine: the host is
/// `localhost` (127.0.0.1 then ::1, with no name lookup), a dotted IPv4
/// address in 127.0.0.0/8, or `[::1]`; no user info (`http://127.0.0.1@host/`
/// goes to `host`), an explicit numeric port or 80.
pub fn loopback_http(u: &str) -> std::result::Result<Loopback, String> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    const NEED: &str = "must be an http:// URL on 127.0.0.1 (or 127.x.y.z), [::1] or localhost";
    let rest = u.strip_prefix("http://").ok_or_else(|| NEED.to_string())?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (auth, tail) = rest.split_at(end);
    if auth.contains('@') {
        return Err(format!("{NEED}; user info ('@') is not allowed"));
    }
    let (host, port) = match auth.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6.split_once(']').ok_or_else(|| NEED.to_string())?;
            (format!("[{h}]"), after)
        }
        None => match auth.find(':') {
            Some(i) => (auth[..i].to_string(), &auth[i..]),
            None => (auth.to_string(), ""),
        },
    };
    let port = match port.strip_prefix(':') {
        None if port.is_empty() => 80,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => p
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{NEED}; bad port {p:?}"))?,
        _ => return Err(format!("{NEED}; bad port in {auth:?}")),
    };
    let addrs: Vec<IpAddr> = match host.as_str() {
        "localhost" => vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
        "[::1]" => vec![IpAddr::V6(Ipv6Addr::LOCALHOST)],
        h => match h.parse::<Ipv4Addr>() {
            Ok(a) if a.is_loopback() => vec![IpAddr::V4(a)],
            _ => return Err(NEED.to_string()),
        },
    };
    let path = if tail.starts_with('/') {
        tail.split('#').next().unwrap_or("/").to_string()
    } else {
        format!("/{}", tail.split('#').next().unwrap_or(""))
    };
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!("{NEED}; the path has spaces or control characters"));
    }
    Ok(Loopback {
        addrs,
        host,
        port,
        path,
    })
}

/// A `depends_on` cycle, as `a -> b -> a`. Iterative (an explicit stack),
/// so a chain of any length cannot overflow the call stack.
fn find_cycle(m: &Manifest) -> Option<String> {
    let deps: BTreeMap<&str, Vec<&str>> = m
        .components
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.depends_on.iter().map(|s| s.as_str()).collect(),
            )
        })
        .collect();
    // 1 = on the current path, 2 = finished.
    let mut mark: BTreeMap<&str, u8> = BTreeMap::new();
    for start in deps.keys() {
        if mark.contains_key(start) {
            continue;
        }
        // (node, index of its next dependency to visit)
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        mark.insert(start, 1);
        while let Some(top) = stack.last_mut() {
            let (n, i) = *top;
            let next = deps.get(n).and_then(|d| d.get(i)).copied();
            top.1 += 1;
            match next {
                None => {
                    mark.insert(n, 2);
                    stack.pop();
                }
                Some(d) => match mark.get(d) {
                    Some(1) => {
                        let pos = stack.iter().position(|(s, _)| *s == d).unwrap_or(0);
                        let mut v: Vec<&str> = stack[pos..].iter().map(|(s, _)| *s).collect();
                        v.push(d);
                        return Some(v.join(" -> "));
                    }
                    Some(_) => {}
                    None => {
                        mark.insert(d, 1);
                        stack.push((d, 0));
                    }
                },
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn base(extra: &str) -> String {
        format!(
            r#"{{"schema":1,"name":"t","version":"1","components":[{{"id":"m","kind":"model","install_path":"models/m","artifacts":{{"any":{{"path":"m.bin","size":1,"sha256":"{SHA}"{extra}}}}}}}]}}"#
        )
    }

    #[test]
    fn valid_minimal() {
        parse(base("").as_bytes()).unwrap();
    }

    #[test]
    fn unknown_field_names_its_path() {
        let e = parse(base(r#","colour":1"#).as_bytes()).unwrap_err();
        assert_eq!(e.code, Code::Manifest);
        assert!(e.msg.contains("components[0].artifacts.any"), "{}", e.msg);
        assert!(e.msg.contains("colour"), "{}", e.msg);
    }

    #[test]
    fn no_checksum_no_install() {
        let s = base("").replace(&format!(r#","sha256":"{SHA}""#), "");
        let e = parse(s.as_bytes()).unwrap_err();
        assert!(e.msg.contains("no checksum, no install"), "{}", e.msg);
    }

    #[test]
    fn cycle_is_named() {
        let s = r#"{"schema":1,"name":"t","version":"1","components":[
          {"id":"a","kind":"extra","command":["true"],"depends_on":["b"]},
          {"id":"b","kind":"extra","command":["true"],"depends_on":["a"]}]}"#;
        let e = parse(s.as_bytes()).unwrap_err();
        assert!(e.msg.contains("a -> b -> a"), "{}", e.msg);
    }

    #[test]
    fn escaping_paths_refused() {
        let s = base("").replace("models/m", "../m");
        assert!(
            parse(s.as_bytes())
                .unwrap_err()
                .msg
                .contains("inside the prefix")
        );
    }

    #[test]
    fn newer_schema_gets_advice() {
        let s = base("").replace("\"schema\":1", "\"schema\":2");
        assert!(
            parse(s.as_bytes())
                .unwrap_err()
                .msg
                .contains("schema 2 is not supported")
        );
    }

    #[test]
    fn http_checks_must_be_loopback() {
        let l = loopback_http("http://127.0.0.1:8080/health?x=1").unwrap();
        assert_eq!((l.port, l.path.as_str()), (8080, "/health?x=1"));
        assert_eq!(loopback_http("http://localhost/").unwrap().addrs.len(), 2);
        assert_eq!(loopback_http("http://[::1]:9").unwrap().path, "/");
        assert!(loopback_http("http://127.9.8.7:1/").is_ok());
        for u in [
            "http://example.com/",
            "https://127.0.0.1/",
            "http://127.0.0.1@192.0.2.1/",
            "http://localhost:1@host/",
            "http://127.0.0.1.example/",
            "http://localhost.example:80/",
            "http://127.1/",
            "http://[::1]@evil/",
            "http://[::2]/",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:80x/",
            "http://127.0.0.1/a b",
        ] {
            assert!(loopback_http(u).is_err(), "{u}");
        }
    }

    #[test]
    fn versions_are_one_path_component() {
        let server = |v: &str| {
            format!(
                r#"{{"schema":1,"name":"t","version":"1","components":[{{"id":"s","kind":"server","version":{v},"install_dir":"server","version_check":{{"command":["x"],"expect":"1"}},"artifacts":{{"any":{{"path":"s.tgz","size":1,"sha256":"{SHA}","unpack":"tar.gz"}}}}}}]}}"#
            )
        };
        parse(server("\"1.2.3\"").as_bytes()).unwrap();
        for v in [
            r#""/abs/dir""#,
            r#""../x""#,
            r#""a/b""#,
            r#"".""#,
            r#""""#,
            r#""1\u202e2""#,
        ] {
            let e = parse(server(v).as_bytes()).unwrap_err();
            assert!(e.msg.contains("components[0].version"), "{v}: {}", e.msg);
        }
    }

    #[test]
    fn paths_are_plain_text_within_limits() {
        for p in [
            r"models/\u202egpj.exe",
            r"models/a\u0000b",
            r"models/\u001b[2Jx",
        ] {
            let s = base("").replace("models/m", p);
            let e = parse(s.as_bytes()).unwrap_err();
            assert!(e.msg.contains("control or invisible"), "{p}: {}", e.msg);
        }
        let s = base("").replace("models/m", &"x".repeat(300));
        assert!(parse(s.as_bytes()).unwrap_err().msg.contains("longer than"));
    }

    #[test]
    fn duplicate_keys_and_setuid_modes_are_refused() {
        let s = base("").replace(
            r#""any":{"#,
            r#""any":{"path":"z","size":2,"sha256":"x"},"any":{"#,
        );
        let e = parse(s.as_bytes()).unwrap_err();
        assert!(
            e.msg.contains(r#"the key "any" appears twice"#),
            "{}",
            e.msg
        );
        let s = base("").replace(
            r#""components""#,
            r#""configure":{"files":[{"path":"x","content":"y","mode":"4755"}]},"components""#,
        );
        assert!(parse(s.as_bytes()).unwrap_err().msg.contains("setuid"));
    }

    #[test]
    fn a_long_dependency_chain_is_checked_without_recursion() {
        let mut comps = Vec::new();
        for i in 0..50_000 {
            let dep = if i > 0 {
                format!(r#","depends_on":["c{}"]"#, i - 1)
            } else {
                String::new()
            };
            comps.push(format!(
                r#"{{"id":"c{i}","kind":"extra","command":["true"]{dep}}}"#
            ));
        }
        let s = format!(
            r#"{{"schema":1,"name":"t","version":"1","components":[{}]}}"#,
            comps.join(",")
        );
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || parse(s.as_bytes()).map(|_| ()).map_err(|e| e.msg))
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
    }
}
