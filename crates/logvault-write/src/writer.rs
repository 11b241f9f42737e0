//! The writer of one workspace: its log opened once (and replayed), appends that are
//! acknowledged when fsynced, handed to the encoding stage (`encoder.rs`) that batches them into
//! segments and checkpoints the log, concurrently with the next appends.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use logvault_ingest::{Batcher, BatcherOptions, SeqRange, Wal, WalKey, WalRecord};
use logvault_store::AccountKeyLease;

use crate::declared::Declarations;
use crate::encoder::Encoder;
use crate::lock::WorkspaceLock;
use crate::replay::{blocking, open_and_replay};
use crate::sink::StoreSink;
use crate::{KeySource, WriteContext, WriteError, wal_key};

/// The rows of one storage account being batched: the writer's current target, with the
/// encoding stage that batches them.
struct Current {
    sink: Arc<StoreSink>,
    wal_key: Arc<WalKey>,
    encoder: Encoder,
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
/// table and time partition into segments of that account by an encoding stage that runs
/// beside the appends (see `encoder.rs`: a queue bounded by
/// [`crate::ENCODE_QUEUE_BYTES`]). When the target account changes (a link or an unlink),
/// everything batched for the old one is stored first.
pub struct WorkspaceWriter {
    pub(crate) ctx: WriteContext,
    pub(crate) workspace: String,
    wal: Option<Arc<Wal>>,
    pub(crate) batcher_options: BatcherOptions,
    current: Option<Current>,
    /// The last sequence number appended (or found in the log at open).
    pub(crate) last_seq: u64,
    /// The first record that must stay after the checkpoint: the rows batched under a key that
    /// was revoked before they were stored. Replay at the next open handles them.
    hold: Option<u64>,
    recovered: u64,
    pub(crate) segments: usize,
    pub(crate) declared: Declarations,
    /// The request keys the log held at open (see [`WorkspaceWriter::take_request_keys`]).
    request_keys: Vec<String>,
    /// Shared with the encoding stage, which lets go of it only when it ends.
    lock: Arc<WorkspaceLock>,
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
            wal: Some(Arc::new(wal)),
            batcher_options,
            current: None,
            last_seq: recovery.next_seq.saturating_sub(1),
            hold: None,
            recovered,
            segments: 0,
            declared: Declarations::default(),
            request_keys,
            lock: Arc::new(lock),
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

    fn wal(&self) -> Result<&Arc<Wal>, WriteError> {
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
        let batcher = Batcher::new(self.batcher_options.clone(), sink.clone(), self.last_seq)?;
        let wal_key = wal_key(&self.workspace, &lease.account, &lease.aek)?;
        let encoder = Encoder::spawn(
            &self.workspace,
            batcher,
            Arc::clone(self.wal()?),
            Arc::clone(&self.lock),
            self.hold,
        );
        self.current = Some(Current {
            wal_key,
            sink,
            encoder,
        });
        Ok(())
    }

    /// Stores everything batched for the current target and lets it go.
    pub(crate) async fn store_current(&mut self) -> Result<(), WriteError> {
        if let Some(mut current) = self.current.take() {
            let flushed = current.encoder.flush().await;
            let checkpoint = current.encoder.stop().await;
            self.segments += current.sink.written();
            if let Err(e) = flushed {
                // The rows stay in the log; the next open replays them.
                self.hold_from(checkpoint + 1);
                return Err(e);
            }
        }
        Ok(())
    }

    fn hold_from(&mut self, seq: u64) {
        self.hold = Some(self.hold.map_or(seq, |h| h.min(seq)));
    }

    /// Appends `batch` of `table` for `lease`'s account: returns once it is durable in the log
    /// (acknowledged) and handed to the encoding stage, which batches it while the next appends
    /// are logged; it is stored when a segment fills or at [`WorkspaceWriter::flush`]. `None`
    /// for an empty batch (nothing logged).
    ///
    /// # Errors
    /// Log errors (nothing was acknowledged); batcher and store errors of an earlier append,
    /// reported by the encoding stage (the rows are in the log and stored by the next open).
    pub async fn append(
        &mut self,
        table: &str,
        batch: &RecordBatch,
        lease: &AccountKeyLease,
    ) -> Result<Option<SeqRange>, WriteError> {
        let Some(logged) = self.log_group_keyed(&[(table, batch)], lease, &[]).await? else {
            return Ok(None);
        };
        let seq = logged.seq;
        self.batch_logged(logged).await?;
        Ok(Some(seq))
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
        // Promotions of what this writes wait until it is quiet.
        self.ctx.cache.note_activity();
        Ok(Some(LoggedGroup {
            records: conformed,
            seq,
        }))
    }

    /// The second half of [`WorkspaceWriter::append_group_keyed`]: hands a logged group to
    /// the encoding stage, which batches it (stored into segments as they fill) and checkpoints
    /// the log while the writer logs the next groups. Returns once the group is queued: at once
    /// while the stage's queue has room ([`crate::ENCODE_QUEUE_BYTES`]), else when it has.
    ///
    /// # Errors
    /// Batcher and store errors of an earlier group, which stopped the stage (this group is
    /// not batched either): the rows are in the log, and the next open stores them.
    pub async fn batch_logged(&mut self, logged: LoggedGroup) -> Result<(), WriteError> {
        let Some(current) = self.current.as_mut() else {
            return unreachable_target(&self.workspace);
        };
        current
            .encoder
            .submit(logged.records, logged.seq.first)
            .await
    }

    /// What conforming rows to their tables' declared schemas changed so far: values made
    /// null, columns left out.
    pub fn conformed(&self) -> &logvault_ingest::ConformReport {
        self.declared.report()
    }

    /// Rows queued for the encoding stage or batched in memory, not yet stored in segments
    /// (acknowledged: they are in the log).
    pub fn buffered_rows(&self) -> usize {
        self.current
            .as_ref()
            .map_or(0, |c| c.encoder.buffered_rows())
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
            if self.append(table, batch, lease).await?.is_some() {
                rows += batch.num_rows() as u64;
            }
        }
        Ok(rows)
    }

    /// Stores everything queued and batched, so that a query sees it, and checkpoints the log.
    ///
    /// # Errors
    /// Batcher and store errors, now or of an earlier group (the rows stay in the log).
    pub async fn flush(&mut self) -> Result<(), WriteError> {
        if let Some(current) = self.current.as_mut() {
            current.encoder.flush().await?;
        }
        Ok(())
    }

    /// The key of the current target was revoked: what is queued and batched is not stored
    /// under it (the encoding stage finishes the group in hand and stops). It stays in the log,
    /// after the checkpoint, and is stored by a later open once the key is back (R-E3 with
    /// R-E2).
    pub async fn abandon_current(&mut self) {
        if let Some(current) = self.current.take() {
            let checkpoint = current.encoder.stop().await;
            self.segments += current.sink.written();
            let unstored = checkpoint + 1;
            if unstored <= self.last_seq {
                self.hold_from(unstored);
            }
        }
    }

    /// Stores what is queued and batched (unless abandoned) and closes the log. Returns the
    /// segments this writer wrote (replay not counted).
    ///
    /// # Errors
    /// As [`WorkspaceWriter::flush`].
    pub async fn close(mut self) -> Result<usize, WriteError> {
        let flushed = self.flush().await;
        let segments = self.segments();
        self.stop_encoder().await;
        self.close_log().await?;
        flushed.map(|()| segments)
    }

    /// Closes the log without storing what is queued or batched: it stays in the log, after the
    /// checkpoint, and the next open replays it (after an error mid-payload).
    pub async fn discard(mut self) {
        self.stop_encoder().await;
        if let Err(e) = self.close_log().await {
            tracing::warn!(workspace = %self.workspace, error = %e, "closing the write-ahead log failed");
        }
    }

    /// Stops the encoding stage (it batches nothing more) and waits for it to let go of the log.
    async fn stop_encoder(&mut self) {
        if let Some(current) = self.current.take() {
            current.encoder.stop().await;
        }
    }

    async fn close_log(&mut self) -> Result<(), WriteError> {
        if let Some(wal) = self.wal.take() {
            match Arc::try_unwrap(wal) {
                Ok(wal) => blocking(&self.workspace, move || wal.close()).await?,
                // Cannot be (the stage is stopped first); the last holder's drop closes it.
                Err(_) => {
                    tracing::warn!(workspace = %self.workspace, "the write-ahead log is still shared when closing; it closes when let go");
                }
            }
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
