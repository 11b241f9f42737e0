//! The encoding stage of a writer: logged groups are batched into segments (Parquet encoding,
//! encryption, storing, the catalog, the log's checkpoint) by a task of their own, fed through a
//! queue bounded in bytes, so that the log (the acknowledgement path) goes on while segments are
//! encoded, and the two use two cores.
//!
//! ```text
//! writer: conform ─ log (fsync: acknowledged) ─ submit ─┐
//!                                                       └─ queue (≤ ENCODE_QUEUE_BYTES) ─> encoder task:
//!                                                            Batcher::add ─ segments ─ Wal::checkpoint
//! ```
//!
//! The queue is bounded by the Arrow bytes of the groups in it and of the one being batched: a
//! submit waits for room, so a writer whose segments are slow to store slows its
//! acknowledgements instead of holding more rows (a group larger than the bound waits for an
//! empty queue and passes alone).
//!
//! What it keeps: groups are batched in the order they were logged; only this task moves the
//! log's checkpoint, to the batcher's (never past a row that is not in a segment, nor past the
//! writer's hold); the first error stops the stage: no later group is batched (they all stay in
//! the log after the checkpoint, and the next open stores them) and the writer's next submit or
//! flush returns the error. Stopping the stage (a revocation, a discarded or dropped writer)
//! lets the group in hand finish and batches nothing more; the task holds the log and the
//! workspace's lock until it ends, so that no other writer replays the log meanwhile.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::RecordBatch;
use logvault_ingest::{Batcher, Wal};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::WriteError;
use crate::lock::WorkspaceLock;

/// Most Arrow bytes of logged groups waiting for (or in) the encoding stage of one writer.
pub const ENCODE_QUEUE_BYTES: usize = 8 << 20;
/// The unit the queue's room is counted in.
const ROOM_UNIT: usize = 1024;
const ROOM_UNITS: usize = ENCODE_QUEUE_BYTES / ROOM_UNIT;

/// What the writer hands the stage.
enum Command {
    /// A logged group: record `first_seq + i` is `records[i]`.
    Group {
        records: Vec<(String, RecordBatch)>,
        first_seq: u64,
        rows: usize,
        /// Its room in the queue, given back once it is batched.
        _room: OwnedSemaphorePermit,
    },
    /// Store everything batched (after the groups before it) and checkpoint.
    Flush(oneshot::Sender<Result<(), WriteError>>),
}

/// What the writer and the task share.
#[derive(Default)]
struct State {
    /// Batch nothing more (set when the stage is stopped).
    stop: AtomicBool,
    /// Rows submitted and not batched yet.
    queued_rows: AtomicUsize,
    /// Rows in the batcher, not yet in segments.
    batched_rows: AtomicUsize,
    failure: Mutex<Failure>,
}

#[derive(Default)]
struct Failure {
    /// The error that stopped the stage, until the writer is told.
    error: Option<WriteError>,
    /// Why the stage stopped, for every call after the first.
    reason: Option<String>,
}

impl State {
    fn failure(&self) -> std::sync::MutexGuard<'_, Failure> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failed(&self) -> bool {
        self.failure().reason.is_some()
    }

    fn fail(&self, error: WriteError) {
        let mut failure = self.failure();
        if failure.reason.is_none() {
            failure.reason = Some(error.to_string());
            failure.error = Some(error);
        }
    }

    /// The error that stopped the stage: itself the first time, its reason after.
    fn take_failure(&self, workspace: &str) -> Option<WriteError> {
        let mut failure = self.failure();
        if let Some(error) = failure.error.take() {
            return Some(error);
        }
        failure.reason.as_ref().map(|reason| WriteError::Stopped {
            workspace: workspace.to_owned(),
            reason: reason.clone(),
        })
    }
}

/// The writer's handle on its encoding stage (see the module documentation). Dropping it stops
/// the stage (nothing more is batched).
pub(crate) struct Encoder {
    workspace: String,
    tx: Option<mpsc::UnboundedSender<Command>>,
    room: Arc<Semaphore>,
    state: Arc<State>,
    task: Option<JoinHandle<u64>>,
}

impl Encoder {
    /// Starts the stage over `batcher`, checkpointing `wal` (never past `hold - 1`), holding
    /// `lock` until it ends.
    pub(crate) fn spawn(
        workspace: &str,
        batcher: Batcher,
        wal: Arc<Wal>,
        lock: Arc<WorkspaceLock>,
        hold: Option<u64>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(State::default());
        let stage = Stage {
            workspace: workspace.to_owned(),
            batcher,
            wal,
            _lock: lock,
            hold,
            checkpointed: 0,
            state: Arc::clone(&state),
        };
        Self {
            workspace: workspace.to_owned(),
            tx: Some(tx),
            room: Arc::new(Semaphore::new(ROOM_UNITS)),
            state,
            task: Some(tokio::spawn(stage.run(rx))),
        }
    }

    /// Rows acknowledged and not yet in segments: queued, or batched in memory.
    pub(crate) fn buffered_rows(&self) -> usize {
        self.state.queued_rows.load(Ordering::Acquire)
            + self.state.batched_rows.load(Ordering::Acquire)
    }

    fn gone(&self) -> WriteError {
        WriteError::Internal {
            workspace: self.workspace.clone(),
            reason: "the encoding task stopped".into(),
        }
    }

    fn sender(&self) -> Result<&mpsc::UnboundedSender<Command>, WriteError> {
        self.tx.as_ref().ok_or_else(|| self.gone())
    }

    /// Hands a logged group to the stage, waiting for room in the queue.
    ///
    /// # Errors
    /// The error that stopped the stage (an earlier group's segment failed): this group is not
    /// batched either; all of them are in the log.
    pub(crate) async fn submit(
        &mut self,
        records: Vec<(String, RecordBatch)>,
        first_seq: u64,
    ) -> Result<(), WriteError> {
        if let Some(e) = self.state.take_failure(&self.workspace) {
            return Err(e);
        }
        let bytes: usize = records.iter().map(|(_, b)| b.get_array_memory_size()).sum();
        let rows: usize = records.iter().map(|(_, b)| b.num_rows()).sum();
        // A group larger than the queue waits for all of it: it passes alone.
        let units =
            u32::try_from(bytes.div_ceil(ROOM_UNIT).clamp(1, ROOM_UNITS)).unwrap_or(u32::MAX);
        let room = Arc::clone(&self.room)
            .acquire_many_owned(units)
            .await
            .map_err(|_| self.gone())?;
        self.state.queued_rows.fetch_add(rows, Ordering::AcqRel);
        let sent = self.sender()?.send(Command::Group {
            records,
            first_seq,
            rows,
            _room: room,
        });
        if sent.is_err() {
            self.state.queued_rows.fetch_sub(rows, Ordering::AcqRel);
            return Err(self
                .state
                .take_failure(&self.workspace)
                .unwrap_or_else(|| self.gone()));
        }
        Ok(())
    }

    /// Waits until every group submitted is batched, then stores everything batched into
    /// segments and checkpoints the log.
    ///
    /// # Errors
    /// The error that stopped the stage, or that storing gave now.
    pub(crate) async fn flush(&mut self) -> Result<(), WriteError> {
        let (reply, answer) = oneshot::channel();
        if self.sender()?.send(Command::Flush(reply)).is_err() {
            return Err(self
                .state
                .take_failure(&self.workspace)
                .unwrap_or_else(|| self.gone()));
        }
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(self.gone()),
        }
    }

    /// Stops the stage: the group in hand is finished, nothing more is batched; waits for the
    /// task to end. Returns the batcher's checkpoint then (every record up to it is in a
    /// segment; 0 if the task failed).
    pub(crate) async fn stop(mut self) -> u64 {
        self.state.stop.store(true, Ordering::Release);
        self.tx = None;
        let Some(task) = self.task.take() else {
            return 0;
        };
        match task.await {
            Ok(checkpoint) => checkpoint,
            Err(e) => {
                tracing::error!(workspace = %self.workspace, error = %e, "the encoding task failed");
                0
            }
        }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // A writer dropped without closing (or stopping) batches nothing more: what is queued
        // stays in the log for the next open, as after a crash.
        self.state.stop.store(true, Ordering::Release);
    }
}

/// The task's side.
struct Stage {
    workspace: String,
    batcher: Batcher,
    wal: Arc<Wal>,
    _lock: Arc<WorkspaceLock>,
    hold: Option<u64>,
    /// The last checkpoint given to the log.
    checkpointed: u64,
    state: Arc<State>,
}

impl Stage {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) -> u64 {
        while let Some(command) = rx.recv().await {
            let stopped = self.state.stop.load(Ordering::Acquire);
            match command {
                Command::Group {
                    records,
                    first_seq,
                    rows,
                    _room,
                } => {
                    if !stopped && !self.state.failed() {
                        if let Err(e) = self.batch(&records, first_seq).await {
                            tracing::warn!(workspace = %self.workspace, error = %e, "storing acknowledged rows failed; the write-ahead log keeps them");
                            self.state.fail(e);
                        }
                        self.state
                            .batched_rows
                            .store(self.batcher.buffered_rows(), Ordering::Release);
                    }
                    self.state.queued_rows.fetch_sub(rows, Ordering::AcqRel);
                }
                Command::Flush(reply) => {
                    let result = if stopped {
                        Err(WriteError::Stopped {
                            workspace: self.workspace.clone(),
                            reason: "the writer was stopped".into(),
                        })
                    } else if let Some(e) = self.state.take_failure(&self.workspace) {
                        Err(e)
                    } else {
                        let flushed = self.flush().await;
                        if let Err(e) = &flushed {
                            // Told to the caller now; later calls get its reason.
                            let mut failure = self.state.failure();
                            failure.reason.get_or_insert_with(|| e.to_string());
                        }
                        self.state
                            .batched_rows
                            .store(self.batcher.buffered_rows(), Ordering::Release);
                        flushed
                    };
                    let _ = reply.send(result);
                }
            }
        }
        self.batcher.checkpoint()
    }

    /// Batches a group: record `first_seq + i` is `records[i]` (the batcher keeps each record's
    /// number, so that a segment lists exactly the records it holds), then checkpoints.
    async fn batch(
        &mut self,
        records: &[(String, RecordBatch)],
        first_seq: u64,
    ) -> Result<(), WriteError> {
        for (i, (table, batch)) in records.iter().enumerate() {
            self.batcher
                .add(table, batch, Some(first_seq + i as u64))
                .await?;
        }
        self.checkpoint().await
    }

    async fn flush(&mut self) -> Result<(), WriteError> {
        self.batcher.flush_all().await?;
        self.checkpoint().await
    }

    /// Moves the log's checkpoint to the batcher's, short of the writer's hold.
    async fn checkpoint(&mut self) -> Result<(), WriteError> {
        let mut through = self.batcher.checkpoint();
        if let Some(held) = self.hold {
            through = through.min(held.saturating_sub(1));
        }
        if through > self.checkpointed {
            self.wal.checkpoint(through).await?;
            self.checkpointed = through;
        }
        Ok(())
    }
}
