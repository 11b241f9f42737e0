//! Elasticsearch's bulk API: `POST /_bulk` and `POST /{index}/_bulk`, NDJSON action and
//! document pairs. `index` and `create` store their document (`_type` is ignored); `delete` and
//! `update` are answered per item with an error (logs are append-only). The index names the
//! table: characters a table name cannot hold become `_`, and a name that does not start with a
//! letter gets `T_` in front (`rsyslog-2026.03.01` is `rsyslog_2026_03_01`); the
//! `x-logvault-table` header overrides it. The workspace comes from `x-logvault-workspace` or the
//! token. A document without `TimeGenerated` or `timestamp` takes its time from `@timestamp`.
//!
//! The reply is Elasticsearch's: `{"took", "errors", "items": [{"create": {"status": 201, ...}}]}`,
//! one item per action, in order, with per-item errors for documents that are not JSON objects.
//! Basic authentication with the token as the password is accepted (shippers send it).

use std::collections::BTreeMap;
use std::time::Instant;

use arrow::array::RecordBatch;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use logvault::ingest::{ErrorPolicy, Format};
use serde_json::{Map, Value, json};

use super::{Protocol, Submitted, header, known_workspace, parse_now, revoked, submit};
use crate::http::errors::{ApiError, Flavor};
use crate::http::{Shared, auth};
use crate::roles::Permission;

/// `POST /_bulk`.
pub(crate) async fn bulk(State(state): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    run(&state, None, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /{index}/_bulk`.
pub(crate) async fn bulk_index(
    State(state): State<Shared>,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run(&state, Some(index), &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// The table an index's documents go to.
pub(crate) fn table_of_index(index: &str) -> String {
    let mut name: String = index
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert_str(0, "T_");
    }
    name.truncate(63);
    name
}

/// One action of the request.
struct Item {
    /// `index`, `create`, `delete` or `update`.
    op: String,
    index: Option<String>,
    id: Option<String>,
    /// The table and the document's line among that table's lines, if it is stored.
    slot: Option<(String, usize)>,
    /// Why it failed, if it did.
    error: Option<(u16, &'static str, String)>,
}

fn document_line(doc: &Value) -> Option<String> {
    let obj = doc.as_object()?;
    let has_time = obj
        .keys()
        .any(|k| k.eq_ignore_ascii_case("TimeGenerated") || k.eq_ignore_ascii_case("timestamp"));
    if has_time || !obj.contains_key("@timestamp") {
        return Some(doc.to_string());
    }
    let mut row: Map<String, Value> = obj.clone();
    if let Some(t) = obj.get("@timestamp") {
        row.insert("TimeGenerated".into(), t.clone());
    }
    Some(Value::Object(row).to_string())
}

async fn run(
    state: &Shared,
    path_index: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let flavor = Flavor::Elastic;
    let principal = auth::authenticate(state, headers, flavor)?;
    let workspace = super::target_workspace(headers, &principal, flavor)?;
    auth::check(&principal, Permission::Ingest, Some(&workspace), flavor)?;
    known_workspace(state, &workspace, flavor).await?;
    let received = crate::http::body::receive(state, headers, body, flavor).await?;
    let key = super::request_key(
        headers,
        &format!("bulk:{workspace}/{}", path_index.as_deref().unwrap_or("")),
        &received,
    );
    let payload = received.into_payload();
    let size = payload.len();
    let forced_table = header(headers, "x-logvault-table");
    let actions = actions(&payload, path_index.as_deref(), forced_table)?;

    let clock = state.engine.clock().clone();
    let (actions, parsed) = crate::http::decoding(state, "the parsing thread", move || {
        let parsed = parse_tables(&actions.tables, clock.as_ref());
        (actions, parsed)
    })
    .await?;
    let (records, rejected) = parsed?;
    let stored: usize = records.iter().map(|(_, b)| b.num_rows()).sum();
    if stored > 0 {
        match submit(
            state,
            &workspace,
            Protocol::Bulk,
            records,
            size,
            flavor,
            key,
        )
        .await?
        {
            Submitted::Accepted => {}
            Submitted::Dropped(rows, reason) => return Err(revoked(rows, &reason, flavor)),
        }
    }
    let (errors, out) = answers(actions, &rejected);
    Ok(axum::Json(json!({
        "took": started.elapsed().as_millis() as u64,
        "errors": errors,
        "items": out,
    }))
    .into_response())
}

/// The actions of a request and the documents stored, by table.
pub(crate) struct Actions {
    items: Vec<Item>,
    /// Each table's document lines, in order.
    pub(crate) tables: BTreeMap<String, Vec<String>>,
}

/// Splits a bulk body into its actions and the document lines each table stores: the index
/// (`forced_table` first, then the action's `_index`, then `path_index`) names the table.
///
/// # Errors
/// A line that is not an action, an unknown action, a body ending after an action without
/// its document: the request is refused whole, as Elasticsearch does.
pub(crate) fn actions(
    payload: &[u8],
    path_index: Option<&str>,
    forced_table: Option<&str>,
) -> Result<Actions, ApiError> {
    let flavor = Flavor::Elastic;
    let mut items: Vec<Item> = Vec::new();
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut lines = payload
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace));
    while let Some(action_line) = lines.next() {
        let action: Value = serde_json::from_slice(action_line).map_err(|e| {
            ApiError::bad_request(format!("a bulk action line is not JSON: {e}")).flavor(flavor)
        })?;
        let Some((op, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
            return Err(ApiError::bad_request(
                "a bulk action line must be an object with one action",
            )
            .flavor(flavor));
        };
        let op = op.clone();
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .or(path_index)
            .map(str::to_owned);
        let id = meta.get("_id").and_then(Value::as_str).map(str::to_owned);
        let mut item = Item {
            op: op.clone(),
            index: index.clone(),
            id,
            slot: None,
            error: None,
        };
        match op.as_str() {
            "index" | "create" => {
                let Some(doc_line) = lines.next() else {
                    return Err(ApiError::bad_request(
                        "the bulk request ends after an action without its document",
                    )
                    .flavor(flavor));
                };
                let table = match (forced_table, &index) {
                    (Some(t), _) => t.to_owned(),
                    (None, Some(index)) => table_of_index(index),
                    (None, None) => {
                        item.error = Some((
                            400,
                            "action_request_validation_exception",
                            "index is missing".into(),
                        ));
                        items.push(item);
                        continue;
                    }
                };
                match serde_json::from_slice::<Value>(doc_line)
                    .ok()
                    .as_ref()
                    .and_then(document_line)
                {
                    Some(line) => {
                        let rows = tables.entry(table.clone()).or_default();
                        item.slot = Some((table, rows.len()));
                        rows.push(line);
                    }
                    None => {
                        item.error = Some((
                            400,
                            "document_parsing_exception",
                            "the document is not a JSON object".into(),
                        ));
                    }
                }
            }
            "update" => {
                // An update has a document line too; skip it.
                let _ = lines.next();
                item.error = Some((
                    400,
                    "illegal_argument_exception",
                    "logs are append-only: update is not supported".into(),
                ));
            }
            "delete" => {
                item.error = Some((
                    400,
                    "illegal_argument_exception",
                    "logs are append-only: delete is not supported".into(),
                ));
            }
            other => {
                return Err(
                    ApiError::bad_request(format!("unknown bulk action '{other}'")).flavor(flavor),
                );
            }
        }
        items.push(item);
    }
    Ok(Actions { items, tables })
}

/// The document lines the parser rejected, by table and line (from 0), with the reason.
pub(crate) type Rejected = BTreeMap<(String, usize), String>;

/// Parses each table's documents as JSON lines, on this thread (the handler calls it on a
/// blocking thread; the AFL++ driver through [`crate::fuzzing`]): the rows by table, and the
/// lines the parser rejected, which fail their items ([`answers`]).
///
/// # Errors
/// The parser's refusal of a table's documents as a whole.
pub(crate) fn parse_tables(
    tables: &BTreeMap<String, Vec<String>>,
    clock: &dyn logvault::core::Clock,
) -> Result<(Vec<(String, RecordBatch)>, Rejected), ApiError> {
    let mut records = Vec::new();
    let mut rejected = Rejected::new();
    for (table, rows) in tables {
        let parsed = parse_now(
            table,
            Bytes::from(rows.join("\n")),
            Format::JsonLines,
            ErrorPolicy::Skip,
            clock,
        )?;
        for e in &parsed.report.errors {
            // The report's lines count from 1.
            let line = usize::try_from(e.line.saturating_sub(1)).unwrap_or(usize::MAX);
            rejected.insert((table.clone(), line), e.reason.clone());
        }
        records.extend(parsed.batches.into_iter().map(|b| (table.clone(), b)));
    }
    Ok((records, rejected))
}

/// Whether an item failed, and the reply's items, one per action in order: created, or the
/// action's error, or the parser's reason for rejecting its document.
pub(crate) fn answers(actions: Actions, rejected: &Rejected) -> (bool, Vec<Value>) {
    let mut errors = false;
    let out: Vec<Value> = actions
        .items
        .into_iter()
        .map(|item| {
            let failure = item.error.clone().or_else(|| {
                let slot = item.slot.as_ref()?;
                rejected
                    .get(slot)
                    .map(|reason| (400, "document_parsing_exception", reason.clone()))
            });
            let mut body = json!({
                "_index": item.index.clone().unwrap_or_default(),
                "_id": item.id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
            });
            match failure {
                Some((status, kind, reason)) => {
                    errors = true;
                    body["status"] = json!(status);
                    body["error"] = json!({ "type": kind, "reason": reason });
                }
                None => {
                    body["status"] = json!(201);
                    body["result"] = json!("created");
                    body["_version"] = json!(1);
                    body["_shards"] = json!({ "total": 1, "successful": 1, "failed": 0 });
                }
            }
            json!({ item.op: body })
        })
        .collect();
    (errors, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_become_table_names() {
        assert_eq!(table_of_index("rsyslog-2026.03.01"), "rsyslog_2026_03_01");
        assert_eq!(table_of_index("Syslog"), "Syslog");
        assert_eq!(table_of_index("2026-logs"), "T_2026_logs");
        assert!(
            logvault::core::validate_name(
                logvault::core::NameKind::Table,
                &table_of_index(&"x".repeat(100))
            )
            .is_ok()
        );
    }

    #[test]
    fn at_timestamp_becomes_time_generated_unless_the_document_has_a_time() {
        let line = document_line(&json!({"@timestamp": "2026-03-01T00:00:00Z", "msg": "a"}))
            .unwrap_or_default();
        assert!(line.contains("\"TimeGenerated\":\"2026-03-01T00:00:00Z\""));
        let line = document_line(&json!({"@timestamp": "x", "timestamp": "2026-03-01T00:00:00Z"}))
            .unwrap_or_default();
        assert!(!line.contains("TimeGenerated"));
        assert!(document_line(&json!([1, 2])).is_none());
    }
}
