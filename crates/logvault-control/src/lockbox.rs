//! Customer Lockbox (R-I1): an operator's (support engineer's) access to the data of a
//! workspace on a dedicated cluster needs the customer's approval of a request. A request is
//! created, then approved or rejected; unanswered, it expires after four days; approved, access
//! ends when its duration ends. Every step and every operator query is in an audit log the
//! customer can read. Lockbox is not available in China regions.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::model::State;
use crate::{ControlError, ControlPlane, rules};

/// Days after which an unanswered request expires.
pub const LOCKBOX_PENDING_DAYS: i64 = 4;
/// The longest access a request may ask for, in hours.
pub const LOCKBOX_MAX_HOURS: u32 = 96;
/// The access asked for when a request names no duration, in hours.
pub const LOCKBOX_DEFAULT_HOURS: u32 = 8;

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LockboxStatus {
    /// Waiting for the customer.
    Pending,
    /// Approved: access until `accessEndsAt`.
    Approved,
    /// Rejected by the customer.
    Rejected,
    /// Unanswered for four days, or approved and past its duration.
    Expired,
}

/// A Lockbox request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockboxRequest {
    /// Its id.
    pub id: String,
    /// The workspace whose data the operator asks to access.
    pub workspace: String,
    /// The operator (support principal).
    pub operator: String,
    /// Why.
    pub reason: String,
    /// How long the access lasts once approved.
    pub duration_hours: u32,
    /// Where it is.
    pub status: LockboxStatus,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it expires if unanswered.
    pub expires_at: DateTime<Utc>,
    /// When it was approved or rejected.
    pub decided_at: Option<DateTime<Utc>>,
    /// When access ends (approved requests).
    pub access_ends_at: Option<DateTime<Utc>>,
}

/// One line of the Lockbox audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockboxAuditEntry {
    /// When.
    pub time: DateTime<Utc>,
    /// The workspace.
    pub workspace: String,
    /// The operator.
    pub operator: String,
    /// The request, if one applies.
    pub request_id: Option<String>,
    /// `RequestCreated`, `Approved`, `Rejected`, `Expired`, `AccessEnded`, `Query`,
    /// `QueryRefused`.
    pub action: String,
    /// The query text (operator queries) or the reason.
    pub detail: Option<String>,
}

/// Whether Customer Lockbox is available in `region` (not in China, as the seed says).
pub fn lockbox_available(region: &str) -> bool {
    !region.to_ascii_lowercase().starts_with("china")
}

fn audit(state: &mut State, time: DateTime<Utc>, r: &LockboxRequest, action: &str) {
    state.lockbox_audit.push(LockboxAuditEntry {
        time,
        workspace: r.workspace.clone(),
        operator: r.operator.clone(),
        request_id: Some(r.id.clone()),
        action: action.to_owned(),
        detail: None,
    });
}

/// Expires requests whose time has come (called when the state is advanced); says whether it
/// changed anything. Each expiry is audited at the time it happened.
pub(crate) fn advance_lockbox(state: &mut State, now: DateTime<Utc>) -> bool {
    let mut events = Vec::new();
    for r in &mut state.lockbox_requests {
        match r.status {
            LockboxStatus::Pending if now >= r.expires_at => {
                r.status = LockboxStatus::Expired;
                events.push((r.expires_at, r.clone(), "Expired"));
            }
            LockboxStatus::Approved if r.access_ends_at.is_some_and(|end| now >= end) => {
                r.status = LockboxStatus::Expired;
                let end = r.access_ends_at.unwrap_or(now);
                events.push((end, r.clone(), "AccessEnded"));
            }
            _ => {}
        }
    }
    let changed = !events.is_empty();
    for (time, r, action) in events {
        audit(state, time, &r, action);
    }
    changed
}

impl ControlPlane {
    /// Creates a request by `operator` to access `workspace` for `hours` (default 8).
    ///
    /// # Errors
    /// 404 for an unknown workspace; 400 in a China region, for a workspace not on a dedicated
    /// cluster, or a duration outside 1 to 96 hours.
    pub fn create_lockbox_request(
        &self,
        workspace: &str,
        operator: &str,
        reason: &str,
        hours: Option<u32>,
    ) -> Result<LockboxRequest, ControlError> {
        let hours = hours.unwrap_or(LOCKBOX_DEFAULT_HOURS);
        if !(1..=LOCKBOX_MAX_HOURS).contains(&hours) {
            return Err(ControlError::bad_request(format!(
                "lockbox request for workspace {workspace}: duration {hours} hours is outside 1 \
                 to {LOCKBOX_MAX_HOURS}"
            )));
        }
        if operator.trim().is_empty() || reason.trim().is_empty() {
            return Err(ControlError::bad_request(format!(
                "lockbox request for workspace {workspace}: operator and reason are required"
            )));
        }
        self.transact(|state, now| {
            let ws = state
                .workspaces
                .iter()
                .find(|w| w.name == workspace && w.deleted_at.is_none())
                .ok_or_else(|| rules::workspace_not_found(workspace))?;
            if !lockbox_available(&ws.region) {
                return Err(ControlError::bad_request(format!(
                    "Customer Lockbox is not available in region {} (workspace {workspace}): \
                     Lockbox isn't available in China",
                    ws.region
                )));
            }
            if ws.cluster.is_none() {
                return Err(ControlError::bad_request(format!(
                    "Customer Lockbox applies to workspaces on a dedicated cluster; workspace \
                     {workspace} is not linked to one"
                )));
            }
            let request = LockboxRequest {
                id: uuid::Uuid::new_v4().to_string(),
                workspace: workspace.to_owned(),
                operator: operator.to_owned(),
                reason: reason.to_owned(),
                duration_hours: hours,
                status: LockboxStatus::Pending,
                created: now,
                expires_at: now + Duration::days(LOCKBOX_PENDING_DAYS),
                decided_at: None,
                access_ends_at: None,
            };
            state.lockbox_requests.push(request.clone());
            audit(state, now, &request, "RequestCreated");
            if let Some(entry) = state.lockbox_audit.last_mut() {
                entry.detail = Some(reason.to_owned());
            }
            Ok(request)
        })
    }

    /// Approves (`approve`) or rejects a pending request.
    ///
    /// # Errors
    /// 404 for an unknown request; 409 if it is not pending (decided or expired).
    pub fn decide_lockbox_request(
        &self,
        id: &str,
        approve: bool,
    ) -> Result<LockboxRequest, ControlError> {
        self.transact(|state, now| {
            let r = state
                .lockbox_requests
                .iter_mut()
                .find(|r| r.id == id)
                .ok_or_else(|| lockbox_not_found(id))?;
            if r.status != LockboxStatus::Pending {
                return Err(ControlError::conflict(format!(
                    "lockbox request {id} is {:?}, not Pending",
                    r.status
                )));
            }
            r.decided_at = Some(now);
            if approve {
                r.status = LockboxStatus::Approved;
                r.access_ends_at = Some(now + Duration::hours(i64::from(r.duration_hours)));
            } else {
                r.status = LockboxStatus::Rejected;
            }
            let r = r.clone();
            audit(
                state,
                now,
                &r,
                if approve { "Approved" } else { "Rejected" },
            );
            Ok(r)
        })
    }

    /// A request.
    ///
    /// # Errors
    /// 404 if there is none.
    pub fn get_lockbox_request(&self, id: &str) -> Result<LockboxRequest, ControlError> {
        self.snapshot()?
            .0
            .lockbox_requests
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| lockbox_not_found(id))
    }

    /// Every request, oldest first.
    ///
    /// # Errors
    /// If the state cannot be read.
    pub fn list_lockbox_requests(&self) -> Result<Vec<LockboxRequest>, ControlError> {
        Ok(self.snapshot()?.0.lockbox_requests)
    }

    /// The audit log, oldest first, for one workspace or all.
    ///
    /// # Errors
    /// If the state cannot be read.
    pub fn lockbox_audit(
        &self,
        workspace: Option<&str>,
    ) -> Result<Vec<LockboxAuditEntry>, ControlError> {
        let mut log = self.snapshot()?.0.lockbox_audit;
        log.retain(|e| workspace.is_none_or(|w| e.workspace == w));
        log.sort_by_key(|e| e.time);
        Ok(log)
    }

    /// An operator's query of `workspace`: allowed only under an approved request whose access
    /// has not ended; audited either way (with the query text).
    ///
    /// # Errors
    /// 403 without such a request; 400 where Lockbox is unavailable; 404 for an unknown
    /// workspace.
    pub fn authorize_operator_query(
        &self,
        workspace: &str,
        operator: &str,
        query: &str,
    ) -> Result<LockboxRequest, ControlError> {
        let outcome = self.transact(|state, now| {
            let ws = state
                .workspaces
                .iter()
                .find(|w| w.name == workspace && w.deleted_at.is_none())
                .ok_or_else(|| rules::workspace_not_found(workspace))?;
            if !lockbox_available(&ws.region) {
                return Err(ControlError::bad_request(format!(
                    "Customer Lockbox is not available in region {} (workspace {workspace})",
                    ws.region
                )));
            }
            let granted = state
                .lockbox_requests
                .iter()
                .find(|r| {
                    r.workspace == workspace
                        && r.operator == operator
                        && r.status == LockboxStatus::Approved
                        && r.access_ends_at.is_some_and(|end| now < end)
                })
                .cloned();
            state.lockbox_audit.push(LockboxAuditEntry {
                time: now,
                workspace: workspace.to_owned(),
                operator: operator.to_owned(),
                request_id: granted.as_ref().map(|r| r.id.clone()),
                action: if granted.is_some() {
                    "Query"
                } else {
                    "QueryRefused"
                }
                .to_owned(),
                detail: Some(query.to_owned()),
            });
            Ok(granted)
        })?;
        outcome.ok_or_else(|| ControlError::Refused {
            code: 403,
            message: format!(
                "operator {operator} has no approved, unexpired Customer Lockbox request for \
                 workspace {workspace}: access refused"
            ),
        })
    }
}

fn lockbox_not_found(id: &str) -> ControlError {
    ControlError::not_found(format!("Lockbox request {id} not found"))
}
