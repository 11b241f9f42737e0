//! The fixture of the `partition` and reshaping tests: an `Events` table stored in the session
//! (rows the planner cannot read) and the same rows written as a `datatable` (rows it computes
//! while planning). The two plans differ and must agree.

use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;

use crate::common::{run_in, schema, texts, with_table};

/// State, EventType, Deaths.
const ROWS: [(&str, &str, i64); 6] = [
    ("AR", "Heat", 3),
    ("AR", "Wind", 1),
    ("AZ", "Flood", 2),
    ("AZ", "Flood", 4),
    ("AZ", "Lightning", 1),
    ("AR", "Wind", 0),
];

pub(crate) fn table() -> SessionContext {
    let schema = Arc::new(Schema::new(vec![
        Field::new("State", DataType::Utf8, false),
        Field::new("EventType", DataType::Utf8, false),
        Field::new("Deaths", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(ROWS.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(ROWS.iter().map(|r| r.1))),
            Arc::new(Int64Array::from_iter_values(ROWS.iter().map(|r| r.2))),
        ],
    )
    .unwrap();
    with_table("Events", batch)
}

/// The same rows as a `datatable`, bound to `Events`.
pub(crate) fn constant() -> String {
    let values: Vec<String> = ROWS
        .iter()
        .map(|(s, e, d)| format!("'{s}', '{e}', {d}"))
        .collect();
    format!(
        "let Events = datatable(State:string, EventType:string, Deaths:long) [{}];\n",
        values.join(", ")
    )
}

/// Runs `query` over the stored table and over the constant rows; both answers, rows sorted.
pub(crate) async fn both(query: &str) -> (Vec<String>, Vec<Vec<String>>, Vec<Vec<String>>) {
    let stored = run_in(&table(), query)
        .await
        .unwrap_or_else(|e| panic!("{query}\n{e}"));
    let text = format!("{}{query}", constant());
    let computed = run_in(&SessionContext::new(), &text)
        .await
        .unwrap_or_else(|e| panic!("{text}\n{e}"));
    assert_eq!(schema(&stored), schema(&computed), "{query}");
    let (mut a, mut b) = (texts(&stored), texts(&computed));
    a.sort();
    b.sort();
    (schema(&stored), a, b)
}

pub(crate) fn rows(r: &[&[&str]]) -> Vec<Vec<String>> {
    let mut v: Vec<Vec<String>> = r
        .iter()
        .map(|x| x.iter().map(|s| (*s).to_owned()).collect())
        .collect();
    v.sort();
    v
}
