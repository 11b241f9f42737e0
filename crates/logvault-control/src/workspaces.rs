//! Workspace operations: create, delete, recover, link, unlink, get, list.

use logvault_core::NameKind;

use crate::model::Workspace;
use crate::{ControlError, ControlPlane, rules};

/// A request to create a workspace. Unset fields take the service's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkspaceSpec {
    /// The workspace's name.
    pub name: String,
    /// Region (default `local`).
    pub region: Option<String>,
    /// Subscription (default `local`).
    pub subscription: Option<String>,
    /// Resource group (default `local`).
    pub resource_group: Option<String>,
}

impl WorkspaceSpec {
    /// A spec with the service's defaults.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }
}

impl ControlPlane {
    /// Creates a workspace.
    ///
    /// # Errors
    /// 400 for invalid names; 409 if the name is taken or soft-deleted (recover it instead).
    pub fn create_workspace(&self, spec: WorkspaceSpec) -> Result<Workspace, ControlError> {
        rules::name(NameKind::Workspace, &spec.name)?;
        let subscription = spec
            .subscription
            .unwrap_or_else(|| self.defaults.subscription.clone());
        let resource_group = spec
            .resource_group
            .unwrap_or_else(|| self.defaults.resource_group.clone());
        let region = spec.region.unwrap_or_else(|| self.defaults.region.clone());
        rules::name(NameKind::Subscription, &subscription)?;
        rules::name(NameKind::ResourceGroup, &resource_group)?;
        rules::name(NameKind::Region, &region)?;
        self.transact(|state, now| {
            if let Some(existing) = state.workspaces.iter().find(|w| w.name == spec.name) {
                return Err(ControlError::conflict(match existing.deleted_at {
                    Some(at) => format!(
                        "Workspace {} was deleted on {} and is recoverable until {}: recover it \
                         with `logvault workspace recover`",
                        spec.name,
                        at.to_rfc3339(),
                        (at + self.timings.soft_delete()).to_rfc3339()
                    ),
                    None => format!("Workspace {} already exists", spec.name),
                }));
            }
            let workspace = Workspace {
                name: spec.name.clone(),
                subscription,
                resource_group,
                region,
                tenant: self.defaults.tenant.clone(),
                customer_id: uuid::Uuid::new_v4().to_string(),
                created: now,
                cluster: None,
                link_operations: Vec::new(),
                hot_window_days: None,
                linked_storage: Vec::new(),
                tags: Default::default(),
                deleted_at: None,
            };
            state.workspaces.push(workspace.clone());
            Ok(workspace)
        })
    }

    /// The named workspace.
    ///
    /// # Errors
    /// 404 for a missing or soft-deleted workspace.
    pub fn get_workspace(&self, name: &str) -> Result<Workspace, ControlError> {
        let (state, _) = self.snapshot()?;
        state
            .workspaces
            .into_iter()
            .find(|w| w.name == name && w.deleted_at.is_none())
            .ok_or_else(|| rules::workspace_not_found(name))
    }

    /// Every workspace that is not soft-deleted.
    ///
    /// # Errors
    /// If the state cannot be read.
    pub fn list_workspaces(&self) -> Result<Vec<Workspace>, ControlError> {
        let (state, _) = self.snapshot()?;
        Ok(state
            .workspaces
            .into_iter()
            .filter(|w| w.deleted_at.is_none())
            .collect())
    }

    /// Soft-deletes a workspace; it stays linked and recoverable for the soft-delete period
    /// (R-D4), then is purged.
    ///
    /// # Errors
    /// 404 for a missing workspace.
    pub fn delete_workspace(&self, name: &str) -> Result<Workspace, ControlError> {
        self.transact(|state, now| {
            let ws = rules::workspace_mut(state, name)?;
            ws.deleted_at = Some(now);
            Ok(ws.clone())
        })
    }

    /// Recovers a soft-deleted workspace as it was, still linked (R-D4).
    ///
    /// # Errors
    /// 404 if there is no soft-deleted workspace of that name (never existed, or purged); 400 if
    /// it is not deleted.
    pub fn recover_workspace(&self, name: &str) -> Result<Workspace, ControlError> {
        self.transact(|state, _| {
            let ws = state
                .workspaces
                .iter_mut()
                .find(|w| w.name == name)
                .ok_or_else(|| {
                    ControlError::not_found(format!(
                        "Workspace not found: {name} (nothing to recover; a deleted workspace is \
                         purged after its soft-delete period)"
                    ))
                })?;
            if ws.deleted_at.is_none() {
                return Err(ControlError::bad_request(format!(
                    "Workspace {name} is not deleted"
                )));
            }
            ws.deleted_at = None;
            Ok(ws.clone())
        })
    }

    /// Links a workspace to a cluster (R-D2, R-C6, R-C8). New data is then written under the
    /// cluster's key (R-D3). Linking again to the same cluster changes nothing.
    ///
    /// # Errors
    /// 404 for a missing workspace or cluster; 409 if linked to another cluster; 400 if the
    /// cluster is not provisioned, in another region or tenant, full, or the workspace has used
    /// its link operations for the window.
    pub fn link_workspace(&self, name: &str, cluster: &str) -> Result<Workspace, ControlError> {
        self.transact(|state, now| {
            let target = rules::cluster(state, cluster)?.clone();
            let ws = state
                .workspaces
                .iter()
                .find(|w| w.name == name && w.deleted_at.is_none())
                .ok_or_else(|| rules::workspace_not_found(name))?;
            if ws.cluster.as_deref() == Some(cluster) {
                return Ok(ws.clone());
            }
            rules::link(state, ws, &target, &self.limits, &self.timings, now)?;
            let ws = rules::workspace_mut(state, name)?;
            ws.cluster = Some(cluster.to_owned());
            ws.link_operations.push(now);
            let window_start = now - self.timings.link_window();
            ws.link_operations.retain(|t| *t > window_start);
            Ok(ws.clone())
        })
    }

    /// Sets how many days of a workspace's newest data the hot cache keeps (R-F1: 14 days by
    /// default, configurable per workspace); `None` goes back to the home's default.
    ///
    /// # Errors
    /// 404 for a missing workspace; 400 for a window outside 1 to 730 days.
    pub fn set_workspace_hot_window(
        &self,
        name: &str,
        days: Option<u32>,
    ) -> Result<Workspace, ControlError> {
        if let Some(days) = days {
            rules::hot_window_days(days)?;
        }
        self.transact(|state, _| {
            let ws = rules::workspace_mut(state, name)?;
            ws.hot_window_days = days;
            Ok(ws.clone())
        })
    }

    /// Replaces a workspace's resource tags (at most 50, names up to 512 characters and values
    /// up to 256, as Azure's limits).
    ///
    /// # Errors
    /// 404 for a missing workspace; 400 for tags over the limits.
    pub fn set_workspace_tags(
        &self,
        name: &str,
        tags: std::collections::BTreeMap<String, String>,
    ) -> Result<Workspace, ControlError> {
        if tags.len() > 50 {
            return Err(ControlError::bad_request(format!(
                "Workspace {name}: {} tags, at most 50 are allowed",
                tags.len()
            )));
        }
        if let Some((k, v)) = tags
            .iter()
            .find(|(k, v)| k.is_empty() || k.chars().count() > 512 || v.chars().count() > 256)
        {
            return Err(ControlError::bad_request(format!(
                "Workspace {name}: tag {k:?}={v:?} is invalid (a name of 1 to 512 characters, a \
                 value of at most 256)"
            )));
        }
        self.transact(|state, _| {
            let ws = rules::workspace_mut(state, name)?;
            ws.tags = tags;
            Ok(ws.clone())
        })
    }

    /// Unlinks a workspace (allowed at any time, R-D3): new data goes under the service key
    /// again; queries still read all of it.
    ///
    /// # Errors
    /// 404 for a missing workspace; 400 if it is not linked.
    pub fn unlink_workspace(&self, name: &str) -> Result<Workspace, ControlError> {
        self.transact(|state, _| {
            let ws = rules::workspace_mut(state, name)?;
            if ws.cluster.is_none() {
                return Err(ControlError::bad_request(format!(
                    "Workspace {name} is not linked to a cluster"
                )));
            }
            ws.cluster = None;
            Ok(ws.clone())
        })
    }
}
