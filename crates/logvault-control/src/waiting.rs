//! Waiting for asynchronous operations, and what the engine needs to know about a workspace's
//! key.

use std::time::Duration;

use logvault_kms::{KeyRef, VaultError};

use crate::model::{Cluster, ProvisioningState};
use crate::{ControlError, ControlPlane, rules};

/// How long a wait watches a clock that reads the same time before calling it stopped.
const STOPPED_CLOCK_AFTER: Duration = Duration::from_secs(1);

impl ControlPlane {
    /// Waits until the cluster's running operation (if any) completes, polling the state. The
    /// operation completes on the clock; `timeout` bounds the wait in real time, and a clock
    /// that has not moved for a second while the operation is pending ends it at once (it
    /// would never complete).
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
        let first_reading = self.clock.now();
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
            // A clock that does not move (a test clock, or a fixed time given by an embedder)
            // never reaches the operation's end: say so rather than wait out the timeout.
            if started.elapsed() >= STOPPED_CLOCK_AFTER && self.clock.now() == first_reading {
                return Err(ControlError::unavailable(format!(
                    "cluster {name} is still {:?}: its operation completes at {}, but the clock \
                     is stopped at {} and will never get there",
                    cluster.provisioning_state(),
                    cluster
                        .operation
                        .map(|o| logvault_core::display_time(o.completes_at))
                        .unwrap_or_default(),
                    logvault_core::display_time(first_reading),
                )));
            }
            if started.elapsed() >= timeout {
                return Err(ControlError::unavailable(format!(
                    "cluster {name} is still {:?} after waiting {}s (its operation completes at \
                     {})",
                    cluster.provisioning_state(),
                    timeout.as_secs(),
                    cluster
                        .operation
                        .map(|o| logvault_core::display_time(o.completes_at))
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
