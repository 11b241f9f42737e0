//! Integration tests of the encrypted store (one binary, so DataFusion is linked once).

// clippy.toml allows unwrap in tests, but not in the test support functions of `common`.
#![allow(clippy::unwrap_used)]

mod catalog;
mod common;
mod compaction;
mod datafusion_read;
mod double;
mod integrity;
mod privacy;
mod retention;
mod rotation;
mod segments;
mod streaming;
mod tamper;
