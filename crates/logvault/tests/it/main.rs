//! End-to-end tests of the engine: ingestion, queries and the key lifecycle together.
//! One test binary, so DataFusion is linked once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)] // test code

mod batches;
mod common;
mod disk;
mod durability;
mod keys;
mod lifecycle;
mod maintenance;
mod query;
mod reliability;
mod samples;
mod slt;
mod store_faults;
mod workspaces;
