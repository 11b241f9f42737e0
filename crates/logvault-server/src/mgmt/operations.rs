//! The status of long-running operations, as ARM's pollers read it:
//! `operationStatuses/{op}` answers `{"status": "InProgress" | "Succeeded" | "Failed"}` (for
//! `Azure-AsyncOperation`), `operationResults/{op}` answers 202 while in progress and 204 once
//! done (for `Location`).
//!
//! An operation's id names its kind and resource (`cluster.NAME`, `workspace.NAME`,
//! `link.NAME`), and its status is read from the resource itself: a cluster's operation runs
//! until the control plane completes it (after the home's `asyncOperationSecs`); workspace
//! changes and links complete at once. So a poll made by another process, or after a restart,
//! answers the same.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use logvault::control::ProvisioningState;
use serde_json::json;

use super::{OperationId, arm, control_error, json_response};
use crate::http::errors::ApiError;
use crate::http::{Shared, blocking};
use crate::roles::Permission;

type OperationPath = Path<(String, String, String)>;

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    InProgress,
    Succeeded,
}

/// The progress of `op`, read from its resource.
async fn progress(state: &Shared, op: &OperationId) -> Result<Progress, ApiError> {
    match op.kind.as_str() {
        "cluster" => {
            let name = op.name.clone();
            let states = blocking(state, move |e| {
                let control = e.control();
                let states: Vec<ProvisioningState> = control
                    .list_clusters(None, None)?
                    .iter()
                    .chain(control.list_deleted_clusters()?.iter())
                    .filter(|c| c.name == name)
                    .map(logvault::control::Cluster::provisioning_state)
                    .collect();
                Ok::<_, logvault::control::ControlError>(states)
            })
            .await?
            .map_err(|e| control_error(&e))?;
            let busy = states.iter().any(|s| {
                matches!(
                    s,
                    ProvisioningState::Creating
                        | ProvisioningState::Updating
                        | ProvisioningState::Deleting
                )
            });
            Ok(if busy {
                Progress::InProgress
            } else {
                Progress::Succeeded
            })
        }
        "workspace" | "link" => Ok(Progress::Succeeded),
        _ => Err(not_found(op)),
    }
}

fn not_found(op: &OperationId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "OperationNotFound",
        format!("Operation {}.{} not found", op.kind, op.name),
    )
}

fn parse(id: &str) -> Result<OperationId, ApiError> {
    OperationId::parse(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "OperationNotFound",
            format!("Operation {id} not found"),
        )
    })
}

fn retry_after(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// `GET /subscriptions/{sub}/providers/Microsoft.OperationalInsights/locations/{loc}/operationStatuses/{op}`.
pub(crate) async fn status(
    State(state): State<Shared>,
    Path((_sub, _loc, id)): OperationPath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageRead)?;
    let op = parse(&id)?;
    let status = match progress(&state, &op).await? {
        Progress::InProgress => "InProgress",
        Progress::Succeeded => "Succeeded",
    };
    let body = json!({
        "id": uri.path(),
        "name": id,
        "status": status,
    });
    Ok(retry_after(json_response(StatusCode::OK, &body)))
}

/// `GET /subscriptions/{sub}/providers/Microsoft.OperationalInsights/locations/{loc}/operationResults/{op}`.
pub(crate) async fn result(
    State(state): State<Shared>,
    Path((_sub, _loc, id)): OperationPath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageRead)?;
    let op = parse(&id)?;
    Ok(match progress(&state, &op).await? {
        Progress::InProgress => {
            let mut response = retry_after(StatusCode::ACCEPTED.into_response());
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{}{}",
                super::base_url(&state, &headers, &uri),
                uri.path_and_query().map_or("", |p| p.as_str())
            )) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            response
        }
        Progress::Succeeded => StatusCode::NO_CONTENT.into_response(),
    })
}
