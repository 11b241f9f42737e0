//! logvault as a library.
//!
//! This crate is the facade embedders use: it opens a logvault *home* (the directory where the
//! embedded default keeps its vault, control-plane state, storage, hot cache and write-ahead log)
//! and wires the layers below into one [`Engine`]: the local vault, the encrypted store, the
//! control plane, ingestion and queries, and the key lifecycle that gates them.
//!
//! It owns the wiring and the key lifecycle ([`keys`]), the one rule that spans every layer.
//! It must never know about terminals, command lines or HTTP (the `logvault` binary and the
//! server do).
//!
//! ```
//! # async fn demo() -> anyhow::Result<()> {
//! use logvault::{Engine, IngestOptions};
//! use logvault::control::WorkspaceSpec;
//!
//! let dir = tempfile::tempdir()?;
//! let engine = Engine::open(dir.path()).await?;
//! engine.control().create_workspace(WorkspaceSpec::new("prod-logs"))?;
//! let payload = "{\"TimeGenerated\":\"2026-01-01T00:00:00Z\",\"Level\":\"INFO\"}\n";
//! let options = IngestOptions::new(logvault::ingest::Format::JsonLines);
//! let report = engine
//!     .ingest("prod-logs", "AppLogs", payload.as_bytes(), &options, None)
//!     .await?;
//! assert_eq!(report.accepted, 1);
//! let session = engine.query_session("prod-logs").await?;
//! let batches = session.context().sql("SELECT Level FROM AppLogs").await?.collect().await?;
//! assert_eq!(batches[0].num_rows(), 1);
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

mod alerts;
mod artifacts;
mod counters;
mod engine;
mod error;
mod fsutil;
mod home;
mod hot;
mod ingesting;
mod ingestor;
pub mod keys;
mod kql;
mod linked_storage;
mod maintenance;
mod management;
mod nodes;
mod ports;
mod query_runtime;
mod querying;
mod requests;
mod saved;
mod search_jobs;
mod status;
pub mod tables;
mod vaults;
mod verify;

pub use alerts::{
    ALERT_DELIVERY_ATTEMPTS, ALERT_MAX_ROWS, AlertNotifier, AlertRunReport, AlertTarget,
};
pub use counters::WorkspaceCounters;
pub use engine::{Engine, EngineBuilder};
pub use error::EngineError;
pub use home::{Home, HomeConfig};
pub use ingesting::{IngestOptions, IngestProgress, IngestReport};
pub use ingestor::{Appended, AppendedRequests, Logged, RequestRows, WorkspaceIngestor};
pub use kql::KqlResult;
pub use linked_storage::LinkOutcome;
pub use logvault_write::LoadOptions;
pub use maintenance::{CompactionPass, TableInfo};
pub use nodes::{CONTROL_DOCUMENT, MAINTENANCE_LEASE, NodeConfig, NodeSync};
pub use query_runtime::QueryRuntime;
pub use requests::{REQUEST_WINDOW_AGE, REQUEST_WINDOW_KEYS};
pub use saved::{QUERY_HISTORY_LIMIT, QueryHistoryEntry};
pub use search_jobs::SearchJobSpec;
pub use status::{ClusterStatus, KeyCounters, Status, WorkspaceHotCache, WorkspaceStatus};
pub use tables::{DeclaredColumn, TableColumns};

pub use logvault_cache as cache;
pub use logvault_control as control;
pub use logvault_core as core;
pub use logvault_crypto as crypto;
pub use logvault_ingest as ingest;
pub use logvault_keyvault_client as keyvault_client;
pub use logvault_kms as kms;
pub use logvault_kql as kql_lang;
pub use logvault_query as query;
pub use logvault_store as store;
pub use logvault_write as write;
