//! `logvault serve`: one engine behind HTTP, for the clients people already run.
//!
//! - Queries: the Log Analytics query API (`/v1/workspaces/{id}/query`, `/v1/$batch`), KQL by
//!   default and SQL as an extension, results streamed from DataFusion ([`query`]).
//! - Ingestion: the Azure Logs Ingestion API with data collection rules ([`dcr`], with
//!   `transformKql` run by the KQL engine), OTLP/HTTP logs, Elasticsearch `_bulk`, and syslog
//!   over TCP ([`ingest`]); every path acknowledges only what the workspace's write-ahead log
//!   has fsynced, through one writer per workspace ([`hub`]), and is gated by the key.
//! - Management: Azure Resource Manager's Microsoft.OperationalInsights (clusters, workspaces,
//!   links, saved searches, tables, linked storage) with long-running operations and paging,
//!   Microsoft.KeyVault vaults and access policies, role assignments, Microsoft.Insights data
//!   collection rules ([`mgmt`]); and the Key Vault keys API with its 401 challenge
//!   ([`keyvault`]). Both call the library operations the CLI calls.
//! - Security: TLS with the home's certificate ([`tls`]), bearer tokens signed by the home's
//!   token key ([`tokens`]) with Azure's roles ([`roles`]), checked on every call.
//! - The web page: `GET /`, embedded HTML, CSS and JavaScript over the same API, with a
//!   one-time sign-in link and a session cookie ([`web`]); `GET /status` for keys and health.
//! - Operations: `/health`, Prometheus `/metrics` ([`metrics`]), request logs with request ids,
//!   bounds on bodies, time, requests and queued rows (429/503 with `Retry-After`), the key
//!   monitor running inside, and a graceful stop ([`RunningServer::shutdown`]).
//! - Distributed queries: `"distributed": true` sends a query's plan to the engine its
//!   embedder set ([`DistributedQueries`], `ServeConfig::distributed`); none by default.
//! - Log alerts: the scheduler that evaluates the due rules of every workspace while the server
//!   runs, and the notifier that delivers what fires ([`ActionNotifier`], also the CLI's).
//!
//! The HTTP contract is in `docs/server.md`. This crate never prints: the `logvault` binary
//! prints what [`start`] returns and installs the tracing subscriber its logs go to. Nothing
//! about keys, tokens or log data is logged: request logs name the route's pattern, the status,
//! the time taken and the token's id.

mod alerts;
mod compactor;
mod config;
mod connection;
mod dcr;
mod distributed;
mod endpoint;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod hub;
mod ingest;
mod keyvault;
mod listener;
mod metrics;
mod mgmt;
mod query;
mod roles;
mod signals;
mod state;
mod tls;
mod tokens;
mod transform;
mod web;

pub use alerts::ActionNotifier;
pub use config::{DistributeAbove, Limits, Period, ServeConfig, SyslogConfig};
pub use dcr::{DataCollectionRule, DataFlow, RuleSpec, RuleStore};
pub use distributed::DistributedQueries;
pub use endpoint::{DEFAULT_URL, served_url, served_vault_uri};
pub use error::ServerError;
pub use http::routes::{Access, Route, routes};
pub use listener::{RunningServer, start};
pub use metrics::{AllocatorStats, AllocatorStatsFn, Metrics};
pub use roles::{Permission, Role};
pub use signals::ShutdownSignals;
pub use tls::cert_path;
pub use tokens::{IssuedToken, Principal, TokenError, TokenRecord, TokenService};

/// The table OTLP logs go to unless a header or a rule names another.
pub const OTLP_DEFAULT_TABLE: &str = ingest::otlp::DEFAULT_TABLE;
