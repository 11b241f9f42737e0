//! The catalog: one manifest per workspace and table, listing its segments and its retention.
//!
//! Manifests live in the service account's object view (`catalog/<ws>/<table>/`), because the
//! catalog must stay readable (for retention) even while a customer key is revoked. Each version
//! is a whole manifest, sealed with AES-256-GCM under a purpose key derived from the service
//! account's key, bound to its workspace, table and version. Versions are numbered records
//! written with `PutMode::Create` (see [`crate::records`]): a reader takes the highest, a writer
//! that loses a race reads again and reapplies its change, so no update is ever lost.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use logvault_crypto::Key256;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::keyring::Keyring;
use crate::layout::{
    AccountId, SegmentId, SegmentLocation, check_table, check_workspace, manifest_dir,
};
use crate::records::{Created, MAX_ATTEMPTS, RecordLog};

mod sealed;

use sealed::{open_manifest, seal_manifest};

/// Format version of manifests.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;
/// Retention of a table that was never given one (days; Log Analytics' default).
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
/// Shortest retention a table may have (days).
pub const MIN_RETENTION_DAYS: u32 = 1;
/// Longest retention a table may have (days; twelve years).
pub const MAX_RETENTION_DAYS: u32 = 4383;
const CATALOG_KEY_LABEL: &str = "catalog";
/// Manifest versions kept behind a table's latest. Each update deletes the version this many
/// behind the one it created, and the collection pass ([`crate::Store::collect_segments`])
/// sweeps any older one left (a failed delete, versions from before versions were deleted): a
/// reader lists the versions to find the latest, so their number must not grow with every
/// segment a long-running process stores. A reader that listed a version since deleted lists
/// again.
pub const MANIFEST_VERSIONS_KEPT: u64 = 16;
/// How much older (by the store's clock) than the newest listed version an old version must be
/// before an update or the collection pass deletes it, by default. A writer reads the latest
/// version, then creates the next number; had that number been written by another writer and
/// deleted as old meanwhile, its create would succeed over a version newer ones replaced, and its
/// change would be lost. Deleting only versions this much older than a newer one means that can
/// only happen to a writer that took longer than this between its read and its write, which
/// [`Catalog::update`] checks ([`StoreError::Uncertain`]).
pub const DEFAULT_MANIFEST_VERSION_MIN_AGE_SECS: i64 = 10;

/// Which key protected a segment's account key when the segment was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum KeyScheme {
    /// The service key (MMK).
    #[serde(rename_all = "camelCase")]
    Service {
        /// The service key's version that wrapped the account key.
        key_version: String,
    },
    /// A customer key (CMK), through a cluster.
    #[serde(rename_all = "camelCase")]
    Customer {
        /// The cluster.
        cluster: String,
        /// The vault.
        vault: String,
        /// The key.
        key: String,
        /// The version that wrapped the account key.
        key_version: String,
    },
}

/// One segment as the catalog knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEntry {
    /// The segment's id.
    pub id: SegmentId,
    /// The storage account holding it.
    pub account: AccountId,
    /// The smallest `TimeGenerated`.
    pub min_time: DateTime<Utc>,
    /// The largest `TimeGenerated`.
    pub max_time: DateTime<Utc>,
    /// Rows.
    pub rows: u64,
    /// Bytes of the Parquet file.
    pub bytes: u64,
    /// Its Arrow schema.
    pub schema: SchemaRef,
    /// The key scheme at write time.
    pub key_scheme: KeyScheme,
    /// The account key epoch it was written under.
    pub epoch: u32,
    /// When it was written.
    pub created: DateTime<Utc>,
    /// The write-ahead log records whose rows it holds (sorted, disjoint): replay after a crash
    /// skips them, so every acknowledged row is stored exactly once. Empty for segments written
    /// without a log.
    pub wal: Vec<WalRange>,
}

/// An inclusive range of write-ahead log sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WalRange {
    /// The first.
    pub first: u64,
    /// The last.
    pub last: u64,
}

impl WalRange {
    /// Whether `seq` is in the range.
    pub fn contains(&self, seq: u64) -> bool {
        (self.first..=self.last).contains(&seq)
    }
}

/// A segment a compaction replaced: no longer listed for reading, its file kept for the store's
/// grace period (queries that read the catalog before may still be reading it) and deleted by
/// the next maintenance pass after that ([`crate::Store::collect_segments`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetiredSegment {
    /// The segment's id.
    pub id: SegmentId,
    /// The storage account holding it.
    pub account: AccountId,
    /// When it was replaced (the store's clock).
    pub retired: DateTime<Utc>,
}

/// One version of a table's manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The workspace.
    pub workspace: String,
    /// The table.
    pub table: String,
    /// The version (0: nothing written yet).
    pub version: u64,
    /// Retention in days (R-K1).
    pub retention_days: u32,
    /// The segments, in the order they were added.
    pub segments: Vec<SegmentEntry>,
    /// When this version was written.
    pub updated: DateTime<Utc>,
    /// The table's declared schema (`logvault table create --schema`), if it has one: the
    /// columns and types every row is conformed to, known before any row arrives. Field
    /// metadata carries each column's Kusto type and description.
    pub declared: Option<SchemaRef>,
    /// Segments replaced by a compaction whose files still wait for their grace period to end
    /// before they are deleted. Never read by queries.
    pub retired: Vec<RetiredSegment>,
}

impl Manifest {
    fn empty(workspace: &str, table: &str) -> Self {
        Self {
            workspace: workspace.to_owned(),
            table: table.to_owned(),
            version: 0,
            retention_days: DEFAULT_RETENTION_DAYS,
            segments: Vec::new(),
            updated: DateTime::<Utc>::UNIX_EPOCH,
            declared: None,
            retired: Vec::new(),
        }
    }

    /// The table's schema as queries see it: the declared columns first (with their types and
    /// metadata), then every other column of its segments, widened across segments (see
    /// [`crate::schema::merge`]).
    pub fn schema(&self) -> SchemaRef {
        crate::schema::merge(
            self.declared
                .iter()
                .chain(self.segments.iter().map(|s| &s.schema)),
        )
    }

    /// Where a segment of this table lives.
    pub fn location(&self, entry: &SegmentEntry) -> SegmentLocation {
        SegmentLocation {
            account: entry.account.clone(),
            workspace: self.workspace.clone(),
            table: self.table.clone(),
            segment: entry.id,
        }
    }

    /// Where a retired segment of this table lives.
    pub fn retired_location(&self, retired: &RetiredSegment) -> SegmentLocation {
        SegmentLocation {
            account: retired.account.clone(),
            workspace: self.workspace.clone(),
            table: self.table.clone(),
            segment: retired.id,
        }
    }

    /// Sets the retention, checking its range.
    ///
    /// # Errors
    /// [`StoreError::InvalidRetention`] if `days` is out of range.
    pub fn set_retention(&mut self, days: u32) -> Result<(), StoreError> {
        if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&days) {
            return Err(StoreError::InvalidRetention {
                workspace: self.workspace.clone(),
                table: self.table.clone(),
                days,
                min: MIN_RETENTION_DAYS,
                max: MAX_RETENTION_DAYS,
            });
        }
        self.retention_days = days;
        Ok(())
    }
}

/// The catalog of every workspace's tables.
#[derive(Debug, Clone)]
pub struct Catalog {
    objects: Arc<dyn ObjectStore>,
    keyring: Arc<Keyring>,
    /// See [`DEFAULT_MANIFEST_VERSION_MIN_AGE_SECS`].
    version_min_age: chrono::Duration,
    /// What queries may read without the storage (off unless a refresh period is set).
    pub(crate) query_cache: crate::catalog_cache::SharedQueryCache,
}

impl Catalog {
    /// A catalog in the service account's object view `objects`, sealed under the service
    /// account's key from `keyring`.
    pub fn new(objects: Arc<dyn ObjectStore>, keyring: Arc<Keyring>) -> Self {
        Self {
            objects,
            keyring,
            version_min_age: chrono::Duration::seconds(DEFAULT_MANIFEST_VERSION_MIN_AGE_SECS),
            query_cache: Default::default(),
        }
    }

    /// This catalog, deleting old manifest versions only once they are `age` older than a newer
    /// one (see [`DEFAULT_MANIFEST_VERSION_MIN_AGE_SECS`]; zero: as soon as they are
    /// [`MANIFEST_VERSIONS_KEPT`] behind, without the protection).
    #[must_use]
    pub fn with_version_min_age(mut self, age: chrono::Duration) -> Self {
        self.version_min_age = age.max(chrono::Duration::zero());
        self
    }

    /// The listed versions that may be deleted now that `latest` exists: more than
    /// [`MANIFEST_VERSIONS_KEPT`] behind it, and written at least the minimum age before the
    /// newest one listed (the store's clock on both sides).
    fn deletable(&self, listed: &[(u64, DateTime<Utc>)], latest: u64) -> Vec<u64> {
        let Some(newest) = listed.iter().map(|(_, t)| *t).max() else {
            return Vec::new();
        };
        listed
            .iter()
            .filter(|(n, t)| {
                n + MANIFEST_VERSIONS_KEPT < latest && *t + self.version_min_age <= newest
            })
            .map(|(n, _)| *n)
            .collect()
    }

    fn log(&self, workspace: &str, table: &str) -> RecordLog {
        RecordLog::new(
            self.objects.clone(),
            manifest_dir(workspace, table),
            ".manifest",
            format!("catalog of table {table} in workspace {workspace}"),
        )
    }

    async fn key(&self) -> Result<Key256, StoreError> {
        let aek = self.keyring.aek(&AccountId::service()).await?;
        aek.derive_purpose_key(CATALOG_KEY_LABEL)
            .map_err(|e| StoreError::crypto("catalog key", &e))
    }

    /// The latest manifest of a table (an empty one, version 0, if nothing was written).
    ///
    /// # Errors
    /// Invalid names, storage errors, [`StoreError::ManifestIntegrity`],
    /// [`StoreError::UnsupportedFormat`], or the service key being unavailable.
    pub async fn manifest(&self, workspace: &str, table: &str) -> Result<Manifest, StoreError> {
        check_workspace(workspace)?;
        check_table(table)?;
        match self.log(workspace, table).latest().await? {
            None => Ok(Manifest::empty(workspace, table)),
            Some((n, sealed)) => open_manifest(&self.key().await?, workspace, table, n, &sealed),
        }
    }

    /// Opens every version of a table's manifest (for the scrub): each version's number and
    /// whether it opens, and the latest version if it opens.
    ///
    /// # Errors
    /// Invalid names, storage errors, or the service key being unavailable.
    pub(crate) async fn verify_versions(
        &self,
        workspace: &str,
        table: &str,
    ) -> Result<(Vec<(u64, Result<(), StoreError>)>, Option<Manifest>), StoreError> {
        check_workspace(workspace)?;
        check_table(table)?;
        let log = self.log(workspace, table);
        let numbers = log.numbers().await?;
        if numbers.is_empty() {
            return Ok((Vec::new(), Some(Manifest::empty(workspace, table))));
        }
        let key = self.key().await?;
        let mut out = Vec::with_capacity(numbers.len());
        let mut latest = None;
        for n in &numbers {
            let opened = match log.get(*n).await? {
                Some(sealed) => open_manifest(&key, workspace, table, *n, &sealed),
                // Deleted meanwhile as old (newer versions were written): nothing to check.
                None if numbers.last() != Some(n) => continue,
                None => Err(StoreError::corrupt(
                    log.what(),
                    format!("version {n} vanished while it was read"),
                )),
            };
            out.push((*n, opened.as_ref().map(drop).map_err(Clone::clone)));
            if numbers.last() == Some(n) {
                latest = opened.ok();
            }
        }
        Ok((out, latest))
    }

    /// Deletes the versions of a table's manifest more than [`MANIFEST_VERSIONS_KEPT`] behind
    /// its latest (what updates left: a failed delete, versions written before they were
    /// deleted); returns how many it deleted.
    ///
    /// # Errors
    /// Invalid names, storage errors (of the listing; a delete that fails is left for the next
    /// time).
    pub(crate) async fn prune_versions(
        &self,
        workspace: &str,
        table: &str,
    ) -> Result<usize, StoreError> {
        check_workspace(workspace)?;
        check_table(table)?;
        let log = self.log(workspace, table);
        let listed = log.listed().await?;
        let Some(&(latest, _)) = listed.last() else {
            return Ok(0);
        };
        let mut deleted = 0;
        for n in self.deletable(&listed, latest) {
            match log.delete(n).await {
                Ok(()) => deleted += 1,
                Err(e) => {
                    tracing::debug!(workspace, table, version = n, error = %e, "deleting an old manifest version failed");
                }
            }
        }
        Ok(deleted)
    }

    /// Applies `change` to the latest manifest and stores the result as the next version. If
    /// another writer stored that version first, reads again and reapplies `change`; it must
    /// therefore only depend on the manifest it is given.
    ///
    /// # Errors
    /// Whatever `change` returns; [`StoreError::Conflict`] after too many lost races; the errors
    /// of [`Catalog::manifest`].
    pub async fn update<F>(
        &self,
        workspace: &str,
        table: &str,
        now: DateTime<Utc>,
        mut change: F,
    ) -> Result<Manifest, StoreError>
    where
        F: FnMut(&mut Manifest) -> Result<(), StoreError> + Send,
    {
        check_workspace(workspace)?;
        check_table(table)?;
        let log = self.log(workspace, table);
        let key = self.key().await?;
        for _ in 0..MAX_ATTEMPTS {
            let began = std::time::Instant::now();
            let (mut manifest, listed) = match log.latest_listed().await? {
                None => (Manifest::empty(workspace, table), Vec::new()),
                Some((n, sealed, listed)) => {
                    (open_manifest(&key, workspace, table, n, &sealed)?, listed)
                }
            };
            change(&mut manifest)?;
            manifest.version += 1;
            manifest.updated = now;
            let sealed = seal_manifest(&key, &manifest)?;
            if log.create(manifest.version, sealed).await? == Created::Yes {
                // A version is deleted only once a newer one is the minimum age younger, so a
                // number this update read as free can have been written and deleted since only
                // if the update took longer than that (see DEFAULT_MANIFEST_VERSION_MIN_AGE_SECS):
                // then, unless the version is still the latest, it is not known whether it
                // counts. Half the age is the margin.
                let took = began.elapsed();
                if !self.version_min_age.is_zero()
                    && chrono::Duration::from_std(took * 2).unwrap_or(chrono::Duration::MAX)
                        >= self.version_min_age
                    && log.latest_number().await? != Some(manifest.version)
                {
                    return Err(StoreError::Uncertain {
                        what: log.what().to_owned(),
                        secs: took.as_secs(),
                    });
                }
                self.remember(&manifest);
                // Awaited, not spawned: a short-lived process (`logvault ingest`) may exit
                // before a spawned task runs. A delete that fails, or a version too young to
                // delete yet, is deleted by a later update or the next collection pass.
                for old in self.deletable(&listed, manifest.version) {
                    if let Err(e) = log.delete(old).await {
                        tracing::debug!(error = %e, version = old, "deleting an old manifest version failed");
                    }
                }
                return Ok(manifest);
            }
            tracing::debug!(
                workspace,
                table,
                version = manifest.version,
                "catalog race lost; retrying"
            );
            tokio::task::yield_now().await;
        }
        Err(StoreError::Conflict {
            what: log.what().to_owned(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Adds segments to a table.
    ///
    /// # Errors
    /// As [`Catalog::update`].
    pub async fn add_segments(
        &self,
        workspace: &str,
        table: &str,
        now: DateTime<Utc>,
        entries: Vec<SegmentEntry>,
    ) -> Result<Manifest, StoreError> {
        self.update(workspace, table, now, |m| {
            for e in &entries {
                if !m.segments.iter().any(|s| s.id == e.id) {
                    m.segments.push(e.clone());
                }
            }
            Ok(())
        })
        .await
    }

    /// Removes segments from a table (those not present are ignored).
    ///
    /// # Errors
    /// As [`Catalog::update`].
    pub async fn remove_segments(
        &self,
        workspace: &str,
        table: &str,
        now: DateTime<Utc>,
        ids: &[SegmentId],
    ) -> Result<Manifest, StoreError> {
        self.update(workspace, table, now, |m| {
            m.segments.retain(|s| !ids.contains(&s.id));
            Ok(())
        })
        .await
    }

    /// Declares a table's schema (`logvault table create --schema`). The table must be new:
    /// no declared schema and no segment yet.
    ///
    /// # Errors
    /// [`StoreError::TableExists`] when the table has a declared schema or data; as
    /// [`Catalog::update`].
    pub async fn declare(
        &self,
        workspace: &str,
        table: &str,
        now: DateTime<Utc>,
        schema: SchemaRef,
    ) -> Result<Manifest, StoreError> {
        self.update(workspace, table, now, |m| {
            let exists = |reason: String| StoreError::TableExists {
                workspace: m.workspace.clone(),
                table: m.table.clone(),
                reason,
            };
            if m.declared.is_some() {
                return Err(exists("it has a declared schema".to_owned()));
            }
            if !m.segments.is_empty() {
                return Err(exists(format!(
                    "it holds {} segment(s) of ingested rows; a schema can only be declared for a new table",
                    m.segments.len()
                )));
            }
            m.declared = Some(schema.clone());
            Ok(())
        })
        .await
    }

    /// Sets a table's retention in days.
    ///
    /// # Errors
    /// [`StoreError::InvalidRetention`]; as [`Catalog::update`].
    pub async fn set_retention(
        &self,
        workspace: &str,
        table: &str,
        now: DateTime<Utc>,
        days: u32,
    ) -> Result<Manifest, StoreError> {
        self.update(workspace, table, now, |m| m.set_retention(days))
            .await
    }

    /// The workspaces that have a catalog.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn workspaces(&self) -> Result<Vec<String>, StoreError> {
        self.children(&object_store::path::Path::from(crate::layout::CATALOG_DIR))
            .await
    }

    /// The tables of a workspace that have a catalog.
    ///
    /// # Errors
    /// Invalid names, storage errors.
    pub async fn tables(&self, workspace: &str) -> Result<Vec<String>, StoreError> {
        check_workspace(workspace)?;
        self.children(&object_store::path::Path::from_iter([
            crate::layout::CATALOG_DIR,
            workspace,
        ]))
        .await
    }

    async fn children(&self, dir: &object_store::path::Path) -> Result<Vec<String>, StoreError> {
        let listed = self
            .objects
            .list_with_delimiter(Some(dir))
            .await
            .map_err(|e| StoreError::storage(format!("catalog directory {dir}"), &e))?;
        let mut names: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }
}
