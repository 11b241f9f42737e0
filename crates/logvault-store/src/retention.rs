//! Retention (R-K1): segments whose every row is older than the table's retention are purged,
//! including segments whose customer key is revoked.
//!
//! Purging needs no customer key: the catalog is under the service key, and a segment is
//! deleted by path from the storage root, without opening or decrypting it. A segment is first
//! removed from the catalog, then deleted; a crash in between leaves an unreferenced file that
//! no query can reach, never a catalog entry pointing at nothing; the collection pass that
//! follows every table's purge deletes such files once they are older than the grace period,
//! and the segments compactions replaced once theirs is over ([`crate::Store::collect_segments`]).
//! Expired segments themselves are deleted at once: past retention, data must go.

use chrono::{DateTime, Duration, Utc};
use object_store::ObjectStoreExt;

use crate::StoreError;
use crate::catalog::Manifest;
use crate::gc::CollectReport;
use crate::layout::{AccountId, SegmentId};
use crate::store::Store;

/// A segment removed by retention.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgedSegment {
    /// The workspace.
    pub workspace: String,
    /// The table.
    pub table: String,
    /// The segment.
    pub segment: SegmentId,
    /// The storage account it was in.
    pub account: AccountId,
    /// Its rows.
    pub rows: u64,
    /// Its bytes.
    pub bytes: u64,
    /// Its newest `TimeGenerated`.
    pub max_time: DateTime<Utc>,
}

/// What a purge did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeReport {
    /// The segments removed, table by table.
    pub purged: Vec<PurgedSegment>,
    /// The tables looked at.
    pub tables_checked: usize,
    /// What the collection pass over those tables deleted or left waiting (segments replaced
    /// by compactions past their grace period, orphan files).
    pub collected: CollectReport,
}

impl PurgeReport {
    /// Rows removed in total.
    pub fn rows(&self) -> u64 {
        self.purged.iter().map(|p| p.rows).sum()
    }
}

/// The oldest `TimeGenerated` a table with `retention_days` keeps at `now`.
pub fn retention_cutoff(now: DateTime<Utc>, retention_days: u32) -> DateTime<Utc> {
    now - Duration::days(i64::from(retention_days))
}

/// The segments of `manifest` entirely older than its retention at `now`.
pub fn expired(manifest: &Manifest, now: DateTime<Utc>) -> Vec<SegmentId> {
    let cutoff = retention_cutoff(now, manifest.retention_days);
    manifest
        .segments
        .iter()
        .filter(|s| s.max_time < cutoff)
        .map(|s| s.id)
        .collect()
}

impl Store {
    /// Purges the segments of one table that are past its retention, at the store clock's now.
    ///
    /// # Errors
    /// Catalog errors (the service key must be available) or storage errors deleting.
    pub async fn purge_table(
        &self,
        workspace: &str,
        table: &str,
    ) -> Result<Vec<PurgedSegment>, StoreError> {
        let now = self.clock().now();
        let manifest = self.catalog().manifest(workspace, table).await?;
        let ids = expired(&manifest, now);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.catalog()
            .remove_segments(workspace, table, now, &ids)
            .await?;
        let mut purged = Vec::with_capacity(ids.len());
        for entry in manifest.segments.iter().filter(|s| ids.contains(&s.id)) {
            let loc = manifest.location(entry);
            match self.root().delete(&loc.root_path()).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(StoreError::storage(format!("segment {loc}"), &e)),
            }
            tracing::info!(segment = %loc, max_time = %entry.max_time, "purged by retention");
            purged.push(PurgedSegment {
                workspace: workspace.to_owned(),
                table: table.to_owned(),
                segment: entry.id,
                account: entry.account.clone(),
                rows: entry.rows,
                bytes: entry.bytes,
                max_time: entry.max_time,
            });
        }
        Ok(purged)
    }

    /// Purges every table of every workspace in the catalog.
    ///
    /// # Errors
    /// As [`Store::purge_table`]; stops at the first table that fails.
    pub async fn purge_expired(&self) -> Result<PurgeReport, StoreError> {
        let mut report = PurgeReport::default();
        for workspace in self.catalog().workspaces().await? {
            for table in self.catalog().tables(&workspace).await? {
                report.tables_checked += 1;
                report
                    .purged
                    .extend(self.purge_table(&workspace, &table).await?);
                match self.collect_segments(&workspace, &table).await {
                    Ok(c) => report.collected.add(&c),
                    Err(e) => {
                        tracing::warn!(workspace, table, error = %e, "collection of replaced segments failed");
                        report.collected.failures += 1;
                    }
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{KeyScheme, SegmentEntry};
    use chrono::TimeZone;

    fn entry(max: DateTime<Utc>) -> SegmentEntry {
        SegmentEntry {
            id: SegmentId::generate(),
            account: AccountId::service(),
            min_time: max - Duration::hours(1),
            max_time: max,
            rows: 1,
            bytes: 1,
            schema: std::sync::Arc::new(arrow::datatypes::Schema::empty()),
            key_scheme: KeyScheme::Service {
                key_version: "1".into(),
            },
            epoch: 1,
            created: max,
            wal: Vec::new(),
        }
    }

    #[test]
    fn a_segment_expires_only_once_its_newest_row_is_past_retention() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let cutoff = retention_cutoff(now, 7);
        assert_eq!(cutoff, Utc.with_ymd_and_hms(2026, 5, 25, 0, 0, 0).unwrap());
        let old = entry(cutoff - Duration::nanoseconds(1));
        let at = entry(cutoff);
        let new = entry(now);
        let manifest = Manifest {
            workspace: "ws-one".into(),
            table: "Syslog".into(),
            version: 1,
            retention_days: 7,
            segments: vec![old.clone(), at, new],
            updated: now,
            declared: None,
            retired: Vec::new(),
        };
        assert_eq!(expired(&manifest, now), vec![old.id]);
        assert!(expired(&manifest, cutoff).is_empty());
    }
}
