//! A catalog entry comes from a server: parsed and checked without panics,
//! and an accepted one names its PKGBUILD by a plain relative path.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = onramp::worker::catalog::parse_entry(data, "hello", "fuzz") {
        assert!(!e.pkgbuild.is_empty() && !e.pkgbuild.starts_with('/'));
        assert!(!e.pkgbuild.split('/').any(|c| c == ".." || c.is_empty()));
        assert_eq!(e.pkgbuild_sha256.len(), 64);
    }
});
