//! The service's rules that only need the state: limits, name reservations, link windows.
//! Each returns the service's refusal (code and message) or `Ok`.

use chrono::{DateTime, Utc};
use logvault_core::{NameKind, Timings, validate_name};

use crate::ControlError;
use crate::model::{Cluster, State, Workspace};

/// Commitment tiers a cluster's capacity may take, in GB/day (R-C1).
pub const SKU_CAPACITIES: [u32; 4] = [500, 1000, 2000, 5000];

/// The service limits (R-C6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Active clusters per region and subscription.
    pub max_active_clusters: usize,
    /// Reserved clusters (active or soft-deleted) per region and subscription.
    pub max_reserved_clusters: usize,
    /// Workspaces linked to one cluster.
    pub max_workspaces_per_cluster: usize,
    /// Link operations per workspace within the link window (30 days by default).
    pub max_link_operations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_active_clusters: 5,
            max_reserved_clusters: 7,
            max_workspaces_per_cluster: 1000,
            max_link_operations: 2,
        }
    }
}

/// A name check as a 400.
pub(crate) fn name(kind: NameKind, value: &str) -> Result<(), ControlError> {
    validate_name(kind, value).map_err(|e| ControlError::bad_request(e.to_string()))
}

/// R-C1: the capacity is one of the commitment tiers.
pub(crate) fn capacity(value: u32) -> Result<(), ControlError> {
    if SKU_CAPACITIES.contains(&value) {
        Ok(())
    } else {
        Err(ControlError::bad_request(format!(
            "sku capacity {value} is not a commitment tier (one of 500, 1000, 2000, 5000 GB/day)"
        )))
    }
}

/// Longest hot cache window a workspace may ask for, in days (two years).
pub const MAX_HOT_WINDOW_DAYS: u32 = 730;

/// R-F1: a workspace's hot cache window is 1 to [`MAX_HOT_WINDOW_DAYS`] days.
pub(crate) fn hot_window_days(days: u32) -> Result<(), ControlError> {
    if (1..=MAX_HOT_WINDOW_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(ControlError::bad_request(format!(
            "hot cache window of {days} days is out of range (1 to {MAX_HOT_WINDOW_DAYS} days)"
        )))
    }
}

/// R-C6, R-C7: a new cluster's name is free and its region and subscription have room.
pub(crate) fn new_cluster(
    state: &State,
    name: &str,
    subscription: &str,
    region: &str,
    limits: &Limits,
    timings: &Timings,
) -> Result<(), ControlError> {
    if let Some(existing) = state.clusters.iter().find(|c| c.name == name) {
        return Err(match existing.deleted_at {
            Some(at) => ControlError::conflict(format!(
                "Cluster name {name} is reserved: the cluster was deleted on {} and the name is \
                 released when it is purged on {}",
                at.to_rfc3339(),
                (at + timings.soft_delete()).to_rfc3339()
            )),
            None => ControlError::conflict(format!("Cluster {name} already exists")),
        });
    }
    let same_scope = |c: &&Cluster| c.subscription == subscription && c.region == region;
    let active = state
        .clusters
        .iter()
        .filter(same_scope)
        .filter(|c| c.is_active())
        .count();
    if active >= limits.max_active_clusters {
        return Err(ControlError::bad_request(format!(
            "subscription {subscription} already has {active} active clusters in region {region} \
             (limit {})",
            limits.max_active_clusters
        )));
    }
    let reserved = state.clusters.iter().filter(same_scope).count();
    if reserved >= limits.max_reserved_clusters {
        return Err(ControlError::bad_request(format!(
            "subscription {subscription} already has {reserved} reserved clusters (active or \
             deleted in the last 14 days) in region {region} (limit {})",
            limits.max_reserved_clusters
        )));
    }
    Ok(())
}

/// R-C9: the named cluster exists and is not soft-deleted.
pub(crate) fn cluster_mut<'a>(
    state: &'a mut State,
    name: &str,
) -> Result<&'a mut Cluster, ControlError> {
    state
        .clusters
        .iter_mut()
        .find(|c| c.name == name && c.is_active())
        .ok_or_else(|| cluster_not_found(name))
}

/// R-C9: the named cluster exists and is not soft-deleted.
pub(crate) fn cluster<'a>(state: &'a State, name: &str) -> Result<&'a Cluster, ControlError> {
    state
        .clusters
        .iter()
        .find(|c| c.name == name && c.is_active())
        .ok_or_else(|| cluster_not_found(name))
}

pub(crate) fn cluster_not_found(name: &str) -> ControlError {
    ControlError::not_found(format!(
        "Cluster not found: {name} (it may have been deleted; a deleted cluster's name stays \
         reserved for 14 days)"
    ))
}

/// The named workspace exists and is not soft-deleted.
pub(crate) fn workspace_mut<'a>(
    state: &'a mut State,
    name: &str,
) -> Result<&'a mut Workspace, ControlError> {
    state
        .workspaces
        .iter_mut()
        .find(|w| w.name == name && w.deleted_at.is_none())
        .ok_or_else(|| workspace_not_found(name))
}

pub(crate) fn workspace_not_found(name: &str) -> ControlError {
    ControlError::not_found(format!("Workspace not found: {name}"))
}

/// R-C3: no update while another asynchronous operation runs or the cluster is being deleted.
pub(crate) fn idle(cluster: &Cluster) -> Result<(), ControlError> {
    use crate::model::ProvisioningState::{Deleted, Deleting};
    match cluster.provisioning_state() {
        Deleting | Deleted => Err(ControlError::bad_request(format!(
            "Cluster is in deleting state. Wait for the Async operation to complete and try \
             again (cluster {})",
            cluster.name
        ))),
        _ if cluster.operation.is_some() => Err(ControlError::bad_request(format!(
            "Operation cannot be executed now. Wait for the Async operation to complete and try \
             again (cluster {} is {:?})",
            cluster.name,
            cluster.provisioning_state()
        ))),
        _ => Ok(()),
    }
}

/// R-D2, R-C6, R-C8: `workspace` may be linked to `cluster` now.
pub(crate) fn link(
    state: &State,
    workspace: &Workspace,
    cluster: &Cluster,
    limits: &Limits,
    timings: &Timings,
    now: DateTime<Utc>,
) -> Result<(), ControlError> {
    if let Some(other) = &workspace.cluster
        && other != &cluster.name
    {
        return Err(ControlError::conflict(format!(
            "Workspace {} is linked to cluster {other}: unlink it before linking it to {}",
            workspace.name, cluster.name
        )));
    }
    if !cluster.is_provisioned() {
        return Err(ControlError::bad_request(format!(
            "Cluster {} is not provisioned (provisioningState {:?}): link workspaces after the \
             operation completes, or data ingested meanwhile would be dropped",
            cluster.name,
            cluster.provisioning_state()
        )));
    }
    if workspace.region != cluster.region || workspace.tenant != cluster.identity.tenant_id {
        return Err(ControlError::bad_request(format!(
            "Workspace {} is in region {} (tenant {}) but cluster {} is in region {} (tenant \
             {}): workspaces, clusters and vaults must share region and tenant",
            workspace.name,
            workspace.region,
            workspace.tenant,
            cluster.name,
            cluster.region,
            cluster.identity.tenant_id
        )));
    }
    let linked = state
        .workspaces
        .iter()
        .filter(|w| w.cluster.as_deref() == Some(cluster.name.as_str()))
        .count();
    if linked >= limits.max_workspaces_per_cluster {
        return Err(ControlError::bad_request(format!(
            "Cluster {} already has {linked} linked workspaces (limit {})",
            cluster.name, limits.max_workspaces_per_cluster
        )));
    }
    let window_start = now - timings.link_window();
    let mut recent: Vec<_> = workspace
        .link_operations
        .iter()
        .filter(|t| **t > window_start)
        .collect();
    if recent.len() >= limits.max_link_operations {
        recent.sort();
        let next = recent
            .first()
            .map(|t| (**t + timings.link_window()).to_rfc3339())
            .unwrap_or_default();
        return Err(ControlError::bad_request(format!(
            "Workspace {} has had {} link operations in the last 30 days (limit {}); the next \
             is allowed after {next}",
            workspace.name,
            recent.len(),
            limits.max_link_operations
        )));
    }
    Ok(())
}
