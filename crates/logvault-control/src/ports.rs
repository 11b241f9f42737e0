//! What the control plane needs from the layers around it, as a trait the engine implements:
//! identities (the vault's directory), the vault itself, and the cluster's storage account.

use std::sync::Arc;

use async_trait::async_trait;
use logvault_kms::{KeyRef, KeyVault, PrincipalId};

use crate::ControlError;

/// A user-assigned identity, as the directory knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// Its resource id.
    pub id: String,
    /// The principal the vault sees.
    pub principal_id: PrincipalId,
    /// Its tenant.
    pub tenant: String,
}

/// The services the control plane calls. The engine wires the local vault and the store in;
/// tests wire fakes.
#[async_trait]
pub trait ControlPorts: Send + Sync + std::fmt::Debug {
    /// The vault that holds customer keys.
    fn vault(&self) -> Arc<dyn KeyVault>;

    /// Creates the system-assigned principal of a cluster (replacing any earlier one of the
    /// same resource).
    async fn create_system_identity(
        &self,
        cluster_resource_id: &str,
        region: &str,
        tenant: &str,
    ) -> Result<PrincipalId, ControlError>;

    /// Looks up a user-assigned identity by name or resource id.
    async fn user_identity(&self, name_or_id: &str) -> Result<Option<UserIdentity>, ControlError>;

    /// Creates the cluster's storage account: a fresh account key wrapped by the service key,
    /// and the infrastructure layer when `double_encryption` is on. Idempotent.
    async fn provision_account(
        &self,
        cluster: &str,
        double_encryption: bool,
    ) -> Result<(), ControlError>;

    /// Re-wraps the cluster's account key with the customer's `key` on behalf of `principal`,
    /// and checks that it unwraps again. Never touches data. Vault refusals come back as
    /// [`ControlError::Vault`] or [`ControlError::KeyBinding`] with the vault's failure kind, so
    /// the caller can map them to the service's messages.
    async fn bind_account_key(
        &self,
        cluster: &str,
        key: &KeyRef,
        principal: &PrincipalId,
    ) -> Result<(), ControlError>;
}
