//! Cluster operations: create, update (key, identity, capacity, billing), delete, get, list.

use logvault_core::NameKind;
use logvault_kms::{KeyRef, PrincipalId, VaultError, VaultErrorKind};

use crate::model::{
    BillingType, Cluster, ClusterIdentity, IdentityType, KeyVaultProperties, Operation,
    ProvisioningState,
};
use crate::{ControlError, ControlPlane, rules};

/// A request to create a cluster. Unset fields take the service's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// The cluster's name.
    pub name: String,
    /// Region (default `local`).
    pub region: Option<String>,
    /// Subscription (default `local`).
    pub subscription: Option<String>,
    /// Resource group (default `local`).
    pub resource_group: Option<String>,
    /// Identity type (default `SystemAssigned`).
    pub identity_type: IdentityType,
    /// The user-assigned identity (name or resource id), with `UserAssigned`.
    pub user_assigned: Option<String>,
    /// Commitment tier in GB/day (default 500).
    pub sku_capacity: u32,
    /// Billing type (default `Cluster`).
    pub billing_type: BillingType,
    /// Double encryption (default on; fixed after creation).
    pub double_encryption: bool,
    /// Availability zones (default off).
    pub availability_zones: bool,
    /// Key properties; only with a user-assigned identity (R-C2).
    pub key: Option<KeyVaultProperties>,
}

impl ClusterSpec {
    /// A spec with the service's defaults.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            region: None,
            subscription: None,
            resource_group: None,
            identity_type: IdentityType::SystemAssigned,
            user_assigned: None,
            sku_capacity: 500,
            billing_type: BillingType::Cluster,
            double_encryption: true,
            availability_zones: false,
            key: None,
        }
    }
}

/// A request to update a cluster. `None` leaves a property as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterUpdate {
    /// New key properties.
    pub key: Option<KeyVaultProperties>,
    /// New identity type.
    pub identity_type: Option<IdentityType>,
    /// The user-assigned identity, with `UserAssigned`.
    pub user_assigned: Option<String>,
    /// New capacity.
    pub sku_capacity: Option<u32>,
    /// New billing type.
    pub billing_type: Option<BillingType>,
    /// A new resource group: refused, clusters cannot move (R-C6).
    pub resource_group: Option<String>,
    /// A new subscription: refused, clusters cannot move (R-C6).
    pub subscription: Option<String>,
}

/// What a cluster's identity resolves to before it is stored.
pub(crate) struct ResolvedIdentity {
    pub(crate) identity: ClusterIdentity,
}

impl ControlPlane {
    /// Creates a cluster (R-C1, R-C2, R-C6, R-C7). It is `Creating` until the operation
    /// completes; see [`ControlPlane::wait_cluster`].
    ///
    /// # Errors
    /// 400 for invalid input or a limit, 409 for a taken or reserved name, the key validation
    /// errors of [`ControlPlane::update_cluster`] when key properties are given.
    pub async fn create_cluster(&self, spec: ClusterSpec) -> Result<Cluster, ControlError> {
        rules::name(NameKind::Cluster, &spec.name)?;
        let subscription = spec
            .subscription
            .clone()
            .unwrap_or_else(|| self.defaults.subscription.clone());
        let resource_group = spec
            .resource_group
            .clone()
            .unwrap_or_else(|| self.defaults.resource_group.clone());
        let region = spec
            .region
            .clone()
            .unwrap_or_else(|| self.defaults.region.clone());
        rules::name(NameKind::Subscription, &subscription)?;
        rules::name(NameKind::ResourceGroup, &resource_group)?;
        rules::name(NameKind::Region, &region)?;
        rules::capacity(spec.sku_capacity)?;
        if spec.key.is_some() && spec.identity_type != IdentityType::UserAssigned {
            return Err(ControlError::bad_request(format!(
                "Key properties cannot be set when creating cluster {} with a {:?} identity: the \
                 identity does not exist before the cluster, so the vault cannot grant it access. \
                 Create the cluster, grant its identity Get, Wrap Key and Unwrap Key, then update \
                 the cluster with the key (or use a UserAssigned identity)",
                spec.name, spec.identity_type
            )));
        }
        // Check names and limits first, so that nothing is provisioned for a refused request;
        // they are checked again when the cluster is recorded.
        let (state, _) = self.snapshot()?;
        rules::new_cluster(
            &state,
            &spec.name,
            &subscription,
            &region,
            &self.limits,
            &self.timings,
        )?;

        let resource_id =
            crate::model::Cluster::resource_id_of(&subscription, &resource_group, &spec.name);
        let resolved = self
            .resolve_identity(
                &spec.name,
                &resource_id,
                &region,
                spec.identity_type,
                spec.user_assigned.as_deref(),
            )
            .await?;
        self.ports
            .provision_account(&spec.name, spec.double_encryption)
            .await?;
        if let Some(key) = &spec.key {
            self.validate_and_bind(&spec.name, &region, &resolved.identity, key)
                .await?;
        }
        let completes = self.timings.async_operation();
        self.transact(|state, now| {
            rules::new_cluster(
                state,
                &spec.name,
                &subscription,
                &region,
                &self.limits,
                &self.timings,
            )?;
            let cluster = Cluster {
                name: spec.name.clone(),
                subscription: subscription.clone(),
                resource_group: resource_group.clone(),
                region: region.clone(),
                cluster_id: uuid::Uuid::new_v4().to_string(),
                identity: resolved.identity.clone(),
                sku_capacity: spec.sku_capacity,
                billing_type: spec.billing_type,
                double_encryption: spec.double_encryption,
                availability_zones: spec.availability_zones,
                key: spec.key.clone(),
                state: ProvisioningState::Creating,
                operation: Some(Operation {
                    state: ProvisioningState::Creating,
                    completes_at: now + completes,
                }),
                created: now,
                last_modified: now,
                last_sku_update: now,
                deleted_at: None,
            };
            state.clusters.push(cluster.clone());
            Ok(cluster)
        })
    }

    /// Updates a cluster: key properties (R-C3), identity (R-C4, R-C5), capacity and billing
    /// type (R-C9). Key and identity updates are asynchronous (`Updating`).
    ///
    /// # Errors
    /// The seed's 400s: "Cluster is in deleting state", "KeyVaultProperties is not empty but has
    /// a bad format", "Failed to validate key in Key Vault", "Key is not recoverable",
    /// "Operation cannot be executed now"; 400 for identity and key in one update, for moving,
    /// and for reverting identity `None`; 404 "Cluster not found"; 503 if the vault is
    /// unreachable during validation.
    pub async fn update_cluster(
        &self,
        name: &str,
        update: ClusterUpdate,
    ) -> Result<Cluster, ControlError> {
        let (state, _) = self.snapshot()?;
        let current = rules::cluster(&state, name)?.clone();
        if update
            .resource_group
            .as_ref()
            .is_some_and(|g| g != &current.resource_group)
            || update
                .subscription
                .as_ref()
                .is_some_and(|s| s != &current.subscription)
        {
            return Err(ControlError::bad_request(format!(
                "Moving cluster {name} to another resource group or subscription is not supported"
            )));
        }
        rules::idle(&current)?;
        let identity_change = update.identity_type.is_some() || update.user_assigned.is_some();
        if identity_change && update.key.is_some() {
            return Err(ControlError::bad_request(format!(
                "Cluster update should not include both identity and key identifier details in \
                 the same operation (cluster {name}): update them in two consecutive operations"
            )));
        }
        if let Some(capacity) = update.sku_capacity {
            rules::capacity(capacity)?;
        }
        let mut new_identity = None;
        if identity_change {
            if current.identity.kind == IdentityType::None {
                return Err(ControlError::bad_request(format!(
                    "Cluster {name} has identity type None, which revoked access to its data and \
                     cannot be reverted through the API"
                )));
            }
            let kind = update.identity_type.unwrap_or(IdentityType::UserAssigned);
            let resource_id = current.resource_id().to_string();
            new_identity = Some(
                if kind == current.identity.kind && kind == IdentityType::SystemAssigned {
                    current.identity.clone()
                } else {
                    self.resolve_identity(
                        name,
                        &resource_id,
                        &current.region,
                        kind,
                        update.user_assigned.as_deref(),
                    )
                    .await?
                    .identity
                },
            );
        }
        if let Some(key) = &update.key {
            self.validate_and_bind(name, &current.region, &current.identity, key)
                .await?;
        }
        let completes = self.timings.async_operation();
        self.transact(|state, now| {
            let cluster = rules::cluster_mut(state, name)?;
            rules::idle(cluster)?;
            let asynchronous = update.key.is_some() || new_identity.is_some();
            if let Some(key) = update.key.clone() {
                cluster.key = Some(key);
            }
            if let Some(identity) = new_identity.clone() {
                cluster.identity = identity;
            }
            if let Some(capacity) = update.sku_capacity
                && capacity != cluster.sku_capacity
            {
                cluster.sku_capacity = capacity;
                cluster.last_sku_update = now;
            }
            if let Some(billing) = update.billing_type {
                cluster.billing_type = billing;
            }
            cluster.last_modified = now;
            if asynchronous {
                cluster.operation = Some(Operation {
                    state: ProvisioningState::Updating,
                    completes_at: now + completes,
                });
            }
            Ok(cluster.clone())
        })
    }

    /// Deletes a cluster (R-C7): `Deleting`, then soft-deleted with its name reserved for the
    /// soft-delete period, then purged. Its workspaces are unlinked when the delete starts
    /// (not counted as link operations); their new data goes under the service key.
    ///
    /// # Errors
    /// 404 "Cluster not found"; 400 while another operation runs.
    pub fn delete_cluster(&self, name: &str) -> Result<Cluster, ControlError> {
        let completes = self.timings.async_operation();
        self.transact(|state, now| {
            let cluster = rules::cluster_mut(state, name)?;
            rules::idle(cluster)?;
            cluster.operation = Some(Operation {
                state: ProvisioningState::Deleting,
                completes_at: now + completes,
            });
            cluster.last_modified = now;
            let cluster = cluster.clone();
            for ws in &mut state.workspaces {
                if ws.cluster.as_deref() == Some(name) {
                    ws.cluster = None;
                }
            }
            Ok(cluster)
        })
    }

    /// The named cluster (R-C9).
    ///
    /// # Errors
    /// 404 "Cluster not found" for a missing or soft-deleted cluster.
    pub fn get_cluster(&self, name: &str) -> Result<Cluster, ControlError> {
        let (state, _) = self.snapshot()?;
        rules::cluster(&state, name).cloned()
    }

    /// Clusters, optionally only those of one resource group and/or subscription (R-C9).
    ///
    /// # Errors
    /// If the state cannot be read.
    pub fn list_clusters(
        &self,
        resource_group: Option<&str>,
        subscription: Option<&str>,
    ) -> Result<Vec<Cluster>, ControlError> {
        let (state, _) = self.snapshot()?;
        Ok(state
            .clusters
            .into_iter()
            .filter(|c| c.is_active())
            .filter(|c| resource_group.is_none_or(|g| c.resource_group == g))
            .filter(|c| subscription.is_none_or(|s| c.subscription == s))
            .collect())
    }

    /// Soft-deleted clusters, whose names stay reserved until they are purged (R-C7).
    ///
    /// # Errors
    /// If the state cannot be read.
    pub fn list_deleted_clusters(&self) -> Result<Vec<Cluster>, ControlError> {
        let (state, _) = self.snapshot()?;
        Ok(state
            .clusters
            .into_iter()
            .filter(|c| !c.is_active())
            .collect())
    }

    pub(crate) async fn resolve_identity(
        &self,
        cluster: &str,
        resource_id: &str,
        region: &str,
        kind: IdentityType,
        user_assigned: Option<&str>,
    ) -> Result<ResolvedIdentity, ControlError> {
        let tenant = self.defaults.tenant.clone();
        let identity = match (kind, user_assigned) {
            (IdentityType::UserAssigned, None) => {
                return Err(ControlError::bad_request(format!(
                    "cluster {cluster}: identity type UserAssigned needs a user-assigned identity"
                )));
            }
            (IdentityType::UserAssigned, Some(id)) => {
                let found = self.ports.user_identity(id).await?.ok_or_else(|| {
                    ControlError::bad_request(format!(
                        "user-assigned identity {id} not found (create it with `logvault identity \
                         create`)"
                    ))
                })?;
                ClusterIdentity {
                    kind,
                    principal_id: Some(found.principal_id),
                    user_assigned: Some(found.id),
                    tenant_id: found.tenant,
                }
            }
            (_, Some(id)) => {
                return Err(ControlError::bad_request(format!(
                    "cluster {cluster}: a user-assigned identity ({id}) needs identity type \
                     UserAssigned"
                )));
            }
            (IdentityType::SystemAssigned, None) => ClusterIdentity {
                kind,
                principal_id: Some(
                    self.ports
                        .create_system_identity(resource_id, region, &tenant)
                        .await?,
                ),
                user_assigned: None,
                tenant_id: tenant,
            },
            (IdentityType::None, None) => ClusterIdentity {
                kind,
                principal_id: None,
                user_assigned: None,
                tenant_id: tenant,
            },
        };
        Ok(ResolvedIdentity { identity })
    }

    /// R-C3, R-A2, R-C8: checks the key in the vault on behalf of the cluster's identity, then
    /// re-wraps the cluster's account key with it.
    async fn validate_and_bind(
        &self,
        cluster: &str,
        region: &str,
        identity: &ClusterIdentity,
        props: &KeyVaultProperties,
    ) -> Result<(), ControlError> {
        let what = format!("cluster {cluster}");
        let (key, principal) = self.validate_key(&what, region, identity, props).await?;
        match self.ports.bind_account_key(cluster, &key, &principal).await {
            Err(ControlError::Vault(e)) => Err(validation_error(&what, &key, e)),
            Err(ControlError::KeyBinding {
                kind: Some(kind),
                reason,
                ..
            }) => Err(refusal(&what, &key, kind, &reason)),
            other => other,
        }
    }

    /// The checks of a customer key before a resource (`what`: "cluster c1", "storage account
    /// s1") uses it: the key exists and the identity may use it, the vault is recoverable, and
    /// vault and resource share region and tenant. Returns the key and the principal to use.
    pub(crate) async fn validate_key(
        &self,
        what: &str,
        region: &str,
        identity: &ClusterIdentity,
        props: &KeyVaultProperties,
    ) -> Result<(KeyRef, PrincipalId), ControlError> {
        let version = Some(props.key_version.as_str());
        let key =
            KeyRef::from_uri(&props.key_vault_uri, &props.key_name, version).map_err(|e| {
                ControlError::bad_request(format!(
                    "KeyVaultProperties is not empty but has a bad format ({what}): {e}"
                ))
            })?;
        let principal: &PrincipalId = identity.principal_id.as_ref().ok_or_else(|| {
            ControlError::bad_request(format!(
                "Failed to validate key in Key Vault: {what} has no identity"
            ))
        })?;
        let vault = self.ports.vault();
        let fail = |e: VaultError| validation_error(what, &key, e);
        vault.get_key(principal, &key).await.map_err(fail)?;
        let vault_props = vault
            .vault_properties(principal, &key)
            .await
            .map_err(fail)?;
        if !vault_props.is_recoverable() {
            return Err(ControlError::bad_request(format!(
                "Key is not recoverable. Key Vault must be set to Soft-delete and \
                 Purge-protection (vault {}: softDelete {}, purgeProtection {})",
                vault_props.name, vault_props.soft_delete, vault_props.purge_protection
            )));
        }
        if vault_props.region != region || vault_props.tenant != identity.tenant_id {
            return Err(ControlError::bad_request(format!(
                "Failed to validate key in Key Vault: vault {} is in region {} (tenant {}) but \
                 {what} is in region {region} (tenant {}); they must share region and \
                 tenant",
                vault_props.name, vault_props.region, vault_props.tenant, identity.tenant_id
            )));
        }
        Ok((key, principal.clone()))
    }
}

pub(crate) fn validation_error(what: &str, key: &KeyRef, e: VaultError) -> ControlError {
    refusal(what, key, e.kind(), &e.to_string())
}

fn refusal(what: &str, key: &KeyRef, kind: VaultErrorKind, e: &str) -> ControlError {
    match kind {
        VaultErrorKind::Transient => ControlError::unavailable(format!(
            "Key Vault is unreachable, try again later ({what}, key {key}): {e}"
        )),
        VaultErrorKind::NotRecoverable => ControlError::bad_request(format!(
            "Key is not recoverable. Key Vault must be set to Soft-delete and Purge-protection \
             ({what}, key {key}): {e}"
        )),
        _ => ControlError::bad_request(format!(
            "Failed to validate key in Key Vault. Could be due to lack of permissions or when \
             key doesn't exist ({what}, key {key}): {e}"
        )),
    }
}
