//! `logvault-cluster`'s integration tests (one binary: each test binary links DataFusion and
//! Ballista): the query API's distributed path on an in-process cluster (`serve`), and the
//! binary as a cluster of processes over local files (`processes`) and over Azurite
//! (`azurite`, with revocation at the vault).

#![allow(unreachable_pub, missing_docs)] // test code

mod azurite;
mod common;
mod processes;
mod serve;
