//! The `logvault` binary, run as users and scripts run it.
//! One test binary per crate: each links its dependencies once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)] // test code

mod cli_alerts;
mod cli_crash;
mod cli_crash_random;
mod cli_ingest;
mod cli_kill;
mod cli_kql;
mod cli_logs;
mod cli_saved;
mod cli_server;
mod cli_soak;
mod cli_tables;
mod cli_vault;
mod cli_workspace;
mod common;
mod served;
