//! The 64 real Log Analytics queries of `tests/data/la_queries/` (from Microsoft's query
//! examples and Azure Sentinel's hunting queries): each plans against the table schemas of
//! `tests/data/la_table_schemas.json` with exactly the result schema (names and Kusto types)
//! that Kusto's own analyzer gives, recorded in `index.json`.

use std::sync::Arc;

use arrow::datatypes::Schema;
use datafusion::datasource::{MemTable, provider_as_source};
use logvault_kql::{KustoType, PlanOptions, TableMap, plan_query};
use serde_json::Value;

const INDEX: &str = include_str!("../data/la_queries/index.json");
const SCHEMAS: &str = include_str!("../data/la_table_schemas.json");

/// Every table of the schema file, empty, with its declared Kusto types.
pub(crate) fn schema_tables() -> TableMap {
    let schemas: Value = serde_json::from_str(SCHEMAS).unwrap();
    let mut map = TableMap::new();
    for (name, t) in schemas.as_object().unwrap() {
        let fields: Vec<_> = t["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let ty: KustoType = c["type"].as_str().unwrap().parse().unwrap();
                ty.field(c["name"].as_str().unwrap())
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let table = MemTable::try_new(schema, vec![vec![]]).unwrap();
        map.insert(name.clone(), provider_as_source(Arc::new(table)));
    }
    map
}

/// The query text of an index entry.
pub(crate) fn query_text(entry: &Value) -> String {
    let file = entry["file"]
        .as_str()
        .unwrap()
        .trim_start_matches("queries/");
    let path = format!(
        "{}/tests/data/la_queries/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn real_queries_plan_with_kustos_result_schema() {
    let index: Value = serde_json::from_str(INDEX).unwrap();
    let entries = index.as_array().unwrap();
    assert_eq!(entries.len(), 64);
    let tables = schema_tables();
    // Queries that need the clock run as of a time inside the sample data's range.
    let options = PlanOptions::at(
        chrono::DateTime::parse_from_rfc3339("2021-05-01T00:00:00Z")
            .unwrap()
            .into(),
    );
    let mut failures = Vec::new();
    for e in entries {
        let id = e["id"].as_str().unwrap();
        let text = query_text(e);
        let want: Vec<String> = e["result_schema"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        match plan_query(&text, &tables, &options) {
            Ok(plan) => {
                let got: Vec<String> = plan
                    .schema
                    .iter()
                    .map(|c| format!("{}:{}", c.name, c.ty))
                    .collect();
                if got != want {
                    failures.push(format!("{id}: schema {got:?}, Kusto says {want:?}"));
                }
            }
            Err(err) => failures.push(format!("{id}: {err}")),
        }
    }
    println!(
        "real queries planned with Kusto's schema: {} of 64",
        64 - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
