//! A sqllogictest-style file set for KQL: `tests/kql/*.kqltest`.
//!
//! ```text
//! # a comment
//! query [rowsort]
//! <KQL, one or more lines>
//! ----
//! <expected rows: cells separated by tabs or by ' | '>
//!
//! error <text the error message contains>
//! <KQL>
//! ```
//!
//! A record ends at a blank line. `rowsort` compares the rows as a multiset; otherwise in
//! order. Cells are compared as the documentation examples are (`compare.rs`).

use std::fmt::Write as _;

use datafusion::prelude::SessionContext;
use logvault_kql::KustoType;

use crate::common::run_in;
use crate::compare::row_matches;

struct Record {
    line: usize,
    kind: Kind,
    query: String,
    expected: Vec<Vec<String>>,
}

enum Kind {
    Query { rowsort: bool },
    Error(String),
}

fn parse(text: &str) -> Vec<Record> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_end();
        if l.is_empty() || l.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i + 1;
        let kind = if let Some(rest) = l.strip_prefix("query") {
            Kind::Query {
                rowsort: rest.trim() == "rowsort",
            }
        } else if let Some(msg) = l.strip_prefix("error ") {
            Kind::Error(msg.trim().to_owned())
        } else {
            panic!("line {start}: expected 'query' or 'error', found {l:?}");
        };
        i += 1;
        let mut query = String::new();
        while i < lines.len() && lines[i].trim() != "----" && !lines[i].trim().is_empty() {
            query.push_str(lines[i]);
            query.push('\n');
            i += 1;
        }
        let mut expected = Vec::new();
        if i < lines.len() && lines[i].trim() == "----" {
            i += 1;
            while i < lines.len() && !lines[i].trim().is_empty() {
                let row = if lines[i].contains('\t') {
                    lines[i].split('\t').map(str::to_owned).collect()
                } else {
                    lines[i].split(" | ").map(|c| c.trim().to_owned()).collect()
                };
                expected.push(row);
                i += 1;
            }
        }
        out.push(Record {
            line: start,
            kind,
            query,
            expected,
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kqltest_files() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kql");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "kqltest"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .kqltest files in {dir}");
    let mut failures = String::new();
    let mut count = 0;
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        for r in parse(&std::fs::read_to_string(f).unwrap()) {
            count += 1;
            let ctx = SessionContext::new();
            let result = run_in(&ctx, &r.query).await;
            match (&r.kind, result) {
                (Kind::Error(want), Err(e)) => {
                    if !e.contains(want.as_str()) {
                        let _ = writeln!(failures, "{name}:{}: error {e:?} lacks {want:?}", r.line);
                    }
                }
                (Kind::Error(want), Ok(_)) => {
                    let _ = writeln!(
                        failures,
                        "{name}:{}: expected an error containing {want:?}",
                        r.line
                    );
                }
                (Kind::Query { .. }, Err(e)) => {
                    let _ = writeln!(failures, "{name}:{}: {e}", r.line);
                }
                (Kind::Query { rowsort }, Ok(out)) => {
                    let types: Vec<KustoType> = out.schema.iter().map(|c| c.ty).collect();
                    let map: Vec<usize> = (0..types.len()).collect();
                    let shown: Vec<Vec<String>> = out
                        .rows
                        .iter()
                        .map(|row| row.iter().map(|v| v.to_text()).collect())
                        .collect();
                    let ok = r.expected.len() == out.rows.len()
                        && if *rowsort {
                            let mut used = vec![false; out.rows.len()];
                            r.expected.iter().all(|e| {
                                match (0..out.rows.len()).find(|&i| {
                                    !used[i] && row_matches(e, &out.rows[i], &types, &map)
                                }) {
                                    Some(i) => {
                                        used[i] = true;
                                        true
                                    }
                                    None => false,
                                }
                            })
                        } else {
                            r.expected
                                .iter()
                                .zip(&out.rows)
                                .all(|(e, a)| row_matches(e, a, &types, &map))
                        };
                    if !ok {
                        let _ = writeln!(
                            failures,
                            "{name}:{}: expected {:?}, got {shown:?}",
                            r.line, r.expected
                        );
                    }
                }
            }
        }
    }
    println!("kqltest: {count} records in {} files", files.len());
    assert!(failures.is_empty(), "{failures}");
}
