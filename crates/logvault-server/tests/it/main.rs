//! The server's integration tests over real HTTP(S) (one binary: each test binary links
//! DataFusion): every endpoint, the security cases, revocation while the server runs, and the
//! real clients (Azure's Python SDKs, OpenTelemetry's exporters, rsyslog, the web page in
//! Chromium) when `.ci/run` installed them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)] // test code

mod alerts;
mod browser;
mod clients;
mod common;
mod compaction;
mod fuzz_http;
mod ingest;
mod keyvault;
mod management;
mod metrics;
mod query;
mod query_races;
mod remote_engine;
mod remote_vault;
mod revocation;
mod routes;
mod security;
mod seed;
mod slow_clients;
mod web;
