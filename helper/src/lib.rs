//! The helper's work, as a library: the `onramp` binary (`main.rs`) parses
//! nothing itself and calls `cli::main`; the fuzz targets (`fuzz/`) call the
//! parsers directly. One module per concern, each saying what it owns.
//! Modules are listed by layer, bottom first: each uses only modules of its
//! own layer (without circles) or of a layer below, as `tests/layers.py`
//! checks.

// layer base: errors, output, signals, faults, the platform and its OS halves, JSON, signatures
pub mod error;
pub mod fault;
pub mod json;
pub mod out;
pub mod platform;
pub mod sign;
pub mod signal;
pub mod sys;

// layer files: durable writes, directories root may use, paths beneath the prefix
pub mod beneath;
pub mod fsutil;
pub mod named;
pub mod stamp;
pub mod trust;

// layer data: the manifest, the machine facts and the install state
pub mod machine;
pub mod manifest;
pub mod state;

// layer process: running other programs, bounded and contained
pub mod run;
pub mod sandbox;

// layer decide: probing the machine and deciding what an install does
pub mod capabilities;
pub mod freshness;
pub mod hardware;
pub mod plan;

// layer act: fetching, unpacking, building, starting, exposing, reporting, shipping
pub mod archive;
pub mod download;
pub mod events;
pub mod expose;
pub mod hubcache;
pub mod phase;
pub mod pkgbuild;
pub mod progress;
pub mod receipt;
pub mod service;
pub mod ship;
pub mod worker;

// layer cmd: one module per helper command
pub mod cmd;

// layer cli: finds the command and dispatches
pub mod cli;
