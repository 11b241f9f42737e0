//! Global arguments and the command tree.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// logvault: log ingestion and query in which the customer holds the keys.
#[derive(Debug, Parser)]
#[command(name = "logvault", version, about)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Where the embedded default keeps everything (vault, catalog, storage, hot cache, WAL).
    #[arg(long, global = true, env = "LOGVAULT_HOME")]
    pub(crate) home: Option<PathBuf>,
    /// Output format: a table for people, JSON (one document on stdout) for scripts.
    #[arg(short, long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) output: OutputFormat,
    /// Run as if the clock read this time (RFC 3339), to exercise the 14- and 30-day rules.
    #[arg(long, global = true, value_parser = parse_time)]
    pub(crate) now: Option<DateTime<Utc>>,
    /// More logging on stderr (-v info, -vv debug); `LOGVAULT_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Human-readable table.
    Table,
    /// Exactly one JSON document on stdout.
    Json,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-01-01T00:00:00Z: {e}"))
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the home (vault master key, service key, layout) if it does not exist.
    Init(InitArgs),
    /// Run the customer-managed-key story on the bundled sample data, step by step.
    Demo(crate::cmd::demo::DemoArgs),
    /// Key vaults: create, show, list, update, access policies, outages, audit log.
    Vault(crate::cmd::vault::VaultArgs),
    /// Keys in a vault: create, rotate, show, list, enable, disable, delete, recover, purge.
    Key(crate::cmd::key::KeyArgs),
    /// Role assignments on a vault.
    Role(crate::cmd::role::RoleArgs),
    /// User-assigned managed identities.
    Identity(crate::cmd::identity::IdentityArgs),
    /// Dedicated clusters: create, update (key, identity, capacity), show, list, delete, wait.
    Cluster(crate::cmd::cluster::ClusterArgs),
    /// Workspaces: create, show, list, delete, recover, link, unlink.
    Workspace(crate::cmd::workspace::WorkspaceArgs),
    /// Ingest logs (JSON, CSV, text) from files or stdin into a workspace's table.
    Ingest(crate::cmd::ingest::IngestArgs),
    /// Query a workspace with SQL.
    Query(crate::cmd::query::QueryArgs),
    /// Key states of clusters, and rows, segments, drops and cache figures of workspaces.
    Status(crate::cmd::status::StatusArgs),
    /// Tables of a workspace: list, retention, compaction, purge.
    Table(crate::cmd::table::TableArgs),
    /// Saved queries and functions of a workspace: create, show, list, delete, export.
    SavedSearch(crate::cmd::saved_search::SavedSearchArgs),
    /// Storage accounts for saved queries and alerts: create, update, show, list, delete.
    StorageAccount(crate::cmd::storage_account::StorageAccountArgs),
    /// Log alert rules: create, show, list, delete, history, run-due.
    Alert(crate::cmd::alert::AlertArgs),
    /// Customer Lockbox: operators' access requests (create, approve, reject) and the audit log.
    Lockbox(crate::cmd::lockbox::LockboxArgs),
    /// Asynchronous search jobs writing their results to `<name>_SRCH`.
    SearchJob(crate::cmd::search_job::SearchJobArgs),
    /// Serve the home over HTTP(S): the query API, the ingestion APIs, syslog (docs/server.md).
    Serve(crate::cmd::serve::ServeArgs),
    /// Bearer tokens for `serve`: create, list, revoke.
    Token(crate::cmd::token::TokenArgs),
    /// Data collection rules of the Logs Ingestion API: create, show, list, delete.
    Dcr(crate::cmd::dcr::DcrArgs),
}

/// `logvault init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Where the new home's data rests: `az://container/prefix` (Azure Blob; credentials from the
    /// `AZURE_*` variables), `s3://bucket/prefix` (`AWS_*`), `file:///path`. Default: local
    /// files in HOME/storage. Fixed once the home exists.
    #[arg(long, value_name = "URL")]
    pub(crate) storage_url: Option<String>,
}

/// Where a new resource goes (`cluster create`, `workspace create`); `local` when not given.
#[derive(Debug, Args)]
pub(crate) struct Placement {
    /// Region.
    #[arg(long)]
    pub(crate) region: Option<String>,
    /// Subscription.
    #[arg(long)]
    pub(crate) subscription: Option<String>,
    /// Resource group.
    #[arg(long)]
    pub(crate) resource_group: Option<String>,
}
