//! The vault the layers use: the service key (MMK) always from the home's local vault, customer
//! keys from the local vault or from a vault the embedder injected.

use std::sync::Arc;

use async_trait::async_trait;
use logvault_crypto::SecretBytes;
use logvault_kms::{
    KeyProperties, KeyRef, KeyVault, LocalVault, PrincipalId, VaultError, VaultProperties,
    WrappedKey, local::SERVICE_VAULT,
};

/// Routes each call by vault name: the reserved service vault to the local vault, every other
/// vault to the customer-key vault.
#[derive(Debug)]
pub(crate) struct RoutingVault {
    pub(crate) service: Arc<LocalVault>,
    pub(crate) customer: Arc<dyn KeyVault>,
}

impl RoutingVault {
    fn route(&self, vault: &str) -> &dyn KeyVault {
        if vault == SERVICE_VAULT {
            self.service.as_ref()
        } else {
            self.customer.as_ref()
        }
    }
}

#[async_trait]
impl KeyVault for RoutingVault {
    async fn vault_properties(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<VaultProperties, VaultError> {
        self.route(&key.vault)
            .vault_properties(principal, key)
            .await
    }

    async fn get_key(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<KeyProperties, VaultError> {
        self.route(&key.vault).get_key(principal, key).await
    }

    async fn wrap_key(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
        plaintext: &SecretBytes,
    ) -> Result<WrappedKey, VaultError> {
        self.route(&key.vault)
            .wrap_key(principal, key, plaintext)
            .await
    }

    async fn unwrap_key(
        &self,
        principal: &PrincipalId,
        wrapped: &WrappedKey,
    ) -> Result<SecretBytes, VaultError> {
        self.route(&wrapped.vault)
            .unwrap_key(principal, wrapped)
            .await
    }
}
