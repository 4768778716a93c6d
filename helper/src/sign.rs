//! Manifest signatures: the minisign public keys an install trusts and the
//! check of a manifest's detached `.minisig` against them. With any key
//! trusted, a manifest without a good signature by one of them is refused
//! (exit 7) before anything it names is requested. Several keys may be
//! trusted at once, so a maintainer can rotate to a new one.

use crate::error::{Code, Error, Result, err};
use minisign_verify::{PublicKey, Signature};
use std::path::Path;

/// Largest `.minisig` read (a real one is about 300 bytes).
pub const MAX_SIG: u64 = 8192;

/// Where the detached signature of `path` lives: `path.minisig`.
pub fn sig_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".minisig");
    std::path::PathBuf::from(s)
}

#[derive(Default)]
pub struct Keys {
    keys: Vec<(String, PublicKey)>,
}

impl Keys {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Trust each of `specs`: a base64 minisign public key (`RW...`) or the
    /// path of a `minisign.pub` file. `ONRAMP_TRUST_KEY` adds more (space-
    /// or comma-separated).
    pub fn from_specs(specs: &[String]) -> Result<Keys> {
        let env = std::env::var("ONRAMP_TRUST_KEY").unwrap_or_default();
        let mut all: Vec<String> = specs.to_vec();
        all.extend(
            env.split(|c: char| c == ',' || c.is_ascii_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        let mut keys = Keys::default();
        for s in all {
            let (text, pk) = parse_key(&s)?;
            if !keys.keys.iter().any(|(t, _)| *t == text) {
                keys.keys.push((text, pk));
            }
        }
        Ok(keys)
    }

    /// The base64 keys, for display and for baking into install.sh.
    pub fn texts(&self) -> Vec<String> {
        self.keys.iter().map(|(t, _)| t.clone()).collect()
    }

    /// `bytes` (read from `path`) against `path.minisig`.
    pub fn verify_file(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let sig_path = sig_path(path);
        let sig = match std::fs::metadata(&sig_path) {
            Ok(m) if m.len() > MAX_SIG => {
                return err(
                    Code::Integrity,
                    format!(
                        "{}: larger than {MAX_SIG} bytes, not a minisign signature",
                        sig_path.display()
                    ),
                );
            }
            Ok(_) => std::fs::read_to_string(&sig_path)
                .map_err(|e| Error::io("cannot read the signature", &sig_path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return err(
                    Code::Integrity,
                    format!(
                        "manifest {} is not signed ({} is missing) and this install trusts only manifests signed by {}; get the signature from the stack's publisher",
                        path.display(),
                        sig_path.display(),
                        self.describe()
                    ),
                );
            }
            Err(e) => return Err(Error::io("cannot read the signature", &sig_path, e)),
        };
        self.verify(&path.display().to_string(), bytes, &sig)
    }

    /// `bytes` of `what` against the text of a `.minisig`.
    pub fn verify(&self, what: &str, bytes: &[u8], sig: &str) -> Result<()> {
        let sig = Signature::decode(sig).map_err(|e| {
            Error::new(
                Code::Integrity,
                format!("the signature of {what} is not a minisign signature ({e}); refusing the manifest"),
            )
        })?;
        let mut other_key = true;
        for (_, pk) in &self.keys {
            match pk.verify(bytes, &sig, false) {
                Ok(()) => return Ok(()),
                Err(minisign_verify::Error::UnexpectedKeyId) => {}
                Err(_) => other_key = false,
            }
        }
        if other_key {
            err(
                Code::Integrity,
                format!(
                    "{what} is signed by a key this install does not trust (trusted: {}); refusing it. If the publisher rotated keys, get an install.sh that trusts the new one",
                    self.describe()
                ),
            )
        } else {
            err(
                Code::Integrity,
                format!(
                    "{what} does not match its signature (changed after signing, or damaged); refusing it"
                ),
            )
        }
    }

    fn describe(&self) -> String {
        self.texts().join(", ")
    }
}

/// A key spec: base64 text, or a `.pub` file whose last line is the key.
fn parse_key(spec: &str) -> Result<(String, PublicKey)> {
    let text = if PublicKey::from_base64(spec).is_ok() || !Path::new(spec).exists() {
        spec.to_string()
    } else {
        let p = Path::new(spec);
        let body = std::fs::read_to_string(p).map_err(|e| {
            Error::new(
                Code::Usage,
                format!("trusted key {spec:?} is neither a minisign public key (RW...) nor a readable .pub file: {e}"),
            )
        })?;
        body.lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .unwrap_or("")
            .to_string()
    };
    let pk = PublicKey::from_base64(&text).map_err(|e| {
        Error::new(
            Code::Usage,
            format!("trusted key {spec:?} is not a minisign public key ({e})"),
        )
    })?;
    Ok((text, pk))
}
