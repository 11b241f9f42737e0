//! The server side of the HTTP load benchmark: `logvault-bench serve-case` opens a new home
//! under a customer key, makes a data collection rule and two tokens, serves it over HTTPS on a
//! free loopback port, prints how to reach it as one JSON line, and serves until its standard
//! input closes. Then it stops gracefully and prints its peak memory and CPU time (measured from
//! the moment it accepted connections), so that the load generator's own memory is not counted.

use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use logvault_server::{DataFlow, Role, RuleSpec, RuleStore, ServeConfig, TokenService};
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::ingest::LOG_TABLE;
use crate::remote::LatencyStore;
use crate::setup::{self, HomeTimings, Protection, WORKSPACE};
use crate::sys;

/// The query runtime's threads, and the memory tier's promotion thread.
const QUERY_THREADS: &str = logvault::QueryRuntime::THREAD_NAME;
const PROMOTION_THREAD: &str = logvault::cache::PROMOTION_THREAD_NAME;

/// The stream the benchmark's rule takes.
pub const STREAM: &str = "Custom-AppLogs";

/// What a started server child tells its parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The certificate to trust.
    pub cert: String,
    /// The data collection rule's immutable id.
    pub rule: String,
    /// A token with `Monitoring Metrics Publisher` on the workspace.
    pub publisher: String,
    /// A token with `Log Analytics Reader` on the workspace.
    pub reader: String,
    /// The workspace's customer id (the query API's path).
    pub workspace_id: String,
}

/// How a case's server runs: `http-load`'s options for it, handed to the `serve-case` child.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct CaseServer {
    /// The server's background compaction period in seconds (0: off; 60 is `logvault
    /// serve`'s default).
    #[arg(long, default_value_t = 60)]
    pub compact_secs: u64,
    /// How much lower the server's query threads' CPU priority is than ingestion's (nice
    /// steps, 0-19; `logvault serve --query-priority`, whose default is 10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub query_priority: i32,
    /// Milliseconds every request to the server's storage waits (a remote-like object store:
    /// the home's segments and catalog behind `LatencyStore`; 0: local files as they are).
    #[arg(long, default_value_t = 0)]
    pub storage_latency_ms: u64,
}

/// What a server child measured once stopped.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stopped {
    /// Peak resident set size while serving, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Whether the peak could be reset after set-up (else it includes set-up).
    pub peak_reset: bool,
    /// CPU seconds (all threads) used while serving.
    pub cpu_secs: Option<f64>,
    /// CPU seconds of that used by the query runtime's threads (`logvault-query`), and by the
    /// memory tier's promotion thread (`logvault-promote`), while serving (read before the
    /// shutdown, which ends the query runtime's threads).
    #[serde(default)]
    pub query_cpu_secs: Option<f64>,
    /// See `query_cpu_secs`.
    #[serde(default)]
    pub promotion_cpu_secs: Option<f64>,
    /// Segments of the workspace's tables once stopped (what queries then open).
    #[serde(default)]
    pub segments: Option<usize>,
    /// Segments queries found in the memory tier, and those they did not.
    #[serde(default)]
    pub memory_hits: Option<(u64, u64)>,
    /// Merged segments the memory tier built from the hot segments they replaced.
    #[serde(default)]
    pub merges_in_memory: Option<u64>,
    /// Segments decoded into the memory tier (promotions).
    #[serde(default)]
    pub promotions: Option<u64>,
    /// Segments decoded for the memory tier that it did not keep (its admission policy).
    #[serde(default)]
    pub memory_refused: Option<u64>,
    /// Bytes the memory tier held at the end, and its bound.
    #[serde(default)]
    pub memory_tier_bytes: Option<(u64, u64)>,
}

/// Runs the child: serves `home` (created) until standard input closes.
///
/// # Errors
/// Set-up or start-up failures.
pub async fn serve_case(home: &Path, server: &CaseServer) -> anyhow::Result<()> {
    let timings = HomeTimings {
        key_check_secs: None,
    };
    let store: Option<Arc<dyn ObjectStore>> = if server.storage_latency_ms > 0 {
        Some(Arc::new(LatencyStore::over_dir(
            &home.join("objects-remote"),
            std::time::Duration::from_millis(server.storage_latency_ms),
        )?))
    } else {
        None
    };
    let engine = setup::open_home_with_store(home, timings, store).await?;
    setup::prepare_workspace(&engine, Protection::Customer).await?;
    let now = chrono::Utc::now();
    let rule = RuleStore::new(engine.home().root())
        .create(
            RuleSpec {
                name: "bench-rule".into(),
                workspace: WORKSPACE.into(),
                data_flows: vec![DataFlow {
                    stream: STREAM.into(),
                    table: LOG_TABLE.into(),
                    transform_kql: None,
                }],
            },
            now,
        )
        .context("creating the data collection rule")?;
    let tokens = TokenService::open(&engine).await?;
    let hours = chrono::Duration::hours(12);
    let publisher = tokens
        .issue(
            "bench-publisher",
            &[Role::Publisher],
            Some(WORKSPACE),
            now,
            hours,
        )?
        .token;
    let reader = tokens
        .issue("bench-reader", &[Role::Reader], Some(WORKSPACE), now, hours)?
        .token;
    let workspace_id = engine.control().get_workspace(WORKSPACE)?.customer_id;
    let server = logvault_server::start(
        engine.clone(),
        ServeConfig {
            listen: "127.0.0.1:0".parse()?,
            alert_interval: None,
            compact_interval: (server.compact_secs > 0)
                .then(|| std::time::Duration::from_secs(server.compact_secs)),
            query_priority: server.query_priority,
            ..ServeConfig::default()
        },
    )
    .await?;
    let started = Started {
        url: server.url().to_owned(),
        cert: server
            .cert()
            .context("the server serves no certificate")?
            .display()
            .to_string(),
        rule: rule.immutable_id,
        publisher,
        reader,
        workspace_id,
    };
    let peak_reset = sys::reset_peak_rss();
    let cache = engine.hot_cache().clone();
    let trace = crate::memtrace::start_with(&["tier", "tierLive", "promoting"], move || {
        let s = cache.status();
        vec![
            s.memory_bytes >> 10,
            s.memory_live_bytes >> 10,
            s.promotions_pending,
        ]
    });
    let cpu_before = sys::cpu_seconds();
    let query_before = sys::threads_cpu_seconds(QUERY_THREADS);
    let promotion_before = sys::threads_cpu_seconds(PROMOTION_THREAD);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::to_string(&started)?)?;
        out.flush()?;
    }
    // Serve until the parent closes our standard input.
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let mut stdin = std::io::stdin().lock();
        while stdin.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            line.clear();
        }
    })
    .await?;
    // Read before the shutdown, which stops the query runtime: its threads' times end with them.
    let since = |before: Option<std::collections::HashMap<u64, f64>>, prefix: &str| {
        before
            .zip(sys::threads_cpu_seconds(prefix))
            .map(|(before, now)| sys::threads_cpu_since(&before, &now))
    };
    let query_cpu_secs = since(query_before, QUERY_THREADS);
    let promotion_cpu_secs = since(promotion_before, PROMOTION_THREAD);
    server.shutdown().await;
    if let Some(trace) = trace {
        trace.finish()?;
    }
    let cpu_secs = match (cpu_before, sys::cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let segments = engine
        .tables(WORKSPACE)
        .await
        .ok()
        .map(|tables| tables.iter().map(|t| t.segments).sum());
    let status = engine.hot_cache().status();
    let cache = status.counters;
    let stopped = Stopped {
        peak_rss_bytes: sys::peak_rss_bytes(),
        peak_reset,
        cpu_secs,
        query_cpu_secs,
        promotion_cpu_secs,
        segments,
        memory_hits: Some((cache.memory_hits, cache.memory_misses)),
        merges_in_memory: Some(cache.merges_adopted),
        promotions: Some(cache.promotions),
        memory_refused: Some(cache.memory_refused),
        memory_tier_bytes: Some((status.memory_bytes, status.memory_capacity_bytes)),
    };
    writeln!(std::io::stdout(), "{}", serde_json::to_string(&stopped)?)?;
    Ok(())
}
