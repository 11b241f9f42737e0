//! The local key vault: keys, permissions, storage and the audit log.
//! One test binary per crate: each links its dependencies once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)] // test code

mod common;
mod key_lifecycle;
mod vault_operations;
mod vault_storage;
