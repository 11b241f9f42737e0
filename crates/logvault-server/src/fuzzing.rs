//! The decoders of the ingestion endpoints without a server, for the AFL++ drivers of
//! `fuzz/afl` (docs/reliability.md, "Fuzzing"): the same functions the endpoints call, the
//! HTTP layer (authentication, body limits, gzip, the write-ahead log) left out. Not an API:
//! hidden from the documentation, no stability.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use logvault::ingest::{ErrorPolicy, Format};
use serde_json::Value;

use crate::http::errors::ApiError;
use crate::ingest::{bulk, otlp, parse_now};

/// A refusal: the HTTP status the endpoint answers with and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status (the decoders refuse with 400).
    pub status: u16,
    /// What the client is told.
    pub message: String,
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status.as_u16(),
            message: e.message,
        }
    }
}

/// An OTLP logs body (`POST /v1/logs`, protobuf, or JSON when `json`) as rows of `table`,
/// received at `received`: the number of log records the request holds and the batches.
///
/// # Errors
/// The endpoint's refusal.
pub fn otlp_rows(
    payload: &[u8],
    json: bool,
    table: &str,
    received: DateTime<Utc>,
) -> Result<(usize, Vec<RecordBatch>), Refusal> {
    Ok(otlp::decode_at(payload, json, table, received)?)
}

/// What `POST /_bulk` makes of a body.
#[derive(Debug)]
pub struct BulkOutcome {
    /// The rows, with their table.
    pub batches: Vec<(String, RecordBatch)>,
    /// The reply's `errors`.
    pub errors: bool,
    /// The reply's `items`, one per action.
    pub items: Vec<Value>,
}

/// A `_bulk` body (`POST /{path_index}/_bulk` when given) as the endpoint splits, parses and
/// answers it, received at `received`, without storing anything.
///
/// # Errors
/// The endpoint's refusal of the whole request.
pub fn bulk_rows(
    payload: &[u8],
    path_index: Option<&str>,
    received: DateTime<Utc>,
) -> Result<BulkOutcome, Refusal> {
    let clock = logvault::core::TestClock::new(received);
    let actions = bulk::actions(payload, path_index, None)?;
    let mut batches = Vec::new();
    let mut rejected: BTreeMap<(String, usize), String> = BTreeMap::new();
    for (table, rows) in &actions.tables {
        let parsed = parse_now(
            table,
            Bytes::from(rows.join("\n")),
            Format::JsonLines,
            ErrorPolicy::Skip,
            &clock,
        )?;
        bulk::reject(&mut rejected, table, &parsed.report);
        batches.extend(parsed.batches.into_iter().map(|b| (table.clone(), b)));
    }
    let (errors, items) = bulk::answers(actions, &rejected);
    Ok(BulkOutcome {
        batches,
        errors,
        items,
    })
}
