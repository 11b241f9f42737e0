//! The identity directory: the principals on whose behalf vault calls are made.
//!
//! - User-assigned identities are resources of their own
//!   (`/subscriptions/S/resourceGroups/G/providers/Microsoft.ManagedIdentity/userAssignedIdentities/U`),
//!   created before a cluster so that vault permissions can be granted first (R-C2).
//! - System-assigned identities are created with the resource that owns them (a cluster), so
//!   permissions can only be granted after it exists; their id is the owner's resource id.
//!
//! Each identity has a random principal id (a GUID), which is what access policies and role
//! assignments name. The directory is one document, `identities.json`, in the vault's directory,
//! written like a vault's file (checksummed, replaced atomically under a lock).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use logvault_core::ids::{MANAGED_IDENTITY, ResourceId};
use logvault_core::{NameKind, SharedClock, validate_name};
use serde::{Deserialize, Serialize};

use crate::local::store;
use crate::{PrincipalId, VaultError};

const IDENTITY_FORMAT: &str = "logvault.identities";
/// The resource type of user-assigned identities.
pub const USER_ASSIGNED_TYPE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";

/// Whether an identity is a resource of its own or belongs to another resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentityKind {
    /// A user-assigned identity.
    UserAssigned,
    /// The system-assigned identity of a resource (a cluster).
    SystemAssigned,
}

/// A managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Its resource id (for a system-assigned identity, its owner's).
    pub id: String,
    /// Its name (for a system-assigned identity, its owner's).
    pub name: String,
    /// `Microsoft.ManagedIdentity/userAssignedIdentities`, or `SystemAssigned`.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// User- or system-assigned.
    pub kind: IdentityKind,
    /// The principal (object) id that vault permissions name.
    pub principal_id: PrincipalId,
    /// The client (application) id.
    pub client_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The region.
    pub location: String,
    /// The subscription.
    pub subscription_id: String,
    /// The resource group.
    pub resource_group: String,
    /// When it was created.
    pub created: DateTime<Utc>,
}

/// Where a user-assigned identity is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityOptions {
    /// The subscription (default `local`).
    pub subscription: String,
    /// The resource group (default `local`).
    pub resource_group: String,
    /// The region (default `local`).
    pub location: String,
    /// The tenant (default `local`).
    pub tenant: String,
}

impl Default for IdentityOptions {
    fn default() -> Self {
        Self {
            subscription: "local".into(),
            resource_group: "local".into(),
            location: "local".into(),
            tenant: "local".into(),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Directory {
    identities: Vec<Identity>,
}

/// The directory of identities of one logvault home.
#[derive(Debug, Clone)]
pub struct IdentityDirectory {
    path: PathBuf,
    lock: PathBuf,
    clock: SharedClock,
}

impl IdentityDirectory {
    pub(crate) fn new(dir: &Path, clock: SharedClock) -> Self {
        Self {
            path: dir.join("identities.json"),
            lock: dir.join("identities.lock"),
            clock,
        }
    }

    fn fail(&self, e: &store::StoreError) -> VaultError {
        VaultError::Directory {
            path: self.path.display().to_string(),
            reason: e.reason.clone(),
        }
    }

    fn read(&self) -> Result<Directory, VaultError> {
        store::read_doc::<Directory>(&self.path, IDENTITY_FORMAT)
            .map(Option::unwrap_or_default)
            .map_err(|e| self.fail(&e))
    }

    fn update<T>(
        &self,
        f: impl FnOnce(&mut Directory) -> Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        let _guard = store::lock(&self.lock).map_err(|e| self.fail(&e))?;
        let mut dir = self.read()?;
        let out = f(&mut dir)?;
        store::write_doc(&self.path, IDENTITY_FORMAT, &dir).map_err(|e| self.fail(&e))?;
        Ok(out)
    }

    fn new_identity(
        &self,
        id: String,
        name: &str,
        kind: IdentityKind,
        options: &IdentityOptions,
    ) -> Identity {
        Identity {
            id,
            name: name.to_owned(),
            resource_type: match kind {
                IdentityKind::UserAssigned => USER_ASSIGNED_TYPE.to_owned(),
                IdentityKind::SystemAssigned => "SystemAssigned".to_owned(),
            },
            kind,
            principal_id: PrincipalId(uuid::Uuid::new_v4().to_string()),
            client_id: uuid::Uuid::new_v4().to_string(),
            tenant_id: options.tenant.clone(),
            location: options.location.clone(),
            subscription_id: options.subscription.clone(),
            resource_group: options.resource_group.clone(),
            created: self.clock.now(),
        }
    }

    /// Creates user-assigned identity `name`.
    ///
    /// # Errors
    /// [`VaultError::InvalidInput`] for a bad name, subscription, resource group, region or
    /// tenant; [`VaultError::Conflict`] if it exists in that resource group.
    pub fn create_user_assigned(
        &self,
        name: &str,
        options: &IdentityOptions,
    ) -> Result<Identity, VaultError> {
        validate_name(NameKind::Identity, name)?;
        validate_name(NameKind::Subscription, &options.subscription)?;
        validate_name(NameKind::ResourceGroup, &options.resource_group)?;
        validate_name(NameKind::Region, &options.location)?;
        validate_name(NameKind::Tenant, &options.tenant)?;
        let id = ResourceId {
            subscription: options.subscription.clone(),
            resource_group: options.resource_group.clone(),
            provider: MANAGED_IDENTITY.to_owned(),
            resource_type: "userAssignedIdentities".to_owned(),
            name: name.to_owned(),
        }
        .to_string();
        let identity = self.new_identity(id, name, IdentityKind::UserAssigned, options);
        self.update(|dir| {
            if dir
                .identities
                .iter()
                .any(|i| i.id.eq_ignore_ascii_case(&identity.id))
            {
                return Err(VaultError::Conflict {
                    resource: format!(
                        "identity {name} in resource group {}",
                        options.resource_group
                    ),
                    reason: "already exists".into(),
                });
            }
            dir.identities.push(identity.clone());
            Ok(identity)
        })
    }

    /// Creates the system-assigned identity of the resource `resource_id` (a cluster), in
    /// `location` and `tenant`, with a new principal id. An identity the resource id already had
    /// (a deleted cluster of the same name) is replaced: its principal no longer exists, so the
    /// permissions granted to it do not carry over, as in Azure.
    ///
    /// # Errors
    /// [`VaultError::InvalidInput`] if `resource_id`, `location` or `tenant` is malformed.
    pub fn create_system_assigned(
        &self,
        resource_id: &str,
        location: &str,
        tenant: &str,
    ) -> Result<Identity, VaultError> {
        let parsed: ResourceId = resource_id.parse()?;
        validate_name(NameKind::Region, location)?;
        validate_name(NameKind::Tenant, tenant)?;
        let options = IdentityOptions {
            subscription: parsed.subscription.clone(),
            resource_group: parsed.resource_group.clone(),
            location: location.to_owned(),
            tenant: tenant.to_owned(),
        };
        let identity = self.new_identity(
            resource_id.to_owned(),
            &parsed.name,
            IdentityKind::SystemAssigned,
            &options,
        );
        self.update(|dir| {
            dir.identities.retain(|i| {
                !(i.kind == IdentityKind::SystemAssigned && i.id.eq_ignore_ascii_case(resource_id))
            });
            dir.identities.push(identity.clone());
            Ok(identity)
        })
    }

    /// Deletes the system-assigned identity of `resource_id`; `None` if it had none. Its
    /// principal then holds no permission anywhere it is not named again.
    ///
    /// # Errors
    /// [`VaultError::Directory`] if the directory cannot be read or written.
    pub fn delete_system_assigned(
        &self,
        resource_id: &str,
    ) -> Result<Option<Identity>, VaultError> {
        self.update(|dir| {
            let at = dir.identities.iter().position(|i| {
                i.kind == IdentityKind::SystemAssigned && i.id.eq_ignore_ascii_case(resource_id)
            });
            Ok(at.map(|at| dir.identities.remove(at)))
        })
    }

    /// Every identity, user-assigned first, each kind by id.
    ///
    /// # Errors
    /// [`VaultError::Directory`] if the directory is damaged.
    pub fn list(&self) -> Result<Vec<Identity>, VaultError> {
        let mut all = self.read()?.identities;
        all.sort_by(|a, b| {
            (a.kind == IdentityKind::SystemAssigned, &a.id)
                .cmp(&(b.kind == IdentityKind::SystemAssigned, &b.id))
        });
        Ok(all)
    }

    /// The identity whose principal id is `principal`.
    ///
    /// # Errors
    /// [`VaultError::Directory`] if the directory is damaged.
    pub fn by_principal(&self, principal: &PrincipalId) -> Result<Option<Identity>, VaultError> {
        Ok(self
            .read()?
            .identities
            .into_iter()
            .find(|i| i.principal_id == *principal))
    }

    /// The identity with resource id `id` (a user-assigned identity's, or a system-assigned
    /// identity's owner's), compared case-insensitively as Azure does.
    ///
    /// # Errors
    /// [`VaultError::Directory`] if the directory is damaged.
    pub fn by_id(&self, id: &str) -> Result<Option<Identity>, VaultError> {
        Ok(self
            .read()?
            .identities
            .into_iter()
            .find(|i| i.id.eq_ignore_ascii_case(id)))
    }

    /// A user-assigned identity by resource id, or by name when that name is unique.
    ///
    /// # Errors
    /// [`VaultError::IdentityNotFound`]; [`VaultError::BadRequest`] if the name is ambiguous
    /// (the same name in several resource groups: give the resource id).
    pub fn user_assigned(&self, name_or_id: &str) -> Result<Identity, VaultError> {
        let all = self.read()?.identities;
        let mut found: Vec<Identity> = all
            .into_iter()
            .filter(|i| i.kind == IdentityKind::UserAssigned)
            .filter(|i| i.id.eq_ignore_ascii_case(name_or_id) || i.name == name_or_id)
            .collect();
        match found.len() {
            0 => Err(VaultError::IdentityNotFound {
                identity: name_or_id.to_owned(),
            }),
            1 => Ok(found.remove(0)),
            n => Err(VaultError::BadRequest {
                vault: String::new(),
                reason: format!(
                    "identity name {name_or_id} is ambiguous ({n} resource groups have one); give its resource id"
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::VaultErrorKind;
    use logvault_core::TestClock;

    fn directory(dir: &Path) -> IdentityDirectory {
        IdentityDirectory::new(dir, Arc::new(TestClock::new(Utc::now())))
    }

    #[test]
    fn user_assigned_identities_have_azure_ids_and_unique_names() {
        let tmp = tempfile::tempdir().unwrap();
        let d = directory(tmp.path());
        let u = d
            .create_user_assigned("ops_id-1", &IdentityOptions::default())
            .unwrap();
        assert_eq!(
            u.id,
            "/subscriptions/local/resourceGroups/local/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ops_id-1"
        );
        assert_eq!(u.tenant_id, "local");
        assert_eq!(u.principal_id.0.len(), 36);
        let dup = d
            .create_user_assigned("ops_id-1", &IdentityOptions::default())
            .unwrap_err();
        assert_eq!(dup.kind(), VaultErrorKind::Conflict);
        assert_eq!(
            d.create_user_assigned("x", &IdentityOptions::default())
                .unwrap_err()
                .kind(),
            VaultErrorKind::BadRequest
        );
        assert_eq!(d.user_assigned("ops_id-1").unwrap(), u);
        assert_eq!(d.user_assigned(&u.id.to_uppercase()).unwrap(), u);
        assert_eq!(d.by_principal(&u.principal_id).unwrap(), Some(u.clone()));
        assert_eq!(
            d.user_assigned("nobody").unwrap_err().kind(),
            VaultErrorKind::NotFound
        );

        let other_rg = IdentityOptions {
            resource_group: "rg2".into(),
            ..IdentityOptions::default()
        };
        d.create_user_assigned("ops_id-1", &other_rg).unwrap();
        assert_eq!(
            d.user_assigned("ops_id-1").unwrap_err().kind(),
            VaultErrorKind::BadRequest
        );
    }

    #[test]
    fn system_assigned_identities_belong_to_their_resource() {
        let tmp = tempfile::tempdir().unwrap();
        let d = directory(tmp.path());
        let cluster = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.OperationalInsights/clusters/c1";
        let sys = d.create_system_assigned(cluster, "local", "local").unwrap();
        assert_eq!(sys.kind, IdentityKind::SystemAssigned);
        assert_eq!(
            (sys.name.as_str(), sys.subscription_id.as_str()),
            ("c1", "s1")
        );
        assert_eq!(d.by_id(cluster).unwrap(), Some(sys.clone()));
        // It is not a user-assigned identity.
        assert!(d.user_assigned("c1").is_err());
        assert_eq!(
            d.delete_system_assigned(cluster).unwrap(),
            Some(sys.clone())
        );
        assert_eq!(d.by_principal(&sys.principal_id).unwrap(), None);
        assert!(
            d.create_system_assigned("not-an-id", "local", "local")
                .is_err()
        );
        // A new identity for a re-created cluster has a new principal, and replaces any left.
        let again = d.create_system_assigned(cluster, "local", "local").unwrap();
        assert_ne!(again.principal_id, sys.principal_id);
        let third = d.create_system_assigned(cluster, "local", "local").unwrap();
        assert_eq!(d.by_principal(&again.principal_id).unwrap(), None);
        assert_eq!(d.by_id(cluster).unwrap(), Some(third));
        assert_eq!(d.list().unwrap().len(), 1);
    }

    #[test]
    fn damaged_directory_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let d = directory(tmp.path());
        d.create_user_assigned("ops1", &IdentityOptions::default())
            .unwrap();
        std::fs::write(tmp.path().join("identities.json"), b"{}").unwrap();
        let err = d.list().unwrap_err();
        assert_eq!(err.kind(), VaultErrorKind::Internal);
        assert!(err.to_string().contains("identities.json"), "{err}");
    }
}
