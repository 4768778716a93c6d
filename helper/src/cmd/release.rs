//! `onramp release`: the directory a maintainer uploads as is to any static
//! host. It holds a self-contained `install.sh` (lib/ inlined; the base URL,
//! the stack, the manifest's location, the trusted keys and the helpers'
//! sha256 baked in), `install.ps1` (the same values, the Windows helpers'
//! pins), the helpers as `onramp-VERSION-TARGET` (`.exe` for Windows), `manifest.json`
//! and its `.minisig` (made by the real `minisign`), every file the manifest
//! names by relative path, and `SHA256SUMS`. Nothing in it depends on the
//! time or the machine: the same inputs give the same bytes. Helpers for
//! other targets are copied and hashed, never executed.

use super::{need_manifest, trusted_keys};
use crate::cli::Flags;
use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::manifest::Loaded;
use crate::out;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The installer and its modules, as this helper was built with them.
const INSTALL_SH: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../install.sh"));
const INSTALL_PS1: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../install.ps1"));
const LIBS: &[(&str, &str)] = &[
    (
        "ui",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../lib/ui.sh")),
    ),
    (
        "exitcodes",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../lib/exitcodes.sh")),
    ),
    (
        "platform",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../lib/platform.sh")),
    ),
    (
        "helper",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../lib/helper.sh")),
    ),
    (
        "resume",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../lib/resume.sh")),
    ),
    (
        "phases",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../lib/phases.sh")),
    ),
];

/// What gets baked into install.sh and install.ps1.
pub struct Bake {
    pub base: String,
    pub stack: String,
    pub manifest: String,
    pub keys: Vec<String>,
    pub pins: BTreeMap<String, String>,
}

/// `text` with its marked blocks replaced: a line starting with a block's
/// opening marker, and every line after it up to its closing marker (kept),
/// become that block's text. Each block must be there.
fn bake_blocks(text: &str, what: &str, blocks: &[(&str, &str, String)]) -> Result<String> {
    let mut out = String::new();
    let mut until: Option<&str> = None;
    let mut seen = 0;
    for line in text.lines() {
        if let Some(end) = until {
            if line != end {
                continue;
            }
            until = None;
        } else if let Some((_, end, new)) = blocks.iter().find(|b| line.starts_with(b.0)) {
            out.push_str(new);
            until = Some(end);
            seen += 1;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if seen != blocks.len() || until.is_some() {
        return err(
            Code::Internal,
            format!(
                "{what} lacks one of its marked blocks; this helper was built from a damaged checkout"
            ),
        );
    }
    Ok(out)
}

/// install.sh with lib/ inlined and `bake` written into its marked blocks.
pub fn installer(bake: &Bake) -> Result<String> {
    let mut pins = String::from("    # >>> pins\n    case $1 in\n");
    for (t, sha) in bake.pins.iter().filter(|(t, _)| !is_windows(t)) {
        pins.push_str(&format!("    {t}) printf '{sha}' ;;\n"));
    }
    pins.push_str("    *) printf '' ;;\n    esac\n");
    let mut release = String::from("    # >>> release\n");
    for (k, v) in [
        ("base", &bake.base),
        ("stack", &bake.stack),
        ("manifest", &bake.manifest),
        ("keys", &bake.keys.join(" ")),
    ] {
        release.push_str(&format!("    onramp_rel_{k}='{v}'\n"));
    }
    let mut lib = String::from("# >>> lib: inlined from lib/ by onramp release\n");
    for (_, text) in LIBS {
        for l in text.lines() {
            if !l.starts_with("# shellcheck shell=sh") {
                lib.push_str(l);
                lib.push('\n');
            }
        }
        lib.push('\n');
    }
    lib.push_str("onramp_load_lib() {\n    onramp_src_dir=\n}\n");
    bake_blocks(
        INSTALL_SH,
        "install.sh",
        &[
            ("    # >>> pins", "    # <<< pins", pins),
            ("    # >>> release", "    # <<< release", release),
            ("# >>> lib", "# <<< lib", lib),
        ],
    )
}

/// install.ps1 with `bake` written into its marked blocks: the Windows
/// helpers' pins and the release's values (single-quoted: `shell_safe`
/// keeps quotes out of them).
pub fn installer_ps1(bake: &Bake) -> Result<String> {
    let mut pins = String::from("    # >>> pins\n    switch ($Target) {\n");
    for (t, sha) in bake.pins.iter().filter(|(t, _)| is_windows(t)) {
        pins.push_str(&format!("        '{t}' {{ '{sha}' }}\n"));
    }
    pins.push_str("        default { '' }\n    }\n");
    let release = format!(
        "    # >>> release\n    @{{ Base = '{}'; Stack = '{}'; Manifest = '{}'; TrustKeys = '{}' }}\n",
        bake.base,
        bake.stack,
        bake.manifest,
        bake.keys.join(" ")
    );
    bake_blocks(
        INSTALL_PS1,
        "install.ps1",
        &[
            ("    # >>> pins", "    # <<< pins", pins),
            ("    # >>> release", "    # <<< release", release),
        ],
    )
}

/// Is `target` a Windows one (its helper is an `.exe`, pinned in install.ps1)?
pub fn is_windows(target: &str) -> bool {
    target.starts_with("windows-")
}

/// The file name a release gives the helper for `target`.
pub fn helper_file(target: &str) -> String {
    if is_windows(target) {
        format!("onramp-{VERSION}-{target}.exe")
    } else {
        format!("onramp-{VERSION}-{target}")
    }
}

/// Text baked between single quotes in install.sh: plain URL or key
/// characters only.
fn shell_safe(what: &str, v: &str) -> Result<()> {
    let ok = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~:/%@+,=[]".contains(&b));
    if ok {
        Ok(())
    } else {
        err(
            Code::Usage,
            format!(
                "{what} {v:?} holds characters onramp does not bake into install.sh (quotes, spaces, $, ...)"
            ),
        )
    }
}

/// A path a release copies: relative, below the manifest's directory.
fn below(at: &str, p: &str) -> Result<()> {
    if p.is_empty() || p.starts_with('/') || p.split('/').any(|c| c == ".." || c == ".") {
        return err(
            Code::Manifest,
            format!(
                "{at} {p:?} is not below the manifest's directory; a release copies only files below it (or give a url)"
            ),
        );
    }
    Ok(())
}

/// Copy `src` to `out/rel` in chunks (a model may be larger than memory),
/// hashing while copying; with `want`, the bytes must have that sha256
/// (and size), or nothing is left at `out/rel`.
fn copy_in(src: &Path, out: &Path, rel: &str, want: Option<(&str, Option<u64>)>) -> Result<String> {
    use sha2::Digest;
    use std::io::Write;
    let mut f =
        crate::download::open_nofollow(src).map_err(|e| Error::io("cannot open", src, e))?;
    let meta = f.metadata().map_err(|e| Error::io("cannot read", src, e))?;
    if !meta.is_file() {
        return err(
            Code::Manifest,
            format!("{} is not a regular file", src.display()),
        );
    }
    let dest = out.join(rel);
    if let Some(d) = dest.parent() {
        fsutil::mkdirs(d)?;
    }
    let tmp = fsutil::temp_beside(&dest);
    let mut w = std::fs::File::create(&tmp).map_err(|e| Error::io("cannot create", &tmp, e))?;
    let mut h = sha2::Sha256::new();
    let mut n = 0u64;
    let copied = fsutil::read_chunks(&mut f, src, |b| {
        h.update(b);
        n += b.len() as u64;
        w.write_all(b)
            .map_err(|e| Error::io("cannot write", &tmp, e))
    })
    .and_then(|()| w.sync_all().map_err(|e| Error::io("cannot sync", &tmp, e)));
    if let Err(e) = copied {
        fsutil::remove(&tmp);
        return Err(e);
    }
    let sha = fsutil::hex(&h.finalize());
    if let Some((w, size)) = want
        && (sha != w || size.is_some_and(|s| s != n))
    {
        fsutil::remove(&tmp);
        return err(
            Code::Integrity,
            format!(
                "{}: sha256 {sha} ({n} bytes) is not what the manifest says ({w}); fix the manifest or the file before releasing",
                src.display(),
            ),
        );
    }
    if dest.exists() {
        // Named twice (two targets sharing a file): identical, or refused.
        fsutil::remove(&tmp);
        if fsutil::sha256_file(&dest)? != sha {
            return err(
                Code::Manifest,
                format!("{rel} is named twice with different contents"),
            );
        }
        return Ok(sha);
    }
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io("cannot move into place", &dest, e))?;
    Ok(sha)
}

/// The helpers to ship, `--helper TARGET=PATH`; by default this helper,
/// for this machine (it must be static: it runs on every machine).
pub(crate) fn helpers(f: &Flags) -> Result<BTreeMap<String, PathBuf>> {
    let mut helpers: BTreeMap<String, PathBuf> = BTreeMap::new();
    for h in &f.helpers {
        let Some((t, p)) = h.split_once('=') else {
            return err(
                Code::Usage,
                format!("--helper {h:?}: use TARGET=PATH (e.g. linux-aarch64=./onramp)"),
            );
        };
        if t == "any" || !crate::platform::KNOWN_TARGETS.contains(&t) {
            return err(Code::Usage, format!("--helper {h:?}: unknown target {t:?}"));
        }
        helpers.insert(t.to_string(), fsutil::absolute(Path::new(p))?);
    }
    if helpers.is_empty() {
        let me = std::env::current_exe().map_err(|e| {
            Error::new(
                Code::Internal,
                format!("cannot find this helper's file: {e}"),
            )
        })?;
        if !is_static(&me)? {
            return err(
                Code::Usage,
                format!(
                    "{} is not statically linked, so it would not run on every machine; pass --helper {}=PATH to a static build (sh tools/build-helper.sh)",
                    me.display(),
                    crate::platform::target()
                ),
            );
        }
        helpers.insert(crate::platform::target(), me);
    }
    Ok(helpers)
}

/// Copy the helpers in as `onramp-VERSION-TARGET`; their sha256 by target.
pub(crate) fn copy_helpers(
    helpers: &BTreeMap<String, PathBuf>,
    out_dir: &Path,
) -> Result<BTreeMap<String, String>> {
    let mut pins = BTreeMap::new();
    for (t, p) in helpers {
        check_format(t, p)?;
        let sha = copy_in(p, out_dir, &helper_file(t), None)?;
        pins.insert(t.clone(), sha);
    }
    Ok(pins)
}

/// Copy every file the manifest names by relative path (artifacts, pinned
/// recipes, catalog entries), each checked against its sha256 when it has
/// one, to the same relative path under `out_dir`.
pub(crate) fn copy_named(m: &Loaded, out_dir: &Path) -> Result<()> {
    for (i, c) in m.m.components.iter().enumerate() {
        let sets = std::iter::once((String::new(), &c.artifacts)).chain(
            c.variants
                .iter()
                .enumerate()
                .map(|(j, v)| (format!(".variants[{j}]"), &v.artifacts)),
        );
        for (at, arts) in sets {
            for (t, a) in arts {
                if let Some(p) = &a.path {
                    copy_file(
                        m,
                        out_dir,
                        &format!("components[{i}]{at}.artifacts.{t}.path"),
                        p,
                        a.sha256.as_deref().map(|s| (s, a.size)),
                    )?;
                }
            }
        }
        if let Some(r) = &c.recipe
            && let Some(p) = &r.path
        {
            below(&format!("components[{i}].recipe.path"), p)?;
            copy_in(&m.dir.join(p), out_dir, p, Some((&r.sha256, None)))?;
        }
        if let Some(k) = &c.catalog
            && !k.base.contains("://")
        {
            below(&format!("components[{i}].catalog.base"), &k.base)?;
            let rel = format!("{}/workers/{}", k.base.trim_end_matches('/'), k.id);
            for file in files_below(&m.dir.join(&rel))? {
                let r = format!("{rel}/{file}");
                copy_in(&m.dir.join(&r), out_dir, &r, None)?;
            }
        }
    }
    Ok(())
}

/// Copy the file the manifest names at `at` by relative path `rel` (it
/// must be below the manifest's directory), checked against `want`.
pub(crate) fn copy_file(
    m: &Loaded,
    out_dir: &Path,
    at: &str,
    rel: &str,
    want: Option<(&str, Option<u64>)>,
) -> Result<String> {
    below(at, rel)?;
    copy_in(&m.dir.join(rel), out_dir, rel, want)
}

/// Every regular file below `dir`, relative to it, sorted.
pub(crate) fn files_below(dir: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let abs = dir.join(&rel);
        let rd = std::fs::read_dir(&abs).map_err(|e| Error::io("cannot list", &abs, e))?;
        for e in rd {
            let e = e.map_err(|e| Error::io("cannot list", &abs, e))?;
            let r = rel.join(e.file_name());
            let t = e
                .file_type()
                .map_err(|er| Error::io("cannot read", &e.path(), er))?;
            if t.is_dir() {
                todo.push(r);
            } else if t.is_file() {
                found.push(r.to_string_lossy().into_owned());
            } else {
                return err(
                    Code::Manifest,
                    format!(
                        "{} is not a regular file or directory; a release or bundle carries only those",
                        e.path().display()
                    ),
                );
            }
        }
    }
    found.sort();
    Ok(found)
}

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

/// A Windows helper must be a PE file (it starts with `MZ`) and any other
/// must not be: a swapped `--helper` would be pinned and shipped otherwise.
fn check_format(target: &str, p: &Path) -> Result<()> {
    let mut head = [0u8; 2];
    let n = std::fs::File::open(p)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|e| Error::io("cannot read", p, e))?;
    let pe = n == 2 && &head == b"MZ";
    if pe != is_windows(target) {
        return err(
            Code::Usage,
            format!(
                "--helper {target}={}: {}",
                p.display(),
                if pe {
                    "this is a Windows program (PE), not a helper for this target"
                } else {
                    "a Windows helper must be a Windows program (onramp.exe, a PE file); build it on Windows (README, Windows)"
                }
            ),
        );
    }
    Ok(())
}

/// Is the ELF file at `p` free of a program interpreter (static)?
fn is_static(p: &Path) -> Result<bool> {
    let b = std::fs::read(p).map_err(|e| Error::io("cannot read", p, e))?;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return Ok(false);
    }
    let u16at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16at(54), u16at(56));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > b.len() {
            return Ok(false);
        }
        if u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) == 3 {
            return Ok(false); // PT_INTERP
        }
    }
    Ok(true)
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

pub fn cmd_release(f: &Flags) -> Result<i32> {
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
    let man = match &f.manifest {
        Some(_) => Some(need_manifest(f)?),
        None => None,
    };
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
    let helpers = helpers(f)?;
    fsutil::mkdirs(&out_dir)?;
    let pins = copy_helpers(&helpers, &out_dir)?;
    let mut keys = trusted_keys(f)?.texts();
    if let Some(m) = &man {
        copy_named(m, &out_dir)?;
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
    let script = installer(&bake)?;
    fsutil::write_atomic(&out_dir.join("install.sh"), script.as_bytes(), 0o755)?;
    let ps1 = installer_ps1(&bake)?;
    fsutil::write_atomic(&out_dir.join("install.ps1"), ps1.as_bytes(), 0o644)?;
    let mut sums = String::new();
    for rel in files_below(&out_dir)? {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_blocks_are_replaced_and_a_missing_or_open_one_is_an_error() {
        let text = "a\n# >>> x\nold\n# <<< x\nb\n";
        let new = |s: &str| vec![("# >>> x", "# <<< x", s.to_string())];
        assert_eq!(
            bake_blocks(text, "t", &new("# >>> x\nnew\n"))
                .ok()
                .as_deref(),
            Some("a\n# >>> x\nnew\n# <<< x\nb\n")
        );
        assert!(bake_blocks("a\nb\n", "t", &new("n\n")).is_err());
        assert!(bake_blocks("a\n# >>> x\nold\n", "t", &new("n\n")).is_err());
    }

    #[test]
    fn both_installers_keep_their_markers_and_pin_only_their_own_targets() {
        let bake = Bake {
            base: "https://x.example/s".into(),
            stack: "s".into(),
            manifest: "https://x.example/s/manifest.json".into(),
            keys: vec![],
            pins: [
                ("linux-x86_64".to_string(), "a".repeat(64)),
                ("windows-x86_64".to_string(), "b".repeat(64)),
            ]
            .into_iter()
            .collect(),
        };
        let sh = installer(&bake).unwrap_or_default();
        let ps = installer_ps1(&bake).unwrap_or_default();
        assert!(sh.contains(&format!("linux-x86_64) printf '{}'", "a".repeat(64))));
        assert!(!sh.contains(&"b".repeat(64)));
        assert!(ps.contains(&format!("'windows-x86_64' {{ '{}' }}", "b".repeat(64))));
        assert!(!ps.contains(&"a".repeat(64)));
        for m in ["# >>> pins", "# <<< pins", "# >>> release", "# <<< release"] {
            assert!(sh.contains(m) && ps.contains(m), "{m}");
        }
        assert!(ps.ends_with("-Eof 'onramp-eof'\n"));
    }
}
