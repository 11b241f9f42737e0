//! End-to-end tests of the engine: ingestion, queries and the key lifecycle together.
//! One test binary, so DataFusion is linked once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)] // test code

mod alerts;
mod batches;
mod bulk_load;
mod common;
mod declared;
mod disk;
mod durability;
mod keys;
mod lifecycle;
mod lockbox_search;
mod maintenance;
mod needle_index;
mod nodes;
mod pipeline;
mod query;
mod reliability;
mod samples;
mod saved;
mod segment_gc;
mod slt;
mod store_faults;
mod workspaces;
