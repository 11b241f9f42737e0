//! `Microsoft.Insights/dataCollectionRules`: the rules the Logs Ingestion API posts through, in
//! Azure's shape, on the server's rule store (the same as `logvault dcr ...`).
//!
//! A rule here writes to one workspace: its `destinations.logAnalytics` name that workspace (by
//! resource id), and each data flow maps its streams to a table: `outputStream`
//! (`Custom-<Table>` or `Microsoft-<Table>`), else the stream's own name without `Custom-`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{arm, bad, body_json, control_error, json_response, page, text};
use crate::ServerError;
use crate::dcr::{DataCollectionRule, DataFlow, RuleSpec};
use crate::http::errors::ApiError;
use crate::http::{Shared, blocking};
use crate::roles::Permission;

type RulePath = Path<(String, String, String)>;

fn server_error(e: &ServerError) -> ApiError {
    let status = e
        .code()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = match e {
        ServerError::Refused { message, .. } => message.clone(),
        other => other.to_string(),
    };
    ApiError::new(status, super::arm_code(status), message)
}

/// The rule as Azure answers it.
fn rule_json(
    sub: &str,
    rg: &str,
    rule: &DataCollectionRule,
    workspace: Option<&logvault::control::Workspace>,
) -> Value {
    let destination = json!({
        "name": rule.workspace,
        "workspaceResourceId": workspace.map(|w| w.resource_id().to_string()),
        "workspaceId": workspace.map(|w| w.customer_id.clone()),
    });
    let flows: Vec<Value> = rule
        .data_flows
        .iter()
        .map(|f| {
            let mut flow = json!({
                "streams": [f.stream],
                "destinations": [rule.workspace],
                "outputStream": format!("Custom-{}", f.table),
            });
            if let Some(kql) = &f.transform_kql {
                flow["transformKql"] = kql.clone().into();
            }
            flow
        })
        .collect();
    json!({
        "id": format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Insights/dataCollectionRules/{}", rule.name),
        "name": rule.name,
        "type": "Microsoft.Insights/dataCollectionRules",
        "location": workspace.map_or_else(|| "local".to_owned(), |w| w.region.clone()),
        "properties": {
            "immutableId": rule.immutable_id,
            "provisioningState": "Succeeded",
            "destinations": { "logAnalytics": [destination] },
            "dataFlows": flows,
        },
        "systemData": { "createdAt": rule.created_on.to_rfc3339() },
    })
}

/// The rule's flows and workspace, from Azure's body.
fn spec(name: &str, body: &Value) -> Result<RuleSpec, ApiError> {
    let destinations = body
        .pointer("/properties/destinations/logAnalytics")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| bad("properties.destinations.logAnalytics must name a workspace"))?;
    let mut workspaces = Vec::new();
    for d in destinations {
        let id = text(d, "/workspaceResourceId")
            .ok_or_else(|| bad("a logAnalytics destination needs workspaceResourceId"))?;
        let ws = id
            .trim_end_matches('/')
            .rsplit_once("/workspaces/")
            .map(|(_, w)| w.to_owned())
            .filter(|w| !w.is_empty() && !w.contains('/'))
            .ok_or_else(|| bad(format!("workspaceResourceId {id} is not a workspace's id")))?;
        if !workspaces.contains(&ws) {
            workspaces.push(ws);
        }
    }
    let [workspace] = workspaces.as_slice() else {
        return Err(bad(format!(
            "a rule writes to one workspace here, not {}",
            workspaces.join(", ")
        )));
    };
    let flows = body
        .pointer("/properties/dataFlows")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("properties.dataFlows is required"))?;
    let mut data_flows = Vec::new();
    for flow in flows {
        let transform = text(flow, "/transformKql")
            .filter(|k| !k.trim().is_empty() && k.trim() != "source")
            .map(str::to_owned);
        let output = text(flow, "/outputStream").map(|o| {
            o.strip_prefix("Custom-")
                .or_else(|| o.strip_prefix("Microsoft-"))
                .unwrap_or(o)
                .to_owned()
        });
        let streams = flow
            .get("streams")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("a data flow needs streams"))?;
        for stream in streams.iter().filter_map(Value::as_str) {
            let table = output
                .clone()
                .unwrap_or_else(|| stream.strip_prefix("Custom-").unwrap_or(stream).to_owned());
            data_flows.push(DataFlow {
                stream: stream.to_owned(),
                table,
                transform_kql: transform.clone(),
            });
        }
    }
    Ok(RuleSpec {
        name: name.to_owned(),
        workspace: workspace.clone(),
        data_flows,
    })
}

async fn answer(
    state: &Shared,
    sub: &str,
    rg: &str,
    rule: &DataCollectionRule,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let name = rule.workspace.clone();
    let ws = blocking(state, move |e| e.control().get_workspace(&name).ok()).await?;
    Ok(json_response(
        status,
        &rule_json(sub, rg, rule, ws.as_ref()),
    ))
}

/// `PUT .../Microsoft.Insights/dataCollectionRules/{name}`: creates the rule (or replaces it;
/// its immutable id then changes).
pub(crate) async fn put(
    State(state): State<Shared>,
    Path((sub, rg, name)): RulePath,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::Manage)?;
    let spec = spec(&name, &body_json(&body)?)?;
    let workspace = spec.workspace.clone();
    blocking(&state, move |e| e.control().get_workspace(&workspace))
        .await?
        .map_err(|e| control_error(&e))?;
    let now = state.engine.clock().now();
    let replaced = state.rules.get(&name).is_ok();
    if replaced {
        state.rules.delete(&name).map_err(|e| server_error(&e))?;
    }
    let rule = state
        .rules
        .create(spec, now)
        .map_err(|e| server_error(&e))?;
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    answer(&state, &sub, &rg, &rule, status).await
}

/// `GET .../Microsoft.Insights/dataCollectionRules/{name}`.
pub(crate) async fn get(
    State(state): State<Shared>,
    Path((sub, rg, name)): RulePath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::ManageRead)?;
    let rule = state.rules.get(&name).map_err(|e| server_error(&e))?;
    answer(&state, &sub, &rg, &rule, StatusCode::OK).await
}

/// `DELETE .../Microsoft.Insights/dataCollectionRules/{name}`: 200, or 204 if there is none.
pub(crate) async fn delete(
    State(state): State<Shared>,
    Path((_sub, _rg, name)): RulePath,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    arm(&state, &headers, &uri, Permission::Manage)?;
    match state.rules.delete(&name) {
        Ok(_) => Ok(StatusCode::OK.into_response()),
        Err(e) if e.code() == Some(404) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => Err(server_error(&e)),
    }
}

/// `GET .../resourceGroups/{rg}/providers/Microsoft.Insights/dataCollectionRules`.
pub(crate) async fn list(
    State(state): State<Shared>,
    Path((sub, rg)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let arm = arm(&state, &headers, &uri, Permission::ManageRead)?;
    let rules = state.rules.list().map_err(|e| server_error(&e))?;
    let mut items = Vec::new();
    for rule in &rules {
        let name = rule.workspace.clone();
        let ws = blocking(&state, move |e| e.control().get_workspace(&name).ok()).await?;
        items.push(rule_json(&sub, &rg, rule, ws.as_ref()));
    }
    let size = state.management.page_size;
    Ok(json_response(
        StatusCode::OK,
        &page(&arm.base, uri.path(), &arm.query, items, size),
    ))
}
