//! Ingestion: parsers, batcher, write-ahead log, crash and replay.
//! One test binary per crate: each links its dependencies once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)] // test code

mod batcher;
mod crash;
mod parse;
mod sample_data;
mod wal;
mod wal_request_keys;
