//! The infrastructure key of a double-encrypted account: created, re-wrapped and unwrapped
//! like the account key, in its own record log (`<account>/keys/infra/`), wrapped by the
//! service key.

use logvault_crypto::InfraKey;

use super::{KekBinding, Keyring, create_first, ensure_absent};
use crate::StoreError;
use crate::layout::AccountId;

impl Keyring {
    /// Creates the independent infrastructure key of a double-encrypted account, wrapped by
    /// `service` (the infrastructure layer uses service-managed keys).
    ///
    /// # Errors
    /// [`StoreError::AccountKeyExists`] if one exists; [`StoreError::Vault`] if wrapping fails.
    pub(crate) async fn create_infra_key(
        &self,
        account: &AccountId,
        service: &KekBinding,
    ) -> Result<InfraKey, StoreError> {
        let log = self.infra_log(account);
        ensure_absent(&log, account).await?;
        let key = InfraKey::generate().map_err(|e| StoreError::crypto("infrastructure key", &e))?;
        let file = self
            .wrap(account, "infra", service, &key.to_secret(), None)
            .await?;
        create_first(&log, account, &file).await?;
        Ok(key)
    }

    /// Re-wraps a double-encrypted account's infrastructure key with `service` (a rotation of
    /// the service key). The key, and so every object, is unchanged.
    ///
    /// # Errors
    /// [`StoreError::NoAccountKey`] if the account has none; vault errors; conflicts.
    pub(crate) async fn rewrap_infra_key(
        &self,
        account: &AccountId,
        service: &KekBinding,
    ) -> Result<(), StoreError> {
        let (n, _, _) = self
            .rewrap(&self.infra_log(account), account, service)
            .await?;
        tracing::info!(%account, seq = n, "re-wrapped infrastructure key");
        Ok(())
    }

    /// The infrastructure key of a double-encrypted account, unwrapped by the vault.
    ///
    /// # Errors
    /// [`StoreError::NoAccountKey`] if there is none; [`StoreError::Vault`] if unwrapping fails.
    pub(crate) async fn infra_key(&self, account: &AccountId) -> Result<InfraKey, StoreError> {
        let (_, file) = self.latest_file(&self.infra_log(account), account).await?;
        let secret = self.unwrap_secret(account, &file).await?;
        InfraKey::from_secret(&secret).map_err(|e| StoreError::AccountKeyMismatch {
            account: account.to_string(),
            reason: format!("infrastructure key: {e}"),
        })
    }
}
