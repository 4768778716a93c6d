//! The durable record of a parallel transfer: which byte ranges of the
//! `.part` file are known good, and the sha256 state over its prefix.
//!
//! Written atomically about once a second, always *after* the data it
//! claims was synced, so on resume only claimed ranges are trusted. A
//! `check` field (sha256 of the rest) catches a damaged sidecar, which is
//! then ignored (the transfer restarts; nothing wrong is ever trusted).

use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const VERSION: u32 = 1;

/// Sorted, merged, half-open byte ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranges(pub Vec<(u64, u64)>);

impl Ranges {
    pub fn insert(&mut self, a: u64, b: u64) {
        if a >= b {
            return;
        }
        let v = &mut self.0;
        let i = v.partition_point(|r| r.1 < a);
        let mut j = i;
        let (mut lo, mut hi) = (a, b);
        while j < v.len() && v[j].0 <= hi {
            lo = lo.min(v[j].0);
            hi = hi.max(v[j].1);
            j += 1;
        }
        v.splice(i..j, [(lo, hi)]);
    }

    /// What `insert` keeps true: each range non-empty and within
    /// [0, size), sorted, apart from the next. A sidecar that says otherwise
    /// is not trusted.
    pub fn valid(&self, size: u64) -> bool {
        self.0.iter().all(|r| r.0 < r.1 && r.1 <= size)
            && self.0.windows(2).all(|w| w[0].1 < w[1].0)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|r| r.1 - r.0).sum()
    }

    /// End of the contiguous run that starts at 0.
    pub fn prefix(&self) -> u64 {
        match self.0.first() {
            Some(&(0, e)) => e,
            _ => 0,
        }
    }

    /// The gaps in [0, size).
    pub fn missing(&self, size: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = 0;
        for &(a, b) in &self.0 {
            if a > at {
                out.push((at, a.min(size)));
            }
            at = at.max(b);
        }
        if at < size {
            out.push((at, size));
        }
        out
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    pub version: u32,
    pub url: String,
    pub size: u64,
    pub sha256: String,
    /// ETag or Last-Modified of the bytes we have, for If-Range.
    pub validator: Option<String>,
    pub ranges: Ranges,
    /// Bytes [0, hashed) are in `hash_state` (sha2's serialized state, hex).
    pub hashed: u64,
    pub hash_state: Option<String>,
    pub check: String,
}

impl Sidecar {
    fn body_sum(&self) -> String {
        let mut c = self.clone();
        c.check = String::new();
        fsutil::sha256_bytes(serde_json::to_string(&c).unwrap_or_default().as_bytes())
    }

    pub fn save(&mut self, path: &Path) -> crate::error::Result<()> {
        self.check = self.body_sum();
        let data = serde_json::to_vec(self)
            .map_err(|e| crate::error::Error::new(crate::error::Code::Internal, e.to_string()))?;
        fsutil::write_atomic(path, &data, 0o644)
    }

    /// The sidecar at `path` if it is intact and describes this transfer.
    pub fn load(path: &Path, url: &str, size: u64, sha256: &str) -> Option<Sidecar> {
        Self::from_bytes(&std::fs::read(path).ok()?, url, size, sha256)
    }

    /// `load` from bytes already read: a sidecar a damaged or hostile disk
    /// produced must parse to `None`, never panic.
    pub fn from_bytes(bytes: &[u8], url: &str, size: u64, sha256: &str) -> Option<Sidecar> {
        let s: Sidecar = serde_json::from_slice(bytes).ok()?;
        (s.version == VERSION
            && s.check == s.body_sum()
            && s.url == url
            && s.size == size
            && s.sha256 == sha256
            && s.ranges.valid(size)
            && s.hashed <= size)
            .then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_gaps() {
        let mut r = Ranges::default();
        r.insert(10, 20);
        r.insert(30, 40);
        r.insert(0, 5);
        assert_eq!(r.missing(50), vec![(5, 10), (20, 30), (40, 50)]);
        r.insert(5, 30);
        assert_eq!(r.0, vec![(0, 40)]);
        assert_eq!(r.prefix(), 40);
        r.insert(45, 50);
        r.insert(38, 46);
        assert_eq!(r.0, vec![(0, 50)]);
        assert_eq!(r.total(), 50);
        assert!(r.missing(50).is_empty());
    }

    #[test]
    fn damaged_sidecar_is_ignored() {
        let d = std::env::temp_dir().join(format!("onramp-sidecar-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("x.json");
        let mut s = Sidecar {
            version: VERSION,
            url: "u".into(),
            size: 9,
            sha256: "h".into(),
            validator: None,
            ranges: Ranges(vec![(0, 4)]),
            hashed: 0,
            hash_state: None,
            check: String::new(),
        };
        s.save(&p).unwrap();
        assert!(Sidecar::load(&p, "u", 9, "h").is_some());
        assert!(Sidecar::load(&p, "other", 9, "h").is_none());
        // Checksummed but impossible ranges are not trusted either.
        for bad in [
            vec![(4, 2)],
            vec![(0, 4), (2, 6)],
            vec![(5, 6), (0, 2)],
            vec![(0, 10)],
        ] {
            s.ranges = Ranges(bad);
            s.save(&p).unwrap();
            assert!(Sidecar::load(&p, "u", 9, "h").is_none());
        }
        s.ranges = Ranges(vec![(0, 4)]);
        s.save(&p).unwrap();
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("[0,4]", "[0,9]");
        std::fs::write(&p, text).unwrap();
        assert!(Sidecar::load(&p, "u", 9, "h").is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
