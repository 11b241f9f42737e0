//! The control plane: one state document, the clock, the limits and the ports.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

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
    /// The latest time this process has seen recorded in the state (the clock floor), so that
    /// [`ControlPlane::now`] needs no I/O. Shared by clones.
    floor: Arc<Mutex<Option<DateTime<Utc>>>>,
    /// Set on a node that follows the control plane another node publishes (several nodes on
    /// one storage): what the refusal of a change names.
    follows: Option<String>,
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
            floor: Arc::new(Mutex::new(None)),
            follows: None,
        }
    }

    /// Makes this control plane a follower's: its state is a copy of the one `primary`
    /// publishes ([`ControlPlane::import_state`]), and every change is refused with 409, naming
    /// `primary`, instead of being made here and lost at the next copy.
    #[must_use]
    pub fn following(mut self, primary: impl Into<String>) -> Self {
        self.follows = Some(primary.into());
        self
    }

    /// The node this control plane follows, if it is a follower's.
    pub fn follows(&self) -> Option<&str> {
        self.follows.as_deref()
    }

    /// The state document as it is on disk (what a primary node publishes); `None` before the
    /// first change.
    ///
    /// # Errors
    /// The state file cannot be read.
    pub fn export_state(&self) -> Result<Option<Vec<u8>>, ControlError> {
        self.file.read_bytes()
    }

    /// Replaces the state with `bytes` (a document a primary node exported), after checking it
    /// is one this version reads; says whether anything changed.
    ///
    /// # Errors
    /// A malformed document or one of a newer version (the state is left as it was); the state
    /// file cannot be written.
    pub fn import_state(&self, bytes: &[u8]) -> Result<bool, ControlError> {
        let state: State = serde_json::from_slice(bytes).map_err(|e| ControlError::Storage {
            path: "shared control state".into(),
            reason: format!("corrupted state document: {e}"),
        })?;
        check_version(&state)?;
        let changed = self.file.replace_bytes(bytes)?;
        if let Some(at) = state.last_time {
            self.raise_floor(at);
        }
        Ok(changed)
    }

    /// Replaces the limits (tests use small ones).
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Runs `change` on the advanced state at the current time, and persists the result: the
    /// one way the state is written, under the state file's exclusive lock.
    pub(crate) fn transact<R>(
        &self,
        change: impl FnOnce(&mut State, DateTime<Utc>) -> Result<R, ControlError>,
    ) -> Result<R, ControlError> {
        if let Some(primary) = &self.follows {
            return Err(ControlError::conflict(format!(
                "this node follows the control plane of node {primary}: create and change \
                 workspaces, clusters, links and storage accounts there (docs/deploy.md)"
            )));
        }
        self.file.update(|state: &mut State| {
            check_version(state)?;
            state.version = STATE_VERSION;
            let now = self.advanced_now(state.last_time);
            advance(state, now, &self.timings);
            let result = change(state, now)?;
            state.last_time = Some(now);
            self.raise_floor(now);
            Ok((result, true))
        })
    }

    /// A consistent snapshot of the state, advanced to now. A read reads: the state file is
    /// replaced atomically, so a read without the lock sees one whole version, and nothing is
    /// written unless an operation fell due or a soft-deleted resource passed its period since
    /// the last change. Then that transition is persisted (once), with the time it was seen,
    /// so that a later process on an earlier clock (`--now`) cannot undo what this one saw.
    pub(crate) fn snapshot(&self) -> Result<(State, DateTime<Utc>), ControlError> {
        let mut state: State = self.file.read()?;
        check_version(&state)?;
        let now = self.advanced_now(state.last_time);
        // A follower keeps the transition in memory: the primary persists it and publishes it.
        if advance(&mut state, now, &self.timings) && self.follows.is_none() {
            return self.transact(|state, now| Ok((state.clone(), now)));
        }
        Ok((state, now))
    }

    /// The current time as the control plane sees it: the clock, never earlier than the latest
    /// time recorded in the state that this process has read or written. No I/O once the state
    /// has been read once.
    ///
    /// # Errors
    /// A state file that cannot be read, the first time.
    pub fn now(&self) -> Result<DateTime<Utc>, ControlError> {
        let known = *self.floor.lock().unwrap_or_else(PoisonError::into_inner);
        match known {
            Some(floor) => Ok(self.clock.now().max(floor)),
            None => self.snapshot().map(|(_, now)| now),
        }
    }

    fn advanced_now(&self, recorded: Option<DateTime<Utc>>) -> DateTime<Utc> {
        let floor = {
            let mut known = self.floor.lock().unwrap_or_else(PoisonError::into_inner);
            let floor = (*known).max(recorded);
            *known = floor.or(Some(DateTime::<Utc>::MIN_UTC));
            floor
        };
        floor.map_or_else(|| self.clock.now(), |f| self.clock.now().max(f))
    }

    fn raise_floor(&self, to: DateTime<Utc>) {
        let mut known = self.floor.lock().unwrap_or_else(PoisonError::into_inner);
        *known = (*known).max(Some(to));
    }
}

fn check_version(state: &State) -> Result<(), ControlError> {
    check_version_only(state)?;
    state.check().map_err(|reason| ControlError::Storage {
        path: "control/state.json".into(),
        reason: format!("corrupted state file: {reason}"),
    })
}

fn check_version_only(state: &State) -> Result<(), ControlError> {
    if state.version > STATE_VERSION {
        return Err(ControlError::Storage {
            path: "control/state.json".into(),
            reason: format!(
                "state version {} is newer than this logvault ({STATE_VERSION})",
                state.version
            ),
        });
    }
    Ok(())
}

/// Completes due operations and purges what is past its soft-delete period; says whether it
/// changed anything.
pub(crate) fn advance(state: &mut State, now: DateTime<Utc>, timings: &Timings) -> bool {
    let mut changed = false;
    for cluster in &mut state.clusters {
        if let Some(op) = cluster.operation
            && now >= op.completes_at
        {
            changed = true;
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
    changed |= crate::lockbox::advance_lockbox(state, now);
    let period = timings.soft_delete();
    let counts = (state.clusters.len(), state.workspaces.len());
    state
        .clusters
        .retain(|c| c.deleted_at.is_none_or(|at| now < at + period));
    state
        .workspaces
        .retain(|w| w.deleted_at.is_none_or(|at| now < at + period));
    changed || counts != (state.clusters.len(), state.workspaces.len())
}
