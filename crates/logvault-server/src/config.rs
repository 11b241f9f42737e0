//! What a server is told: where to listen, and every bound it keeps.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::DistributedQueries;

/// The period of a background pass (`--alert-interval`, `--compact-interval` of `logvault
/// serve` and `logvault-cluster serve`): a duration longer than zero (`30s`, `5m`), or `off`
/// (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period(pub Option<Duration>);

impl std::str::FromStr for Period {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        let every = logvault::control::parse_duration(text)?;
        match every.to_std() {
            Ok(d) if !d.is_zero() => Ok(Self(Some(d))),
            _ => Err(format!(
                "the period {text:?} must be longer than zero (or `off`)"
            )),
        }
    }
}

/// The server's configuration. [`ServeConfig::default`] is what `logvault serve` uses unless
/// told otherwise.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The HTTP(S) listener.
    pub listen: SocketAddr,
    /// Serve plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// Allow plain HTTP on an address other than loopback.
    pub allow_remote_http: bool,
    /// The syslog (TCP) listener and the workspace its messages go to, if any.
    pub syslog: Option<SyslogConfig>,
    /// The bounds.
    pub limits: Limits,
    /// How long stored rows may wait in memory before they are written as segments when no
    /// more arrive (they are durable in the log from the acknowledgement on; this is when a
    /// query sees them without asking).
    pub flush_interval: Duration,
    /// How long a workspace's writer stays open without rows before it lets go of the log's
    /// lock (so that `logvault ingest` may write the workspace meanwhile).
    pub writer_idle: Duration,
    /// How long SIGTERM waits for in-flight requests before it closes their connections.
    pub drain: Duration,
    /// How often the alert scheduler evaluates the due log alert rules of every workspace
    /// (each rule runs at its own frequency; this is how often the scheduler looks). `None`
    /// turns the scheduler off (then `logvault alert run-due` does it).
    pub alert_interval: Option<Duration>,
    /// How often the small segments of every workspace's tables are merged in the background
    /// (`crate::compactor`; what `logvault table compact` does). `None` turns it off.
    pub compact_interval: Option<Duration>,
    /// Items per page of the management and Key Vault APIs' lists (more follow through
    /// `nextLink`).
    pub page_size: usize,
    /// Whether the queries of the query API are kept in their workspace's query history
    /// (`workspace query-history`; never while the workspace is linked for `Query`, never a
    /// support operator's, which go to the Lockbox audit).
    pub record_query_history: bool,
    /// Worker threads of the query API's own runtime (0: one per core). Queries run there, apart
    /// from ingestion (`logvault::QueryRuntime`).
    pub query_threads: usize,
    /// How much lower the query threads' CPU priority is than ingestion's (a nice increment,
    /// 0-19; Linux). 0 lets queries and ingestion compete as equals.
    pub query_priority: i32,
    /// Where queries that ask for it (`"distributed": true`) run: a distributed engine set by
    /// the binary that starts the server (`logvault-cluster serve`). `None` (what `logvault
    /// serve` has) answers such a query with 400 `DistributedQueriesUnavailable`.
    pub distributed: Option<Arc<dyn DistributedQueries>>,
    /// The memory allocator's figures for `/metrics` (`logvault_allocator_bytes`), given by the
    /// binary that chose the allocator (`logvault serve`: jemalloc's). `None`: no such gauge.
    pub allocator_stats: Option<crate::AllocatorStatsFn>,
    /// Sends a query that does not say `"distributed"` to [`Self::distributed`] when the
    /// segments it would read exceed this size (the catalog's statistics, before it runs).
    /// `None` (the default): only `"distributed": true` goes there.
    pub distribute_above: Option<DistributeAbove>,
}

/// The size above which a query goes to the distributed engine without asking
/// ([`ServeConfig::distribute_above`]): the rows or the stored bytes of every segment of the
/// tables it scans (filters not counted: an upper bound), either limit sufficing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DistributeAbove {
    /// More rows than this (`None`: no limit on rows).
    pub rows: Option<u64>,
    /// More stored bytes than this (`None`: no limit on bytes).
    pub bytes: Option<u64>,
}

impl DistributeAbove {
    /// Whether a query reading `size` goes to the distributed engine.
    pub fn exceeded_by(&self, size: &logvault::query::ScanSize) -> bool {
        self.rows.is_some_and(|max| size.rows > max)
            || self.bytes.is_some_and(|max| size.bytes > max)
    }
}

/// The syslog listener.
#[derive(Debug, Clone)]
pub struct SyslogConfig {
    /// Its address.
    pub listen: SocketAddr,
    /// The workspace whose `Syslog` table its messages go to.
    pub workspace: String,
    /// The table (default `Syslog`).
    pub table: String,
}

/// Bounds on what clients may make the server hold.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, as sent (compressed or not): 413 above it.
    pub max_body_bytes: usize,
    /// Largest request body once decompressed: 413 above it (a gzip bomb stops there).
    pub max_decoded_bytes: usize,
    /// Requests served at once; one more is refused with 503 and `Retry-After`.
    pub max_in_flight: usize,
    /// Queries run at once; one more is refused with 429 and `Retry-After`.
    pub max_queries: usize,
    /// Bytes of parsed rows queued for one workspace's writer; above it, 429 with
    /// `Retry-After`.
    pub max_queued_bytes_per_workspace: usize,
    /// Bytes of parsed rows queued for all writers together; above it, 503 with `Retry-After`.
    pub max_queued_bytes: usize,
    /// How long a request may take to arrive and be answered (queries have their own limit,
    /// below). 408 when a body is too slow.
    pub request_timeout: Duration,
    /// How long a client may take to send a request's headers (slow-loris).
    pub header_timeout: Duration,
    /// A query's default time limit (`Prefer: wait=N` changes it up to `max_query_time`).
    pub query_time: Duration,
    /// The longest time limit a query may ask for.
    pub max_query_time: Duration,
    /// Rows a query returns at most; the rest is cut and the result is partial.
    pub max_result_rows: usize,
    /// Bytes of a query's JSON result at most; the rest is cut and the result is partial.
    pub max_result_bytes: usize,
    /// Longest syslog message (octet-counted frames above it are refused and the connection
    /// closed).
    pub max_syslog_message: usize,
    /// Syslog connections open at once.
    pub max_syslog_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 << 20,
            max_decoded_bytes: 128 << 20,
            max_in_flight: 512,
            max_queries: 8,
            max_queued_bytes_per_workspace: 64 << 20,
            max_queued_bytes: 256 << 20,
            request_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            query_time: Duration::from_secs(180),
            max_query_time: Duration::from_secs(600),
            max_result_rows: 500_000,
            max_result_bytes: 64 << 20,
            max_syslog_message: 64 << 10,
            max_syslog_connections: 256,
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            plain_http: false,
            allow_remote_http: false,
            syslog: None,
            limits: Limits::default(),
            flush_interval: Duration::from_secs(1),
            writer_idle: Duration::from_secs(30),
            drain: Duration::from_secs(30),
            alert_interval: Some(Duration::from_secs(30)),
            compact_interval: Some(Duration::from_secs(60)),
            page_size: 100,
            record_query_history: true,
            query_threads: 0,
            query_priority: 10,
            distributed: None,
            allocator_stats: None,
            distribute_above: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logvault::query::ScanSize;

    #[test]
    fn either_limit_sends_a_query_to_the_distributed_engine() {
        let size = ScanSize {
            rows: 1_000,
            bytes: 50_000,
            segments: 2,
        };
        let at = |rows, bytes| DistributeAbove { rows, bytes }.exceeded_by(&size);
        assert!(!at(None, None), "no limit: never");
        assert!(at(Some(999), None));
        assert!(!at(Some(1_000), None), "at the limit: not over it");
        assert!(at(None, Some(49_999)));
        assert!(!at(None, Some(50_000)));
        assert!(at(Some(10_000), Some(10)), "bytes over, rows under");
        assert!(!at(Some(10_000), Some(100_000)));
    }

    #[test]
    fn a_period_is_a_duration_or_off_and_never_zero() {
        assert_eq!(
            "90s".parse::<Period>().unwrap(),
            Period(Some(Duration::from_secs(90)))
        );
        assert_eq!("OFF".parse::<Period>().unwrap(), Period(None));
        let zero = "0s".parse::<Period>().unwrap_err();
        assert!(zero.contains("\"0s\" must be longer than zero"), "{zero}");
        assert!("0m".parse::<Period>().is_err());
        assert!("soon".parse::<Period>().is_err());
    }
}
