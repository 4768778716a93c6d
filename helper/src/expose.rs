//! Putting a stack's commands on the user's PATH (the manifest's `expose`,
//! paths in the prefix): one symbolic link per command in the user's bin
//! directory (`$ONRAMP_BIN_DIR`, else `$XDG_BIN_HOME`, else `~/.local/bin`;
//! as root `/usr/local/bin`), never replacing a file that is not onramp's
//! link; with `--modify-path`, one marked block in each of the user's shell
//! profiles that puts that directory on PATH (fish gets a file of its own
//! in `conf.d`). Each link and block is noted in the state before it is
//! made, and an uninstall removes exactly those. After linking, each
//! command is looked up on the caller's PATH and, when it does not resolve
//! to the link, the exact line to add is printed.

use crate::error::{Code, Error, Result};
use crate::fsutil;
use crate::state::{Block, Link};
use std::path::{Path, PathBuf};

/// The user's bin directory (see the module doc).
pub fn bin_dir() -> Result<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = var("ONRAMP_BIN_DIR").or_else(|| var("XDG_BIN_HOME")) {
        return fsutil::absolute(Path::new(&d));
    }
    if crate::fsutil::is_root() {
        return Ok(PathBuf::from("/usr/local/bin"));
    }
    match var("HOME") {
        Some(h) => Ok(PathBuf::from(h).join(".local/bin")),
        None => Err(Error::new(
            Code::Usage,
            "no HOME: set ONRAMP_BIN_DIR to where the stack's commands should be linked",
        )),
    }
}

fn begin(stack: &str) -> String {
    format!("# >>> onramp {stack}: the stack's commands on PATH >>>")
}

fn end(stack: &str) -> String {
    format!("# <<< onramp {stack} <<<")
}

/// `s` in single quotes, for sh and fish alike.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn quote_fish(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

/// The profiles a block goes into: `~/.profile` always; `~/.bashrc`,
/// `~/.bash_profile`, `~/.zshrc` when they exist or the user's shell is
/// that one; fish's `conf.d/onramp-STACK.fish` when fish is the shell or
/// configured.
pub fn profiles(home: &Path, stack: &str) -> Vec<PathBuf> {
    let shell = std::env::var("SHELL").unwrap_or_default();
    let shell = shell.rsplit('/').next().unwrap_or("");
    let mut v = vec![home.join(".profile")];
    for (f, sh) in [
        (".bashrc", "bash"),
        (".bash_profile", ""),
        (".zshrc", "zsh"),
    ] {
        let p = home.join(f);
        if p.exists() || (!sh.is_empty() && shell == sh) {
            v.push(p);
        }
    }
    let fish = home.join(".config/fish");
    if fish.is_dir() || shell == "fish" {
        v.push(fish.join("conf.d").join(format!("onramp-{stack}.fish")));
    }
    v
}

/// The block's text for `file`.
pub fn block_text(file: &Path, stack: &str, bin: &Path) -> String {
    let b = bin.display().to_string();
    let body = if file.extension().is_some_and(|e| e == "fish") {
        format!(
            "if not contains -- {q} $PATH\n    set -gx PATH {q} $PATH\nend",
            q = quote_fish(&b)
        )
    } else {
        format!(
            "case \":$PATH:\" in *:{q}:*) ;; *) PATH={q}\":$PATH\"; export PATH ;; esac",
            q = quote(&b)
        )
    };
    format!("{}\n{body}\n{}\n", begin(stack), end(stack))
}

/// `text` without the block (and the newline that was added for it).
fn without_block(text: &str, stack: &str, added_newline: bool) -> Option<String> {
    let b = begin(stack);
    let e = end(stack);
    let start = text.find(&b)?;
    let stop = text[start..].find(&e).map(|i| start + i + e.len())?;
    let stop = if text[stop..].starts_with('\n') {
        stop + 1
    } else {
        stop
    };
    let mut head = text[..start].to_string();
    if added_newline && head.ends_with('\n') {
        head.pop();
    }
    Some(head + &text[stop..])
}

/// The file a profile path really is (a dotfile manager's link is
/// followed, so the link stays a link).
fn real(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p)
        .map(|m| crate::sys::mode_of(&m))
        .unwrap_or(0o644)
}

/// Add the block to `file` (the record says how), or replace the one there.
pub fn add_block(rec: &Block, stack: &str, bin: &Path) -> Result<()> {
    let path = real(Path::new(&rec.file));
    let old = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io("cannot read", &path, e)),
    };
    let block = block_text(&path, stack, bin);
    let base = without_block(&old, stack, false).unwrap_or(old.clone());
    let mut new = base.clone();
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str(&block);
    if new == old {
        return Ok(());
    }
    if let Some(d) = path.parent() {
        fsutil::mkdirs(d)?;
    }
    fsutil::write_atomic(&path, new.as_bytes(), mode_of(&path))
}

/// Remove the block from `rec.file` (and the file, when onramp made it and
/// nothing else is in it). True when there was one.
pub fn remove_block(rec: &Block, stack: &str) -> Result<bool> {
    let path = real(Path::new(&rec.file));
    let old = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("cannot read", &path, e)),
    };
    let Some(new) = without_block(&old, stack, rec.added_newline) else {
        return Ok(false);
    };
    if new.is_empty() && rec.created {
        crate::fault::io("unlink", &path, || std::fs::remove_file(&path))
            .map_err(|e| Error::io("cannot remove", &path, e))?;
    } else {
        fsutil::write_atomic(&path, new.as_bytes(), mode_of(&path))?;
    }
    Ok(true)
}

/// Make `link` point to `target`, atomically. Refused (Ok(false)) when
/// something that is not that link is there.
pub fn make_link(link: &Path, target: &Path) -> Result<bool> {
    match std::fs::read_link(link) {
        Ok(t) if t == target => return Ok(true),
        Ok(_) => return Ok(false),
        Err(_) if std::fs::symlink_metadata(link).is_ok() => return Ok(false),
        Err(_) => {}
    }
    let tmp = fsutil::temp_beside(link);
    crate::fault::io("link", &tmp, || crate::sys::symlink(target, &tmp))
        .map_err(|e| Error::io("cannot create link", &tmp, e))?;
    crate::fault::io("rename", link, || std::fs::rename(&tmp, link))
        .map_err(|e| Error::io("cannot create link", link, e))?;
    Ok(true)
}

/// Remove `rec`'s link if it is still onramp's. True when it went.
pub fn remove_link(rec: &Link) -> Result<bool> {
    let p = Path::new(&rec.path);
    match std::fs::read_link(p) {
        Ok(t) if t == Path::new(&rec.target) => {
            crate::fault::io("unlink", p, || std::fs::remove_file(p))
                .map_err(|e| Error::io("cannot remove", p, e))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Where `name` resolves on the caller's PATH, if anywhere.
pub fn resolve(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| crate::sys::is_executable(&m)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_comes_out_as_it_went_in() {
        let bin = Path::new("/home/a b/.local/bin");
        for old in ["", "x=1\n", "x=1", "# a\n\n# b\n"] {
            let f = Path::new("/h/.profile");
            let added = !old.is_empty() && !old.ends_with('\n');
            let mut new = old.to_string();
            if added {
                new.push('\n');
            }
            new.push_str(&block_text(f, "s", bin));
            assert_eq!(without_block(&new, "s", added).as_deref(), Some(old));
            // another stack's block is not ours
            assert_eq!(without_block(&new, "t", added), None);
        }
    }

    #[test]
    fn the_sh_block_quotes_the_directory() {
        let t = block_text(Path::new(".profile"), "s", Path::new("/x/it's"));
        assert!(t.contains(r"PATH='/x/it'\''s'"), "{t}");
    }
}
