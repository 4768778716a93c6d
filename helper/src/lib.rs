//! The helper's work, as a library: the `onramp` binary (`main.rs`) parses
//! nothing itself and calls `cli::main`; the fuzz targets (`fuzz/`) call the
//! parsers directly. One module per concern, each saying what it owns.

pub mod archive;
pub mod beneath;
pub mod capabilities;
pub mod cli;
pub mod cmd;
pub mod dirfd;
pub mod download;
pub mod error;
pub mod events;
pub mod expose;
pub mod fault;
pub mod freshness;
pub mod fsutil;
pub mod hardware;
pub mod json;
pub mod machine;
pub mod manifest;
pub mod named;
pub mod out;
pub mod phase;
pub mod pkgbuild;
pub mod plan;
pub mod platform;
pub mod progress;
pub mod receipt;
pub mod run;
pub mod sandbox;
pub mod service;
pub mod sign;
pub mod signal;
pub mod stamp;
pub mod state;
pub mod trust;
pub mod worker;
