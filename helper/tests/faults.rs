//! `onramp download` against the fault-injecting server: for every fault,
//! the byte-exact file, or the documented exit code with nothing at PATH,
//! within a bounded time. Never a wrong file in place.

use faultserver::{Server, data};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SIZE: usize = 3 * 1024 * 1024 + 12345;

fn sha256_hex(b: &[u8]) -> String {
    // Use the system tool: an independent implementation from the helper's.
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    use std::io::Write;
    c.stdin.take().expect("stdin").write_all(b).expect("write");
    let out = c.wait_with_output().expect("sha256sum output");
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

struct Fixture {
    srv: Server,
    body: Vec<u8>,
    sha: String,
    dir: PathBuf,
}

fn fixture(name: &str) -> Fixture {
    let body = data(SIZE, 7);
    let mut files = HashMap::new();
    files.insert("f.bin".to_string(), body.clone());
    let srv = Server::start(files).expect("server");
    let dir = std::env::temp_dir().join(format!("onramp-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp");
    let sha = sha256_hex(&body);
    Fixture {
        srv,
        body,
        sha,
        dir,
    }
}

/// Run the download with a hard time limit; (exit code, stderr, seconds).
fn download(fx: &Fixture, url: &str, extra: &[&str], limit: u64) -> (i32, String, f64) {
    let mut args = vec!["--allow-http", "--read-timeout", "2", "--connections", "4"];
    args.extend_from_slice(extra);
    run_onramp(fx, url, &args, limit)
}

/// `onramp download URL -o out.bin --sha256 .. --size .. ARGS`, time-limited.
fn run_onramp(fx: &Fixture, url: &str, args: &[&str], limit: u64) -> (i32, String, f64) {
    let out = fx.dir.join("out.bin");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_onramp"));
    cmd.args(["download", url, "-o"])
        .arg(&out)
        .args([
            "--sha256",
            &fx.sha,
            "--size",
            &SIZE.to_string(),
            "--cache-dir",
        ])
        .arg(fx.dir.join("cache"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = cmd.spawn().expect("spawn onramp");
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if t.elapsed() > Duration::from_secs(limit) {
            let _ = child.kill();
            let o = child.wait_with_output().expect("wait");
            panic!(
                "{url}: not done within {limit} s: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().expect("output");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        t.elapsed().as_secs_f64(),
    )
}

fn assert_exact(fx: &Fixture, code: i32, err: &str) {
    assert_eq!(code, 0, "expected success: {err}");
    let got = std::fs::read(fx.dir.join("out.bin")).expect("out.bin exists");
    assert!(got == fx.body, "out.bin differs from the served file");
    // Nothing of the transfer is left but the per-artifact lock file.
    let left: Vec<String> = std::fs::read_dir(fx.dir.join("cache/partial"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left in partial/: {left:?}");
}

fn assert_nothing(fx: &Fixture, code: i32, want_code: i32, err: &str, needle: &str) {
    assert_eq!(code, want_code, "exit code; stderr: {err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    assert!(
        !Path::new(&fx.dir.join("out.bin")).exists(),
        "a file was left at PATH"
    );
    let cached = fx.dir.join("cache/sha256").join(&fx.sha);
    assert!(!cached.exists(), "an unverified file reached the cache");
}

macro_rules! recovers {
    ($name:ident, $fault:expr, $limit:expr) => {
        #[test]
        fn $name() {
            let fx = fixture($fault);
            let (code, err, _) = download(&fx, &fx.srv.url($fault, "f.bin"), &[], $limit);
            assert_exact(&fx, code, &err);
        }
    };
}

recovers!(plain_ranges, "ok", 20);
recovers!(connection_reset_mid_body, "reset", 30);
recovers!(clean_close_mid_body, "short", 30);
recovers!(stall_then_recover, "stall", 30);
recovers!(drip_feed, "drip", 60);
recovers!(http_500_then_recover, "500", 30);
recovers!(http_503_with_retry_after, "503", 30);
recovers!(http_429_with_retry_after, "429", 30);
recovers!(range_ignored_falls_back_to_one_stream, "norange", 30);
recovers!(wrong_content_range_is_retried, "badrange", 30);
recovers!(http_416_restarts_cleanly, "416", 30);
recovers!(etag_change_restarts_cleanly, "etag", 30);
recovers!(content_length_longer_than_body, "longlen", 30);
recovers!(flipped_byte_refetched_once, "flip", 30);
recovers!(expired_signed_redirect_is_resolved_again, "signed", 30);

macro_rules! refuses {
    ($name:ident, $fault:expr, $code:expr, $needle:expr) => {
        #[test]
        fn $name() {
            let fx = fixture($fault);
            let (code, err, _) = download(&fx, &fx.srv.url($fault, "f.bin"), &[], 30);
            assert_nothing(&fx, code, $code, &err, $needle);
        }
    };
}

refuses!(
    surprise_content_encoding_is_refused,
    "gzip",
    6,
    "Content-Encoding"
);
refuses!(
    always_flipped_byte_fails_with_integrity,
    "flipalways",
    7,
    "does not match the manifest"
);
refuses!(redirect_loop_is_refused, "loop", 6, "more than 5 redirects");

#[test]
fn plain_http_refused_without_allow_http() {
    let fx = fixture("nohttp");
    let (code, err, _) = run_onramp(&fx, &fx.srv.url("ok", "f.bin"), &[], 20);
    assert_nothing(&fx, code, 6, &err, "refusing plain http");
    assert!(fx.srv.log().is_empty(), "no request may be made");
}

#[test]
fn a_crawling_connection_does_not_hold_the_download_back() {
    // The first request crawls at ~20 kB/s: alone it would need minutes for
    // its piece. Median-relative slow detection (or the end-game duplicate)
    // must hand that piece to a healthy connection.
    let fx = fixture("slowfirst");
    let (code, err, secs) = download(&fx, &fx.srv.url("slowfirst", "f.bin"), &[], 60);
    assert_exact(&fx, code, &err);
    // Alone, the crawling 256 KiB piece would take about 13 s.
    assert!(secs < 6.0, "took {secs:.1} s");
}

#[test]
fn missing_file_is_a_clear_network_error() {
    let fx = fixture("404");
    let (code, err, _) = download(&fx, &fx.srv.url("ok", "nope.bin"), &[], 20);
    assert_nothing(&fx, code, 6, &err, "does not exist");
}

#[test]
fn a_mirror_is_tried_first_and_a_dead_one_is_skipped() {
    let fx = fixture("mirror");
    let base = format!("http://127.0.0.1:{}/ok", fx.srv.port);
    let dead = "http://127.0.0.1:9/nowhere".to_string();
    // The artifact's own URL is bogus: only the working mirror can serve it.
    let (code, err, _) = download(
        &fx,
        "https://127.0.0.1:9/x/f.bin",
        &["--mirror", &dead, "--mirror", &base],
        40,
    );
    assert_exact(&fx, code, &err);
}

#[test]
fn parallel_ranges_are_used_and_nothing_is_fetched_twice() {
    let fx = fixture("count");
    let (code, err, _) = download(&fx, &fx.srv.url("ok", "f.bin"), &[], 20);
    assert_exact(&fx, code, &err);
    let log = fx.srv.log();
    assert!(log.len() >= 4, "expected several ranged requests: {log:?}");
    assert!(
        fx.srv.bytes_sent("/ok/") <= SIZE as u64 + 4 * 256 * 1024,
        "too many bytes sent: {log:?}"
    );
    // A second call finds it in the cache: no request.
    let n = fx.srv.log().len();
    let (code, err, _) = download(&fx, &fx.srv.url("ok", "f.bin"), &[], 20);
    assert_exact(&fx, code, &err);
    assert_eq!(fx.srv.log().len(), n);
}

/// A connection that sends part of its piece and then nothing must not hold
/// the download for the read timeout: the end-game fetches its tail on
/// another connection and the transfer ends as soon as every byte is here.
#[test]
fn a_stalled_piece_does_not_wait_for_the_read_timeout() {
    let fx = fixture("stall-endgame");
    let url = fx.srv.url("stall", "f.bin");
    let (code, err, secs) = run_onramp(
        &fx,
        &url,
        &["--allow-http", "--read-timeout", "30", "--connections", "4"],
        60,
    );
    assert_exact(&fx, code, &err);
    assert!(
        secs < 8.0,
        "took {secs:.1} s with one stalled connection (read timeout 30 s): {err}"
    );
}
