//! One writer per workspace, fed by every client: the ingestion hub.
//!
//! Each workspace that receives rows gets a task that owns its [`WorkspaceIngestor`] (one
//! write-ahead log, one lock) and a bounded queue. Requests hand it their parsed batches and
//! wait for the answer; the task gathers what is queued into one group of the log (one fsync
//! acknowledges them all), answers each request as soon as the group is durable, then hands its
//! rows to the writer's encoding stage (`logvault_write`, a task of its own fed by a queue
//! bounded by `ENCODE_QUEUE_BYTES`), which encodes them into segments while this task logs the
//! next group; segments are stored when they fill, when rows have waited `flush_interval`
//! without more coming, or when a query asks (a query's flush goes past queued appends, and
//! flushes asked together are answered by one: see [`IngestHub::flush`]). Queued bytes are
//! bounded per workspace and in total: a request that would pass a bound is refused at once
//! (429 for its workspace, 503 for the server) with `Retry-After`, instead of holding memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use logvault::ingest::BatcherOptions;
use logvault::{Appended, AppendedRequests, Engine, EngineError, RequestRows, WorkspaceIngestor};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Most bytes (Arrow's, as the encoding stage counts them) gathered into one group of the log:
/// at most half the writer's encoding queue, so that a group is handed over while the one
/// before it is still being encoded. Groups of up to 16 MiB, twice that queue, each waited for
/// the queue to empty (a group larger than it passes alone), and logging stopped while segments
/// were encoded: from 64 connections the server acknowledged a quarter fewer rows a second than
/// from 8 (docs/bench/journal.md, "HTTP load").
const MAX_GROUP_BYTES: usize = 4 << 20;
const _: () = assert!(MAX_GROUP_BYTES <= logvault::write::ENCODE_QUEUE_BYTES / 2);
/// Most requests waiting in one workspace's queue.
const QUEUE_LEN: usize = 1024;
/// Rows may wait in memory at most this many flush intervals under a steady stream.
const MAX_AGE_INTERVALS: u32 = 5;

/// Why the hub did not take rows.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum HubError {
    /// The workspace's queue is full (429).
    #[error("workspace {workspace} is receiving more than it can store; retry after a second")]
    WorkspaceBusy {
        /// The workspace.
        workspace: String,
    },
    /// All queues together are full (503).
    #[error("the server is receiving more than it can store; retry after a second")]
    ServerBusy,
    /// The server is shutting down (503).
    #[error("the server is shutting down; retry against its next start")]
    Closed,
    /// The engine refused or failed.
    #[error("{0}")]
    Engine(Arc<EngineError>),
}

/// The bounds and timings of the hub.
#[derive(Debug, Clone)]
pub(crate) struct HubConfig {
    pub(crate) max_workspace_bytes: usize,
    pub(crate) max_total_bytes: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) writer_idle: Duration,
}

struct AppendJob {
    records: Vec<(String, RecordBatch)>,
    /// The request's idempotency key, if the client gave one.
    key: Option<String>,
    rows: u64,
    bytes: usize,
    reply: oneshot::Sender<Result<HubAnswer, HubError>>,
}

/// What became of one request's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HubAnswer {
    /// Acknowledged (durable) or dropped under a revoked key.
    pub(crate) appended: Appended,
    /// A request sent again: its rows were acknowledged at an earlier attempt and are not
    /// stored a second time.
    pub(crate) duplicate: bool,
}

type FlushReply = oneshot::Sender<Result<(), HubError>>;

struct Worker {
    tx: mpsc::Sender<AppendJob>,
    /// Flushes go past the appends queued before them (see [`IngestHub::flush`]).
    flushes: mpsc::Sender<FlushReply>,
    queued: Arc<AtomicUsize>,
}

/// The hub (see the module documentation).
pub(crate) struct IngestHub {
    engine: Engine,
    config: HubConfig,
    workers: std::sync::Mutex<HashMap<String, Worker>>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    total: Arc<AtomicUsize>,
    closed: AtomicBool,
}

impl std::fmt::Debug for IngestHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestHub")
            .field("queued_bytes", &self.total.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Gives back reserved queue bytes when dropped.
struct Reservation {
    bytes: usize,
    workspace: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.workspace.fetch_sub(self.bytes, Ordering::AcqRel);
        self.total.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl IngestHub {
    pub(crate) fn new(engine: Engine, config: HubConfig) -> Self {
        Self {
            engine,
            config,
            workers: std::sync::Mutex::new(HashMap::new()),
            tasks: std::sync::Mutex::new(Vec::new()),
            total: Arc::new(AtomicUsize::new(0)),
            closed: AtomicBool::new(false),
        }
    }

    /// Bytes queued for each workspace's writer now.
    pub(crate) fn queued(&self) -> Vec<(String, usize)> {
        let workers = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<(String, usize)> = workers
            .iter()
            .map(|(ws, w)| (ws.clone(), w.queued.load(Ordering::Relaxed)))
            .collect();
        out.sort();
        out
    }

    fn worker(
        &self,
        workspace: &str,
    ) -> Result<(mpsc::Sender<AppendJob>, Arc<AtomicUsize>), HubError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(HubError::Closed);
        }
        let mut workers = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(w) = workers.get(workspace)
            && !w.tx.is_closed()
        {
            return Ok((w.tx.clone(), w.queued.clone()));
        }
        let ingestor = self
            .engine
            .ingestor(workspace, BatcherOptions::default())
            .map_err(|e| HubError::Engine(Arc::new(e)))?;
        let (tx, rx) = mpsc::channel(QUEUE_LEN);
        let (flushes, flush_rx) = mpsc::channel(QUEUE_LEN);
        let queued = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(run_worker(ingestor, rx, flush_rx, self.config.clone()));
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(task);
        workers.insert(
            workspace.to_owned(),
            Worker {
                tx: tx.clone(),
                flushes,
                queued: queued.clone(),
            },
        );
        Ok((tx, queued))
    }

    /// Appends `records` to `workspace`: returns when they are acknowledged (fsynced) or
    /// dropped under a revoked key, or refused at once when the queues are full. A request
    /// whose idempotency `key` was acknowledged before is acknowledged again without storing
    /// its rows twice ([`logvault::WorkspaceIngestor::append_requests`]).
    pub(crate) async fn append(
        &self,
        workspace: &str,
        records: Vec<(String, RecordBatch)>,
        key: Option<String>,
    ) -> Result<HubAnswer, HubError> {
        let rows: u64 = records.iter().map(|(_, b)| b.num_rows() as u64).sum();
        let bytes: usize = records.iter().map(|(_, b)| b.get_array_memory_size()).sum();
        let (tx, queued) = self.worker(workspace)?;
        // Reserve the bytes: past a bound, refuse now rather than hold them.
        let before_ws = queued.fetch_add(bytes, Ordering::AcqRel);
        let before_total = self.total.fetch_add(bytes, Ordering::AcqRel);
        let reservation = Reservation {
            bytes,
            workspace: queued,
            total: self.total.clone(),
        };
        // One request alone may always pass (a bound smaller than a request is no bound).
        if before_ws > 0 && before_ws + bytes > self.config.max_workspace_bytes {
            return Err(HubError::WorkspaceBusy {
                workspace: workspace.to_owned(),
            });
        }
        if before_total > 0 && before_total + bytes > self.config.max_total_bytes {
            return Err(HubError::ServerBusy);
        }
        let (reply, answer) = oneshot::channel();
        let job = AppendJob {
            records,
            key,
            rows,
            bytes,
            reply,
        };
        tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => HubError::WorkspaceBusy {
                workspace: workspace.to_owned(),
            },
            mpsc::error::TrySendError::Closed(_) => HubError::Closed,
        })?;
        let result = answer.await.unwrap_or(Err(HubError::Closed));
        drop(reservation);
        result
    }

    /// Stores what `workspace`'s writer holds in memory into segments, so that a query sees
    /// every row acknowledged before it. Nothing to do if the workspace has no writer.
    ///
    /// A flush need not wait for the appends queued before it: their rows are not acknowledged
    /// yet, so no query can expect them. The writer takes flushes before queued appends, and
    /// answers every flush that comes while nothing was acknowledged since its last flush at
    /// once: several queries asking together cut one segment, not one each, and under a
    /// saturating load a query does not wait for the queue of appends to drain.
    pub(crate) async fn flush(&self, workspace: &str) -> Result<(), HubError> {
        let tx = {
            let workers = self
                .workers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match workers.get(workspace) {
                Some(w) if !w.tx.is_closed() => w.flushes.clone(),
                _ => return Ok(()),
            }
        };
        let (reply, answer) = oneshot::channel();
        if tx.send(reply).await.is_err() {
            return Ok(());
        }
        answer.await.unwrap_or(Ok(()))
    }

    /// Refuses new rows, lets every writer finish what it was given (store it and close its
    /// log), and waits for them.
    pub(crate) async fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        self.workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        let tasks: Vec<JoinHandle<()>> = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a workspace writer task failed");
            }
        }
    }
}

/// What a worker waits for next.
enum Next {
    Flush(FlushReply),
    Append(AppendJob),
    Idle,
    Closed,
}

async fn run_worker(
    mut ingestor: WorkspaceIngestor,
    mut rx: mpsc::Receiver<AppendJob>,
    mut flushes: mpsc::Receiver<FlushReply>,
    config: HubConfig,
) {
    let workspace = ingestor.workspace().to_owned();
    let mut last_append = Instant::now();
    let mut buffered_since: Option<Instant> = None;
    // Whether rows were acknowledged since the last successful flush (unknown at the start: a
    // writer may hold replayed rows).
    let mut dirty = true;
    loop {
        let next = tokio::select! {
            biased;
            Some(reply) = flushes.recv() => Next::Flush(reply),
            job = tokio::time::timeout(config.flush_interval, rx.recv()) => match job {
                Ok(Some(job)) => Next::Append(job),
                Ok(None) => Next::Closed,
                Err(_) => Next::Idle,
            },
        };
        let first = match next {
            Next::Closed => break,
            Next::Idle => {
                if idle(&mut ingestor, &mut buffered_since, last_append, &config).await {
                    dirty = false;
                }
                continue;
            }
            Next::Flush(reply) => {
                let result = if dirty {
                    let result = ingestor.flush().await;
                    buffered_since = None;
                    dirty = result.is_err();
                    result.map_err(|e| HubError::Engine(Arc::new(e)))
                } else {
                    Ok(())
                };
                let _ = reply.send(result.clone());
                // Flushes asked meanwhile are answered by this one: nothing was acknowledged
                // since it started.
                while let Ok(reply) = flushes.try_recv() {
                    let _ = reply.send(result.clone());
                }
                continue;
            }
            Next::Append(job) => job,
        };
        let mut group = vec![first];
        let mut bytes = group[0].bytes;
        while bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.bytes;
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        let requests: Vec<RequestRows> = group
            .iter_mut()
            .map(|j| RequestRows {
                key: j.key.take(),
                records: std::mem::take(&mut j.records),
            })
            .collect();
        let result = ingestor.log_requests(&requests).await;
        drop(requests);
        last_append = Instant::now();
        match result {
            Ok((
                AppendedRequests {
                    outcome: Appended::Accepted { .. },
                    duplicates,
                },
                logged,
            )) => {
                // Durable: answered now, then handed to the encoding stage (waiting only when its
                // queue is full).
                dirty = true;
                for (job, duplicate) in group.into_iter().zip(duplicates) {
                    let _ = job.reply.send(Ok(HubAnswer {
                        appended: Appended::Accepted { rows: job.rows },
                        duplicate,
                    }));
                }
                if let Some(logged) = logged
                    && let Err(e) = ingestor.store_logged(logged).await
                {
                    tracing::warn!(workspace = %workspace, error = %e, "batching acknowledged rows failed; the write-ahead log keeps them");
                }
                if ingestor.buffered_rows() > 0 {
                    let since = *buffered_since.get_or_insert(last_append);
                    if since.elapsed() >= config.flush_interval * MAX_AGE_INTERVALS
                        && flush(&mut ingestor, &workspace).await
                    {
                        buffered_since = None;
                        dirty = false;
                    }
                } else {
                    buffered_since = None;
                }
            }
            Ok((
                AppendedRequests {
                    outcome: Appended::Dropped { reason, .. },
                    ..
                },
                _,
            )) => {
                for job in group {
                    let _ = job.reply.send(Ok(HubAnswer {
                        appended: Appended::Dropped {
                            rows: job.rows,
                            reason: reason.clone(),
                        },
                        duplicate: false,
                    }));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                tracing::warn!(workspace = %workspace, error = %e, "appending to the write-ahead log failed");
                for job in group {
                    let _ = job.reply.send(Err(HubError::Engine(e.clone())));
                }
            }
        }
    }
    // Shutting down: store what is batched and let go of the log.
    if let Err(e) = ingestor.release().await {
        tracing::warn!(workspace = %workspace, error = %e, "storing batched rows at shutdown failed; the write-ahead log keeps them");
    }
}

/// Stores what the writer holds; false if that failed (the log keeps the rows).
async fn flush(ingestor: &mut WorkspaceIngestor, workspace: &str) -> bool {
    match ingestor.flush().await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(workspace = %workspace, error = %e, "storing batched rows failed; the write-ahead log keeps them");
            false
        }
    }
}

/// No rows for a flush interval: store what waits, and let go of the log after a while. True
/// if it stored what waited.
async fn idle(
    ingestor: &mut WorkspaceIngestor,
    buffered_since: &mut Option<Instant>,
    last_append: Instant,
    config: &HubConfig,
) -> bool {
    let mut stored = false;
    if ingestor.buffered_rows() > 0 {
        let workspace = ingestor.workspace().to_owned();
        stored = flush(ingestor, &workspace).await;
        *buffered_since = None;
    }
    if ingestor.is_open() && last_append.elapsed() >= config.writer_idle {
        let workspace = ingestor.workspace().to_owned();
        if let Err(e) = ingestor.release().await {
            tracing::warn!(workspace = %workspace, error = %e, "closing an idle writer failed; the write-ahead log keeps its rows");
        }
    }
    stored
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use logvault::control::WorkspaceSpec;

    const WS: &str = "ws-hub";

    async fn hub() -> (tempfile::TempDir, Engine, Arc<IngestHub>) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::builder(dir.path()).open().await.unwrap();
        engine
            .control()
            .create_workspace(WorkspaceSpec::new(WS))
            .unwrap();
        let hub = IngestHub::new(
            engine.clone(),
            HubConfig {
                max_workspace_bytes: 1 << 30,
                max_total_bytes: 1 << 30,
                flush_interval: Duration::from_secs(60),
                writer_idle: Duration::from_secs(600),
            },
        );
        (dir, engine, Arc::new(hub))
    }

    async fn stored_rows(engine: &Engine) -> u64 {
        engine
            .tables(WS)
            .await
            .unwrap()
            .iter()
            .map(|t| t.rows)
            .sum()
    }

    /// A query's flush must store every row acknowledged before it, and need not wait for the
    /// appends queued before it (none of them is acknowledged). It used to wait behind them:
    /// under a saturating load, a query waited for the whole queue to be logged first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flush_goes_past_the_appends_queued_before_it_and_stores_what_was_acknowledged() {
        let (_dir, engine, hub) = hub().await;
        const REQUESTS: usize = 48;
        const ROWS: usize = 20_000;
        let start = chrono::Utc::now() - chrono::Duration::hours(1);
        let batch = logvault_testkit::log_batch(start, ROWS, "queued");
        let bytes = batch.get_array_memory_size();
        let acked = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..REQUESTS {
            let (hub, batch, acked) = (Arc::clone(&hub), batch.clone(), Arc::clone(&acked));
            tasks.push(tokio::spawn(async move {
                let answer = hub
                    .append(WS, vec![("AppLogs".to_owned(), batch)], None)
                    .await
                    .unwrap();
                assert!(matches!(answer.appended, Appended::Accepted { .. }));
                acked.fetch_add(1, Ordering::SeqCst);
            }));
        }
        // Every request queued (or already answered).
        loop {
            let queued: usize = hub.queued().iter().map(|(_, b)| b).sum();
            if queued + acked.load(Ordering::SeqCst) * bytes == REQUESTS * bytes {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let before = acked.load(Ordering::SeqCst);
        hub.flush(WS).await.unwrap();
        let after = acked.load(Ordering::SeqCst);
        assert!(
            after < REQUESTS,
            "the flush waited for every queued append ({after} of {REQUESTS} answered)"
        );
        let stored = stored_rows(&engine).await;
        assert!(
            stored >= (before * ROWS) as u64,
            "{stored} rows stored, {before} requests acknowledged before the flush"
        );
        for t in tasks {
            t.await.unwrap();
        }
        hub.flush(WS).await.unwrap();
        assert_eq!(stored_rows(&engine).await, (REQUESTS * ROWS) as u64);
        // Flushes with nothing acknowledged since the last one store nothing more.
        let segments = engine.tables(WS).await.unwrap()[0].segments;
        let flushes: Vec<_> = (0..4).map(|_| hub.flush(WS)).collect();
        for r in futures::future::join_all(flushes).await {
            r.unwrap();
        }
        assert_eq!(engine.tables(WS).await.unwrap()[0].segments, segments);
        hub.shutdown().await;
    }
}
