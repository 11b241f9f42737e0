//! The logvault benchmark harness: logvault beside plaintext Parquet and DuckDB, in one run.
//!
//! - [`generator`] produces synthetic logs with a realistic shape, deterministically from a seed,
//!   streaming in bounded memory, as Arrow batches or NDJSON, CSV and plaintext Parquet files.
//! - [`ingest`]: the same file through logvault's parser into plaintext Parquet (the baseline)
//!   and through the engine under the service key, a customer key and double encryption, each
//!   case in a child process for its own peak memory and CPU time; [`cli_ingest`] the same file
//!   through the `logvault` binary (`logvault ingest`, the path users take), and
//!   [`duckdb`] DuckDB's conversion of it to zstd Parquet (one thread and all threads).
//! - [`queries`]: the log query suite, cold and warm, on DataFusion over plaintext Parquet (the
//!   baseline) and on logvault workspaces; [`duckdb`] runs it on DuckDB (plaintext and encrypted
//!   Parquet, two releases); `interleave` runs each query on every system in turn, in rounds;
//!   [`answers`] checks that every system gave the same answer.
//! - [`distributed`]: the suite on one node against a Ballista cluster of this machine.
//! - [`keyops`]: key rotation at several data sizes, revocation and restore latency.
//! - [`report`] and [`chart`]: the markdown page, the JSON and the SVG chart; [`stats`] the
//!   medians and ratios; [`sys`] the machine description and `/proc` readings; [`setup`] the
//!   logvault homes; [`run`] ties it together.

pub mod answers;
pub mod chart;
pub mod cli_ingest;
pub mod concurrency;
pub mod decode;
pub mod distributed;
pub mod duckdb;
pub mod generator;
pub mod http_load;
pub mod ingest;
mod interleave;
pub mod keyops;
pub mod kql_twins;
pub mod memtrace;
pub mod queries;
pub mod remote;
pub mod report;
pub mod run;
pub mod setup;
pub mod stats;
pub mod sys;
