//! Several nodes on one storage and one vault (docs/deploy.md).
//!
//! Each node is a home of its own (its WAL, hot cache, key states, server state) whose
//! `config.json` names the shared storage (`storageUrl`), the shared vault (`vault`) and its
//! part (`node`). What the nodes share:
//! - the data and catalogs: in the storage, read afresh at every query, so a node sees another
//!   node's segments as soon as they are in the catalog;
//! - the service key: the join procedure copies the first node's service vault (`vault/master.key`
//!   and `vault/vaults/logvault-service/`), which every node's catalog and account keys need;
//! - customer keys: the shared vault (one node's `logvault serve`, or Azure Key Vault), checked
//!   by each node's own key monitor;
//! - the control plane (workspaces, clusters, links): kept by one node, the *primary*, which
//!   publishes its state to the storage as a sealed document; the others *follow*: they copy it
//!   every `refreshSecs` and refuse changes (409, naming the primary);
//! - compaction and retention: run under the `maintenance` lease in the storage
//!   (`logvault_store::Leases`), by one node at a time.

use std::time::Duration;

use logvault_store::{AccountId, LeaseGrant};
use serde::{Deserialize, Serialize};

use crate::{Engine, EngineError};

/// The document a primary node publishes its control-plane state as (in the service account,
/// sealed under its key: `docs/format.md`, "Documents").
pub const CONTROL_DOCUMENT: &str = "nodes/control-state.json";

/// The lease compaction and retention run under.
pub const MAINTENANCE_LEASE: &str = "maintenance";

fn two() -> u64 {
    2
}
fn sixty() -> u64 {
    60
}
fn thousand() -> u64 {
    1000
}

/// This home's part among several nodes on one storage: the `node` object of `config.json`.
///
/// ```json
/// "node": {"name": "node-2", "follows": "node-1", "refreshSecs": 2, "leaseSecs": 60,
///          "catalogCacheMillis": 1000}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's name (leases and messages name it): letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// The primary node this one follows (its control plane is a copy of the primary's);
    /// absent on the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows: Option<String>,
    /// How often the primary publishes its control plane and a follower copies it, in seconds.
    #[serde(default = "two")]
    pub refresh_secs: u64,
    /// How long the maintenance lease is held without renewal (renewed every third of it),
    /// in seconds: after a holder's crash, another node may take over after this long.
    #[serde(default = "sixty")]
    pub lease_secs: u64,
    /// How old, in milliseconds, the catalog a query reads may be: another node's new
    /// segments are seen within this (plus that node's flush interval); this node's own at
    /// once. 0 reads the storage at every query.
    #[serde(default = "thousand")]
    pub catalog_cache_millis: u64,
}

impl NodeConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// A message naming the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.len() <= 63
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if !name_ok(&self.name) {
            return Err(format!(
                "node.name {:?}: 1-63 letters, digits, `-`, `_` or `.`",
                self.name
            ));
        }
        if let Some(p) = &self.follows
            && (!name_ok(p) || p == &self.name)
        {
            return Err(format!(
                "node.follows {p:?}: the name of another node (the primary)"
            ));
        }
        if !(1..=3600).contains(&self.refresh_secs) {
            return Err(format!(
                "node.refreshSecs {}: between 1 and 3600",
                self.refresh_secs
            ));
        }
        if self.catalog_cache_millis > 60_000 {
            return Err(format!(
                "node.catalogCacheMillis {}: at most 60000",
                self.catalog_cache_millis
            ));
        }
        if !(3..=86_400).contains(&self.lease_secs) {
            return Err(format!(
                "node.leaseSecs {}: between 3 and 86400",
                self.lease_secs
            ));
        }
        Ok(())
    }
}

/// What one synchronization of the control plane did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeSync {
    /// The home is not one of several nodes.
    Alone,
    /// The primary published a changed state.
    Published,
    /// A follower copied a changed state.
    Copied,
    /// Nothing had changed (or the primary has published nothing yet).
    Unchanged,
}

impl Engine {
    /// This home's part among several nodes, if it is one.
    pub fn node(&self) -> Option<&NodeConfig> {
        self.home().config().node.as_ref()
    }

    /// Publishes the control plane (on the primary) or copies the published one (on a
    /// follower), if it changed.
    ///
    /// # Errors
    /// Storage errors, the service account's key unavailable, a published state this version
    /// does not read (the follower keeps its copy).
    pub async fn sync_nodes(&self) -> Result<NodeSync, EngineError> {
        let Some(node) = self.node() else {
            return Ok(NodeSync::Alone);
        };
        let service = AccountId::service();
        let aek = self.store().keyring().aek(&service).await?;
        let published = self
            .store()
            .get_document(&service, &aek, CONTROL_DOCUMENT)
            .await?;
        if node.follows.is_some() {
            let Some(bytes) = published else {
                return Ok(NodeSync::Unchanged);
            };
            let control = self.control().clone();
            let changed = tokio::task::spawn_blocking(move || control.import_state(&bytes))
                .await
                .map_err(|e| EngineError::State {
                    what: "control plane copy",
                    path: self.home().dir("control"),
                    reason: e.to_string(),
                })??;
            if !changed {
                return Ok(NodeSync::Unchanged);
            }
            for ws in self.control().list_workspaces()? {
                self.apply_hot_window(&ws);
            }
            return Ok(NodeSync::Copied);
        }
        let Some(local) = self.control().export_state()? else {
            return Ok(NodeSync::Unchanged);
        };
        if published.as_deref() == Some(local.as_slice()) {
            return Ok(NodeSync::Unchanged);
        }
        self.store()
            .put_document(&service, &aek, CONTROL_DOCUMENT, &local)
            .await?;
        Ok(NodeSync::Published)
    }

    /// Stores what this node's logs hold that is not in a segment yet (rows acknowledged
    /// before a crash), workspace by workspace, so that the other nodes see them without waiting
    /// for this node's next query or ingest of each workspace. A workspace whose rows cannot be
    /// stored now (its key revoked, its log busy) keeps them in its log; that is logged.
    /// Returns the rows stored.
    ///
    /// # Errors
    /// The control plane cannot be read.
    pub async fn recover_logs(&self) -> Result<u64, EngineError> {
        let mut rows = 0;
        for ws in self.control().list_workspaces()? {
            match self.recover_if_idle(&ws.name).await {
                Ok(n) => rows += n,
                Err(e) => {
                    tracing::warn!(workspace = %ws.name, error = %e, "replaying the log at start failed; it keeps its rows");
                }
            }
        }
        Ok(rows)
    }

    /// Synchronizes the control plane every `refreshSecs` in the background (a long-running
    /// process of a node: `logvault serve`), until the engine is dropped everywhere; `None` for
    /// a home that is not a node. A failure is logged and retried at the next tick.
    pub fn spawn_node_sync(&self) -> Option<tokio::task::JoinHandle<()>> {
        let every = Duration::from_secs(self.node()?.refresh_secs);
        let weak = std::sync::Arc::downgrade(&self.inner);
        Some(tokio::spawn(async move {
            let mut failing = false;
            loop {
                let Some(inner) = weak.upgrade() else { break };
                let engine = Engine { inner };
                match engine.sync_nodes().await {
                    Ok(done) => {
                        if failing {
                            tracing::info!("control plane synchronization works again");
                        }
                        failing = false;
                        if done != NodeSync::Unchanged {
                            tracing::info!(sync = ?done, "control plane synchronized");
                        }
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, "control plane synchronization failed; retrying");
                        }
                        failing = true;
                    }
                }
                drop(engine);
                tokio::time::sleep(every).await;
            }
        }))
    }

    /// Runs `work` holding the maintenance lease, renewed in the background while it runs, when
    /// the home is a node; at once otherwise (a home alone on its storage).
    ///
    /// # Errors
    /// [`logvault_store::StoreError::LeaseHeld`] when another node holds it; `work`'s errors.
    pub(crate) async fn under_maintenance_lease<T, F>(&self, work: F) -> Result<T, EngineError>
    where
        F: Future<Output = Result<T, EngineError>>,
    {
        let Some(node) = self.node() else {
            return work.await;
        };
        let ttl = chrono::Duration::seconds(i64::try_from(node.lease_secs).unwrap_or(60));
        let leases = self.store().leases();
        let grant = leases
            .acquire(MAINTENANCE_LEASE, &node.name, ttl, self.now())
            .await?;
        let held = std::sync::Arc::new(std::sync::Mutex::new(grant));
        let renewer = {
            let held = held.clone();
            let engine = self.clone();
            let leases = leases.clone();
            let every = Duration::from_secs((node.lease_secs / 3).max(1));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let current = lock(&held).clone();
                    match leases.renew(&current, ttl, engine.now()).await {
                        Ok(next) => *lock(&held) = next,
                        Err(e) => {
                            // The work goes on: the catalog's conditional puts keep it safe.
                            tracing::warn!(error = %e, "renewing the maintenance lease failed");
                            if matches!(e, logvault_store::StoreError::LeaseLost { .. }) {
                                return;
                            }
                        }
                    }
                }
            })
        };
        let out = work.await;
        renewer.abort();
        let _ = renewer.await;
        let last = lock(&held).clone();
        if let Err(e) = leases.release(&last, self.now()).await {
            tracing::warn!(error = %e, "releasing the maintenance lease failed (it expires)");
        }
        out
    }
}

fn lock(m: &std::sync::Mutex<LeaseGrant>) -> std::sync::MutexGuard<'_, LeaseGrant> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HomeConfig;

    async fn node_engine(dir: &std::path::Path, lease_secs: u64) -> Engine {
        let config = HomeConfig {
            version: 1,
            node: Some(NodeConfig {
                name: "node-a".into(),
                follows: None,
                refresh_secs: 1,
                lease_secs,
                catalog_cache_millis: 0,
            }),
            ..HomeConfig::default()
        };
        std::fs::write(
            dir.join("config.json"),
            serde_json::to_vec(&config).unwrap(),
        )
        .unwrap();
        Engine::builder(dir)
            .object_store(std::sync::Arc::new(object_store::memory::InMemory::new()))
            .open()
            .await
            .unwrap()
    }

    /// Work longer than the lease's duration keeps it (renewed in the background), and
    /// releases it when done.
    #[tokio::test]
    async fn the_lease_is_renewed_while_work_runs_and_released_after() {
        let dir = tempfile::tempdir().unwrap();
        let engine = node_engine(dir.path(), 3).await;
        let leases = engine.store().leases();
        let started = engine.now();
        let watcher = {
            let leases = leases.clone();
            let engine = engine.clone();
            async move {
                // Past the first grant's expiry (3 s), still held, with a later expiry.
                tokio::time::sleep(Duration::from_millis(4000)).await;
                leases
                    .holder(MAINTENANCE_LEASE, engine.now())
                    .await
                    .unwrap()
            }
        };
        let work = engine.under_maintenance_lease(async {
            tokio::time::sleep(Duration::from_millis(4500)).await;
            Ok(())
        });
        let (held, done) = tokio::join!(watcher, work);
        done.unwrap();
        let held = held.expect("the lease expired while its work ran");
        assert_eq!(held.holder, "node-a");
        assert!(
            held.expires > started + chrono::Duration::seconds(3),
            "{held:?}"
        );
        assert_eq!(
            leases
                .holder(MAINTENANCE_LEASE, engine.now())
                .await
                .unwrap(),
            None
        );
    }

    #[test]
    fn node_config_is_checked_by_field() {
        let ok = NodeConfig {
            name: "node-1".into(),
            follows: Some("node-0".into()),
            refresh_secs: 2,
            lease_secs: 60,
            catalog_cache_millis: 1000,
        };
        assert_eq!(ok.validate(), Ok(()));
        for (bad, field) in [
            (
                NodeConfig {
                    name: "a b".into(),
                    ..ok.clone()
                },
                "node.name",
            ),
            (
                NodeConfig {
                    follows: Some("node-1".into()),
                    ..ok.clone()
                },
                "node.follows",
            ),
            (
                NodeConfig {
                    refresh_secs: 0,
                    ..ok.clone()
                },
                "node.refreshSecs",
            ),
            (
                NodeConfig {
                    lease_secs: 1,
                    ..ok.clone()
                },
                "node.leaseSecs",
            ),
            (
                NodeConfig {
                    catalog_cache_millis: 60_001,
                    ..ok.clone()
                },
                "node.catalogCacheMillis",
            ),
        ] {
            let err = bad.validate().unwrap_err();
            assert!(err.starts_with(field), "{err}");
        }
        let parsed: NodeConfig = serde_json::from_str(r#"{"name": "n"}"#).unwrap();
        assert_eq!(
            (parsed.refresh_secs, parsed.lease_secs, parsed.follows),
            (2, 60, None)
        );
        assert!(serde_json::from_str::<NodeConfig>(r#"{"name": "n", "leader": "x"}"#).is_err());
    }
}
