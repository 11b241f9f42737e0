//! Fuzz targets of every parser of untrusted input that logvault has today (issue 25), for
//! development only.
//!
//! Each target takes bytes and checks the invariants of its parser: no panic, no hang (the
//! callers put a watchdog around it), no unbounded allocation (the callers measure the peak),
//! a clear error naming what is wrong, and never wrong rows. A broken invariant is a panic with
//! a message saying which, so the same functions serve:
//! - the bounded run in CI: `tests/` drives them with proptest, from the committed seed corpora
//!   (`corpus/`) and structured mutations of them ([`mutate`]);
//! - the coverage-guided drivers (`fuzz/afl/` at the top of the repository: AFL++ through
//!   cargo-afl on the stable toolchain), which feed them raw bytes.
//!
//! Targets whose input is a file that must authenticate under a key made in this process (the
//! write-ahead log) take a *mutation script* ([`mutate::Script`]) applied to a fixture built in
//! the process, so that a fuzzer explores damage to authentic files rather than only files that
//! fail at the first check.

// A fuzz target reports a broken invariant by panicking: that is how proptest and AFL++ see it.
#![allow(clippy::panic)]

pub mod config;
pub mod control;
pub mod ingest;
pub mod mutate;
pub mod vault;
pub mod wal;

/// Panics with `what` and the error when setting up a fixture fails (not an invariant of the
/// code under test: the machine could not make a temporary directory, say).
pub(crate) fn setup<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("fuzz fixture: {what}: {e}"),
    }
}
