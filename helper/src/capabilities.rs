//! `capabilities.json` in the prefix: what is installed, at which version,
//! and the capabilities each component unlocks. Rewritten atomically from
//! the install state each time a component is done, so an app reading it
//! never sees a half-written file or a capability that is not installed.

use crate::error::Result;
use crate::state::{State, Status};
use serde::Serialize;
use std::path::Path;

pub const FILE: &str = "capabilities.json";

#[derive(Serialize)]
struct Doc<'a> {
    schema: u32,
    stack: &'a str,
    stack_version: &'a str,
    updated_at: String,
    capabilities: Vec<&'a str>,
    components: Vec<Entry<'a>>,
}

#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    kind: &'a str,
    version: Option<&'a str>,
    capabilities: Vec<&'a str>,
}

pub fn write(prefix: &Path, st: &State) -> Result<()> {
    let mut all: Vec<&str> = Vec::new();
    let components: Vec<Entry> = st
        .steps
        .iter()
        .filter(|s| s.status == Status::Done)
        .map(|s| {
            // What waits for its service is installed, not yet usable.
            let mut caps: Vec<&str> = s.capability.iter().map(String::as_str).collect();
            for c in &s.unlocked {
                if !caps.contains(&c.as_str()) {
                    caps.push(c);
                }
            }
            if st.awaiting_service.contains(&s.id) {
                caps.clear();
            }
            all.extend(caps.iter().copied());
            Entry {
                id: &s.id,
                kind: &s.kind,
                version: s.version.as_deref(),
                capabilities: caps,
            }
        })
        .collect();
    all.sort_unstable();
    all.dedup();
    let doc = Doc {
        schema: 1,
        stack: &st.stack,
        stack_version: &st.stack_version,
        updated_at: crate::fsutil::now_rfc3339(),
        capabilities: all,
        components,
    };
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    crate::fsutil::mkdirs(prefix)?;
    crate::fsutil::write_atomic(&prefix.join(FILE), &bytes, 0o644)
}
