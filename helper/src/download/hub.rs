//! Sources that live on a hub: a file of a Hugging Face Hub repository
//! (`hf`) and a layer of an OCI artifact (`oci`). Owns the URLs they are
//! fetched from (the endpoint, `HF_ENDPOINT`, mirrors), the credentials
//! each may carry and the one origin each may go to (`HF_TOKEN` or
//! huggingface_hub's token file; `ONRAMP_REGISTRY_AUTH` or docker's
//! config), the registry's bearer-token challenge, the checks made before
//! the engine starts (a gated repo named, a hub file that is not the one
//! locked), and turning a branch, tag or registry tag into pins for
//! `onramp lock`. The bytes themselves go through the same engine as every
//! artifact.
//!
//! A secret never leaves this module except as an `http::Auth` bound to
//! its origin: it is not put in URLs, messages, state or arguments.

use super::http::{self, Auth, Client, Fail, Net, Response, header};
use crate::error::{Code, Error, Result, err};
use crate::manifest::{HfRef, OciName, OciRef, Want};
use std::path::{Path, PathBuf};

/// Where huggingface_hub downloads from unless `HF_ENDPOINT` says otherwise.
pub const HF_DEFAULT_ENDPOINT: &str = "https://huggingface.co";

const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";
const MAX_MANIFEST: u64 = 4 << 20;

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|s| !s.trim().is_empty())
}

/// `$HF_ENDPOINT` (default https://huggingface.co), without a trailing slash.
pub fn hf_endpoint() -> String {
    env("HF_ENDPOINT")
        .unwrap_or_else(|| HF_DEFAULT_ENDPOINT.to_string())
        .trim()
        .trim_end_matches('/')
        .to_string()
}

/// Percent-encode what is not unreserved (and `/` where `keep_slash`).
fn quote(s: &str, keep_slash: bool) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// `{endpoint}/{repo}/resolve/{revision}/{file}`, as huggingface_hub's
/// `hf_hub_url` spells it.
pub fn hf_url(endpoint: &str, h: &HfRef, revision: &str) -> String {
    format!(
        "{}/{}/resolve/{}/{}",
        endpoint.trim_end_matches('/'),
        h.repo_path(),
        quote(revision, false),
        quote(&h.file, true)
    )
}

/// The home huggingface_hub uses: `$HF_HOME`, else
/// `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub fn hf_home() -> Option<PathBuf> {
    if let Some(h) = env("HF_HOME") {
        return Some(crate::fsutil::expand_home(&h));
    }
    if let Some(x) = env("XDG_CACHE_HOME") {
        return Some(PathBuf::from(x).join("huggingface"));
    }
    crate::sys::home_dir().map(|h| PathBuf::from(h).join(".cache").join("huggingface"))
}

/// The hub cache, by huggingface_hub's rules: `$HF_HUB_CACHE`, else
/// `$HUGGINGFACE_HUB_CACHE`, else `hf_home()/hub`.
pub fn hub_cache_dir() -> Option<PathBuf> {
    env("HF_HUB_CACHE")
        .or_else(|| env("HUGGINGFACE_HUB_CACHE"))
        .map(|p| crate::fsutil::expand_home(&p))
        .or_else(|| hf_home().map(|h| h.join("hub")))
}

/// Read a small secret file without following a link at its name.
fn read_secret(p: &Path) -> Option<String> {
    let f = super::open_nofollow(p).ok()?;
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(f, 4096), &mut s).ok()?;
    let s = s.trim().to_string();
    (!s.is_empty() && !s.contains(char::is_whitespace)).then_some(s)
}

/// The Hugging Face token and where it came from: `HF_TOKEN`, else the
/// file huggingface_hub's login writes (`$HF_TOKEN_PATH`, else
/// `hf_home()/token`).
pub fn hf_token() -> Option<(String, String)> {
    if let Some(t) = env("HF_TOKEN") {
        return Some((t.trim().to_string(), "HF_TOKEN".to_string()));
    }
    let path = env("HF_TOKEN_PATH")
        .map(|p| crate::fsutil::expand_home(&p))
        .or_else(|| hf_home().map(|h| h.join("token")))?;
    read_secret(&path).map(|t| (t, path.display().to_string()))
}

/// A bearer credential for `base_url`'s origin only.
fn bearer(base_url: &str, token: &str) -> Option<Auth> {
    Some(Auth {
        origin: http::origin(base_url)?,
        value: format!("Bearer {token}"),
    })
}

/// One place an artifact may come from, prepared (a probe, a manifest, a
/// token) only when it is its turn.
pub enum Candidate {
    /// An endpoint serving the hub's `resolve` URLs; `mirror`: one the
    /// manifest or `--mirror` configured (no token goes to it).
    Hf { endpoint: String, mirror: bool },
    /// A registry host serving the repository; `mirror`: from
    /// `ONRAMP_REGISTRY_MIRROR`.
    Oci { registry: String, mirror: bool },
}

impl Candidate {
    pub fn mirror(&self) -> bool {
        match self {
            Candidate::Hf { mirror, .. } | Candidate::Oci { mirror, .. } => *mirror,
        }
    }
}

/// The candidates for an `hf` or `oci` want, mirrors first.
pub fn candidates(want: &Want, mirrors: &[String]) -> Result<Vec<Candidate>> {
    match &want.source {
        crate::manifest::Source::Hf(_) => {
            let mut v: Vec<Candidate> = mirrors
                .iter()
                .map(|m| Candidate::Hf {
                    endpoint: m.trim_end_matches('/').to_string(),
                    mirror: true,
                })
                .collect();
            v.push(Candidate::Hf {
                endpoint: hf_endpoint(),
                mirror: false,
            });
            Ok(v)
        }
        crate::manifest::Source::Oci(o) => {
            let name = oci_name(o, &want.label)?;
            let mut v: Vec<Candidate> = registry_mirrors(&name.registry)
                .into_iter()
                .map(|m| Candidate::Oci {
                    registry: m,
                    mirror: true,
                })
                .collect();
            v.push(Candidate::Oci {
                registry: name.registry,
                mirror: false,
            });
            Ok(v)
        }
        _ => err(Code::Internal, format!("{}: not a hub source", want.label)),
    }
}

/// The base URL of each candidate (the preflight's reachability check).
pub fn base_urls(want: &Want, mirrors: &[String]) -> Result<Vec<String>> {
    Ok(candidates(want, mirrors)?
        .into_iter()
        .map(|c| match c {
            Candidate::Hf { endpoint, .. } => format!("{endpoint}/"),
            Candidate::Oci { registry, .. } => format!("https://{registry}/"),
        })
        .collect())
}

fn oci_name(o: &OciRef, label: &str) -> Result<OciName> {
    o.name()
        .map_err(|e| Error::new(Code::Manifest, format!("{label}: {e}")))
}

/// `ONRAMP_REGISTRY_MIRROR`: lines `REGISTRY=MIRROR` (hosts, with ports).
fn registry_mirrors(registry: &str) -> Vec<String> {
    env("ONRAMP_REGISTRY_MIRROR")
        .unwrap_or_default()
        .split(['\n', ' ', ','])
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(r, _)| r.eq_ignore_ascii_case(registry))
        .map(|(_, m)| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

/// Make a candidate ready: the URL the engine fetches and the credential
/// that may go with it (to that URL's origin only).
pub fn prepare(c: &Candidate, want: &Want, net: &Net) -> Result<(String, Option<Auth>)> {
    match (c, &want.source) {
        (Candidate::Hf { endpoint, mirror }, crate::manifest::Source::Hf(h)) => {
            let url = hf_url(endpoint, h, &h.revision);
            let token = if *mirror { None } else { hf_token() };
            let auth = token.as_ref().and_then(|(t, _)| bearer(endpoint, t));
            if !mirror {
                let client = Client::new(&Net {
                    auth: auth.clone(),
                    ..net.clone()
                })?;
                let meta = hf_head(
                    &client,
                    &url,
                    h,
                    &want.label,
                    token.as_ref().map(|t| t.1.as_str()),
                )?;
                check_meta(&meta, want, h)?;
            }
            Ok((url, auth))
        }
        (Candidate::Oci { registry, .. }, crate::manifest::Source::Oci(o)) => {
            let name = oci_name(o, &want.label)?;
            let mut reg = Registry::new(registry, &name.repository, net)?;
            let digest = name.digest.clone().unwrap_or_default();
            let (bytes, _) = reg.manifest(&format!("sha256:{digest}"), &want.label)?;
            let got = crate::fsutil::sha256_bytes(&bytes);
            if got != digest {
                return err(
                    Code::Integrity,
                    format!(
                        "{}: the registry {registry} sent a manifest whose sha256 is {got}, not the pinned {digest}",
                        want.label
                    ),
                );
            }
            let layer = pick_layer(&bytes, o, &want.label)?;
            if layer.sha256 != want.sha256 || layer.size != want.size {
                return err(
                    Code::Integrity,
                    format!(
                        "{}: manifest sha256:{digest} names layer sha256:{} ({} bytes), the manifest pins sha256:{} ({} bytes)",
                        want.label, layer.sha256, layer.size, want.sha256, want.size
                    ),
                );
            }
            let url = format!(
                "{}/v2/{}/blobs/sha256:{}",
                reg.base, name.repository, want.sha256
            );
            Ok((url, reg.auth()))
        }
        _ => err(Code::Internal, format!("{}: not a hub source", want.label)),
    }
}

/// What the hub says of one file at a revision (headers of its `resolve`
/// URL, redirects not followed).
#[derive(Debug, Default)]
pub struct HfMeta {
    pub commit: Option<String>,
    /// The LFS file's sha256 (`X-Linked-Etag`), when it is one.
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// Not an LFS file: its git blob id (`ETag`), no sha256 given.
    pub git_etag: Option<String>,
}

fn unquote(s: &str) -> String {
    s.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

/// HEAD the `resolve` URL, following only redirects to the same origin
/// (a renamed repository), and read the hub's headers. A gated or private
/// repository is an `Auth` error that says what to do.
pub fn hf_head(
    client: &Client,
    url: &str,
    h: &HfRef,
    label: &str,
    token_from: Option<&str>,
) -> Result<HfMeta> {
    let mut cur = url.to_string();
    let mut tries = 0;
    let resp = loop {
        crate::signal::check()?;
        let Some(resp) = retrying(client.once("HEAD", &cur, &[]), &mut tries, label)? else {
            continue;
        };
        let status = resp.status().as_u16();
        if (300..400).contains(&status)
            && let Some(loc) = header(&resp, "location")
        {
            let next = http::join(&cur, &loc);
            if http::origin(&next) == http::origin(&cur) && tries < 5 && !has_hub_meta(&resp) {
                tries += 1;
                cur = next;
                continue;
            }
        }
        if status >= 500 || status == 429 {
            tries += 1;
            if tries >= 4 {
                return err(Code::Network, format!("{label}: {cur}: HTTP {status}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(300 << tries));
            continue;
        }
        break resp;
    };
    let status = resp.status().as_u16();
    let code = header(&resp, "x-error-code").unwrap_or_default();
    let repo_page = format!("{}/{}", url.split("/resolve/").next().unwrap_or(url), "");
    match status {
        200..=399 => {}
        401 | 403 if code == "RepoNotFound" => {
            let hint = if token_from.is_some() {
                "check the repo name, and that the token's account may read it"
            } else {
                "check the repo name; a private one needs HF_TOKEN set to a token that may read it"
            };
            return err(
                Code::Auth,
                format!(
                    "{label}: the hub shows no repository {} to this request (HTTP {status}): {hint}",
                    h.repo
                ),
            );
        }
        401 | 403 => return Err(gated(label, h, &repo_page, status, &code, token_from)),
        404 => {
            let what = match code.as_str() {
                "RevisionNotFound" => format!("revision {:?} of {}", h.revision, h.repo),
                "EntryNotFound" => format!("{} at revision {:?}", h.file, h.revision),
                _ => format!("repository {} (or {} in it)", h.repo, h.file),
            };
            return err(
                Code::Network,
                format!(
                    "{label}: the hub has no {what} ({cur}: HTTP 404); check the manifest's hf entry"
                ),
            );
        }
        _ => return err(Code::Network, format!("{label}: {cur}: HTTP {status}")),
    }
    let mut m = HfMeta {
        commit: header(&resp, "x-repo-commit").map(|c| c.trim().to_string()),
        ..Default::default()
    };
    if let Some(e) = header(&resp, "x-linked-etag").map(|e| unquote(&e))
        && crate::manifest::is_sha256(&e)
    {
        m.sha256 = Some(e);
        m.size = header(&resp, "x-linked-size").and_then(|s| s.trim().parse().ok());
    } else {
        m.git_etag = header(&resp, "etag").map(|e| unquote(&e));
        m.size = header(&resp, "x-linked-size")
            .or_else(|| header(&resp, "content-length"))
            .and_then(|s| s.trim().parse().ok());
    }
    Ok(m)
}

/// One request's outcome in a loop that tries 4 times: the response, or
/// `None` after a pause when a transient failure leaves tries.
fn retrying(
    r: std::result::Result<Response, Fail>,
    tries: &mut u32,
    label: &str,
) -> Result<Option<Response>> {
    match r {
        Ok(resp) => Ok(Some(resp)),
        Err(Fail::Fatal(e)) => Err(e),
        Err(Fail::Retry(m, _)) => {
            *tries += 1;
            if *tries >= 4 {
                return err(Code::Network, format!("{label}: {m} (after 4 attempts)"));
            }
            std::thread::sleep(std::time::Duration::from_millis(300 << *tries));
            Ok(None)
        }
    }
}

fn has_hub_meta(resp: &Response) -> bool {
    header(resp, "x-linked-etag").is_some()
}

fn gated(
    label: &str,
    h: &HfRef,
    page: &str,
    status: u16,
    code: &str,
    token_from: Option<&str>,
) -> Error {
    let page = page.trim_end_matches('/');
    let what = if code == "GatedRepo" {
        "is gated"
    } else {
        "needs an account that may read it"
    };
    let fix = match token_from {
        None => format!(
            "accept its terms at {page} and set HF_TOKEN to a read token of that account (or log in with `hf auth login`), then run the installer again"
        ),
        Some(from) => format!(
            "the token from {from} was refused (HTTP {status}): accept the terms at {page} with the account the token belongs to, or set HF_TOKEN to one that may read it"
        ),
    };
    Error::new(
        Code::Auth,
        format!("{label}: Hugging Face repository {} {what}: {fix}", h.repo),
    )
}

/// The hub's file must be the one locked: same sha256 and size.
fn check_meta(m: &HfMeta, want: &Want, h: &HfRef) -> Result<()> {
    let differs = |what: &str, got: String, exp: String| {
        err(
            Code::Integrity,
            format!(
                "{}: the hub's {} at {} has {what} {got}, the manifest pins {exp}; lock the manifest again if the repository changed on purpose",
                want.label, h.file, h.revision
            ),
        )
    };
    if let Some(s) = &m.sha256
        && *s != want.sha256
    {
        return differs("sha256", s.clone(), want.sha256.clone());
    }
    if let Some(n) = m.size
        && n != want.size
    {
        return differs("size", n.to_string(), want.size.to_string());
    }
    Ok(())
}

/// Base64 (standard alphabet, padded), for a Basic credential.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                o.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

/// The Basic credential (base64 of `user:password`) for a registry host:
/// `ONRAMP_REGISTRY_AUTH` lines `HOST=USER:PASSWORD`, else the `auth` of
/// docker's config (`$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`), and where it came from.
pub fn registry_creds(host: &str) -> Option<(String, String)> {
    for line in env("ONRAMP_REGISTRY_AUTH").unwrap_or_default().lines() {
        if let Some((h, up)) = line.trim().split_once('=')
            && h.trim().eq_ignore_ascii_case(host)
            && up.contains(':')
        {
            return Some((base64(up.as_bytes()), "ONRAMP_REGISTRY_AUTH".to_string()));
        }
    }
    let cfg = env("DOCKER_CONFIG")
        .map(|d| crate::fsutil::expand_home(&d).join("config.json"))
        .or_else(|| crate::sys::home_dir().map(|h| PathBuf::from(h).join(".docker/config.json")))?;
    let f = super::open_nofollow(&cfg).ok()?;
    let mut b = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, 1 << 20), &mut b).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
    let auths = v.get("auths")?.as_object()?;
    // `docker login` keeps Docker Hub's credentials under its v1 index URL.
    let docker_hub = ["docker.io", "registry-1.docker.io", "index.docker.io"];
    for (k, a) in auths {
        let key = k
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("");
        let same = key.eq_ignore_ascii_case(host)
            || (docker_hub.contains(&key)
                && docker_hub.contains(&host.to_ascii_lowercase().as_str()));
        if same
            && let Some(s) = a
                .get("auth")
                .and_then(|x| x.as_str())
                .filter(|s| !s.is_empty())
        {
            return Some((s.to_string(), cfg.display().to_string()));
        }
    }
    None
}

/// A conversation with one registry about one repository: the token
/// challenge answered once, the bearer token kept for its blobs.
pub struct Registry {
    pub host: String,
    pub base: String,
    repository: String,
    net: Net,
    client: Client,
    token: Option<String>,
    basic: Option<String>,
}

impl Registry {
    pub fn new(host: &str, repository: &str, net: &Net) -> Result<Registry> {
        // Plain http only for a registry on this machine, and only when
        // --allow-http says so.
        let name = match host.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        let loopback = name == "localhost"
            || name
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|a| a.is_loopback());
        let scheme = if net.allow_http && loopback {
            "http"
        } else {
            "https"
        };
        let net = Net {
            auth: None,
            ..net.clone()
        };
        Ok(Registry {
            host: host.to_string(),
            base: format!("{scheme}://{host}"),
            repository: repository.to_string(),
            client: Client::new(&net)?,
            net,
            token: None,
            basic: None,
        })
    }

    /// The credential a blob request carries, for this registry only.
    pub fn auth(&self) -> Option<Auth> {
        let value = match (&self.token, &self.basic) {
            (Some(t), _) => format!("Bearer {t}"),
            (None, Some(b)) => format!("Basic {b}"),
            _ => return None,
        };
        Some(Auth {
            origin: http::origin(&self.base)?,
            value,
        })
    }

    fn headers(&self, accept: &str) -> Vec<(&'static str, String)> {
        let mut h = vec![("Accept", accept.to_string())];
        if let Some(a) = self.auth() {
            h.push(("Authorization", a.value));
        }
        h
    }

    /// GET a path of this registry, answering one auth challenge.
    fn get(&mut self, path: &str, accept: &str, label: &str) -> Result<Response> {
        let url = format!("{}{path}", self.base);
        let mut challenged = false;
        let mut tries = 0;
        loop {
            crate::signal::check()?;
            let sent = self.client.once("GET", &url, &self.headers(accept));
            let Some(resp) = retrying(sent, &mut tries, label)? else {
                continue;
            };
            let status = resp.status().as_u16();
            if status == 401 && !challenged {
                challenged = true;
                let ch = header(&resp, "www-authenticate").unwrap_or_default();
                self.answer(&ch, label)?;
                continue;
            }
            if (status >= 500 || status == 429) && tries < 3 {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(300 << tries));
                continue;
            }
            if (300..400).contains(&status)
                && let Some(loc) = header(&resp, "location")
            {
                // A registry may serve its manifests from elsewhere: followed
                // without the credential, which is this registry's alone.
                let next = http::join(&url, &loc);
                return self
                    .client
                    .get(&next, &[("Accept", accept.to_string())])
                    .map(|(r, _)| r)
                    .map_err(|e| match e {
                        Fail::Fatal(e) => e,
                        Fail::Retry(m, _) => Error::new(Code::Network, format!("{label}: {m}")),
                    });
            }
            return Ok(resp);
        }
    }

    /// Answer `WWW-Authenticate`: Bearer (fetch a token from the realm,
    /// with the Basic credential if there is one) or Basic.
    fn answer(&mut self, challenge: &str, label: &str) -> Result<()> {
        let creds = registry_creds(&self.host);
        let (scheme, params) = challenge
            .trim()
            .split_once(' ')
            .unwrap_or((challenge.trim(), ""));
        let params = auth_params(params);
        let no_creds = || {
            Error::new(
                Code::Auth,
                format!(
                    "{label}: registry {} asks for credentials: set ONRAMP_REGISTRY_AUTH={}=USER:PASSWORD or log in with `docker login {}`, then run the installer again",
                    self.host, self.host, self.host
                ),
            )
        };
        if scheme.eq_ignore_ascii_case("basic") {
            let (b, _) = creds.ok_or_else(no_creds)?;
            self.basic = Some(b);
            return Ok(());
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return err(
                Code::Network,
                format!(
                    "{label}: registry {} asks for {scheme:?} authentication, which onramp does not speak",
                    self.host
                ),
            );
        }
        let realm = params.get("realm").cloned().unwrap_or_default();
        if !(realm.starts_with("https://")
            || (self.base.starts_with("http://") && realm.starts_with("http://")))
        {
            return err(
                Code::Network,
                format!(
                    "{label}: registry {} names the token service {realm:?}; onramp asks only an https one",
                    self.host
                ),
            );
        }
        let scope = params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
        let mut url = format!(
            "{realm}{}scope={}",
            if realm.contains('?') { "&" } else { "?" },
            quote(&scope, false)
        );
        if let Some(s) = params.get("service") {
            url.push_str(&format!("&service={}", quote(s, false)));
        }
        let net = Net {
            auth: creds.as_ref().and_then(|(b, _)| {
                Some(Auth {
                    origin: http::origin(&realm)?,
                    value: format!("Basic {b}"),
                })
            }),
            ..self.net.clone()
        };
        let client = Client::new(&net)?;
        let resp = match client.once("GET", &url, &[]) {
            Ok(r) => r,
            Err(Fail::Fatal(e)) => return Err(e),
            Err(Fail::Retry(m, _)) => return err(Code::Network, format!("{label}: {m}")),
        };
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(match &creds {
                None => no_creds(),
                Some((_, from)) => Error::new(
                    Code::Auth,
                    format!(
                        "{label}: the token service of registry {} refused the credentials from {from} (HTTP {status}); check them, or that they may pull {}",
                        self.host, self.repository
                    ),
                ),
            });
        }
        if status != 200 {
            return err(
                Code::Network,
                format!("{label}: token service {realm}: HTTP {status}"),
            );
        }
        let body = read_bounded(resp, 1 << 16).map_err(|e| {
            Error::new(
                Code::Network,
                format!("{label}: token service {realm}: {e}"),
            )
        })?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                Code::Network,
                format!("{label}: token service {realm} sent no JSON: {e}"),
            )
        })?;
        let tok = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                Error::new(
                    Code::Network,
                    format!("{label}: token service {realm} sent no token"),
                )
            })?;
        self.token = Some(tok.to_string());
        Ok(())
    }

    /// A manifest by tag or digest, its bytes and the registry's
    /// `Docker-Content-Digest`.
    pub fn manifest(&mut self, reference: &str, label: &str) -> Result<(Vec<u8>, Option<String>)> {
        let path = format!("/v2/{}/manifests/{reference}", self.repository);
        let resp = self.get(&path, MANIFEST_TYPES, label)?;
        let status = resp.status().as_u16();
        match status {
            200 => {}
            401 | 403 => {
                return err(
                    Code::Auth,
                    format!(
                        "{label}: registry {} refused to serve {}:{reference} (HTTP {status}); set ONRAMP_REGISTRY_AUTH={}=USER:PASSWORD for an account that may pull it",
                        self.host, self.repository, self.host
                    ),
                );
            }
            404 => {
                return err(
                    Code::Network,
                    format!(
                        "{label}: registry {} has no {}:{reference} (HTTP 404)",
                        self.host, self.repository
                    ),
                );
            }
            _ => {
                return err(
                    Code::Network,
                    format!("{label}: {}{path}: HTTP {status}", self.base),
                );
            }
        }
        let dcd = header(&resp, "docker-content-digest");
        let body = read_bounded(resp, MAX_MANIFEST).map_err(|e| {
            Error::new(Code::Network, format!("{label}: manifest {reference}: {e}"))
        })?;
        Ok((body, dcd))
    }
}

fn read_bounded(resp: Response, max: u64) -> std::io::Result<Vec<u8>> {
    let mut body = resp.into_body();
    let mut v = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(body.as_reader(), max + 1), &mut v)?;
    if v.len() as u64 > max {
        return Err(std::io::Error::other(format!("larger than {max} bytes")));
    }
    Ok(v)
}

/// `k="v", k2=v2` of a challenge.
fn auth_params(s: &str) -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((k, r)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let r = r.trim_start();
        let (v, r) = if let Some(q) = r.strip_prefix('"') {
            match q.find('"') {
                Some(i) => (&q[..i], &q[i + 1..]),
                None => (q, ""),
            }
        } else {
            match r.find(',') {
                Some(i) => (&r[..i], &r[i..]),
                None => (r, ""),
            }
        };
        m.insert(k, v.to_string());
        rest = r.trim_start().trim_start_matches(',').trim_start();
    }
    m
}

/// A layer of a manifest: its sha256 and size.
#[derive(Debug, PartialEq, Eq)]
pub struct Layer {
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
    pub title: Option<String>,
}

/// The layer `o` asks for (by media type and/or title; the only layer
/// when it names neither).
pub fn pick_layer(manifest: &[u8], o: &OciRef, label: &str) -> Result<Layer> {
    let v: serde_json::Value = serde_json::from_slice(manifest).map_err(|e| {
        Error::new(
            Code::Network,
            format!("{label}: the registry's manifest is not JSON: {e}"),
        )
    })?;
    if v.get("manifests").is_some() {
        return err(
            Code::Manifest,
            format!(
                "{label}: {} is an index of several manifests; name one of them by its digest",
                o.reference
            ),
        );
    }
    let mut layers = Vec::new();
    for l in v
        .get("layers")
        .and_then(|l| l.as_array())
        .into_iter()
        .flatten()
    {
        let digest = l.get("digest").and_then(|d| d.as_str()).unwrap_or("");
        let Some(hex) = digest
            .strip_prefix("sha256:")
            .filter(|h| crate::manifest::is_sha256(h))
        else {
            continue;
        };
        let Some(size) = l.get("size").and_then(|s| s.as_u64()) else {
            continue;
        };
        layers.push(Layer {
            sha256: hex.to_string(),
            size,
            media_type: l
                .get("mediaType")
                .and_then(|m| m.as_str())
                .unwrap_or("")
                .to_string(),
            title: l
                .pointer("/annotations/org.opencontainers.image.title")
                .and_then(|t| t.as_str())
                .map(str::to_string),
        });
    }
    let fits = |l: &Layer| {
        o.media_type.as_ref().is_none_or(|m| *m == l.media_type)
            && o.title.as_ref().is_none_or(|t| l.title.as_ref() == Some(t))
    };
    let mut found: Vec<Layer> = layers.into_iter().filter(fits).collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => err(
            Code::Manifest,
            format!(
                "{label}: {} has no layer with{}{}",
                o.reference,
                o.media_type
                    .as_ref()
                    .map(|m| format!(" media type {m:?}"))
                    .unwrap_or_default(),
                o.title
                    .as_ref()
                    .map(|t| format!(" title {t:?}"))
                    .unwrap_or_default()
            ),
        ),
        n => err(
            Code::Manifest,
            format!(
                "{label}: {} has {n} layers that fit; name one by \"media_type\" or \"title\"",
                o.reference
            ),
        ),
    }
}

/// The pins `onramp lock` writes for an `hf` file: its commit, sha256 and
/// size, from the hub's headers (an LFS file is not downloaded; a small
/// git file, which the hub gives no sha256 of, is, bounded).
pub fn lock_hf(h: &HfRef, label: &str, net: &Net) -> Result<(String, String, u64)> {
    let endpoint = hf_endpoint();
    let token = hf_token();
    let auth = token.as_ref().and_then(|(t, _)| bearer(&endpoint, t));
    let client = Client::new(&Net {
        auth,
        ..net.clone()
    })?;
    let url = hf_url(&endpoint, h, &h.revision);
    let m = hf_head(
        &client,
        &url,
        h,
        label,
        token.as_ref().map(|t| t.1.as_str()),
    )?;
    let commit = m
        .commit
        .filter(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|c| c.to_ascii_lowercase())
        .ok_or_else(|| {
            Error::new(
                Code::Network,
                format!("{label}: the hub gave no commit (X-Repo-Commit) for {url}; cannot pin it"),
            )
        })?;
    if let (Some(sha), Some(size)) = (m.sha256, m.size) {
        return Ok((commit, sha, size));
    }
    // A small file kept in git: fetch it at the commit and hash it.
    let pinned = hf_url(&endpoint, h, &commit);
    let body = http::get_small(&client, &pinned, 32 << 20).map_err(|e| {
        Error::new(
            e.code,
            format!("{label}: the hub gives no sha256 of {} (not an LFS file) and fetching it to hash failed: {}", h.file, e.msg),
        )
    })?;
    Ok((
        commit,
        crate::fsutil::sha256_bytes(&body),
        body.len() as u64,
    ))
}

/// The pins `onramp lock` writes for an `oci` layer: the manifest's
/// digest, the layer's sha256 and size (only the manifest is fetched).
pub fn lock_oci(o: &OciRef, label: &str, net: &Net) -> Result<(String, String, u64)> {
    let name = oci_name(o, label)?;
    let mut reg = Registry::new(&name.registry, &name.repository, net)?;
    let reference = match (&name.digest, &name.tag) {
        (Some(d), _) => format!("sha256:{d}"),
        (None, Some(t)) => t.clone(),
        (None, None) => {
            return err(
                Code::Manifest,
                format!("{label}: {}: no tag or digest", o.reference),
            );
        }
    };
    let (bytes, dcd) = reg.manifest(&reference, label)?;
    let digest = crate::fsutil::sha256_bytes(&bytes);
    if let Some(d) = dcd.as_deref().and_then(|d| d.strip_prefix("sha256:"))
        && d != digest
    {
        return err(
            Code::Integrity,
            format!(
                "{label}: registry {} says the manifest is sha256:{d} but its bytes hash to {digest}",
                name.registry
            ),
        );
    }
    if let Some(d) = &name.digest
        && *d != digest
    {
        return err(
            Code::Integrity,
            format!(
                "{label}: registry {} sent a manifest hashing to {digest} for sha256:{d}",
                name.registry
            ),
        );
    }
    let layer = pick_layer(&bytes, o, label)?;
    Ok((digest, layer.sha256, layer.size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn challenge_params_are_read_quoted_and_bare() {
        let m = auth_params(
            r#"realm="https://auth.example/token",service=registry.example,scope="repository:a/b:pull,push""#,
        );
        assert_eq!(m["realm"], "https://auth.example/token");
        assert_eq!(m["service"], "registry.example");
        assert_eq!(m["scope"], "repository:a/b:pull,push");
    }

    #[test]
    fn the_resolve_url_is_spelled_as_huggingface_hub_spells_it() {
        let h = HfRef {
            repo: "org/m".into(),
            file: "dir/a b+.gguf".into(),
            revision: "refs/pr/1".into(),
            branch: None,
            repo_type: Some("dataset".into()),
        };
        assert_eq!(
            hf_url("https://hub.example/", &h, &h.revision),
            "https://hub.example/datasets/org/m/resolve/refs%2Fpr%2F1/dir/a%20b%2B.gguf"
        );
        assert_eq!(h.cache_folder(), "datasets--org--m");
    }

    #[test]
    fn a_layer_is_picked_by_type_or_title_and_ambiguity_is_refused() {
        let m = br#"{"schemaVersion":2,"layers":[
            {"mediaType":"application/x-gguf","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":5,"annotations":{"org.opencontainers.image.title":"m.gguf"}},
            {"mediaType":"application/json","digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","size":7}]}"#;
        let mut o = OciRef {
            reference: "r.example/a/b:1".into(),
            media_type: None,
            title: None,
            tag: None,
        };
        assert!(pick_layer(m, &o, "x").is_err());
        o.title = Some("m.gguf".into());
        assert_eq!(pick_layer(m, &o, "x").unwrap().size, 5);
        o.title = None;
        o.media_type = Some("application/json".into());
        assert_eq!(pick_layer(m, &o, "x").unwrap().size, 7);
        o.media_type = Some("nope".into());
        assert_eq!(pick_layer(m, &o, "x").unwrap_err().code, Code::Manifest);
    }

    #[test]
    fn references_parse_and_bad_ones_are_named() {
        let n = crate::manifest::parse_oci("127.0.0.1:5000/models/chat:v1").unwrap();
        assert_eq!(
            (n.registry.as_str(), n.repository.as_str(), n.tag.as_deref()),
            ("127.0.0.1:5000", "models/chat", Some("v1"))
        );
        let d = "a".repeat(64);
        let n = crate::manifest::parse_oci(&format!("r.io/x@sha256:{d}")).unwrap();
        assert_eq!(n.digest.as_deref(), Some(d.as_str()));
        for bad in [
            "noslash",
            "r.io/Upper:1",
            "r.io/x",
            "r.io/x@md5:aa",
            "r.io/x:bad tag",
        ] {
            assert!(crate::manifest::parse_oci(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn messages_show_no_query_or_user_info() {
        assert_eq!(
            http::shown("https://u:p@cdn.example/blobs/ab?expires=1&sig=SECRET#x"),
            "https://cdn.example/blobs/ab"
        );
        assert_eq!(http::shown("https://h.example"), "https://h.example");
    }

    #[test]
    fn ref_names_stay_below_refs() {
        for ok in ["main", "v1.0", "refs/pr/1", "release-2_x"] {
            assert!(crate::manifest::is_ref_name(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            ".hidden",
            "a b",
            "a\\b",
        ] {
            assert!(!crate::manifest::is_ref_name(bad), "{bad}");
        }
    }

    #[test]
    fn origins_spell_out_the_port_and_ignore_the_path() {
        assert_eq!(
            http::origin("https://Hub.example/a/b?x").as_deref(),
            Some("https://hub.example:443")
        );
        assert_eq!(
            http::origin("https://127.0.0.1:8443/x").as_deref(),
            Some("https://127.0.0.1:8443")
        );
        assert_ne!(
            http::origin("https://hub.example/"),
            http::origin("https://cdn.hub.example/")
        );
        assert_ne!(
            http::origin("https://hub.example/"),
            http::origin("http://hub.example/")
        );
    }
}
