//! Ingestion through the engine: parse, log, batch, write encrypted segments, gated by the key.
//!
//! One payload goes through these steps:
//! 1. the workspace's *write target* is resolved: the service account before linking and after
//!    unlinking, the cluster's account while linked (R-D3);
//! 2. the cluster's key state gates it (R-E2, R-D2): revoked key, or key not provisioned, and
//!    the payload's rows are dropped, counted in the workspace's counters and reported to the
//!    sender; nothing is written;
//! 3. each parsed batch is appended to the workspace's write-ahead log (sealed under a subkey
//!    of the target account's key, fsynced, group-committed): from then on it is acknowledged;
//! 4. batches are buffered per table and UTC day and written as encrypted segments, each
//!    recorded in the catalog with the log records it holds; the log is then checkpointed;
//! 5. at the end of the payload everything buffered is flushed, so a query right after sees it.
//!
//! Before anything else, what the log holds beyond its checkpoint (a crash) is replayed, skipping
//! what the catalog already has, so each acknowledged row is stored exactly once (R-E3).

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use logvault_core::{NameKind, validate_name};
use logvault_ingest::{
    Batcher, BatcherOptions, Format, IngestError, ParseOptions, Parser, SegmentBatch, SegmentSink,
    TableSchema, Wal, WalKey, WalKeyError, WalKeyRef, WalOptions, WalRecord,
};
use logvault_store::{AccountId, Store, WalRange};
use serde::Serialize;

use crate::counters;
use crate::keys::KeyStateError;
use crate::{Engine, EngineError};

/// How to ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The payload's format.
    pub format: Format,
    /// Parsing limits and the bad-record policy.
    pub parse: ParseOptions,
    /// Segment sizes and time partitions.
    pub batcher: BatcherOptions,
}

impl IngestOptions {
    /// Defaults for a payload in `format`.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            parse: ParseOptions::default(),
            batcher: BatcherOptions::default(),
        }
    }
}

/// What an ingest did; the CLI prints it as `{"accepted", "dropped", "reason"?, ...}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestReport {
    /// Rows acknowledged (durable in the write-ahead log, and in segments by the end).
    pub accepted: u64,
    /// Rows dropped because the workspace's key is revoked or not provisioned (R-E2, R-D2).
    pub dropped: u64,
    /// Why rows were dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Malformed records skipped.
    pub rejected: u64,
    /// The first malformed records, with their line numbers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Segments written.
    pub segments: usize,
    /// Where the rows went: `service` or `cluster-<name>`.
    pub account: String,
    /// Rows of an earlier, interrupted ingest recovered from the log first.
    #[serde(skip_serializing_if = "is_zero")]
    pub recovered: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Progress of a running ingest, for a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestProgress {
    /// Rows acknowledged so far.
    pub accepted: u64,
    /// Malformed records so far.
    pub rejected: u64,
}

/// How often (engine clock) a running ingest asks whether its account key was revoked since it
/// was admitted, so that a long or endless stream stops at a revocation too (R-G1, R-E2).
const GATE_INTERVAL: chrono::Duration = chrono::Duration::seconds(1);

/// Why new rows of `workspace` are dropped, if `e` (from admitting its cluster's account) says
/// the cluster's key is revoked or not provisioned (R-E2, R-D2); `None` for other errors.
fn drop_reason(workspace: &str, cluster: &str, e: &EngineError) -> Option<String> {
    match e {
        EngineError::Key(
            e @ (KeyStateError::Revoked { .. } | KeyStateError::NotProvisioned { .. }),
        ) => Some(format!("workspace {workspace}: {e}")),
        // Revoked between the admission and taking the key: the next check says so.
        EngineError::Store(e) if e.is_revocation() => Some(format!(
            "workspace {workspace}: the key of cluster {cluster} was revoked: {e}"
        )),
        _ => None,
    }
}

/// Where new rows of a workspace go.
enum Target {
    /// Write through this sink, which holds the account key the write was admitted with.
    Write(Arc<StoreSink>),
    Drop(String),
}

/// The segment sink over the store: writes a segment, then records it in the catalog with the
/// log records it holds.
struct StoreSink {
    store: Arc<Store>,
    cache: logvault_cache::HotCache,
    workspace: String,
    account: AccountId,
    /// The account key the ingest was admitted with, for the segments it writes until the end
    /// of its input or a revocation, whichever comes first (then the rest stays in the log).
    aek: Arc<logvault_crypto::Aek>,
    record: logvault_store::AekRecord,
    written: AtomicUsize,
}

impl StoreSink {
    async fn new(
        engine: &Engine,
        workspace: &str,
        account: &AccountId,
    ) -> Result<Arc<Self>, EngineError> {
        let keyring = engine.store().keyring();
        let aek = match keyring.cached_aek(account) {
            Some(aek) => aek,
            None => keyring.aek(account).await?,
        };
        let record = match keyring.cached_record(account) {
            Some(r) => r,
            None => keyring.latest_record(account).await?,
        };
        Ok(Arc::new(Self {
            store: engine.store().clone(),
            cache: engine.inner.cache.clone(),
            workspace: workspace.to_owned(),
            account: account.clone(),
            aek,
            record,
            written: AtomicUsize::new(0),
        }))
    }
}

#[async_trait]
impl SegmentSink for StoreSink {
    async fn write_segment(&self, segment: SegmentBatch) -> Result<(), IngestError> {
        let fail = |e: logvault_store::StoreError| IngestError::Sink {
            table: segment.table.clone(),
            reason: e.to_string(),
        };
        let mut entry = self
            .store
            .write_segment_under(
                &self.account,
                &self.aek,
                &self.record,
                &self.workspace,
                &segment.table,
                vec![segment.batch.clone()],
            )
            .await
            .map_err(fail)?;
        entry.wal = segment
            .wal
            .iter()
            .map(|r| WalRange {
                first: r.first,
                last: r.last,
            })
            .collect();
        let manifest = self
            .store
            .catalog()
            .add_segments(
                &self.workspace,
                &segment.table,
                self.store.clock().now(),
                vec![entry.clone()],
            )
            .await
            .map_err(fail)?;
        // New data is hot (R-F1): the cache admits it.
        self.cache.admit(manifest.location(&entry), entry.max_time);
        self.written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Holds the workspace's write-ahead log for one process at a time.
struct WorkspaceLock(std::fs::File);

impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl Engine {
    fn wal_dir(&self, workspace: &str) -> PathBuf {
        self.home().dir("wal").join(workspace)
    }

    /// Replays what an interrupted ingest left in `workspace`'s log, unless another process is
    /// ingesting into it now (that process replays it). Returns the rows recovered.
    pub(crate) async fn recover_if_idle(&self, workspace: &str) -> Result<u64, EngineError> {
        let dir = self.wal_dir(workspace);
        if !dir.exists() {
            return Ok(0);
        }
        let busy = |e: std::io::Error| EngineError::Busy {
            workspace: workspace.to_owned(),
            reason: e.to_string(),
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(busy)?;
        match file.try_lock() {
            Ok(()) => {
                let _lock = WorkspaceLock(file);
                self.recover_log(workspace, &IngestOptions::new(Format::Json))
                    .await
            }
            Err(_) => Ok(0),
        }
    }

    async fn lock_workspace(&self, workspace: &str) -> Result<WorkspaceLock, EngineError> {
        let dir = self.wal_dir(workspace);
        let busy = |reason: String| EngineError::Busy {
            workspace: workspace.to_owned(),
            reason,
        };
        std::fs::create_dir_all(&dir).map_err(|e| busy(e.to_string()))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(|e| busy(e.to_string()))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(WorkspaceLock(file)),
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => {
                    return Err(busy(format!(
                        "another process is ingesting into it and holds its log ({e})"
                    )));
                }
            }
        }
    }

    /// Where `workspace`'s new rows go now, or why they are dropped.
    async fn write_target(&self, workspace: &str) -> Result<Target, EngineError> {
        let ws = self.control().get_workspace(workspace)?;
        let Some(cluster) = ws.cluster else {
            let account = AccountId::service();
            return Ok(Target::Write(
                StoreSink::new(self, workspace, &account).await?,
            ));
        };
        let record = self.control().get_cluster(&cluster)?;
        // Identity None is a revocation (R-C5): the key lifecycle reports it as such below.
        if record.identity.kind != logvault_control::IdentityType::None
            && let Some(reason) = record.not_ready_reason()
        {
            return Ok(Target::Drop(format!(
                "workspace {workspace} is linked to cluster {cluster}, whose key is not \
                 provisioned: {reason}"
            )));
        }
        let account = AccountId::cluster(&cluster)?;
        let admitted = match self.admit_account(&account).await {
            Ok(()) => StoreSink::new(self, workspace, &account).await,
            Err(e) => Err(e),
        };
        match admitted {
            Ok(sink) => Ok(Target::Write(sink)),
            Err(e) => match drop_reason(workspace, &cluster, &e) {
                Some(reason) => Ok(Target::Drop(reason)),
                None => Err(e),
            },
        }
    }

    /// The log key derived from an account key held by the caller.
    fn wal_key_from(
        account: &AccountId,
        aek: &logvault_crypto::Aek,
    ) -> Result<Arc<WalKey>, String> {
        let key = aek.derive_purpose_key("wal").map_err(|e| e.to_string())?;
        let scheme = if account.is_service() {
            logvault_ingest::KeyScheme::Service
        } else {
            logvault_ingest::KeyScheme::Customer
        };
        let key_ref = WalKeyRef {
            scheme,
            account: account.to_string(),
        };
        WalKey::new(key_ref, key)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }

    /// The log key of `account`: a subkey of its account key, which must be in memory.
    fn wal_key(&self, account: &AccountId) -> Result<Option<Arc<WalKey>>, String> {
        match self.store().keyring().cached_aek(account) {
            Some(aek) => Self::wal_key_from(account, &aek).map(Some),
            None => Ok(None),
        }
    }

    /// Ingests one payload into `workspace`'s `table`.
    ///
    /// # Errors
    /// 404 for a missing workspace; an invalid table name; [`EngineError::Key`] when the vault
    /// is unreachable and no account key is cached (the payload is refused, not dropped: the
    /// sender may retry); log, store and parse errors (with the refuse policy).
    pub async fn ingest<R: BufRead>(
        &self,
        workspace: &str,
        table: &str,
        input: R,
        options: &IngestOptions,
        progress: &mut (dyn FnMut(IngestProgress) + Send),
    ) -> Result<IngestReport, EngineError> {
        validate_name(NameKind::Table, table)?;
        let target = self.write_target(workspace).await?;
        let _lock = self.lock_workspace(workspace).await?;
        let mut report = IngestReport::default();
        let sink = match target {
            Target::Write(sink) => sink,
            Target::Drop(reason) => {
                let mut schema = TableSchema::new(table)?;
                let mut parser = Parser::new(
                    input,
                    options.format,
                    &mut schema,
                    options.parse.clone(),
                    self.now(),
                )?;
                let rows = self.drop_input(&mut parser, 0, workspace, &reason)?;
                report.dropped = rows;
                report.reason = Some(reason);
                return Ok(report);
            }
        };
        report.account = sink.account.to_string();
        report.recovered = self.recover_log(workspace, options).await?;

        let key =
            Self::wal_key_from(&sink.account, &sink.aek).map_err(|reason| EngineError::Busy {
                workspace: workspace.to_owned(),
                reason,
            })?;
        let (wal, recovery) = self.open_wal(workspace).await?;
        let mut batcher = Batcher::new(
            options.batcher.clone(),
            sink.clone(),
            self.clock().clone(),
            recovery.next_seq.saturating_sub(1),
        )?;
        let mut schema = self.table_schema(workspace, table).await?;
        let mut parser = Parser::new(
            input,
            options.format,
            &mut schema,
            options.parse.clone(),
            self.now(),
        )?;
        let mut next_gate = self.now() + GATE_INTERVAL;
        let mut revoked = false;
        while let Some(batch) = parser.next_batch()? {
            if self.now() >= next_gate {
                next_gate = self.now() + GATE_INTERVAL;
                if let Some(reason) = self.revoked_since_admission(workspace, &sink.account).await {
                    // R-E2 for a long or endless stream: this batch and the rest of the input
                    // are dropped and counted. What was acknowledged stays in the log, not
                    // written under the revoked key now: replay keeps it until the key is back.
                    let first = batch.num_rows() as u64;
                    report.dropped = self.drop_input(&mut parser, first, workspace, &reason)?;
                    report.reason = Some(reason);
                    revoked = true;
                    break;
                }
            }
            let seq = wal
                .append(
                    &key,
                    &[WalRecord {
                        table,
                        batch: &batch,
                    }],
                )
                .await?;
            report.accepted += batch.num_rows() as u64;
            // Promotions of what this ingest writes wait until it is over.
            self.inner.cache.note_activity();
            batcher.add(table, &batch, Some(seq.last)).await?;
            wal.checkpoint(batcher.checkpoint()).await?;
            progress(IngestProgress {
                accepted: report.accepted,
                rejected: parser.report().rejected,
            });
        }
        let parsed = parser.into_report();
        report.rejected = parsed.rejected;
        report.errors = parsed.errors.iter().map(ToString::to_string).collect();
        if !revoked {
            batcher.flush_all().await?;
            wal.checkpoint(batcher.checkpoint()).await?;
        }
        wal.close();
        report.segments = sink.written.load(Ordering::Relaxed);
        Ok(report)
    }

    /// Reads the rest of `parser`'s input without storing it and counts its rows, plus `first`
    /// already read, as dropped for `reason` (R-E2, R-D2): into the workspace's counters as it
    /// goes (at most once a second, so that an endless stream shows in status) and in the
    /// returned total.
    fn drop_input<R: BufRead>(
        &self,
        parser: &mut Parser<'_, R>,
        first: u64,
        workspace: &str,
        reason: &str,
    ) -> Result<u64, EngineError> {
        let dir = self.wal_dir(workspace);
        let (mut total, mut pending) = (first, first);
        let mut next_count = self.now() + GATE_INTERVAL;
        while let Some(batch) = parser.next_batch()? {
            let rows = batch.num_rows() as u64;
            total += rows;
            pending += rows;
            if self.now() >= next_count {
                counters::add_dropped(&dir, pending, reason)?;
                pending = 0;
                next_count = self.now() + GATE_INTERVAL;
            }
        }
        counters::add_dropped(&dir, pending, reason)?;
        Ok(total)
    }

    /// Why `account`'s key no longer admits new rows (revoked, or its cluster's key not
    /// provisioned), or `None` if it does. A check that is not due only reads the local key
    /// state; other failures (a vault outage) leave the running ingest on the key it holds.
    async fn revoked_since_admission(
        &self,
        workspace: &str,
        account: &AccountId,
    ) -> Option<String> {
        let cluster = account.cluster_name()?;
        let e = self.admit_account(account).await.err()?;
        let reason = drop_reason(workspace, cluster, &e);
        if reason.is_none() {
            tracing::debug!(workspace, account = %account, error = %e, "key check during ingest failed; going on with the admitted key");
        }
        reason
    }

    async fn open_wal(
        &self,
        workspace: &str,
    ) -> Result<(Wal, logvault_ingest::Recovery), EngineError> {
        // A frame naming an account that does not exist is damaged, not waiting for a key.
        let accounts = self.store().account_ids().await?;
        let keyring = |key_ref: &WalKeyRef| -> Result<Option<Arc<WalKey>>, WalKeyError> {
            let account = AccountId::parse(&key_ref.account)
                .ok()
                .filter(|a| accounts.contains(a))
                .ok_or_else(|| {
                    WalKeyError::Unknown(format!("no storage account {}", key_ref.account))
                })?;
            match self.wal_key(&account)? {
                Some(k) => Ok(Some(k)),
                None if self.is_revoked(&account) => Ok(None),
                None => {
                    Err(format!("the key of storage account {account} is not available").into())
                }
            }
        };
        Ok(Wal::open(
            &self.home().dir("wal"),
            workspace,
            WalOptions::default(),
            &keyring,
        )?)
    }

    fn is_revoked(&self, account: &AccountId) -> bool {
        account.cluster_name().is_some_and(|c| {
            self.key_states()
                .ok()
                .and_then(|all| all.into_iter().find(|s| s.cluster == c))
                .is_some_and(|s| s.key_state == crate::keys::KeyState::Revoked)
        })
    }

    /// Replays what the log holds beyond its checkpoint (after a crash), skipping what the
    /// catalog already has; returns the rows recovered.
    async fn recover_log(
        &self,
        workspace: &str,
        options: &IngestOptions,
    ) -> Result<u64, EngineError> {
        // Make the keys of every account the log may name available. Records under a key that
        // is revoked now stay in the log (acknowledged: R-E3) and are replayed once it is back.
        for account in self.store().account_ids().await? {
            let _ = self.admit_account(&account).await;
        }
        let (wal, recovery) = self.open_wal(workspace).await?;
        if recovery.held_revoked > 0 {
            tracing::warn!(
                workspace,
                records = recovery.held_revoked,
                "acknowledged log records under a revoked key are kept until the key is back"
            );
        }
        if recovery.records.is_empty() {
            wal.close();
            return Ok(0);
        }
        let mut flushed: HashMap<String, Vec<(i64, i64, Vec<WalRange>)>> = HashMap::new();
        for r in &recovery.records {
            if !flushed.contains_key(&r.table) {
                let manifest = self.store().catalog().manifest(workspace, &r.table).await?;
                flushed.insert(
                    r.table.clone(),
                    manifest
                        .segments
                        .iter()
                        .map(|s| {
                            (
                                s.min_time.timestamp_micros(),
                                s.max_time.timestamp_micros(),
                                s.wal.clone(),
                            )
                        })
                        .collect(),
                );
            }
        }
        let mut batchers: BTreeMap<String, (Batcher, Arc<StoreSink>)> = BTreeMap::new();
        let mut rows = 0u64;
        for r in &recovery.records {
            let account = AccountId::parse(&r.key.account)?;
            if !batchers.contains_key(account.as_str()) {
                let sink = StoreSink::new(self, workspace, &account).await?;
                let batcher = Batcher::new(
                    options.batcher.clone(),
                    sink.clone(),
                    self.clock().clone(),
                    0,
                )?;
                batchers.insert(account.to_string(), (batcher, sink));
            }
            let segments = flushed.get(&r.table).cloned().unwrap_or_default();
            let Some((batcher, _)) = batchers.get_mut(account.as_str()) else {
                continue;
            };
            rows += batcher
                .replay(&r.table, &r.batch, r.seq, |partition, seq| {
                    let (start, end) = (
                        partition.start().timestamp_micros(),
                        partition.end().timestamp_micros(),
                    );
                    segments.iter().any(|(lo, hi, wal)| {
                        *lo < end && *hi >= start && wal.iter().any(|w| w.contains(seq))
                    })
                })
                .await? as u64;
        }
        for (batcher, _) in batchers.values_mut() {
            batcher.flush_all().await?;
        }
        let last = recovery
            .records
            .iter()
            .map(|r| r.seq)
            .max()
            .unwrap_or(recovery.checkpoint);
        wal.checkpoint(last).await?;
        wal.close();
        Ok(rows)
    }

    /// The table's schema as the catalog's segments have it, to grow from.
    async fn table_schema(&self, workspace: &str, table: &str) -> Result<TableSchema, EngineError> {
        let manifest = self.store().catalog().manifest(workspace, table).await?;
        if manifest.segments.is_empty() {
            return Ok(TableSchema::new(table)?);
        }
        let merged = logvault_store::schema::merge(manifest.segments.iter().map(|s| &s.schema));
        Ok(TableSchema::from_arrow(table, &merged)?)
    }
}
