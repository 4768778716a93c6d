//! A download sidecar is trusted only when intact and consistent: whatever
//! its bytes, loading never panics, and the ranges of an accepted one are
//! valid, so the arithmetic on them cannot wrap.
#![no_main]
use libfuzzer_sys::fuzz_target;
use onramp::download::sidecar::{Ranges, Sidecar};

fuzz_target!(|data: &[u8]| {
    let Some(size) = data.first().map(|b| u64::from(*b) * 1000) else {
        return;
    };
    let rest = &data[1..];
    if let Some(s) = Sidecar::from_bytes(rest, "u", size, "h") {
        assert!(s.ranges.valid(size));
        assert!(s.ranges.total() <= size);
        let _ = s.ranges.missing(size);
    }
    // Ranges built by insert from any pairs stay valid.
    let mut r = Ranges::default();
    for w in rest.chunks_exact(2) {
        let (a, b) = (u64::from(w[0]), u64::from(w[1]));
        r.insert(a.min(b), a.max(b));
    }
    assert!(r.valid(256));
    let gaps = r.missing(256);
    assert_eq!(gaps.iter().map(|g| g.1 - g.0).sum::<u64>() + r.total(), 256);
});
