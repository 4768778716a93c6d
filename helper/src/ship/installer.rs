//! The installers a release or bundle carries: install.sh with lib/
//! inlined, and install.ps1, each with the release's values (base URL,
//! stack, manifest location, trusted keys, helper pins) written into its
//! marked blocks.

use super::helpers::is_windows;
use crate::error::{Code, Result, err};
use std::collections::BTreeMap;

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

/// Text baked between single quotes in install.sh: plain URL or key
/// characters only.
pub fn shell_safe(what: &str, v: &str) -> Result<()> {
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
