//! `logvault-bench http-load`'s command line, turned into [`LoadOptions`].

use std::path::PathBuf;

use super::LoadOptions;
use super::client::{Protocol, Shape};
use super::server::CaseServer;

/// `logvault serve` under load: ingestion over HTTPS from 1, 8 and 64 connections (Logs
/// Ingestion API, OTLP/JSON) while query clients run, against file ingestion in the same run.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpLoadArgs {
    /// Concurrent connections, one case each.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub connections: Vec<usize>,
    /// Protocols.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "logs-api,otlp-json"
    )]
    pub protocols: Vec<Protocol>,
    /// Seconds of load per case.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Query clients beside the senders.
    #[arg(long, default_value_t = 4)]
    pub query_clients: usize,
    /// Rows per request (the `rows` shape).
    #[arg(long, default_value_t = 500)]
    pub rows_per_request: usize,
    /// Request shapes, one case each: `rows` (`--rows-per-request` rows, uncompressed) and
    /// `sdk` (what the clients' SDKs send: the Azure SDK's gzip chunks of up to 1 MiB with a
    /// request id, the OpenTelemetry SDK's batches of 512 records).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "rows")]
    pub shapes: Vec<Shape>,
    /// Rows of the file ingestion baseline.
    #[arg(long, default_value_t = 1_000_000)]
    pub baseline_rows: u64,
    /// Runs of the file ingestion baseline; the median's rows/s is the one compared with
    /// (a single run of 1M rows varied by half on one machine).
    #[arg(long, default_value_t = 3)]
    pub baseline_repeats: usize,
    /// The server child's options (`--compact-secs`, `--query-priority`,
    /// `--storage-latency-ms`).
    #[command(flatten)]
    pub server: CaseServer,
    /// Rows per second the senders send together, paced (a steady stream rather than as
    /// fast as the server acknowledges).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Where http-load.md and http-load.json go.
    #[arg(long, default_value = "docs/bench")]
    pub out: PathBuf,
    /// Cache and scratch directory (as for `run`).
    #[arg(long)]
    pub work: Option<PathBuf>,
}

impl HttpLoadArgs {
    /// The run's options, with `work` the scratch directory claimed for it.
    pub fn into_options(self, work: PathBuf) -> LoadOptions {
        LoadOptions {
            connections: self.connections,
            protocols: self.protocols,
            seconds: self.seconds,
            query_clients: self.query_clients,
            rows_per_request: self.rows_per_request,
            shapes: self.shapes,
            pool_rows: 200_000,
            baseline_rows: self.baseline_rows,
            baseline_repeats: self.baseline_repeats,
            server: self.server,
            rate: self.rate,
            work,
            out: self.out,
        }
    }
}
