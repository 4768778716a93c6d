//! A manifest is read strictly: any bytes give a manifest or an error,
//! never a panic, and what is accepted is consistent (ids unique, no cycle).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = onramp::manifest::parse(data) {
        let mut ids: Vec<&str> = m.components.iter().map(|c| c.id.as_str()).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate ids accepted");
        for c in &m.components {
            if let Some(v) = &c.version {
                assert!(
                    !v.contains('/') && v != ".." && v != ".",
                    "version {v:?} accepted"
                );
            }
        }
    }
});
