//! `onramp progress-serve`: the live view of one install for apps, on a
//! loopback port. It tails the install's events file (NDJSON or SSE, as the
//! phases write it) and serves `GET /events` (Server-Sent Events: `id` is
//! the event's seq, `event` its type; replay after `Last-Event-ID` with no
//! gap or duplicate; heartbeats; any number of readers), `GET /status` (one
//! JSON snapshot, README's contract and `schema/progress-status.schema.json`)
//! and `GET /` (a self-contained progress page). Every request needs the
//! token and a loopback Host header. It serves while the installer runs,
//! marks the install interrupted when the installer is gone without a final
//! event, and lingers after the end so a poller sees the verdict.
//!
//! What it does not own: the events (`events`), the install itself. The
//! install runs the same whether or not anyone is connected: the server only
//! reads the file.

use crate::error::{Code, Error, Result, err};
use crate::fsutil;
use crate::out;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The reference page, served at `/`.
const PAGE: &str = include_str!("progress_page.html");
/// Connections served at once; more get 503.
const MAX_CLIENTS: usize = 64;
/// A request's line and headers may not exceed this.
const MAX_REQUEST: usize = 16 * 1024;
/// An events line longer than this is not an event (skipped, not buffered).
const MAX_LINE: usize = 1024 * 1024;
/// Silence on an SSE stream is broken by a comment this often, unless
/// --heartbeat says otherwise (a proxy with a shorter idle timeout).
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long the events file must be still, with the installer gone, before
/// the install is declared interrupted.
const QUIET: Duration = Duration::from_secs(2);

/// One event of this install: where its JSON is in the file (40 bytes
/// each, whatever the event holds: a long build's output costs little).
struct Entry {
    seq: u64,
    kind: &'static str,
    off: u64,
    len: u32,
}

/// The event types a stream carries (`events`); anything else is named
/// `message`, so nothing from the file reaches the SSE framing unchecked.
const KINDS: &[&str] = &[
    "started",
    "phase_started",
    "phase_finished",
    "step",
    "progress",
    "capability",
    "output",
    "message",
    "warning",
    "finished",
];

fn kind_of(v: &Value) -> &'static str {
    let t = v["type"].as_str().unwrap_or("");
    KINDS.iter().copied().find(|k| *k == t).unwrap_or("message")
}

/// The SetupProgress fields of an event (but `overall_progress`, which the
/// server keeps as a high-water mark) that /status and a synthesized end
/// carry over from the last event.
const SETUP_FIELDS: [&str; 9] = [
    "current_step",
    "total_steps",
    "step_name",
    "step_progress",
    "bytes_downloaded",
    "bytes_total",
    "estimated_remaining_s",
    "message",
    "new_capability",
];

/// What the server knows, shared by the tailer and the connections.
struct Feed {
    entries: Vec<Entry>,
    status: Fold,
    /// Set once a `finished` event is read: when the server stops.
    linger_until: Option<Instant>,
    /// The file is unreadable or was truncated: serve what we have.
    broken: Option<String>,
    stop: bool,
    /// An `interrupted` finished event read while our installer lives: an
    /// earlier run's, which this run resumes. Neither served nor folded;
    /// the next event supersedes it (see `read_new`).
    held: Option<u64>,
}

impl Feed {
    /// The highest seq read, served or held.
    fn last_seq(&self) -> u64 {
        self.entries
            .last()
            .map(|e| e.seq)
            .unwrap_or(0)
            .max(self.held.unwrap_or(0))
    }
}

/// Where the tailer is in the events file.
struct Reader {
    file: Option<File>,
    pos: u64,
    partial: Vec<u8>,
    grew_at: Instant,
    sse: bool,
}

struct Shared {
    feed: Mutex<Feed>,
    reader: Mutex<Reader>,
    linger: Duration,
    changed: Condvar,
    events: PathBuf,
    /// Started for an installer (--owner): it tells a dead run from ours.
    owned: bool,
    token: String,
    port: u16,
    allow_origin: Option<String>,
    heartbeat: Duration,
    clients: Mutex<usize>,
}

/// The status document, built event by event.
#[derive(Default)]
struct Fold {
    seq: u64,
    last: Option<Value>,
    overall: f64,
    last_event_at: Option<Instant>,
    /// In the order first heard of (the plan's, from `started`).
    components: Vec<Value>,
    capabilities: Vec<Value>,
    outcome: Option<Value>,
    installer_alive: bool,
}

impl Fold {
    fn component(&mut self, id: &str) -> &mut Value {
        let i = match self.components.iter().position(|c| c["id"] == id) {
            Some(i) => i,
            None => {
                self.components.push(json!({"id": id, "status": "pending", "bytes_downloaded": 0, "bytes_total": null, "message": ""}));
                self.components.len() - 1
            }
        };
        &mut self.components[i]
    }

    fn add(&mut self, v: &Value) {
        let kind = v["type"].as_str().unwrap_or("");
        self.seq = v["seq"].as_u64().unwrap_or(self.seq);
        self.last_event_at = Some(Instant::now());
        if kind == "started"
            && v["status"] == "resume"
            && self
                .outcome
                .as_ref()
                .is_some_and(|o| o["status"] == "interrupted")
        {
            // Resumed: the earlier run's end is not this install's.
            self.outcome = None;
        }
        if kind == "started" && v["status"] != "resume" {
            // A new install: what an earlier one showed does not carry over.
            *self = Fold {
                seq: self.seq,
                installer_alive: self.installer_alive,
                last_event_at: self.last_event_at,
                ..Fold::default()
            };
        }
        let o = v["overall_progress"].as_f64().unwrap_or(0.0);
        if o > self.overall {
            self.overall = o;
        }
        if kind == "started"
            && let Some(list) = v["components"].as_array()
        {
            for c in list {
                if let Some(id) = c["id"].as_str() {
                    let e = self.component(id);
                    for k in [
                        "kind",
                        "optional",
                        "bytes_total",
                        "status",
                        "variant",
                        "variant_description",
                        "variant_why",
                    ] {
                        if !c[k].is_null() {
                            e[k] = c[k].clone();
                        }
                    }
                }
            }
        }
        let comp = v["component"].as_str().map(str::to_string);
        if let Some(id) = comp {
            let msg = v["message"].clone();
            let e = self.component(&id);
            match kind {
                "step" => {
                    e["status"] = v["status"].clone();
                    e["message"] = msg;
                }
                "progress" => {
                    if let (Some(got), Some(size)) = (
                        v["component_bytes"].as_u64(),
                        v["component_bytes_total"].as_u64(),
                    ) {
                        e["bytes_downloaded"] = json!(got);
                        e["bytes_total"] = json!(size);
                        if e["status"] == "pending" {
                            e["status"] = json!("running");
                        }
                    }
                }
                "capability" => e["capability"] = v["new_capability"].clone(),
                _ => {}
            }
        }
        if kind == "capability" {
            self.capabilities.push(json!({
                "capability": v["new_capability"],
                "component": v["component"],
                "message": v["message"],
                "seq": v["seq"],
            }));
        }
        if kind == "finished" {
            self.outcome = Some(json!({
                "status": v["status"],
                "exit_code": v["exit_code"],
                "message": v["message"],
                "summary": v.get("summary").cloned().unwrap_or(Value::Null),
            }));
        }
        if kind != "output" {
            self.last = Some(v.clone());
        }
    }

    fn document(&self) -> Value {
        let state = match &self.outcome {
            Some(o) if o["status"] == "interrupted" => "interrupted",
            Some(_) => "finished",
            None if self.last.is_none() => "waiting",
            None => "running",
        };
        let mut progress = json!({});
        if let Some(l) = &self.last {
            for k in SETUP_FIELDS {
                progress[k] = l[k].clone();
            }
        }
        progress["overall_progress"] = json!(self.overall);
        json!({
            "state": state,
            "installer_alive": self.installer_alive,
            "seq": self.seq,
            "last_event_age_s": self.last_event_at.map(|t| (t.elapsed().as_secs_f64() * 10.0).round() / 10.0),
            "progress": progress,
            "components": self.components,
            "capabilities": self.capabilities,
            "final": self.outcome.clone().unwrap_or(Value::Null),
        })
    }
}

/// `--listen ADDR`: a loopback address only (127.0.0.0/8, ::1, localhost);
/// port 0 picks a free one.
pub fn parse_listen(s: &str) -> Result<SocketAddr> {
    listen_addr(s).map_err(|why| {
        Error::new(
            Code::Usage,
            format!("--progress-listen {s}: {why}; use 127.0.0.1:PORT (0 picks a free port)"),
        )
    })
}

/// The loopback address `s` names, or why it is refused.
pub fn listen_addr(s: &str) -> std::result::Result<SocketAddr, &'static str> {
    const ONLY: &str =
        "only a loopback address is served (the progress of an install is nobody else's)";
    let addr: SocketAddr = match s.strip_prefix("localhost:") {
        Some(p) => SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            p.parse().map_err(|_| "not a port")?,
        ),
        None => s.parse().map_err(|_| ONLY)?,
    };
    if !addr.ip().is_loopback() {
        return Err(ONLY);
    }
    Ok(addr)
}

/// Equal without telling by timing how much of it matched.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// An origin for --progress-allow-origin: scheme://host[:port], nothing else.
fn check_origin(o: &str) -> Result<()> {
    let rest = o
        .strip_prefix("http://")
        .or_else(|| o.strip_prefix("https://"));
    let ok = rest.is_some_and(|r| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    });
    if ok {
        Ok(())
    } else {
        err(
            Code::Usage,
            format!(
                "--progress-allow-origin {o:?}: give an origin, e.g. http://127.0.0.1:5173 (scheme, host, port; no path)"
            ),
        )
    }
}

/// What `onramp progress-serve` was asked (see `cmd::progress`).
pub struct Serve {
    pub listen: Option<String>,
    pub events: Option<PathBuf>,
    pub owner: Option<u32>,
    pub linger: Option<u64>,
    pub url_file: Option<PathBuf>,
    pub allow_origin: Option<String>,
    pub foreground: bool,
    pub heartbeat: Option<u64>,
}

/// Serve from the background: this same command again with --foreground,
/// detached (a session of its own on Unix; no console and a process group
/// of its own on Windows), so it outlives the installer's Ctrl-C and end.
/// It binds, prints its URL and events file, and serves; this process
/// passes those two lines on and returns, so `$(onramp progress-serve ...)`
/// and PowerShell's `& onramp progress-serve` get them at once. One way on
/// every OS (Windows has no fork). If the server fails first, its error
/// and exit code are this command's.
fn in_background() -> Result<i32> {
    let exe = std::env::current_exe().map_err(|e| {
        Error::new(
            Code::Internal,
            format!("cannot find this program to start the progress server: {e}"),
        )
    })?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(std::env::args_os().skip(1))
        .arg("--foreground")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    crate::sys::detached(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| {
        Error::new(
            Code::Internal,
            format!(
                "cannot start the progress server in the background ({}): {e}",
                exe.display()
            ),
        )
    })?;
    // Its stderr, kept (bounded) in case it fails; drained after, so a
    // chatty server never blocks on a full pipe.
    let said = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let _ = (&mut e).take(64 * 1024).read_to_end(&mut kept);
            let _ = std::io::copy(&mut e, &mut std::io::sink());
            kept
        })
    });
    let mut lines = Vec::new();
    if let Some(o) = child.stdout.take() {
        let mut r = BufReader::new(o.take(64 * 1024));
        for _ in 0..2 {
            let mut l = String::new();
            if r.read_line(&mut l).unwrap_or(0) == 0 {
                break;
            }
            lines.push(l.trim_end().to_string());
        }
    }
    if lines.len() == 2 {
        for l in &lines {
            out::stdout_line(l);
        }
        return Ok(0);
    }
    let status = child.wait().map_err(|e| {
        Error::new(
            Code::Internal,
            format!("cannot wait for the progress server: {e}"),
        )
    })?;
    if let Some(t) = said
        && let Ok(kept) = t.join()
    {
        // The server's own messages, already made safe when it wrote them.
        out::raw(&String::from_utf8_lossy(&kept));
    }
    Ok(match status.code() {
        Some(0) | None => Code::Internal as i32,
        Some(c) => c,
    })
}

/// Serve an install's progress (`onramp progress-serve`).
pub fn serve_main(f: &Serve) -> Result<i32> {
    let Some(listen) = &f.listen else {
        return err(Code::Usage, "progress-serve needs --listen 127.0.0.1:PORT");
    };
    let addr = parse_listen(listen)?;
    let Some(events) = &f.events else {
        return err(Code::Usage, "progress-serve needs --events FILE");
    };
    let events = fsutil::absolute(events)?;
    let owner = match f.owner {
        Some(pid) => Some(crate::state::owner_of(pid)?),
        None => None,
    };
    if let Some(o) = &f.allow_origin {
        check_origin(o)?;
    }
    let linger = Duration::from_secs(f.linger.unwrap_or(30));
    if f.heartbeat == Some(0) {
        return err(
            Code::Usage,
            "--heartbeat 0: give a number of seconds, 1 or more",
        );
    }
    if !f.foreground {
        return in_background();
    }
    // A server left lingering on this port by the run before is asked to
    // make way (it reads the same URL file).
    if let Some(uf) = &f.url_file {
        hand_over(uf, addr);
    }
    let listener = bind(addr)?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::new(Code::Internal, format!("cannot read the bound port: {e}")))?
        .port();
    let token = fsutil::hex(&crate::sys::random_bytes(16).map_err(|e| {
        Error::new(
            Code::Internal,
            format!("cannot make a token (random source): {e}"),
        )
    })?);
    let host = match addr.ip() {
        IpAddr::V6(_) => "[::1]".to_string(),
        IpAddr::V4(ip) => ip.to_string(),
    };
    let url = format!("http://{host}:{port}/?token={token}");
    if let Some(uf) = &f.url_file {
        crate::named::replace(
            uf,
            "--progress-url-file",
            format!("{url}\n").as_bytes(),
            0o600,
        )?;
    }
    out::stdout_line(&url);
    out::stdout_line(&events.display().to_string());
    let shared = Arc::new(Shared {
        feed: Mutex::new(Feed {
            entries: Vec::new(),
            status: Fold {
                installer_alive: true,
                ..Fold::default()
            },
            linger_until: None,
            broken: None,
            stop: false,
            held: None,
        }),
        changed: Condvar::new(),
        reader: Mutex::new(Reader {
            file: None,
            pos: 0,
            partial: Vec::new(),
            grew_at: Instant::now(),
            sse: false,
        }),
        linger,
        events,
        owned: owner.is_some(),
        token,
        port,
        allow_origin: f.allow_origin.clone(),
        heartbeat: f.heartbeat.map(Duration::from_secs).unwrap_or(HEARTBEAT),
        clients: Mutex::new(0),
    });
    {
        let shared = shared.clone();
        std::thread::spawn(move || tail(&shared, owner));
    }
    {
        let shared = shared.clone();
        let url_file = f.url_file.clone();
        std::thread::spawn(move || {
            // The end: after the linger, or when told to make way.
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let g = lock(&shared.feed);
                // SIGTERM/SIGINT end it too (the handler only sets a flag).
                let over = g.stop
                    || g.linger_until.is_some_and(|t| Instant::now() >= t)
                    || crate::signal::interrupted();
                drop(g);
                if over {
                    if let Some(uf) = &url_file {
                        // Only our own URL file: a newer server may have written it.
                        let mut text = String::new();
                        if let Ok(Some(f)) =
                            crate::named::open_read(uf, "--progress-url-file", true)
                            && f.take(256).read_to_string(&mut text).is_ok()
                            && text.contains(&format!("token={}", shared.token))
                        {
                            fsutil::remove(uf);
                        }
                    }
                    std::process::exit(0);
                }
            }
        });
    }
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        // Events are small writes a reader waits for: no Nagle delay.
        let _ = stream.set_nodelay(true);
        let mut n = lock(&shared.clients);
        if *n >= MAX_CLIENTS {
            drop(n);
            let mut s = stream;
            let _ = respond(&mut s, 503, "text/plain", &[], b"too many connections\n");
            continue;
        }
        *n += 1;
        drop(n);
        let shared = shared.clone();
        std::thread::spawn(move || {
            serve(&shared, stream);
            *lock(&shared.clients) -= 1;
        });
    }
    Ok(0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        match TcpListener::bind(addr) {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                return err(
                    Code::Usage,
                    format!(
                        "--progress-listen {addr}: cannot listen there ({e}); choose another port, or 0 for a free one"
                    ),
                );
            }
        }
    }
}

/// Ask the server whose URL is in `url_file` to stop (POST /shutdown with
/// its token), when that file is a regular file of this uid (never through
/// a link, never waiting on a FIFO) and names exactly what a server of ours
/// writes (see `previous_server`).
fn hand_over(url_file: &Path, addr: SocketAddr) {
    let Ok(Some(f)) = crate::named::open_read(url_file, "--progress-url-file", true) else {
        return;
    };
    let mut text = String::new();
    if f.take(256).read_to_string(&mut text).is_err() {
        return;
    }
    let Some((old, token)) = previous_server(&text, addr) else {
        return;
    };
    if let Ok(mut s) = TcpStream::connect_timeout(&old, Duration::from_secs(1)) {
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        // One write: the whole request in one piece.
        let req = format!(
            "POST /shutdown?token={token} HTTP/1.1\r\nHost: {old}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let _ = s.write_all(req.as_bytes());
        let mut sink = Vec::new();
        let _ = s.take(4096).read_to_end(&mut sink);
    }
}

/// The address and token in a URL file, only in the exact form this
/// server writes: `http://LOOPBACK:PORT/?token=` and 32 lowercase hex
/// digits, one line. Only the loopback address and port this one is asked
/// to listen on: with port 0 (a free one) nothing can be in the way, and a
/// stale file may name a port another program has since taken. No other
/// byte reaches the request.
fn previous_server(text: &str, addr: SocketAddr) -> Option<(SocketAddr, String)> {
    if addr.port() == 0 {
        return None;
    }
    let line = text.strip_suffix('\n').unwrap_or(text);
    let rest = line.strip_prefix("http://")?;
    let (hostport, token) = rest.split_once("/?token=")?;
    if token.len() != 32
        || !token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let old: SocketAddr = hostport.parse().ok()?;
    if !old.ip().is_loopback() || old.port() == 0 {
        return None;
    }
    if old.port() != addr.port() || old.ip() != addr.ip() {
        return None;
    }
    Some((old, token.to_string()))
}

/// Where this install's events start in the file: the last `started`
/// event that is not a resume (a resumed run continues the same view).
fn run_start(file: &mut File) -> u64 {
    let mut r = BufReader::new(file);
    let (mut off, mut start) = (0u64, 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        let Ok(n) = r.read_until(b'\n', &mut line) else {
            break;
        };
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        if let Some(v) = event_json(&line)
            && v["type"] == "started"
            && v["status"] != "resume"
        {
            start = off;
        }
        off += n as u64;
    }
    start
}

/// The JSON of an events line: an NDJSON line, or an SSE `data:` line.
fn event_json(line: &[u8]) -> Option<Value> {
    let t = std::str::from_utf8(line).ok()?.trim_end();
    let j = t.strip_prefix("data: ").unwrap_or(t);
    if !j.starts_with('{') {
        return None;
    }
    let v: Value = serde_json::from_str(j).ok()?;
    v["seq"].as_u64()?;
    Some(v)
}

/// Read what was appended to the events file since the last call; true
/// when there were new events. Called by the tailer and before each answer,
/// so /status is never behind the file.
fn read_new(shared: &Shared) -> bool {
    let mut r = lock(&shared.reader);
    let r = &mut *r;
    if r.file.is_none()
        && let Ok(Some(mut fh)) = crate::named::open_read(&shared.events, "--events", false)
    {
        r.pos = run_start(&mut fh);
        r.file = Some(fh);
    }
    let Some(fh) = r.file.as_mut() else {
        return false;
    };
    let len = fh.metadata().map(|m| m.len()).unwrap_or(0);
    if len < r.pos {
        lock(&shared.feed).broken = Some(format!(
            "{} was truncated while the install ran",
            shared.events.display()
        ));
        return false;
    }
    if len == r.pos || fh.seek(SeekFrom::Start(r.pos)).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = fh.take(len - r.pos).read_to_end(&mut buf);
    let mut got_any = false;
    let mut start = 0;
    let mut feed = lock(&shared.feed);
    for (i, b) in buf.iter().enumerate() {
        if *b != b'\n' {
            continue;
        }
        let line_off = r.pos - r.partial.len() as u64 + start as u64;
        let mut line = std::mem::take(&mut r.partial);
        line.extend_from_slice(&buf[start..=i]);
        start = i + 1;
        if line.len() > MAX_LINE {
            continue;
        }
        r.sse |= line.starts_with(b"event: ") || line.starts_with(b"data: ");
        let Some(v) = event_json(&line) else { continue };
        let seq = v["seq"].as_u64().unwrap_or(0);
        if feed.last_seq() >= seq {
            continue; // never a duplicate or a step back
        }
        // A resumed install is the same install: the `finished` the server
        // of the run before wrote when that installer died is not this
        // install's end. While our installer lives it is held back, and
        // whatever comes next (the resumed run's `started`) replaces it;
        // if our installer dies first, `tail` writes a new one.
        feed.held = None;
        if v["type"] == "finished"
            && v["status"] == "interrupted"
            && shared.owned
            && feed.status.installer_alive
        {
            feed.held = Some(seq);
            continue;
        }
        let body = std::str::from_utf8(&line).unwrap_or("").trim_end();
        let skip = if body.starts_with("data: ") { 6 } else { 0 };
        feed.entries.push(Entry {
            seq,
            kind: kind_of(&v),
            off: line_off + skip as u64,
            len: (body.len() - skip) as u32,
        });
        feed.status.add(&v);
        if v["type"] == "finished" && feed.linger_until.is_none() {
            feed.linger_until = Some(Instant::now() + shared.linger);
        }
        got_any = true;
    }
    if r.partial.len() + (buf.len() - start) <= MAX_LINE {
        r.partial.extend_from_slice(&buf[start..]);
    } else {
        r.partial.clear();
    }
    r.pos = len;
    r.grew_at = Instant::now();
    drop(feed);
    if got_any {
        shared.changed.notify_all();
    }
    got_any
}

/// Follow the events file; mark the install interrupted when the installer
/// is gone without a final event; set the linger after the final event.
fn tail(shared: &Shared, owner: Option<crate::state::Owner>) {
    loop {
        read_new(shared);
        let alive = owner
            .as_ref()
            .is_none_or(|o| crate::state::process_start(o.pid) == Some(o.start));
        let (quiet, sse) = {
            let r = lock(&shared.reader);
            (r.grew_at.elapsed() >= QUIET, r.sse)
        };
        let mut feed = lock(&shared.feed);
        feed.status.installer_alive = alive;
        if !alive && feed.status.outcome.is_none() && feed.linger_until.is_none() && quiet {
            // Gone without a final event (kill -9, a crash, a closed
            // terminal): say so in the file, so the next run's seq
            // continues after it and every reader sees the same end.
            let seq = feed.last_seq() + 1;
            let last = interrupted_event(&feed.status, seq);
            drop(feed);
            append_interrupted(&shared.events, &last, sse);
            read_new(shared);
        } else if !alive && feed.linger_until.is_none() && feed.status.outcome.is_some() {
            feed.linger_until = Some(Instant::now() + shared.linger);
        } else if feed.stop {
            drop(feed);
            shared.changed.notify_all();
            return;
        } else {
            // Not held while sleeping: readers and /status need it.
            drop(feed);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `finished` event of an installer that died without one: the
/// SetupProgress fields of the last event read (where it stopped, its bytes,
/// the high-water `overall_progress`, which a resumed run continues from).
fn interrupted_event(fold: &Fold, seq: u64) -> Value {
    let mut v = json!({
        "type": "finished",
        "seq": seq,
        "time": fsutil::now_rfc3339(),
    });
    if let Some(l) = &fold.last {
        for k in SETUP_FIELDS {
            v[k] = l[k].clone();
        }
    }
    v["overall_progress"] = json!(fold.overall);
    v["estimated_remaining_s"] = json!(0);
    v["new_capability"] = Value::Null;
    v["status"] = json!("interrupted");
    v["exit_code"] = json!(Code::Killed.as_i32());
    v["message"] = json!(
        "the installer stopped without finishing (killed, or its terminal closed); run it again to resume"
    );
    v
}

fn append_interrupted(events: &Path, v: &Value, sse: bool) {
    let seq = v["seq"].as_u64().unwrap_or(0);
    let line = if sse {
        format!("event: finished\nid: {seq}\ndata: {v}\n\n")
    } else {
        format!("{v}\n")
    };
    if let Ok(mut f) = crate::named::open_append(events, "--events") {
        let _ = f.write_all(line.as_bytes());
    }
}

/// One parsed request.
struct Request {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
}

fn read_request(s: &mut TcpStream) -> Option<Request> {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let mut query = BTreeMap::new();
    for kv in q.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        query.insert(k.to_string(), v.to_string());
    }
    let mut headers = BTreeMap::new();
    for l in lines.take_while(|l| !l.is_empty()) {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Some(Request {
        method,
        path: path.to_string(),
        query,
        headers,
    })
}

fn respond(
    s: &mut TcpStream,
    code: u16,
    ctype: &str,
    extra: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        204 => "No Content",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        421 => "Misdirected Request",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    s.flush()
}

fn serve(shared: &Shared, mut s: TcpStream) {
    let Some(req) = read_request(&mut s) else {
        return;
    };
    // DNS rebinding: a page of another site that resolves its name to
    // 127.0.0.1 sends its own name as Host.
    let host = req
        .headers
        .get("host")
        .map(|h| h.to_ascii_lowercase())
        .unwrap_or_default();
    let port = shared.port;
    if ![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ]
    .contains(&host)
    {
        let _ = respond(
            &mut s,
            421,
            "text/plain",
            &[],
            b"wrong Host: this server answers only to 127.0.0.1, localhost or [::1] with its port\n",
        );
        return;
    }
    let mut extra: Vec<(&str, String)> = Vec::new();
    if let (Some(allowed), Some(origin)) = (&shared.allow_origin, req.headers.get("origin"))
        && allowed == origin
    {
        extra.push(("Access-Control-Allow-Origin", origin.clone()));
        extra.push(("Vary", "Origin".to_string()));
    }
    if req.method == "OPTIONS" && !extra.is_empty() {
        extra.push(("Access-Control-Allow-Methods", "GET".to_string()));
        extra.push((
            "Access-Control-Allow-Headers",
            "Authorization, Last-Event-ID".to_string(),
        ));
        let _ = respond(&mut s, 204, "text/plain", &extra, b"");
        return;
    }
    let given = req
        .query
        .get("token")
        .cloned()
        .or_else(|| {
            req.headers
                .get("authorization")
                .and_then(|a| a.strip_prefix("Bearer ").map(str::to_string))
        })
        .unwrap_or_default();
    if !same(&given, &shared.token) {
        let _ = respond(
            &mut s,
            403,
            "text/plain",
            &extra,
            b"a missing or wrong token: use the URL the installer printed\n",
        );
        return;
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/") => {
            extra.push((
                "Content-Security-Policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'".to_string(),
            ));
            let _ = respond(
                &mut s,
                200,
                "text/html; charset=utf-8",
                &extra,
                PAGE.as_bytes(),
            );
        }
        ("GET", "/status") => {
            read_new(shared);
            let g = lock(&shared.feed);
            let mut doc = g.status.document();
            if let Some(b) = &g.broken {
                doc["error"] = json!(b);
            }
            drop(g);
            let body = serde_json::to_vec_pretty(&doc).unwrap_or_default();
            let _ = respond(&mut s, 200, "application/json", &extra, &body);
        }
        ("GET", "/events") => {
            read_new(shared);
            let after = req
                .headers
                .get("last-event-id")
                .or_else(|| req.query.get("last_event_id"))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            stream_events(shared, s, after, &extra);
        }
        ("POST", "/shutdown") => {
            let _ = respond(&mut s, 204, "text/plain", &extra, b"");
            lock(&shared.feed).stop = true;
            shared.changed.notify_all();
        }
        (_, "/" | "/status" | "/events") => {
            let _ = respond(&mut s, 405, "text/plain", &extra, b"GET only\n");
        }
        _ => {
            let _ = respond(
                &mut s,
                404,
                "text/plain",
                &extra,
                b"not here: / (the page), /status, /events\n",
            );
        }
    }
}

/// `GET /events`: every event after seq `after`, then each as it comes,
/// with a heartbeat comment when quiet.
fn stream_events(shared: &Shared, mut s: TcpStream, after: u64, extra: &[(&str, String)]) {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n",
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\nretry: 1000\n\n");
    if s.write_all(head.as_bytes()).is_err() {
        return;
    }
    let Ok(Some(mut file)) = crate::named::open_read(&shared.events, "--events", false) else {
        return;
    };
    let mut last = after;
    let mut quiet_since = Instant::now();
    loop {
        // The entries after `last`, copied out under the lock.
        let todo: Vec<(u64, &str, u64, u32)> = {
            let g = lock(&shared.feed);
            let from = g.entries.partition_point(|e| e.seq <= last);
            g.entries[from..]
                .iter()
                .take(512)
                .map(|e| (e.seq, e.kind, e.off, e.len))
                .collect()
        };
        let mut out = Vec::new();
        for (seq, kind, off, len) in &todo {
            let mut json = vec![0u8; *len as usize];
            if file.seek(SeekFrom::Start(*off)).is_err() || file.read_exact(&mut json).is_err() {
                return;
            }
            out.extend_from_slice(format!("id: {seq}\nevent: {kind}\ndata: ").as_bytes());
            out.extend_from_slice(&json);
            out.extend_from_slice(b"\n\n");
            last = *seq;
        }
        if !out.is_empty() {
            if s.write_all(&out).is_err() || s.flush().is_err() {
                return;
            }
            quiet_since = Instant::now();
            continue;
        }
        let g = lock(&shared.feed);
        if g.stop {
            return;
        }
        let newest = g.entries.last().map(|e| e.seq).unwrap_or(0);
        if newest > last {
            continue;
        }
        let (g, _) = shared
            .changed
            .wait_timeout(g, shared.heartbeat.min(Duration::from_secs(1)))
            .unwrap_or_else(|p| p.into_inner());
        drop(g);
        // A reader that hung up frees its slot now, not at the next write.
        if hung_up(&s) {
            return;
        }
        if quiet_since.elapsed() >= shared.heartbeat {
            if s.write_all(b": heartbeat\n\n").is_err() {
                return;
            }
            quiet_since = Instant::now();
        }
    }
}

/// Has the peer closed its end? (A read of 0 bytes without blocking.)
fn hung_up(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let gone = match s.peek(&mut b) {
        Ok(n) => n == 0,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    let _ = s.set_nonblocking(false);
    gone
}

#[cfg(test)]
mod tests {

    #[test]
    fn hand_over_only_to_a_loopback_server_of_ours() {
        let tok = "0123456789abcdef0123456789abcdef";
        let at: SocketAddr = "127.0.0.1:7777".parse().unwrap();
        let free: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let good = format!("http://127.0.0.1:7777/?token={tok}\n");
        assert_eq!(
            previous_server(&good, at),
            Some(("127.0.0.1:7777".parse().unwrap(), tok.to_string()))
        );
        assert!(previous_server(&format!("http://127.0.0.1:9999/?token={tok}"), free).is_none());
        for bad in [
            format!("http://10.0.0.1:7777/?token={tok}"),
            format!("http://192.168.1.1:0/?token={tok}"),
            format!("http://127.0.0.1:7778/?token={tok}"),
            format!("http://[::1]:7777/?token={tok}"),
            format!("http://localhost:7777/?token={tok}"),
            format!("http://127.0.0.1:7777/?token={tok}\r\nGET /x HTTP/1.1"),
            format!("http://127.0.0.1:7777/?token={tok}0"),
            "http://127.0.0.1:7777/?token=0123456789ABCDEF0123456789ABCDEF".to_string(),
            format!("http://127.0.0.1:7777/?token={tok}\n\n"),
        ] {
            assert_eq!(previous_server(&bad, at), None, "{bad:?}");
        }
        assert_eq!(
            previous_server(&format!("http://10.0.0.1:80/?token={tok}"), free),
            None
        );
    }

    use super::*;

    #[test]
    fn listen_is_loopback_only() {
        assert!(parse_listen("127.0.0.1:0").is_ok());
        assert!(parse_listen("[::1]:8080").is_ok());
        assert!(parse_listen("localhost:9").is_ok());
        for bad in [
            "0.0.0.0:0",
            "192.168.1.2:80",
            "[::]:0",
            "example.com:80",
            "127.0.0.1",
        ] {
            let e = parse_listen(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn origins_are_checked() {
        assert!(check_origin("http://127.0.0.1:5173").is_ok());
        assert!(check_origin("https://app.example").is_ok());
        for bad in ["*", "null", "http://x/path", "ftp://x", "http://"] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_fold_keeps_the_high_water_mark_and_the_order_of_capabilities() {
        let mut f = Fold::default();
        let ev = |seq: u64, kind: &str, extra: Value| {
            let mut v = json!({"type": kind, "seq": seq, "overall_progress": 0.0, "message": ""});
            for (k, x) in extra.as_object().cloned().unwrap_or_default() {
                v[k] = x;
            }
            v
        };
        f.add(&ev(
            1,
            "started",
            json!({"status": "fresh", "components": [{"id": "m", "kind": "model"}]}),
        ));
        f.add(&ev(2, "progress", json!({"overall_progress": 0.5, "component": "m", "component_bytes": 5, "component_bytes_total": 10})));
        f.add(&ev(3, "progress", json!({"overall_progress": 0.25})));
        f.add(&ev(
            4,
            "capability",
            json!({"component": "m", "new_capability": "chat"}),
        ));
        let d = f.document();
        assert_eq!(d["progress"]["overall_progress"], json!(0.5));
        assert_eq!(d["components"][0]["bytes_downloaded"], json!(5));
        assert_eq!(d["capabilities"][0]["capability"], json!("chat"));
        assert_eq!(d["state"], json!("running"));
        f.add(&ev(
            5,
            "finished",
            json!({"status": "success", "exit_code": 0}),
        ));
        assert_eq!(f.document()["state"], json!("finished"));
        // a fresh start forgets the last install's view
        f.add(&ev(6, "started", json!({"status": "fresh"})));
        assert_eq!(f.document()["progress"]["overall_progress"], json!(0.0));
        assert_eq!(f.document()["seq"], json!(6));
    }

    #[test]
    fn the_fold_shows_variants_running_work_and_a_resume_as_the_same_install() {
        let mut f = Fold::default();
        let ev = |seq: u64, kind: &str, extra: Value| {
            let mut v = json!({"type": kind, "seq": seq, "overall_progress": 0.0, "message": ""});
            for (k, x) in extra.as_object().cloned().unwrap_or_default() {
                v[k] = x;
            }
            v
        };
        f.add(&ev(
            1,
            "started",
            json!({"status": "fresh", "components": [
            {"id": "chat", "kind": "model", "variant": "big", "variant_description": "cuda tier"},
            {"id": "slow", "kind": "extra"}]}),
        ));
        f.add(&ev(2, "step", json!({"component": "slow", "status": "running", "message": "running sleep 90", "overall_progress": 0.4})));
        let d = f.document();
        assert_eq!(
            d["components"][0]["variant_description"],
            json!("cuda tier")
        );
        assert_eq!(d["components"][1]["status"], json!("running"));
        assert_eq!(d["components"][1]["message"], json!("running sleep 90"));
        // killed; the server wrote its end with the bar where it was
        let end = interrupted_event(&f, 3);
        assert_eq!(end["overall_progress"], json!(0.4));
        assert_eq!(end["step_name"], Value::Null);
        f.add(&end);
        assert_eq!(f.document()["state"], json!("interrupted"));
        // resumed: the same install, running again, the bar kept
        f.add(&ev(4, "started", json!({"status": "resume"})));
        let d = f.document();
        assert_eq!(d["state"], json!("running"));
        assert_eq!(d["final"], Value::Null);
        assert_eq!(d["progress"]["overall_progress"], json!(0.4));
        assert_eq!(d["components"][0]["variant"], json!("big"));
    }
}
