//! `logvault status`: key states of clusters, and data and counters of workspaces.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::keys::{KeyState, KeyStatus};
use crate::{Engine, EngineError, counters};

/// A cluster's key as status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// The cluster.
    pub name: String,
    /// `active`, `degraded`, `revoked` or `none`.
    pub key_state: KeyState,
    /// The customer key, `vault/key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The key version wrapping the account key now.
    pub key_version_in_use: Option<String>,
    /// Since when the state holds.
    pub since: Option<DateTime<Utc>>,
    /// When the vault last unwrapped the account key.
    pub last_unwrap: Option<DateTime<Utc>>,
    /// When the next check is due.
    pub next_check: Option<DateTime<Utc>>,
    /// Why (degraded, revoked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Successful unwraps, failed checks, hot-cache purges, autorotation re-wraps.
    pub counters: KeyCounters,
}

/// The key lifecycle's counters of one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyCounters {
    /// Successful unwraps.
    pub unwraps: u64,
    /// Failed checks.
    pub failures: u64,
    /// Hot-cache purges at revocation.
    pub purges: u64,
    /// Re-wraps for autorotation or a changed identity.
    pub rotations: u64,
}

impl From<KeyStatus> for ClusterStatus {
    fn from(s: KeyStatus) -> Self {
        Self {
            name: s.cluster,
            key_state: s.key_state,
            key: s.key,
            key_version_in_use: s.key_version_in_use,
            since: s.since,
            last_unwrap: s.last_unwrap,
            next_check: s.next_check,
            reason: s.reason,
            counters: KeyCounters {
                unwraps: s.unwraps,
                failures: s.failures,
                purges: s.purges,
                rotations: s.rotations,
            },
        }
    }
}

/// A workspace's hot cache figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceHotCache {
    /// Bytes in the memory tier.
    pub memory_bytes: u64,
    /// Bytes in the disk tier.
    pub disk_bytes: u64,
    /// Reads served by the cache.
    pub hits: u64,
    /// Reads that went to the object store.
    pub misses: u64,
}

/// A workspace as status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceStatus {
    /// The workspace.
    pub name: String,
    /// The cluster it is linked to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Rows stored.
    pub rows: u64,
    /// Segments stored.
    pub segments: u64,
    /// Rows dropped (revoked or unprovisioned key).
    pub dropped_rows: u64,
    /// Why rows were last dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_drop_reason: Option<String>,
    /// The hot cache.
    pub hot_cache: WorkspaceHotCache,
}

/// What `logvault status` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Clusters and their keys.
    pub clusters: Vec<ClusterStatus>,
    /// Workspaces and their data.
    pub workspaces: Vec<WorkspaceStatus>,
}

impl Engine {
    /// The status of every cluster's key (checked now if a check is due) and of every
    /// workspace, or only of `workspace` and its cluster.
    ///
    /// # Errors
    /// 404 for a missing workspace; catalog or local state errors.
    pub async fn status(&self, workspace: Option<&str>) -> Result<Status, EngineError> {
        let workspaces = match workspace {
            Some(name) => vec![self.control().get_workspace(name)?],
            None => self.control().list_workspaces()?,
        };
        let mut clusters = Vec::new();
        for c in self.control().list_clusters(None, None)? {
            if workspace.is_some()
                && !workspaces
                    .iter()
                    .any(|w| w.cluster.as_deref() == Some(&c.name))
            {
                continue;
            }
            clusters.push(ClusterStatus::from(self.check_key(&c.name, false).await?));
        }
        let mut out = Vec::new();
        for ws in workspaces {
            let (mut rows, mut segments) = (0, 0);
            for table in self.store().catalog().tables(&ws.name).await? {
                let m = self.store().catalog().manifest(&ws.name, &table).await?;
                rows += m.segments.iter().map(|s| s.rows).sum::<u64>();
                segments += m.segments.len() as u64;
            }
            let counters = counters::load(&self.home().dir("wal").join(&ws.name))?;
            out.push(WorkspaceStatus {
                hot_cache: self.hot_cache_status(&ws.name),
                name: ws.name,
                cluster: ws.cluster,
                rows,
                segments,
                dropped_rows: counters.dropped_rows,
                last_drop_reason: counters.last_drop_reason,
            });
        }
        Ok(Status {
            clusters,
            workspaces: out,
        })
    }

    fn hot_cache_status(&self, workspace: &str) -> WorkspaceHotCache {
        let s = self.inner.cache.workspace_status(workspace);
        WorkspaceHotCache {
            memory_bytes: s.memory_bytes,
            disk_bytes: s.disk_bytes,
            hits: s.counters.hits,
            misses: s.counters.misses,
        }
    }
}
