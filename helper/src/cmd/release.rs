//! `onramp release`: the directory a maintainer uploads as is to any static
//! host (see `ship` for what it holds): the installers with the base URL
//! and the manifest's location baked in, `manifest.json` with configure
//! sources inlined and signed by the real `minisign`, and `SHA256SUMS`.
//! Nothing in it depends on the time or the machine: the same inputs give
//! the same bytes.

use super::args::{self, Command, Parser, Stack};
use super::trusted_keys;
use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::manifest::Loaded;
use crate::out;
use crate::ship::{self, Role, helpers::is_windows, installer::Bake, installer::shell_safe};
use std::path::PathBuf;

/// The manifest as released: configure files named by `source` get their
/// text inline (a manifest fetched by URL names no local files); otherwise
/// the maintainer's bytes unchanged.
fn released_manifest(man: &Loaded) -> Result<Vec<u8>> {
    let bytes = std::fs::read(&man.path).map_err(|e| Error::io("cannot read", &man.path, e))?;
    if man.m.configure.files.iter().all(|f| f.source.is_none()) {
        return Ok(bytes);
    }
    let mut v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::new(Code::Manifest, format!("{}: {e}", man.path.display())))?;
    if let Some(files) = v
        .pointer_mut("/configure/files")
        .and_then(|f| f.as_array_mut())
    {
        for f in files {
            let Some(src) = f.get("source").and_then(|s| s.as_str()).map(str::to_string) else {
                continue;
            };
            let p = man.dir.join(&src);
            let text =
                std::fs::read(&p).map_err(|e| Error::io("cannot read configure source", &p, e))?;
            if let Some(want) = f.get("sha256").and_then(|s| s.as_str())
                && crate::fsutil::sha256_bytes(&text) != want
            {
                return Err(Error::new(
                    Code::Integrity,
                    format!(
                        "configure source {} does not match the sha256 the manifest pins ({want}); update the pin or the file",
                        p.display()
                    ),
                ));
            }
            let text = String::from_utf8(text).map_err(|_| {
                Error::new(
                    Code::Manifest,
                    format!(
                        "configure source {} is not UTF-8 text; ship it as an artifact instead",
                        p.display()
                    ),
                )
            })?;
            if let Some(o) = f.as_object_mut() {
                o.remove("source");
                o.remove("sha256");
                o.insert("content".into(), serde_json::Value::String(text));
            }
        }
    }
    let mut out = serde_json::to_vec_pretty(&v)
        .map_err(|e| Error::new(Code::Internal, format!("manifest: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

fn minisign(args: &[&std::ffi::OsStr], what: &str) -> Result<()> {
    let st = std::process::Command::new("minisign")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| {
            Error::new(
                Code::Usage,
                format!("cannot run minisign to {what} ({e}); install it (Debian: apt-get install minisign)"),
            )
        })?;
    if !st.success() {
        return err(
            Code::Usage,
            format!(
                "minisign could not {what} (exit {})",
                st.code().unwrap_or(-1)
            ),
        );
    }
    Ok(())
}

/// `onramp release`.
pub struct Release {
    stack: Stack,
    base_url: Option<String>,
    output: Option<PathBuf>,
    helpers: Vec<String>,
    minisign_key: Option<PathBuf>,
}

const BASE_URL: args::Opt = args::Opt {
    name: "--base-url",
    value: "URL",
    help: "where the directory will be served from (https)",
};
/// What `--trust-key` means to a release: keys baked into its installers,
/// not keys its input must be signed by (see `release`).
const TRUST_KEY: args::Opt = args::Opt {
    name: "--trust-key",
    value: "KEY",
    help: "a minisign public key the released installers trust (RW... or a .pub file; repeatable; also ONRAMP_TRUST_KEY), beside --minisign-key's: rotation, as README's step 7 says; the input manifest is not checked against it",
};
const MINISIGN_KEY: args::Opt = args::Opt {
    name: "--minisign-key",
    value: "FILE",
    help: "sign manifest.json with this minisign secret key",
};

impl Command for Release {
    const NAME: &'static str = "release";
    const USAGE: &'static str = "--manifest FILE --base-url URL -o DIR [--helper TARGET=PATH]... [--minisign-key FILE] [--trust-key KEY]...";
    const ABOUT: &'static str = "Write a directory to upload as is to any static host: a self-contained install.sh (base URL, stack, manifest location, trusted keys and helper pins baked in), the helpers, manifest.json signed with minisign, every file the manifest names by relative path, SHA256SUMS; and print the one-liners to publish. The same inputs give the same bytes.";
    fn parse(p: &mut Parser) -> Result<Self> {
        Ok(Release {
            stack: Stack {
                manifest: p.path(&args::MANIFEST)?,
                manifest_url: p.value(&args::MANIFEST_URL)?,
                trust_keys: p.values(&TRUST_KEY)?,
            },
            base_url: p.value(&BASE_URL)?,
            output: p.path(&args::OUTPUT)?,
            helpers: p.values(&args::HELPER)?,
            minisign_key: p.path(&MINISIGN_KEY)?,
        })
    }
    fn run(self) -> Result<i32> {
        release(&self)
    }
}

fn release(f: &Release) -> Result<i32> {
    let Some(out_dir) = f.output.clone() else {
        return err(Code::Usage, "release needs -o DIR");
    };
    let out_dir = fsutil::absolute(&out_dir)?;
    if let Ok(mut rd) = std::fs::read_dir(&out_dir)
        && rd.next().is_some()
    {
        return err(
            Code::Usage,
            format!(
                "{} is not empty; release into a new directory (a release is uploaded as a whole)",
                out_dir.display()
            ),
        );
    }
    // The manifest given is the maintainer's, unsigned: release signs it.
    // --trust-key names what the released installer will trust (a key being
    // rotated in), not what this input must be signed by.
    let man = f
        .stack
        .manifest
        .as_deref()
        .map(|p| {
            crate::manifest::load_signed(
                p,
                f.stack.manifest_url.as_deref(),
                &crate::sign::Keys::default(),
            )
        })
        .transpose()?;
    let base = f
        .base_url
        .clone()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    if man.is_some() && base.is_empty() {
        return err(
            Code::Usage,
            "release needs --base-url URL: where the directory will be served from",
        );
    }
    if !base.is_empty() {
        if !base.starts_with("https://") {
            return err(
                Code::Usage,
                format!(
                    "--base-url {base:?}: users fetch from it with curl --proto '=https'; use an https:// URL"
                ),
            );
        }
        shell_safe("--base-url", &base)?;
    }
    if let Some(m) = &man {
        if m.m.serial.is_none() {
            return err(
                Code::Manifest,
                format!(
                    "{} has no \"serial\": add one (an integer raised with every release) so machines can refuse a rollback",
                    m.path.display()
                ),
            );
        }
        shell_safe("the stack name", &m.m.name)?;
    }
    let mut keys = trusted_keys(&f.stack)?.texts();
    // Configure sources are not copied: their text goes into the manifest.
    let pins = ship::copy_stack(man.as_ref(), &f.helpers, &out_dir, Some(Role::ConfigSource))?;
    if let Some(m) = &man {
        let body = released_manifest(m)?;
        let mpath = out_dir.join("manifest.json");
        fsutil::write_atomic(&mpath, &body, 0o644)?;
        if let Some(sk) = &f.minisign_key {
            let comment = format!(
                "onramp release: {} {} serial {}",
                m.m.name,
                m.m.version,
                m.m.serial.unwrap_or(0)
            );
            minisign(
                &[
                    "-S".as_ref(),
                    "-s".as_ref(),
                    sk.as_os_str(),
                    "-m".as_ref(),
                    mpath.as_os_str(),
                    "-t".as_ref(),
                    comment.as_ref(),
                    "-c".as_ref(),
                    "signed by onramp release".as_ref(),
                ],
                "sign the manifest",
            )?;
            let pubf = out_dir.join(".signing-key.pub");
            minisign(
                &[
                    "-R".as_ref(),
                    "-s".as_ref(),
                    sk.as_os_str(),
                    "-p".as_ref(),
                    pubf.as_os_str(),
                ],
                "read the public key of the signing key",
            )?;
            let signer = crate::sign::Keys::from_specs(&[pubf.display().to_string()]);
            fsutil::remove(&pubf);
            let signer = signer?;
            signer.verify_file(&mpath, &body)?;
            for k in signer.texts() {
                if !keys.contains(&k) {
                    keys.insert(0, k);
                }
            }
        } else if !keys.is_empty() {
            return err(
                Code::Usage,
                "--trust-key without --minisign-key: the installer would trust keys, but the manifest would be unsigned and refused; sign it",
            );
        } else {
            out::line(
                "onramp: warning: releasing an unsigned manifest: users cannot tell it from a tampered one; pass --minisign-key (see README, Shipping your stack)",
            );
        }
    }
    for k in &keys {
        shell_safe("a trusted key", k)?;
    }
    let bake = Bake {
        base: base.clone(),
        stack: man.as_ref().map(|m| m.m.name.clone()).unwrap_or_default(),
        manifest: if man.is_some() {
            format!("{base}/manifest.json")
        } else {
            String::new()
        },
        keys,
        pins,
    };
    ship::write_installers(&out_dir, &bake)?;
    let mut sums = String::new();
    for rel in ship::files_below(&out_dir)? {
        if rel == "SHA256SUMS" {
            continue;
        }
        sums.push_str(&format!(
            "{}  {rel}\n",
            fsutil::sha256_file(&out_dir.join(&rel))?
        ));
    }
    fsutil::write_atomic(&out_dir.join("SHA256SUMS"), sums.as_bytes(), 0o644)?;
    out::line(&format!("onramp: release written to {}", out_dir.display()));
    if man.is_some() {
        out::line(&format!(
            "onramp: upload the whole directory so that {base}/install.sh is its install.sh, then publish:"
        ));
        out::stdout_line(&format!(
            "curl --proto '=https' --tlsv1.2 -fsSL {base}/install.sh | sh"
        ));
        out::stdout_line(&format!(
            "wget --https-only --secure-protocol=TLSv1_2 -qO- {base}/install.sh | sh"
        ));
        out::stdout_line(&format!(
            "curl --proto '=https' --tlsv1.2 -fsSL {base}/install.sh | sh -s -- --prefix DIR -y"
        ));
        if bake.pins.keys().any(|t| is_windows(t)) {
            out::stdout_line(&format!("irm {base}/install.ps1 | iex"));
            out::stdout_line(&format!(
                "& ([scriptblock]::Create((irm {base}/install.ps1))) -Prefix DIR -Yes"
            ));
        } else {
            out::line(
                "onramp: install.ps1 has no Windows helper pinned; pass --helper windows-x86_64=onramp.exe (built on Windows: README, Windows) to offer it",
            );
        }
    }
    Ok(0)
}
