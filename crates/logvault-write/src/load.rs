//! A bulk load: a payload whose end the caller waits for (a file given to `logvault ingest`) is
//! written into segments without the write-ahead log, and acknowledged at checkpoints.
//!
//! ```text
//! payload ─ parse (blocking thread) ─> batches ─ conform ─ batcher ─ segments (stored, unlisted)
//!                                     checkpoint: flush every partition ─ one catalog update ─> acknowledged
//! ```
//!
//! The rows are batched and encoded as the log's encoding stage does, but nothing is logged:
//! finished segments are stored and left out of the catalog until a checkpoint, which flushes
//! every partition and lists all of them in one catalog update. So the rows stored are always
//! a prefix of the input (a crash loses what was read since the last checkpoint, never a part
//! of it), and what a checkpoint stored is acknowledged (R-E3): the progress callback and the
//! report say so. Checkpoints come every [`LoadOptions::interval`] (by default a quarter of the
//! store's grace period, at most a minute: the store's collection deletes unlisted files older
//! than that period, so a stored segment is listed well before) or every
//! [`LoadOptions::rows`], and at the end.
//!
//! What it saves is the log's work for every row: encoding it as Arrow IPC, sealing, writing and
//! fsyncing it, and the disk space of a second copy (about a tenth of `logvault ingest`'s CPU,
//! docs/bench/journal.md). A revocation while the load runs drops what no checkpoint stored
//! (its segments' files are deleted) and the rest of the input, counted (R-E2); an error does
//! the same with what no checkpoint stored, and returns the error.

use std::io::BufRead;

use logvault_ingest::Batcher;
use logvault_store::AccountKeyLease;

use crate::payload::{DropCounter, GATE_INTERVAL, join, spawn_parser};
use crate::sink::StoreSink;
use crate::{
    Payload, PayloadProgress, PayloadReport, ProgressFn, WorkspaceWriter, WriteError, WriteGate,
};

/// The longest time between two checkpoints of a load by default.
pub const LOAD_CHECKPOINT_INTERVAL: chrono::Duration = chrono::Duration::seconds(60);

/// When a bulk load stores what it has read (see the module documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Time between checkpoints; `None`: a quarter of the store's grace period, at most
    /// [`LOAD_CHECKPOINT_INTERVAL`].
    pub interval: Option<chrono::Duration>,
    /// Rows read after which a checkpoint comes, if sooner than the interval (each checkpoint
    /// finishes the segment of every partition: frequent ones make small segments).
    pub rows: Option<u64>,
}

/// Where a load stands.
struct Loading<'g> {
    report: PayloadReport,
    /// Rows taken since the last checkpoint (in the batcher or in unlisted segments).
    unstored: u64,
    /// `None` once the key was revoked: nothing more is taken.
    batcher: Option<Batcher>,
    sink: std::sync::Arc<StoreSink>,
    gate: &'g dyn WriteGate,
    drops: DropCounter<'g>,
}

impl Loading<'_> {
    /// Stores everything the batcher holds and lists it, unless the key was revoked meanwhile
    /// (the gate is asked right before the rows are listed: none is stored under a key revoked
    /// before it was); then nothing is listed, and it is dropped.
    async fn checkpoint(&mut self) -> Result<(), WriteError> {
        let Some(batcher) = self.batcher.as_mut() else {
            return Ok(());
        };
        batcher.flush_all().await?;
        if let Some(reason) = self.gate.revoked().await {
            return self.revoked(reason, 0).await;
        }
        self.report.accepted += self.sink.commit().await?;
        self.unstored = 0;
        Ok(())
    }

    /// The key was revoked: what no checkpoint stored is dropped (its files deleted, its rows
    /// counted with `more` rows in hand), and nothing more is taken.
    async fn revoked(&mut self, reason: String, more: u64) -> Result<(), WriteError> {
        self.batcher = None;
        self.sink.discard().await;
        let lost = self.unstored + more;
        self.unstored = 0;
        self.report.dropped += lost;
        self.drops.add(lost, &reason)?;
        self.report.reason = Some(reason);
        Ok(())
    }
}

impl WorkspaceWriter {
    /// Loads `payload` into segments for `lease`'s account without the write-ahead log, listing
    /// them at checkpoints (see the module documentation). Rows the writer logged before are
    /// stored first. Every second the gate is asked whether the key was revoked since admission:
    /// if so, what no checkpoint stored and the rest of the input are dropped and counted.
    ///
    /// # Errors
    /// Parse errors under the refuse policy, read errors, batcher and store errors: what the
    /// checkpoints before stored stays, the rest is not stored.
    pub async fn load_payload<R: BufRead + Send + 'static>(
        &mut self,
        payload: Payload<R>,
        lease: &AccountKeyLease,
        gate: &dyn WriteGate,
        options: &LoadOptions,
        mut progress: Option<ProgressFn<'_>>,
    ) -> Result<PayloadReport, WriteError> {
        self.store_current().await?;
        let table = payload.schema.table().to_owned();
        let clock = self.clock().clone();
        let interval = options
            .interval
            .unwrap_or_else(|| (self.ctx.store.segment_grace() / 4).min(LOAD_CHECKPOINT_INTERVAL));
        let sink = StoreSink::deferred(
            std::sync::Arc::clone(&self.ctx.store),
            self.ctx.cache.clone(),
            &self.workspace,
            lease.clone(),
        );
        let mut at = Loading {
            report: PayloadReport::default(),
            unstored: 0,
            batcher: Some(Batcher::new(
                self.batcher_options.clone(),
                sink.clone(),
                self.last_seq,
            )?),
            sink,
            gate,
            drops: DropCounter::new(gate, &clock, &self.workspace),
        };
        let (mut rx, handle) = spawn_parser(payload);
        let mut next_gate = clock.now() + GATE_INTERVAL;
        let mut next_checkpoint = clock.now() + interval;
        let mut rejected = 0;
        let result: Result<(), WriteError> = async {
            while let Some(parsed) = rx.recv().await {
                let batch;
                (batch, rejected) = parsed?;
                let rows = batch.num_rows() as u64;
                if let Some(reason) = &at.report.reason {
                    at.report.dropped += rows;
                    at.drops.add(rows, reason)?;
                    continue;
                }
                let now = clock.now();
                if now >= next_gate {
                    next_gate = now + GATE_INTERVAL;
                    if let Some(reason) = gate.revoked().await {
                        at.revoked(reason, rows).await?;
                        continue;
                    }
                }
                let conformed = self
                    .declared
                    .conform(&self.ctx.store, &self.workspace, &table, &batch, now)
                    .await?;
                if let Some(batcher) = at.batcher.as_mut() {
                    batcher.add(&table, &conformed, None).await?;
                }
                // Promotions of what this writes wait until it is quiet (as for logged rows).
                self.ctx.cache.note_activity();
                at.unstored += rows;
                if now >= next_checkpoint || options.rows.is_some_and(|r| at.unstored >= r) {
                    next_checkpoint = now + interval;
                    at.checkpoint().await?;
                }
                if let Some(progress) = progress.as_mut() {
                    progress(PayloadProgress {
                        accepted: at.report.accepted,
                        read: at.report.accepted + at.unstored,
                        rejected,
                    });
                }
            }
            at.checkpoint().await?;
            if let Some(reason) = at.report.reason.clone() {
                at.drops.flush(&reason)?;
            }
            if let Some(progress) = progress.as_mut() {
                progress(PayloadProgress {
                    accepted: at.report.accepted,
                    read: at.report.accepted,
                    rejected,
                });
            }
            Ok(())
        }
        .await;
        // What is not listed (after an error) is deleted; open segments are aborted with the
        // batcher.
        at.batcher = None;
        at.sink.discard().await;
        self.segments += at.sink.written();
        if let Err(e) = result {
            drop(rx);
            let _ = handle.await;
            return Err(e);
        }
        let parsed = join(&self.workspace, handle).await?;
        at.report.rejected = parsed.rejected;
        at.report.errors = parsed.errors.iter().map(ToString::to_string).collect();
        Ok(at.report)
    }
}
