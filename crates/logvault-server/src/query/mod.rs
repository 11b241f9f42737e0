//! The Log Analytics query API: `POST|GET /v1/workspaces/{workspaceId}/query` and
//! `POST /v1/$batch`. KQL by default, SQL with `"language": "sql"` (a logvault extension);
//! `"distributed": true` (another) runs the plan on the server's distributed engine
//! ([`crate::DistributedQueries`]).
//!
//! A query is planned before anything is answered, so that a bad query is a 400 with Azure's
//! error object (the line and position in its `innererror`); then its first batch is awaited,
//! so that a failure before any row is an error too. From there on, rows stream from
//! DataFusion to the response batch by batch; the row limit, the size limit, the time limit
//! (`Prefer: wait=N`) or a failure while reading cut the result, which then ends with the
//! partial error object (`LogsQueryPartialResult` in the SDKs).

mod distributed;
mod request;
mod results;
mod run;
mod timespan;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::errors::{ApiError, Flavor};
use crate::http::{Shared, auth};
use crate::tokens::Principal;

pub(crate) use request::Language;
use request::{Prefer, QuerySpec};

#[derive(Debug, Deserialize)]
struct QueryBody {
    query: Option<String>,
    #[serde(default)]
    timespan: Option<String>,
    #[serde(default)]
    workspaces: Option<Vec<String>>,
    #[serde(default)]
    language: Option<String>,
    /// Run on the distributed engine the server was started with (a logvault extension).
    #[serde(default)]
    distributed: Option<bool>,
}

impl QueryBody {
    fn into_spec(self, workspace: String, prefer: Prefer) -> Result<QuerySpec, ApiError> {
        let query = self
            .query
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| ApiError::bad_request("the request has no query"))?;
        Ok(QuerySpec {
            workspace,
            query,
            timespan: self.timespan.filter(|t| !t.trim().is_empty()),
            workspaces: self.workspaces.unwrap_or_default(),
            language: Language::parse(self.language.as_deref())?,
            distributed: self.distributed,
            prefer,
        })
    }
}

/// `POST /v1/workspaces/{workspaceId}/query`.
pub(crate) async fn post_query(
    State(state): State<Shared>,
    Path(workspace): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = async {
        // The token first: a request without a valid one learns nothing of its body's faults.
        let principal = auth::authenticate(&state, &headers, Flavor::Azure)?;
        let bytes = crate::http::body::read(&state, &headers, body, Flavor::Azure).await?;
        let body: QueryBody = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid: {e}")))?;
        let spec = body.into_spec(workspace, Prefer::parse(&headers))?;
        run::stream(&state, principal, spec).await
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /v1/workspaces/{workspaceId}/query?query=...&timespan=...`.
pub(crate) async fn get_query(
    State(state): State<Shared>,
    Path(workspace): Path<String>,
    Query(params): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let answer = async {
        let principal = auth::authenticate(&state, &headers, Flavor::Azure)?;
        let body = QueryBody {
            query: params.get("query").cloned(),
            timespan: params.get("timespan").cloned(),
            workspaces: params
                .get("workspaces")
                .map(|w| w.split(',').map(|s| s.trim().to_owned()).collect()),
            language: params.get("language").cloned(),
            distributed: params
                .get("distributed")
                .map(|d| parse_flag(d))
                .transpose()?,
        };
        let spec = body.into_spec(workspace, Prefer::parse(&headers))?;
        run::stream(&state, principal, spec).await
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// `distributed=true|false` of a `GET` query.
fn parse_flag(text: &str) -> Result<bool, ApiError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "distributed must be true or false, not '{other}'"
        ))),
    }
}

#[derive(Debug, Deserialize)]
struct BatchBody {
    requests: Vec<BatchRequest>,
}

#[derive(Debug, Deserialize)]
struct BatchRequest {
    id: String,
    #[serde(default)]
    body: Option<QueryBody>,
    #[serde(default)]
    headers: std::collections::HashMap<String, String>,
    workspace: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    method: Option<String>,
}

/// Most requests in one `$batch` (Azure's limit).
const MAX_BATCH: usize = 100;

/// `POST /v1/$batch`: each request answered in `responses` with its id, status and body (the
/// same body a single query would have had, collected). Requests run one after the other.
pub(crate) async fn batch(State(state): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let answer = async {
        // Every request needs a valid token: the whole batch is refused without one (401), as
        // a single query would be, before its body is read; roles and workspaces are checked
        // per request (403 each).
        let principal = auth::authenticate(&state, &headers, Flavor::Azure)?;
        let bytes = crate::http::body::read(&state, &headers, body, Flavor::Azure).await?;
        let batch: BatchBody = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("the batch is not valid: {e}")))?;
        if batch.requests.is_empty() || batch.requests.len() > MAX_BATCH {
            return Err(ApiError::bad_request(format!(
                "a batch holds 1 to {MAX_BATCH} requests, not {}",
                batch.requests.len()
            )));
        }
        let mut responses = Vec::with_capacity(batch.requests.len());
        for req in batch.requests {
            let id = req.id.clone();
            let (status, body) = one_of_batch(&state, principal.clone(), req).await;
            responses.push(json!({
                "id": id,
                "status": status.as_u16(),
                "body": body,
            }));
        }
        Ok((
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            json!({ "responses": responses }).to_string(),
        )
            .into_response())
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

async fn one_of_batch(
    state: &Shared,
    principal: Principal,
    req: BatchRequest,
) -> (StatusCode, Value) {
    let answer = async {
        if req.path.as_deref().is_some_and(|p| p != "/query")
            || req
                .method
                .as_deref()
                .is_some_and(|m| !m.eq_ignore_ascii_case("POST"))
        {
            return Err(ApiError::bad_request(
                "a batch request must be POST /query".to_owned(),
            ));
        }
        let workspace = req
            .workspace
            .ok_or_else(|| ApiError::bad_request("a batch request needs a workspace"))?;
        let body = req
            .body
            .ok_or_else(|| ApiError::bad_request("a batch request needs a body"))?;
        let mut own = HeaderMap::new();
        for (k, v) in &req.headers {
            if let (Ok(k), Ok(v)) = (
                axum::http::HeaderName::from_bytes(k.as_bytes()),
                axum::http::HeaderValue::from_str(v),
            ) {
                own.insert(k, v);
            }
        }
        let spec = body.into_spec(workspace, Prefer::parse(&own))?;
        run::collect(state, principal, spec).await
    };
    match answer.await {
        Ok(ok) => ok,
        Err(e) => (e.status, e.azure_body()),
    }
}
