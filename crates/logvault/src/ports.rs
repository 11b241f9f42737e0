//! The control plane's ports, wired to the local vault, its identity directory and the store.

use std::sync::Arc;

use async_trait::async_trait;
use logvault_control::{ControlError, ControlPorts, UserIdentity};
use logvault_kms::{KeyRef, KeyVault, LocalVault, PrincipalId, VaultErrorKind};
use logvault_store::{AccountId, KekBinding, Store, StoreError};

/// [`ControlPorts`] over the engine's layers.
#[derive(Debug, Clone)]
pub(crate) struct EnginePorts {
    /// The local vault, for its directory of identities.
    pub(crate) vault: Arc<LocalVault>,
    /// The vault of customer keys, for validation.
    pub(crate) key_vault: Arc<dyn KeyVault>,
    pub(crate) store: Arc<Store>,
}

fn account(cluster: &str) -> Result<AccountId, ControlError> {
    AccountId::cluster(cluster).map_err(|e| ControlError::Provisioning {
        cluster: cluster.to_owned(),
        reason: e.to_string(),
    })
}

#[async_trait]
impl ControlPorts for EnginePorts {
    fn vault(&self) -> Arc<dyn KeyVault> {
        self.key_vault.clone()
    }

    async fn create_system_identity(
        &self,
        cluster_resource_id: &str,
        region: &str,
        tenant: &str,
    ) -> Result<PrincipalId, ControlError> {
        let identity =
            self.vault
                .identities()
                .create_system_assigned(cluster_resource_id, region, tenant)?;
        Ok(identity.principal_id)
    }

    async fn user_identity(&self, name_or_id: &str) -> Result<Option<UserIdentity>, ControlError> {
        match self.vault.identities().user_assigned(name_or_id) {
            Ok(identity) => Ok(Some(UserIdentity {
                id: identity.id,
                principal_id: identity.principal_id,
                tenant: identity.tenant_id,
            })),
            Err(e) if e.kind() == VaultErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn provision_account(
        &self,
        cluster: &str,
        double_encryption: bool,
    ) -> Result<(), ControlError> {
        let id = account(cluster)?;
        let fail = |e: StoreError| ControlError::Provisioning {
            cluster: cluster.to_owned(),
            reason: e.to_string(),
        };
        match self
            .store
            .create_account(&id, &self.store.service_binding(), double_encryption)
            .await
        {
            Ok(_) => Ok(()),
            // A cluster re-created after its name was released reuses nothing: its old account
            // was removed when it was purged. An existing account here is a retry of the same
            // create; it must have the same double-encryption setting.
            Err(StoreError::AccountExists { .. }) => self
                .store
                .open_account(&id, Some(double_encryption))
                .await
                .map(|_| ())
                .map_err(fail),
            Err(e) => Err(fail(e)),
        }
    }

    async fn bind_account_key(
        &self,
        cluster: &str,
        key: &KeyRef,
        principal: &PrincipalId,
    ) -> Result<(), ControlError> {
        let id = account(cluster)?;
        let binding = KekBinding {
            key: key.clone(),
            principal: principal.clone(),
        };
        let fail = |e: StoreError| ControlError::KeyBinding {
            cluster: cluster.to_owned(),
            kind: e.vault_kind(),
            reason: e.to_string(),
        };
        self.store
            .rotate_account_key(&id, &binding)
            .await
            .map_err(fail)?;
        // The new wrapped copy must unwrap for the cluster's identity.
        self.store.keyring().refresh_aek(&id).await.map_err(fail)?;
        Ok(())
    }
}
