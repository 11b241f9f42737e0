//! The repository's real Log Analytics exports (`data/azure_la`, MIT) as tables with the
//! declared schemas of `tests/data/la_table_schemas.json`: every declared column, its values
//! converted from the export's text (a value that does not convert is null).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, new_null_array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use logvault_kql::KustoType;
use logvault_kql::udf::value::{Val, build_column, parse_dynamic_text};
use serde_json::Value;

const SCHEMAS: &str = include_str!("../data/la_table_schemas.json");

/// The exports each table is loaded from (relative to `data/azure_la`).
pub(crate) const SOURCES: &[(&str, &[&str])] = &[
    ("Syslog", &["msticpy/syslog_data.csv"]),
    ("SigninLogs", &["sentinel_training_lab/sign-in_adelete.csv"]),
    (
        "AzureActivity",
        &[
            "sentinel_training_lab/azure_activity.csv",
            "sentinel_training_lab/azureActivity_adele.csv",
        ],
    ),
    (
        "OfficeActivity",
        &["sentinel_training_lab/office_activity.csv"],
    ),
    ("Heartbeat", &["msticpy/host_hb.csv"]),
    (
        "SecurityEvent",
        &[
            "msticpy/all_events_df.jsonl",
            "msticpy/host_logons.csv",
            "msticpy/processes_on_host.csv",
        ],
    ),
];

fn root() -> String {
    format!("{}/../../data/azure_la", env!("CARGO_MANIFEST_DIR"))
}

/// A header as the column name it stands for (`TimeGenerated [UTC]` is `TimeGenerated`).
fn clean_header(h: &str) -> String {
    let h = h.trim_start_matches('\u{feff}').trim();
    match h.find(" [") {
        Some(i) if h.ends_with(']') => h[..i].to_owned(),
        _ => h.to_owned(),
    }
}

/// Rows of an export as column name to text (`None` for empty cells).
fn read_rows(path: &str) -> Vec<HashMap<String, String>> {
    let full = format!("{}/{path}", root());
    let mut out = Vec::new();
    if path.ends_with(".jsonl") {
        for line in std::fs::read_to_string(&full).unwrap().lines() {
            let Ok(Value::Object(m)) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let row = m
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (clean_header(&k), text)
                })
                .collect();
            out.push(row);
        }
        return out;
    }
    let file = File::open(&full).unwrap();
    let format = arrow::csv::reader::Format::default().with_header(true);
    let (inferred, _) = format
        .infer_schema(BufReader::new(File::open(&full).unwrap()), Some(0))
        .unwrap();
    let names: Vec<String> = inferred
        .fields()
        .iter()
        .map(|f| clean_header(f.name()))
        .collect();
    let schema = Arc::new(Schema::new(
        (0..names.len())
            .map(|i| Field::new(format!("c{i}"), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let reader = arrow::csv::ReaderBuilder::new(schema)
        .with_header(true)
        .build(BufReader::new(file))
        .unwrap();
    for batch in reader {
        let batch = batch.unwrap();
        for r in 0..batch.num_rows() {
            let mut row = HashMap::new();
            for (i, name) in names.iter().enumerate() {
                let col = batch.column(i).as_string::<i32>();
                if !name.is_empty() && !col.is_null(r) && !col.value(r).is_empty() {
                    row.insert(name.clone(), col.value(r).to_owned());
                }
            }
            out.push(row);
        }
    }
    out
}

/// A value of Kusto type `ty` from an export's text.
fn typed(text: Option<&String>, ty: KustoType) -> Val {
    match text {
        None => Val::Null,
        Some(t) if ty == KustoType::Dynamic => Val::Dynamic(parse_dynamic_text(t)),
        Some(t) => Val::Str(t.clone()),
    }
}

/// The table `name` with its declared schema, loaded from its exports.
pub(crate) fn load_table(name: &str) -> (Arc<Schema>, RecordBatch) {
    let schemas: Value = serde_json::from_str(SCHEMAS).unwrap();
    let columns: Vec<(String, KustoType)> = schemas[name]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["type"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let files = SOURCES
        .iter()
        .find(|(t, _)| *t == name)
        .map(|(_, f)| *f)
        .unwrap_or(&[]);
    let rows: Vec<HashMap<String, String>> = files.iter().flat_map(|f| read_rows(f)).collect();
    let schema = Arc::new(Schema::new(
        columns.iter().map(|(n, t)| t.field(n)).collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|(n, t)| {
            if rows.is_empty() {
                return new_null_array(&t.arrow(), 0);
            }
            let vals: Vec<Val> = rows.iter().map(|r| typed(r.get(n), *t)).collect();
            build_column(&vals, *t)
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays).unwrap();
    (schema, batch)
}

/// A session with every table that has sample data, and the empty tables of the others.
pub(crate) fn sample_session() -> SessionContext {
    let mut config = datafusion::prelude::SessionConfig::new();
    config.options_mut().sql_parser.enable_ident_normalization = false;
    let ctx = SessionContext::new_with_config(config);
    let schemas: Value = serde_json::from_str(SCHEMAS).unwrap();
    for name in schemas.as_object().unwrap().keys() {
        let (schema, batch) = load_table(name);
        let batches = if batch.num_rows() == 0 {
            vec![]
        } else {
            vec![batch]
        };
        let t = MemTable::try_new(schema, vec![batches]).unwrap();
        ctx.register_table(
            datafusion::common::TableReference::bare(name.as_str()),
            Arc::new(t),
        )
        .unwrap();
    }
    ctx
}
