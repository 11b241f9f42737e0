//! The ingestion endpoints: the Azure Logs Ingestion API with data collection rules, OTLP/HTTP
//! logs, Elasticsearch `_bulk`, and syslog over TCP. Every one parses its payload into Arrow
//! batches off the async workers, hands them to the workspace's writer ([`crate::hub`]) and
//! acknowledges only what the write-ahead log has fsynced. Under a revoked key the rows are
//! dropped and counted, and the client is refused with an error naming the workspace, the
//! cluster and the key.

pub(crate) mod bulk;
mod json_seeds;
pub(crate) mod logs_api;
pub(crate) mod otlp;
mod otlp_json;
mod otlp_proto;
#[cfg(test)]
mod otlp_reference;
mod otlp_rows;
mod otlp_view;
pub(crate) mod syslog;

use arrow::array::RecordBatch;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use logvault::Appended;
use logvault::ingest::{ErrorPolicy, Format, ParseOptions, ParseReport, TableSchema};

use crate::http::AppState;
use crate::http::body::Received;
use crate::http::errors::{ApiError, Flavor};
use crate::hub::HubAnswer;

/// The protocols, as metrics label them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    LogsApi,
    Otlp,
    Bulk,
    Syslog,
}

impl Protocol {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Protocol::LogsApi => "logs-ingestion-api",
            Protocol::Otlp => "otlp",
            Protocol::Bulk => "elasticsearch-bulk",
            Protocol::Syslog => "syslog",
        }
    }
}

/// Parsed rows of one table.
pub(crate) struct Parsed {
    pub(crate) batches: Vec<RecordBatch>,
    pub(crate) report: ParseReport,
}

/// Parses `payload` (JSON lines, a JSON array, or text lines) into rows of `table`, on a
/// blocking thread.
pub(crate) async fn parse(
    state: &AppState,
    table: &str,
    payload: Bytes,
    format: Format,
    policy: ErrorPolicy,
) -> Result<Parsed, ApiError> {
    let table = table.to_owned();
    let clock = state.engine.clock().clone();
    crate::http::decoding(state, "the parsing thread", move || {
        parse_now(&table, payload, format, policy, clock.as_ref())
    })
    .await?
}

/// [`parse`] on this thread: also how `_bulk` parses its tables (`bulk::parse_tables`, which
/// the AFL++ driver reaches through [`crate::fuzzing`]).
pub(crate) fn parse_now(
    table: &str,
    payload: Bytes,
    format: Format,
    policy: ErrorPolicy,
    clock: &dyn logvault::core::Clock,
) -> Result<Parsed, ApiError> {
    let mut schema = TableSchema::new(table).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let options = ParseOptions {
        on_error: policy,
        max_error_samples: 1000,
        ..ParseOptions::default()
    };
    let outcome = if format == Format::JsonArray {
        // The body is in memory: a refusing parse reads it in one pass.
        logvault::ingest::parse_json_array(&payload, &mut schema, &options, clock)
    } else {
        logvault::ingest::parse_payload(
            std::io::Cursor::new(payload),
            format,
            &mut schema,
            &options,
            clock,
        )
    }
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Parsed {
        batches: outcome.batches,
        report: outcome.report,
    })
}

/// What submitting rows gave.
pub(crate) enum Submitted {
    /// Acknowledged: durable in the write-ahead log.
    Accepted,
    /// Dropped and counted under a revoked key; the reason names workspace, cluster and key.
    Dropped(u64, String),
}

/// The idempotency key of an ingestion request: the client's `x-ms-client-request-id` (which
/// Azure's SDKs keep across the retries of one request), bound to the route and to a digest of
/// the body as sent (its `Content-Encoding` and bytes), so that a client reusing an id for
/// other rows is not taken for a retry. `None` when the client sent no id.
///
/// The digest is of the bytes as sent, not decompressed: a retry sends the same bytes (the
/// Azure SDK compresses a chunk once and its retry policy sends that request again), and a
/// compressed body is several times shorter, so the digest costs that much less (SHA-256 of
/// the decompressed bodies took 5% of a loaded server's CPU).
pub(crate) fn request_key(headers: &HeaderMap, route: &str, body: &Received) -> Option<String> {
    use sha2::Digest;
    let id = header(headers, "x-ms-client-request-id")?;
    let mut digest = sha2::Sha256::new();
    digest.update((route.len() as u64).to_le_bytes());
    digest.update(route.as_bytes());
    digest.update((body.encoding.len() as u64).to_le_bytes());
    digest.update(body.encoding.as_bytes());
    digest.update(&body.sent);
    let digest = digest.finalize();
    let hex = hex::encode(&digest[..16]);
    // Ids are short (a GUID); a longer one is cut, the digest still tells the bodies apart.
    let id: String = id.chars().take(128).collect();
    Some(format!("{id}:{hex}"))
}

/// Hands `records` to `workspace`'s writer and waits for the outcome; counts it in the
/// metrics. A request whose `key` was acknowledged before is acknowledged again without
/// storing its rows twice (counted as `logvault_duplicate_requests_total`).
pub(crate) async fn submit(
    state: &AppState,
    workspace: &str,
    protocol: Protocol,
    records: Vec<(String, RecordBatch)>,
    body_bytes: usize,
    flavor: Flavor,
    key: Option<String>,
) -> Result<Submitted, ApiError> {
    let metrics = &state.metrics;
    match state.hub.append(workspace, records, key).await {
        Ok(HubAnswer {
            appended: Appended::Accepted { .. },
            duplicate: true,
        }) => {
            metrics.add(
                "logvault_duplicate_requests_total",
                vec![
                    ("workspace", workspace.to_owned()),
                    ("protocol", protocol.label().to_owned()),
                ],
                1.0,
            );
            Ok(Submitted::Accepted)
        }
        Ok(HubAnswer {
            appended: Appended::Accepted { rows },
            ..
        }) => {
            metrics.ingested(workspace, protocol.label(), rows, body_bytes as u64);
            Ok(Submitted::Accepted)
        }
        Ok(HubAnswer {
            appended: Appended::Dropped { rows, reason },
            ..
        }) => {
            metrics.dropped(workspace, protocol.label(), rows);
            Ok(Submitted::Dropped(rows, reason))
        }
        Err(e) => {
            if matches!(
                e,
                crate::hub::HubError::WorkspaceBusy { .. } | crate::hub::HubError::ServerBusy
            ) {
                metrics.add(
                    "logvault_backpressure_total",
                    vec![
                        ("workspace", workspace.to_owned()),
                        ("protocol", protocol.label().to_owned()),
                    ],
                    1.0,
                );
            }
            Err(ApiError::from_hub(&state.engine, e).flavor(flavor))
        }
    }
}

/// The refusal of rows dropped under a revoked key: 403, not retried by clients, naming the
/// workspace, cluster and key.
pub(crate) fn revoked(rows: u64, reason: &str, flavor: Flavor) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "CustomerManagedKeyRevoked",
        format!("{rows} rows were dropped: {reason}"),
    )
    .flavor(flavor)
}

/// A header's value as text.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The workspace a request without a rule writes: the `x-logvault-workspace` header, else the
/// token's workspace.
pub(crate) fn target_workspace(
    headers: &HeaderMap,
    principal: &crate::tokens::Principal,
    flavor: Flavor,
) -> Result<String, ApiError> {
    header(headers, "x-logvault-workspace")
        .map(str::to_owned)
        .or_else(|| principal.workspace.clone())
        .ok_or_else(|| {
            ApiError::bad_request(
                "name the workspace with the x-logvault-workspace header (or use a token for \
                 one workspace)",
            )
            .flavor(flavor)
        })
}

/// Checks that `workspace` exists (404 otherwise).
pub(crate) async fn known_workspace(
    state: &AppState,
    workspace: &str,
    flavor: Flavor,
) -> Result<(), ApiError> {
    let name = workspace.to_owned();
    crate::http::blocking(state, move |engine| {
        engine.control().get_workspace(&name).map(|_| ())
    })
    .await?
    .map_err(|e| crate::http::errors::engine_error(&state.engine, &e.into()).flavor(flavor))
}
