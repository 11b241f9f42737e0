//! What the CLI and the server's management API both do to clusters, workspaces and keys, in
//! one place: the JSON shape of a cluster or workspace (the CLI's `show -o json` is the ARM GET
//! body), and key changes that the clusters using the key must see at once.

use logvault_control::{Cluster, Workspace, cluster_json, workspace_json};
use logvault_kms::KeyProperties;
use serde_json::Value;

use crate::{ClusterStatus, Engine, EngineError};

impl Engine {
    /// A cluster as `cluster show` prints it and the management API's GET answers it: Azure's
    /// shape (the seed's GET example) with the workspaces linked to it, plus
    /// `properties.keyStatus` (the key lifecycle's view) while it is not deleted.
    ///
    /// # Errors
    /// Control-plane state errors.
    pub async fn cluster_view(&self, cluster: &Cluster) -> Result<Value, EngineError> {
        if !cluster.is_active() {
            return Ok(cluster_json(cluster, &[]));
        }
        let workspaces = self.control().list_workspaces()?;
        let linked: Vec<&Workspace> = workspaces
            .iter()
            .filter(|w| w.cluster.as_deref() == Some(cluster.name.as_str()))
            .collect();
        let mut json = cluster_json(cluster, &linked);
        if let Ok(status) = self.check_key(&cluster.name, false).await
            && let Ok(status) = serde_json::to_value(ClusterStatus::from(status))
        {
            json["properties"]["keyStatus"] = status;
        }
        Ok(json)
    }

    /// A workspace as `workspace show` prints it and the management API's GET answers it.
    pub fn workspace_view(&self, workspace: &Workspace) -> Value {
        let cluster = workspace
            .cluster
            .as_deref()
            .and_then(|c| self.control().get_cluster(c).ok());
        workspace_json(workspace, cluster.as_ref())
    }

    /// Adds a new version to key `name` of the local vault `vault`, then checks the clusters on
    /// that key at once: with autorotation they move to the new version now, not at their next
    /// check (R-G4); on an explicit version they keep it (R-G5).
    ///
    /// # Errors
    /// The vault's refusal, or the key checks' errors.
    pub async fn rotate_key(&self, vault: &str, name: &str) -> Result<KeyProperties, EngineError> {
        let rotated = self.vault().rotate_key(vault, name)?;
        self.check_keys_using(vault, name).await?;
        Ok(rotated)
    }

    /// Enables or disables key `name` of the local vault `vault` (or one `version` of it), then
    /// checks the clusters on that key at once: disabling revokes them now (R-G1, "much less
    /// [than an hour] is better"), enabling lets them resume now (R-G3).
    ///
    /// # Errors
    /// The vault's refusal, or the key checks' errors.
    pub async fn set_key_enabled(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
        enabled: bool,
    ) -> Result<KeyProperties, EngineError> {
        let changed = self
            .vault()
            .set_key_enabled(vault, name, version, enabled)?;
        self.check_keys_using(vault, name).await?;
        Ok(changed)
    }
}
