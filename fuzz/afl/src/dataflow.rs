//! The targets in the crates that link DataFusion: KQL's lexer, parser and planner
//! (`logvault-kql`, as `crates/logvault-kql/tests/it/fuzz.rs` drives them), and the server's
//! OTLP (JSON and protobuf) and Elasticsearch `_bulk` decoders (`logvault-server`'s hidden
//! `fuzzing` module: the functions its endpoints call, without HTTP). Each one panics naming
//! the invariant it finds broken.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, TimeZone as _, Utc};
use datafusion::arrow::datatypes::Schema;
use datafusion::logical_expr::logical_plan::builder::table_source;
use logvault_kql::{KustoType, PlanOptions, TableMap};
use logvault_server::fuzzing::{self, Refusal};
use serde_json::Value;

/// The 29 Log Analytics tables whose columns the KQL crate's tests plan real queries against
/// (`tests/data/la_table_schemas.json`), empty.
const LA_SCHEMAS: &str =
    include_str!("../../../crates/logvault-kql/tests/data/la_table_schemas.json");

/// The tables KQL queries plan against: `T` with a column of every Kusto type (the proptest
/// suite's `x` and `y` among them), `S` (`x`, `y`) for joins and unions, and the Log Analytics
/// tables of the 64 real queries the run is seeded with.
fn tables() -> &'static TableMap {
    static TABLES: OnceLock<TableMap> = OnceLock::new();
    TABLES.get_or_init(|| {
        let columns = [
            ("TimeGenerated", KustoType::DateTime),
            ("x", KustoType::Long),
            ("y", KustoType::String),
            ("d", KustoType::Dynamic),
            ("b", KustoType::Bool),
            ("i", KustoType::Int),
            ("r", KustoType::Real),
            ("m", KustoType::Decimal),
            ("g", KustoType::Guid),
            ("t", KustoType::Timespan),
        ];
        let t = Schema::new(
            columns
                .iter()
                .map(|(n, ty)| ty.field(n))
                .collect::<Vec<_>>(),
        );
        let s = Schema::new(vec![
            KustoType::Long.field("x"),
            KustoType::String.field("y"),
        ]);
        let mut tables = TableMap::new();
        tables.insert("T", table_source(&Arc::new(t)));
        tables.insert("S", table_source(&Arc::new(s)));
        let schemas: Value = serde_json::from_str(LA_SCHEMAS)
            .unwrap_or_else(|e| panic!("kql: la_table_schemas.json: {e}"));
        for (name, table) in schemas.as_object().into_iter().flatten() {
            let fields: Vec<_> = table["columns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    let ty: KustoType = c["type"].as_str()?.parse().ok()?;
                    Some(ty.field(c["name"].as_str()?))
                })
                .collect();
            tables.insert(name.clone(), table_source(&Arc::new(Schema::new(fields))));
        }
        tables
    })
}

/// The query's start time: 2024-01-01T00:00:00Z, as in the KQL crate's tests.
const NOW_TICKS: i64 = 1_704_067_200 * 10_000_000;

/// Builds the KQL tables before the fork server starts.
pub fn warm_up_kql() {
    let _ = tables();
}

/// KQL: the lexer, the parser and the planner return a result, never panic; an error says
/// something; a query that parses was lexed; a plan's Kusto schema has one column per column
/// of its DataFusion schema, and the plan prints.
pub fn kql(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lexed = logvault_kql::lexer::tokenize(&text);
    let parsed = logvault_kql::parse(&text);
    let options = PlanOptions {
        now_ticks: NOW_TICKS,
        time_range: None,
    };
    let query = match (parsed, lexed) {
        (Ok(query), Ok(_)) => query,
        (Ok(_), Err(e)) => panic!("kql: {text:?} parses but does not lex: {e}"),
        (Err(e), _) => {
            assert!(
                !e.to_string().trim().is_empty(),
                "kql: {text:?}: an empty error"
            );
            return;
        }
    };
    // The syntax tree prints.
    let _ = format!("{query:?}");
    match logvault_kql::plan::plan_parsed(&query, tables(), &options) {
        Ok(plan) => {
            let fields = plan.plan.schema().fields().len();
            assert_eq!(
                plan.schema.len(),
                fields,
                "kql: {text:?}: {} Kusto columns for {fields} DataFusion columns",
                plan.schema.len()
            );
            let _ = format!("{}", plan.plan.display_indent_schema());
        }
        Err(e) => {
            let located = e.locate(&text).to_string();
            assert!(!located.trim().is_empty(), "kql: {text:?}: an empty error");
        }
    }
}

/// The time the decoders' rows are received at.
fn received() -> DateTime<Utc> {
    Utc.timestamp_opt(1_772_359_200, 0)
        .single()
        .unwrap_or_default()
}

fn refused(what: &str, e: &Refusal) {
    assert!(
        e.status == 400 && !e.message.trim().is_empty(),
        "{what}: refused with {} and {:?}: a refusal of the body is a 400 that says why",
        e.status,
        e.message
    );
}

/// OTLP: a body decodes into exactly one row per log record, or is refused with a 400 that
/// says why.
pub fn otlp(data: &[u8], json: bool) {
    let what = if json { "otlp-json" } else { "otlp-proto" };
    match fuzzing::otlp_rows(data, json, "OTelLogs", received()) {
        Ok((records, batches)) => {
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            assert_eq!(
                rows, records,
                "{what}: {records} log records gave {rows} rows"
            );
        }
        Err(e) => refused(what, &e),
    }
}

/// `_bulk`, posted to `/_bulk` and to `/logs-default/_bulk`: the request is refused whole with
/// a 400 that says why, or every item is answered 201 or 400 (with an error saying why),
/// `errors` says whether one failed, and the rows are exactly the documents answered 201.
pub fn bulk(data: &[u8]) {
    for path_index in [None, Some("logs-default")] {
        match fuzzing::bulk_rows(data, path_index, received()) {
            Ok(outcome) => {
                let mut created = 0usize;
                let mut failed = false;
                for item in &outcome.items {
                    let answer = item
                        .as_object()
                        .filter(|o| o.len() == 1)
                        .and_then(|o| o.values().next())
                        .unwrap_or_else(|| panic!("bulk: an item is not one action: {item}"));
                    match answer.get("status").and_then(Value::as_u64) {
                        Some(201) => created += 1,
                        Some(400) => {
                            failed = true;
                            let reason = answer
                                .pointer("/error/reason")
                                .and_then(Value::as_str)
                                .unwrap_or_default();
                            assert!(
                                !reason.trim().is_empty(),
                                "bulk: a failed item without a reason: {item}"
                            );
                        }
                        _ => panic!("bulk: an item answered neither 201 nor 400: {item}"),
                    }
                }
                assert_eq!(
                    outcome.errors, failed,
                    "bulk: `errors` is not whether one failed"
                );
                let rows: usize = outcome.batches.iter().map(|(_, b)| b.num_rows()).sum();
                assert_eq!(
                    rows, created,
                    "bulk ({path_index:?}): {created} items created, {rows} rows stored"
                );
            }
            Err(e) => refused("bulk", &e),
        }
    }
}
