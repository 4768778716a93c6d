//! The parallel ranged transfer of one artifact into a preallocated `.part`.
//!
//! N workers fetch byte ranges with `Range` + `If-Range` and write them at
//! their offsets. A worker that runs out of work steals the back half of
//! the largest range still in flight; when nothing is worth splitting, it
//! duplicates the slowest tail (end-game) so a download never crawls at
//! 99 %. A connection much slower than the median is dropped and its range
//! handed out again. About once a second the file is synced and then the
//! sidecar records the completed ranges, so a SIGKILL loses at most about a
//! second of transfer per connection. sha256 follows the contiguous
//! completed prefix, so the digest is ready when the last byte lands.
//!
//! Workers are detached threads: once every byte is here the transfer ends
//! at once, even while a stalled connection still sits in a read (up to
//! the read timeout). Writes pass a gate that closes at the end, so nothing
//! is written into the file after it is complete.

use super::http::{Client, Fail, content_range, header, retry_after};
use super::sidecar::{Ranges, Sidecar, VERSION};
use crate::error::{Code, Error, Result};
use crate::events::Progress;
use crate::fsutil;
use crate::manifest::Want;
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Pieces smaller than this are not split further (end-game duplicates instead).
const MIN_SPLIT: u64 = 512 * 1024;
const BUF: usize = 256 * 1024;
const MIN_PIECE: u64 = 256 * 1024;
const MAX_PIECE: u64 = 16 * 1024 * 1024;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// How a transfer ended when it did not produce the file.
pub enum Stop {
    /// The server ignores Range or the file changed: start over on one stream.
    Restart(String),
    Failed(Error),
}

struct Seg {
    start: u64,
    pos: u64,
    end: u64,
    workers: u32,
}

struct Sched {
    /// Missing bytes not yet handed to any worker, lowest first.
    gaps: Vec<(u64, u64)>,
    /// Pieces being fetched (or released after an error, workers == 0).
    segs: Vec<Seg>,
    done: Ranges,
    allowed: usize,
    active: usize,
    failures: u32,
    budget: u32,
    stop: Option<Stop>,
    validator: Option<String>,
    /// The resolved URL (after redirects), re-resolved on 401/403/400.
    resolved: Option<String>,
    /// worker id -> (bytes in window, window start)
    rate: Vec<(u64, Instant)>,
    /// When the last missing byte arrived.
    last_byte: Option<Instant>,
}

struct Shared {
    sched: Mutex<Sched>,
    file: File,
    size: u64,
    url: String,
    client: Client,
    kill: Vec<AtomicBool>,
    live: AtomicUsize,
    halt: AtomicBool,
    /// Held (shared) around each write into `file`; taken exclusively with
    /// `halt` set when the transfer ends, after which no worker writes.
    gate: RwLock<()>,
}

fn lock<'b>(m: &'b Mutex<Sched>) -> std::sync::MutexGuard<'b, Sched> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The next piece to hand out: from the lowest gap, sized so that about
/// four pieces per connection remain, between 256 KiB and 16 MiB. Pieces
/// shrink towards the end, so the bytes in flight beyond the hashed prefix
/// stay few and the digest is ready almost as the last byte lands.
fn carve(s: &mut Sched) -> Option<(u64, u64)> {
    let left: u64 = s.gaps.iter().map(|g| g.1 - g.0).sum();
    let (a, b) = *s.gaps.first()?;
    let piece = (left / (s.allowed as u64 * 4)).clamp(MIN_PIECE, MAX_PIECE) & !0xffff;
    let mut end = (a + piece.max(MIN_PIECE)).min(b);
    if b - end < MIN_PIECE / 2 {
        end = b;
    }
    if end == b {
        s.gaps.remove(0);
    } else {
        s.gaps[0].0 = end;
    }
    Some((a, end))
}

/// Fetch the missing ranges; returns the sha256 and when the last byte landed.
pub fn run(
    client: &Client,
    want: &Want,
    url: &str,
    part: &Path,
    side: &Path,
    opts: &super::Options,
    rep: &Progress,
) -> std::result::Result<(String, Instant), Stop> {
    let size = want.size;
    let mut prev = Sidecar::load(side, url, size, &want.sha256);
    let file = super::open_part(part, prev.is_none()).map_err(Stop::Failed)?;
    // The saved hash state is trusted only once the bytes it covers are
    // read back and hash to it: a `.part` changed while onramp was not
    // running is started over, never published.
    let mut restored = None;
    if let Some(s) = &prev {
        match restore_hash(s, &file, part).map_err(Stop::Failed)? {
            Some(r) => restored = Some(r),
            None => {
                rep.warn(&format!(
                    "{}: the partial download changed on disk since it was saved; starting it over",
                    want.label
                ));
                file.set_len(0)
                    .map_err(|e| Stop::Failed(Error::io("cannot truncate", part, e)))?;
                prev = None;
            }
        }
    }
    preallocate(&file, size, part).map_err(Stop::Failed)?;
    let (done, validator, mut hasher, mut hashed) = match (&prev, restored) {
        (Some(s), Some((h, at))) => (s.ranges.clone(), s.validator.clone(), h, at),
        _ => (Ranges::default(), None, Sha256::new(), 0),
    };
    if prev.is_some() && done.total() > 0 {
        rep.info(&format!(
            "{}: resuming, {} of {} already here",
            want.label,
            fsutil::human_bytes(done.total()),
            fsutil::human_bytes(size)
        ));
    }
    let missing = done.missing(size);
    let mut flushed = done.prefix();
    let n = if size < 2 * MIN_SPLIT {
        1
    } else {
        opts.connections.max(1)
    };
    let shared = Shared {
        sched: Mutex::new(Sched {
            gaps: missing,
            segs: Vec::new(),
            done,
            allowed: n,
            active: 0,
            failures: 0,
            budget: 10 + 4 * n as u32,
            stop: None,
            validator,
            resolved: None,
            rate: (0..n).map(|_| (0, Instant::now())).collect(),
            last_byte: None,
        }),
        file,
        size,
        url: url.to_string(),
        client: client.clone(),
        kill: (0..n).map(|_| AtomicBool::new(false)).collect(),
        live: AtomicUsize::new(n),
        halt: AtomicBool::new(false),
        gate: RwLock::new(()),
    };
    let shared = Arc::new(shared);
    let mut reported = prev.as_ref().map(|s| s.ranges.total()).unwrap_or(0);
    rep.add_bytes(reported as i64);
    rep.start_rate();
    let result = {
        for id in 0..n {
            let sh = Arc::clone(&shared);
            let budget = opts.budget.clone();
            std::thread::spawn(move || {
                worker(&sh, id, budget.as_deref());
                sh.live.fetch_sub(1, Ordering::SeqCst);
            });
        }
        let mut last_ckpt = Instant::now();
        let mut last_slow = Instant::now();
        loop {
            let mut finished = shared.live.load(Ordering::SeqCst) == 0;
            let complete = {
                let s = lock(&shared.sched);
                s.stop.is_none() && s.done.total() == size
            };
            if complete && !finished {
                // Every byte is here: connections still reading (a stalled
                // one, a duplicate tail) are left to end on their own.
                shared.halt.store(true, Ordering::SeqCst);
                drop(shared.gate.write().unwrap_or_else(|p| p.into_inner()));
                finished = true;
            }
            if crate::signal::interrupted() {
                halt(&shared, Stop::Failed(Error::interrupted()));
            }
            let (got, frontier) = {
                let s = lock(&shared.sched);
                (s.done.total(), s.done.prefix())
            };
            // Hash what became contiguous, from the page cache.
            if let Err(e) = hash_up_to(&shared.file, &mut hasher, &mut hashed, frontier, part) {
                halt(&shared, Stop::Failed(e));
            }
            // Start writing the finished prefix to disk now, so the final
            // fsync has little left to do.
            if frontier > flushed + 8 * MIN_PIECE || (frontier == size && frontier > flushed) {
                start_writeback(&shared.file, flushed, frontier - flushed);
                flushed = frontier;
            }
            rep.add_bytes(got as i64 - reported as i64);
            reported = got;
            rep.transfer(&want.label, got, size);
            if finished || last_ckpt.elapsed() >= CHECKPOINT_EVERY {
                checkpoint(&shared, side, want, &hasher, hashed, part);
                last_ckpt = Instant::now();
            }
            if last_slow.elapsed() >= Duration::from_secs(2) {
                drop_slow(&shared);
                last_slow = Instant::now();
            }
            if finished {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Stopped for a failure: no worker writes after this either.
        shared.halt.store(true, Ordering::SeqCst);
        drop(shared.gate.write().unwrap_or_else(|p| p.into_inner()));
        let mut s = lock(&shared.sched);
        match s.stop.take() {
            Some(stop) => Err(stop),
            None if s.done.total() == size => Ok(s.last_byte.unwrap_or_else(Instant::now)),
            None => Err(Stop::Failed(Error::new(
                Code::Network,
                format!(
                    "{}: transfer ended with {} of {size} bytes",
                    want.label,
                    s.done.total()
                ),
            ))),
        }
    };
    let last_byte = result?;
    hash_up_to(&shared.file, &mut hasher, &mut hashed, size, part).map_err(Stop::Failed)?;
    crate::fault::io("fsync", part, || shared.file.sync_all())
        .map_err(|e| Stop::Failed(Error::io("cannot sync", part, e)))?;
    Ok((fsutil::hex(&hasher.finalize()), last_byte))
}

/// Ask the kernel to begin writeback of a range; a hint only.
fn start_writeback(f: &File, off: u64, len: u64) {
    crate::sys::start_writeback(f, off, len);
}

fn halt(sh: &Shared, stop: Stop) {
    let mut s = lock(&sh.sched);
    if s.stop.is_none() {
        s.stop = Some(stop);
    }
    sh.halt.store(true, Ordering::SeqCst);
}

fn preallocate(f: &File, size: u64, part: &Path) -> Result<()> {
    if f.metadata().map(|m| m.len()).unwrap_or(0) >= size {
        return Ok(());
    }
    match crate::sys::preallocate(f, size) {
        Ok(()) => Ok(()),
        Err(e) if crate::sys::is_disk_error(&e) => {
            let dir = part.parent().unwrap_or(Path::new("/"));
            let free = super::free_bytes(dir).unwrap_or(0);
            Err(Error::new(
                Code::Disk,
                format!(
                    "disk full: {} needs {} on the filesystem of {}, {} free; free some space and run again (nothing downloaded so far is lost)",
                    part.display(),
                    fsutil::human_bytes(size),
                    dir.display(),
                    fsutil::human_bytes(free)
                ),
            ))
        }
        // Filesystems without preallocation: extend sparsely.
        Err(_) => f
            .set_len(size)
            .map_err(|e| Error::io("cannot size", part, e)),
    }
}

/// The hash over the first `s.hashed` bytes of the `.part`, read back from
/// disk: `Some` when it equals the state the sidecar saved (or the sidecar
/// saved none usable: then from byte 0), `None` when the bytes changed.
fn restore_hash(s: &Sidecar, f: &File, part: &Path) -> Result<Option<(Sha256, u64)>> {
    let usable = s.hashed <= s.ranges.prefix() && s.hashed <= s.size;
    let Some(saved) = s.hash_state.as_deref().filter(|_| usable) else {
        return Ok(Some((Sha256::new(), 0)));
    };
    if f.metadata().map(|m| m.len()).unwrap_or(0) < s.hashed {
        return Ok(None);
    }
    let mut h = Sha256::new();
    let mut at = 0;
    while at < s.hashed {
        crate::signal::check()?;
        let to = s.hashed.min(at + (64 << 20));
        if hash_up_to(f, &mut h, &mut at, to, part).is_err() {
            return Ok(None);
        }
    }
    if fsutil::hex(h.serialize().as_slice()) == saved {
        Ok(Some((h, at)))
    } else {
        Ok(None)
    }
}

fn hash_up_to(f: &File, h: &mut Sha256, hashed: &mut u64, to: u64, part: &Path) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    while *hashed < to {
        let n = ((to - *hashed) as usize).min(buf.len());
        crate::sys::read_exact_at(f, &mut buf[..n], *hashed)
            .map_err(|e| Error::io("cannot read back", part, e))?;
        h.update(&buf[..n]);
        *hashed += n as u64;
    }
    Ok(())
}

/// Sync the data, then record what it holds.
fn checkpoint(sh: &Shared, side: &Path, want: &Want, h: &Sha256, hashed: u64, part: &Path) {
    let (ranges, validator) = {
        let s = lock(&sh.sched);
        (s.done.clone(), s.validator.clone())
    };
    if crate::fault::io("fsync", part, || sh.file.sync_data()).is_err() {
        return;
    }
    let mut sc = Sidecar {
        version: VERSION,
        url: sh.url.to_string(),
        size: sh.size,
        sha256: want.sha256.clone(),
        validator,
        ranges,
        hashed,
        hash_state: Some(fsutil::hex(h.serialize().as_slice())),
        check: String::new(),
    };
    if let Err(e) = sc.save(side) {
        crate::say!(
            "onramp: warning: cannot save download progress for {}: {}",
            part.display(),
            e.msg
        );
    }
}

/// Drop a connection far slower than the median; its range goes back.
fn drop_slow(sh: &Shared) {
    let mut s = lock(&sh.sched);
    let now = Instant::now();
    let rates: Vec<(usize, f64)> = s
        .rate
        .iter()
        .enumerate()
        .map(|(i, (b, t))| {
            (
                i,
                *b as f64 / now.duration_since(*t).as_secs_f64().max(0.001),
            )
        })
        .collect();
    for r in s.rate.iter_mut() {
        *r = (0, now);
    }
    if s.active < 3 {
        return;
    }
    let mut v: Vec<f64> = rates.iter().map(|r| r.1).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let median = v[v.len() / 2];
    if median <= 0.0 {
        return;
    }
    if let Some((slowest, r)) = rates.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1))
        && r < median / 5.0
    {
        sh.kill[slowest].store(true, Ordering::SeqCst);
    }
}

/// Claim work: a free segment, half of the largest, or a duplicate tail.
fn claim(sh: &Shared) -> Option<(u64, u64)> {
    let mut s = lock(&sh.sched);
    if let Some(seg) = s
        .segs
        .iter_mut()
        .filter(|g| g.workers == 0 && g.pos < g.end)
        .min_by_key(|g| g.start)
    {
        seg.workers = 1;
        return Some((seg.start, seg.pos));
    }
    if let Some((a, b)) = carve(&mut s) {
        s.segs.push(Seg {
            start: a,
            pos: a,
            end: b,
            workers: 1,
        });
        return Some((a, a));
    }
    let big = s
        .segs
        .iter()
        .enumerate()
        .filter(|(_, g)| g.workers == 1)
        .max_by_key(|(_, g)| g.end - g.pos)
        .map(|(i, _)| i)?;
    let rem = s.segs[big].end - s.segs[big].pos;
    if rem >= 2 * MIN_SPLIT {
        let mid = (s.segs[big].pos + rem / 2) & !0xffff;
        let end = s.segs[big].end;
        s.segs[big].end = mid;
        s.segs.push(Seg {
            start: mid,
            pos: mid,
            end,
            workers: 1,
        });
        return Some((mid, mid));
    }
    if rem > 0 {
        // End-game: fetch the same tail; whoever lands first wins.
        s.segs[big].workers = 2;
        return Some((s.segs[big].start, s.segs[big].pos));
    }
    None
}

fn release(sh: &Shared, start: u64) {
    let mut s = lock(&sh.sched);
    if let Some(g) = s.segs.iter_mut().find(|g| g.start == start) {
        g.workers = g.workers.saturating_sub(1);
    }
}

fn worker(sh: &Shared, id: usize, budget: Option<&super::budget::Budget>) {
    {
        let mut s = lock(&sh.sched);
        s.active += 1;
    }
    let mut backoff = 0u32;
    while !sh.halt.load(Ordering::SeqCst) {
        {
            let s = lock(&sh.sched);
            if s.active > s.allowed {
                break;
            }
            if s.segs.is_empty() && s.gaps.is_empty() {
                break;
            }
        }
        // With a shared budget, a connection is taken per piece; smaller
        // artifacts are served first.
        let token = match budget {
            Some(b) => match b.acquire(sh.size, || sh.halt.load(Ordering::SeqCst)) {
                Some(t) => Some(t),
                None => break,
            },
            None => None,
        };
        let Some((start, pos)) = claim(sh) else { break };
        sh.kill[id].store(false, Ordering::SeqCst);
        let fetched = fetch(sh, id, start, pos);
        drop(token);
        match fetched {
            Ok(()) => backoff = 0,
            Err(Fail::Fatal(e)) => {
                release(sh, start);
                halt(sh, Stop::Failed(e));
            }
            Err(Fail::Retry(why, wait)) => {
                release(sh, start);
                let exhausted = {
                    let mut s = lock(&sh.sched);
                    s.failures += 1;
                    s.failures > s.budget
                };
                if exhausted {
                    halt(
                        sh,
                        Stop::Failed(Error::new(
                            Code::Network,
                            format!("{}: giving up after repeated failures; last: {why}", sh.url),
                        )),
                    );
                    break;
                }
                backoff += 1;
                let base = wait.unwrap_or_else(|| Duration::from_millis(250 << backoff.min(6)));
                // Jitter: up to +50 %, from the clock's low bits (no rand crate).
                let jitter = Instant::now().elapsed().subsec_nanos() as u64
                    % (base.as_millis() as u64 / 2 + 1);
                let until = Instant::now() + base + Duration::from_millis(jitter);
                while Instant::now() < until && !sh.halt.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
    let mut s = lock(&sh.sched);
    s.active -= 1;
}

/// Fetch from `pos` to the (possibly shrinking) end of segment `start`.
fn fetch(sh: &Shared, id: usize, start: u64, mut pos: u64) -> std::result::Result<(), Fail> {
    let (end, validator, target) = {
        let s = lock(&sh.sched);
        let Some(g) = s.segs.iter().find(|g| g.start == start) else {
            return Ok(());
        };
        (
            g.end,
            s.validator.clone(),
            s.resolved.clone().unwrap_or_else(|| sh.url.to_string()),
        )
    };
    // A closed range: a server never pushes more than this piece; if the
    // piece is stolen from, the connection is dropped early instead.
    let mut headers = vec![("Range", format!("bytes={pos}-{}", end - 1))];
    if let Some(v) = &validator {
        headers.push(("If-Range", v.clone()));
    }
    let (resp, final_url) = sh.client.get(&target, &headers)?;
    let status = resp.status().as_u16();
    let label = sh.url.as_str();
    if let Some(enc) =
        header(&resp, "content-encoding").filter(|e| !e.eq_ignore_ascii_case("identity"))
    {
        return Err(Fail::Fatal(Error::new(
            Code::Network,
            format!(
                "{label}: the server sent Content-Encoding {enc:?}; artifacts must be served as-is"
            ),
        )));
    }
    match status {
        206 => {}
        200 => {
            halt(
                sh,
                Stop::Restart(format!(
                    "{label}: the server ignored the range request or the file changed; starting over on one connection"
                )),
            );
            return Ok(());
        }
        416 => {
            halt(
                sh,
                Stop::Restart(format!(
                    "{label}: the server refused a range within the file (HTTP 416); the file may have changed; starting over"
                )),
            );
            return Ok(());
        }
        400 | 401 | 403 if final_url != sh.url => {
            // An expired signed URL: resolve again from the original next time.
            lock(&sh.sched).resolved = None;
            return Err(Fail::Retry(
                format!(
                    "{}: HTTP {status} (expired link?); resolving {label} again",
                    super::http::shown(&final_url)
                ),
                Some(Duration::from_millis(10)),
            ));
        }
        429 | 503 => {
            let mut s = lock(&sh.sched);
            if s.allowed > 1 {
                s.allowed -= 1;
            }
            drop(s);
            return Err(Fail::Retry(
                format!("{label}: HTTP {status}, slowing down"),
                retry_after(&resp),
            ));
        }
        500..=599 => {
            return Err(Fail::Retry(
                format!("{label}: HTTP {status}"),
                retry_after(&resp),
            ));
        }
        404 | 410 => {
            return Err(Fail::Fatal(Error::new(
                Code::Network,
                format!("{label}: HTTP {status}: it does not exist"),
            )));
        }
        _ => {
            return Err(Fail::Fatal(Error::new(
                Code::Network,
                format!("{label}: HTTP {status}"),
            )));
        }
    }
    let cr = header(&resp, "content-range").unwrap_or_default();
    match content_range(&cr) {
        Some((a, b, Some(t))) if a == pos && t == sh.size && b + 1 == end => {}
        _ => {
            return Err(Fail::Retry(
                format!("{label}: bad Content-Range {cr:?} for bytes={pos}-"),
                None,
            ));
        }
    }
    let v = header(&resp, "etag").or_else(|| header(&resp, "last-modified"));
    {
        let mut s = lock(&sh.sched);
        match (s.validator.clone(), &v) {
            (Some(old), Some(new)) if &old != new => {
                drop(s);
                halt(
                    sh,
                    Stop::Restart(format!(
                        "{label}: the file changed on the server (validator {old} -> {new}); starting over"
                    )),
                );
                return Ok(());
            }
            (None, Some(_)) => s.validator = v.clone(),
            _ => {}
        }
        if final_url != sh.url {
            s.resolved = Some(final_url.clone());
        }
    }
    let mut body = resp.into_body();
    let mut r = body.as_reader();
    let mut buf = vec![0u8; BUF];
    let mut lim = end;
    loop {
        if sh.halt.load(Ordering::SeqCst) || sh.kill[id].load(Ordering::SeqCst) {
            release(sh, start);
            return Ok(());
        }
        let n = match r.read(&mut buf) {
            Ok(0) => {
                return Err(Fail::Retry(
                    format!("{label}: connection closed at byte {pos} (expected up to {lim})"),
                    None,
                ));
            }
            Ok(n) => n,
            Err(e) => {
                return Err(Fail::Retry(
                    format!("{label}: transfer broke at byte {pos}: {e}"),
                    None,
                ));
            }
        };
        {
            let s = lock(&sh.sched);
            match s.segs.iter().find(|g| g.start == start) {
                Some(g) => lim = g.end,
                None => return Ok(()), // a duplicate finished it
            }
        }
        let take = (n as u64).min(lim.saturating_sub(pos)) as usize;
        let gate = sh.gate.read().unwrap_or_else(|p| p.into_inner());
        if sh.halt.load(Ordering::SeqCst) {
            return Ok(());
        }
        if take > 0
            && let Err(e) = crate::fault::io("write", Path::new(label), || {
                crate::sys::write_all_at(&sh.file, &buf[..take], pos)
            })
        {
            let e = Error::io("cannot write the download of", Path::new(label), e);
            return Err(Fail::Fatal(Error::new(
                e.code,
                format!("{}; what was saved is kept for the next run", e.msg),
            )));
        }
        drop(gate);
        let mut s = lock(&sh.sched);
        s.done.insert(pos, pos + take as u64);
        if s.last_byte.is_none() && s.done.total() == sh.size {
            s.last_byte = Some(Instant::now());
        }
        s.rate[id].0 += take as u64;
        pos += take as u64;
        let Some(i) = s.segs.iter().position(|g| g.start == start) else {
            return Ok(());
        };
        if s.segs[i].pos < pos {
            s.segs[i].pos = pos;
        }
        if pos >= s.segs[i].end {
            s.segs.remove(i);
            drop(s);
            if pos == end {
                // The whole requested body was read: let the connection go
                // back to the pool for the next piece.
                let _ = r.read(&mut buf);
            }
            return Ok(());
        }
    }
}
