//! Durable file operations: atomic replace, directory fsync, hashing, clock.
//!
//! Everything that must survive `kill -9` or a power cut is written here the
//! same way: a temp file in the target's directory, fsync, rename, fsync of
//! the directory. Directories are made through `dir`, which as root walks
//! the path and refuses one another user could change (the rules, and the
//! environment they apply to, are `trust`'s).

use crate::error::{Code, Error, Result};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The prefix of every temp file onramp creates; orphans are removed by name.
pub const TMP_MARK: &str = ".onramp-tmp-";

/// A temp path beside `target`, unique per process and call.
pub fn temp_beside(target: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let name = target
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = target.parent().unwrap_or(Path::new("."));
    dir.join(format!("{TMP_MARK}{}-{n}-{name}", std::process::id()))
}

/// fsync a directory so a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    crate::fault::io("fsync-dir", dir, || crate::sys::sync_dir(dir))
        .map_err(|e| Error::io("cannot sync directory", dir, e))
}

/// Write `data` to `path` atomically with permission bits `mode`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_beside(path);
    let res = (|| {
        let mut f = crate::fault::io("create", &tmp, || {
            crate::sys::create_mode(OpenOptions::new().write(true).create_new(true), mode)
                .open(&tmp)
        })
        .map_err(|e| Error::io("cannot create", &tmp, e))?;
        crate::fault::io("write", &tmp, || f.write_all(data))
            .map_err(|e| Error::io("cannot write", &tmp, e))?;
        // umask may have narrowed the mode; set it exactly, on the open file.
        crate::sys::set_file_mode(&f, mode).map_err(|e| Error::io("cannot chmod", &tmp, e))?;
        crate::fault::io("fsync", &tmp, || f.sync_all())
            .map_err(|e| Error::io("cannot sync", &tmp, e))?;
        crate::fault::io("rename", path, || crate::sys::replace_file(&tmp, path))
            .map_err(|e| Error::io("cannot rename into place", path, e))?;
        sync_dir(dir)
    })();
    if res.is_err() {
        crate::fsutil::remove(&tmp);
    }
    res
}

/// Swap a complete `new` tree in at `dest`; the old one (if any) goes last.
pub fn replace_dir(new: &std::path::Path, dest: &std::path::Path) -> Result<()> {
    let old = temp_beside(dest);
    let had_old = std::fs::symlink_metadata(dest).is_ok();
    if had_old {
        crate::fault::io("rename", dest, || std::fs::rename(dest, &old))
            .map_err(|e| Error::io("cannot move aside", dest, e))?;
    }
    crate::fault::io("rename", dest, || std::fs::rename(new, dest))
        .map_err(|e| Error::io("cannot move into place", dest, e))?;
    if let Some(parent) = dest.parent() {
        sync_dir(parent)?;
    }
    if had_old {
        remove_tree(&old);
    }
    Ok(())
}

/// Create the file `path`, which must not exist yet (a link at its name is
/// never followed), to write, with permission bits `mode`.
pub fn create_new(path: &Path, mode: u32) -> Result<File> {
    crate::fault::io("create", path, || {
        crate::sys::open_no_follow(
            crate::sys::create_mode(OpenOptions::new().write(true).create_new(true), mode),
            path,
        )
    })
    .map_err(|e| Error::io("cannot create", path, e))
}

/// Open the lock file `path` to read and write, created if missing and
/// never through a link; its contents (the holder's pid) are kept.
pub fn open_lock(path: &Path) -> std::io::Result<File> {
    crate::sys::open_no_follow(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
        path,
    )
}

/// `create_new` with `data`, synced.
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut f = create_new(path, mode)?;
    crate::fault::io("write", path, || f.write_all(data))
        .and_then(|()| crate::fault::io("fsync", path, || f.sync_all()))
        .map_err(|e| Error::io("cannot write", path, e))
}

/// Remove a file, best effort (cleanup): a durable operation, counted by
/// the fault hook like the others.
pub fn remove(p: impl AsRef<Path>) {
    let p = p.as_ref();
    let _ = crate::fault::io("unlink", p, || fs::remove_file(p));
}

/// Remove a directory tree, best effort (cleanup); links are not followed.
pub fn remove_tree(p: impl AsRef<Path>) {
    let p = p.as_ref();
    let _ = crate::fault::io("unlink", p, || fs::remove_dir_all(p));
}

/// Is this process running as root (so the checks apply)?
pub fn is_root() -> bool {
    crate::sys::is_admin()
}

/// Where an absolute path starts: `/`, or `C:\` and `\\server\share\`.
fn root_of(abs: &Path) -> PathBuf {
    abs.components()
        .take_while(|c| matches!(c, Component::Prefix(_) | Component::RootDir))
        .collect()
}

/// How strict to be with the last directory of the path.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Last {
    /// onramp makes directories and files in it: only root may write it.
    Private,
    /// onramp only places one file in it (a fresh temp name, then rename):
    /// a sticky directory such as /tmp is fine.
    Shared,
}

const FIX: &str = "as root, onramp writes only where no other user can change things: use a directory only root can write (a prefix such as /opt/NAME, ONRAMP_CACHE_DIR, ONRAMP_STATE_DIR), or run the installer as that user without sudo";

fn refuse(path: &Path, why: String, fix: &str) -> Error {
    Error::new(
        Code::Unsafe,
        format!("refusing {}: {why}; {fix}", path.display()),
    )
}

fn check_one(
    path: &Path,
    m: &std::fs::Metadata,
    last: Option<Last>,
    fix: &str,
) -> std::result::Result<(), Error> {
    let shared_ok = !matches!(last, Some(Last::Private));
    match crate::sys::distrust(path, m, shared_ok) {
        None => Ok(()),
        Some((why, None)) => Err(refuse(path, why, fix)),
        Some((why, Some(own))) => Err(refuse(path, why, &format!("{own}, or {fix}"))),
    }
}

/// Make sure `dir` exists and that, as root, nobody else can change it or
/// any directory on its way (see `trust`). `fix` says what the user
/// can do instead (None: the generic advice). Not as root: create it only.
pub fn dir(dir: &Path, last: Last, fix: Option<&str>) -> Result<()> {
    if !is_root() {
        return crate::fault::io("mkdir", dir, || std::fs::create_dir_all(dir))
            .map_err(|e| Error::io("cannot create directory", dir, e));
    }
    walk(dir, last, true, fix)
}

/// The walk behind `dir`, `trust::check` and `trust::untrusted`: each
/// directory from `/` down to `dir` judged (see `trust`), missing ones
/// made when `create`; `fix` says what to do instead (None: the generic
/// advice).
pub fn walk(dir: &Path, last: Last, create: bool, fix: Option<&str>) -> Result<()> {
    let fix = fix.unwrap_or(FIX);
    let abs = crate::fsutil::absolute(dir)?;
    let mut todo: VecDeque<OsString> = abs
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            _ => None,
        })
        .collect();
    let mut cur = root_of(&abs);
    let root_meta = std::fs::metadata(&cur).map_err(|e| Error::io("cannot stat", &cur, e))?;
    check_one(
        &cur,
        &root_meta,
        if todo.is_empty() { Some(last) } else { None },
        fix,
    )?;
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            cur.pop();
            continue;
        }
        if name == "." {
            continue;
        }
        let next = cur.join(&name);
        let is_last = todo.is_empty();
        let m = match std::fs::symlink_metadata(&next) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match crate::fault::io("mkdir", &next, || std::fs::create_dir(&next)) {
                    Ok(()) => {}
                    // Made by someone else meanwhile: judged below.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(Error::io("cannot create directory", &next, e)),
                }
                std::fs::symlink_metadata(&next).map_err(|e| Error::io("cannot stat", &next, e))?
            }
            Err(e) => return Err(Error::io("cannot stat", &next, e)),
        };
        if m.file_type().is_symlink() {
            if let Some(who) = crate::sys::link_distrust(&next, &m) {
                return Err(refuse(
                    &next,
                    format!("it is {who}, which can be pointed elsewhere at any moment"),
                    fix,
                ));
            }
            links += 1;
            if links > 40 {
                return Err(refuse(&abs, "too many symbolic links".into(), fix));
            }
            let target =
                std::fs::read_link(&next).map_err(|e| Error::io("cannot read link", &next, e))?;
            if target.is_absolute() {
                cur = root_of(&target);
            }
            for c in target.components().rev() {
                match c {
                    Component::Normal(s) => todo.push_front(s.to_os_string()),
                    Component::ParentDir => todo.push_front("..".into()),
                    _ => {}
                }
            }
            continue;
        }
        if !m.is_dir() {
            return Err(Error::new(
                Code::Unsafe,
                format!("{} is not a directory", next.display()),
            ));
        }
        check_one(&next, &m, if is_last { Some(last) } else { None }, fix)?;
        cur = next;
    }
    Ok(())
}

/// Create `dir` and its parents. As root, refuse (exit 13) a directory on
/// the way that another user could change (see `trust`).
pub fn mkdirs(dir: &Path) -> Result<()> {
    self::dir(dir, Last::Private, None)
}

/// The note in an onramp root (state or cache) that lists the directories
/// onramp created to make it, for an uninstall to remove exactly those.
pub const CREATED_NOTE: &str = "created-dirs.json";

/// Create onramp's own root directory (the state or the cache root). When
/// it did not exist, first note the directories this creates (it and its
/// missing parents) in `root/created-dirs.json`: an uninstall that leaves
/// the root empty removes those and nothing that was there before.
/// `fix` says what to do instead when, as root, a directory on the way is
/// refused (see `trust`).
pub fn make_root(root: &Path, fix: &str) -> Result<()> {
    if root.is_dir() {
        return Ok(());
    }
    let missing = missing_dirs(root);
    self::dir(root, Last::Private, Some(fix))?;
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
        let body = serde_json::to_vec(&list)
            .map_err(|e| Error::new(Code::Internal, format!("created-dirs note: {e}")))?;
        write_atomic(&root.join(CREATED_NOTE), &body, 0o644)?;
    }
    Ok(())
}

/// Undo `make_root` when `root` holds nothing but its note (and the
/// empty directories `subdirs` names): remove them and the directories the
/// note lists, innermost first, each only while it is empty. True when the
/// root is gone.
pub fn tidy_root(root: &Path, subdirs: &[&str]) -> Result<bool> {
    for d in subdirs {
        let _ = fs::remove_dir(root.join(d));
    }
    let Ok(rd) = fs::read_dir(root) else {
        return Ok(true);
    };
    let names: Vec<std::ffi::OsString> = rd.flatten().map(|e| e.file_name()).collect();
    if names.iter().any(|n| n != CREATED_NOTE) {
        return Ok(false);
    }
    let note = root.join(CREATED_NOTE);
    let made: Vec<String> = fs::read(&note)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if !names.is_empty() {
        crate::fault::io("unlink", &note, || fs::remove_file(&note))
            .map_err(|e| Error::io("cannot remove", &note, e))?;
    }
    // The root itself goes when onramp made it; so do the parents it made.
    // Only the root and directories above it: the note is data, and a note
    // naming anything else (planted, or damaged) removes nothing more.
    let mut dirs: Vec<PathBuf> = made
        .iter()
        .map(PathBuf::from)
        .filter(|d| d.is_absolute() && root.starts_with(d) && d.parent().is_some())
        .collect();
    if !dirs.iter().any(|d| d == root) {
        return Ok(false);
    }
    dirs.sort_by_key(|d| d.components().count());
    dirs.reverse();
    for d in dirs {
        if fs::remove_dir(&d).is_err() {
            break;
        }
    }
    Ok(!root.exists())
}

/// `dir` and those of its parents that do not exist, outermost first.
pub fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && std::fs::symlink_metadata(d).is_err())
        .map(Path::to_path_buf)
        .collect();
    v.reverse();
    v
}

/// Every file and symbolic link under `root` (not directories), relative,
/// without following links; at most `limit` (a bound on what an untrusted
/// command can make this hold). Unreadable directories are skipped.
pub fn list_files(root: &Path, limit: usize) -> std::collections::BTreeSet<String> {
    walk_files(root, limit, false)
}

/// Like `list_files`, and every empty directory too, as `DIR/` (what an
/// uninstall leaves is listed whole: an empty `venv/include/python3.11`
/// keeps the prefix there as much as a file does).
pub fn list_left(root: &Path, limit: usize) -> std::collections::BTreeSet<String> {
    walk_files(root, limit, true)
}

fn walk_files(root: &Path, limit: usize, empty_dirs: bool) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let Ok(rd) = fs::read_dir(root.join(&rel)) else {
            continue;
        };
        let mut empty = true;
        for e in rd.flatten() {
            empty = false;
            if out.len() >= limit {
                return out;
            }
            let r = rel.join(e.file_name());
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(r),
                Ok(_) => {
                    out.insert(r.to_string_lossy().into_owned());
                }
                Err(_) => {}
            }
        }
        if empty && empty_dirs && !rel.as_os_str().is_empty() && out.len() < limit {
            out.insert(format!("{}/", rel.to_string_lossy()));
        }
    }
    out
}

/// Like `mkdirs`, for a directory that only receives one file by a fresh
/// temp name and a rename: as root a sticky directory (`/tmp`) is fine.
pub fn mkdirs_for_file(dir: &Path) -> Result<()> {
    self::dir(dir, Last::Shared, None)
}

/// Remove onramp temp files and staging dirs left in `dir` by a killed run.
pub fn remove_orphans(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for ent in rd.flatten() {
        let name = ent.file_name();
        if name.to_string_lossy().starts_with(TMP_MARK) {
            let p = ent.path();
            if p.is_dir() && !p.is_symlink() {
                let _ = crate::fault::io("unlink", &p, || fs::remove_dir_all(&p));
            } else {
                let _ = crate::fault::io("unlink", &p, || fs::remove_file(&p));
            }
        }
    }
}

/// `remove_orphans` in `dir` and every directory below it (links are not
/// followed). Only called under the install lock, with no other owner alive.
/// As root, a directory another user could change is not entered.
pub fn remove_orphans_deep(dir: &Path) {
    if is_root()
        && fs::symlink_metadata(dir)
            .is_ok_and(|m| m.is_symlink() || crate::sys::distrust(dir, &m, false).is_some())
    {
        return;
    }
    remove_orphans(dir);
    let Ok(rd) = fs::read_dir(dir) else { return };
    for ent in rd.flatten() {
        if ent.file_type().is_ok_and(|t| t.is_dir()) {
            remove_orphans_deep(&ent.path());
        }
    }
}

/// Bytes available to an unprivileged user on the filesystem of `p`.
pub fn free_bytes(p: &Path) -> Result<u64> {
    crate::sys::free_bytes(p).map_err(|e| Error::io("cannot check free space on", p, e))
}

pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

pub fn sha256_bytes(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Read `r` (the file at `path`, for messages) to its end in 1 MiB
/// blocks, handing each to `each`: bounded memory, and Ctrl-C stops it.
/// What hashes a file, or hashes it while copying it, goes through here.
pub fn read_chunks(
    r: &mut impl std::io::Read,
    path: &Path,
    mut each: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        crate::signal::check()?;
        let n = r
            .read(&mut buf)
            .map_err(|e| Error::io("cannot read", path, e))?;
        if n == 0 {
            return Ok(());
        }
        each(&buf[..n])?;
    }
}

/// sha256 of a file (bounded memory).
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut h = Sha256::new();
    read_chunks(&mut f, path, |b| {
        h.update(b);
        Ok(())
    })?;
    Ok(hex(&h.finalize()))
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 3339 UTC time for a unix timestamp (no leap seconds, as chrono does).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Seconds since the epoch of an RFC 3339 time (`2027-01-31T00:00:00Z`,
/// fractions and `+hh:mm` offsets accepted); None when it is not one.
pub fn parse_rfc3339(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let oh = num_of(&rest[1..3])?;
            let om = num_of(&rest[4..6])?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Howard Hinnant's days_from_civil.
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

fn num_of(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub fn now_rfc3339() -> String {
    rfc3339(now_unix())
}

/// "1.5 GB" style sizes (decimal units, as disk tools and vendors print).
pub fn human_bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// Make `p` absolute against the current directory without touching the disk,
/// folding `.` and `..` lexically.
pub fn absolute(p: &Path) -> Result<PathBuf> {
    let base = if p.is_absolute() {
        PathBuf::new()
    } else {
        std::env::current_dir().map_err(|e| Error::io("cannot read current directory", p, e))?
    };
    let mut out = PathBuf::new();
    for c in base.join(p).components() {
        use std::path::Component::*;
        match c {
            Prefix(x) => out = PathBuf::from(x.as_os_str()),
            RootDir => {
                let mut r = out.into_os_string();
                r.push(std::path::MAIN_SEPARATOR_STR);
                out = r.into();
            }
            CurDir => {}
            ParentDir => {
                out.pop();
            }
            Normal(s) => out.push(s),
        }
    }
    Ok(out)
}

/// An onramp directory: `explicit`, else `$ENV_VAR`, else `$XDG_VAR/onramp`,
/// else `$HOME/HOME_REL`. `what` names it in the error.
pub fn onramp_dir(
    explicit: Option<&Path>,
    env_var: &str,
    xdg_var: &str,
    home_rel: &str,
    what: &str,
) -> Result<PathBuf> {
    if let Some(d) = explicit {
        return absolute(d);
    }
    let var = |k: &str| std::env::var_os(k).filter(|s| !s.is_empty());
    if let Some(d) = var(env_var) {
        return absolute(Path::new(&d));
    }
    if let Some(d) = var(xdg_var) {
        return Ok(PathBuf::from(d).join("onramp"));
    }
    let kind = if env_var.contains("CACHE") {
        "cache"
    } else {
        "state"
    };
    crate::sys::default_home(home_rel, kind).ok_or_else(|| {
        Error::new(
            Code::State,
            format!("cannot place the {what}: set {env_var}, {xdg_var} or HOME"),
        )
    })
}

/// Expand a leading `~/` with the user's home directory.
pub fn expand_home(s: &str) -> PathBuf {
    if let Some(rest) = s.strip_prefix("~/")
        && let Some(h) = crate::sys::home_dir()
    {
        return PathBuf::from(h).join(rest);
    }
    PathBuf::from(s)
}

// Unix only: they make links, chown and chmod.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("onramp-fsutil-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    #[test]
    fn as_root_refuses_what_others_can_change() {
        if !is_root() || !std::env::temp_dir().starts_with("/tmp") {
            return;
        }
        let d = tmp("root");
        // Creates a missing chain, root-owned 0755.
        dir(&d.join("a/b/c"), Last::Private, None).unwrap();
        let m = std::fs::metadata(d.join("a/b/c")).unwrap();
        assert_eq!((m.uid(), m.permissions().mode() & 0o777), (0, 0o755));
        // Group-writable, even sticky, is refused for the directory itself.
        std::fs::create_dir(d.join("gw")).unwrap();
        std::fs::set_permissions(d.join("gw"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let e = dir(&d.join("gw"), Last::Private, None).unwrap_err();
        assert_eq!(e.code, Code::Unsafe);
        assert!(
            e.msg.contains("writable by every user (mode 1777)"),
            "{}",
            e.msg
        );
        // ... but fine above it, and for a single file placed in it.
        dir(&d.join("gw/sub"), Last::Private, None).unwrap();
        dir(&d.join("gw"), Last::Shared, None).unwrap();
        // Owned by someone else: refused, above or at the end.
        std::fs::create_dir(d.join("theirs")).unwrap();
        std::os::unix::fs::chown(d.join("theirs"), Some(65534), Some(65534)).unwrap();
        let e = dir(&d.join("theirs/x"), Last::Private, None).unwrap_err();
        assert!(e.msg.contains("owned by uid 65534"), "{}", e.msg);
        assert!(!d.join("theirs/x").exists());
        // A link root owns is followed (and its target judged); one another
        // user owns is refused.
        symlink(d.join("a"), d.join("ok-link")).unwrap();
        dir(&d.join("ok-link/b"), Last::Private, None).unwrap();
        symlink(d.join("a"), d.join("their-link")).unwrap();
        std::os::unix::fs::lchown(d.join("their-link"), Some(65534), Some(65534)).unwrap();
        let e = dir(&d.join("their-link/b"), Last::Private, None).unwrap_err();
        assert!(
            e.msg.contains("symbolic link owned by uid 65534"),
            "{}",
            e.msg
        );
        symlink(d.join("theirs"), d.join("to-theirs")).unwrap();
        assert!(dir(&d.join("to-theirs"), Last::Private, None).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rfc3339_parses_what_it_prints_and_offsets() {
        for t in [0u64, 951_782_400, 1_772_964_000, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t as i64));
        }
        assert_eq!(
            parse_rfc3339("2026-03-08T11:00:00+01:00"),
            Some(1_772_964_000)
        );
        assert_eq!(
            parse_rfc3339("2026-03-08T10:00:00.250Z"),
            Some(1_772_964_000)
        );
        for bad in [
            "",
            "2026-03-08",
            "2026-13-08T10:00:00Z",
            "2026-03-08T10:00:00",
            "2026-03-08T10:00:00+0100",
            "x026-03-08T10:00:00Z",
            "2026-03-08T10:00:00Zjunk",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_772_964_000), "2026-03-08T10:00:00Z");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let d = std::env::temp_dir().join(format!("onramp-fsutil-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let p = d.join("f.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&d).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn absolute_folds_dots() {
        assert_eq!(
            absolute(Path::new("/a/b/../c/./d")).unwrap(),
            PathBuf::from("/a/c/d")
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(21_300_000_000), "21.3 GB");
    }
}
