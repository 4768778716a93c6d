//! Fetching artifacts into the content-addressed cache, verified.
//!
//! Layout under the cache root (`$ONRAMP_CACHE_DIR` or
//! `$XDG_CACHE_HOME/onramp`): `sha256/<hex>` holds verified files only (the
//! name is the hash; they arrive by atomic rename after the size and sha256
//! matched); `partial/<hex>.part` holds an unfinished transfer and
//! `partial/<hex>.json` the URL and validator it came from. A transfer resumes
//! with `Range` + `If-Range`; a 200 to a ranged request restarts from zero.
//! Local files (`path` artifacts, `--from` caches) go through the same checks.
//!
//! A verified file is trusted only while it is provably unchanged: when its
//! bytes match its name, `seals/<hex>` records its device, inode, size,
//! mtime and ctime (no one but root can set a ctime back); on every use a
//! file whose stat differs from its seal is hashed again, and one that no
//! longer matches is removed and fetched again. Placing it in a prefix
//! (reflink, hard link or a copy hashed as it is written) never puts
//! unverified bytes in place.

pub mod budget;
pub mod engine;
pub mod http;
pub mod hub;
pub mod sidecar;

use crate::error::{Code, Error, Result, err};
use crate::events::Progress;
use crate::fsutil;
use crate::manifest::{Source, Want};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Options {
    pub offline: bool,
    pub from: Option<PathBuf>,
    /// Connections per artifact.
    pub connections: usize,
    /// Base URLs tried in order before an artifact's own URL.
    pub mirrors: Vec<String>,
    pub net: http::Net,
    /// The connection budget shared with other downloads running at once.
    pub budget: Option<std::sync::Arc<budget::Budget>>,
    /// Where else a verified copy may already be: the Hugging Face hub
    /// cache (`models--*/blobs/HEX`) and the manifest's `stores`.
    pub reuse: Vec<Store>,
}

/// A directory other tools keep blobs in, named by their sha256.
#[derive(Debug, Clone)]
pub enum Store {
    /// huggingface_hub's cache: `*--*/blobs/HEX`.
    HubCache(PathBuf),
    /// `HEX`, `sha256/HEX` or `sha256-HEX` (ollama's `models/blobs`).
    Dir(PathBuf),
}

/// Where an install looks before downloading: the Hugging Face hub cache,
/// then the manifest's `stores`.
pub fn reuse_stores(stores: &[String]) -> Vec<Store> {
    hub::hub_cache_dir()
        .map(Store::HubCache)
        .into_iter()
        .chain(stores.iter().map(|s| Store::Dir(fsutil::expand_home(s))))
        .collect()
}

/// Which store holds a file of `want`'s size under its sha256 (not yet
/// verified: taking it hashes it).
pub fn found_in(stores: &[Store], want: &Want) -> Option<String> {
    stores.iter().find_map(|s| {
        s.candidates(&want.sha256)
            .iter()
            .any(|c| fs::symlink_metadata(c).is_ok_and(|m| m.is_file() && m.len() == want.size))
            .then(|| s.describe())
    })
}

impl Store {
    fn describe(&self) -> String {
        match self {
            Store::HubCache(_) => "the Hugging Face cache".to_string(),
            Store::Dir(d) => d.display().to_string(),
        }
    }

    /// Files there that may hold `sha` (unverified).
    fn candidates(&self, sha: &str) -> Vec<PathBuf> {
        match self {
            Store::Dir(d) => vec![
                d.join(sha),
                d.join("sha256").join(sha),
                d.join(format!("sha256-{sha}")),
            ],
            Store::HubCache(root) => {
                let Ok(rd) = fs::read_dir(root) else {
                    return Vec::new();
                };
                rd.flatten()
                    .take(10_000)
                    .filter(|e| e.file_name().to_string_lossy().contains("--"))
                    .map(|e| e.path().join("blobs").join(sha))
                    .collect()
            }
        }
    }
}

/// Default connections per artifact (see README's performance section).
pub const DEFAULT_CONNECTIONS: usize = 8;

impl Default for Options {
    fn default() -> Self {
        Options {
            offline: false,
            from: None,
            connections: DEFAULT_CONNECTIONS,
            mirrors: Vec::new(),
            net: http::Net::default(),
            budget: None,
            reuse: Vec::new(),
        }
    }
}

pub use crate::fsutil::free_bytes;

pub struct Cache {
    pub root: PathBuf,
    /// The sha256 of every entry `ensure` handed out (taken by `take_used`),
    /// so a step can record the cache entries it needs (`cache prune`).
    used: std::sync::Mutex<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
struct PartMeta {
    url: String,
    size: u64,
    etag: Option<String>,
    last_modified: Option<String>,
}

/// The download cache's root; as root, refused (exit 13) when another user
/// could change it or a directory above it (see `trust`).
pub fn cache_root(override_dir: Option<&Path>) -> Result<PathBuf> {
    let root = fsutil::onramp_dir(
        override_dir,
        "ONRAMP_CACHE_DIR",
        "XDG_CACHE_HOME",
        ".cache/onramp",
        "download cache",
    )?;
    crate::trust::check(&root, crate::trust::CACHE_FIX)?;
    Ok(root)
}

/// What a verified cache file looked like when its bytes last matched.
#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct Seal {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Seal {
    fn of(m: &crate::sys::Identity) -> Seal {
        Seal {
            dev: m.dev,
            ino: m.ino,
            size: m.size,
            mtime: m.mtime,
            ctime: m.ctime,
        }
    }
}

/// Open a file to read without following a symbolic link at its name.
pub fn open_nofollow(p: &Path) -> std::io::Result<File> {
    crate::sys::open_no_follow_nonblock(OpenOptions::new().read(true), p)
}

/// sha256 of an open file from its start, with its stat before and after
/// (equal when nothing wrote to it meanwhile).
fn hash_open(
    f: &mut File,
    path: &Path,
) -> Result<(String, crate::sys::Identity, crate::sys::Identity)> {
    let before = crate::sys::identity(f).map_err(|e| Error::io("cannot stat", path, e))?;
    let mut h = Sha256::new();
    fsutil::read_chunks(f, path, |b| {
        h.update(b);
        Ok(())
    })?;
    let after = crate::sys::identity(f).map_err(|e| Error::io("cannot stat", path, e))?;
    Ok((fsutil::hex(&h.finalize()), before, after))
}

impl Cache {
    pub fn new(root: PathBuf) -> Cache {
        Cache {
            root,
            used: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Whether another process holds the download lock of `sha` right now
    /// (`cache prune` leaves such an entry alone).
    pub fn in_use(&self, sha: &str) -> bool {
        let p = self.lock_path(sha);
        let Ok(f) = crate::sys::open_no_follow(OpenOptions::new().read(true).write(true), &p)
        else {
            return false;
        };
        fd_lock::RwLock::new(f).try_write().is_err()
    }

    fn lock_path(&self, sha: &str) -> PathBuf {
        self.root.join("partial").join(format!("{sha}.lock"))
    }

    /// The entries handed out since the last call, each once.
    pub fn take_used(&self) -> Vec<String> {
        let mut v = match self.used.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        };
        v.sort();
        v.dedup();
        v
    }

    fn note_used(&self, sha: &str) {
        if let Ok(mut g) = self.used.lock() {
            g.push(sha.to_string());
        }
    }

    pub fn verified_path(&self, sha: &str) -> PathBuf {
        self.root.join("sha256").join(sha)
    }

    fn seal_path(&self, sha: &str) -> PathBuf {
        self.root.join("seals").join(sha)
    }

    fn write_seal(&self, sha: &str, m: &crate::sys::Identity) {
        let p = self.seal_path(sha);
        let ok = fsutil::mkdirs(&self.root.join("seals")).is_ok()
            && serde_json::to_vec(&Seal::of(m))
                .ok()
                .is_some_and(|b| fsutil::write_atomic(&p, &b, 0o644).is_ok());
        if !ok {
            // Not fatal: the file is hashed again on its next use.
            crate::fsutil::remove(&p);
        }
    }

    /// Forget a cache file whose bytes no longer match its name.
    fn evict(&self, sha: &str, why: &str) {
        crate::say!(
            "onramp: warning: {} {why}; removed from the cache, it is fetched again",
            self.verified_path(sha).display()
        );
        crate::fsutil::remove(self.seal_path(sha));
        crate::fsutil::remove(self.verified_path(sha));
    }

    /// The cached file, if it is there with the right size and its bytes
    /// still match its name: unchanged since sealed, or hashed again now. A
    /// file that no longer matches is removed (and `None` returned).
    pub fn lookup(&self, want: &Want) -> Option<PathBuf> {
        let p = self.verified_path(&want.sha256);
        let m = fs::symlink_metadata(&p).ok()?;
        if !m.is_file() || m.len() != want.size {
            return None;
        }
        let sealed: Option<Seal> = fs::read(self.seal_path(&want.sha256))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(s) = &sealed
            && crate::sys::identity_path(&p, false).is_ok_and(|id| *s == Seal::of(&id))
        {
            return Some(p);
        }
        let mut f = open_nofollow(&p).ok()?;
        match hash_open(&mut f, &p) {
            Ok((sha, before, after))
                if sha == want.sha256 && Seal::of(&before) == Seal::of(&after) =>
            {
                self.write_seal(&want.sha256, &after);
                Some(p)
            }
            Ok((sha, ..)) if sha != want.sha256 => {
                self.evict(&want.sha256, "changed on disk since it was verified");
                None
            }
            _ => None,
        }
    }

    fn part_paths(&self, sha: &str) -> (PathBuf, PathBuf) {
        let d = self.root.join("partial");
        (d.join(format!("{sha}.part")), d.join(format!("{sha}.json")))
    }

    /// Bytes of `want` a resumed download keeps (its sidecar's completed
    /// ranges, from whichever URL), for the resume question.
    pub fn resumable(&self, want: &Want) -> u64 {
        let side = self.part_paths(&want.sha256).1;
        std::fs::read(side)
            .ok()
            .and_then(|b| serde_json::from_slice::<sidecar::Sidecar>(&b).ok())
            .filter(|s| s.size == want.size && s.sha256 == want.sha256)
            .map(|s| s.ranges.total().min(want.size))
            .unwrap_or(0)
    }

    /// Bytes already on disk for `want` (for the disk check).
    pub fn partial_len(&self, want: &Want) -> u64 {
        fs::metadata(self.part_paths(&want.sha256).0)
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Make sure the verified file is in the cache; return its path.
    pub fn ensure(&self, want: &Want, opts: &Options, rep: &Progress) -> Result<PathBuf> {
        self.note_used(&want.sha256);
        if let Some(p) = self.lookup(want) {
            return Ok(p);
        }
        fsutil::make_root(&self.root, crate::trust::CACHE_FIX)?;
        fsutil::mkdirs(&self.root.join("sha256"))?;
        fsutil::mkdirs(&self.root.join("partial"))?;
        // One writer per artifact, across processes: another installer using
        // the same cache is waited for, then its verified file is used.
        let lock_path = self.lock_path(&want.sha256);
        let lock_file = crate::fault::io("create", &lock_path, || {
            crate::fsutil::open_lock(&lock_path)
        })
        .map_err(|e| Error::io("cannot open", &lock_path, e))?;
        let mut lock = fd_lock::RwLock::new(lock_file);
        let mut said = false;
        loop {
            crate::signal::check()?;
            if lock.try_write().is_ok() {
                break;
            }
            if !said {
                rep.info(&format!(
                    "{}: another onramp is downloading it into the same cache; waiting",
                    want.label
                ));
                said = true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _guard = lock
            .write()
            .map_err(|e| Error::io("cannot lock", &lock_path, e))?;
        if let Some(p) = self.lookup(want) {
            return Ok(p);
        }
        if let Some(from) = &opts.from {
            for cand in [
                from.join("sha256").join(&want.sha256),
                from.join(&want.sha256),
            ] {
                if cand.is_file() {
                    rep.info(&format!(
                        "{}: using pre-seeded copy {}",
                        want.label,
                        cand.display()
                    ));
                    return self.import_local(want, &cand, rep);
                }
            }
        }
        if let Some(p) = self.reuse(want, opts, rep)? {
            return Ok(p);
        }
        if let Source::Path(p) = &want.source {
            return self.import_local(want, p, rep);
        }
        if opts.offline {
            return err(
                Code::Network,
                format!(
                    "{}: not in the cache and --offline is set (needs {}); pre-seed it with --from DIR holding it as DIR/sha256/{} ({} bytes)",
                    want.label,
                    want.source.describe(),
                    want.sha256,
                    want.size
                ),
            );
        }
        let mut last = None;
        let mut try_one = |url: &str, mirror: bool, auth: Option<http::Auth>| {
            let mut o = opts.clone();
            o.net.auth = auth;
            match self.fetch_verified(want, url, mirror, &o, rep) {
                Ok(p) => Some(Ok(p)),
                Err(e) if e.code == Code::Network => {
                    if mirror {
                        rep.warn(&format!("mirror failed: {}; trying the next source", e.msg));
                    }
                    last = Some(e);
                    None
                }
                Err(e) => Some(Err(e)),
            }
        };
        match &want.source {
            Source::Url(u) => {
                for (url, mirror) in sources(u, &opts.mirrors) {
                    if let Some(r) = try_one(&url, mirror, None) {
                        return r;
                    }
                }
            }
            _ => {
                for c in hub::candidates(want, &opts.mirrors)? {
                    let (url, auth) = match hub::prepare(&c, want, &opts.net) {
                        Ok(x) => x,
                        Err(e)
                            if c.mirror() && !matches!(e.code, Code::Interrupted | Code::Disk) =>
                        {
                            rep.warn(&format!("mirror failed: {}; trying the next source", e.msg));
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    if let Some(r) = try_one(&url, c.mirror(), auth) {
                        return r;
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::new(
                Code::Network,
                format!("{}: no source to fetch from", want.label),
            )
        }))
    }

    /// A verified copy already on this machine (the hub cache, a store),
    /// taken into the cache: a hard link when it is onramp's user's own
    /// file that no one else can write, else a copy hashed as it is made.
    fn reuse(&self, want: &Want, opts: &Options, rep: &Progress) -> Result<Option<PathBuf>> {
        for store in &opts.reuse {
            for cand in store.candidates(&want.sha256) {
                let Ok(m) = fs::symlink_metadata(&cand) else {
                    continue;
                };
                if !m.is_file() || m.len() != want.size {
                    continue;
                }
                let reuse_part = self.part_paths(&want.sha256).0.with_extension("reuse");
                let got = match self.adopt(want, &cand).and_then(|p| match p {
                    Some(p) => Ok(p),
                    None => self.import_via(want, &cand, rep, &reuse_part),
                }) {
                    Ok(p) => Some(p),
                    // Another tool's file is a candidate only: one that is
                    // wrong, unreadable or gone is passed over, never fatal.
                    Err(e) if matches!(e.code, Code::Interrupted | Code::Disk) => return Err(e),
                    Err(e) => {
                        let why = match e.code {
                            Code::Integrity => "is not what its name says".to_string(),
                            _ => format!("cannot be read ({})", e.msg),
                        };
                        rep.warn(&format!(
                            "{}: {} {why}; not used",
                            want.label,
                            cand.display()
                        ));
                        None
                    }
                };
                if let Some(p) = got {
                    rep.info(&format!(
                        "{}: found in {} (verified), nothing to download",
                        want.label,
                        store.describe()
                    ));
                    return Ok(Some(p));
                }
            }
        }
        Ok(None)
    }

    /// Hard-link `src` into the cache when it is ours alone and its bytes
    /// match (the inode linked is the one hashed); `None` to copy instead.
    fn adopt(&self, want: &Want, src: &Path) -> Result<Option<PathBuf>> {
        let Ok(mut f) = open_nofollow(src) else {
            return Ok(None);
        };
        let Ok(meta) = f.metadata() else {
            return Ok(None);
        };
        if !meta.is_file()
            || crate::sys::owner_of(&meta) != crate::sys::my_uid()
            || crate::sys::mode_of(&meta) & 0o022 != 0
        {
            return Ok(None);
        }
        let (sha, before, after) = hash_open(&mut f, src)?;
        if sha != want.sha256 || Seal::of(&before) != Seal::of(&after) {
            return Ok(None);
        }
        let (part, _) = self.part_paths(&want.sha256);
        let tmp = part.with_extension("link");
        crate::fsutil::remove(&tmp);
        if fs::hard_link(src, &tmp).is_err() {
            return Ok(None);
        }
        let same = crate::sys::identity_path(&tmp, false)
            .is_ok_and(|id| id.ino == before.ino && id.dev == before.dev);
        if !same {
            crate::fsutil::remove(&tmp);
            return Ok(None);
        }
        let dest = self.verified_path(&want.sha256);
        fs::rename(&tmp, &dest).map_err(|e| Error::io("cannot move into the cache", &dest, e))?;
        fsutil::sync_dir(&self.root.join("sha256"))?;
        if let Ok(m) = crate::sys::identity(&f) {
            self.write_seal(&want.sha256, &m);
        }
        Ok(Some(dest))
    }

    /// One source: fetch, and on a hash mismatch discard and fetch once more.
    fn fetch_verified(
        &self,
        want: &Want,
        url: &str,
        mirror: bool,
        opts: &Options,
        rep: &Progress,
    ) -> Result<PathBuf> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.fetch_http(want, url, mirror, opts, rep) {
                Err(e) if e.code == Code::Integrity && tries == 1 => {
                    rep.warn(&format!("{}; fetching it again once", e.msg));
                }
                r => return r,
            }
        }
    }

    /// Copy a local file through the same verification into the cache.
    fn import_local(&self, want: &Want, src: &Path, rep: &Progress) -> Result<PathBuf> {
        self.import_via(want, src, rep, &self.part_paths(&want.sha256).0)
    }

    /// `import_local` through `part`: another tool's file is copied into a
    /// file of its own, so a download's resumable `.part` is never lost to
    /// a candidate that turns out wrong.
    fn import_via(&self, want: &Want, src: &Path, rep: &Progress, part: &Path) -> Result<PathBuf> {
        let mut f = open_nofollow(src)
            .map_err(|e| Error::io(&format!("{}: cannot open", want.label), src, e))?;
        let meta = f.metadata().map_err(|e| Error::io("cannot stat", src, e))?;
        if meta.len() != want.size {
            return err(
                Code::Integrity,
                format!(
                    "{}: {} is {} bytes, the manifest says {}",
                    want.label,
                    src.display(),
                    meta.len(),
                    want.size
                ),
            );
        }
        let mut out = open_part(part, true)?;
        let mut h = Sha256::new();
        let mut got = 0u64;
        rep.start_rate();
        fsutil::read_chunks(&mut f, src, |b| {
            got += b.len() as u64;
            // A file that grows while it is read is not the one sized.
            if got > want.size {
                return err(
                    Code::Integrity,
                    format!("{}: {} grew while it was read", want.label, src.display()),
                );
            }
            crate::fault::io("write", part, || out.write_all(b))
                .map_err(|e| Error::io("cannot write", part, e))?;
            h.update(b);
            rep.add_bytes(b.len() as i64);
            rep.transfer(&want.label, got, want.size);
            Ok(())
        })?;
        let r = self.publish(
            want,
            part,
            out,
            fsutil::hex(&h.finalize()),
            &src.display().to_string(),
        );
        if r.is_err() {
            crate::fsutil::remove(part);
        }
        r
    }

    /// Check size and hash, fsync, rename into `sha256/`, fsync the directory.
    fn publish(
        &self,
        want: &Want,
        part: &Path,
        f: File,
        sha: String,
        from: &str,
    ) -> Result<PathBuf> {
        let len = f
            .metadata()
            .map_err(|e| Error::io("cannot stat", part, e))?
            .len();
        if len != want.size || sha != want.sha256 {
            drop(f);
            crate::fsutil::remove(part);
            if part == self.part_paths(&want.sha256).0 {
                crate::fsutil::remove(self.part_paths(&want.sha256).1);
            }
            return err(
                Code::Integrity,
                format!(
                    "{}: {from} does not match the manifest (got {len} bytes, sha256 {sha}; want {} bytes, sha256 {})",
                    want.label, want.size, want.sha256
                ),
            );
        }
        crate::fault::io("chmod", part, || crate::sys::set_file_mode(&f, 0o444))
            .map_err(|e| Error::io("cannot chmod", part, e))?;
        crate::fault::io("fsync", part, || f.sync_all())
            .map_err(|e| Error::io("cannot sync", part, e))?;
        let dest = self.verified_path(&want.sha256);
        crate::fault::io("rename", &dest, || fs::rename(part, &dest))
            .map_err(|e| Error::io("cannot move into the cache", &dest, e))?;
        fsutil::sync_dir(&self.root.join("sha256"))?;
        if let Ok(m) = crate::sys::identity(&f) {
            self.write_seal(&want.sha256, &m);
        }
        drop(f);
        let side = self.part_paths(&want.sha256).1;
        crate::fsutil::remove(side.with_extension("stream.json"));
        crate::fsutil::remove(side);
        Ok(dest)
    }

    fn fetch_http(
        &self,
        want: &Want,
        url: &str,
        mirror: bool,
        opts: &Options,
        rep: &Progress,
    ) -> Result<PathBuf> {
        let mut net = opts.net.clone();
        net.allow_http |= mirror;
        let client = http::Client::new(&net)?;
        let (part, side) = self.part_paths(&want.sha256);
        let stream_meta = side.with_extension("stream.json");
        if !stream_meta.exists() {
            match engine::run(&client, want, url, &part, &side, opts, rep) {
                Ok((sha, last_byte)) => {
                    let f = open_part(&part, false)?;
                    let p = self.publish(want, &part, f, sha, url)?;
                    rep.info(&format!(
                        "{}: verified and published {} ms after the last byte",
                        want.label,
                        last_byte.elapsed().as_millis()
                    ));
                    return Ok(p);
                }
                Err(engine::Stop::Failed(e)) => return Err(e),
                Err(engine::Stop::Restart(why)) => {
                    rep.warn(&why);
                    crate::fsutil::remove(&part);
                    crate::fsutil::remove(&side);
                }
            }
        }
        // One stream from the start: the server does not do ranges for us.
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.fetch_once(&client, want, url, &part, &stream_meta, rep) {
                Ok(p) => return Ok(p),
                Err(Retry::Fatal(e)) => return Err(e),
                Err(Retry::Again(e)) if attempt >= 6 => {
                    return err(
                        Code::Network,
                        format!("{}: giving up after {attempt} attempts: {e}", want.label),
                    );
                }
                Err(Retry::Again(e)) => {
                    let wait = Duration::from_millis(500 * (1 << attempt.min(5)));
                    rep.warn(&format!(
                        "{}: {e}; retrying in {} s (attempt {} of 6)",
                        want.label,
                        wait.as_secs_f32(),
                        attempt + 1
                    ));
                    let until = std::time::Instant::now() + wait;
                    while std::time::Instant::now() < until {
                        crate::signal::check()?;
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        }
    }

    fn fetch_once(
        &self,
        client: &http::Client,
        want: &Want,
        url: &str,
        part: &Path,
        meta_path: &Path,
        rep: &Progress,
    ) -> std::result::Result<PathBuf, Retry> {
        let meta: Option<PartMeta> = fs::read(meta_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let mut have = match (&meta, fs::symlink_metadata(part)) {
            (Some(m), Ok(pm)) if m.url == url && m.size == want.size && pm.len() <= want.size => {
                pm.len()
            }
            _ => 0,
        };
        // Hash what we already have (the sidecar state of the next issue will save this re-read).
        let mut h = Sha256::new();
        if have > 0 {
            let mut f =
                open_nofollow(part).map_err(|e| fatal(Error::io("cannot open", part, e)))?;
            let mut buf = vec![0u8; 1 << 20];
            let mut left = have;
            while left > 0 {
                let n = f
                    .read(&mut buf[..(left.min(1 << 20)) as usize])
                    .map_err(|e| fatal(Error::io("cannot read", part, e)))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                left -= n as u64;
            }
            have -= left;
        }
        if have == want.size {
            let f = open_part(part, false).map_err(fatal)?;
            return self
                .publish(want, part, f, fsutil::hex(&h.finalize()), url)
                .map_err(Retry::Fatal);
        }
        let mut headers = Vec::new();
        if have > 0 {
            headers.push(("Range", format!("bytes={have}-")));
            if let Some(v) = meta
                .as_ref()
                .and_then(|m| m.etag.clone().or(m.last_modified.clone()))
            {
                headers.push(("If-Range", v));
            }
        }
        let (resp, _) = client.get(url, &headers).map_err(|e| match e {
            http::Fail::Fatal(e) => Retry::Fatal(e),
            http::Fail::Retry(m, _) => Retry::Again(m),
        })?;
        let status = resp.status().as_u16();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if let Some(enc) =
            header("content-encoding").filter(|e| !e.eq_ignore_ascii_case("identity"))
        {
            return Err(fatal(Error::new(
                Code::Network,
                format!(
                    "{}: the server sent Content-Encoding {enc:?} for {url}; artifacts must be served as-is",
                    want.label
                ),
            )));
        }
        let start = match status {
            206 if have > 0 => {
                let cr = header("content-range").unwrap_or_default();
                let expect = format!("bytes {have}-{}/{}", want.size - 1, want.size);
                if cr != expect {
                    return Err(Retry::Again(format!(
                        "bad Content-Range {cr:?} from {url} (expected {expect:?})"
                    )));
                }
                have
            }
            200 => {
                if have > 0 {
                    rep.warn(&format!("{}: the server ignored the resume request (Range) or the file changed; starting over", want.label));
                }
                if let Some(len) = header("content-length").and_then(|l| l.parse::<u64>().ok())
                    && len != want.size
                {
                    return Err(fatal(Error::new(
                        Code::Integrity,
                        format!(
                            "{}: {url} is {len} bytes, the manifest says {}",
                            want.label, want.size
                        ),
                    )));
                }
                h = Sha256::new();
                0
            }
            416 => {
                crate::fsutil::remove(part);
                return Err(Retry::Again(format!(
                    "the server refused the resume offset {have} of {url}; restarting"
                )));
            }
            429 | 500..=599 => return Err(Retry::Again(format!("HTTP {status} from {url}"))),
            404 | 410 => {
                return Err(fatal(Error::new(
                    Code::Network,
                    format!("{}: HTTP {status}: {url} does not exist", want.label),
                )));
            }
            _ => {
                return Err(fatal(Error::new(
                    Code::Network,
                    format!("{}: HTTP {status} from {url}", want.label),
                )));
            }
        };
        let m = PartMeta {
            url: url.to_string(),
            size: want.size,
            etag: header("etag"),
            last_modified: header("last-modified"),
        };
        if let Ok(b) = serde_json::to_vec(&m) {
            fsutil::write_atomic(meta_path, &b, 0o644).map_err(fatal)?;
        }
        let mut f = open_part(part, start == 0).map_err(fatal)?;
        crate::fault::io("truncate", part, || f.set_len(start))
            .map_err(|e| fatal(Error::io("cannot truncate", part, e)))?;
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(start))
            .map_err(|e| fatal(Error::io("cannot seek", part, e)))?;
        rep.add_bytes(start as i64);
        let mut got = start;
        let mut body = resp.into_body();
        let mut r = body.as_reader();
        let mut buf = vec![0u8; 256 * 1024];
        rep.start_rate();
        let res: std::result::Result<(), Retry> = loop {
            if crate::signal::interrupted() {
                break Err(fatal(Error::interrupted()));
            }
            let n = match r.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) => {
                    break Err(Retry::Again(format!(
                        "transfer of {url} broke at byte {got}: {e}"
                    )));
                }
            };
            if got + n as u64 > want.size {
                break Err(fatal(Error::new(
                    Code::Integrity,
                    format!(
                        "{}: {url} sent more than the {} bytes the manifest says",
                        want.label, want.size
                    ),
                )));
            }
            if let Err(e) = crate::fault::io("write", part, || f.write_all(&buf[..n])) {
                break Err(fatal(Error::io(
                    &format!("{}: cannot write", want.label),
                    part,
                    e,
                )));
            }
            h.update(&buf[..n]);
            got += n as u64;
            rep.add_bytes(n as i64);
            rep.transfer(&want.label, got, want.size);
        };
        if let Err(e) = res {
            // Keep what we have for the next attempt; it is durable enough to resume.
            let _ = f.sync_data();
            rep.add_bytes(-(got as i64));
            return Err(e);
        }
        if got != want.size {
            rep.add_bytes(-(got as i64));
            return Err(Retry::Again(format!(
                "{url} ended after {got} of {} bytes",
                want.size
            )));
        }
        self.publish(want, part, f, fsutil::hex(&h.finalize()), url)
            .map_err(Retry::Fatal)
    }
}

enum Retry {
    Again(String),
    Fatal(Error),
}

fn fatal(e: Error) -> Retry {
    Retry::Fatal(e)
}

/// The URLs to try for `url`: each mirror (base + file name), then `url`.
/// The flag says whether it is a mirror (configured, so plain http is allowed).
pub fn sources(url: &str, mirrors: &[String]) -> Vec<(String, bool)> {
    let name = url.rsplit('/').next().unwrap_or("");
    let mut v: Vec<(String, bool)> = mirrors
        .iter()
        .map(|m| (format!("{}/{name}", m.trim_end_matches('/')), true))
        .collect();
    v.push((url.to_string(), false));
    v
}

/// Open (creating) a `.part` file to write, never through a symbolic link:
/// a link planted at its name is removed (not followed) and a fresh file
/// made in its place.
pub fn open_part(part: &Path, truncate: bool) -> Result<File> {
    let open = || {
        crate::fault::io("create", part, || {
            crate::sys::open_no_follow(
                crate::sys::create_mode(
                    OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(truncate),
                    0o644,
                ),
                part,
            )
        })
    };
    match open() {
        Err(e) if crate::sys::is_link_refused(&e) => {
            crate::say!(
                "onramp: warning: {} was a symbolic link, not onramp's; removed it",
                part.display()
            );
            fs::remove_file(part).map_err(|e| Error::io("cannot remove", part, e))?;
            open()
        }
        r => r,
    }
    .map_err(|e| Error::io("cannot open", part, e))
}

/// Give `to` the same bytes as `from` without copying them (a reflink, on
/// filesystems that share extents: btrfs, XFS). False where unsupported.
fn reflink(from: &File, to: &File) -> bool {
    crate::sys::reflink(from, to)
}

/// Put a verified cache file at `dest` atomically and never with other
/// bytes than `sha256`: a reflink (its own copy-on-write file) where the
/// filesystem can, else a hard link (the cache's sealed inode), else a copy
/// hashed as it is written. A copy that does not match evicts the cache
/// file (exit 7, run again to fetch it).
pub fn place(cache: &Cache, cached: &Path, dest: &Path, sha256: &str) -> Result<()> {
    if let (Ok(a), Ok(b)) = (
        crate::sys::identity_path(cached, true),
        crate::sys::identity_path(dest, false),
    ) && a.ino == b.ino
        && a.dev == b.dev
    {
        return Ok(());
    }
    let dir = dest.parent().unwrap_or(Path::new("/"));
    fsutil::mkdirs_for_file(dir)?;
    let tmp = fsutil::temp_beside(dest);
    let res = (|| {
        let mut src = open_nofollow(cached).map_err(|e| Error::io("cannot open", cached, e))?;
        let new = || {
            crate::fault::io("create", &tmp, || {
                crate::sys::create_mode(OpenOptions::new().write(true).create_new(true), 0o444)
                    .open(&tmp)
            })
            .map_err(|e| Error::io("cannot create", &tmp, e))
        };
        let out = new()?;
        if reflink(&src, &out) {
            return crate::fault::io("fsync", &tmp, || out.sync_all())
                .map_err(|e| Error::io("cannot sync", &tmp, e));
        }
        drop(out);
        crate::fsutil::remove(&tmp);
        if crate::fault::io("link", &tmp, || fs::hard_link(cached, &tmp)).is_ok() {
            return Ok(());
        }
        let mut out = new()?;
        let mut h = Sha256::new();
        fsutil::read_chunks(&mut src, cached, |b| {
            h.update(b);
            crate::fault::io("write", &tmp, || out.write_all(b))
                .map_err(|e| Error::io("cannot write", &tmp, e))
        })?;
        let got = fsutil::hex(&h.finalize());
        if got != sha256 {
            cache.evict(sha256, "changed on disk since it was verified");
            return err(
                Code::Integrity,
                format!(
                    "{}: the cached copy no longer matches its sha256 (got {got}); nothing was placed, run again to fetch it",
                    dest.display()
                ),
            );
        }
        crate::fault::io("fsync", &tmp, || out.sync_all())
            .map_err(|e| Error::io("cannot sync", &tmp, e))
    })();
    if let Err(e) = res {
        crate::fsutil::remove(&tmp);
        return Err(e);
    }
    if let Err(e) = crate::fault::io("rename", dest, || fs::rename(&tmp, dest)) {
        crate::fsutil::remove(&tmp);
        return Err(Error::io("cannot move into place", dest, e));
    }
    fsutil::sync_dir(dir)
}
