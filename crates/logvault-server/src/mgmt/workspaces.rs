//! `Microsoft.OperationalInsights/workspaces` and their `linkedServices/cluster` (link and
//! unlink, R-D), on the control plane's workspace operations.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use logvault::control::{ControlError, Workspace, WorkspaceSpec};
use serde_json::{Value, json};

use super::{
    Arm, OperationId, arm, bad, body_json, control_error, deleting, json_response, page, same,
    started, text,
};
use crate::http::errors::ApiError;
use crate::http::{Shared, blocking};
use crate::roles::Permission;

type WorkspacePath = Path<(String, String, String)>;
type LinkPath = Path<(String, String, String, String)>;

/// The workspace `name` if it lives in `sub`/`rg` (404 otherwise).
async fn find(state: &Shared, sub: &str, rg: &str, name: &str) -> Result<Workspace, ApiError> {
    let wanted = name.to_owned();
    let ws = blocking(state, move |e| e.control().get_workspace(&wanted))
        .await?
        .map_err(|e| control_error(&e))?;
    if same(&ws.subscription, sub) && same(&ws.resource_group, rg) {
        Ok(ws)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("Workspace not found: {name}"),
        ))
    }
}

async fn view(state: &Shared, ws: Workspace) -> Result<Value, ApiError> {
    blocking(state, move |e| e.workspace_view(&ws)).await
}

/// `GET .../workspaces/{name}`.
pub(crate) async fn get(
    State(state): State<Shared>,
    Path((sub, rg, name)): WorkspacePath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageRead)?;
    let ws = find(&state, &sub, &rg, &name).await?;
    Ok(json_response(StatusCode::OK, &view(&state, ws).await?))
}

/// `PUT .../workspaces/{name}`: creates the workspace (or recovers a soft-deleted one, as
/// Azure does); an existing one is answered as it is.
pub(crate) async fn put(
    State(state): State<Shared>,
    Path((sub, rg, name)): WorkspacePath,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let arm = arm(&state, &headers, &uri, Permission::Manage)?;
    let body = body_json(&body)?;
    let spec = WorkspaceSpec {
        name: name.clone(),
        region: text(&body, "/location").map(str::to_ascii_lowercase),
        subscription: Some(sub.clone()),
        resource_group: Some(rg.clone()),
    };
    let created = blocking(
        &state,
        move |e| -> Result<(Workspace, StatusCode), ControlError> {
            let control = e.control();
            match control.create_workspace(spec.clone()) {
                Ok(ws) => Ok((ws, StatusCode::CREATED)),
                Err(conflict) if conflict.code() == 409 => {
                    if let Ok(ws) = control.get_workspace(&spec.name) {
                        if ws.subscription == spec.subscription.clone().unwrap_or_default()
                            && ws.resource_group == spec.resource_group.clone().unwrap_or_default()
                        {
                            return Ok((ws, StatusCode::OK));
                        }
                        return Err(conflict);
                    }
                    // Soft-deleted: a PUT recovers it.
                    control
                        .recover_workspace(&spec.name)
                        .map(|ws| (ws, StatusCode::OK))
                        .map_err(|_| conflict)
                }
                Err(e) => Err(e),
            }
        },
    )
    .await?
    .map_err(|e| control_error(&e))?;
    let (mut ws, status) = created;
    if let Some(tags) = tags_of(&body)? {
        let wanted = ws.name.clone();
        ws = blocking(&state, move |e| {
            e.control().set_workspace_tags(&wanted, tags)
        })
        .await?
        .map_err(|e| control_error(&e))?;
    }
    let region = ws.region.clone();
    let body = view(&state, ws).await?;
    Ok(started(
        &arm,
        &sub,
        &region,
        &OperationId::new("workspace", &name),
        status,
        &body,
    ))
}

/// The resource tags of an ARM body, if it has `tags` (an object of strings).
fn tags_of(body: &Value) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    let Some(tags) = body.get("tags") else {
        return Ok(None);
    };
    let Some(object) = tags.as_object() else {
        return Err(bad(
            "tags must be an object of names and string values".to_owned()
        ));
    };
    object
        .iter()
        .map(|(k, v)| match v.as_str() {
            Some(v) => Ok((k.clone(), v.to_owned())),
            None => Err(bad(format!("tag {k} must have a string value"))),
        })
        .collect::<Result<BTreeMap<_, _>, _>>()
        .map(Some)
}

/// `PATCH .../workspaces/{name}`: changes its `tags` and logvault's `hotCacheWindowDays` (a
/// number of days, or null for the home's default). Any other property sent with a value other
/// than the workspace's own is refused (400 naming it): it cannot be changed here, and a change
/// is never dropped silently.
pub(crate) async fn patch(
    State(state): State<Shared>,
    Path((sub, rg, name)): WorkspacePath,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::Manage)?;
    let body = body_json(&body)?;
    let ws = find(&state, &sub, &rg, &name).await?;
    if let Some(location) = text(&body, "/location")
        && !same(location, &ws.region)
    {
        return Err(bad(format!(
            "Workspace {name} is in {}: a workspace cannot move to {location}",
            ws.region
        )));
    }
    let current = view(&state, ws.clone()).await?;
    if let Some(properties) = body.get("properties").and_then(Value::as_object) {
        for (key, value) in properties {
            if current["properties"].get(key) != Some(value) {
                return Err(bad(format!(
                    "property {key} of workspace {name} cannot be changed here (tags and \
                     hotCacheWindowDays can)"
                )));
            }
        }
    }
    let tags = tags_of(&body)?;
    let hot = match body.get("hotCacheWindowDays") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => match v.as_u64().and_then(|d| u32::try_from(d).ok()) {
            Some(days) => Some(Some(days)),
            None => {
                return Err(bad(format!(
                    "hotCacheWindowDays of workspace {name} must be a number of days or null"
                )));
            }
        },
    };
    let changed = blocking(
        &state,
        move |e| -> Result<Workspace, logvault::EngineError> {
            let mut ws = ws;
            if let Some(days) = hot {
                ws = e.set_hot_window(&ws.name, days)?;
            }
            if let Some(tags) = tags {
                ws = e.control().set_workspace_tags(&ws.name, tags)?;
            }
            Ok(ws)
        },
    )
    .await?
    .map_err(|e| crate::http::errors::engine_error(&state.engine, &e))?;
    Ok(json_response(StatusCode::OK, &view(&state, changed).await?))
}

/// `DELETE .../workspaces/{name}`: soft delete (recoverable for 14 days, still linked, R-D4).
pub(crate) async fn delete(
    State(state): State<Shared>,
    Path((sub, rg, name)): WorkspacePath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let arm = arm(&state, &headers, &uri, Permission::Manage)?;
    let ws = match find(&state, &sub, &rg, &name).await {
        Ok(ws) => ws,
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        Err(e) => return Err(e),
    };
    let wanted = name.clone();
    blocking(&state, move |e| e.control().delete_workspace(&wanted))
        .await?
        .map_err(|e| control_error(&e))?;
    Ok(deleting(
        &arm,
        &sub,
        &ws.region,
        &OperationId::new("workspace", &name),
    ))
}

async fn list(
    state: Shared,
    arm: Arm,
    path: String,
    sub: String,
    rg: Option<String>,
) -> Result<Response, ApiError> {
    let all = blocking(&state, move |e| {
        e.control().list_workspaces().map(|list| {
            list.iter()
                .filter(|w| {
                    same(&w.subscription, &sub)
                        && rg.as_deref().is_none_or(|g| same(&w.resource_group, g))
                })
                .map(|w| e.workspace_view(w))
                .collect::<Vec<Value>>()
        })
    })
    .await?
    .map_err(|e| control_error(&e))?;
    let size = state.management.page_size;
    Ok(json_response(
        StatusCode::OK,
        &page(&arm.base, &path, &arm.query, all, size),
    ))
}

/// `GET .../resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces`.
pub(crate) async fn list_in_group(
    State(state): State<Shared>,
    Path((sub, rg)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let arm = arm(&state, &headers, &uri, Permission::ManageRead)?;
    let path = uri.path().to_owned();
    list(state, arm, path, sub, Some(rg)).await
}

/// `GET /subscriptions/{sub}/providers/Microsoft.OperationalInsights/workspaces`.
pub(crate) async fn list_in_subscription(
    State(state): State<Shared>,
    Path(sub): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let arm = arm(&state, &headers, &uri, Permission::ManageRead)?;
    let path = uri.path().to_owned();
    list(state, arm, path, sub, None).await
}

/// The linked service of a workspace linked to a cluster, as ARM shows it.
fn link_json(ws: &Workspace, cluster_id: &str) -> Value {
    json!({
        "id": format!("{}/linkedServices/cluster", ws.resource_id()),
        "name": "cluster",
        "type": "Microsoft.OperationalInsights/workspaces/linkedServices",
        "properties": {
            "writeAccessResourceId": cluster_id,
            "provisioningState": "Succeeded",
        },
    })
}

fn check_service(service: &str) -> Result<(), ApiError> {
    if service.eq_ignore_ascii_case("cluster") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("Linked service {service} is not supported: only 'cluster' links a workspace"),
        ))
    }
}

/// The cluster resource id of a linked workspace, if it is linked.
async fn linked_cluster(state: &Shared, ws: &Workspace) -> Result<Option<String>, ApiError> {
    let Some(cluster) = ws.cluster.clone() else {
        return Ok(None);
    };
    let id = blocking(state, move |e| e.control().get_cluster(&cluster))
        .await?
        .map_err(|e| control_error(&e))?
        .resource_id()
        .to_string();
    Ok(Some(id))
}

/// `GET .../workspaces/{name}/linkedServices/cluster`.
pub(crate) async fn get_link(
    State(state): State<Shared>,
    Path((sub, rg, name, service)): LinkPath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageRead)?;
    check_service(&service)?;
    let ws = find(&state, &sub, &rg, &name).await?;
    match linked_cluster(&state, &ws).await? {
        Some(id) => Ok(json_response(StatusCode::OK, &link_json(&ws, &id))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("Workspace {name} is not linked to a cluster"),
        )),
    }
}

/// `GET .../workspaces/{name}/linkedServices`.
pub(crate) async fn list_links(
    State(state): State<Shared>,
    Path((sub, rg, name)): WorkspacePath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageRead)?;
    let ws = find(&state, &sub, &rg, &name).await?;
    let value: Vec<Value> = linked_cluster(&state, &ws)
        .await?
        .map(|id| link_json(&ws, &id))
        .into_iter()
        .collect();
    Ok(json_response(StatusCode::OK, &json!({ "value": value })))
}

/// `PUT .../workspaces/{name}/linkedServices/cluster` with
/// `{"properties": {"writeAccessResourceId": CLUSTER_ID}}`: links the workspace (R-D2).
pub(crate) async fn put_link(
    State(state): State<Shared>,
    Path((sub, rg, name, service)): LinkPath,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let arm = arm(&state, &headers, &uri, Permission::Manage)?;
    check_service(&service)?;
    let body = body_json(&body)?;
    let target = text(&body, "/properties/writeAccessResourceId")
        .or_else(|| text(&body, "/properties/resourceId"))
        .ok_or_else(|| {
            bad("properties.writeAccessResourceId (the cluster's resource id) is required")
        })?;
    let cluster = target
        .trim_end_matches('/')
        .rsplit_once("/clusters/")
        .map(|(_, c)| c.to_owned())
        .filter(|c| !c.is_empty() && !c.contains('/'))
        .ok_or_else(|| {
            bad(format!(
                "writeAccessResourceId {target} is not a cluster's resource id \
                 (/subscriptions/S/resourceGroups/G/providers/Microsoft.OperationalInsights/clusters/C)"
            ))
        })?;
    find(&state, &sub, &rg, &name).await?;
    let wanted = (name.clone(), cluster);
    let ws = blocking(&state, move |e| {
        e.control().link_workspace(&wanted.0, &wanted.1)
    })
    .await?
    .map_err(|e| control_error(&e))?;
    let id = linked_cluster(&state, &ws).await?.unwrap_or_default();
    Ok(started(
        &arm,
        &sub,
        &ws.region,
        &OperationId::new("link", &name),
        StatusCode::OK,
        &link_json(&ws, &id),
    ))
}

/// `DELETE .../workspaces/{name}/linkedServices/cluster`: unlinks the workspace (R-D3) and
/// answers the link it removed (the SDK returns it).
pub(crate) async fn delete_link(
    State(state): State<Shared>,
    Path((sub, rg, name, service)): LinkPath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::Manage)?;
    check_service(&service)?;
    let ws = find(&state, &sub, &rg, &name).await?;
    let Some(id) = linked_cluster(&state, &ws).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let wanted = name.clone();
    blocking(&state, move |e| e.control().unlink_workspace(&wanted))
        .await?
        .map_err(|e| control_error(&e))?;
    Ok(json_response(StatusCode::OK, &link_json(&ws, &id)))
}
