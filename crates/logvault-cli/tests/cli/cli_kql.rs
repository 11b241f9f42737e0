//! `logvault query --kql` (the contract's "KQL and tables with a declared schema"): Kusto
//! types in `--schema-only`, the query API's value conventions in `-o json`, errors with the
//! line and a caret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use crate::common::logvault;

fn ok(home: &Path, args: &[&str]) -> String {
    let out = logvault(home, args, "");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const ROWS: &str = r#"{"TimeGenerated":"2026-01-01T10:00:00Z","Computer":"web-1","Level":"Error","Bytes":100,"Props":{"user":"ann","ms":250}}
{"TimeGenerated":"2026-01-01T10:30:00Z","Computer":"web-1","Level":"Info","Bytes":50,"Props":{"user":"bob","ms":10}}
{"TimeGenerated":"2026-01-01T11:15:00Z","Computer":"db-1","Level":"Error","Bytes":7,"Props":{"user":"ann","ms":90}}
"#;

fn home_with_data() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["workspace", "create", "--name", "kql-ws"]);
    let out = logvault(
        tmp.path(),
        &[
            "ingest",
            "--workspace",
            "kql-ws",
            "--table",
            "AppLogs",
            "--format",
            "json",
        ],
        ROWS,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmp
}

#[test]
fn kql_results_follow_the_query_api_conventions() {
    let tmp = home_with_data();
    let home = tmp.path();
    let text = ok(
        home,
        &[
            "-o",
            "json",
            "query",
            "--workspace",
            "kql-ws",
            "--kql",
            "AppLogs | where Level == 'Error' | extend user = tostring(Props.user), \
             took = totimespan(strcat('00:00:0', tostring(toint(Props.ms) / 100))) \
             | project TimeGenerated, Computer, user, took, Bytes, big = Bytes > 50, Props \
             | sort by TimeGenerated asc | render table",
        ],
    );
    let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["TimeGenerated"], "2026-01-01T10:00:00Z");
    assert_eq!(rows[0]["user"], "ann");
    assert_eq!(rows[0]["took"], "00:00:02");
    assert_eq!(rows[0]["Bytes"], 100);
    assert_eq!(rows[0]["big"], true);
    assert_eq!(
        rows[0]["Props"]["ms"], 250,
        "dynamic values are JSON, not text"
    );
    assert_eq!(rows[1]["Computer"], "db-1");
    // Keys keep the result's column order.
    let first = text.lines().nth(1).unwrap();
    assert!(first.starts_with("{\"TimeGenerated\""), "{first}");
}

#[test]
fn schema_only_names_kusto_types_without_reading() {
    let tmp = home_with_data();
    let text = ok(
        tmp.path(),
        &[
            "-o",
            "json",
            "query",
            "--workspace",
            "kql-ws",
            "--kql",
            "AppLogs | summarize n = count(), first = min(TimeGenerated), avg(Bytes) by Computer, bin(TimeGenerated, 1h)",
            "--schema-only",
        ],
    );
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cols: Vec<String> = doc["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}:{}",
                c["name"].as_str().unwrap(),
                c["type"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        cols,
        [
            "Computer:string",
            "TimeGenerated:datetime",
            "n:long",
            "first:datetime",
            "avg_Bytes:real"
        ]
    );
}

#[test]
fn kql_table_output_and_errors() {
    let tmp = home_with_data();
    let home = tmp.path();
    let table = ok(
        home,
        &[
            "query",
            "--workspace",
            "kql-ws",
            "--kql",
            "AppLogs | summarize count() by Level | sort by Level asc",
        ],
    );
    assert!(
        table.contains("count_") && table.contains("Error") && table.contains("| 2 "),
        "{table}"
    );
    let out = logvault(
        home,
        &[
            "query",
            "--workspace",
            "kql-ws",
            "--kql",
            "AppLogs\n| where Levl == 'Error'",
        ],
        "",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let mut lines = err.lines();
    let first = lines.next().unwrap();
    assert!(first.starts_with("error: unknown name 'Levl'"), "{err}");
    assert!(
        first.contains("did you mean 'Level'") && first.contains("line 2, column 9"),
        "{err}"
    );
    assert!(
        err.contains("| where Levl == 'Error'") && err.contains("^^^^"),
        "{err}"
    );
}
