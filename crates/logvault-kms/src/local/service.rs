//! The service key (MMK): the key logvault itself manages, used by the store exactly like a
//! customer key, from a reserved vault that users cannot break.

use crate::local::{CreateVaultOptions, LocalVault};
use crate::{KeyRef, KeyType, PrincipalId, VaultError, VaultErrorKind};

/// The reserved vault that holds the service key.
pub const SERVICE_VAULT: &str = "logvault-service";
/// The service key's name.
pub const SERVICE_KEY: &str = "service-key";
/// The principal the service uses for its own key.
pub const SERVICE_PRINCIPAL: &str = "logvault-service";

/// Where the service key is and on whose behalf to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceKey {
    /// The service key (its latest version).
    pub key: KeyRef,
    /// The service principal, which holds get, wrapKey and unwrapKey on it.
    pub principal: PrincipalId,
}

impl LocalVault {
    /// Makes sure the service key exists: the reserved vault `logvault-service` (soft delete and
    /// purge protection on), its `oct` key `service-key`, and an access policy granting the
    /// service principal get, wrapKey and unwrapKey. Idempotent and safe to race.
    ///
    /// # Errors
    /// [`VaultError::Internal`] if the vault's files cannot be read or written.
    pub fn ensure_service_key(&self) -> Result<ServiceKey, VaultError> {
        let principal = PrincipalId(SERVICE_PRINCIPAL.to_owned());
        let wanted: Vec<String> = ["get", "wrapKey", "unwrapKey"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let state = match self.load(SERVICE_VAULT) {
            Ok(state) => state,
            Err(VaultError::VaultNotFound { .. }) => {
                let options = CreateVaultOptions {
                    soft_delete: true,
                    purge_protection: true,
                    ..CreateVaultOptions::default()
                };
                match self.create_vault_unguarded(SERVICE_VAULT, &options) {
                    Ok(_) => {}
                    Err(e) if e.kind() == VaultErrorKind::Conflict => {}
                    Err(e) => return Err(e),
                }
                self.load(SERVICE_VAULT)?
            }
            Err(e) => return Err(e),
        };
        if !state.keys.contains_key(SERVICE_KEY) {
            match self.create_key_unguarded(SERVICE_VAULT, SERVICE_KEY, KeyType::Oct, None) {
                Ok(_) => {}
                Err(e) if e.kind() == VaultErrorKind::Conflict => {}
                Err(e) => return Err(e),
            }
        }
        let granted = state.access_policies.iter().any(|p| {
            p.object_id == principal.0 && wanted.iter().all(|w| p.key_permissions.contains(w))
        });
        if !granted {
            self.update(SERVICE_VAULT, |state| {
                state.put_policy(&principal, wanted);
                Ok(())
            })?;
        }
        Ok(ServiceKey {
            key: KeyRef::latest(SERVICE_VAULT, SERVICE_KEY),
            principal,
        })
    }
}

/// Guards that keep users from breaking the service key.
pub(crate) mod reserved {
    use super::{SERVICE_PRINCIPAL, SERVICE_VAULT};
    use crate::{PrincipalId, VaultError};

    fn refused(what: &str) -> VaultError {
        VaultError::BadRequest {
            vault: SERVICE_VAULT.to_owned(),
            reason: format!(
                "vault {SERVICE_VAULT} is reserved for logvault's service key and cannot {what}"
            ),
        }
    }

    /// Refuses a user-created vault with the reserved name.
    pub(crate) fn guard_vault_name(name: &str) -> Result<(), VaultError> {
        if name == SERVICE_VAULT {
            Err(refused("be created by hand"))
        } else {
            Ok(())
        }
    }

    /// Refuses an operation `what` on the reserved vault.
    pub(crate) fn guard_vault(vault: &str, what: &str) -> Result<(), VaultError> {
        if vault == SERVICE_VAULT {
            Err(refused(what))
        } else {
            Ok(())
        }
    }

    /// Refuses changes to the service principal's permissions in the reserved vault.
    pub(crate) fn guard_principal(
        vault: &str,
        principal: &PrincipalId,
        what: &str,
    ) -> Result<(), VaultError> {
        if vault == SERVICE_VAULT && principal.0 == SERVICE_PRINCIPAL {
            Err(VaultError::BadRequest {
                vault: vault.to_owned(),
                reason: format!(
                    "principal {SERVICE_PRINCIPAL} is logvault's own and cannot have {what}"
                ),
            })
        } else {
            Ok(())
        }
    }
}
