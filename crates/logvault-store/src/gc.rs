//! Deleting segment files that no query reads any more, once their grace period is over.
//!
//! Two kinds of files wait for deletion:
//! - **retired** segments: a compaction replaced them and recorded them in the manifest's
//!   `retired` list with the time (store clock) in the same catalog update. A query that read
//!   the catalog just before may still be reading them, so they are kept for the store's grace
//!   period ([`crate::StoreConfig::segment_grace`]) and deleted by the first maintenance pass
//!   after it (a compaction, a retention purge, or a restarted server's first purge), which
//!   then takes them out of the list;
//! - **orphans**: files under a table's segment directory that its latest manifest does not
//!   know at all (neither listed nor retired), left by a failed or interrupted delete, a crash
//!   between a segment's upload and its catalog commit, or a compaction whose commit failed.
//!   They are deleted once their last-modified time is older than the grace period (by this
//!   machine's clock, the one the object store's times come from), so a segment just uploaded
//!   by a writer that has not committed it yet is left alone.
//! - **staging files** of a local storage root: a segment is uploaded in parts as it is written
//!   (`put_multipart`), which `LocalFileSystem` writes to `<id>.parquet#<n>` beside the segment
//!   and renames at completion. A crash leaves that file; object_store's listings never show it,
//!   so nothing counts or reads it as a segment. With [`crate::StoreConfig::local_storage_dir`]
//!   set (a home's `HOME/storage`), the pass deletes the staging files of the table older than
//!   the grace period, and counts them as orphans. (Cloud stores keep uncommitted parts out of
//!   sight too: Azure discards uncommitted blocks after a week; on S3 a bucket lifecycle rule
//!   `AbortIncompleteMultipartUpload` removes them, see docs/deploy.md.)
//!
//! Deleting needs no key: files are deleted by path from the storage root, as retention does.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use object_store::ObjectStoreExt as _;
use serde::Serialize;

use crate::StoreError;
use crate::catalog::Manifest;
use crate::layout::{AccountId, SEGMENTS_DIR, SegmentId, SegmentLocation, join, objects_prefix};
use crate::store::Store;

/// What a collection pass over one or more tables did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectReport {
    /// Replaced segments deleted (their grace period was over).
    pub replaced_deleted: usize,
    /// Replaced segments still in their grace period (kept for queries that may read them).
    pub replaced_waiting: usize,
    /// Orphan files deleted (referenced by no manifest, older than the grace period).
    pub orphans_deleted: usize,
    /// Orphan files younger than the grace period (possibly a write not yet committed).
    pub orphans_waiting: usize,
    /// Deletes or catalog updates that failed (tried again by the next pass).
    pub failures: usize,
    /// Old versions of the table's manifest deleted (more than
    /// [`crate::MANIFEST_VERSIONS_KEPT`] behind its latest).
    pub versions_deleted: usize,
}

impl CollectReport {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Self) {
        self.replaced_deleted += other.replaced_deleted;
        self.replaced_waiting += other.replaced_waiting;
        self.orphans_deleted += other.orphans_deleted;
        self.orphans_waiting += other.orphans_waiting;
        self.failures += other.failures;
        self.versions_deleted += other.versions_deleted;
    }
}

/// A segment file found in storage.
#[derive(Debug, Clone)]
pub(crate) struct StoredSegment {
    pub(crate) account: AccountId,
    pub(crate) id: SegmentId,
    pub(crate) last_modified: DateTime<Utc>,
}

impl Store {
    /// Deletes `workspace`'s `table`'s replaced segments whose grace period is over and the
    /// orphan files older than it (see the module's documentation).
    ///
    /// # Errors
    /// Catalog errors reading the manifest (the service key must be available) and storage
    /// errors listing the table's segments. A failed delete is counted in
    /// [`CollectReport::failures`] and tried again by the next pass.
    pub async fn collect_segments(
        &self,
        workspace: &str,
        table: &str,
    ) -> Result<CollectReport, StoreError> {
        let grace = self.segment_grace();
        let now = self.clock().now();
        let mut report = CollectReport::default();
        let manifest = self.catalog().manifest(workspace, table).await?;
        let mut deleted: Vec<SegmentId> = Vec::new();
        for r in &manifest.retired {
            if r.retired + grace > now {
                report.replaced_waiting += 1;
                continue;
            }
            let loc = manifest.retired_location(r);
            if self.delete_segment_file(&loc).await {
                deleted.push(r.id);
            } else {
                report.failures += 1;
            }
        }
        if !deleted.is_empty() {
            let updated = self
                .catalog()
                .update(workspace, table, now, |m| {
                    m.retired.retain(|r| !deleted.contains(&r.id));
                    Ok(())
                })
                .await;
            match updated {
                Ok(_) => report.replaced_deleted = deleted.len(),
                // The files are gone; the entries go with the next pass (a delete of a
                // missing file counts as done).
                Err(e) => {
                    tracing::warn!(workspace, table, error = %e, "replaced segments deleted, catalog not updated");
                    report.failures += 1;
                }
            }
        }
        // Listed before the manifest is read again: a file committed meanwhile is then listed by
        // that manifest, so only files that no version up to now knows are orphans.
        let stored = self.stored_segments(workspace, table).await?;
        let manifest = self.catalog().manifest(workspace, table).await?;
        let wall = Utc::now();
        for orphan in unreferenced(&manifest, stored) {
            if orphan.last_modified + grace > wall {
                report.orphans_waiting += 1;
                continue;
            }
            let loc = SegmentLocation {
                account: orphan.account,
                workspace: workspace.to_owned(),
                table: table.to_owned(),
                segment: orphan.id,
            };
            if self.delete_segment_file(&loc).await {
                tracing::info!(segment = %loc, "orphan segment deleted");
                report.orphans_deleted += 1;
            } else {
                report.failures += 1;
            }
        }
        if let Some(dir) = self.local_storage_dir() {
            let dirs: Vec<std::path::PathBuf> = self
                .account_ids()
                .await?
                .iter()
                .map(|account| {
                    let rel = join(
                        &objects_prefix(account),
                        &object_store::path::Path::from_iter([SEGMENTS_DIR, workspace, table]),
                    );
                    rel.parts()
                        .fold(dir.to_path_buf(), |p, part| p.join(part.as_ref()))
                })
                .collect();
            let cutoff = std::time::SystemTime::now()
                .checked_sub(grace.to_std().unwrap_or_default())
                .unwrap_or(std::time::UNIX_EPOCH);
            let swept = tokio::task::spawn_blocking(move || sweep_staging(&dirs, cutoff))
                .await
                .unwrap_or_default();
            report.orphans_deleted += swept.deleted;
            report.orphans_waiting += swept.waiting;
            report.failures += swept.failures;
        }
        match self.catalog().prune_versions(workspace, table).await {
            Ok(n) => report.versions_deleted = n,
            Err(e) => {
                tracing::debug!(workspace, table, error = %e, "deleting old manifest versions failed");
                report.failures += 1;
            }
        }
        Ok(report)
    }

    /// Deletes the file of a segment that no manifest lists and none will (a write given up
    /// before its catalog commit), now rather than after the grace period. A failed delete is
    /// logged; the file is then an orphan that a later collection deletes.
    pub async fn delete_unlisted_segment(&self, loc: &SegmentLocation) {
        self.delete_segment_file(loc).await;
    }

    /// Deletes one segment's file: true when it is gone (deleted, or missing already).
    async fn delete_segment_file(&self, loc: &SegmentLocation) -> bool {
        match self.root().delete(&loc.root_path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => true,
            Err(e) => {
                tracing::warn!(segment = %loc, error = %e, "segment file not deleted; tried again later");
                false
            }
        }
    }

    /// Every segment file under `workspace/table` in every account, from the storage root (no
    /// key needed).
    pub(crate) async fn stored_segments(
        &self,
        workspace: &str,
        table: &str,
    ) -> Result<Vec<StoredSegment>, StoreError> {
        let rel = object_store::path::Path::from_iter([SEGMENTS_DIR, workspace, table]);
        let mut out = Vec::new();
        for account in self.account_ids().await? {
            let dir = join(&objects_prefix(&account), &rel);
            let metas: Vec<_> = self
                .root()
                .list(Some(&dir))
                .try_collect()
                .await
                .map_err(|e| {
                    StoreError::storage(
                        format!("segments of table {table} in workspace {workspace}"),
                        &e,
                    )
                })?;
            for m in metas {
                let Some(id) = SegmentId::of_file(&m.location) else {
                    continue;
                };
                out.push(StoredSegment {
                    account: account.clone(),
                    id,
                    last_modified: m.last_modified,
                });
            }
        }
        Ok(out)
    }
}

/// What a sweep of staging files did.
#[derive(Debug, Default)]
struct Swept {
    deleted: usize,
    waiting: usize,
    failures: usize,
}

/// Whether `name` is a staging file of `LocalFileSystem` (`<name>#<digits>`): what its
/// listings leave out.
pub(crate) fn is_staging_file(name: &str) -> bool {
    name.split_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Deletes the staging files in `dirs` last modified before `cutoff` (missing directories are
/// fine: a table may have no segment in an account).
fn sweep_staging(dirs: &[std::path::PathBuf], cutoff: std::time::SystemTime) -> Swept {
    let mut swept = Swept::default();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_str().is_some_and(is_staging_file) {
                continue;
            }
            let modified = entry.metadata().and_then(|m| m.modified());
            if modified.is_ok_and(|m| m > cutoff) {
                swept.waiting += 1;
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(file = %entry.path().display(), "staging file of an interrupted upload deleted");
                    swept.deleted += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %entry.path().display(), error = %e, "staging file not deleted; tried again later");
                    swept.failures += 1;
                }
            }
        }
    }
    swept
}

/// The files of `stored` that `manifest` neither lists nor holds as retired.
pub(crate) fn unreferenced(manifest: &Manifest, stored: Vec<StoredSegment>) -> Vec<StoredSegment> {
    let known: BTreeSet<(&AccountId, SegmentId)> = manifest
        .segments
        .iter()
        .map(|s| (&s.account, s.id))
        .chain(manifest.retired.iter().map(|r| (&r.account, r.id)))
        .collect();
    stored
        .into_iter()
        .filter(|s| !known.contains(&(&s.account, s.id)))
        .collect()
}
