//! Compaction: small segments of a table merged into larger ones.
//!
//! Ingestion writes a segment per payload and time partition, so a table fed in small payloads
//! collects many small segments; each costs a file open and a footer decryption per query.
//! Compaction merges the small segments of one storage account and one UTC day into one segment
//! (written as its members are read, a batch at a time, so a merge's memory does not grow with
//! its rows), under the account's current key (the same account key: rotation only re-wraps it, so no key
//! changes for the data's owner), and swaps them in the catalog in one update: the new segment is
//! added and the old ones removed only if they are all still there (a concurrent compaction or
//! retention purge wins, and this one is abandoned). The same update records the old segments as
//! retired; their files are deleted once the store's grace period is over (queries that read the
//! catalog before may still read them), by the collection pass that ends every compaction and
//! retention purge ([`crate::Store::collect_segments`]). A crash leaves unreferenced files, never
//! duplicate rows; they are collected as orphans. The new segment lists the write-ahead log
//! records of the ones it replaces, so replay still skips them.
//!
//! Segments whose account key cannot be had (revoked) are left as they are.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, NaiveDate, Utc};
use object_store::ObjectStoreExt as _;
use serde::Serialize;

use crate::catalog::{RetiredSegment, SegmentEntry, WalRange};
use crate::gc::CollectReport;
use crate::layout::{AccountId, SegmentId, SegmentLocation};
use crate::{Store, StoreError};

/// Which segments compaction merges, and whether it collects afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionOptions {
    /// Segments with fewer rows than this are small.
    pub small_rows: u64,
    /// Segments of more bytes than this are never merged.
    pub small_bytes: u64,
    /// The most rows a merged segment holds.
    pub max_rows: u64,
    /// Whether the collection pass ([`Store::collect_segments`]) follows the merges. A process
    /// whose retention pass collects every table anyway (`logvault serve`'s key monitor, every
    /// minute) turns it off for its background compaction, so that each table's storage is not
    /// listed twice a minute.
    pub collect: bool,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        Self {
            small_rows: 250_000,
            small_bytes: 32 << 20,
            max_rows: 2_000_000,
            collect: true,
        }
    }
}

/// What compaction of one table did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompactionReport {
    /// The table.
    pub table: String,
    /// Segments before.
    pub segments_before: usize,
    /// Segments after.
    pub segments_after: usize,
    /// Segments merged away.
    pub merged: usize,
    /// Groups left alone because their account key is unavailable.
    pub skipped_groups: usize,
    /// What the collection pass after the merges deleted or left waiting (replaced segments
    /// past their grace period, orphan files).
    pub collected: CollectReport,
    /// Each merge: the new segment and the ones it replaced (for a cache that holds the
    /// members' rows, see `logvault_cache::HotCache::adopt_merge`).
    #[serde(skip)]
    pub merges: Vec<MergedSegments>,
}

/// One merge of a compaction: the segment written and the segments it replaced, in the order
/// their rows were written into it (each member's rows in their own order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedSegments {
    /// The new segment.
    pub segment: SegmentLocation,
    /// Its schema (the members' merged: a column some lack is null there, a column whose type
    /// differs is cast to the wider).
    pub schema: SchemaRef,
    /// Its newest row's time.
    pub max_time: DateTime<Utc>,
    /// The replaced segments.
    pub members: Vec<SegmentLocation>,
}

fn merge_wal(entries: &[&SegmentEntry]) -> Vec<WalRange> {
    let mut all: Vec<WalRange> = entries.iter().flat_map(|e| e.wal.iter().copied()).collect();
    all.sort_by_key(|r| r.first);
    let mut out: Vec<WalRange> = Vec::with_capacity(all.len());
    for r in all {
        match out.last_mut() {
            Some(last) if r.first <= last.last.saturating_add(1) => {
                last.last = last.last.max(r.last)
            }
            _ => out.push(r),
        }
    }
    out
}

impl Store {
    /// Merges the small segments of `workspace`'s `table`.
    ///
    /// # Errors
    /// Catalog and storage errors; a failed merge of one group stops the compaction (what was
    /// merged before stays merged).
    pub async fn compact_table(
        &self,
        workspace: &str,
        table: &str,
        options: CompactionOptions,
    ) -> Result<CompactionReport, StoreError> {
        let manifest = self.catalog().manifest(workspace, table).await?;
        let mut report = CompactionReport {
            table: table.to_owned(),
            segments_before: manifest.segments.len(),
            ..CompactionReport::default()
        };
        let mut groups: BTreeMap<(AccountId, NaiveDate), Vec<&SegmentEntry>> = BTreeMap::new();
        for s in &manifest.segments {
            if s.rows < options.small_rows && s.bytes <= options.small_bytes {
                groups
                    .entry((s.account.clone(), s.min_time.date_naive()))
                    .or_default()
                    .push(s);
            }
        }
        for ((account, _day), members) in groups {
            for chunk in chunks(&members, options.max_rows) {
                if chunk.len() < 2 {
                    continue;
                }
                match self
                    .merge(workspace, table, &account, &manifest, chunk)
                    .await
                {
                    Ok(Some(merge)) => {
                        report.merged += chunk.len();
                        report.merges.push(merge);
                    }
                    Ok(None) => {}
                    Err(e) if e.is_revocation() || e.vault_kind().is_some() => {
                        // Counted in the report (`table compact` prints it; the server's
                        // background pass logs when the count changes), not warned of at
                        // every pass while a key stays revoked.
                        tracing::debug!(%account, table, error = %e, "compaction skipped a group");
                        report.skipped_groups += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if options.collect {
            match self.collect_segments(workspace, table).await {
                Ok(collected) => report.collected = collected,
                Err(e) => {
                    tracing::warn!(workspace, table, error = %e, "collection of replaced segments failed");
                    report.collected.failures += 1;
                }
            }
        }
        report.segments_after = self
            .catalog()
            .manifest(workspace, table)
            .await?
            .segments
            .len();
        Ok(report)
    }

    /// Merges `chunk` into one segment; `None` if the catalog changed under it.
    async fn merge(
        &self,
        workspace: &str,
        table: &str,
        account: &AccountId,
        manifest: &crate::Manifest,
        chunk: &[&SegmentEntry],
    ) -> Result<Option<MergedSegments>, StoreError> {
        // The merged segment is written as its members are read, a batch at a time: memory
        // holds one member's file, a few batches and the writer's row group, whatever the
        // merge's size. A member that fails to authenticate part-way drops the writer, which
        // stores nothing.
        let schema = crate::schema::merge(chunk.iter().map(|e| &e.schema));
        let mut writer = self
            .open_segment(account, workspace, table, schema.clone())
            .await?;
        for member in chunk {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(2);
            let loc = manifest.location(member);
            let reading = self.stream_segment(&loc, tx);
            let writing = async {
                while let Some(batch) = rx.recv().await {
                    let batch = crate::schema::conform(&batch, &schema)
                        .map_err(|e| StoreError::corrupt("compaction", e.to_string()))?;
                    writer.write(batch).await?;
                }
                Ok::<_, StoreError>(())
            };
            let (read, written) = tokio::join!(reading, writing);
            // A write error closes the channel, which ends the reading early (`Ok`).
            written?;
            read?;
        }
        let mut entry = writer.finish().await?;
        entry.wal = merge_wal(chunk);
        let old: Vec<SegmentId> = chunk.iter().map(|e| e.id).collect();
        let old_entries: Vec<(SegmentId, AccountId)> =
            chunk.iter().map(|e| (e.id, e.account.clone())).collect();
        let now = self.clock().now();
        let mut swapped = false;
        let new_entry = entry.clone();
        let result = self
            .catalog()
            .update(workspace, table, now, |m| {
                swapped = old.iter().all(|id| m.segments.iter().any(|s| &s.id == id));
                if swapped {
                    m.segments.retain(|s| !old.contains(&s.id));
                    m.segments.push(new_entry.clone());
                    m.retired
                        .extend(old_entries.iter().map(|(id, account)| RetiredSegment {
                            id: *id,
                            account: account.clone(),
                            retired: now,
                        }));
                }
                Ok(())
            })
            .await;
        let new_loc = manifest.location(&entry);
        match result {
            Ok(_) if swapped => {}
            Ok(_) => {
                // The catalog changed under it and nobody references the new file: remove it.
                let _ = self.root().delete(&new_loc.root_path()).await;
                return Ok(None);
            }
            Err(e) => {
                // The commit may have landed with its reply lost: then the catalog references
                // the new file (and no longer the old ones), which must stay. Read it again to
                // know; when that is not known, the new file stays as an unreferenced orphan
                // (the scrub reports it) rather than risk deleting rows the catalog lists.
                let landed = match self.catalog().manifest(workspace, table).await {
                    Ok(m) => m.segments.iter().any(|s| s.id == entry.id),
                    Err(_) => return Err(e),
                };
                if !landed {
                    return Err(e);
                }
                tracing::warn!(workspace, table, error = %e, "the catalog commit's reply was lost, but it landed");
            }
        }
        // The replaced files stay for the grace period: `collect_segments` deletes them.
        tracing::info!(workspace, table, merged = chunk.len(), into = %new_loc, "compacted");
        Ok(Some(MergedSegments {
            segment: new_loc,
            schema: entry.schema,
            max_time: entry.max_time,
            members: chunk.iter().map(|m| manifest.location(m)).collect(),
        }))
    }
}

/// Consecutive runs of `members` holding at most `max_rows` rows each.
fn chunks<'a>(members: &'a [&'a SegmentEntry], max_rows: u64) -> Vec<&'a [&'a SegmentEntry]> {
    let mut out = Vec::new();
    let (mut start, mut rows) = (0, 0u64);
    for (i, m) in members.iter().enumerate() {
        if rows + m.rows > max_rows && i > start {
            out.push(&members[start..i]);
            start = i;
            rows = 0;
        }
        rows += m.rows;
    }
    if start < members.len() {
        out.push(&members[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_ranges_merge() {
        let mk = |r: &[(u64, u64)]| SegmentEntry {
            id: SegmentId::generate(),
            account: AccountId::service(),
            min_time: chrono::DateTime::UNIX_EPOCH,
            max_time: chrono::DateTime::UNIX_EPOCH,
            rows: 1,
            bytes: 1,
            schema: std::sync::Arc::new(arrow::datatypes::Schema::empty()),
            key_scheme: crate::KeyScheme::Service {
                key_version: "1".into(),
            },
            epoch: 1,
            created: chrono::DateTime::UNIX_EPOCH,
            wal: r
                .iter()
                .map(|(a, b)| WalRange {
                    first: *a,
                    last: *b,
                })
                .collect(),
        };
        let (a, b) = (mk(&[(1, 3), (10, 12)]), mk(&[(4, 5), (20, 20)]));
        let merged = merge_wal(&[&a, &b]);
        assert_eq!(
            merged,
            [
                WalRange { first: 1, last: 5 },
                WalRange {
                    first: 10,
                    last: 12
                },
                WalRange {
                    first: 20,
                    last: 20
                }
            ]
        );
    }
}
