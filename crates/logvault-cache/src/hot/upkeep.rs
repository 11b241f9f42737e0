//! Emptying the cache: a workspace's purge (R-F3), the sweep of entries no longer hot, and the
//! segments a catalog no longer lists.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use logvault_store::{Manifest, SegmentLocation};
use serde::Serialize;

use super::{HotCache, lock};
use crate::stamp::CatalogMark;
use crate::warm;

/// What a purge removed (R-F3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachePurgeReport {
    /// The workspace.
    pub workspace: String,
    /// Segments removed from the memory tier (their plaintext buffers are zeroized once no
    /// query still reads them).
    pub memory_entries: u64,
    /// Bytes removed from the memory tier.
    pub memory_bytes: u64,
    /// Cache files removed from the disk tier.
    pub disk_entries: u64,
    /// Bytes of those files.
    pub disk_bytes: u64,
    /// Files found in the workspace's cache directories afterwards (writes that were under
    /// way) and deleted too.
    pub stray_files: u64,
    /// Whether a reload of the workspace was running and was stopped.
    pub warm_cancelled: bool,
}

/// What a sweep removed: entries outside their workspace's hot window and not read recently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Segments removed from the memory tier.
    pub memory_entries: u64,
    /// Their bytes.
    pub memory_bytes: u64,
    /// Cache files removed.
    pub disk_entries: u64,
    /// Their bytes.
    pub disk_bytes: u64,
}

/// What [`HotCache::forget_unlisted`] removed: entries of segments the catalog no longer lists
/// (replaced by a compaction or purged by retention, in this process or another).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnlistedReport {
    /// Segments removed from the memory tier.
    pub memory_entries: u64,
    /// Their bytes.
    pub memory_bytes: u64,
    /// Cache files removed.
    pub disk_entries: u64,
    /// Their bytes.
    pub disk_bytes: u64,
}

impl HotCache {
    /// Purge (R-F3): removes every entry of `workspace` from both tiers (memory buffers are
    /// zeroized, files deleted), stops its reload if one runs, and keeps fetches under way from
    /// putting its data back. Other workspaces are untouched. Does file I/O.
    pub fn purge_workspace(&self, workspace: &str) -> CachePurgeReport {
        let inner = &self.inner;
        let warm_cancelled = match lock(&inner.warms).get(workspace) {
            Some(slot) if warm::read(&slot.progress).state == warm::WarmState::Running => {
                slot.cancel(inner.now());
                true
            }
            _ => false,
        };
        let ((memory_entries, memory_bytes), (disk_entries, disk_bytes, stray_files)) =
            inner.ctx.generations.bump_then(workspace, || {
                (
                    inner.memory.purge(workspace),
                    inner.ctx.disk.purge(workspace),
                )
            });
        inner.metrics.purged(workspace, memory_bytes + disk_bytes);
        tracing::info!(workspace, memory_entries, disk_entries, "hot cache purged");
        CachePurgeReport {
            workspace: workspace.to_owned(),
            memory_entries,
            memory_bytes,
            disk_entries,
            disk_bytes,
            stray_files,
            warm_cancelled,
        }
    }

    /// Removes entries that are no longer hot: outside their workspace's hot window (or of
    /// unknown time) and not read within `recentSecs`. The engine calls it periodically.
    pub fn sweep(&self) -> SweepReport {
        let inner = &self.inner;
        let now = inner.now();
        let recent = now - inner.config.recent();
        let hot = |loc: &SegmentLocation, max_time: Option<DateTime<Utc>>, last: DateTime<Utc>| {
            let window = now - inner.hot_window(&loc.workspace);
            max_time
                .or_else(|| inner.ctx.hints.get(loc))
                .is_some_and(|t| t >= window)
                || last >= recent
        };
        let mut report = SweepReport::default();
        for seg in inner.memory.entries() {
            if !hot(seg.location(), seg.max_time(), seg.last_read()) {
                inner.memory.remove(seg.location());
                report.memory_entries += 1;
                report.memory_bytes += seg.bytes() as u64;
            }
        }
        for entry in inner.ctx.disk.entries() {
            if !hot(&entry.loc, entry.opened.meta.max_time, entry.last_read()) {
                inner.ctx.disk.remove(&entry.loc);
                report.disk_entries += 1;
                report.disk_bytes += entry.stored;
            }
        }
        report
    }

    /// A mark to take before reading a table's catalog, for [`HotCache::forget_unlisted`].
    pub fn catalog_mark(&self) -> CatalogMark {
        CatalogMark::now()
    }

    /// Removes from both tiers the segments of `manifest`'s table that it does not list, among
    /// the entries made before `mark` (taken before `manifest` was read): a compaction or a
    /// retention purge, here or in another process, took them out of the catalog, so no new
    /// query reads them. Entries made later may come from a newer catalog version and stay
    /// (a later call removes them if they are gone). Queries still reading a removed segment
    /// keep their batches; its memory is zeroized when they end.
    pub fn forget_unlisted(&self, mark: CatalogMark, manifest: &Manifest) -> UnlistedReport {
        let inner = &self.inner;
        let listed: HashSet<SegmentLocation> = manifest
            .segments
            .iter()
            .map(|s| manifest.location(s))
            .collect();
        let gone = |loc: &SegmentLocation, stamp: u64| {
            loc.workspace == manifest.workspace
                && loc.table == manifest.table
                && mark.is_after(stamp)
                && !listed.contains(loc)
        };
        let mut report = UnlistedReport::default();
        for seg in inner.memory.entries() {
            if gone(seg.location(), seg.stamp()) {
                inner.memory.remove(seg.location());
                report.memory_entries += 1;
                report.memory_bytes += seg.bytes() as u64;
            }
        }
        for entry in inner.ctx.disk.entries() {
            if gone(&entry.loc, entry.stamp) {
                inner.ctx.disk.remove(&entry.loc);
                report.disk_entries += 1;
                report.disk_bytes += entry.stored;
            }
        }
        if report.memory_entries + report.disk_entries > 0 {
            tracing::debug!(
                workspace = %manifest.workspace,
                table = %manifest.table,
                version = manifest.version,
                memory_entries = report.memory_entries,
                disk_entries = report.disk_entries,
                "hot cache: dropped segments the catalog no longer lists"
            );
        }
        report
    }
}
