//! The write path of logvault: rows in, encrypted segments out, each acknowledged row stored
//! exactly once across crashes (R-E3).
//!
//! ```text
//! payload ─ parse (blocking thread) ─> batches ─ append ─> write-ahead log (fsynced: acknowledged)
//!                                                 └─ bounded queue ─> encoding task: batcher ─ segments ─> store + catalog ─> checkpoint
//! ```
//!
//! One [`WorkspaceWriter`] per workspace holds its log (and an exclusive lock on it across
//! processes) from [`WriteContext::open_writer`] to [`WorkspaceWriter::close`]. Opening replays
//! what an interrupted writer left after the log's checkpoint, skipping what the catalog already
//! has. Rows come as Arrow batches ([`WorkspaceWriter::append`]) or as a text payload parsed on
//! a blocking thread ([`WorkspaceWriter::ingest_payload`]); a payload whose end the caller
//! waits for (a file) may instead be loaded without the log, acknowledged at checkpoints that
//! list its segments ([`WorkspaceWriter::load_payload`], `load.rs`). Logged rows are batched into
//! segments by an encoding task of the writer, fed by a queue bounded by
//! [`ENCODE_QUEUE_BYTES`], so that the log acknowledges the next rows while segments are
//! encoded (three stages on as many cores: parsing, logging, encoding).
//!
//! This crate decides nothing about keys: the caller (the key lifecycle) admits a write and
//! hands the writer an account key lease; a [`KeySource`] gives the keys replay needs, a
//! [`WriteGate`] says during a long payload whether the key was revoked since admission.
//!
//! It must never: write rows in clear (the log is sealed under a subkey of the account key,
//! segments are encrypted Parquet), store a row under a key revoked before it was stored, or
//! let a checkpoint pass a row that is not in a segment.

mod declared;
mod encoder;
mod error;
mod load;
mod lock;
mod payload;
mod replay;
mod sink;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use logvault_cache::HotCache;
use logvault_core::SharedClock;
use logvault_ingest::{BatcherOptions, WalKey, WalKeyRef, WalKeyScheme};
use logvault_store::{AccountId, AccountKeyLease, Store};

pub use encoder::ENCODE_QUEUE_BYTES;
pub use error::WriteError;
pub use load::{LOAD_CHECKPOINT_INTERVAL, LoadOptions};
pub use payload::{Payload, PayloadProgress, PayloadReport, ProgressFn, drop_payload};
pub use writer::{LoggedGroup, WorkspaceWriter};

/// Gives a writer the keys that replaying its log needs.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// A lease of `account`'s key to store replayed rows under: `Ok(None)` when the key is
    /// revoked now (its records stay in the log, acknowledged, until it is back), `Err` with
    /// the reason when it cannot be had now (the open fails and may be retried).
    async fn replay_key(&self, account: &AccountId) -> Result<Option<AccountKeyLease>, String>;
}

/// Asked by a running payload.
#[async_trait]
pub trait WriteGate: Send + Sync {
    /// Why the key the payload was admitted under no longer admits rows, if it does not.
    async fn revoked(&self) -> Option<String>;
    /// Records `rows` dropped for `reason` (counters, reports).
    ///
    /// # Errors
    /// Why they could not be recorded.
    fn dropped(&self, rows: u64, reason: &str) -> Result<(), String>;
}

/// What writers share: the store, the hot cache (new segments are admitted), the clock, and the
/// directory under which each workspace's log lives (`<root>/<workspace>/`).
#[derive(Debug, Clone)]
pub struct WriteContext {
    store: Arc<Store>,
    cache: HotCache,
    clock: SharedClock,
    wal_root: PathBuf,
}

impl WriteContext {
    /// A context over `store`, with logs under `wal_root` (`HOME/wal`).
    pub fn new(store: Arc<Store>, cache: HotCache, clock: SharedClock, wal_root: PathBuf) -> Self {
        Self {
            store,
            cache,
            clock,
            wal_root,
        }
    }

    /// The log directory of `workspace`.
    pub fn wal_dir(&self, workspace: &str) -> PathBuf {
        logvault_ingest::wal::workspace_dir(&self.wal_root, workspace)
    }

    /// Opens `workspace`'s writer: takes the lock on its log (waiting up to two minutes for
    /// another process to let go), opens the log once, and replays what it holds after its
    /// checkpoint.
    ///
    /// # Errors
    /// [`WriteError::Busy`] if the lock cannot be had; log, store and key errors.
    pub async fn open_writer(
        &self,
        workspace: &str,
        keys: &dyn KeySource,
        batcher: BatcherOptions,
    ) -> Result<WorkspaceWriter, WriteError> {
        let dir = self.wal_dir(workspace);
        let lock = lock::lock(&dir, workspace, lock::LOCK_WAIT).await?;
        WorkspaceWriter::open(self, workspace, dir, lock, keys, batcher).await
    }

    /// Replays what an interrupted writer left in `workspace`'s log, unless there is nothing to
    /// replay (read from the log's clear headers: nothing is written then) or another process
    /// is writing it now (that process replays it). Returns the rows stored.
    ///
    /// # Errors
    /// As [`WriteContext::open_writer`].
    pub async fn replay_if_idle(
        &self,
        workspace: &str,
        keys: &dyn KeySource,
    ) -> Result<u64, WriteError> {
        let dir = self.wal_dir(workspace);
        let probe = {
            let (dir, ws) = (dir.clone(), workspace.to_owned());
            replay::blocking(workspace, move || logvault_ingest::wal::pending(&dir, &ws)).await??
        };
        if !probe.any() {
            return Ok(0);
        }
        let Some(lock) = lock::try_lock(&dir, workspace)? else {
            return Ok(0);
        };
        let opened =
            WorkspaceWriter::open(self, workspace, dir, lock, keys, BatcherOptions::default())
                .await;
        let writer = match opened {
            Ok(writer) => writer,
            // Only a torn tail to cut (no acknowledged record waits), and the log cannot be
            // written (a full or read-only disk): the store holds everything acknowledged, so
            // a reader goes on; the next writer cuts the tail.
            Err(WriteError::Ingest(e @ logvault_ingest::IngestError::WalIo { .. }))
                if !probe.records =>
            {
                tracing::warn!(workspace, error = %e, "the write-ahead log cannot be repaired now; nothing acknowledged waits in it");
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        let rows = writer.recovered();
        writer.close().await?;
        Ok(rows)
    }

    /// Moves log files that a home written before December 2026 keeps directly in the log root
    /// into each workspace's directory (`logvault_ingest::wal::upgrade_shared_layout`), under a
    /// lock, so that two processes opening the home at once do it once. Cheap when there is
    /// nothing to move.
    ///
    /// # Errors
    /// [`WriteError::Busy`] if the lock cannot be had; log errors.
    pub async fn upgrade_layout(&self) -> Result<(), WriteError> {
        let root = self.wal_root.clone();
        replay::blocking("(all)", move || upgrade_layout_blocking(&root)).await?
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

fn upgrade_layout_blocking(root: &std::path::Path) -> Result<(), WriteError> {
    let legacy = std::fs::read_dir(root).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_type().is_ok_and(|t| t.is_file())
                && e.file_name().to_str().is_some_and(|n| {
                    n == "checkpoint" || (n.starts_with("wal-") && n.ends_with(".lvw"))
                })
        })
    });
    if !legacy {
        return Ok(());
    }
    let busy = |e: std::io::Error| WriteError::Busy {
        workspace: "(all)".into(),
        reason: format!(
            "cannot lock {} to upgrade the logs' layout: {e}",
            root.display()
        ),
    };
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(".layout.lock"))
        .map_err(busy)?;
    lock.lock().map_err(busy)?;
    let result = logvault_ingest::wal::upgrade_shared_layout(root);
    let _ = lock.unlock();
    result?;
    Ok(())
}

/// The log key of an account: a purpose subkey of its account key.
pub(crate) fn wal_key(
    workspace: &str,
    account: &AccountId,
    aek: &logvault_crypto::Aek,
) -> Result<Arc<WalKey>, WriteError> {
    let fail = |reason: String| WriteError::Key {
        workspace: workspace.to_owned(),
        account: account.to_string(),
        reason,
    };
    let key = aek
        .derive_purpose_key("wal")
        .map_err(|e| fail(e.to_string()))?;
    let scheme = if account.is_service() {
        WalKeyScheme::Service
    } else {
        WalKeyScheme::Customer
    };
    let key_ref = WalKeyRef {
        scheme,
        account: account.to_string(),
    };
    WalKey::new(key_ref, key)
        .map(Arc::new)
        .map_err(|e| fail(e.to_string()))
}
