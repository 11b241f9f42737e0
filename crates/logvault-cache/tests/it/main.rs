//! Integration tests of the hot cache over a real store and the real local vault: privacy,
//! purge, reload and admission races. Queries through the cache are the query crate's tests
//! (`crates/logvault-query/tests/it/cache_*.rs`).

// clippy.toml allows unwrap in tests, but not in the test support functions of `common`.
#![allow(clippy::unwrap_used)]

mod common;
mod merge;
mod privacy;
mod purge;
mod turns;
