//! What the page needs beside the query API: the workspaces a session may see, a workspace's
//! schema (tables, columns, functions: the editor's completion), its saved searches and
//! functions (list and save), and rows and bytes stored per table and hour.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{Duration, DurationRound};
use logvault::control::SavedSearch;
use logvault::kql_lang::KustoType;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::errors::{ApiError, Flavor, engine_error};
use crate::http::{Shared, auth};
use crate::roles::{Permission, Role};
use crate::tokens::Principal;

/// The principal, allowed to read `workspace` (its name or `customerId`); and its name.
async fn reader(
    state: &Shared,
    headers: &HeaderMap,
    workspace: &str,
) -> Result<(Principal, String), ApiError> {
    let principal = auth::authenticate(state, headers, Flavor::Azure)?;
    let workspaces = crate::http::blocking(state, |e| e.control().list_workspaces())
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let name = workspaces
        .into_iter()
        .find(|w| w.name == workspace || w.customer_id.eq_ignore_ascii_case(workspace))
        .map(|w| w.name);
    auth::check(
        &principal,
        Permission::Query,
        Some(name.as_deref().unwrap_or(workspace)),
        Flavor::Azure,
    )?;
    let name = name.ok_or_else(|| {
        ApiError::not_found(
            "WorkspaceNotFoundError",
            format!("The workspace {workspace} could not be found"),
        )
    })?;
    Ok((principal, name))
}

/// `GET /web/api/workspaces`: the workspaces the session may query.
pub(crate) async fn workspaces(
    State(state): State<Shared>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let principal = auth::authenticate(&state, &headers, Flavor::Azure)?;
    let all = crate::http::blocking(&state, |e| e.control().list_workspaces())
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let visible: Vec<Value> = all
        .into_iter()
        .filter(|w| {
            auth::check(&principal, Permission::Query, Some(&w.name), Flavor::Azure).is_ok()
        })
        .map(|w| json!({ "name": w.name, "customerId": w.customer_id, "cluster": w.cluster }))
        .collect();
    Ok(Json(json!({ "workspaces": visible })))
}

/// `GET /web/api/workspaces/{w}/schema`: tables with their columns (as the newest segment of
/// each has them), the KQL functions, and the workspace's stored functions.
pub(crate) async fn schema(
    State(state): State<Shared>,
    Path(workspace): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, ws) = reader(&state, &headers, &workspace).await?;
    let engine = &state.engine;
    let catalog = engine.store().catalog();
    let fail = |e: logvault::store::StoreError| ApiError::internal(e.to_string());
    let mut tables = Vec::new();
    for table in catalog.tables(&ws).await.map_err(fail)? {
        let manifest = catalog.manifest(&ws, &table).await.map_err(fail)?;
        // A table without segments (all purged) is not queryable: not offered.
        if manifest.segments.is_empty() {
            continue;
        }
        let columns: Vec<Value> = manifest
            .segments
            .iter()
            .max_by_key(|s| s.created)
            .map(|s| {
                s.schema
                    .fields()
                    .iter()
                    .map(|f| {
                        let ty = KustoType::of_field(f).unwrap_or(KustoType::Dynamic);
                        json!({ "name": f.name(), "type": ty.name() })
                    })
                    .collect()
            })
            .unwrap_or_default();
        tables.push(json!({ "name": table, "columns": columns }));
    }
    // Stored functions live under the workspace's keys: a revoked key hides them, not the rest.
    let stored: Vec<String> = match engine.stored_functions(&ws).await {
        Ok(f) => f.into_iter().map(|f| f.alias).collect(),
        Err(e) => {
            tracing::debug!(workspace = %ws, error = %e, "stored functions not listed");
            Vec::new()
        }
    };
    Ok(Json(json!({
        "workspace": ws,
        "tables": tables,
        "functions": logvault::kql_lang::function_names(),
        "storedFunctions": stored,
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct IngestionQuery {
    hours: Option<i64>,
}

/// `GET /web/api/workspaces/{w}/ingestion?hours=N` (default 24, at most 168): rows and bytes
/// stored per table and hour, by when their segments were written.
pub(crate) async fn ingestion(
    State(state): State<Shared>,
    Path(workspace): Path<String>,
    Query(query): Query<IngestionQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, ws) = reader(&state, &headers, &workspace).await?;
    let hours = query.hours.unwrap_or(24).clamp(1, 168);
    let now = state.engine.clock().now();
    let end = now
        .duration_trunc(Duration::hours(1))
        .unwrap_or(now)
        .checked_add_signed(Duration::hours(1))
        .unwrap_or(now);
    let start = end - Duration::hours(hours);
    let catalog = state.engine.store().catalog();
    let fail = |e: logvault::store::StoreError| ApiError::internal(e.to_string());
    let mut tables = Vec::new();
    for table in catalog.tables(&ws).await.map_err(fail)? {
        let manifest = catalog.manifest(&ws, &table).await.map_err(fail)?;
        let mut buckets: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        for s in manifest
            .segments
            .iter()
            .filter(|s| s.created >= start && s.created < end)
        {
            let hour = (s.created - start).num_hours();
            let b = buckets.entry(hour).or_default();
            b.0 += s.rows;
            b.1 += s.bytes;
        }
        let series: Vec<Value> = (0..hours)
            .map(|h| {
                let (rows, bytes) = buckets.get(&h).copied().unwrap_or_default();
                json!({ "hour": start + Duration::hours(h), "rows": rows, "bytes": bytes })
            })
            .collect();
        tables.push(json!({ "name": table, "hours": series }));
    }
    Ok(Json(json!({
        "workspace": ws,
        "from": start,
        "to": end,
        "tables": tables,
    })))
}

/// `GET /web/api/workspaces/{w}/savedSearches`: the saved searches and functions.
pub(crate) async fn saved_searches(
    State(state): State<Shared>,
    Path(workspace): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (_, ws) = reader(&state, &headers, &workspace).await?;
    let list = state
        .engine
        .saved_searches(&ws)
        .await
        .map_err(|e| engine_error(&state.engine, &e))?;
    Ok(Json(json!({ "workspace": ws, "savedSearches": list })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SaveBody {
    display_name: String,
    #[serde(default)]
    category: Option<String>,
    query: String,
    #[serde(default)]
    function_alias: Option<String>,
}

/// `PUT /web/api/workspaces/{w}/savedSearches/{id}`: saves (creates or replaces) a saved
/// search, a function if it has an alias. Needs `Owner` or `Log Analytics Contributor`.
pub(crate) async fn save_search(
    State(state): State<Shared>,
    Path((workspace, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (principal, ws) = reader(&state, &headers, &workspace).await?;
    if !principal
        .roles
        .iter()
        .any(|r| matches!(r, Role::Owner | Role::Contributor))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "InsufficientAccessError",
            format!(
                "principal {} may not save searches of workspace {ws}: that needs Owner or Log \
                 Analytics Contributor",
                principal.name
            ),
        ));
    }
    let bytes = crate::http::body::read(&state, &headers, body, Flavor::Azure).await?;
    let body: SaveBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the saved search is not valid: {e}")))?;
    let search = SavedSearch {
        id,
        category: body
            .category
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| "General".to_owned()),
        display_name: body.display_name,
        query: body.query,
        function_alias: body.function_alias.filter(|a| !a.trim().is_empty()),
        function_parameters: Vec::new(),
        updated: state.engine.clock().now(),
    };
    let saved = state
        .engine
        .save_search(&ws, search)
        .await
        .map_err(|e| engine_error(&state.engine, &e))?;
    Ok((StatusCode::OK, Json(json!(saved))))
}
