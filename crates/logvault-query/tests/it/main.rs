//! Integration tests of the query engine: its SQL dialect and helpers, and queries read
//! through the hot cache (its memory source and disk tier) over a real store and the real local
//! vault. One binary, so DataFusion is linked once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)] // test code

mod cache_bounds;
mod cache_corrupt;
mod cache_hits;
mod cache_purge;
mod common;
mod dictionary;
mod filters;
mod grouping;
mod joins;
mod needles;
mod read_caches;
mod sql;
