//! The logvault benchmark harness.
//!
//! [`generator`] produces synthetic logs with a realistic shape, deterministically from a seed,
//! streaming in bounded memory, as Arrow batches or NDJSON, CSV and plaintext Parquet files.

pub mod generator;
