//! `--eval`: a recipe's metadata the way makepkg gets it, by sourcing the
//! PKGBUILD in bash, locked down: a copy in a private directory, an empty
//! environment but for what makepkg sets (CARCH, startdir, srcdir, ...), a
//! timeout, its own network namespace (as root; else a user namespace when
//! the kernel allows one), and the user `nobody` when root. The variables
//! the recipe set and its `package*()` functions (as `declare -f` prints
//! them) come back NUL-separated and feed the same .SRCINFO writer as the
//! static reader, so makepkg's quirks (how it scans package_*() bodies)
//! apply the same way. Used only for recipes pinned by sha256.

use super::{Recipe, Val};
use crate::error::{Code, Error, Result, err};
use crate::sys::dirfd::{self, Dir, Kind};
use std::fs;
use std::io::Read;
use std::time::Duration;

/// The metadata dump is small; a recipe that writes more is refused.
const MAX_DUMP: u64 = 16 << 20;

/// Read `dir/dump`, written by the recipe's user (`uid`, as root): by
/// descriptor, a regular file of that user, bounded.
fn read_dump(dir: &std::path::Path, uid: Option<u32>) -> Result<Vec<u8>> {
    let p = dir.join("dump");
    let d = Dir::open(dir).map_err(|e| Error::io("cannot open", dir, e))?;
    let mut f = d
        .open_file(std::ffi::OsStr::new("dump"))
        .map_err(|e| Error::io("cannot read", &p, e))?;
    let st = dirfd::fstat(&f).map_err(|e| Error::io("cannot stat", &p, e))?;
    if st.kind != Kind::File || uid.is_some_and(|u| st.uid != u) {
        return err(
            Code::Manifest,
            "the recipe's evaluated metadata is not a file of the build user; refusing it",
        );
    }
    let mut bytes = Vec::new();
    (&mut f)
        .take(MAX_DUMP + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("cannot read", &p, e))?;
    if bytes.len() as u64 > MAX_DUMP {
        return err(
            Code::Manifest,
            format!("the recipe's evaluated metadata is over {MAX_DUMP} bytes; refusing it"),
        );
    }
    Ok(bytes)
}

/// Sources the recipe, then writes `S|A NUL name NUL (value | count NUL
/// items...)` for each variable it set and `F NUL name NUL body NUL` for
/// each function, to fd 3.
const DRIVER: &str = r#"__onramp_before=$(compgen -v)
shopt -u extglob
# A file the recipe sources that is not there (one beside it that was not
# given) would leave bash carrying on with half a recipe: refused.
source() {
    [[ -f $1 && -r $1 ]] || { echo "==> the recipe sources $1, which is not there; makepkg would carry on without it and answer wrongly" >&2; exit 4; }
    builtin source "$@"
}
.() { source "$@"; }
# Sourced inside a function, as makepkg does: a top-level `declare` in the
# recipe makes a local that is gone afterwards.
__onramp_load() { source "$1"; }
__onramp_load "$1" || { echo "==> the recipe failed while being sourced" >&2; exit 1; }
# A recipe that leaves IFS changed breaks makepkg's own reading of it (its
# arrays come out empty): refuse rather than answer differently.
if [[ -v IFS && $IFS != $' \t\n' ]]; then
    echo "==> the recipe leaves IFS changed after it is sourced, which makepkg misreads; restore it (unset IFS)" >&2
    exit 3
fi
exec 3>"$2"
for __n in $(compgen -v); do
    case "$__n" in __*|BASH*|FUNCNAME|PIPESTATUS|_|COLUMNS|LINES|SHELLOPTS|RANDOM|SECONDS|LINENO|SRANDOM|EPOCH*|HISTCMD|OPTIND|OPTERR|PPID|UID|EUID|GROUPS|HOSTNAME|HOSTTYPE|MACHTYPE|OSTYPE|IFS|PS4|SHLVL|PWD|OLDPWD|DIRSTACK|COMP_WORDBREAKS) continue ;; esac
    if [[ $'\n'$__onramp_before$'\n' == *$'\n'$__n$'\n'* ]] && [[ ! $__n =~ ^(pkg|epoch|url|license|install|changelog|arch|groups|depends|makedepends|checkdepends|optdepends|provides|conflicts|replaces|backup|options|noextract|source|validpgpkeys|[a-z0-9]*sums) ]]; then
        continue
    fi
    __d=$(declare -p "$__n" 2>/dev/null) || continue
    case "$__d" in
        "declare -A"*) continue ;;
        "declare -a"*|"declare -ar"*)
            declare -n __r="$__n"
            printf 'A\0%s\0%s\0' "$__n" "${#__r[@]}" >&3
            [ "${#__r[@]}" -gt 0 ] && printf '%s\0' "${__r[@]}" >&3
            unset -n __r ;;
        *) printf 'S\0%s\0%s\0' "$__n" "${!__n}" >&3 ;;
    esac
done
for __f in $(compgen -A function); do
    [[ $__f == __onramp_* || $__f == source || $__f == . ]] && continue
    printf 'F\0%s\0%s\0' "$__f" "$(declare -f "$__f" | sed '1,2d;$d')" >&3
done"#;

fn parse_dump(bytes: &[u8]) -> Result<Recipe> {
    let bad = || {
        Error::new(
            Code::Manifest,
            "the recipe's evaluated metadata is malformed",
        )
    };
    let mut it = bytes
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned());
    let mut r = Recipe::default();
    while let Some(kind) = it.next() {
        match kind.as_str() {
            "" => break,
            "S" => {
                let (Some(n), Some(v)) = (it.next(), it.next()) else {
                    return Err(bad());
                };
                r.vars.insert(n, Val::Str(v));
            }
            "A" => {
                let (Some(n), Some(c)) = (it.next(), it.next()) else {
                    return Err(bad());
                };
                let c: usize = c.parse().map_err(|_| bad())?;
                let mut v = Vec::with_capacity(c.min(10_000));
                for _ in 0..c {
                    v.push(it.next().ok_or_else(bad)?);
                }
                r.vars.insert(n, Val::Arr(v));
            }
            "F" => {
                let (Some(n), Some(b)) = (it.next(), it.next()) else {
                    return Err(bad());
                };
                r.functions.insert(n, (0, b));
            }
            _ => return Err(bad()),
        }
    }
    Ok(r)
}

/// What is copied from beside a recipe: files of at most this size, this
/// many in all, this many directories deep.
const BESIDE_FILE: u64 = 1 << 20;
const BESIDE_FILES: usize = 512;
const BESIDE_DEPTH: usize = 4;

/// The recipe's folder, for a recipe that sources a file beside it
/// (`source "$startdir"/customization.cfg`): its regular files, copied into
/// the private directory it is sourced in. By descriptor, no link followed
/// (a link there is left out, as is anything not a plain file or
/// directory), bounded (see `BESIDE_*`); makepkg's own work directories
/// (`src`, `pkg`) and `.git` are left out, and what cannot be read is
/// skipped (a recipe that sources it is then refused).
fn copy_beside(from: &Dir, to: &std::path::Path, depth: usize, left: &mut usize) {
    let Ok(names) = from.entries() else {
        return;
    };
    for name in names {
        if *left == 0 {
            return;
        }
        let top_skip = depth == 0
            && ["PKGBUILD", "src", "pkg", ".git"]
                .iter()
                .any(|s| name == std::ffi::OsStr::new(s));
        if top_skip {
            continue;
        }
        let Ok(st) = from.stat_at(&name) else {
            continue;
        };
        let dest = to.join(&name);
        match st.kind {
            Kind::Dir if depth < BESIDE_DEPTH => {
                if let Ok(sub) = from.open_dir(&name)
                    && fs::create_dir(&dest).is_ok()
                {
                    copy_beside(&sub, &dest, depth + 1, left);
                }
            }
            Kind::File => {
                let Ok(f) = from.open_file(&name) else {
                    continue;
                };
                if !dirfd::fstat(&f).is_ok_and(|s| s.kind == Kind::File) {
                    continue;
                }
                let mut bytes = Vec::new();
                if (&f).take(BESIDE_FILE + 1).read_to_end(&mut bytes).is_err()
                    || bytes.len() as u64 > BESIDE_FILE
                {
                    continue;
                }
                if crate::fsutil::write_new(&dest, &bytes, 0o644).is_ok() {
                    *left -= 1;
                }
            }
            _ => {}
        }
    }
}

/// Source `text` for `carch`: the recipe's variables and functions, and
/// what it printed on stdout while being sourced (makepkg passes it on).
/// `dir`: the recipe's own folder, whose files it may source.
pub fn eval(
    text: &str,
    carch: &str,
    dir: Option<&std::path::Path>,
    timeout: Duration,
) -> Result<(Recipe, String)> {
    if !crate::run::on_build_path("bash") {
        return err(
            Code::Platform,
            "reading a recipe with --eval needs bash on the system PATH",
        );
    }
    let user = crate::sandbox::acquire()?;
    let work = crate::run::private_dir("eval")?;
    let res = (|| {
        // The recipe and what was beside it, in a folder of their own
        // (its startdir and working directory, as makepkg's).
        let rdir = work.join("recipe");
        fs::create_dir(&rdir).map_err(|e| Error::io("cannot create", &rdir, e))?;
        crate::sys::set_path_mode(&rdir, 0o755)
            .map_err(|e| Error::io("cannot set the mode of", &rdir, e))?;
        let pkgbuild = rdir.join("PKGBUILD");
        crate::fsutil::write_new(&pkgbuild, text.as_bytes(), 0o644)?;
        if let Some(d) = dir
            && let Ok(from) = Dir::open(d)
        {
            let mut left = BESIDE_FILES;
            copy_beside(&from, &rdir, 0, &mut left);
        }
        let (home, outdir) = (work.join("home"), work.join("out"));
        for d in [&home, &outdir] {
            fs::create_dir(d).map_err(|e| Error::io("cannot create", d, e))?;
        }
        // As root: the recipe's user gets HOME and the output directory,
        // root keeps the directory holding them (so neither can be swapped).
        if let Some(u) = &user {
            let hand = |d: &std::path::Path, uid: u32, mode: u32| {
                Dir::open(d)
                    .and_then(|h| h.chown_chmod(uid, u.gid, mode))
                    .map_err(|e| Error::io("cannot hand to the build user", d, e))
            };
            hand(&home, u.uid, 0o700)?;
            hand(&outdir, u.uid, 0o700)?;
            hand(&work, 0, 0o710)?;
        }
        let out = outdir.join("dump");
        let env: Vec<(String, String)> = [
            ("PATH", crate::run::BUILD_PATH.to_string()),
            ("HOME", home.display().to_string()),
            // makepkg runs in the user's (UTF-8) locale: a multi-byte IFS
            // or ${v^^} on UTF-8 text must behave as it does there.
            ("LANG", "C.UTF-8".to_string()),
            ("CARCH", carch.to_string()),
            ("startdir", rdir.display().to_string()),
            ("srcdir", rdir.join("src").display().to_string()),
            ("pkgdir", rdir.join("pkg").display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let argv: Vec<String> = [
            "bash",
            "--noprofile",
            "--norc",
            "-c",
            DRIVER,
            "onramp-eval",
            &pkgbuild.display().to_string(),
            &out.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Not as root the recipe runs as the user: it gets no writable view
        // of onramp's cache and state (where the kernel allows it).
        let read_only = if user.is_none() {
            [
                crate::download::cache_root(None).ok(),
                crate::state::root(None).ok(),
            ]
            .into_iter()
            .flatten()
            .collect()
        } else {
            Vec::new()
        };
        let spec = crate::run::Spec {
            env,
            clear_env: true,
            user: user.as_ref().map(|u| u.ids()),
            timeout,
            isolate_net: true,
            contain: true,
            read_only,
            ..Default::default()
        };
        let o = crate::run::run_spec(&argv, &rdir, &spec)?;
        if !o.ok() {
            return err(
                Code::Manifest,
                format!("sourcing the recipe in bash {}", o.describe()),
            );
        }
        let bytes = read_dump(&outdir, user.as_ref().map(|u| u.uid))?;
        let mut r = parse_dump(&bytes)?;
        r.declare_f = true;
        r.vars.remove("CARCH");
        for k in ["startdir", "srcdir", "pkgdir", "HOME", "PATH", "LANG"] {
            r.vars.remove(k);
        }
        Ok((r, o.stdout))
    })();
    crate::fsutil::remove_tree(&work);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_format() {
        let r = parse_dump(
            b"S\0pkgver\x001.0\0A\0arch\x002\0x86_64\0any\0A\0e\x000\0F\0package\0  true\0",
        )
        .unwrap();
        assert_eq!(r.vars["pkgver"], Val::Str("1.0".into()));
        assert_eq!(
            r.vars["arch"],
            Val::Arr(vec!["x86_64".into(), "any".into()])
        );
        assert_eq!(r.vars["e"], Val::Arr(vec![]));
        assert_eq!(r.functions["package"].1, "  true");
        assert!(parse_dump(b"A\0x\x005\0a\0").is_err());
    }

    #[test]
    #[cfg(unix)] // runs bash
    fn evaluates_what_the_static_reader_refuses() {
        use std::path::Path;
        if !Path::new("/bin/bash").exists() && !Path::new("/usr/bin/bash").exists() {
            return;
        }
        let text = "pkgname=t\npkgver=$(echo 1.2)\npkgrel=1\narch=(any)\nif [[ $CARCH == x86_64 ]]; then depends=(a); else depends=(b); fi\npackage() { pkgdesc=\"x\"; }\n";
        let (r, _) = eval(text, "aarch64", None, Duration::from_secs(20)).unwrap();
        assert_eq!(r.vars["pkgver"], Val::Str("1.2".into()));
        assert_eq!(r.vars["depends"], Val::Arr(vec!["b".into()]));
        assert!(r.functions["package"].1.contains("pkgdesc=\"x\""));
    }
}
