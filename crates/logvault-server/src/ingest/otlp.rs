//! OTLP/HTTP logs: `POST /v1/logs`, protobuf (`application/x-protobuf`) or JSON
//! (`application/json`), optionally gzip.
//!
//! Each log record becomes a row: `TimeGenerated` from `timeUnixNano` (else
//! `observedTimeUnixNano`, else the time received), `ObservedTimestamp`, `SeverityText`,
//! `SeverityNumber`, `Body` (text, or a dynamic value for structured bodies), `EventName`,
//! `TraceId` and `SpanId` (hex), `Flags`, `ServiceName` (the resource's `service.name`),
//! `ScopeName`, `ScopeVersion`, and the log record's and the resource's attributes as the
//! dynamic columns `Attributes` and `ResourceAttributes`. The workspace and table come from
//! the `x-logvault-workspace` and `x-logvault-table` headers (default table `OTelLogs`), or
//! from a data collection rule (`x-logvault-dcr`, and `x-logvault-stream` when it has several
//! flows), whose transformation then runs as for the Logs Ingestion API.

use arrow::array::RecordBatch;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use logvault::ingest::{ParseOptions, TableSchema};
use prost::Message;

use super::otlp_proto::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use super::{Protocol, Submitted, header as header_text, known_workspace, revoked, submit};
use crate::http::errors::{ApiError, Flavor};
use crate::http::{Shared, auth};
use crate::roles::Permission;

/// The table OTLP logs go to unless a header or a rule says otherwise.
pub(crate) const DEFAULT_TABLE: &str = "OTelLogs";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `POST /v1/logs`.
pub(crate) async fn export(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let encoding = match header_text(&headers, "content-type") {
        Some(ct) if ct.starts_with("application/json") => Encoding::Json,
        _ => Encoding::Protobuf,
    };
    match run(&state, &headers, body, encoding).await {
        Ok(response) => response,
        Err(e) => e.flavor(Flavor::Otlp).into_response(),
    }
}

/// Where the rows go: workspace, table, and a transformation.
struct Target {
    workspace: String,
    table: String,
    transform: Option<String>,
}

fn target(
    state: &Shared,
    headers: &HeaderMap,
    principal: &crate::tokens::Principal,
) -> Result<Target, ApiError> {
    if let Some(rule_id) = header_text(headers, "x-logvault-dcr") {
        let rule = state
            .rules
            .get(rule_id)
            .map_err(|e| ApiError::not_found("InvalidDataCollectionRule", e.to_string()))?;
        let flow = match header_text(headers, "x-logvault-stream") {
            Some(stream) => rule.flow(stream),
            None if rule.data_flows.len() == 1 => rule.data_flows.first(),
            None => None,
        }
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "name one stream of data collection rule {} with x-logvault-stream",
                rule.name
            ))
        })?;
        return Ok(Target {
            workspace: rule.workspace.clone(),
            table: flow.table.clone(),
            transform: flow.transform_kql.clone(),
        });
    }
    Ok(Target {
        workspace: super::target_workspace(headers, principal, Flavor::Otlp)?,
        table: header_text(headers, "x-logvault-table")
            .unwrap_or(DEFAULT_TABLE)
            .to_owned(),
        transform: None,
    })
}

async fn run(
    state: &Shared,
    headers: &HeaderMap,
    body: Body,
    encoding: Encoding,
) -> Result<Response, ApiError> {
    let principal = auth::authenticate(state, headers, Flavor::Otlp)?;
    let target = target(state, headers, &principal)?;
    auth::check(
        &principal,
        Permission::Ingest,
        Some(&target.workspace),
        Flavor::Otlp,
    )?;
    known_workspace(state, &target.workspace, Flavor::Otlp).await?;
    let received = crate::http::body::receive(state, headers, body, Flavor::Otlp).await?;
    let key = super::request_key(
        headers,
        &format!("otlp:{}/{}", target.workspace, target.table),
        &received,
    );
    let payload = received.into_payload();
    let size = payload.len();
    let table = target.table.clone();
    let clock = state.engine.clock().clone();
    // Decoding and building the rows take CPU: off the async workers.
    let parsed = crate::http::decoding(state, "the decoding thread", move || {
        decode(&payload, encoding, &table, &clock)
    })
    .await??;
    if !parsed.is_empty() {
        let now = state.engine.clock().now();
        let mut records = Vec::new();
        for batch in parsed {
            match &target.transform {
                None => records.push((target.table.clone(), batch)),
                Some(kql) => {
                    let out = crate::transform::apply(kql, batch, now)
                        .await
                        .map_err(|e| {
                            ApiError::bad_request(format!("the transformation failed: {e}"))
                        })?;
                    records.extend(out.into_iter().map(|b| (target.table.clone(), b)));
                }
            }
        }
        match submit(
            state,
            &target.workspace,
            Protocol::Otlp,
            records,
            size,
            Flavor::Otlp,
            key,
        )
        .await?
        {
            Submitted::Accepted => {}
            Submitted::Dropped(rows, reason) => return Err(revoked(rows, &reason, Flavor::Otlp)),
        }
    }
    let response = ExportLogsServiceResponse {
        partial_success: None,
    };
    Ok(match encoding {
        Encoding::Protobuf => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-protobuf"),
            )],
            response.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            "{}",
        )
            .into_response(),
    })
}

/// The request's rows as batches of `table` (`otlp_rows`), from its protobuf or JSON body.
fn decode(
    payload: &[u8],
    encoding: Encoding,
    table: &str,
    clock: &logvault::core::SharedClock,
) -> Result<Vec<RecordBatch>, ApiError> {
    let (_, batches) = decode_at(payload, encoding == Encoding::Json, table, clock.now())?;
    Ok(batches)
}

/// [`decode`] with the rows received at `received` (also what the AFL++ drivers call, through
/// [`crate::fuzzing`]): the number of log records of the request and its rows.
pub(crate) fn decode_at(
    payload: &[u8],
    json: bool,
    table: &str,
    received: chrono::DateTime<chrono::Utc>,
) -> Result<(usize, Vec<RecordBatch>), ApiError> {
    let proto;
    let logs = if json {
        super::otlp_json::request(payload)
            .map_err(|e| ApiError::bad_request(format!("the body is not OTLP/JSON logs: {e}")))?
    } else {
        proto = ExportLogsServiceRequest::decode(payload).map_err(|e| {
            ApiError::bad_request(format!("the body is not an ExportLogsServiceRequest: {e}"))
        })?;
        super::otlp_view::Logs::of_proto(&proto)
    };
    let records = logs.records();
    let mut schema = TableSchema::new(table).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let options = ParseOptions::default();
    let batches = super::otlp_rows::batches(&logs, &mut schema, received, &options)
        .map_err(|e| ApiError::bad_request(format!("the log records were refused: {e}")))?;
    Ok((records, batches))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ingest::otlp_proto::{
        AnyValue, KeyValue, LogRecord, Resource, ResourceLogs, ScopeLogs, any_value,
    };

    fn kv(k: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
        }
    }

    #[test]
    fn protobuf_and_json_give_the_same_rows() {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv(
                        "service.name",
                        any_value::Value::StringValue("shop".into()),
                    )],
                    dropped_attributes_count: 0,
                }),
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: vec![LogRecord {
                        time_unix_nano: 1_767_225_600_123_456_789,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("hello".into())),
                        }),
                        attributes: vec![kv("order.id", any_value::Value::IntValue(42))],
                        trace_id: vec![0xab; 16],
                        ..LogRecord::default()
                    }],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let bytes = req.encode_to_vec();
        let decoded = ExportLogsServiceRequest::decode(bytes.as_slice()).unwrap();
        let json = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},
            "scopeLogs":[{"logRecords":[{"timeUnixNano":"1767225600123456789","severityNumber":9,"severityText":"INFO",
            "body":{"stringValue":"hello"},"attributes":[{"key":"order.id","value":{"intValue":"42"}}],
            "traceId":"abababababababababababababababab","spanId":""}]}]}]}"#;
        let from_json = crate::ingest::otlp_json::request(json.as_bytes()).unwrap();
        assert_eq!(
            crate::ingest::otlp_view::Logs::of_proto(&decoded),
            from_json
        );
        let clock: logvault::core::SharedClock =
            std::sync::Arc::new(logvault_core::TestClock::new(chrono::Utc::now()));
        let batches = decode(&bytes, Encoding::Protobuf, "OTelLogs", &clock).unwrap();
        assert_eq!(
            batches,
            decode(json.as_bytes(), Encoding::Json, "OTelLogs", &clock).unwrap()
        );
        let batch = &batches[0];
        let text = |name: &str| {
            let column = batch.column_by_name(name).unwrap();
            arrow::util::display::array_value_to_string(column, 0).unwrap()
        };
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(text("TimeGenerated"), "2026-01-01T00:00:00.123456Z");
        assert_eq!(text("ServiceName"), "shop");
        assert_eq!(text("Attributes"), r#"{"order.id":42}"#);
        assert_eq!(text("TraceId"), "ab".repeat(16));
        assert!(crate::ingest::otlp_json::request(b"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"x\"}]}]}]}").is_err());
    }
}
