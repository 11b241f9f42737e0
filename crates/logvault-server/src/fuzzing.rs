//! The decoders of the ingestion endpoints without a server, for the AFL++ drivers of
//! `fuzz/afl` (docs/reliability.md, "Fuzzing"): the same functions the endpoints call, the
//! HTTP layer (authentication, body limits, gzip, the write-ahead log) left out. Not an API:
//! hidden from the documentation, no stability.

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::http::errors::ApiError;
use crate::ingest::{bulk, otlp};

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
    let (batches, rejected) = bulk::parse_tables(&actions.tables, &clock)?;
    let (errors, items) = bulk::answers(actions, &rejected);
    Ok(BulkOutcome {
        batches,
        errors,
        items,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn received() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn bulk_rows_answers_every_action_and_stores_the_created_documents() {
        let body = [
            r#"{"index":{"_index":"web-2026.03.01"}}"#,
            r#"{"@timestamp":"2026-03-01T10:00:00Z","status":200}"#,
            r#"{"delete":{"_index":"web-2026.03.01","_id":"x1"}}"#,
            r#"{"create":{}}"#,
            r#"[1, 2]"#,
            r#"{"index":{}}"#,
            r#"{"status":404}"#,
        ]
        .join("\n");
        // Without an index in the path, the last action has none: its item fails.
        let out = bulk_rows(body.as_bytes(), None, received()).unwrap();
        let statuses: Vec<u64> = out
            .items
            .iter()
            .map(|i| {
                i.as_object().unwrap().values().next().unwrap()["status"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(statuses, vec![201, 400, 400, 400]);
        assert!(out.errors);
        let rows: usize = out.batches.iter().map(|(_, b)| b.num_rows()).sum();
        assert_eq!(rows, 1);
        // Posted to /logs-default/_bulk, it goes to that table.
        let out = bulk_rows(body.as_bytes(), Some("logs-default"), received()).unwrap();
        let tables: Vec<&str> = out.batches.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(tables, vec!["logs_default", "web_2026_03_01"]);
        let refused = bulk_rows(b"{\"index\":{}}", None, received()).unwrap_err();
        assert_eq!(refused.status, 400);
        assert!(
            refused.message.contains("without its document"),
            "{refused:?}"
        );
    }

    #[test]
    fn otlp_rows_gives_one_row_per_log_record_or_a_400() {
        let body = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
            {"timeUnixNano":"1772359200000000000","body":{"stringValue":"a"}},{}]}]}]}"#;
        let (records, batches) = otlp_rows(body.as_bytes(), true, "OTelLogs", received()).unwrap();
        assert_eq!(records, 2);
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
        let refused = otlp_rows(b"{\"resourceLogs\":5}", true, "OTelLogs", received()).unwrap_err();
        assert_eq!(refused.status, 400);
        assert!(refused.message.contains("OTLP/JSON"), "{refused:?}");
        let refused = otlp_rows(&[0x0a, 0xff], false, "OTelLogs", received()).unwrap_err();
        assert_eq!(refused.status, 400);
        assert!(
            refused.message.contains("ExportLogsServiceRequest"),
            "{refused:?}"
        );
    }
}
