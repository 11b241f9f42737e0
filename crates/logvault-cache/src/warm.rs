//! Reload (R-F4): loading a workspace's hot window from storage again, in the background, with
//! its progress visible.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use logvault_store::{AccountId, SegmentLocation};
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::hot::Inner;

/// Where a reload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WarmState {
    /// Loading.
    Running,
    /// Every segment of the hot window was tried (see `failed`: segments that could not be
    /// read, or whose account key is unavailable).
    Done,
    /// The workspace's catalog could not be read; nothing was loaded.
    Failed,
    /// Stopped by a purge of the workspace or a newer reload.
    Cancelled,
}

/// The progress of a reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmProgress {
    /// The workspace.
    pub workspace: String,
    /// Where it is.
    pub state: WarmState,
    /// Segments in the hot window.
    pub segments_total: u64,
    /// Segments done (loaded or failed).
    pub segments_done: u64,
    /// Bytes of the segments in the hot window (as stored).
    pub bytes_total: u64,
    /// Bytes of the segments done.
    pub bytes_done: u64,
    /// Segments also decoded into the memory tier.
    pub memory_segments: u64,
    /// Segments that could not be loaded.
    pub failed: u64,
    /// The last failure, naming the segment or account.
    pub last_error: Option<String>,
    /// When the reload started.
    pub started: DateTime<Utc>,
    /// When it ended.
    pub finished: Option<DateTime<Utc>>,
}

impl WarmProgress {
    fn new(workspace: &str, now: DateTime<Utc>) -> Self {
        Self {
            workspace: workspace.to_owned(),
            state: WarmState::Running,
            segments_total: 0,
            segments_done: 0,
            bytes_total: 0,
            bytes_done: 0,
            memory_segments: 0,
            failed: 0,
            last_error: None,
            started: now,
            finished: None,
        }
    }
}

pub(crate) type SharedProgress = Arc<Mutex<WarmProgress>>;

fn update(p: &SharedProgress, f: impl FnOnce(&mut WarmProgress)) {
    f(&mut p.lock().unwrap_or_else(PoisonError::into_inner));
}

pub(crate) fn read(p: &SharedProgress) -> WarmProgress {
    p.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// A reload under way.
#[derive(Debug)]
pub struct WarmHandle {
    progress: SharedProgress,
    task: Option<JoinHandle<()>>,
}

impl WarmHandle {
    /// Where the reload is now.
    pub fn progress(&self) -> WarmProgress {
        read(&self.progress)
    }

    /// Waits for the reload to end and returns its final progress.
    pub async fn wait(mut self) -> WarmProgress {
        if let Some(task) = self.task.take() {
            // A cancelled task has already marked itself (or was marked by the purge).
            let _ = task.await;
        }
        read(&self.progress)
    }
}

/// A reload being tracked by the cache.
#[derive(Debug)]
pub(crate) struct WarmSlot {
    pub(crate) progress: SharedProgress,
    pub(crate) abort: tokio::task::AbortHandle,
}

impl WarmSlot {
    pub(crate) fn cancel(&self, now: DateTime<Utc>) {
        self.abort.abort();
        update(&self.progress, |p| {
            if p.state == WarmState::Running {
                p.state = WarmState::Cancelled;
                p.finished = Some(now);
            }
        });
    }
}

/// Starts the reload of `workspace` on the current tokio runtime.
pub(crate) fn start(inner: &Arc<Inner>, workspace: &str) -> (WarmHandle, WarmSlot) {
    let progress = Arc::new(Mutex::new(WarmProgress::new(workspace, inner.now())));
    let task = tokio::spawn(run(
        Arc::clone(inner),
        workspace.to_owned(),
        Arc::clone(&progress),
    ));
    let slot = WarmSlot {
        progress: Arc::clone(&progress),
        abort: task.abort_handle(),
    };
    (
        WarmHandle {
            progress,
            task: Some(task),
        },
        slot,
    )
}

/// The segments of the hot window, newest first: location, newest row, bytes.
async fn hot_segments(
    inner: &Inner,
    workspace: &str,
) -> Result<Vec<(SegmentLocation, DateTime<Utc>, u64)>, String> {
    let catalog = inner.store.catalog();
    let cutoff = inner.now() - inner.hot_window(workspace);
    let mut out = Vec::new();
    for table in catalog.tables(workspace).await.map_err(|e| e.to_string())? {
        let manifest = catalog
            .manifest(workspace, &table)
            .await
            .map_err(|e| e.to_string())?;
        for s in &manifest.segments {
            if s.max_time >= cutoff {
                out.push((manifest.location(s), s.max_time, s.bytes));
            }
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.1));
    Ok(out)
}

async fn run(inner: Arc<Inner>, workspace: String, progress: SharedProgress) {
    let segments = match hot_segments(&inner, &workspace).await {
        Ok(s) => s,
        Err(e) => {
            update(&progress, |p| {
                p.state = WarmState::Failed;
                p.last_error = Some(format!("workspace {workspace}: {e}"));
                p.finished = Some(inner.now());
            });
            return;
        }
    };
    update(&progress, |p| {
        p.segments_total = segments.len() as u64;
        p.bytes_total = segments.iter().map(|s| s.2).sum();
    });
    let mut budget = if inner.config.warm_memory {
        inner.memory.capacity()
    } else {
        0
    };
    // The key lifecycle calls a reload when the key is back: each account's key is unwrapped
    // (and cached) once. Segments of an account whose key is still unavailable are skipped, so
    // the cache never takes in data of a workspace whose key is revoked.
    let mut keys: HashMap<AccountId, Result<(), String>> = HashMap::new();
    for (loc, max_time, bytes) in segments {
        inner.ctx.hints.insert(loc.clone(), max_time);
        if !keys.contains_key(&loc.account) {
            let ok = inner
                .store
                .keyring()
                .aek(&loc.account)
                .await
                .map(|_| ())
                .map_err(|e| format!("storage account {}: {e}", loc.account));
            keys.insert(loc.account.clone(), ok);
        }
        let outcome = match keys.get(&loc.account) {
            Some(Err(e)) => Err(e.clone()),
            _ if budget > 0 => inner
                .load_memory(&loc, Some(max_time))
                .await
                .map(|seg| {
                    budget = budget.saturating_sub(seg.bytes() as u64);
                    true
                })
                .map_err(|e| e.to_string()),
            _ => inner
                .load_disk(&loc, None)
                .await
                .map(|()| false)
                .map_err(|e| e.to_string()),
        };
        update(&progress, |p| {
            match outcome {
                Ok(in_memory) => p.memory_segments += u64::from(in_memory),
                Err(e) => {
                    p.failed += 1;
                    p.last_error = Some(e);
                }
            }
            p.segments_done += 1;
            p.bytes_done += bytes;
        });
    }
    update(&progress, |p| {
        p.state = WarmState::Done;
        p.finished = Some(inner.now());
    });
}
