//! Conformance with the KQL reference documentation: 469 examples (query and documented
//! output) from MicrosoftDocs/dataexplorer-docs, copied into `tests/data/docs_examples.json`.
//!
//! Each example runs and its rows are compared with the documented ones: as a multiset unless
//! the query orders its rows; numbers within the precision shown, datetimes, timespans and
//! dynamic values parsed. The documentation has mistakes of its own and non-deterministic
//! examples (`rand()`, `now()`, `sample`): `tests/data/docs_expected_differ.txt` lists the
//! examples expected to differ, each with its reason. `tests/data/docs_passing.txt` lists the
//! examples that pass: the test fails when one of them stops passing. Run with
//! `KQL_DOCS_UPDATE=1` to rewrite that list after making more examples pass.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use datafusion::prelude::SessionContext;
use logvault_kql::KustoType;
use serde_json::Value;

use crate::common::{Output, run_in};
use crate::compare::{clean, row_matches};

const DATA: &str = include_str!("../data/docs_examples.json");
const PASSING: &str = include_str!("../data/docs_passing.txt");
const DIFFER: &str = include_str!("../data/docs_expected_differ.txt");

struct Example {
    id: String,
    query: String,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn examples() -> Vec<Example> {
    let v: Value = serde_json::from_str(DATA).expect("docs_examples.json");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for e in v["examples"].as_array().expect("examples") {
        let doc = e["doc"].as_str().unwrap_or("");
        let stem = doc
            .rsplit('/')
            .next()
            .unwrap_or(doc)
            .trim_end_matches(".md")
            .to_owned();
        let n = seen.entry(stem.clone()).or_insert(0);
        *n += 1;
        let cell = |c: &Value| match c {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        out.push(Example {
            id: format!("{stem}#{n}"),
            query: e["query"].as_str().unwrap_or("").to_owned(),
            columns: e["expected_columns"]
                .as_array()
                .map(|a| a.iter().map(|c| clean(&cell(c))).collect())
                .unwrap_or_default(),
            // A Markdown table row whose last cells are empty (`|4|||`) was copied without
            // them: such a row is padded with empty cells to the table's width (when another row
            // shows that width).
            rows: e["expected_rows"]
                .as_array()
                .map(|rows| {
                    let columns = e["expected_columns"].as_array().map_or(0, Vec::len);
                    let full = rows
                        .iter()
                        .any(|r| r.as_array().is_some_and(|r| r.len() == columns));
                    let width = if full { columns } else { 0 };
                    rows.iter()
                        .map(|r| {
                            let mut row: Vec<String> = r
                                .as_array()
                                .map(|r| r.iter().map(cell).collect())
                                .unwrap_or_default();
                            if !row.is_empty() && row.len() < width {
                                row.resize(width, String::new());
                            }
                            row
                        })
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    out
}

/// Whether the query fixes the order of its rows.
fn ordered(query: &str) -> bool {
    let q = query.to_ascii_lowercase();
    [
        "sort by",
        "order by",
        "| top ",
        "|top ",
        "serialize",
        "range ",
    ]
    .iter()
    .any(|k| q.contains(k))
        && !q.contains("summarize")
        // A partition's output is the union of its subqueries', in no order.
        && !q.contains("| partition")
}

/// Compares the output with the documented rows; `Err` says how they differ.
fn check(ex: &Example, out: &Output) -> Result<(), String> {
    let types: Vec<KustoType> = out.schema.iter().map(|c| c.ty).collect();
    let names: Vec<&str> = out.schema.iter().map(|c| c.name.as_str()).collect();
    let width = ex.rows.first().map_or(names.len(), Vec::len);
    let map: Vec<usize> = if width == names.len() {
        (0..width).collect()
    } else if ex.columns.len() == width
        && let Some(m) = ex
            .columns
            .iter()
            .map(|c| names.iter().position(|n| n == c))
            .collect::<Option<Vec<usize>>>()
    {
        m
    } else {
        return Err(format!(
            "the documentation shows {width} columns {:?}, the result has {} {:?}",
            ex.columns,
            names.len(),
            names
        ));
    };
    if ex.rows.len() != out.rows.len() {
        return Err(format!(
            "the documentation shows {} rows, the result has {}",
            ex.rows.len(),
            out.rows.len()
        ));
    }
    if ordered(&ex.query) {
        for (i, (e, a)) in ex.rows.iter().zip(&out.rows).enumerate() {
            if !row_matches(e, a, &types, &map) {
                return Err(format!("row {i}: documented {e:?}, got {:?}", show(a)));
            }
        }
        return Ok(());
    }
    let mut used = vec![false; out.rows.len()];
    for e in &ex.rows {
        let found = out
            .rows
            .iter()
            .enumerate()
            .find(|(i, a)| !used[*i] && row_matches(e, a, &types, &map));
        match found {
            Some((i, _)) => used[i] = true,
            None => {
                let sample: Vec<Vec<String>> = out.rows.iter().take(3).map(|r| show(r)).collect();
                return Err(format!(
                    "documented row {e:?} not in the result (first rows: {sample:?})"
                ));
            }
        }
    }
    Ok(())
}

fn show(r: &[logvault_kql::udf::value::Val]) -> Vec<String> {
    r.iter().map(|v| v.to_text()).collect()
}

fn list(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once('\t') {
            Some((id, why)) => (id.trim().to_owned(), why.trim().to_owned()),
            None => (l.to_owned(), String::new()),
        })
        .collect()
}

async fn run_one(query: String) -> Result<Output, String> {
    let task = tokio::spawn(async move {
        let ctx = SessionContext::new();
        run_in(&ctx, &query).await
    });
    match tokio::time::timeout(Duration::from_secs(60), task).await {
        Ok(Ok(r)) => r,
        Ok(Err(join)) => Err(format!("PANIC: {join}")),
        Err(_) => Err("timed out after 60 s".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_examples_conformance() {
    let examples = examples();
    assert_eq!(examples.len(), 469, "the copied documentation examples");
    let passing: BTreeSet<String> = list(PASSING).into_keys().collect();
    let differ = list(DIFFER);
    for (id, why) in &differ {
        assert!(
            !why.is_empty(),
            "{id}: an expected difference needs its reason"
        );
        assert!(
            examples.iter().any(|e| e.id == *id),
            "{id}: no such example"
        );
        assert!(
            !passing.contains(id),
            "{id} is both passing and expected to differ"
        );
    }
    let mut report = String::new();
    let mut passed = BTreeSet::new();
    let mut panics = Vec::new();
    // Two at a time (the runtime's two workers): each example is independent, in its own
    // session; the outcomes are read in the examples' order.
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(2));
    let runs: Vec<_> = examples
        .iter()
        .map(|ex| {
            let (query, slots) = (ex.query.clone(), slots.clone());
            tokio::spawn(async move {
                let _slot = slots.acquire_owned().await;
                run_one(query).await
            })
        })
        .collect();
    for (ex, run) in examples.iter().zip(runs) {
        let result = run
            .await
            .unwrap_or_else(|join| Err(format!("PANIC: {join}")));
        let outcome = match &result {
            Ok(out) => check(ex, out),
            Err(e) => Err(e.clone()),
        };
        match outcome {
            Ok(()) => {
                passed.insert(ex.id.clone());
                let _ = writeln!(report, "PASS {}", ex.id);
            }
            Err(e) => {
                if e.starts_with("PANIC") {
                    panics.push(ex.id.clone());
                }
                let tag = if differ.contains_key(&ex.id) {
                    "DIFFER"
                } else {
                    "FAIL"
                };
                let first = e.lines().next().unwrap_or("");
                let _ = writeln!(report, "{tag} {}: {}", ex.id, first);
            }
        }
    }
    let dir = env!("CARGO_TARGET_TMPDIR");
    let path = format!("{dir}/kql_docs_report.txt");
    let _ = std::fs::write(&path, &report);
    let total = examples.len();
    println!(
        "KQL documentation examples: {} of {total} pass ({:.1}%), {} expected to differ; report: {path}",
        passed.len(),
        100.0 * passed.len() as f64 / total as f64,
        differ.len()
    );
    assert!(panics.is_empty(), "examples panicked: {panics:?}");
    if std::env::var_os("KQL_DOCS_UPDATE").is_some() {
        let text: String = passed.iter().map(|id| format!("{id}\n")).collect();
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docs_passing.txt");
        std::fs::write(
            file,
            format!(
                "# Documentation examples that pass (KQL_DOCS_UPDATE=1 rewrites this file).\n{text}"
            ),
        )
        .expect("write docs_passing.txt");
        return;
    }
    let regressed: Vec<&String> = passing.iter().filter(|id| !passed.contains(*id)).collect();
    assert!(
        regressed.is_empty(),
        "examples that passed no longer pass: {regressed:?} (see {path})"
    );
}
