//! `logvault table create --schema` and `table show`: declared schemas from the command line.

use crate::common::{fails, json, logvault};

#[test]
fn a_table_created_with_a_schema_file_conforms_ingested_rows_and_says_what_it_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    json(home, &["workspace", "create", "--name", "alpha"]);
    let schema = tmp.path().join("app.json");
    std::fs::write(
        &schema,
        r#"{"columns":[{"name":"TimeGenerated","type":"datetime","description":"when"},
                       {"name":"Code","type":"int"},{"name":"Host","type":"string"}]}"#,
    )
    .unwrap();
    let schema_arg = schema.to_str().unwrap();
    let created = json(
        home,
        &[
            "table",
            "create",
            "--workspace",
            "alpha",
            "--name",
            "App",
            "--schema",
            schema_arg,
        ],
    );
    assert_eq!(created["declared"], true, "{created}");
    assert_eq!(created["columns"][1]["type"], "int", "{created}");

    // Before any row, KQL has the declared types.
    let types = json(
        home,
        &[
            "query",
            "--workspace",
            "alpha",
            "--kql",
            "App | getschema | project ColumnName, ColumnType",
        ],
    );
    let pairs: Vec<(String, String)> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["ColumnName"].as_str().unwrap().into(),
                r["ColumnType"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        pairs[..3],
        [
            ("TimeGenerated".into(), "datetime".into()),
            ("Code".into(), "int".into()),
            ("Host".into(), "string".into())
        ]
    );

    let rows = "{\"TimeGenerated\":\"2026-03-01T00:00:00Z\",\"Code\":\"200\",\"Host\":\"a\",\"Extra\":1}\n\
                {\"TimeGenerated\":\"2026-03-01T00:01:00Z\",\"Code\":\"oops\",\"Host\":\"b\"}\n";
    let out = logvault(
        home,
        &[
            "-o",
            "json",
            "ingest",
            "--workspace",
            "alpha",
            "--table",
            "App",
            "--format",
            "json",
        ],
        rows,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["accepted"].as_u64(), report["nulled"].as_u64()),
        (Some(2), Some(1)),
        "{report}"
    );
    assert_eq!(
        report["undeclared"],
        serde_json::json!(["Extra"]),
        "{report}"
    );
    assert!(stderr.contains("1 values did not convert"), "{stderr}");
    assert!(stderr.contains("were left out: Extra"), "{stderr}");
    let codes = json(
        home,
        &[
            "query",
            "--workspace",
            "alpha",
            "--kql",
            "App | order by TimeGenerated asc | project Code",
        ],
    );
    assert_eq!(codes, serde_json::json!([{"Code": 200}, {"Code": null}]));

    // `table show` in both forms; a second declaration is refused with 409.
    let out = logvault(
        home,
        &["table", "show", "--workspace", "alpha", "--table", "App"],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("declared schema") && text.contains("Code") && text.contains("when"),
        "{text}"
    );
    let err = fails(
        home,
        &[
            "table",
            "create",
            "--workspace",
            "alpha",
            "--name",
            "App",
            "--schema",
            schema_arg,
        ],
    );
    assert!(
        err.contains("409") || err.contains("already exists"),
        "{err}"
    );
    // A schema from stdin with a mistake says what and where.
    let out = logvault(
        home,
        &[
            "table",
            "create",
            "--workspace",
            "alpha",
            "--name",
            "Other",
            "--schema",
            "-",
        ],
        r#"{"columns":[{"name":"Code","type":"int"}]}"#,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("invalid schema for table Other") && err.contains("no TimeGenerated"),
        "{err}"
    );
}
