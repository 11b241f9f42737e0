//! A workspace's `savedSearches`, `tables` and `linkedStorageAccounts`, on the engine's saved
//! searches (R-H1, stored where `logvault saved-search` stores them), table retention (R-K1, as
//! `logvault table`) and linked storage (R-H2, as `logvault workspace linked-storage`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use logvault::control::{
    DataSourceType, FunctionParameter, SavedSearch, parse_function_parameters,
};
use serde_json::{Value, json};

use super::{arm, bad, body_json, engine_error, json_response, same, text};
use crate::http::errors::ApiError;
use crate::http::{Shared, blocking};
use crate::roles::Permission;

type ItemPath = Path<(String, String, String, String)>;
type WorkspacePath = Path<(String, String, String)>;

/// The workspace `name` if it lives in `sub`/`rg`, as its resource id (404 otherwise).
async fn workspace_id(state: &Shared, sub: &str, rg: &str, name: &str) -> Result<String, ApiError> {
    let wanted = name.to_owned();
    let ws = blocking(state, move |e| e.control().get_workspace(&wanted))
        .await?
        .map_err(|e| super::control_error(&e))?;
    if same(&ws.subscription, sub) && same(&ws.resource_group, rg) {
        Ok(ws.resource_id().to_string())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("Workspace not found: {name}"),
        ))
    }
}

fn parameters_text(parameters: &[FunctionParameter]) -> String {
    parameters
        .iter()
        .map(|p| match &p.default {
            Some(d) => format!("{}:{}={d}", p.name, p.kind),
            None => format!("{}:{}", p.name, p.kind),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn search_json(workspace_id: &str, s: &SavedSearch) -> Value {
    let mut properties = json!({
        "category": s.category,
        "displayName": s.display_name,
        "query": s.query,
        "version": 2,
    });
    if let Some(alias) = &s.function_alias {
        properties["functionAlias"] = alias.clone().into();
        properties["functionParameters"] = parameters_text(&s.function_parameters).into();
    }
    json!({
        "id": format!("{workspace_id}/savedSearches/{}", s.id),
        "name": s.id,
        "type": "Microsoft.OperationalInsights/savedSearches",
        "etag": s.updated.to_rfc3339(),
        "properties": properties,
    })
}

/// `GET .../workspaces/{w}/savedSearches/{id}`.
pub(crate) async fn get_search(
    State(state): State<Shared>,
    Path((sub, rg, ws, id)): ItemPath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageRead)?;
    let ws_id = workspace_id(&state, &sub, &rg, &ws).await?;
    let search = state
        .engine
        .saved_search(&ws, &id)
        .await
        .map_err(|e| engine_error(&e))?;
    Ok(json_response(StatusCode::OK, &search_json(&ws_id, &search)))
}

/// `PUT .../workspaces/{w}/savedSearches/{id}` `{"properties": {"category", "displayName",
/// "query", "functionAlias"?, "functionParameters"?}}`.
pub(crate) async fn put_search(
    State(state): State<Shared>,
    Path((sub, rg, ws, id)): ItemPath,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::Manage)?;
    let ws_id = workspace_id(&state, &sub, &rg, &ws).await?;
    let body = body_json(&body)?;
    let field = |name: &str| text(&body, &format!("/properties/{name}")).map(str::to_owned);
    let parameters = match field("functionParameters") {
        Some(p) if !p.trim().is_empty() => {
            parse_function_parameters(&p).map_err(|e| super::control_error(&e))?
        }
        _ => Vec::new(),
    };
    let search = SavedSearch {
        id: id.clone(),
        category: field("category").unwrap_or_default(),
        display_name: field("displayName").unwrap_or_default(),
        query: field("query").ok_or_else(|| bad("properties.query is required"))?,
        function_alias: field("functionAlias").filter(|a| !a.is_empty()),
        function_parameters: parameters,
        updated: chrono::DateTime::<chrono::Utc>::MIN_UTC,
    };
    let saved = state
        .engine
        .save_search(&ws, search)
        .await
        .map_err(|e| engine_error(&e))?;
    Ok(json_response(StatusCode::OK, &search_json(&ws_id, &saved)))
}

/// `DELETE .../workspaces/{w}/savedSearches/{id}`.
pub(crate) async fn delete_search(
    State(state): State<Shared>,
    Path((sub, rg, ws, id)): ItemPath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::Manage)?;
    workspace_id(&state, &sub, &rg, &ws).await?;
    state
        .engine
        .delete_saved_search(&ws, &id)
        .await
        .map_err(|e| engine_error(&e))?;
    Ok(StatusCode::OK.into_response())
}

/// `GET .../workspaces/{w}/savedSearches`: `{"value": [...]}` (not paged, as in Azure).
pub(crate) async fn list_searches(
    State(state): State<Shared>,
    Path((sub, rg, ws)): WorkspacePath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageRead)?;
    let ws_id = workspace_id(&state, &sub, &rg, &ws).await?;
    let all = state
        .engine
        .saved_searches(&ws)
        .await
        .map_err(|e| engine_error(&e))?;
    let value: Vec<Value> = all.iter().map(|s| search_json(&ws_id, s)).collect();
    Ok(json_response(StatusCode::OK, &json!({ "value": value })))
}

fn table_json(
    workspace_id: &str,
    t: &logvault::TableInfo,
    columns: Option<&logvault::TableColumns>,
) -> Value {
    let mut schema = json!({ "name": t.name, "tableType": "CustomLog" });
    if let Some(c) = columns {
        let list: Vec<Value> = c
            .columns
            .iter()
            .map(|c| {
                let mut col = json!({ "name": c.name, "type": arm_type(&c.kusto_type) });
                if let Some(d) = &c.description {
                    col["description"] = json!(d);
                }
                col
            })
            .collect();
        schema["columns"] = json!(list);
    }
    json!({
        "id": format!("{workspace_id}/tables/{}", t.name),
        "name": t.name,
        "type": "Microsoft.OperationalInsights/workspaces/tables",
        "properties": {
            "retentionInDays": t.retention_days,
            "totalRetentionInDays": t.retention_days,
            "plan": "Analytics",
            "provisioningState": "Succeeded",
            "schema": schema,
        },
    })
}

/// The Tables API's spelling of a Kusto type (`boolean`, `dateTime`; the others as Kusto's).
fn arm_type(kusto: &str) -> &str {
    match kusto {
        "bool" => "boolean",
        "datetime" => "dateTime",
        other => other,
    }
}

/// A table's columns for its ARM representation (`None` if they cannot be read now).
async fn columns(state: &Shared, ws: &str, name: &str) -> Option<logvault::TableColumns> {
    state.engine.table_columns(ws, name).await.ok()
}

/// Declares `name`'s schema from a Tables API body's `properties.schema.columns`: a new table
/// is created with it; a table already declared with the same columns is left as it is.
async fn declare_from_body(
    state: &Shared,
    ws: &str,
    name: &str,
    columns: &Value,
) -> Result<(), ApiError> {
    let wanted =
        logvault::tables::parse_schema_file(name, &json!({ "columns": columns }).to_string())
            .map_err(|e| bad(e.to_string()))?;
    let normal = |cols: &[logvault::DeclaredColumn]| -> Vec<(String, Option<logvault::kql_lang::KustoType>)> {
        cols.iter()
            .map(|c| (c.name.clone(), c.kusto_type.parse().ok()))
            .collect()
    };
    if let Ok(existing) = state.engine.table_columns(ws, name).await
        && existing.declared
    {
        if normal(&existing.columns) == normal(&wanted) {
            return Ok(());
        }
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "table {name} in workspace {ws} has a declared schema with other columns; changing a declared schema is not supported"
            ),
        ));
    }
    state
        .engine
        .create_table(ws, name, &wanted)
        .await
        .map_err(|e| engine_error(&e))?;
    Ok(())
}

async fn table(state: &Shared, ws: &str, name: &str) -> Result<logvault::TableInfo, ApiError> {
    let tables = state
        .engine
        .tables(ws)
        .await
        .map_err(|e| engine_error(&e))?;
    tables.into_iter().find(|t| t.name == name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("Table {name} not found in workspace {ws}"),
        )
    })
}

/// `GET .../workspaces/{w}/tables/{t}`.
pub(crate) async fn get_table(
    State(state): State<Shared>,
    Path((sub, rg, ws, name)): ItemPath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageRead)?;
    let ws_id = workspace_id(&state, &sub, &rg, &ws).await?;
    let t = table(&state, &ws, &name).await?;
    let cols = columns(&state, &ws, &name).await;
    Ok(json_response(
        StatusCode::OK,
        &table_json(&ws_id, &t, cols.as_ref()),
    ))
}

/// `PUT` or `PATCH .../workspaces/{w}/tables/{t}` `{"properties": {"retentionInDays",
/// "schema": {"columns": [...]}}}`: the table's retention, and for a new table its declared
/// schema (`logvault table create --schema`; without one a table's columns follow its rows).
pub(crate) async fn put_table(
    State(state): State<Shared>,
    Path((sub, rg, ws, name)): ItemPath,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::Manage)?;
    let ws_id = workspace_id(&state, &sub, &rg, &ws).await?;
    let body = body_json(&body)?;
    if let Some(columns) = body.pointer("/properties/schema/columns") {
        declare_from_body(&state, &ws, &name, columns).await?;
    }
    if let Some(days) = body.pointer("/properties/retentionInDays") {
        let days = days
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .ok_or_else(|| bad(format!("retentionInDays {days} is not a number of days")))?;
        state
            .engine
            .set_retention(&ws, &name, days)
            .await
            .map_err(|e| engine_error(&e))?;
    }
    let t = table(&state, &ws, &name).await?;
    let cols = columns(&state, &ws, &name).await;
    Ok(json_response(
        StatusCode::OK,
        &table_json(&ws_id, &t, cols.as_ref()),
    ))
}

/// `GET .../workspaces/{w}/tables`.
pub(crate) async fn list_tables(
    State(state): State<Shared>,
    Path((sub, rg, ws)): WorkspacePath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageRead)?;
    let ws_id = workspace_id(&state, &sub, &rg, &ws).await?;
    let tables = state
        .engine
        .tables(&ws)
        .await
        .map_err(|e| engine_error(&e))?;
    let value: Vec<Value> = tables.iter().map(|t| table_json(&ws_id, t, None)).collect();
    Ok(json_response(StatusCode::OK, &json!({ "value": value })))
}

/// The data source type a `linkedStorageAccounts/{type}` path names (`Query`, `Alerts`; the
/// others Azure has, `CustomLogs` and `Ingestion`, are not kept here).
fn data_source(kind: &str) -> Result<DataSourceType, ApiError> {
    kind.parse::<DataSourceType>().map_err(|_| {
        bad(format!(
            "linked storage type {kind} is not supported: Query or Alerts (R-H2)"
        ))
    })
}

fn linked_json(workspace_id: &str, kind: &str, account_id: &str) -> Value {
    json!({
        "id": format!("{workspace_id}/linkedStorageAccounts/{kind}"),
        "name": kind,
        "type": "Microsoft.OperationalInsights/workspaces/linkedStorageAccounts",
        "properties": {
            "dataSourceType": kind,
            "storageAccountIds": [account_id],
        },
    })
}

async fn account_id(state: &Shared, account: &str) -> Result<String, ApiError> {
    let name = account.to_owned();
    Ok(
        blocking(state, move |e| e.control().get_storage_account(&name))
            .await?
            .map_err(|e| super::control_error(&e))?
            .resource_id(),
    )
}

/// `GET .../workspaces/{w}/linkedStorageAccounts/{Query|Alerts}`.
pub(crate) async fn get_linked_storage(
    State(state): State<Shared>,
    Path((sub, rg, ws, kind)): ItemPath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageRead)?;
    let ws_id = workspace_id(&state, &sub, &rg, &ws).await?;
    let source = data_source(&kind)?;
    let name = ws.clone();
    let workspace = blocking(&state, move |e| e.control().get_workspace(&name))
        .await?
        .map_err(|e| super::control_error(&e))?;
    let Some(account) = workspace.linked_for(source) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("Workspace {ws} has no storage account linked for {kind}"),
        ));
    };
    let id = account_id(&state, account).await?;
    Ok(json_response(
        StatusCode::OK,
        &linked_json(&ws_id, &kind, &id),
    ))
}

/// `PUT .../workspaces/{w}/linkedStorageAccounts/{Query|Alerts}` `{"properties":
/// {"storageAccountIds": [ID]}}`: links the storage account (`logvault workspace linked-storage
/// link`; for `Query` the workspace's saved searches are removed, R-H3).
pub(crate) async fn put_linked_storage(
    State(state): State<Shared>,
    Path((sub, rg, ws, kind)): ItemPath,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::Manage)?;
    let ws_id = workspace_id(&state, &sub, &rg, &ws).await?;
    let source = data_source(&kind)?;
    let body = body_json(&body)?;
    let ids: Vec<&str> = body
        .pointer("/properties/storageAccountIds")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let [id] = ids.as_slice() else {
        return Err(bad(
            "properties.storageAccountIds must name one storage account",
        ));
    };
    let account = id
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    state
        .engine
        .link_storage(&ws, source, account)
        .await
        .map_err(|e| engine_error(&e))?;
    let id = account_id(&state, account).await?;
    Ok(json_response(
        StatusCode::OK,
        &linked_json(&ws_id, &kind, &id),
    ))
}

/// `DELETE .../workspaces/{w}/linkedStorageAccounts/{Query|Alerts}`.
pub(crate) async fn delete_linked_storage(
    State(state): State<Shared>,
    Path((sub, rg, ws, kind)): ItemPath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::Manage)?;
    workspace_id(&state, &sub, &rg, &ws).await?;
    let source = data_source(&kind)?;
    state
        .engine
        .unlink_storage(&ws, source)
        .await
        .map_err(|e| engine_error(&e))?;
    Ok(StatusCode::OK.into_response())
}
