//! Waiting for asynchronous operations, and what the engine needs to know about a workspace's
//! key.

use std::time::Duration;

use logvault_kms::{KeyRef, VaultError};

use crate::model::{Cluster, ProvisioningState};
use crate::{ControlError, ControlPlane, rules};

impl ControlPlane {
    /// Waits until the cluster's running operation (if any) completes, polling the state. The
    /// operation completes on the clock, so under a stopped clock (the CLI's `--now`) it only
    /// completes if that time is past its end; `timeout` bounds the wait in real time.
    ///
    /// Returns the cluster as it is at the end, including a soft-deleted one.
    ///
    /// # Errors
    /// 404 if there is no such cluster; 503-coded refusal if the operation has not completed
    /// within `timeout`.
    pub async fn wait_cluster(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Cluster, ControlError> {
        let started = std::time::Instant::now();
        loop {
            let (state, _) = self.snapshot()?;
            let cluster = state
                .clusters
                .iter()
                .find(|c| c.name == name)
                .cloned()
                .ok_or_else(|| rules::cluster_not_found(name))?;
            if cluster.operation.is_none() {
                return Ok(cluster);
            }
            if started.elapsed() >= timeout {
                return Err(ControlError::unavailable(format!(
                    "cluster {name} is still {:?} after waiting {}s (its operation completes at \
                     {})",
                    cluster.provisioning_state(),
                    timeout.as_secs(),
                    cluster
                        .operation
                        .map(|o| o.completes_at.to_rfc3339())
                        .unwrap_or_default()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Cluster {
    /// The key the cluster's account key is wrapped with, if one is configured.
    ///
    /// # Errors
    /// If the stored key properties are malformed (they were validated when set).
    pub fn key_ref(&self) -> Result<Option<KeyRef>, VaultError> {
        self.key
            .as_ref()
            .map(|k| KeyRef::from_uri(&k.key_vault_uri, &k.key_name, Some(&k.key_version)))
            .transpose()
    }

    /// Why new data cannot be written to this cluster now, if it cannot (R-D2): it is being
    /// deleted, its identity is `None`, or a key update is running.
    pub fn not_ready_reason(&self) -> Option<String> {
        if self.identity.kind == crate::IdentityType::None {
            return Some(format!(
                "cluster {} has identity type None: access to its key is revoked",
                self.name
            ));
        }
        match self.provisioning_state() {
            ProvisioningState::Succeeded => None,
            state => Some(format!(
                "cluster {} is {state:?}: its key is not provisioned yet",
                self.name
            )),
        }
    }
}
