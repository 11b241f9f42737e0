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
//! A bulk load ([`IngestOptions::load`], what `logvault ingest FILE` does) skips step 3: its
//! segments are listed in the catalog at checkpoints, all those since the last at once, and what
//! a checkpoint listed is acknowledged (`logvault_write::LoadOptions`).
//!
//! Before anything else, what the log holds beyond its checkpoint (a crash) is replayed, skipping
//! what the catalog already has, so each acknowledged row is stored exactly once (R-E3).
//!
//! Steps 3 to 5 and the replay are the write path's (`logvault-write`); this module decides
//! where rows go and whether they may, and counts what is dropped.

use std::io::BufRead;
use std::path::PathBuf;

use async_trait::async_trait;
use logvault_core::{NameKind, validate_name};
use logvault_ingest::{BatcherOptions, Format, ParseOptions, TableSchema};
use logvault_store::{AccountId, AccountKeyLease};
use logvault_write::{KeySource, LoadOptions, Payload, ProgressFn, WriteGate, drop_payload};
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
    /// `Some`: a bulk load, for a payload whose end the caller waits for (a file): rows are
    /// not logged but stored at checkpoints, each listing everything read before it in the
    /// catalog at once, and acknowledged then (`logvault_write::LoadOptions`). `None` (the
    /// default): every parsed batch is acknowledged once the write-ahead log has it, as a
    /// stream needs.
    pub load: Option<LoadOptions>,
}

impl IngestOptions {
    /// Defaults for a payload in `format`.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            parse: ParseOptions::default(),
            batcher: BatcherOptions::default(),
            load: None,
        }
    }

    /// Defaults for a file in `format`: a bulk load with the default checkpoints.
    pub fn load(format: Format) -> Self {
        Self {
            load: Some(LoadOptions::default()),
            ..Self::new(format)
        }
    }
}

/// What an ingest did; the CLI prints it as `{"accepted", "dropped", "reason"?, ...}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestReport {
    /// Rows acknowledged (durable in the write-ahead log, or stored by a bulk load's
    /// checkpoint; in segments by the end).
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
    /// Values that did not convert to their column's declared type (a table with a declared
    /// schema) and were stored as null.
    #[serde(skip_serializing_if = "is_zero")]
    pub nulled: u64,
    /// Columns the table's declared schema does not name, left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undeclared: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Progress of a running ingest, for a progress bar.
pub type IngestProgress = logvault_write::PayloadProgress;

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
pub(crate) enum Target {
    /// Write under this lease of the account's key (the key the write was admitted with).
    Write(Box<AccountKeyLease>),
    Drop(String),
}

/// The keys replay needs, through the key lifecycle: every account is admitted first, so its
/// key is in the keyring's cache; a revoked one holds its records in the log.
pub(crate) struct EngineKeys<'a>(pub(crate) &'a Engine);

#[async_trait]
impl KeySource for EngineKeys<'_> {
    async fn replay_key(&self, account: &AccountId) -> Result<Option<AccountKeyLease>, String> {
        let engine = self.0;
        let admitted = engine.admit_account(account).await;
        let keyring = engine.store().keyring();
        if keyring.cached_aek(account).is_some() {
            return keyring
                .lease(account)
                .await
                .map(Some)
                .map_err(|e| e.to_string());
        }
        if engine.keys().is_revoked(account) {
            return Ok(None);
        }
        Err(match admitted {
            Err(e) => e.to_string(),
            Ok(()) => "it is not cached".into(),
        })
    }
}

/// What a running ingest asks: whether its key was revoked since admission, and where dropped
/// rows are counted.
struct EngineGate<'a> {
    engine: &'a Engine,
    workspace: &'a str,
    account: Option<AccountId>,
    counters: PathBuf,
}

#[async_trait]
impl WriteGate for EngineGate<'_> {
    async fn revoked(&self) -> Option<String> {
        let account = self.account.as_ref()?;
        self.engine
            .revoked_since_admission(self.workspace, account)
            .await
    }

    fn dropped(&self, rows: u64, reason: &str) -> Result<(), String> {
        counters::add_dropped(&self.counters, rows, reason).map_err(|e| e.to_string())
    }
}

impl Engine {
    fn write_context(&self) -> &logvault_write::WriteContext {
        &self.inner.writes
    }

    /// Replays what an interrupted ingest left in `workspace`'s log, unless there is nothing to
    /// replay or another process is ingesting into it now (that process replays it). Returns
    /// the rows recovered.
    pub(crate) async fn recover_if_idle(&self, workspace: &str) -> Result<u64, EngineError> {
        Ok(self
            .write_context()
            .replay_if_idle(workspace, &EngineKeys(self))
            .await?)
    }

    /// Where `workspace`'s new rows go now, or why they are dropped.
    pub(crate) async fn write_target(&self, workspace: &str) -> Result<Target, EngineError> {
        let ws = self.control().get_workspace(workspace)?;
        let Some(cluster) = ws.cluster else {
            let account = AccountId::service();
            return Ok(Target::Write(Box::new(
                self.store().keyring().lease(&account).await?,
            )));
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
            Ok(()) => self
                .store()
                .keyring()
                .lease(&account)
                .await
                .map_err(EngineError::from),
            Err(e) => Err(e),
        };
        match admitted {
            Ok(lease) => Ok(Target::Write(Box::new(lease))),
            Err(e) => match drop_reason(workspace, &cluster, &e) {
                Some(reason) => Ok(Target::Drop(reason)),
                None => Err(e),
            },
        }
    }

    /// Ingests one payload into `workspace`'s `table`. The input is read on a blocking thread,
    /// so a slow sender never holds an async worker. With [`IngestOptions::load`] it is a bulk
    /// load (no write-ahead log; acknowledged at checkpoints), else logged batch by batch.
    ///
    /// # Errors
    /// 404 for a missing workspace; an invalid table name; [`EngineError::Key`] when the vault
    /// is unreachable and no account key is cached (the payload is refused, not dropped: the
    /// sender may retry); log, store and parse errors (with the refuse policy).
    pub async fn ingest<R: BufRead + Send + 'static>(
        &self,
        workspace: &str,
        table: &str,
        input: R,
        options: &IngestOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<IngestReport, EngineError> {
        validate_name(NameKind::Table, table)?;
        let target = self.write_target(workspace).await?;
        let mut report = IngestReport::default();
        let mut gate = EngineGate {
            engine: self,
            workspace,
            account: None,
            counters: logvault_ingest::wal::workspace_dir(&self.home().dir("wal"), workspace),
        };
        let lease = match target {
            Target::Write(lease) => *lease,
            Target::Drop(reason) => {
                let payload = Payload {
                    input,
                    format: options.format,
                    parse: options.parse.clone(),
                    schema: TableSchema::new(table)?,
                    received: self.now(),
                };
                report.dropped =
                    drop_payload(workspace, payload, self.clock(), &gate, &reason).await?;
                report.reason = Some(reason);
                return Ok(report);
            }
        };
        gate.account = lease.account.cluster_name().map(|_| lease.account.clone());
        report.account = lease.account.to_string();
        let mut writer = self
            .write_context()
            .open_writer(workspace, &EngineKeys(self), options.batcher.clone())
            .await?;
        report.recovered = writer.recovered();
        let payload = Payload {
            input,
            format: options.format,
            parse: options.parse.clone(),
            schema: self.table_schema(workspace, table).await?,
            received: self.now(),
        };
        let result = match &options.load {
            Some(load) => {
                writer
                    .load_payload(payload, &lease, &gate, load, progress)
                    .await
            }
            None => {
                writer
                    .ingest_payload(payload, &lease, &gate, progress)
                    .await
            }
        };
        let done = match result {
            Ok(done) => done,
            Err(e) => {
                // What was acknowledged stays in the log; the next open replays it.
                writer.discard().await;
                return Err(e.into());
            }
        };
        report.nulled = writer.conformed().nulled;
        report.undeclared = writer.conformed().undeclared.clone();
        report.segments = writer.close().await?;
        report.accepted = done.accepted;
        report.dropped = done.dropped;
        report.reason = done.reason;
        report.rejected = done.rejected;
        report.errors = done.errors;
        Ok(report)
    }

    /// Ingests Arrow record batches into `workspace`'s `table`, as an embedder has them: each
    /// is made rows of the table first (types a table holds, `TimeGenerated` required), then
    /// they go through the same key gate and write path as a payload. Under a revoked key the
    /// rows are dropped and counted (R-E2).
    ///
    /// # Errors
    /// As [`Engine::ingest`]; `InvalidBatch` naming the column at fault (nothing written).
    pub async fn ingest_batches(
        &self,
        workspace: &str,
        table: &str,
        batches: &[arrow::array::RecordBatch],
    ) -> Result<IngestReport, EngineError> {
        validate_name(NameKind::Table, table)?;
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let mut report = IngestReport::default();
        let lease = match self.write_target(workspace).await? {
            Target::Write(lease) => *lease,
            Target::Drop(reason) => {
                let dir = logvault_ingest::wal::workspace_dir(&self.home().dir("wal"), workspace);
                counters::add_dropped(&dir, rows, &reason)?;
                report.dropped = rows;
                report.reason = Some(reason);
                return Ok(report);
            }
        };
        report.account = lease.account.to_string();
        let mut writer = self
            .write_context()
            .open_writer(workspace, &EngineKeys(self), BatcherOptions::default())
            .await?;
        report.recovered = writer.recovered();
        match writer
            .append_arrow(table, batches, &lease, self.now())
            .await
        {
            Ok(accepted) => report.accepted = accepted,
            Err(e) => {
                writer.discard().await;
                return Err(e.into());
            }
        }
        report.nulled = writer.conformed().nulled;
        report.undeclared = writer.conformed().undeclared.clone();
        report.segments = writer.close().await?;
        Ok(report)
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

    /// The table's schema as the catalog's segments have it, to grow from (a new table's, for a
    /// table with a declared schema).
    async fn table_schema(&self, workspace: &str, table: &str) -> Result<TableSchema, EngineError> {
        let manifest = self.store().catalog().manifest(workspace, table).await?;
        // A declared table's rows are conformed to its declaration by the writer: the parser
        // only reads what arrives.
        if manifest.segments.is_empty() || manifest.declared.is_some() {
            return Ok(TableSchema::new(table)?);
        }
        let merged = logvault_store::schema::merge(manifest.segments.iter().map(|s| &s.schema));
        Ok(TableSchema::from_arrow(table, &merged)?)
    }
}
