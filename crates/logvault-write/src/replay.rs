//! Opening a workspace's log: what an interrupted writer left after the checkpoint is replayed
//! into segments, skipping what the catalog already has, so that each acknowledged row is stored
//! exactly once (R-E3; the rule is specified in `docs/ingest.md`, "crash and replay").

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use logvault_ingest::{
    Batcher, BatcherOptions, Recovery, Wal, WalKey, WalKeyError, WalKeyRef, WalOptions,
};
use logvault_store::{AccountId, AccountKeyLease, WalRange};

use crate::sink::StoreSink;
use crate::{KeySource, WriteContext, WriteError, wal_key};

/// The keys a log may name, resolved before it is opened (opening reads files on a blocking
/// thread, which must not wait on the vault).
struct ReplayKeyring {
    workspace: String,
    /// For records that need no replay (at or before the checkpoint, still authenticated when
    /// the log is opened): the keyring's cached keys, no vault call.
    store: Arc<logvault_store::Store>,
    /// `Some`: usable; `None`: revoked now (the records are held).
    keys: HashMap<String, Option<Arc<WalKey>>>,
    /// Accounts whose key could not be had now, and why.
    unavailable: HashMap<String, String>,
    /// Every account of the store: a frame naming another one cannot be authentic.
    accounts: std::collections::HashSet<String>,
}

impl logvault_ingest::WalKeyring for ReplayKeyring {
    fn key(&self, key_ref: &WalKeyRef) -> Result<Option<Arc<WalKey>>, WalKeyError> {
        if !self.accounts.contains(&key_ref.account) {
            // A frame naming an account that does not exist is damaged, not waiting for a key.
            return Err(WalKeyError::Unknown(format!(
                "no storage account {}",
                key_ref.account
            )));
        }
        if let Some(key) = self.keys.get(&key_ref.account) {
            return Ok(key.clone());
        }
        if let Ok(account) = AccountId::parse(&key_ref.account)
            && let Some(aek) = self.store.keyring().cached_aek(&account)
        {
            return wal_key(&self.workspace, &account, &aek)
                .map(Some)
                .map_err(|e| WalKeyError::Unavailable(e.to_string()));
        }
        Err(WalKeyError::Unavailable(
            match self.unavailable.get(&key_ref.account) {
                Some(reason) => format!(
                    "the key of storage account {} is not available: {reason}",
                    key_ref.account
                ),
                None => format!(
                    "the key of storage account {} is not available",
                    key_ref.account
                ),
            },
        ))
    }
}

/// Opens the log of `workspace` in `dir` on a blocking thread, replaying it into the store
/// first when it holds anything after its checkpoint. Returns the log, what its opening found,
/// and the rows replayed.
pub(crate) async fn open_and_replay(
    ctx: &WriteContext,
    dir: PathBuf,
    workspace: &str,
    keys: &dyn KeySource,
    batcher: &BatcherOptions,
) -> Result<(Wal, Recovery, u64), WriteError> {
    let pending = {
        let (dir, ws) = (dir.clone(), workspace.to_owned());
        blocking(workspace, move || {
            logvault_ingest::wal::needs_replay(&dir, &ws)
        })
        .await??
    };
    let accounts = ctx.store.account_ids().await?;
    let mut ring = ReplayKeyring {
        workspace: workspace.to_owned(),
        store: Arc::clone(&ctx.store),
        keys: HashMap::new(),
        unavailable: HashMap::new(),
        accounts: accounts.iter().map(ToString::to_string).collect(),
    };
    let mut leases: HashMap<String, AccountKeyLease> = HashMap::new();
    if pending {
        // Every account the log may name: records under a key revoked now stay in the log,
        // acknowledged (R-E3), and are replayed once it is back.
        for account in accounts {
            match keys.replay_key(&account).await {
                Ok(Some(lease)) => {
                    ring.keys.insert(
                        account.to_string(),
                        Some(wal_key(workspace, &account, &lease.aek)?),
                    );
                    leases.insert(account.to_string(), lease);
                }
                Ok(None) => {
                    ring.keys.insert(account.to_string(), None);
                }
                Err(reason) => {
                    ring.unavailable.insert(account.to_string(), reason);
                }
            }
        }
    }
    let (wal, recovery) = {
        let ws = workspace.to_owned();
        blocking(workspace, move || {
            Wal::open(&dir, &ws, WalOptions::default(), &ring)
        })
        .await??
    };
    if recovery.held_revoked > 0 {
        tracing::warn!(
            workspace,
            records = recovery.held_revoked,
            "acknowledged log records under a revoked key are kept until the key is back"
        );
    }
    if recovery.records.is_empty() {
        return Ok((wal, recovery, 0));
    }
    let rows = replay(ctx, workspace, &recovery, &leases, batcher).await?;
    let last = recovery
        .records
        .iter()
        .map(|r| r.seq)
        .max()
        .unwrap_or(recovery.checkpoint);
    wal.checkpoint(last).await?;
    Ok((wal, recovery, rows))
}

/// Replays `recovery`'s records into segments, skipping, per table and partition, the records
/// a segment of the catalog already lists. Returns the rows written.
async fn replay(
    ctx: &WriteContext,
    workspace: &str,
    recovery: &Recovery,
    leases: &HashMap<String, AccountKeyLease>,
    options: &BatcherOptions,
) -> Result<u64, WriteError> {
    // What the catalog has, per table: (min time, max time, log ranges) of each segment.
    let mut flushed: HashMap<String, Vec<(i64, i64, Vec<WalRange>)>> = HashMap::new();
    for r in &recovery.records {
        if !flushed.contains_key(&r.table) {
            let manifest = ctx.store.catalog().manifest(workspace, &r.table).await?;
            let segments = manifest
                .segments
                .iter()
                .map(|s| {
                    (
                        s.min_time.timestamp_micros(),
                        s.max_time.timestamp_micros(),
                        s.wal.clone(),
                    )
                })
                .collect();
            flushed.insert(r.table.clone(), segments);
        }
    }
    let mut batchers: BTreeMap<String, Batcher> = BTreeMap::new();
    let mut rows = 0u64;
    for r in &recovery.records {
        let account = AccountId::parse(&r.key.account)?;
        if !batchers.contains_key(account.as_str()) {
            let lease = leases
                .get(account.as_str())
                .cloned()
                .ok_or_else(|| WriteError::Key {
                    workspace: workspace.to_owned(),
                    account: account.to_string(),
                    reason: "no key to replay its records with".into(),
                })?;
            let sink = StoreSink::new(Arc::clone(&ctx.store), ctx.cache.clone(), workspace, lease);
            let batcher = Batcher::new(options.clone(), sink, 0)?;
            batchers.insert(account.to_string(), batcher);
        }
        let segments = flushed.get(&r.table).map(Vec::as_slice).unwrap_or_default();
        let Some(batcher) = batchers.get_mut(account.as_str()) else {
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
    for batcher in batchers.values_mut() {
        batcher.flush_all().await?;
    }
    Ok(rows)
}

/// Runs blocking file work off the async runtime's threads.
pub(crate) async fn blocking<T: Send + 'static>(
    workspace: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WriteError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WriteError::Internal {
            workspace: workspace.to_owned(),
            reason: format!("a blocking task of the write path failed: {e}"),
        })
}
