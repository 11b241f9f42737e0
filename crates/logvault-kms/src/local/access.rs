//! Permissions (R-A3): access policies and role assignments, checked on every trait call.
//!
//! Both models are honoured at once: a principal may call get, wrap or unwrap if an access policy
//! grants it the permission (`get`, `wrapKey`, `unwrapKey`) *or* a role assignment on the vault
//! gives it a role that includes it ("Key Vault Crypto Service Encryption User" grants all three).
//! Removing the one grant a principal had revokes its access on the next call.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::local::state::VaultState;
use crate::local::{LocalVault, reserved};
use crate::{PrincipalId, VaultError};

/// The role that lets a principal get, wrap and unwrap keys (as in Azure).
pub const CRYPTO_SERVICE_ENCRYPTION_USER: &str = "Key Vault Crypto Service Encryption User";
/// Azure's role definition id of [`CRYPTO_SERVICE_ENCRYPTION_USER`], also accepted as its name.
pub const CRYPTO_SERVICE_ENCRYPTION_USER_ID: &str = "e147488a-f6f5-4113-8e2d-b22465e65bf6";

/// Azure Key Vault's key permissions, as an access policy names them. Only `get`, `wrapKey` and
/// `unwrapKey` matter to logvault; the others are accepted so that policies written for Azure work.
const KEY_PERMISSIONS: [&str; 21] = [
    "all",
    "get",
    "list",
    "update",
    "create",
    "import",
    "delete",
    "recover",
    "backup",
    "restore",
    "decrypt",
    "encrypt",
    "unwrapKey",
    "wrapKey",
    "verify",
    "sign",
    "purge",
    "release",
    "rotate",
    "getRotationPolicy",
    "setRotationPolicy",
];

/// A permission a trait call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPermission {
    /// Read a key's (or the vault's) properties.
    Get,
    /// Wrap a key.
    WrapKey,
    /// Unwrap a key.
    UnwrapKey,
}

impl fmt::Display for KeyPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Get => "get",
            Self::WrapKey => "wrapKey",
            Self::UnwrapKey => "unwrapKey",
        })
    }
}

/// An access policy: the key permissions granted to one principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessPolicy {
    /// The principal (object id) it grants to.
    pub object_id: String,
    /// The tenant of the vault.
    pub tenant_id: String,
    /// The key permissions, in Azure's spelling (`get`, `wrapKey`, `unwrapKey`, ...).
    pub key_permissions: Vec<String>,
}

/// A role assignment on a vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    /// Its resource id: the vault's id, then `/providers/Microsoft.Authorization/roleAssignments/NAME`.
    pub id: String,
    /// Its name (a GUID).
    pub name: String,
    /// The principal it is assigned to.
    pub principal_id: String,
    /// The role's name.
    pub role_definition_name: String,
    /// The role's definition id.
    pub role_definition_id: String,
    /// The scope: the vault's resource id.
    pub scope: String,
    /// When it was created.
    pub created_on: DateTime<Utc>,
}

/// The Azure-style resource id of a local vault.
pub fn vault_resource_id(vault: &str) -> String {
    format!("/subscriptions/local/resourceGroups/local/providers/Microsoft.KeyVault/vaults/{vault}")
}

/// Normalizes permission names to Azure's spelling (case-insensitively), without duplicates.
fn normalize(vault: &str, permissions: &[String]) -> Result<Vec<String>, VaultError> {
    let mut out: Vec<String> = Vec::new();
    for p in permissions {
        let canonical = KEY_PERMISSIONS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(p))
            .ok_or_else(|| VaultError::BadRequest {
                vault: vault.to_owned(),
                reason: format!(
                    "unknown key permission {p:?}; expected some of {}",
                    KEY_PERMISSIONS.join(", ")
                ),
            })?;
        if !out.iter().any(|o| o == canonical) {
            out.push((*canonical).to_owned());
        }
    }
    if out.is_empty() {
        return Err(VaultError::BadRequest {
            vault: vault.to_owned(),
            reason: "an access policy needs at least one key permission".into(),
        });
    }
    Ok(out)
}

/// The role's canonical name, from its name (any case) or definition id.
fn role_name(vault: &str, role: &str) -> Result<&'static str, VaultError> {
    if role.eq_ignore_ascii_case(CRYPTO_SERVICE_ENCRYPTION_USER)
        || role.eq_ignore_ascii_case(CRYPTO_SERVICE_ENCRYPTION_USER_ID)
    {
        Ok(CRYPTO_SERVICE_ENCRYPTION_USER)
    } else {
        Err(VaultError::BadRequest {
            vault: vault.to_owned(),
            reason: format!(
                "unknown role {role:?}; the local vault supports \"{CRYPTO_SERVICE_ENCRYPTION_USER}\""
            ),
        })
    }
}

impl VaultState {
    /// Fails with [`VaultError::Forbidden`] unless `principal` holds `permission`, through an
    /// access policy or a role assignment.
    pub(crate) fn check_permission(
        &self,
        principal: &PrincipalId,
        permission: KeyPermission,
    ) -> Result<(), VaultError> {
        let wanted = permission.to_string();
        let by_policy = self.access_policies.iter().any(|p| {
            p.object_id == principal.0
                && p.key_permissions.iter().any(|k| *k == wanted || k == "all")
        });
        // The one supported role grants get, wrapKey and unwrapKey.
        let by_role = self.role_assignments.iter().any(|r| {
            r.principal_id == principal.0
                && r.role_definition_name == CRYPTO_SERVICE_ENCRYPTION_USER
        });
        if by_policy || by_role {
            Ok(())
        } else {
            Err(VaultError::Forbidden {
                vault: self.name.clone(),
                principal: principal.0.clone(),
                permission: wanted,
            })
        }
    }
}

impl LocalVault {
    fn check_known_principal(
        &self,
        vault: &str,
        principal: &PrincipalId,
    ) -> Result<(), VaultError> {
        if principal.0 == crate::local::SERVICE_PRINCIPAL
            || self.identities().by_principal(principal)?.is_some()
        {
            Ok(())
        } else {
            Err(VaultError::BadRequest {
                vault: vault.to_owned(),
                reason: format!(
                    "principal {principal} is not a known identity (create it with `identity create`)"
                ),
            })
        }
    }

    /// Sets the key permissions of `principal` in `vault`, replacing any it had (as
    /// `az keyvault set-policy --key-permissions` does).
    ///
    /// # Errors
    /// [`VaultError::BadRequest`] for an unknown principal or permission, or for the service
    /// principal's policy in the service vault; [`VaultError::VaultNotFound`].
    pub fn set_policy(
        &self,
        vault: &str,
        principal: &PrincipalId,
        permissions: &[String],
    ) -> Result<AccessPolicy, VaultError> {
        reserved::guard_principal(vault, principal, "its access policy changed")?;
        self.check_known_principal(vault, principal)?;
        let permissions = normalize(vault, permissions)?;
        self.update(vault, |state| Ok(state.put_policy(principal, permissions)))
    }

    /// Removes the access policy of `principal` in `vault`.
    ///
    /// # Errors
    /// [`VaultError::ResourceNotFound`] if it has none; [`VaultError::BadRequest`] for the service
    /// principal in the service vault; [`VaultError::VaultNotFound`].
    pub fn delete_policy(
        &self,
        vault: &str,
        principal: &PrincipalId,
    ) -> Result<AccessPolicy, VaultError> {
        reserved::guard_principal(vault, principal, "its access policy deleted")?;
        self.update(vault, |state| {
            let at = state
                .access_policies
                .iter()
                .position(|p| p.object_id == principal.0)
                .ok_or_else(|| VaultError::ResourceNotFound {
                    resource: format!("access policy for principal {principal} in vault {vault}"),
                })?;
            Ok(state.access_policies.remove(at))
        })
    }

    /// Assigns `role` on `vault` to `principal`.
    ///
    /// # Errors
    /// [`VaultError::Conflict`] if that assignment exists; [`VaultError::BadRequest`] for an
    /// unknown role or principal; [`VaultError::VaultNotFound`].
    pub fn assign_role(
        &self,
        vault: &str,
        principal: &PrincipalId,
        role: &str,
    ) -> Result<RoleAssignment, VaultError> {
        let role = role_name(vault, role)?;
        reserved::guard_principal(vault, principal, "its role assignments changed")?;
        self.check_known_principal(vault, principal)?;
        let now = self.now();
        self.update(vault, |state| {
            if state.find_assignment(principal, role).is_some() {
                return Err(VaultError::Conflict {
                    resource: format!("role assignment of {role:?} to {principal} on vault {vault}"),
                    reason: "already exists".into(),
                });
            }
            let name = uuid::Uuid::new_v4().to_string();
            let scope = vault_resource_id(vault);
            let assignment = RoleAssignment {
                id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
                name,
                principal_id: principal.0.clone(),
                role_definition_name: role.to_owned(),
                role_definition_id: format!(
                    "/subscriptions/local/providers/Microsoft.Authorization/roleDefinitions/{CRYPTO_SERVICE_ENCRYPTION_USER_ID}"
                ),
                scope,
                created_on: now,
            };
            state.role_assignments.push(assignment.clone());
            Ok(assignment)
        })
    }

    /// Removes the assignment of `role` on `vault` to `principal`.
    ///
    /// # Errors
    /// [`VaultError::ResourceNotFound`] if there is none; [`VaultError::BadRequest`] for an
    /// unknown role or the service principal in the service vault; [`VaultError::VaultNotFound`].
    pub fn delete_role_assignment(
        &self,
        vault: &str,
        principal: &PrincipalId,
        role: &str,
    ) -> Result<RoleAssignment, VaultError> {
        let role = role_name(vault, role)?;
        reserved::guard_principal(vault, principal, "its role assignments changed")?;
        self.update(vault, |state| {
            let at = state.find_assignment(principal, role).ok_or_else(|| {
                VaultError::ResourceNotFound {
                    resource: format!(
                        "role assignment of {role:?} to {principal} on vault {vault}"
                    ),
                }
            })?;
            Ok(state.role_assignments.remove(at))
        })
    }

    /// The role assignments on `vault`.
    ///
    /// # Errors
    /// [`VaultError::VaultNotFound`], or [`VaultError::Internal`] if its file is damaged.
    pub fn role_assignments(&self, vault: &str) -> Result<Vec<RoleAssignment>, VaultError> {
        Ok(self.load(vault)?.role_assignments)
    }
}

impl VaultState {
    /// The index of the assignment of `role` to `principal`, if any.
    fn find_assignment(&self, principal: &PrincipalId, role: &str) -> Option<usize> {
        self.role_assignments
            .iter()
            .position(|r| r.principal_id == principal.0 && r.role_definition_name == role)
    }

    /// Replaces the policy of `principal` (or adds one); returns it.
    pub(crate) fn put_policy(
        &mut self,
        principal: &PrincipalId,
        permissions: Vec<String>,
    ) -> AccessPolicy {
        let policy = AccessPolicy {
            object_id: principal.0.clone(),
            tenant_id: self.tenant.clone(),
            key_permissions: permissions,
        };
        match self
            .access_policies
            .iter_mut()
            .find(|p| p.object_id == principal.0)
        {
            Some(existing) => *existing = policy.clone(),
            None => self.access_policies.push(policy.clone()),
        }
        policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_normalize_to_azure_spelling() {
        let got = normalize(
            "v",
            &[
                "GET".into(),
                "wrapkey".into(),
                "unwrapKey".into(),
                "get".into(),
            ],
        )
        .unwrap();
        assert_eq!(got, ["get", "wrapKey", "unwrapKey"]);
        let err = normalize("v", &["export".into()]).unwrap_err().to_string();
        assert!(err.contains("unknown key permission \"export\""), "{err}");
        assert!(normalize("v", &[]).is_err());
    }

    #[test]
    fn roles_by_name_or_id() {
        assert_eq!(
            role_name("v", "key vault crypto service encryption user").unwrap(),
            CRYPTO_SERVICE_ENCRYPTION_USER
        );
        assert_eq!(
            role_name("v", CRYPTO_SERVICE_ENCRYPTION_USER_ID).unwrap(),
            CRYPTO_SERVICE_ENCRYPTION_USER
        );
        assert!(role_name("v", "Owner").is_err());
    }
}
