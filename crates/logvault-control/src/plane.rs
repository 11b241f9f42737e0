//! The control plane: one state document, the clock, the limits and the ports.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use logvault_core::{SharedClock, Timings};

use crate::model::{ProvisioningState, STATE_VERSION, State};
use crate::persist::StateFile;
use crate::rules::Limits;
use crate::{ControlError, ControlPorts};

/// The control plane of one logvault home.
///
/// Asynchronous operations (cluster create, key or identity update, delete) are recorded with
/// the time they complete, `Timings::async_operation_secs` after they start. Every call first
/// *advances* the state to the current time: operations that are due complete, soft-deleted
/// clusters and workspaces past their period are purged. So a CLI that runs no long-lived process
/// still sees its operations finish, and a `TestClock` drives every time rule in tests.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    pub(crate) file: StateFile,
    pub(crate) clock: SharedClock,
    pub(crate) timings: Timings,
    pub(crate) limits: Limits,
    pub(crate) ports: Arc<dyn ControlPorts>,
    /// Defaults for resources created without them (`local` in the embedded default).
    pub(crate) defaults: Defaults,
}

/// The subscription, resource group, region and tenant used when a request names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// Subscription.
    pub subscription: String,
    /// Resource group.
    pub resource_group: String,
    /// Region.
    pub region: String,
    /// Tenant.
    pub tenant: String,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            subscription: "local".into(),
            resource_group: "local".into(),
            region: "local".into(),
            tenant: "local".into(),
        }
    }
}

impl ControlPlane {
    /// Opens the control plane whose state lives in `dir` (`HOME/control`).
    pub fn open(
        dir: &Path,
        clock: SharedClock,
        timings: Timings,
        ports: Arc<dyn ControlPorts>,
    ) -> Self {
        Self {
            file: StateFile::new(dir.join("state.json")),
            clock,
            timings,
            limits: Limits::default(),
            ports,
            defaults: Defaults::default(),
        }
    }

    /// Replaces the limits (tests use small ones).
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Runs `change` on the advanced state at the current time, and persists the result.
    pub(crate) fn transact<R>(
        &self,
        change: impl FnOnce(&mut State, DateTime<Utc>) -> Result<R, ControlError>,
    ) -> Result<R, ControlError> {
        self.file.update(|state: &mut State| {
            if state.version > STATE_VERSION {
                return Err(ControlError::Storage {
                    path: "control/state.json".into(),
                    reason: format!(
                        "state version {} is newer than this logvault ({STATE_VERSION})",
                        state.version
                    ),
                });
            }
            state.check().map_err(|reason| ControlError::Storage {
                path: self.file.path().display().to_string(),
                reason: format!("corrupted state file: {reason}"),
            })?;
            state.version = STATE_VERSION;
            let now = state
                .last_time
                .map_or_else(|| self.clock.now(), |floor| self.clock.now().max(floor));
            advance(state, now, &self.timings);
            let result = change(state, now)?;
            state.last_time = Some(now);
            Ok((result, true))
        })
    }

    /// A consistent snapshot of the state, advanced to now.
    pub(crate) fn snapshot(&self) -> Result<(State, DateTime<Utc>), ControlError> {
        self.transact(|state, now| Ok((state.clone(), now)))
    }

    /// The current time as the control plane sees it (never earlier than its last write).
    pub fn now(&self) -> Result<DateTime<Utc>, ControlError> {
        self.snapshot().map(|(_, now)| now)
    }
}

/// Completes due operations and purges what is past its soft-delete period.
pub(crate) fn advance(state: &mut State, now: DateTime<Utc>, timings: &Timings) {
    for cluster in &mut state.clusters {
        if let Some(op) = cluster.operation
            && now >= op.completes_at
        {
            cluster.operation = None;
            cluster.last_modified = op.completes_at;
            if op.state == ProvisioningState::Deleting {
                cluster.state = ProvisioningState::Deleted;
                cluster.deleted_at = Some(op.completes_at);
            } else {
                cluster.state = ProvisioningState::Succeeded;
            }
        }
    }
    let period = timings.soft_delete();
    state
        .clusters
        .retain(|c| c.deleted_at.is_none_or(|at| now < at + period));
    state
        .workspaces
        .retain(|w| w.deleted_at.is_none_or(|at| now < at + period));
}
