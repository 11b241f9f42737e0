//! The control plane: clusters, workspaces, links and their rules.
//! One test binary per crate: each links its dependencies once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)] // test code

mod clusters;
mod common;
mod invariants;
mod workspaces;
