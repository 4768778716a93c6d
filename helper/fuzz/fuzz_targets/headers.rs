//! What servers and manifests say in text: Content-Range, Location joins,
//! host:port of a URL, and loopback health URLs. No panic; a loopback URL
//! accepted is loopback.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((a, b, t)) = onramp::download::http::content_range(s) {
        let _ = (a, b, t);
    }
    let (base, loc) = s.split_once('\n').unwrap_or((s, "/x"));
    let _ = onramp::download::http::join(base, loc);
    let _ = onramp::phase::host_port(s);
    if let Ok(l) = onramp::manifest::loopback_http(s) {
        assert!(l.addrs.iter().all(|a| a.is_loopback()), "{s:?} accepted");
        assert!(!l.host.contains('@'));
    }
});
