//! `Microsoft.OperationalInsights/clusters`: create (PUT), update (PUT on an existing cluster,
//! or PATCH), delete, get and list, on the control plane's cluster operations (R-C).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use logvault::control::{
    BillingType, Cluster, ClusterSpec, ClusterUpdate, IdentityType, KeyVaultProperties,
};
use serde_json::Value;

use super::{
    Arm, OperationId, arm, bad, body_json, control_error, deleting, engine_error, json_response,
    page, same, started, text,
};
use crate::http::errors::ApiError;
use crate::http::{Shared, blocking};
use crate::roles::Permission;

type ClusterPath = Path<(String, String, String)>;

/// The identity a body asks for: its type and the user-assigned identity's resource id.
fn identity(body: &Value) -> Result<Option<(IdentityType, Option<String>)>, ApiError> {
    let Some(kind) = text(body, "/identity/type") else {
        return Ok(None);
    };
    let kind: IdentityType = kind.parse().map_err(bad)?;
    let user = body
        .pointer("/identity/userAssignedIdentities")
        .and_then(Value::as_object)
        .and_then(|m| m.keys().next().cloned());
    Ok(Some((kind, user)))
}

/// The key properties a body gives, if any (partial ones go to the control plane as they are:
/// it answers with the seed's "bad format" error).
fn key(body: &Value) -> Option<KeyVaultProperties> {
    let props = body.pointer("/properties/keyVaultProperties")?;
    if !props.is_object() {
        return None;
    }
    let field = |name: &str| props.get(name).and_then(Value::as_str).unwrap_or_default();
    Some(KeyVaultProperties {
        key_vault_uri: field("keyVaultUri").trim_end_matches('/').to_owned(),
        key_name: field("keyName").to_owned(),
        key_version: field("keyVersion").to_owned(),
    })
}

fn capacity(body: &Value) -> Result<Option<u32>, ApiError> {
    match body.pointer("/sku/capacity") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| bad(format!("sku.capacity {v} is not a number of GB/day"))),
    }
}

fn billing(body: &Value) -> Result<Option<BillingType>, ApiError> {
    text(body, "/properties/billingType")
        .map(|b| b.parse().map_err(bad))
        .transpose()
}

fn flag(body: &Value, pointer: &str) -> Option<bool> {
    body.pointer(pointer).and_then(Value::as_bool)
}

/// The cluster `name` if it lives in `sub`/`rg` (404 with the seed's message otherwise).
pub(crate) async fn find(
    state: &Shared,
    sub: &str,
    rg: &str,
    name: &str,
) -> Result<Cluster, ApiError> {
    let wanted = name.to_owned();
    let cluster = blocking(state, move |e| e.control().get_cluster(&wanted))
        .await?
        .map_err(|e| control_error(&e))?;
    if same(&cluster.subscription, sub) && same(&cluster.resource_group, rg) {
        Ok(cluster)
    } else {
        Err(not_found(name))
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!(
            "Cluster not found: {name} (it may have been deleted; a deleted cluster's name stays \
             reserved for 14 days)"
        ),
    )
}

async fn view(state: &Shared, cluster: &Cluster) -> Result<Value, ApiError> {
    state
        .engine
        .cluster_view(cluster)
        .await
        .map_err(|e| engine_error(&e))
}

/// `GET .../clusters/{name}`.
pub(crate) async fn get(
    State(state): State<Shared>,
    Path((sub, rg, name)): ClusterPath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageRead)?;
    let cluster = find(&state, &sub, &rg, &name).await?;
    Ok(json_response(
        StatusCode::OK,
        &view(&state, &cluster).await?,
    ))
}

/// `PUT .../clusters/{name}`: creates the cluster, or updates it as the body differs from it.
pub(crate) async fn put(
    State(state): State<Shared>,
    Path((sub, rg, name)): ClusterPath,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let arm = arm(&state, &headers, &uri, Permission::Manage)?;
    let body = body_json(&body)?;
    let wanted = name.clone();
    let existing = blocking(&state, move |e| e.control().get_cluster(&wanted)).await?;
    let cluster = match existing {
        Ok(current) => {
            if !(same(&current.subscription, &sub) && same(&current.resource_group, &rg)) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "Conflict",
                    format!(
                        "Cluster name {name} is taken by a cluster in subscription {} resource \
                         group {}",
                        current.subscription, current.resource_group
                    ),
                ));
            }
            let update = differences(&current, &body)?;
            update_cluster(&state, &name, update).await?
        }
        Err(e) if e.code() == 404 => {
            let (identity_type, user_assigned) =
                identity(&body)?.unwrap_or((IdentityType::SystemAssigned, None));
            let spec = ClusterSpec {
                region: text(&body, "/location").map(str::to_ascii_lowercase),
                subscription: Some(sub.clone()),
                resource_group: Some(rg.clone()),
                identity_type,
                user_assigned,
                sku_capacity: capacity(&body)?.unwrap_or(500),
                billing_type: billing(&body)?.unwrap_or(BillingType::Cluster),
                double_encryption: flag(&body, "/properties/isDoubleEncryptionEnabled")
                    .unwrap_or(true),
                availability_zones: flag(&body, "/properties/isAvailabilityZonesEnabled")
                    .unwrap_or(false),
                key: key(&body),
                ..ClusterSpec::new(&name)
            };
            state
                .engine
                .control()
                .create_cluster(spec)
                .await
                .map_err(|e| control_error(&e))?
        }
        Err(e) => return Err(control_error(&e)),
    };
    answer(&state, &arm, &sub, &cluster).await
}

/// `PATCH .../clusters/{name}`: updates what the body names.
pub(crate) async fn patch(
    State(state): State<Shared>,
    Path((sub, rg, name)): ClusterPath,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let arm = arm(&state, &headers, &uri, Permission::Manage)?;
    let body = body_json(&body)?;
    let current = find(&state, &sub, &rg, &name).await?;
    let mut update = ClusterUpdate {
        key: key(&body),
        sku_capacity: capacity(&body)?,
        billing_type: billing(&body)?,
        ..ClusterUpdate::default()
    };
    if let Some((kind, user)) = identity(&body)?
        && (kind != current.identity.kind || user.is_some())
    {
        update.identity_type = Some(kind);
        update.user_assigned = user;
    }
    let cluster = update_cluster(&state, &name, update).await?;
    answer(&state, &arm, &sub, &cluster).await
}

/// What a PUT on an existing cluster changes: the fields of the body that differ from it.
fn differences(current: &Cluster, body: &Value) -> Result<ClusterUpdate, ApiError> {
    let mut update = ClusterUpdate::default();
    if let Some(k) = key(body)
        && current.key.as_ref() != Some(&k)
    {
        update.key = Some(k);
    }
    if let Some((kind, user)) = identity(body)?
        && (kind != current.identity.kind
            || (user.is_some() && user != current.identity.user_assigned))
    {
        update.identity_type = Some(kind);
        update.user_assigned = user;
    }
    update.sku_capacity = capacity(body)?.filter(|c| *c != current.sku_capacity);
    update.billing_type = billing(body)?.filter(|b| *b != current.billing_type);
    Ok(update)
}

async fn update_cluster(
    state: &Shared,
    name: &str,
    update: ClusterUpdate,
) -> Result<Cluster, ApiError> {
    state
        .engine
        .control()
        .update_cluster(name, update)
        .await
        .map_err(|e| control_error(&e))
}

async fn answer(
    state: &Shared,
    arm: &Arm,
    sub: &str,
    cluster: &Cluster,
) -> Result<Response, ApiError> {
    let body = view(state, cluster).await?;
    Ok(started(
        arm,
        sub,
        &cluster.region,
        &OperationId::new("cluster", &cluster.name),
        StatusCode::OK,
        &body,
    ))
}

/// `DELETE .../clusters/{name}`: 202 and `Location` while it is `Deleting`; 204 when there is
/// no such cluster.
pub(crate) async fn delete(
    State(state): State<Shared>,
    Path((sub, rg, name)): ClusterPath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let arm = arm(&state, &headers, &uri, Permission::Manage)?;
    let cluster = match find(&state, &sub, &rg, &name).await {
        Ok(c) => c,
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        Err(e) => return Err(e),
    };
    let wanted = name.clone();
    blocking(&state, move |e| e.control().delete_cluster(&wanted))
        .await?
        .map_err(|e| control_error(&e))?;
    Ok(deleting(
        &arm,
        &sub,
        &cluster.region,
        &OperationId::new("cluster", &name),
    ))
}

async fn list(
    state: Shared,
    arm: Arm,
    path: String,
    sub: String,
    rg: Option<String>,
) -> Result<Response, ApiError> {
    let clusters = blocking(&state, move |e| e.control().list_clusters(None, None))
        .await?
        .map_err(|e| control_error(&e))?;
    let mut items = Vec::new();
    for c in clusters.iter().filter(|c| {
        same(&c.subscription, &sub) && rg.as_deref().is_none_or(|g| same(&c.resource_group, g))
    }) {
        items.push(view(&state, c).await?);
    }
    let size = state.management.page_size;
    Ok(json_response(
        StatusCode::OK,
        &page(&arm.base, &path, &arm.query, items, size),
    ))
}

/// `GET .../resourceGroups/{rg}/providers/Microsoft.OperationalInsights/clusters`.
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

/// `GET /subscriptions/{sub}/providers/Microsoft.OperationalInsights/clusters`.
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
