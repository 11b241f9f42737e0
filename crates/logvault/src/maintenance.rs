//! Table maintenance: retention (R-K1) and compaction.

use logvault_store::{CompactionOptions, CompactionReport, PurgeReport};
use serde::Serialize;

use crate::{Engine, EngineError};

/// A table as `logvault table list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableInfo {
    /// The table.
    pub name: String,
    /// Rows stored.
    pub rows: u64,
    /// Segments.
    pub segments: usize,
    /// Bytes of its segments.
    pub bytes: u64,
    /// Retention in days.
    pub retention_days: u32,
    /// The oldest and newest `TimeGenerated`.
    pub time_range: Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>,
}

impl Engine {
    /// The tables of `workspace`.
    ///
    /// # Errors
    /// 404 for a missing workspace; catalog errors.
    pub async fn tables(&self, workspace: &str) -> Result<Vec<TableInfo>, EngineError> {
        self.control().get_workspace(workspace)?;
        let catalog = self.store().catalog();
        let mut out = Vec::new();
        for name in catalog.tables(workspace).await? {
            let m = catalog.manifest(workspace, &name).await?;
            let min = m.segments.iter().map(|s| s.min_time).min();
            let max = m.segments.iter().map(|s| s.max_time).max();
            out.push(TableInfo {
                name,
                rows: m.segments.iter().map(|s| s.rows).sum(),
                segments: m.segments.len(),
                bytes: m.segments.iter().map(|s| s.bytes).sum(),
                retention_days: m.retention_days,
                time_range: min.zip(max),
            });
        }
        Ok(out)
    }

    /// Sets a table's retention in days (R-K1); data older is purged by
    /// [`Engine::purge_expired`].
    ///
    /// # Errors
    /// 404 for a missing workspace; an out-of-range retention; catalog errors.
    pub async fn set_retention(
        &self,
        workspace: &str,
        table: &str,
        days: u32,
    ) -> Result<(), EngineError> {
        self.control().get_workspace(workspace)?;
        self.store()
            .catalog()
            .set_retention(workspace, table, self.now(), days)
            .await?;
        Ok(())
    }

    /// Purges every segment past its table's retention, including segments whose key is
    /// revoked (deleting needs no key). On a node of several, under the maintenance lease.
    ///
    /// # Errors
    /// Catalog or storage errors; the lease held by another node.
    pub async fn purge_expired(&self) -> Result<PurgeReport, EngineError> {
        self.under_maintenance_lease(async { Ok(self.store().purge_expired().await?) })
            .await
    }

    /// Merges the small segments of `workspace`'s tables (or only `table`). On a node of
    /// several, under the maintenance lease.
    ///
    /// # Errors
    /// 404 for a missing workspace; catalog or storage errors; the lease held by another node.
    pub async fn compact(
        &self,
        workspace: &str,
        table: Option<&str>,
        options: CompactionOptions,
    ) -> Result<Vec<CompactionReport>, EngineError> {
        self.control().get_workspace(workspace)?;
        let tables = match table {
            Some(t) => vec![t.to_owned()],
            None => self.store().catalog().tables(workspace).await?,
        };
        self.admit_every_account().await?;
        self.under_maintenance_lease(self.compact_tables(workspace, tables, options))
            .await
    }

    /// Merges the small segments of every workspace's tables: one pass of a long-running
    /// process's background compaction (`logvault serve`), with the accounts admitted and the
    /// maintenance lease taken once for the whole pass. A workspace whose compaction fails is
    /// told in the pass and the others go on; on a node of several, another node holding the
    /// lease ends the pass at once with that error.
    ///
    /// # Errors
    /// The control plane cannot be read; the lease held by another node.
    pub async fn compact_all(
        &self,
        options: CompactionOptions,
    ) -> Result<CompactionPass, EngineError> {
        let workspaces = self.control().list_workspaces()?;
        self.admit_every_account().await?;
        self.under_maintenance_lease(async {
            let mut pass = CompactionPass::default();
            for ws in workspaces {
                let compacted = match self.store().catalog().tables(&ws.name).await {
                    Ok(tables) => self.compact_tables(&ws.name, tables, options).await,
                    Err(e) => Err(e.into()),
                };
                match compacted {
                    Ok(reports) => {
                        for r in reports {
                            pass.merged += r.merged;
                            pass.skipped_groups += r.skipped_groups;
                            // Not by the segment counts: rows stored meanwhile add segments.
                            if r.merged > 0 {
                                pass.tables.push((ws.name.clone(), r));
                            }
                        }
                    }
                    Err(e) => pass.failed.push((ws.name, e.to_string())),
                }
            }
            Ok(pass)
        })
        .await
    }

    /// Admits every account of the storage (a key check when one is due), so that compaction
    /// leaves the groups of accounts whose key is revoked alone.
    async fn admit_every_account(&self) -> Result<(), EngineError> {
        for account in self.store().account_ids().await? {
            let _ = self.admit_account(&account).await;
        }
        Ok(())
    }

    /// Merges the small segments of `tables` of `workspace` (the caller holds the lease).
    async fn compact_tables(
        &self,
        workspace: &str,
        tables: Vec<String>,
        options: CompactionOptions,
    ) -> Result<Vec<CompactionReport>, EngineError> {
        let mut out = Vec::with_capacity(tables.len());
        for t in tables {
            let report = self.store().compact_table(workspace, &t, options).await?;
            // Hot data stays hot: a merge of segments the memory tier holds is built there.
            for merge in &report.merges {
                self.inner.cache.adopt_merge(merge.clone()).await;
            }
            out.push(report);
        }
        Ok(out)
    }
}

/// What one [`Engine::compact_all`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompactionPass {
    /// Segments merged away, over every table.
    pub merged: usize,
    /// Groups left alone because their account key is unavailable (revoked).
    pub skipped_groups: usize,
    /// The tables whose segments were merged, with their workspace.
    pub tables: Vec<(String, CompactionReport)>,
    /// Workspaces whose compaction failed, with the error.
    pub failed: Vec<(String, String)>,
}
