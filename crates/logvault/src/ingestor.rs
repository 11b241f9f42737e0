//! A long-lived ingestor of one workspace, for a process that takes rows continuously (a
//! server): one writer (one write-ahead log, one lock) fed by many callers' batches, with the
//! same key gate as [`Engine::ingest`].
//!
//! [`Engine::ingest`] opens the workspace's writer, writes one payload and closes it; a server
//! that did so per request would take the workspace's log lock per request and write a segment
//! per request. A [`WorkspaceIngestor`] keeps the writer open between calls instead: each
//! [`WorkspaceIngestor::append`] is one group of the log (one fsync, acknowledged when it
//! returns), rows are batched into segments across calls and stored when a segment fills or at
//! [`WorkspaceIngestor::flush`]. Batching and encoding run on the writer's encoding stage, beside
//! the log: a call returns once its rows are logged and queued for it (the queue bounded by
//! [`logvault_write::ENCODE_QUEUE_BYTES`]), and the next call is logged while they are encoded.
//!
//! The gate is asked at most once a second (as a running payload asks it), and again at once
//! when a key check of this process changed a key's state: under a revoked or
//! unprovisioned key the rows of a call are dropped and counted (R-E2, R-D2); what was batched
//! under the key before it was revoked is abandoned to the log (held, never dropped) and the
//! writer is closed, so that the next open after the restore stores it (R-E3).

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use logvault_core::{NameKind, validate_name};
use logvault_ingest::BatcherOptions;
use logvault_store::AccountKeyLease;
use logvault_write::WorkspaceWriter;

use crate::ingesting::{EngineKeys, Target};
use crate::requests::RequestWindow;
use crate::{Engine, EngineError, counters};

/// How long a decision of the gate is used before it is asked again.
const GATE_INTERVAL: chrono::Duration = chrono::Duration::seconds(1);

/// What one [`WorkspaceIngestor::append`] did with its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Durable in the write-ahead log (fsynced): acknowledged.
    Accepted {
        /// Rows.
        rows: u64,
    },
    /// Dropped and counted because the workspace's key is revoked or not provisioned.
    Dropped {
        /// Rows.
        rows: u64,
        /// Why (names the workspace, the cluster and the key).
        reason: String,
    },
}

/// The rows of one client request for [`WorkspaceIngestor::append_requests`].
#[derive(Debug, Clone, Default)]
pub struct RequestRows {
    /// The request's idempotency key: a request whose key was acknowledged before (within
    /// [`crate::REQUEST_WINDOW_AGE`] and the last [`crate::REQUEST_WINDOW_KEYS`] keys, or logged
    /// and still in the write-ahead log when the writer opened) is not stored again.
    pub key: Option<String>,
    /// Its rows: (table, batch).
    pub records: Vec<(String, RecordBatch)>,
}

/// What one [`WorkspaceIngestor::append_requests`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendedRequests {
    /// What happened to the rows appended now (the requests that are not duplicates). A
    /// duplicate's rows are durable from its first attempt, so it shares an `Accepted`; under a
    /// revoked key every request is dropped, duplicates too.
    pub outcome: Appended,
    /// Per request, in order: whether it was known (its rows were not stored again).
    pub duplicates: Vec<bool>,
}

/// Rows [`WorkspaceIngestor::log_requests`] made durable and not yet batched: give them to
/// [`WorkspaceIngestor::store_logged`].
#[derive(Debug)]
#[must_use = "logged rows must be stored (WorkspaceIngestor::store_logged)"]
pub struct Logged(logvault_write::LoggedGroup);

/// A gated, long-lived writer of one workspace. Not shared: one task owns it and feeds it the
/// batches of every caller (see the module documentation).
pub struct WorkspaceIngestor {
    engine: Engine,
    workspace: String,
    batcher: BatcherOptions,
    writer: Option<WorkspaceWriter>,
    /// The gate's last decision, when it was made, and the key lifecycle's generation then.
    decision: Option<(Decision, DateTime<Utc>, u64)>,
    recovered: u64,
    /// The idempotency keys of the requests acknowledged lately (and found in the log).
    window: RequestWindow,
}

#[derive(Clone)]
enum Decision {
    Write(Box<AccountKeyLease>),
    Drop(String),
}

impl std::fmt::Debug for WorkspaceIngestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceIngestor")
            .field("workspace", &self.workspace)
            .field("open", &self.writer.is_some())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A long-lived ingestor of `workspace` (see [`WorkspaceIngestor`]). Its writer is opened
    /// at the first append.
    ///
    /// # Errors
    /// 404 for a missing workspace.
    pub fn ingestor(
        &self,
        workspace: &str,
        batcher: BatcherOptions,
    ) -> Result<WorkspaceIngestor, EngineError> {
        self.control().get_workspace(workspace)?;
        Ok(WorkspaceIngestor {
            engine: self.clone(),
            workspace: workspace.to_owned(),
            batcher,
            writer: None,
            decision: None,
            recovered: 0,
            window: RequestWindow::default(),
        })
    }
}

impl WorkspaceIngestor {
    /// The workspace.
    pub fn workspace(&self) -> &str {
        &self.workspace
    }

    /// Whether the writer (and the lock on the workspace's log) is held now.
    pub fn is_open(&self) -> bool {
        self.writer.is_some()
    }

    /// Rows of earlier, interrupted writers that opening the writer stored (since creation).
    pub fn recovered(&self) -> u64 {
        self.recovered
    }

    /// Rows acknowledged and queued for encoding or batched in memory, not yet in segments (a
    /// query does not see them until [`WorkspaceIngestor::flush`]).
    pub fn buffered_rows(&self) -> usize {
        self.writer
            .as_ref()
            .map_or(0, WorkspaceWriter::buffered_rows)
    }

    async fn decide(&mut self) -> Result<Decision, EngineError> {
        let now = self.engine.now();
        let generation = self.engine.keys().generation();
        if let Some((decision, at, seen)) = &self.decision
            && now >= *at
            && now < *at + GATE_INTERVAL
            && *seen == generation
        {
            return Ok(decision.clone());
        }
        let decision = match self.engine.write_target(&self.workspace).await? {
            Target::Write(lease) => Decision::Write(lease),
            Target::Drop(reason) => Decision::Drop(reason),
        };
        self.decision = Some((decision.clone(), now, generation));
        Ok(decision)
    }

    /// Appends `records` (table, batch) as one group of the log: returns once they are
    /// fsynced (acknowledged), or dropped and counted under a revoked key. Each batch is made
    /// rows of its table first ([`logvault_ingest::conform_batch`]: `_TimeReceived` is set to
    /// now), all before anything is written, so that a bad batch refuses the call whole.
    ///
    /// # Errors
    /// An invalid table name or batch (nothing written); [`EngineError::Key`] when the vault is
    /// unreachable and no account key is cached (refused, not dropped: the caller may retry);
    /// log errors (nothing acknowledged); store errors (the rows are in the log and stored at
    /// the next open).
    pub async fn append(
        &mut self,
        records: &[(String, RecordBatch)],
    ) -> Result<Appended, EngineError> {
        let request = RequestRows {
            key: None,
            records: records.to_vec(),
        };
        Ok(self
            .append_requests(std::slice::from_ref(&request))
            .await?
            .outcome)
    }

    /// Appends the rows of several client requests as one group of the log, as
    /// [`WorkspaceIngestor::append`], leaving out every request whose idempotency key is known
    /// (acknowledged before, or earlier in `requests`): a retried request is acknowledged
    /// again, its rows stored once. The keys of the others are logged with their rows, so that
    /// they are known again after a crash.
    ///
    /// # Errors
    /// As [`WorkspaceIngestor::append`]; a key longer than
    /// [`logvault_ingest::wal::MAX_REQUEST_KEY_LEN`] bytes (nothing written).
    pub async fn append_requests(
        &mut self,
        requests: &[RequestRows],
    ) -> Result<AppendedRequests, EngineError> {
        let (appended, logged) = self.log_requests(requests).await?;
        if let Some(logged) = logged {
            self.store_logged(logged).await?;
        }
        Ok(appended)
    }

    /// The first half of [`WorkspaceIngestor::append_requests`]: when it returns, the rows
    /// are durable in the log (acknowledged) or dropped, but not yet batched. The caller answers
    /// its clients, then gives the [`Logged`] rows to [`WorkspaceIngestor::store_logged`]
    /// before its next call, so that queueing them for encoding does not delay the answers.
    ///
    /// # Errors
    /// As [`WorkspaceIngestor::append_requests`], except store errors (see
    /// [`WorkspaceIngestor::store_logged`]).
    pub async fn log_requests(
        &mut self,
        requests: &[RequestRows],
    ) -> Result<(AppendedRequests, Option<Logged>), EngineError> {
        let received = self.engine.now();
        let mut conformed = Vec::with_capacity(requests.len());
        for request in requests {
            if let Some(key) = &request.key
                && key.len() > logvault_ingest::wal::MAX_REQUEST_KEY_LEN
            {
                return Err(logvault_ingest::IngestError::InvalidOption {
                    reason: format!(
                        "a request key of {} bytes for workspace {} (at most {})",
                        key.len(),
                        self.workspace,
                        logvault_ingest::wal::MAX_REQUEST_KEY_LEN
                    ),
                }
                .into());
            }
            let mut batches = Vec::with_capacity(request.records.len());
            for (table, batch) in &request.records {
                validate_name(NameKind::Table, table)?;
                batches.push((
                    table.as_str(),
                    logvault_ingest::conform_batch(table, batch, received)?,
                ));
            }
            conformed.push(batches);
        }
        let rows: u64 = conformed
            .iter()
            .flatten()
            .map(|(_, b)| b.num_rows() as u64)
            .sum();
        let mut duplicates = vec![false; requests.len()];
        if rows == 0 {
            return Ok((
                AppendedRequests {
                    outcome: Appended::Accepted { rows: 0 },
                    duplicates,
                },
                None,
            ));
        }
        let lease = match self.decide().await? {
            Decision::Write(lease) => lease,
            Decision::Drop(reason) => {
                self.abandon().await;
                let dir = logvault_ingest::wal::workspace_dir(
                    &self.engine.home().dir("wal"),
                    &self.workspace,
                );
                counters::add_dropped(&dir, rows, &reason)?;
                return Ok((
                    AppendedRequests {
                        outcome: Appended::Dropped { rows, reason },
                        duplicates,
                    },
                    None,
                ));
            }
        };
        // Opening the writer reads the keys its log still holds into the window.
        self.writer().await?;
        let mut keys = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, request) in requests.iter().enumerate() {
            if let Some(key) = &request.key {
                if self.window.contains(key, received) || !seen.insert(key.as_str()) {
                    duplicates[i] = true;
                } else {
                    keys.push(key.clone());
                }
            }
        }
        let group: Vec<(&str, &RecordBatch)> = conformed
            .iter()
            .zip(&duplicates)
            .filter(|(_, dup)| !**dup)
            .flat_map(|(batches, _)| batches.iter().map(|(t, b)| (*t, b)))
            .collect();
        let appended: u64 = group.iter().map(|(_, b)| b.num_rows() as u64).sum();
        if appended == 0 {
            return Ok((
                AppendedRequests {
                    outcome: Appended::Accepted { rows: 0 },
                    duplicates,
                },
                None,
            ));
        }
        let writer = self.writer().await?;
        match writer.log_group_keyed(&group, &lease, &keys).await {
            Ok(logged) => {
                self.window.insert(keys, received);
                Ok((
                    AppendedRequests {
                        outcome: Appended::Accepted { rows: appended },
                        duplicates,
                    },
                    logged.map(Logged),
                ))
            }
            Err(e) => {
                // Whatever the log acknowledged stays in it; a fresh open replays it.
                if let Some(writer) = self.writer.take() {
                    writer.discard().await;
                }
                Err(e.into())
            }
        }
    }

    /// The second half of [`WorkspaceIngestor::append_requests`]: hands rows
    /// [`WorkspaceIngestor::log_requests`] logged to the writer's encoding stage, which batches
    /// them (stored into segments as they fill) while the next calls are logged. Returns once
    /// they are queued: at once while the stage's queue has room, else when it has.
    ///
    /// # Errors
    /// Store errors of rows handed over before, which stopped the stage: the rows are in the
    /// log (acknowledged); the writer is closed and the next append opens it again, replaying
    /// them.
    pub async fn store_logged(&mut self, logged: Logged) -> Result<(), EngineError> {
        let Some(writer) = self.writer.as_mut() else {
            // Closed since (it cannot be: the caller batches before its next call); the log
            // keeps the rows and the next open stores them.
            return Ok(());
        };
        if let Err(e) = writer.batch_logged(logged.0).await {
            if let Some(writer) = self.writer.take() {
                writer.discard().await;
            }
            return Err(e.into());
        }
        Ok(())
    }

    async fn writer(&mut self) -> Result<&mut WorkspaceWriter, EngineError> {
        if self.writer.is_none() {
            let mut writer = self
                .engine
                .inner
                .writes
                .open_writer(
                    &self.workspace,
                    &EngineKeys(&self.engine),
                    self.batcher.clone(),
                )
                .await?;
            self.recovered += writer.recovered();
            let now = self.engine.now();
            self.window.insert(writer.take_request_keys(), now);
            self.writer = Some(writer);
        }
        match self.writer.as_mut() {
            Some(w) => Ok(w),
            None => Err(EngineError::State {
                what: "workspace writer",
                path: self.engine.home().dir("wal"),
                reason: format!("the writer of workspace {} did not open", self.workspace),
            }),
        }
    }

    /// The key was revoked: what is batched under it stays in the log (held) and the writer
    /// closes, so that the next open, once the key is back, stores it.
    async fn abandon(&mut self) {
        if let Some(mut writer) = self.writer.take() {
            writer.abandon_current().await;
            if let Err(e) = writer.close().await {
                tracing::warn!(workspace = %self.workspace, error = %e, "closing the writer after a revocation failed; the log keeps its rows");
            }
        }
    }

    /// Stores everything batched into segments (a query then sees it) and checkpoints the log.
    ///
    /// # Errors
    /// Store errors (the rows stay in the log; the writer is closed and the next append opens
    /// it again, replaying them).
    pub async fn flush(&mut self) -> Result<(), EngineError> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        if let Err(e) = writer.flush().await {
            if let Some(writer) = self.writer.take() {
                writer.discard().await;
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Stores what is batched and lets go of the writer and the log's lock (another process
    /// may then write the workspace); the next append opens it again.
    ///
    /// # Errors
    /// As [`WorkspaceIngestor::flush`]; the lock is let go in every case.
    pub async fn release(&mut self) -> Result<(), EngineError> {
        match self.writer.take() {
            Some(writer) => Ok(writer.close().await.map(|_| ())?),
            None => Ok(()),
        }
    }
}
