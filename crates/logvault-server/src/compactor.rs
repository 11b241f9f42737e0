//! Background compaction: every [`ServeConfig::compact_interval`], the small segments of every
//! workspace's tables are merged ([`logvault::Engine::compact_all`]), as `logvault table
//! compact` merges them.
//!
//! A server makes small segments all the time: a query first stores what the workspace's writer
//! holds (so that it sees every acknowledged row), and rows that trickle in are stored after
//! `flush_interval` without more (at the latest after five). Without merging, a server with a
//! dashboard querying every few seconds, or a shipper sending a line now and then, adds
//! thousands of segments a day to every table, and each costs every later query a file to open
//! and a footer to decrypt. The pass runs on the query runtime, whose threads have a lower CPU
//! priority than ingestion's: under a load that takes every core, compaction waits rather than
//! slowing what is acknowledged.
//!
//! [`ServeConfig::compact_interval`]: crate::ServeConfig::compact_interval

use std::time::Duration;

use logvault::EngineError;
use logvault::store::{CompactionOptions, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::http::Shared;

/// Starts the compactor: a pass every `every` until `stop` turns true. Merged segments are
/// counted in `logvault_segments_compacted_total`.
pub(crate) fn spawn(
    state: Shared,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let runtime = state.query_runtime.clone();
    runtime.spawn(async move {
        let mut skipped = 0;
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            skipped = pass(&state, skipped).await;
        }
    })
}

/// One pass; returns the groups it left alone under revoked keys, so that the next pass tells
/// only a change of it.
async fn pass(state: &Shared, skipped_before: usize) -> usize {
    // The key monitor's retention pass collects replaced segments and old manifest versions of
    // every table every minute: not listed twice here.
    let options = CompactionOptions {
        collect: false,
        ..CompactionOptions::default()
    };
    match state.engine.compact_all(options).await {
        Ok(pass) => {
            for (workspace, r) in &pass.tables {
                tracing::info!(
                    workspace = %workspace,
                    table = %r.table,
                    merged = r.merged,
                    before = r.segments_before,
                    after = r.segments_after,
                    "compacted small segments"
                );
                state.metrics.add(
                    "logvault_segments_compacted_total",
                    vec![("workspace", workspace.clone())],
                    r.merged as f64,
                );
            }
            for (workspace, error) in &pass.failed {
                tracing::warn!(workspace = %workspace, error = %error, "background compaction failed");
            }
            if pass.skipped_groups != skipped_before {
                tracing::info!(
                    groups = pass.skipped_groups,
                    "background compaction leaves the segments of revoked keys as they are"
                );
            }
            pass.skipped_groups
        }
        Err(EngineError::Store(StoreError::LeaseHeld { holder, .. })) => {
            tracing::debug!(holder = %holder, "compaction runs on another node");
            skipped_before
        }
        Err(e) => {
            tracing::warn!(error = %e, "background compaction failed");
            skipped_before
        }
    }
}
