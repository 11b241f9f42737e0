//! The writer of one workspace: its log opened once (and replayed), appends that are
//! acknowledged when fsynced, batching into segments, checkpoints.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use logvault_ingest::{Batcher, BatcherOptions, SeqRange, Wal, WalKey, WalRecord};
use logvault_store::AccountKeyLease;

use crate::declared::Declarations;
use crate::lock::WorkspaceLock;
use crate::replay::{blocking, open_and_replay};
use crate::sink::StoreSink;
use crate::{KeySource, WriteContext, WriteError, wal_key};

/// The rows of one storage account being batched: the writer's current target.
struct Current {
    sink: Arc<StoreSink>,
    wal_key: Arc<WalKey>,
    batcher: Batcher,
}

/// A group appended to the log (durable) and not yet batched: see
/// [`WorkspaceWriter::log_group_keyed`].
#[derive(Debug)]
#[must_use = "a logged group must be batched (WorkspaceWriter::batch_logged)"]
pub struct LoggedGroup {
    records: Vec<(String, RecordBatch)>,
    seq: SeqRange,
}

impl LoggedGroup {
    /// The log's sequence numbers of its records.
    pub fn seq(&self) -> SeqRange {
        self.seq
    }
}

/// Writes one workspace: holds its log (and the cross-process lock on it) from
/// [`WriteContext::open_writer`] to [`WorkspaceWriter::close`].
///
/// Rows are appended to the log under the key of the account they are for, and batched per
/// table and time partition into segments of that account. When the target account changes
/// (a link or an unlink), everything batched for the old one is stored first.
pub struct WorkspaceWriter {
    ctx: WriteContext,
    workspace: String,
    wal: Option<Wal>,
    batcher_options: BatcherOptions,
    current: Option<Current>,
    /// The last sequence number appended (or found in the log at open).
    last_seq: u64,
    /// The first record that must stay after the checkpoint: the rows batched under a key that
    /// was revoked before they were stored. Replay at the next open handles them.
    hold: Option<u64>,
    recovered: u64,
    segments: usize,
    declared: Declarations,
    /// The request keys the log held at open (see [`WorkspaceWriter::take_request_keys`]).
    request_keys: Vec<String>,
    _lock: WorkspaceLock,
}

impl std::fmt::Debug for WorkspaceWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceWriter")
            .field("workspace", &self.workspace)
            .field("last_seq", &self.last_seq)
            .field("hold", &self.hold)
            .finish_non_exhaustive()
    }
}

impl WorkspaceWriter {
    pub(crate) async fn open(
        ctx: &WriteContext,
        workspace: &str,
        dir: PathBuf,
        lock: WorkspaceLock,
        keys: &dyn KeySource,
        batcher_options: BatcherOptions,
    ) -> Result<Self, WriteError> {
        let (wal, mut recovery, recovered) =
            open_and_replay(ctx, dir, workspace, keys, &batcher_options).await?;
        let request_keys = std::mem::take(&mut recovery.request_keys);
        Ok(Self {
            ctx: ctx.clone(),
            workspace: workspace.to_owned(),
            wal: Some(wal),
            batcher_options,
            current: None,
            last_seq: recovery.next_seq.saturating_sub(1),
            hold: None,
            recovered,
            segments: 0,
            declared: Declarations::default(),
            request_keys,
            _lock: lock,
        })
    }

    /// The workspace.
    pub fn workspace(&self) -> &str {
        &self.workspace
    }

    pub(crate) fn clock(&self) -> &logvault_core::SharedClock {
        &self.ctx.clock
    }

    /// Rows an interrupted writer had acknowledged that opening stored.
    pub fn recovered(&self) -> u64 {
        self.recovered
    }

    /// The idempotency keys of the client requests whose groups the log still held when it was
    /// opened (given with [`WorkspaceWriter::append_group_keyed`]), oldest first; empty after
    /// the first call. A server seeds its window of known requests with them, so that a request
    /// retried across a crash is not stored twice.
    pub fn take_request_keys(&mut self) -> Vec<String> {
        std::mem::take(&mut self.request_keys)
    }

    /// Segments written so far (replay not counted).
    pub fn segments(&self) -> usize {
        self.segments + self.current.as_ref().map_or(0, |c| c.sink.written())
    }

    fn wal(&self) -> Result<&Wal, WriteError> {
        self.wal.as_ref().ok_or_else(|| WriteError::Internal {
            workspace: self.workspace.clone(),
            reason: "the write-ahead log is closed".into(),
        })
    }

    /// Makes `lease`'s account the target, storing what was batched for another one first.
    async fn target(&mut self, lease: &AccountKeyLease) -> Result<(), WriteError> {
        if let Some(current) = &self.current
            && current.sink.lease().account == lease.account
        {
            return Ok(());
        }
        self.store_current().await?;
        let sink = StoreSink::new(
            Arc::clone(&self.ctx.store),
            self.ctx.cache.clone(),
            &self.workspace,
            lease.clone(),
        );
        let batcher = Batcher::new(
            self.batcher_options.clone(),
            sink.clone(),
            self.ctx.clock.clone(),
            self.last_seq,
        )?;
        self.current = Some(Current {
            wal_key: wal_key(&self.workspace, &lease.account, &lease.aek)?,
            sink,
            batcher,
        });
        Ok(())
    }

    /// Stores everything batched for the current target and lets it go.
    async fn store_current(&mut self) -> Result<(), WriteError> {
        if let Some(mut current) = self.current.take() {
            let flushed = current.batcher.flush_all().await;
            self.segments += current.sink.written();
            if let Err(e) = flushed {
                // The rows stay in the log; the next open replays them.
                self.hold_from(current.batcher.checkpoint() + 1);
                return Err(e.into());
            }
            self.checkpoint(current.batcher.checkpoint()).await?;
        }
        Ok(())
    }

    fn hold_from(&mut self, seq: u64) {
        self.hold = Some(self.hold.map_or(seq, |h| h.min(seq)));
    }

    async fn checkpoint(&self, through: u64) -> Result<(), WriteError> {
        let through = match self.hold {
            Some(held) => through.min(held.saturating_sub(1)),
            None => through,
        };
        self.wal()?.checkpoint(through).await?;
        Ok(())
    }

    /// Appends `batch` of `table` for `lease`'s account: returns once it is durable in the log
    /// (acknowledged); it is batched, and stored when a segment fills or at
    /// [`WorkspaceWriter::flush`].
    ///
    /// # Errors
    /// Log errors (nothing was acknowledged), batcher and store errors (the rows are in the
    /// log and stored by the next open).
    pub async fn append(
        &mut self,
        table: &str,
        batch: &RecordBatch,
        lease: &AccountKeyLease,
    ) -> Result<SeqRange, WriteError> {
        let now = self.ctx.clock.now();
        let batch = self
            .declared
            .conform(&self.ctx.store, &self.workspace, table, batch, now)
            .await?;
        let batch = batch.as_ref();
        self.target(lease).await?;
        let key = match &self.current {
            Some(c) => Arc::clone(&c.wal_key),
            None => unreachable_target(&self.workspace)?,
        };
        let seq = self
            .wal()?
            .append(&key, &[WalRecord { table, batch }])
            .await?;
        self.last_seq = self.last_seq.max(seq.last);
        // Promotions of what this writes wait until it is quiet.
        self.ctx.cache.note_activity();
        let Some(current) = self.current.as_mut() else {
            return unreachable_target(&self.workspace);
        };
        current.batcher.add(table, batch, Some(seq.last)).await?;
        let through = current.batcher.checkpoint();
        self.checkpoint(through).await?;
        Ok(seq)
    }

    /// Appends rows of several tables for `lease`'s account as one group of the log: one fsync
    /// for all of them (a server gathers the batches of many requests into one call), all of
    /// them acknowledged or none. The batches must already be rows of their tables (from the
    /// parser, or [`logvault_ingest::conform_batch`]); empty ones are skipped.
    ///
    /// # Errors
    /// As [`WorkspaceWriter::append`].
    pub async fn append_group(
        &mut self,
        records: &[(&str, &RecordBatch)],
        lease: &AccountKeyLease,
    ) -> Result<Option<SeqRange>, WriteError> {
        self.append_group_keyed(records, lease, &[]).await
    }

    /// As [`WorkspaceWriter::append_group`], and logs `request_keys` (the idempotency keys of
    /// the client requests whose rows these are) in the same group, so that a later open gives
    /// them back ([`WorkspaceWriter::take_request_keys`]).
    ///
    /// # Errors
    /// As [`WorkspaceWriter::append`].
    pub async fn append_group_keyed(
        &mut self,
        records: &[(&str, &RecordBatch)],
        lease: &AccountKeyLease,
        request_keys: &[String],
    ) -> Result<Option<SeqRange>, WriteError> {
        let Some(logged) = self.log_group_keyed(records, lease, request_keys).await? else {
            return Ok(None);
        };
        let seq = logged.seq;
        self.batch_logged(logged).await?;
        Ok(Some(seq))
    }

    /// The first half of [`WorkspaceWriter::append_group_keyed`]: the group is made rows of
    /// its tables and appended to the log, and is durable (fsynced, acknowledged) when this
    /// returns; it is not batched yet. Give what this returns to
    /// [`WorkspaceWriter::batch_logged`] before the next append, so that a server can answer
    /// its clients before the rows are encoded into segments. `None` when every batch is empty.
    ///
    /// # Errors
    /// As [`WorkspaceWriter::append`]; nothing was acknowledged.
    pub async fn log_group_keyed(
        &mut self,
        records: &[(&str, &RecordBatch)],
        lease: &AccountKeyLease,
        request_keys: &[String],
    ) -> Result<Option<LoggedGroup>, WriteError> {
        let now = self.ctx.clock.now();
        let mut conformed = Vec::with_capacity(records.len());
        for (table, batch) in records.iter().filter(|(_, b)| b.num_rows() > 0) {
            let batch = self
                .declared
                .conform(&self.ctx.store, &self.workspace, table, batch, now)
                .await?;
            conformed.push(((*table).to_owned(), batch.into_owned()));
        }
        if conformed.is_empty() {
            return Ok(None);
        }
        let wal_records: Vec<WalRecord<'_>> = conformed
            .iter()
            .map(|(table, batch)| WalRecord { table, batch })
            .collect();
        self.target(lease).await?;
        let key = match &self.current {
            Some(c) => Arc::clone(&c.wal_key),
            None => unreachable_target(&self.workspace)?,
        };
        let seq = self
            .wal()?
            .append_keyed(&key, &wal_records, request_keys)
            .await?;
        self.last_seq = self.last_seq.max(seq.last);
        self.ctx.cache.note_activity();
        Ok(Some(LoggedGroup {
            records: conformed,
            seq,
        }))
    }

    /// The second half of [`WorkspaceWriter::append_group_keyed`]: batches a logged group
    /// (stored into segments as they fill) and checkpoints the log.
    ///
    /// # Errors
    /// Batcher and store errors: the rows are in the log, and the next open stores them.
    pub async fn batch_logged(&mut self, logged: LoggedGroup) -> Result<(), WriteError> {
        let Some(current) = self.current.as_mut() else {
            return unreachable_target(&self.workspace);
        };
        // Record i of the group has sequence number seq.first + i; the batcher keeps each
        // record's number so that a segment lists exactly the records it holds.
        for (i, (table, batch)) in logged.records.iter().enumerate() {
            current
                .batcher
                .add(table, batch, Some(logged.seq.first + i as u64))
                .await?;
        }
        let through = current.batcher.checkpoint();
        self.checkpoint(through).await?;
        Ok(())
    }

    /// What conforming rows to their tables' declared schemas changed so far: values made
    /// null, columns left out.
    pub fn conformed(&self) -> &logvault_ingest::ConformReport {
        self.declared.report()
    }

    /// Rows batched in memory and not yet stored in segments (acknowledged: they are in the
    /// log).
    pub fn buffered_rows(&self) -> usize {
        self.current
            .as_ref()
            .map_or(0, |c| c.batcher.buffered_rows())
    }

    /// Appends Arrow batches of `table` given by an embedder: each is first made rows of a
    /// table (`logvault_ingest::conform_batch`: types a table holds, `TimeGenerated` required,
    /// `_TimeReceived` set to `received`), all of them before any is appended, so that a bad
    /// batch refuses the call with nothing written. Returns the rows acknowledged.
    ///
    /// # Errors
    /// [`logvault_ingest::IngestError::InvalidBatch`] naming the column at fault; as
    /// [`WorkspaceWriter::append`].
    pub async fn append_arrow(
        &mut self,
        table: &str,
        batches: &[RecordBatch],
        lease: &AccountKeyLease,
        received: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, WriteError> {
        let conformed = batches
            .iter()
            .map(|b| logvault_ingest::conform_batch(table, b, received))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rows = 0;
        for batch in conformed.iter().filter(|b| b.num_rows() > 0) {
            self.append(table, batch, lease).await?;
            rows += batch.num_rows() as u64;
        }
        Ok(rows)
    }

    /// Stores everything batched, so that a query sees it, and checkpoints the log.
    ///
    /// # Errors
    /// Batcher and store errors (the rows stay in the log).
    pub async fn flush(&mut self) -> Result<(), WriteError> {
        if let Some(current) = self.current.as_mut() {
            current.batcher.flush_all().await?;
            let through = current.batcher.checkpoint();
            self.checkpoint(through).await?;
        }
        Ok(())
    }

    /// The key of the current target was revoked: what is batched is not stored under it. It
    /// stays in the log, after the checkpoint, and is stored by a later open once the key is
    /// back (R-E3 with R-E2).
    pub fn abandon_current(&mut self) {
        if let Some(current) = self.current.take() {
            self.segments += current.sink.written();
            let unstored = current.batcher.checkpoint() + 1;
            if unstored <= self.last_seq {
                self.hold_from(unstored);
            }
        }
    }

    /// Stores what is batched (unless abandoned) and closes the log. Returns the segments this
    /// writer wrote (replay not counted).
    ///
    /// # Errors
    /// As [`WorkspaceWriter::flush`].
    pub async fn close(mut self) -> Result<usize, WriteError> {
        let flushed = self.flush().await;
        let segments = self.segments();
        self.close_log().await?;
        flushed.map(|()| segments)
    }

    /// Closes the log without storing what is batched: it stays in the log, after the
    /// checkpoint, and the next open replays it (after an error mid-payload).
    pub async fn discard(mut self) {
        self.current = None;
        if let Err(e) = self.close_log().await {
            tracing::warn!(workspace = %self.workspace, error = %e, "closing the write-ahead log failed");
        }
    }

    async fn close_log(&mut self) -> Result<(), WriteError> {
        if let Some(wal) = self.wal.take() {
            blocking(&self.workspace, move || wal.close()).await?;
        }
        Ok(())
    }
}

fn unreachable_target<T>(workspace: &str) -> Result<T, WriteError> {
    Err(WriteError::Internal {
        workspace: workspace.to_owned(),
        reason: "no write target after choosing one".into(),
    })
}
