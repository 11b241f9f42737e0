//! The management plane as Azure Resource Manager serves it, for azure-mgmt-loganalytics and
//! azure-mgmt-keyvault: Microsoft.OperationalInsights clusters, workspaces and their links
//! ([`clusters`], [`workspaces`]), their saved searches, tables and linked storage
//! ([`artifacts`]), the long-running operations' status ([`operations`]), Microsoft.KeyVault
//! vaults with their access policies and role assignments ([`vaults`]), and Microsoft.Insights
//! data collection rules ([`dcr`]). The routes are documented in `docs/management-api.md`.
//!
//! Every handler calls the same library operation the CLI does (the control plane, the local
//! vault, the engine's key checks), so each sees what the other changed. Refusals are answered
//! as `{"error": {"code", "message"}}` with the control plane's HTTP code and message (the
//! seed's, which `logvault` prints as `error: 400 ...`).
//!
//! Long-running operations (cluster create, update and delete; workspace create and delete;
//! link and unlink) answer as the SDK's poller expects: PUT and PATCH 200 with the resource and
//! `Azure-AsyncOperation`, polled until `{"status": "Succeeded"}`, then the client GETs the
//! resource; DELETE 202 with `Location`, polled until 204. Each answer carries
//! `Retry-After: 1` (without it the SDK waits 30 s between polls). How long a cluster operation
//! takes is the home's `timings.asyncOperationSecs`, as for the CLI.

pub(crate) mod artifacts;
pub(crate) mod clusters;
pub(crate) mod dcr;
pub(crate) mod operations;
pub(crate) mod vaults;
pub(crate) mod workspaces;

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::http::errors::{ApiError, Flavor};
use crate::http::routes::{Access, Routes};
use crate::http::{AppState, auth};
use crate::roles::Permission;

/// What the management and Key Vault APIs need to know of the server.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Whether the server speaks TLS (the scheme of the URLs it answers with).
    pub(crate) tls: bool,
    /// Items per page of a list.
    pub(crate) page_size: usize,
    /// The address the server listens on (the URLs it answers with point there).
    pub(crate) listen: std::net::SocketAddr,
}

/// The provider prefix of a resource group's Log Analytics resources.
const OI: &str = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights";
/// The provider prefix of a subscription's Log Analytics resources.
const OI_SUB: &str = "/subscriptions/{sub}/providers/Microsoft.OperationalInsights";
/// The provider prefix of a resource group's data collection rules.
const INSIGHTS: &str = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Insights";
/// The provider prefix of a resource group's key vaults.
const KV: &str = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault";

/// The management routes.
pub(crate) fn routes() -> Routes {
    use Access::Needs;
    let (read, manage, vault_admin) = (
        Needs(Permission::ManageRead),
        Needs(Permission::Manage),
        Needs(Permission::ManageVaults),
    );
    let cluster = format!("{OI}/clusters/{{name}}");
    let workspace = format!("{OI}/workspaces/{{name}}");
    let link = format!("{OI}/workspaces/{{name}}/linkedServices/{{service}}");
    let search = format!("{OI}/workspaces/{{name}}/savedSearches/{{id}}");
    let table = format!("{OI}/workspaces/{{name}}/tables/{{table}}");
    let storage = format!("{OI}/workspaces/{{name}}/linkedStorageAccounts/{{kind}}");
    let rule = format!("{INSIGHTS}/dataCollectionRules/{{name}}");
    let vault = format!("{KV}/vaults/{{vault}}");
    let assignment =
        format!("{KV}/vaults/{{vault}}/providers/Microsoft.Authorization/roleAssignments/{{id}}");
    Routes::new()
        .get(&cluster, read, clusters::get)
        .put(&cluster, manage, clusters::put)
        .patch(&cluster, manage, clusters::patch)
        .delete(&cluster, manage, clusters::delete)
        .get(&format!("{OI}/clusters"), read, clusters::list_in_group)
        .get(
            &format!("{OI_SUB}/clusters"),
            read,
            clusters::list_in_subscription,
        )
        .get(&workspace, read, workspaces::get)
        .put(&workspace, manage, workspaces::put)
        .patch(&workspace, manage, workspaces::patch)
        .delete(&workspace, manage, workspaces::delete)
        .get(&format!("{OI}/workspaces"), read, workspaces::list_in_group)
        .get(
            &format!("{OI_SUB}/workspaces"),
            read,
            workspaces::list_in_subscription,
        )
        .get(&link, read, workspaces::get_link)
        .put(&link, manage, workspaces::put_link)
        .delete(&link, manage, workspaces::delete_link)
        .get(
            &format!("{OI}/workspaces/{{name}}/linkedServices"),
            read,
            workspaces::list_links,
        )
        .get(&search, read, artifacts::get_search)
        .put(&search, manage, artifacts::put_search)
        .delete(&search, manage, artifacts::delete_search)
        .get(
            &format!("{OI}/workspaces/{{name}}/savedSearches"),
            read,
            artifacts::list_searches,
        )
        .get(&table, read, artifacts::get_table)
        .put(&table, manage, artifacts::put_table)
        .patch(&table, manage, artifacts::put_table)
        .get(&storage, read, artifacts::get_linked_storage)
        .put(&storage, manage, artifacts::put_linked_storage)
        .delete(&storage, manage, artifacts::delete_linked_storage)
        .get(
            &format!("{OI}/workspaces/{{name}}/tables"),
            read,
            artifacts::list_tables,
        )
        .get(
            &format!("{OI_SUB}/locations/{{loc}}/operationStatuses/{{op}}"),
            read,
            operations::status,
        )
        .get(
            &format!("{OI_SUB}/locations/{{loc}}/operationResults/{{op}}"),
            read,
            operations::result,
        )
        .get(&rule, read, dcr::get)
        .put(&rule, manage, dcr::put)
        .delete(&rule, manage, dcr::delete)
        .get(&format!("{INSIGHTS}/dataCollectionRules"), read, dcr::list)
        .get(&vault, read, vaults::get)
        .put(&vault, vault_admin, vaults::put)
        .put(
            &format!("{KV}/vaults/{{vault}}/accessPolicies/{{kind}}"),
            vault_admin,
            vaults::access_policy,
        )
        .get(&assignment, read, vaults::get_role_assignment)
        .put(&assignment, vault_admin, vaults::put_role_assignment)
        .delete(&assignment, vault_admin, vaults::delete_role_assignment)
}

/// What every management request carries: the base URL it reached the server at, its
/// `api-version` and the rest of its query.
pub(crate) struct Arm {
    pub(crate) base: String,
    pub(crate) api_version: String,
    pub(crate) query: HashMap<String, String>,
}

/// Authorizes a management request for `permission` and reads its `api-version` (required, as
/// ARM requires it; any version is accepted: 2025-07-01 and the older ones the seed uses).
pub(crate) fn arm(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    permission: Permission,
) -> Result<Arm, ApiError> {
    auth::authorize(state, headers, permission, None, Flavor::Azure)?;
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url_pairs(q)
                .into_iter()
                .collect::<HashMap<String, String>>()
        })
        .unwrap_or_default();
    let api_version = query
        .get("api-version")
        .filter(|v| !v.is_empty())
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        })?;
    Ok(Arm {
        base: base_url(state, headers, uri),
        api_version,
        query,
    })
}

/// `scheme://host[:port]` as the client reached the server: its `Host` header (HTTP/1.1), or
/// the request's authority (HTTP/2 sends `:authority` instead). The URLs answered with it
/// (operations to poll, next pages, key ids) receive the client's token, so on a loopback
/// listener only the loopback names with the server's port are taken; otherwise the listening
/// address.
pub(crate) fn base_url(state: &AppState, headers: &HeaderMap, uri: &Uri) -> String {
    let settings = &state.management;
    let scheme = if settings.tls { "https" } else { "http" };
    let host = pick_host(
        settings.listen,
        headers.get(header::HOST).and_then(|h| h.to_str().ok()),
        uri.authority().map(|a| a.as_str()),
    );
    format!("{scheme}://{host}")
}

/// The host (and port) of [`base_url`]: the first of `host` and `authority` it accepts, else
/// the listening address.
fn pick_host(listen: std::net::SocketAddr, host: Option<&str>, authority: Option<&str>) -> String {
    let acceptable = |h: &&str| {
        if h.is_empty()
            || !h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
        {
            return false;
        }
        if !listen.ip().is_loopback() {
            return true;
        }
        let (name, port) = match h.rsplit_once(':') {
            Some((name, port)) if !name.ends_with(':') => (name, port.parse::<u16>().ok()),
            _ => (*h, None),
        };
        port == Some(listen.port()) && matches!(name, "127.0.0.1" | "localhost" | "[::1]")
    };
    host.filter(acceptable)
        .or_else(|| authority.filter(acceptable))
        .map_or_else(|| listen.to_string(), str::to_owned)
}

/// The pairs of a query string, percent-decoded.
pub(crate) fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or(""), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A control-plane refusal as ARM answers it: the seed's HTTP code and message, and a code
/// named after the status.
pub(crate) fn control_error(e: &logvault::control::ControlError) -> ApiError {
    let status = StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = match e {
        logvault::control::ControlError::Refused { message, .. } => message.clone(),
        other => other.to_string(),
    };
    ApiError::new(status, arm_code(status), message)
}

/// An engine error as ARM answers it.
pub(crate) fn engine_error(e: &logvault::EngineError) -> ApiError {
    match e {
        logvault::EngineError::Control(c) => control_error(c),
        logvault::EngineError::Vault(v) => vault_error(v),
        other => match other.code().and_then(|c| StatusCode::from_u16(c).ok()) {
            Some(status) if status.is_client_error() => {
                ApiError::new(status, arm_code(status), other.to_string())
            }
            _ => ApiError::internal(other.to_string()),
        },
    }
}

/// A vault refusal as ARM answers it.
pub(crate) fn vault_error(e: &logvault::kms::VaultError) -> ApiError {
    let status =
        StatusCode::from_u16(e.kind().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::new(status, arm_code(status), e.to_string())
}

/// ARM's error code for a status.
pub(crate) fn arm_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        403 => "AuthorizationFailed",
        404 => "ResourceNotFound",
        409 => "Conflict",
        503 => "ServiceUnavailable",
        _ => "InternalServerError",
    }
}

/// A 400 for a request body ARM cannot use.
pub(crate) fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// A JSON answer.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// One page of `items` (from `$skiptoken`, at most `page_size`, or `$top`/`maxresults` if
/// smaller) with a `nextLink` to the rest: `base` + `path` with the same `api-version`.
pub(crate) fn page(
    base: &str,
    path: &str,
    query: &HashMap<String, String>,
    items: Vec<Value>,
    page_size: usize,
) -> Value {
    let skip: usize = query
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let size = query
        .get("$top")
        .or_else(|| query.get("maxresults"))
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .map_or(page_size, |n| n.min(page_size))
        .max(1);
    let total = items.len();
    let value: Vec<Value> = items.into_iter().skip(skip).take(size).collect();
    let mut out = json!({ "value": value, "nextLink": null });
    if skip + size < total {
        let mut next = format!("{base}{path}?$skiptoken={}", skip + size);
        if let Some(v) = query.get("api-version") {
            next.push_str(&format!("&api-version={v}"));
        }
        if let Some(v) = query.get("maxresults") {
            next.push_str(&format!("&maxresults={v}"));
        }
        out["nextLink"] = Value::String(next);
    }
    out
}

/// Which long-running operation an id names: a kind and a resource name (names are letters,
/// digits and hyphens, so `.` separates them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OperationId {
    pub(crate) kind: String,
    pub(crate) name: String,
}

impl OperationId {
    pub(crate) fn new(kind: &str, name: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            name: name.to_owned(),
        }
    }

    pub(crate) fn parse(id: &str) -> Option<Self> {
        let (kind, name) = id.split_once('.')?;
        (!kind.is_empty() && !name.is_empty()).then(|| Self::new(kind, name))
    }

    fn render(&self) -> String {
        format!("{}.{}", self.kind, self.name)
    }
}

const ASYNC_OPERATION: HeaderName = HeaderName::from_static("azure-asyncoperation");

/// The answer to a PUT or PATCH that started (or completed) a long-running operation: `status`
/// with the resource, and the operation's status URL to poll.
pub(crate) fn started(
    arm: &Arm,
    sub: &str,
    location: &str,
    op: &OperationId,
    status: StatusCode,
    body: &Value,
) -> Response {
    let mut response = json_response(status, body);
    let url = format!(
        "{}/subscriptions/{sub}/providers/Microsoft.OperationalInsights/locations/{location}/operationStatuses/{}?api-version={}",
        arm.base,
        op.render(),
        arm.api_version
    );
    if let Ok(v) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(ASYNC_OPERATION, v);
    }
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The answer to a DELETE that started a long-running operation: 202 with `Location`.
pub(crate) fn deleting(arm: &Arm, sub: &str, location: &str, op: &OperationId) -> Response {
    let mut response = StatusCode::ACCEPTED.into_response();
    let url = format!(
        "{}/subscriptions/{sub}/providers/Microsoft.OperationalInsights/locations/{location}/operationResults/{}?api-version={}",
        arm.base,
        op.render(),
        arm.api_version
    );
    if let Ok(v) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// A request body as JSON (an empty body is `{}`).
pub(crate) fn body_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: {e}"),
        )
    })
}

/// A string at `pointer` in `v`, if any.
pub(crate) fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Whether two names are the same resource name (ARM names are case-insensitive).
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_decoded_and_operation_ids_round_trip() {
        let pairs = url_pairs("api-version=2025-07-01&%24skiptoken=5&a=b%2Fc&bad=%zz");
        assert_eq!(
            pairs,
            vec![
                ("api-version".into(), "2025-07-01".into()),
                ("$skiptoken".into(), "5".into()),
                ("a".into(), "b/c".into()),
                ("bad".into(), "%zz".into()),
            ]
        );
        let loopback: std::net::SocketAddr = ([127, 0, 0, 1], 8443).into();
        assert_eq!(
            pick_host(loopback, Some("localhost:8443"), None),
            "localhost:8443"
        );
        assert_eq!(
            pick_host(loopback, None, Some("127.0.0.1:8443")),
            "127.0.0.1:8443"
        );
        // Another host or port would send the client's token elsewhere: the listener instead.
        for bad in [
            "evil.example:8443",
            "127.0.0.1:9999",
            "localhost",
            "a b:8443",
        ] {
            assert_eq!(
                pick_host(loopback, Some(bad), None),
                "127.0.0.1:8443",
                "{bad}"
            );
        }
        let any: std::net::SocketAddr = ([0, 0, 0, 0], 8443).into();
        assert_eq!(
            pick_host(any, Some("logs.example:8443"), None),
            "logs.example:8443"
        );
        let op = OperationId::new("cluster", "my-cluster");
        assert_eq!(OperationId::parse(&op.render()), Some(op));
        assert_eq!(OperationId::parse("nodot"), None);
        assert_eq!(OperationId::parse(".x"), None);
    }
}
