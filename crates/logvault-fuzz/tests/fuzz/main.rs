//! The bounded fuzz run of CI: every target of `logvault-fuzz`, driven by proptest from the
//! seed corpora and structured mutations, each case under a watchdog (no hang) and with its
//! peak allocation measured (no unbounded allocation).
//!
//! `LOGVAULT_FUZZ_CASES=N` runs N cases per target instead of the default (longer runs outside
//! CI; figures in `docs/reliability.md`). Each test prints its counts on stderr
//! (`cargo test -p logvault-fuzz -- --nocapture`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod config;
mod control;
mod harness;
mod ingest;
mod vault;
mod wal;
