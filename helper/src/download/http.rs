//! The HTTP client: explicit connect and read timeouts, proxies from the
//! environment, TLS with the bundled Mozilla roots plus `--ca-file` /
//! `SSL_CERT_FILE`, and redirects followed by hand (at most 5, https to
//! http never, even with --allow-http) so the resolved URL is known.

use crate::error::{Code, Error, Result, err};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Net {
    pub allow_http: bool,
    pub ca_file: Option<PathBuf>,
    pub read_timeout: Duration,
    pub connect_timeout: Duration,
    /// A credential for one origin: sent only to URLs of that origin,
    /// never to where it redirects elsewhere (a CDN's signed URL).
    pub auth: Option<Auth>,
}

/// An `Authorization` header value and the one origin (`scheme://host:port`)
/// it may go to. Its Debug form hides the secret.
#[derive(Clone)]
pub struct Auth {
    pub origin: String,
    pub value: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Auth({}, <secret>)", self.origin)
    }
}

/// A URL as messages show it: without its query, fragment or user info (a
/// CDN's signed redirect carries a credential there).
pub fn shown(url: &str) -> String {
    let base = url.split(['?', '#']).next().unwrap_or(url);
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => base.to_string(),
    }
}

/// `scheme://host:port` of a URL, the port spelled out, lowercase.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host
        .rsplit_once('@')
        .map_or(host, |(_, h)| h)
        .to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let has_port = match host.rfind(']') {
        Some(i) => host[i..].contains(':'),
        None => host.contains(':'),
    };
    let port = match (has_port, scheme.as_str()) {
        (true, _) => String::new(),
        (false, "https") => ":443".to_string(),
        (false, "http") => ":80".to_string(),
        _ => return None,
    };
    Some(format!("{scheme}://{host}{port}"))
}

impl Default for Net {
    fn default() -> Self {
        Net {
            allow_http: false,
            ca_file: None,
            read_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(15),
            auth: None,
        }
    }
}

#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    allow_http: bool,
    ca_hint: &'static str,
    auth: Option<Auth>,
}

/// What went wrong with one request.
pub enum Fail {
    /// Worth another try later (after the given wait, when the server said).
    Retry(String, Option<Duration>),
    Fatal(Error),
}

pub type Response = ureq::http::Response<ureq::Body>;

fn load_pem(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let pem = std::fs::read(path).map_err(|e| {
        Error::new(
            Code::Usage,
            format!("cannot read CA file {}: {e}", path.display()),
        )
    })?;
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(e) => {
                return err(
                    Code::Usage,
                    format!("CA file {} is not valid PEM: {e}", path.display()),
                );
            }
        }
    }
    if out.is_empty() {
        return err(
            Code::Usage,
            format!("CA file {} holds no certificate", path.display()),
        );
    }
    Ok(out)
}

impl Client {
    pub fn new(net: &Net) -> Result<Client> {
        let mut roots: Vec<ureq::tls::Certificate<'static>> =
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                .collect();
        let mut ca_hint = "pass --ca-file FILE or set SSL_CERT_FILE if your network uses its own certificate authority";
        if let Some(p) = &net.ca_file {
            roots.extend(load_pem(p)?);
            ca_hint = "the CA from --ca-file did not sign it either: pass --ca-file FILE with the CA that did";
        }
        // SSL_CERT_FILE is often set machine-wide: one that cannot be read
        // is reported and skipped, not fatal (an explicit --ca-file is).
        if let Some(p) = std::env::var_os("SSL_CERT_FILE")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
        {
            match load_pem(&p) {
                Ok(certs) => {
                    roots.extend(certs);
                    if net.ca_file.is_none() {
                        ca_hint = "the CAs in SSL_CERT_FILE did not sign it either: pass --ca-file FILE with the CA that did";
                    }
                }
                Err(e) => crate::say!("onramp: warning: ignoring SSL_CERT_FILE: {}", e.msg),
            }
        }
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(ureq::Proxy::try_from_env())
            .https_only(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .timeout_connect(Some(net.connect_timeout))
            .timeout_resolve(Some(net.connect_timeout))
            .timeout_recv_response(Some(net.read_timeout))
            .timeout_per_read(Some(net.read_timeout))
            .user_agent(concat!("onramp/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client {
            agent,
            allow_http: net.allow_http,
            ca_hint,
            auth: net.auth.clone(),
        })
    }

    /// One request, no redirect followed, with the credential when `url`
    /// is its origin. `method`: GET or HEAD.
    pub fn once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
    ) -> std::result::Result<Response, Fail> {
        if url.starts_with("http://") && !self.allow_http {
            return Err(Fail::Fatal(Error::new(
                Code::Network,
                format!("refusing plain http ({url}); use an https URL or pass --allow-http"),
            )));
        }
        let mut req = match method {
            "HEAD" => self.agent.head(url),
            _ => self.agent.get(url),
        }
        .header("Accept-Encoding", "identity");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(a) = &self.auth
            && origin(url).as_deref() == Some(a.origin.as_str())
        {
            req = req.header("Authorization", &a.value);
        }
        req.call().map_err(|e| self.classify(url, e))
    }

    /// GET `url` with `headers`, following redirects by hand. Returns the
    /// final response (not a redirect) and the URL that answered.
    pub fn get(
        &self,
        url: &str,
        headers: &[(&str, String)],
    ) -> std::result::Result<(Response, String), Fail> {
        let mut cur = url.to_string();
        for _ in 0..=5 {
            let resp = self.once("GET", &cur, headers)?;
            let status = resp.status().as_u16();
            if !(300..400).contains(&status) || status == 304 {
                return Ok((resp, cur));
            }
            let Some(loc) = resp.headers().get("location").and_then(|v| v.to_str().ok()) else {
                return Err(Fail::Fatal(Error::new(
                    Code::Network,
                    format!("{}: HTTP {status} without a Location", shown(&cur)),
                )));
            };
            let next = join(&cur, loc);
            if cur.starts_with("https://") && next.starts_with("http://") {
                return Err(Fail::Fatal(Error::new(
                    Code::Network,
                    format!(
                        "{} redirects to plain http ({}); refused, an https download never continues over http",
                        shown(&cur),
                        shown(&next)
                    ),
                )));
            }
            cur = next;
        }
        Err(Fail::Fatal(Error::new(
            Code::Network,
            format!("{url}: more than 5 redirects (a loop?)"),
        )))
    }

    fn classify(&self, url: &str, e: ureq::Error) -> Fail {
        let url = &shown(url);
        match e {
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
                Fail::Fatal(Error::new(
                    Code::Network,
                    format!("TLS failure talking to {url}: {e}; {}", self.ca_hint),
                ))
            }
            ureq::Error::BadUri(s) => {
                Fail::Fatal(Error::new(Code::Network, format!("{url}: bad URL: {s}")))
            }
            ureq::Error::HostNotFound => Fail::Retry(format!("{url}: host not found"), None),
            other => {
                let text = other.to_string();
                if text.contains("certificate") || text.contains("UnknownIssuer") {
                    Fail::Fatal(Error::new(
                        Code::Network,
                        format!("TLS failure talking to {url}: {text}; {}", self.ca_hint),
                    ))
                } else {
                    Fail::Retry(format!("{url}: {text}"), None)
                }
            }
        }
    }
}

/// Resolve a Location header against the URL it came from.
pub fn join(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    if let Some(r) = loc.strip_prefix("//") {
        return format!("{scheme}://{r}");
    }
    let host_end = rest.find('/').unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..host_end]);
    if loc.starts_with('/') {
        return format!("{origin}{loc}");
    }
    let path = rest[host_end..].split(['?', '#']).next().unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    format!("{origin}{dir}{loc}")
}

/// The size of `url` from a one-byte ranged request (for downloads given
/// without --size; the sha256 still has to match).
pub fn probe_size(client: &Client, url: &str) -> Result<u64> {
    let (resp, _) = client
        .get(url, &[("Range", "bytes=0-0".to_string())])
        .map_err(|e| match e {
            Fail::Fatal(e) => e,
            Fail::Retry(m, _) => Error::new(Code::Network, m),
        })?;
    let status = resp.status().as_u16();
    let total = match status {
        206 => header(&resp, "content-range")
            .as_deref()
            .and_then(content_range)
            .and_then(|r| r.2),
        200 => header(&resp, "content-length").and_then(|l| l.parse().ok()),
        _ => None,
    };
    // What the caller can do differs: a missing file is the server's or the
    // release's to fix; a size the server does not give, the manifest's.
    total.ok_or_else(|| {
        Error::new(
            Code::Network,
            match status {
                200 | 206 => format!(
                    "{url}: the server does not say how large it is; give its \"size\" in the manifest (onramp download: --size BYTES)"
                ),
                404 | 410 => format!("{url}: HTTP {status}: the server does not have it"),
                _ => format!("{url}: HTTP {status}"),
            },
        )
    })
}

/// GET `url` and hand the 200 body to `f` as a reader; a few tries on
/// transient failures. For small documents and unverified (SKIP) sources,
/// which have no size or hash for the resumable engine.
pub fn get_body<T>(
    client: &Client,
    url: &str,
    mut f: impl FnMut(&mut dyn std::io::Read) -> std::io::Result<T>,
) -> Result<T> {
    let mut last = String::new();
    for attempt in 0..4u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(300 << attempt));
        }
        crate::signal::check()?;
        match client.get(url, &[]) {
            Ok((resp, _)) => {
                let status = resp.status().as_u16();
                if status == 200 {
                    let mut body = resp.into_body();
                    let mut r = body.as_reader();
                    match f(&mut r) {
                        Ok(v) => return Ok(v),
                        Err(e) => last = format!("{url}: {e}"),
                    }
                } else if status >= 500 || status == 429 {
                    last = format!("{url}: HTTP {status}");
                } else {
                    return err(Code::Network, format!("{url}: HTTP {status}"));
                }
            }
            Err(Fail::Fatal(e)) => return Err(e),
            Err(Fail::Retry(m, _)) => last = m,
        }
    }
    err(Code::Network, format!("{last} (after 4 attempts)"))
}

/// A small document (catalog entry, recipe) of at most `max` bytes.
pub fn get_small(client: &Client, url: &str, max: u64) -> Result<Vec<u8>> {
    let body = get_body(client, url, |r| {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(r, max + 1), &mut v)?;
        Ok(v)
    })?;
    if body.len() as u64 > max {
        return err(
            Code::Network,
            format!("{url}: larger than {max} bytes; not a catalog document"),
        );
    }
    Ok(body)
}

/// Seconds from a Retry-After header (delta-seconds form only).
pub fn retry_after(resp: &Response) -> Option<Duration> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(300)))
}

pub fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Parse `bytes A-B/TOTAL`.
pub fn content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let r = v.strip_prefix("bytes ")?;
    let (span, total) = r.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let total = if total == "*" {
        None
    } else {
        Some(total.parse().ok()?)
    };
    Some((a.parse().ok()?, b.parse().ok()?, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_joins() {
        assert_eq!(join("https://a.test/x/y?z", "/p"), "https://a.test/p");
        assert_eq!(join("https://a.test/x/y", "q"), "https://a.test/x/q");
        assert_eq!(join("https://a.test/x/y", "//b.test/r"), "https://b.test/r");
        assert_eq!(join("https://a.test", "http://c/"), "http://c/");
        assert_eq!(join("http://a.test:8/d/", "e"), "http://a.test:8/d/e");
    }

    #[test]
    fn content_ranges() {
        assert_eq!(content_range("bytes 0-9/10"), Some((0, 9, Some(10))));
        assert_eq!(content_range("bytes 5-9/*"), Some((5, 9, None)));
        assert_eq!(content_range("bytes x-9/10"), None);
    }
}
