//! The Azure Logs Ingestion API: `POST /dataCollectionRules/{immutableId}/streams/{stream}`
//! with a JSON array of records (usually gzip). The rule names the workspace and the table the
//! stream goes to, and optionally a KQL transformation run on every batch. 204 when every
//! record is durable.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use logvault::ingest::{ErrorPolicy, Format};

use super::{Protocol, Submitted, parse, revoked, submit};
use crate::http::errors::{ApiError, Flavor};
use crate::http::{Shared, auth};
use crate::roles::Permission;

/// `POST /dataCollectionRules/{immutableId}/streams/{stream}?api-version=2023-01-01`.
pub(crate) async fn upload(
    State(state): State<Shared>,
    Path((rule_id, stream)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run(&state, &rule_id, &stream, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn run(
    state: &Shared,
    rule_id: &str,
    stream: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let principal = auth::authenticate(state, headers, Flavor::Azure)?;
    let rule = state.rules.get(rule_id).map_err(|_| {
        ApiError::not_found(
            "InvalidDataCollectionRule",
            format!("data collection rule with immutable id '{rule_id}' not found"),
        )
    })?;
    auth::check(
        &principal,
        Permission::Ingest,
        Some(&rule.workspace),
        Flavor::Azure,
    )
    .map_err(|mut e| {
        e.code = "OperationFailed".into();
        e.message = format!(
            "The authentication token provided does not have access to ingest data for the \
             data collection rule with immutable Id '{}': {}",
            rule.immutable_id, e.message
        );
        e
    })?;
    let flow = rule.flow(stream).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidStream",
            format!(
                "stream '{stream}' is not declared in data collection rule '{}' (streams: {})",
                rule.name,
                rule.data_flows
                    .iter()
                    .map(|f| f.stream.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let received = crate::http::body::receive(state, headers, body, Flavor::Azure).await?;
    let key = super::request_key(headers, &format!("logs:{rule_id}/{stream}"), &received);
    let payload = received.into_payload();
    let size = payload.len();
    if payload
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_none_or(|b| *b != b'[')
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidContent",
            "the body must be a JSON array of records",
        ));
    }
    let parsed = parse(
        state,
        &flow.table,
        payload,
        Format::JsonArray,
        ErrorPolicy::Refuse,
    )
    .await
    .map_err(|mut e| {
        e.code = "InvalidContent".into();
        e
    })?;
    let now = state.engine.clock().now();
    let mut records = Vec::new();
    for batch in parsed.batches {
        match &flow.transform_kql {
            None => records.push((flow.table.clone(), batch)),
            Some(kql) => {
                let out = crate::transform::apply(kql, batch, now)
                    .await
                    .map_err(|e| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "InvalidTransformOutput",
                            format!(
                                "the transformKql of data collection rule '{}' failed on this \
                             batch: {e}",
                                rule.name
                            ),
                        )
                    })?;
                records.extend(out.into_iter().map(|b| (flow.table.clone(), b)));
            }
        }
    }
    match submit(
        state,
        &rule.workspace,
        Protocol::LogsApi,
        records,
        size,
        Flavor::Azure,
        key,
    )
    .await?
    {
        Submitted::Accepted => Ok(StatusCode::NO_CONTENT.into_response()),
        Submitted::Dropped(rows, reason) => Err(revoked(rows, &reason, Flavor::Azure)),
    }
}
