//! Integration tests of the hot cache over a real store and the real local vault (one binary,
//! so DataFusion is linked once).

// clippy.toml allows unwrap in tests, but not in the test support functions of `common`.
#![allow(clippy::unwrap_used)]

mod bounds;
mod common;
mod corrupt;
mod hits;
mod privacy;
mod purge;
