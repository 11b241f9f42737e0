//! `logvault-cluster`'s integration tests (one binary: each test binary links DataFusion and
//! Ballista): the query API's distributed path on an in-process cluster (`serve`), and the
//! binary as a cluster of processes (`processes`).

#![allow(unreachable_pub, missing_docs)] // test code

mod common;
mod processes;
mod serve;
