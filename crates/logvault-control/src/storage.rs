//! Storage accounts (the customer's "bring your own storage") and the links of a workspace to
//! one for saved queries (`Query`) and log alerts (`Alerts`): R-H2, R-H3.
//!
//! The control plane records the resource and checks its rules (names, one account per
//! workspace, same region, a key that validates as a cluster's does); creating the account's
//! storage and wrapping its key is the engine's (it holds the store).

use chrono::{DateTime, Utc};
use logvault_core::NameKind;
use serde::{Deserialize, Serialize};

use crate::model::{ClusterIdentity, IdentityType, KeyVaultProperties};
use crate::{ControlError, ControlPlane, rules};

/// A storage account resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageAccountResource {
    /// Its name: 3-24 lowercase letters and digits.
    pub name: String,
    /// Its subscription.
    pub subscription: String,
    /// Its resource group.
    pub resource_group: String,
    /// Its region.
    pub region: String,
    /// The identity it uses the customer key with.
    pub identity: ClusterIdentity,
    /// The customer key its account key is wrapped with; `None`: the service key.
    pub key: Option<KeyVaultProperties>,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it was last changed.
    pub last_modified: DateTime<Utc>,
}

impl StorageAccountResource {
    /// Its resource id (`.../providers/Microsoft.Storage/storageAccounts/<name>`).
    pub fn resource_id(&self) -> String {
        storage_resource_id(&self.subscription, &self.resource_group, &self.name)
    }
}

fn storage_resource_id(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/\
         Microsoft.Storage/storageAccounts/{name}"
    )
}

/// What a workspace links a storage account for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataSourceType {
    /// Saved queries and functions (and no query history while linked).
    Query,
    /// Log alert rules (and fired alerts without query text or results).
    Alerts,
}

impl std::str::FromStr for DataSourceType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "query" => Ok(Self::Query),
            "alerts" => Ok(Self::Alerts),
            _ => Err(format!(
                "data source type {s:?} is not one of Query, Alerts"
            )),
        }
    }
}

impl std::fmt::Display for DataSourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Query => "Query",
            Self::Alerts => "Alerts",
        })
    }
}

/// A workspace's link to a storage account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkedStorage {
    /// What it is linked for.
    pub data_source_type: DataSourceType,
    /// The storage account's name.
    pub storage_account: String,
    /// When the link was made.
    pub created: DateTime<Utc>,
}

/// A request to create a storage account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageAccountSpec {
    /// The name.
    pub name: String,
    /// Region (default `local`).
    pub region: Option<String>,
    /// A user-assigned identity (name or resource id); default a system-assigned one.
    pub user_identity: Option<String>,
    /// A customer key to wrap the account key with; default the service key.
    pub key: Option<KeyVaultProperties>,
}

impl ControlPlane {
    /// Records a new storage account after validating its customer key, if any, as a cluster's
    /// (R-C3). The engine then creates its storage ([`ControlPlane::forget_storage_account`]
    /// undoes this if that fails).
    ///
    /// # Errors
    /// 400 for bad names or a key that does not validate; 409 if the name is taken.
    pub async fn create_storage_account(
        &self,
        spec: StorageAccountSpec,
    ) -> Result<StorageAccountResource, ControlError> {
        rules::name(NameKind::StorageAccount, &spec.name)?;
        let region = spec.region.unwrap_or_else(|| self.defaults.region.clone());
        rules::name(NameKind::Region, &region)?;
        if self
            .snapshot()?
            .0
            .storage_accounts
            .iter()
            .any(|s| s.name == spec.name)
        {
            return Err(storage_exists(&spec.name));
        }
        let (subscription, resource_group) = (
            self.defaults.subscription.clone(),
            self.defaults.resource_group.clone(),
        );
        let resource_id = storage_resource_id(&subscription, &resource_group, &spec.name);
        let kind = if spec.user_identity.is_some() {
            IdentityType::UserAssigned
        } else {
            IdentityType::SystemAssigned
        };
        let identity = self
            .resolve_identity(
                &spec.name,
                &resource_id,
                &region,
                kind,
                spec.user_identity.as_deref(),
            )
            .await?
            .identity;
        if let Some(key) = &spec.key {
            let what = format!("storage account {}", spec.name);
            self.validate_key(&what, &region, &identity, key).await?;
        }
        self.transact(|state, now| {
            if state.storage_accounts.iter().any(|s| s.name == spec.name) {
                return Err(storage_exists(&spec.name));
            }
            let account = StorageAccountResource {
                name: spec.name.clone(),
                subscription,
                resource_group,
                region,
                identity,
                key: spec.key,
                created: now,
                last_modified: now,
            };
            state.storage_accounts.push(account.clone());
            Ok(account)
        })
    }

    /// Sets (or changes) the customer key of a storage account after validating it. The engine
    /// re-wraps the account key.
    ///
    /// # Errors
    /// 404 for an unknown account; 400 for a key that does not validate.
    pub async fn set_storage_account_key(
        &self,
        name: &str,
        key: KeyVaultProperties,
    ) -> Result<StorageAccountResource, ControlError> {
        let account = self.get_storage_account(name)?;
        let what = format!("storage account {name}");
        self.validate_key(&what, &account.region, &account.identity, &key)
            .await?;
        self.transact(|state, now| {
            let account = find_mut(&mut state.storage_accounts, name)?;
            account.key = Some(key);
            account.last_modified = now;
            Ok(account.clone())
        })
    }

    /// A storage account.
    ///
    /// # Errors
    /// 404 if there is none.
    pub fn get_storage_account(&self, name: &str) -> Result<StorageAccountResource, ControlError> {
        self.snapshot()?
            .0
            .storage_accounts
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| storage_not_found(name))
    }

    /// Every storage account.
    ///
    /// # Errors
    /// If the state cannot be read.
    pub fn list_storage_accounts(&self) -> Result<Vec<StorageAccountResource>, ControlError> {
        Ok(self.snapshot()?.0.storage_accounts)
    }

    /// Deletes a storage account.
    ///
    /// # Errors
    /// 404 for an unknown account; 409 while a workspace links it.
    pub fn delete_storage_account(
        &self,
        name: &str,
    ) -> Result<StorageAccountResource, ControlError> {
        self.transact(|state, _| {
            find_mut(&mut state.storage_accounts, name)?;
            if let Some(ws) = state.workspaces.iter().find(|w| {
                w.deleted_at.is_none() && w.linked_storage.iter().any(|l| l.storage_account == name)
            }) {
                return Err(ControlError::conflict(format!(
                    "storage account {name} is linked to workspace {}: delete the link first",
                    ws.name
                )));
            }
            let at = state
                .storage_accounts
                .iter()
                .position(|s| s.name == name)
                .ok_or_else(|| storage_not_found(name))?;
            Ok(state.storage_accounts.remove(at))
        })
    }

    /// Removes the record of a storage account whose storage could not be created.
    ///
    /// # Errors
    /// If the state cannot be written.
    pub fn forget_storage_account(&self, name: &str) -> Result<(), ControlError> {
        self.transact(|state, _| {
            state.storage_accounts.retain(|s| s.name != name);
            Ok(())
        })
    }

    /// Links `workspace` to `account` for `kind` (R-H2): the account must be in the workspace's
    /// region; a workspace links a single storage account, for one or both types.
    ///
    /// # Errors
    /// 404 for an unknown workspace or account; 400 across regions; 409 if the workspace
    /// already links another account (or this one for this type).
    pub fn link_storage(
        &self,
        workspace: &str,
        kind: DataSourceType,
        account: &str,
    ) -> Result<LinkedStorage, ControlError> {
        self.transact(|state, now| {
            check_link(state, workspace, kind, account)?;
            let ws = state
                .workspaces
                .iter_mut()
                .find(|w| w.name == workspace && w.deleted_at.is_none())
                .ok_or_else(|| rules::workspace_not_found(workspace))?;
            let link = LinkedStorage {
                data_source_type: kind,
                storage_account: account.to_owned(),
                created: now,
            };
            ws.linked_storage.push(link.clone());
            Ok(link)
        })
    }

    /// Checks that [`ControlPlane::link_storage`] would succeed, changing nothing (so a front
    /// end can refuse before it warns about what linking removes).
    ///
    /// # Errors
    /// As [`ControlPlane::link_storage`].
    pub fn check_link_storage(
        &self,
        workspace: &str,
        kind: DataSourceType,
        account: &str,
    ) -> Result<(), ControlError> {
        check_link(&self.snapshot()?.0, workspace, kind, account)
    }

    /// Removes the link of `workspace` for `kind`.
    ///
    /// # Errors
    /// 404 for an unknown workspace or a link that does not exist.
    pub fn unlink_storage(
        &self,
        workspace: &str,
        kind: DataSourceType,
    ) -> Result<LinkedStorage, ControlError> {
        self.transact(|state, _| {
            let ws = state
                .workspaces
                .iter_mut()
                .find(|w| w.name == workspace && w.deleted_at.is_none())
                .ok_or_else(|| rules::workspace_not_found(workspace))?;
            let at = ws
                .linked_storage
                .iter()
                .position(|l| l.data_source_type == kind)
                .ok_or_else(|| {
                    ControlError::not_found(format!(
                        "workspace {workspace} has no linked storage account for {kind}"
                    ))
                })?;
            Ok(ws.linked_storage.remove(at))
        })
    }
}

fn check_link(
    state: &crate::model::State,
    workspace: &str,
    kind: DataSourceType,
    account: &str,
) -> Result<(), ControlError> {
    let sa = state
        .storage_accounts
        .iter()
        .find(|s| s.name == account)
        .ok_or_else(|| storage_not_found(account))?;
    let ws = state
        .workspaces
        .iter()
        .find(|w| w.name == workspace && w.deleted_at.is_none())
        .ok_or_else(|| rules::workspace_not_found(workspace))?;
    if sa.region != ws.region {
        return Err(ControlError::bad_request(format!(
            "storage account {account} is in region {} but workspace {workspace} is in region \
             {}: a linked storage account must be in the workspace's region",
            sa.region, ws.region
        )));
    }
    if let Some(other) = ws
        .linked_storage
        .iter()
        .find(|l| l.storage_account != account)
    {
        return Err(ControlError::conflict(format!(
            "workspace {workspace} already links storage account {} ({}); a workspace links a \
             single storage account",
            other.storage_account, other.data_source_type
        )));
    }
    if ws.linked_storage.iter().any(|l| l.data_source_type == kind) {
        return Err(ControlError::conflict(format!(
            "workspace {workspace} is already linked to storage account {account} for {kind}"
        )));
    }
    Ok(())
}

fn find_mut<'a>(
    accounts: &'a mut [StorageAccountResource],
    name: &str,
) -> Result<&'a mut StorageAccountResource, ControlError> {
    accounts
        .iter_mut()
        .find(|s| s.name == name)
        .ok_or_else(|| storage_not_found(name))
}

fn storage_not_found(name: &str) -> ControlError {
    ControlError::not_found(format!("Storage account {name} not found"))
}

fn storage_exists(name: &str) -> ControlError {
    ControlError::conflict(format!("Storage account {name} already exists"))
}
