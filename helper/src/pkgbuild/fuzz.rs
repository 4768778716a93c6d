//! A mutation fuzzer for the recipe reader that runs on a stable toolchain
//! (cargo-fuzz needs nightly): the corpus recipes, mutated with byte flips,
//! shell tokens spliced in, cut and duplicated ranges, go through `parse`,
//! `srcinfo` and `Meta`. It fails on a panic or when one input takes more
//! than a few seconds (a hang), and prints that input.

use super::{Meta, parse, srcinfo};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKENS: &[&str] = &[
    "$(", "${", "}", "'", "\"", "(", ")", "{", "\\\n", "<<", "#", "=", "+=", "[[", "]]", "if ",
    " then ", "fi", ";", "\n", "$", "${x//", "${#", ":-", "%%", "{1..", "..}", "\\", "`", "[@]",
    "package_", "() {", "declare ", "local ", "$'", "&&", "||", " ", "\t", "_x86_64",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                v.splice(at..at, t.iter().copied());
            }
            2 => {
                let end = (at + rng.below(16)).min(v.len());
                v.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(32)).min(v.len());
                let dup: Vec<u8> = v[at..end].to_vec();
                v.splice(at..at, dup);
            }
            _ => v.truncate(at),
        }
    }
    v
}

fn exercise(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    for carch in ["x86_64", "aarch64"] {
        if let Ok(r) = parse(&text, carch) {
            let _ = srcinfo(&r, None);
            let _ = Meta::from_recipe(&r, carch);
        }
    }
}

#[test]
fn mutated_recipes_never_panic_or_hang() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/pkgbuild/corpus");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| std::fs::read(e.path().join("PKGBUILD")).ok())
                .collect()
        })
        .unwrap_or_default();
    seeds.sort();
    assert!(seeds.len() >= 100, "corpus not found at {}", dir.display());
    let iterations: usize = std::env::var("ONRAMP_FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let done = Arc::new(AtomicUsize::new(0));
    let current = Arc::new(Mutex::new(Vec::new()));
    let (d2, c2) = (Arc::clone(&done), Arc::clone(&current));
    let worker = std::thread::spawn(move || {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for i in 0..iterations {
            let seed = &seeds[i % seeds.len()];
            let input = mutate(&mut rng, seed);
            if let Ok(mut c) = c2.lock() {
                c.clone_from(&input);
            }
            exercise(&input);
            d2.store(i + 1, Ordering::SeqCst);
        }
    });
    let mut last = (0, Instant::now());
    while !worker.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
        let n = done.load(Ordering::SeqCst);
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(10) {
            let input = current.lock().map(|c| c.clone()).unwrap_or_default();
            panic!(
                "the reader hangs on input #{n}:\n{}",
                String::from_utf8_lossy(&input)
            );
        }
    }
    if worker.join().is_err() {
        let input = current.lock().map(|c| c.clone()).unwrap_or_default();
        panic!(
            "the reader panicked on:\n{}",
            String::from_utf8_lossy(&input)
        );
    }
    assert_eq!(done.load(Ordering::SeqCst), iterations);
}
