//! A small HTTP/1.1 file server that misbehaves on purpose, for onramp's
//! download tests. A request for `/<fault>/<file>` serves `<file>` with that
//! fault; most faults hit only the first two requests of a path, so a
//! correct client recovers and a wrong one is caught. Std only.
//!
//! Faults: ok, reset, short, stall, drip, slowfirst, 500, 503, 429, norange, badrange,
//! 416, etag, gzip, longlen, flip, flipalways, loop, signed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Server {
    pub port: u16,
    state: Arc<State>,
}

struct State {
    files: HashMap<String, Vec<u8>>,
    hits: Mutex<HashMap<String, u32>>,
    /// One line per request: "path range status body-bytes".
    log: Mutex<Vec<String>>,
    tokens: Mutex<HashMap<String, u32>>,
}

impl Server {
    /// Serve `files` on 127.0.0.1 at a free port, in background threads.
    pub fn start(files: HashMap<String, Vec<u8>>) -> std::io::Result<Server> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        let state = Arc::new(State {
            files,
            hits: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            tokens: Mutex::new(HashMap::new()),
        });
        let st = Arc::clone(&state);
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let st = Arc::clone(&st);
                std::thread::spawn(move || {
                    let _ = handle(&st, c, port);
                });
            }
        });
        Ok(Server { port, state })
    }

    pub fn url(&self, fault: &str, file: &str) -> String {
        format!("http://127.0.0.1:{}/{fault}/{file}", self.port)
    }

    pub fn log(&self) -> Vec<String> {
        self.state.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Body bytes sent for paths containing `needle`.
    pub fn bytes_sent(&self, needle: &str) -> u64 {
        self.log()
            .iter()
            .filter(|l| l.contains(needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

/// Deterministic test data (xorshift), `n` bytes.
pub fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn handle(st: &State, mut c: TcpStream, port: u16) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut r = BufReader::new(c.try_clone()?);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        if !respond(st, &mut c, &path, &headers, port)? {
            return Ok(());
        }
    }
}

fn log(st: &State, path: &str, range: &str, status: u16, bytes: usize) {
    if let Ok(mut l) = st.log.lock() {
        l.push(format!("{path} {range:?} {status} {bytes}"));
    }
}

fn simple(c: &mut TcpStream, status: u16, extra: &str) -> std::io::Result<bool> {
    write!(c, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\n{extra}\r\n")?;
    Ok(true)
}

/// Returns whether the connection may be kept alive.
fn respond(
    st: &State,
    c: &mut TcpStream,
    path: &str,
    h: &HashMap<String, String>,
    port: u16,
) -> std::io::Result<bool> {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let fault = parts.next().unwrap_or("").to_string();
    let mut name = parts.next().unwrap_or("").to_string();
    let hit = {
        let mut m = st
            .hits
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        let e = m.entry(path.to_string()).or_insert(0);
        *e += 1;
        *e
    };
    let early = hit <= 2;
    let range_hdr = h.get("range").cloned().unwrap_or_default();
    match fault.as_str() {
        "loop" => {
            log(st, path, &range_hdr, 302, 0);
            return simple(c, 302, &format!("Location: {path}\r\n"));
        }
        "signed" => {
            // Hand out a one-use token; the token path is /s/<token>/<name>.
            let t = format!("{hit}");
            if let Ok(mut m) = st.tokens.lock() {
                m.insert(t.clone(), 0);
            }
            log(st, path, &range_hdr, 302, 0);
            return simple(
                c,
                302,
                &format!("Location: http://127.0.0.1:{port}/s/{t}/{name}\r\n"),
            );
        }
        "s" => {
            let mut p = name.splitn(2, '/');
            let t = p.next().unwrap_or("").to_string();
            name = p.next().unwrap_or("").to_string();
            let used = st.tokens.lock().ok().and_then(|mut m| {
                m.get_mut(&t).map(|u| {
                    *u += 1;
                    *u
                })
            });
            if used != Some(1) {
                log(st, path, &range_hdr, 403, 0);
                return simple(c, 403, "");
            }
        }
        _ => {}
    }
    let Some(body) = st.files.get(&name) else {
        log(st, path, &range_hdr, 404, 0);
        return simple(c, 404, "");
    };
    let size = body.len();
    let etag = if fault == "etag" && hit > 3 {
        "\"v2\""
    } else {
        "\"v1\""
    };
    match fault.as_str() {
        "500" if early => {
            log(st, path, &range_hdr, 500, 0);
            return simple(c, 500, "");
        }
        "503" | "429" if early => {
            let code = if fault == "503" { 503 } else { 429 };
            log(st, path, &range_hdr, code, 0);
            return simple(c, code, "Retry-After: 1\r\n");
        }
        _ => {}
    }
    // Which bytes to send.
    let mut range = None;
    if let Some(spec) = range_hdr.strip_prefix("bytes=") {
        let if_range_ok = h.get("if-range").is_none_or(|v| v == etag);
        let (a, b) = spec.split_once('-').unwrap_or(("0", ""));
        let a: usize = a.parse().unwrap_or(0);
        let b: usize = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse().unwrap_or(size - 1).min(size - 1)
        };
        if fault == "416" && a > 0 {
            log(st, path, &range_hdr, 416, 0);
            return simple(c, 416, &format!("Content-Range: bytes */{size}\r\n"));
        }
        if fault != "norange" && if_range_ok && a < size {
            range = Some((a, b));
        }
    }
    let (status, a, b) = match range {
        Some((a, b)) => (206, a, b),
        None => (200, 0, size.saturating_sub(1)),
    };
    let mut chunk = body[a..=b].to_vec();
    let mut head = format!("HTTP/1.1 {status} X\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\n");
    if status == 206 {
        let shown_a = if fault == "badrange" && early {
            a + 1
        } else {
            a
        };
        head.push_str(&format!("Content-Range: bytes {shown_a}-{b}/{size}\r\n"));
    }
    let mut len = chunk.len();
    if fault == "longlen" {
        len += 100;
    }
    if fault == "gzip" {
        head.push_str("Content-Encoding: gzip\r\n");
    }
    head.push_str(&format!("Content-Length: {len}\r\n\r\n"));
    let flip_at = size / 2;
    if (fault == "flip" && hit == 1 || fault == "flipalways") && (a..=b).contains(&flip_at) {
        chunk[flip_at - a] ^= 0x40;
    }
    c.write_all(head.as_bytes())?;
    let sent = match fault.as_str() {
        "reset" | "short" if early => {
            let half = chunk.len() / 2;
            c.write_all(&chunk[..half])?;
            log(st, path, &range_hdr, status, half);
            if fault == "reset" {
                // SO_LINGER 0: close() sends RST instead of FIN.
                let _ = set_linger_zero(c);
            }
            return Ok(false);
        }
        "stall" if hit == 1 => {
            let part = chunk.len().min(4096);
            c.write_all(&chunk[..part])?;
            log(st, path, &range_hdr, status, part);
            std::thread::sleep(Duration::from_secs(60));
            return Ok(false);
        }
        "slowfirst" if hit == 1 => {
            // A connection that crawls (about 20 kB/s) but never stops.
            let mut sent = 0;
            for piece in chunk.chunks(1024) {
                if c.write_all(piece).is_err() {
                    break;
                }
                sent += piece.len();
                std::thread::sleep(Duration::from_millis(50));
            }
            log(st, path, &range_hdr, status, sent);
            return Ok(false);
        }
        "drip" => {
            for piece in chunk.chunks(16 * 1024) {
                c.write_all(piece)?;
                std::thread::sleep(Duration::from_millis(5));
            }
            chunk.len()
        }
        _ => {
            c.write_all(&chunk)?;
            chunk.len()
        }
    };
    log(st, path, &range_hdr, status, sent);
    Ok(fault != "longlen")
}

/// SO_LINGER with a zero timeout: the close is a reset (RST), as a dying
/// server's would be.
#[cfg(unix)]
fn set_linger_zero(c: &TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        l_onoff: i32,
        l_linger: i32,
    }
    let l = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, val: *const Linger, len: u32) -> i32;
    }
    // SOL_SOCKET = 1, SO_LINGER = 13 on Linux.
    // SAFETY: a valid fd and a correctly sized struct.
    let rc = unsafe {
        setsockopt(
            c.as_raw_fd(),
            1,
            13,
            &l,
            std::mem::size_of::<Linger>() as u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The same with Winsock (the helper's unit tests under wine).
#[cfg(windows)]
fn set_linger_zero(c: &TcpStream) -> std::io::Result<()> {
    use std::os::windows::io::AsRawSocket;
    #[repr(C)]
    struct Linger {
        l_onoff: u16,
        l_linger: u16,
    }
    let l = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    #[link(name = "ws2_32")]
    unsafe extern "system" {
        fn setsockopt(s: usize, level: i32, name: i32, val: *const Linger, len: i32) -> i32;
    }
    // SOL_SOCKET = 0xffff, SO_LINGER = 0x0080.
    // SAFETY: a valid socket and a correctly sized struct.
    let rc = unsafe {
        setsockopt(
            c.as_raw_socket() as usize,
            0xffff,
            0x0080,
            &l,
            std::mem::size_of::<Linger>() as i32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
