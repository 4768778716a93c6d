//! The PKGBUILD reader on any text: it answers or refuses, never panics or
//! hangs (libFuzzer's -timeout catches a hang), for two architectures.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for carch in ["x86_64", "aarch64"] {
        if let Ok(r) = onramp::pkgbuild::parse(text, carch) {
            let _ = onramp::pkgbuild::srcinfo(&r, None);
            let _ = onramp::pkgbuild::Meta::from_recipe(&r, carch);
        }
    }
});
