//! The persisted resources of the control plane.

use chrono::{DateTime, Utc};
use logvault_core::ids::ResourceId;
use logvault_kms::PrincipalId;
use serde::{Deserialize, Serialize};

/// Version of the control-plane state file.
pub(crate) const STATE_VERSION: u32 = 1;

/// Everything the control plane knows, persisted as one JSON document (`control/state.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct State {
    pub(crate) version: u32,
    /// The latest time at which the state was written; the clock never reads earlier (so an
    /// earlier `--now` cannot undo what a later one did).
    pub(crate) last_time: Option<DateTime<Utc>>,
    pub(crate) clusters: Vec<Cluster>,
    pub(crate) workspaces: Vec<Workspace>,
    /// Storage account resources (R-H2); absent in states written before they existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) storage_accounts: Vec<crate::storage::StorageAccountResource>,
    /// Customer Lockbox requests (R-I1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) lockbox_requests: Vec<crate::lockbox::LockboxRequest>,
    /// The Lockbox audit log, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) lockbox_audit: Vec<crate::lockbox::LockboxAuditEntry>,
}

/// How a cluster authenticates to the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IdentityType {
    /// A principal created with the cluster.
    SystemAssigned,
    /// A user-assigned identity given at creation or update.
    UserAssigned,
    /// No identity: access to the data is revoked for good (R-C5).
    None,
}

impl std::str::FromStr for IdentityType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "systemassigned" => Ok(Self::SystemAssigned),
            "userassigned" => Ok(Self::UserAssigned),
            "none" => Ok(Self::None),
            _ => Err(format!(
                "identity type {s:?} is not one of SystemAssigned, UserAssigned, None"
            )),
        }
    }
}

/// Who bills the cluster's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BillingType {
    /// Billed on the cluster.
    Cluster,
    /// Billed on the linked workspaces, in proportion.
    Workspaces,
}

impl std::str::FromStr for BillingType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "cluster" => Ok(Self::Cluster),
            "workspaces" => Ok(Self::Workspaces),
            _ => Err(format!(
                "billing type {s:?} is not one of Cluster, Workspaces"
            )),
        }
    }
}

/// Where a cluster is in its lifecycle, as Azure reports `provisioningState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProvisioningState {
    /// Create is in progress.
    Creating,
    /// A key or identity update is in progress.
    Updating,
    /// Delete is in progress.
    Deleting,
    /// Provisioned and idle.
    Succeeded,
    /// Soft-deleted: the name stays reserved until purged.
    Deleted,
}

/// The customer key a cluster's account key is wrapped with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyVaultProperties {
    /// `https://NAME.vault.local`.
    pub key_vault_uri: String,
    /// The key's name.
    pub key_name: String,
    /// The key version; empty means the latest (autorotation, R-G4).
    pub key_version: String,
}

/// A cluster's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterIdentity {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: IdentityType,
    /// The principal the vault sees (none for `None`).
    pub principal_id: Option<PrincipalId>,
    /// The resource id of the user-assigned identity, if any.
    pub user_assigned: Option<String>,
    /// The tenant.
    pub tenant_id: String,
}

/// The asynchronous operation a cluster is going through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Operation {
    pub(crate) state: ProvisioningState,
    pub(crate) completes_at: DateTime<Utc>,
}

/// A dedicated cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// Its name (unique in the home).
    pub name: String,
    /// Its subscription.
    pub subscription: String,
    /// Its resource group.
    pub resource_group: String,
    /// Its region.
    pub region: String,
    /// A stable unique id.
    pub cluster_id: String,
    /// Its identity.
    pub identity: ClusterIdentity,
    /// Commitment tier, GB/day.
    pub sku_capacity: u32,
    /// Billing type.
    pub billing_type: BillingType,
    /// Double encryption (fixed at creation, R-B4).
    pub double_encryption: bool,
    /// Availability zones.
    pub availability_zones: bool,
    /// The customer key, once configured.
    pub key: Option<KeyVaultProperties>,
    /// The lifecycle state, once any operation has completed.
    pub state: ProvisioningState,
    pub(crate) operation: Option<Operation>,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it was last changed.
    pub last_modified: DateTime<Utc>,
    /// When its capacity was last changed.
    pub last_sku_update: DateTime<Utc>,
    /// When it was soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Cluster {
    /// The resource id.
    pub fn resource_id(&self) -> ResourceId {
        ResourceId::operational_insights(
            &self.subscription,
            &self.resource_group,
            "clusters",
            &self.name,
        )
    }

    pub(crate) fn resource_id_of(subscription: &str, resource_group: &str, name: &str) -> String {
        ResourceId::operational_insights(subscription, resource_group, "clusters", name).to_string()
    }

    /// The state as a GET shows it: the running operation's, else the settled one.
    pub fn provisioning_state(&self) -> ProvisioningState {
        self.operation.map_or(self.state, |op| op.state)
    }

    /// Whether the cluster is provisioned and idle.
    pub fn is_provisioned(&self) -> bool {
        self.operation.is_none() && self.state == ProvisioningState::Succeeded
    }

    /// Whether it counts as active (not soft-deleted) for the limits.
    pub fn is_active(&self) -> bool {
        self.state != ProvisioningState::Deleted
    }
}

/// A workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    /// Its name (unique in the home).
    pub name: String,
    /// Its subscription.
    pub subscription: String,
    /// Its resource group.
    pub resource_group: String,
    /// Its region.
    pub region: String,
    /// Its tenant.
    pub tenant: String,
    /// A stable unique id (Log Analytics' workspace id).
    pub customer_id: String,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// The cluster it is linked to.
    pub cluster: Option<String>,
    /// When each link operation happened (R-C6 counts them over 30 days).
    pub link_operations: Vec<DateTime<Utc>>,
    /// When it was soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// How many days of its newest data the hot cache keeps (R-F1), when not the home's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_window_days: Option<u32>,
    /// The storage account it links for saved queries and/or alerts (R-H2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked_storage: Vec<crate::storage::LinkedStorage>,
    /// Its resource tags (ARM's `tags`), as set by `PUT`/`PATCH` or `workspace update --tag`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
}

impl Workspace {
    /// The storage account linked for `kind`, if any.
    pub fn linked_for(&self, kind: crate::storage::DataSourceType) -> Option<&str> {
        self.linked_storage
            .iter()
            .find(|l| l.data_source_type == kind)
            .map(|l| l.storage_account.as_str())
    }
}

impl Workspace {
    /// The resource id.
    pub fn resource_id(&self) -> ResourceId {
        ResourceId::operational_insights(
            &self.subscription,
            &self.resource_group,
            "workspaces",
            &self.name,
        )
    }
}

/// The times the state may hold: the years 1 to 9999 (Log Analytics' `datetime` range), so that
/// adding the service's durations (at most 100 years, `Timings::validate`) never overflows.
fn time_in_range(t: DateTime<Utc>) -> bool {
    (1..=9999).contains(&chrono::Datelike::year(&t))
}

impl State {
    /// Checks what the file may hold that the rules rely on: the file is plain JSON, so a hand
    /// edit (or damage that still parses) can put anything there. The reason names the
    /// resource and field at fault.
    pub(crate) fn check(&self) -> Result<(), String> {
        let time = |what: &str, field: &str, t: DateTime<Utc>| {
            if time_in_range(t) {
                Ok(())
            } else {
                Err(format!(
                    "{what}: {field} {t} is outside the years 1 to 9999"
                ))
            }
        };
        if let Some(t) = self.last_time {
            time("the state", "lastTime", t)?;
        }
        for c in &self.clusters {
            let what = format!("cluster {}", c.name);
            time(&what, "created", c.created)?;
            time(&what, "lastModified", c.last_modified)?;
            time(&what, "lastSkuUpdate", c.last_sku_update)?;
            if let Some(t) = c.deleted_at {
                time(&what, "deletedAt", t)?;
            }
            if let Some(op) = c.operation {
                time(&what, "operation.completesAt", op.completes_at)?;
            }
        }
        for r in &self.lockbox_requests {
            let what = format!("lockbox request {}", r.id);
            time(&what, "created", r.created)?;
            time(&what, "expiresAt", r.expires_at)?;
            for (field, t) in [
                ("decidedAt", r.decided_at),
                ("accessEndsAt", r.access_ends_at),
            ] {
                if let Some(t) = t {
                    time(&what, field, t)?;
                }
            }
        }
        for a in &self.storage_accounts {
            let what = format!("storage account {}", a.name);
            time(&what, "created", a.created)?;
            time(&what, "lastModified", a.last_modified)?;
        }
        for w in &self.workspaces {
            let what = format!("workspace {}", w.name);
            time(&what, "created", w.created)?;
            if let Some(t) = w.deleted_at {
                time(&what, "deletedAt", t)?;
            }
            for t in &w.link_operations {
                time(&what, "linkOperations", *t)?;
            }
            if let Some(days) = w.hot_window_days
                && !(1..=crate::rules::MAX_HOT_WINDOW_DAYS).contains(&days)
            {
                return Err(format!(
                    "{what}: hotWindowDays {days} is outside 1 to {}",
                    crate::rules::MAX_HOT_WINDOW_DAYS
                ));
            }
        }
        Ok(())
    }
}
