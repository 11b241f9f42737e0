//! Tables with a declared schema (`Engine::create_table`, `logvault table create --schema`).

use futures::TryStreamExt;
use logvault::DeclaredColumn;
use logvault::tables::parse_schema_file;

use crate::common::{CLUSTER, WS, home};

const SCHEMA: &str = r#"{"columns": [
    {"name": "TimeGenerated", "type": "datetime", "description": "when it happened"},
    {"name": "Code", "type": "int"},
    {"name": "Ok", "type": "bool"},
    {"name": "Latency", "type": "real"},
    {"name": "Name", "type": "string"},
    {"name": "Props", "type": "dynamic"},
    {"name": "Id", "type": "guid"},
    {"name": "Took", "type": "timespan"},
    {"name": "Amount", "type": "decimal"},
    {"name": "Total", "type": "long"}
]}"#;

fn columns() -> Vec<DeclaredColumn> {
    parse_schema_file("AppEvents", SCHEMA).unwrap()
}

/// (TimeGenerated minute, Code, Ok, Latency, Name, Props, Id, Took, Amount, Total, Extra) as
/// JSON text, and the number of values in it that cannot be their column's type.
fn rows() -> (Vec<String>, u64) {
    let lines = vec![
        // All convert.
        r#"{"TimeGenerated":"2026-03-01T10:00:00Z","Code":200,"Ok":true,"Latency":12,"Name":"alpha","Props":{"a":1},"Id":"74BE27DE-1E4E-49D9-B579-FE0B331D3642","Took":"00:00:01.5","Amount":"10.25","Total":5,"Extra":"x"}"#,
        // Name is a number (converts to text), Props a plain string (a JSON string), Code text.
        r#"{"TimeGenerated":"2026-03-01T10:01:00Z","Code":"404","Ok":false,"Latency":1.5,"Name":7,"Props":"plain","Id":null,"Took":"1.00:00:00","Amount":3,"Total":-1}"#,
        // Code too big for int, Ok not a bool, Id not a guid, Took not a timespan, Amount and
        // Total text: 6 values that do not convert.
        r#"{"TimeGenerated":"2026-03-01T10:02:00Z","Code":3000000000,"Ok":"perhaps","Latency":null,"Name":"gamma","Props":[1,2],"Id":"nope","Took":"soon","Amount":"lots","Total":"many"}"#,
    ];
    (lines.into_iter().map(str::to_owned).collect(), 6)
}

#[tokio::test]
async fn a_declared_table_has_its_columns_before_any_row_and_conforms_what_arrives() {
    let h = home().await;
    h.workspace(WS);
    let shown = h
        .engine
        .create_table(WS, "AppEvents", &columns())
        .await
        .unwrap();
    assert_eq!(shown, columns());

    // Before any row: SQL sees the declared columns, KQL their Kusto types.
    let session = h.engine.query_session(WS).await.unwrap();
    let df = session
        .context()
        .sql("SELECT * FROM \"AppEvents\"")
        .await
        .unwrap();
    let names: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        [
            "TimeGenerated",
            "Code",
            "Ok",
            "Latency",
            "Name",
            "Props",
            "Id",
            "Took",
            "Amount",
            "Total",
            "_TimeReceived"
        ]
    );
    assert_eq!(df.count().await.unwrap(), 0);
    let planned = h.engine.plan_kql(WS, "AppEvents").await.unwrap();
    let kusto: Vec<(String, String)> = planned
        .schema
        .iter()
        .map(|c| (c.name.clone(), c.ty.name().to_owned()))
        .collect();
    let declared: Vec<(String, String)> = columns()
        .into_iter()
        .map(|c| (c.name, c.kusto_type))
        .chain([("_TimeReceived".to_owned(), "datetime".to_owned())])
        .collect();
    assert_eq!(kusto, declared);

    let (lines, bad) = rows();
    let report = h.ingest(WS, "AppEvents", &lines).await;
    assert_eq!(report.accepted, 3);
    assert_eq!(report.nulled, bad);
    assert_eq!(report.undeclared, ["Extra"]);

    let col = |sql: &'static str| {
        let h = &h;
        async move { h.column(&h.engine, WS, sql).await.unwrap() }
    };
    assert_eq!(
        col("SELECT CAST(\"Code\" AS VARCHAR) FROM \"AppEvents\" ORDER BY \"TimeGenerated\"").await,
        ["200", "404", "null"]
    );
    assert_eq!(
        col("SELECT CAST(\"Ok\" AS VARCHAR) FROM \"AppEvents\" ORDER BY \"TimeGenerated\"").await,
        ["true", "false", "null"]
    );
    assert_eq!(
        col("SELECT \"Name\" FROM \"AppEvents\" ORDER BY \"TimeGenerated\"").await,
        ["alpha", "7", "gamma"]
    );
    assert_eq!(
        col("SELECT \"Props\" FROM \"AppEvents\" ORDER BY \"TimeGenerated\"").await,
        [r#"{"a":1}"#, r#""plain""#, "[1,2]"]
    );
    assert_eq!(
        col("SELECT \"Id\" FROM \"AppEvents\" ORDER BY \"TimeGenerated\"").await,
        ["74be27de-1e4e-49d9-b579-fe0b331d3642", "null", "null"]
    );
    assert_eq!(
        col("SELECT CAST(\"Total\" AS VARCHAR) FROM \"AppEvents\" ORDER BY \"TimeGenerated\"")
            .await,
        ["5", "-1", "null"]
    );
    // The stored types are the declared ones, read back from the segments.
    assert_eq!(
        col("SELECT arrow_typeof(\"Code\") FROM \"AppEvents\" LIMIT 1").await,
        ["Int32"]
    );
    assert_eq!(
        col("SELECT arrow_typeof(\"Took\") FROM \"AppEvents\" LIMIT 1").await,
        ["Duration(ns)"]
    );
    assert_eq!(
        col("SELECT arrow_typeof(\"Amount\") FROM \"AppEvents\" LIMIT 1").await,
        ["Decimal128(38, 18)"]
    );

    // KQL computes with the declared types: timespan and decimal arithmetic, dynamic access.
    let result = h
        .engine
        .query_kql(
            WS,
            "AppEvents | where isnotnull(Took) | summarize total = sum(Took), amount = sum(Amount), a = sum(toint(Props.a))",
        )
        .await
        .unwrap();
    let batches: Vec<_> = result.stream.try_collect().await.unwrap();
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(
        // 1.5 s + 1 day of the two rows with a timespan.
        text.contains("PT86401.5S"),
        "{text}"
    );
    assert!(text.contains("13.25"), "{text}");
    assert!(text.contains("| 1 "), "{text}");

    // Declared once: a second declaration and a declaration of a table with rows are refused.
    let again = h
        .engine
        .create_table(WS, "AppEvents", &columns())
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some(409), "{again}");
    assert!(
        again
            .to_string()
            .contains("table AppEvents in workspace ws-prod already exists"),
        "{again}"
    );
    h.ingest(WS, "Plain", &crate::common::Home::lines("p", 0, 2))
        .await;
    let has_rows = h
        .engine
        .create_table(WS, "Plain", &columns())
        .await
        .unwrap_err();
    assert!(
        has_rows.to_string().contains("holds 1 segment"),
        "{has_rows}"
    );

    // `table show` reads the declaration back; a table without one shows its rows' columns.
    let shown = h.engine.table_columns(WS, "AppEvents").await.unwrap();
    assert!(shown.declared);
    assert_eq!(
        shown.columns[0].description.as_deref(),
        Some("when it happened")
    );
    let plain = h.engine.table_columns(WS, "Plain").await.unwrap();
    assert!(!plain.declared);
    assert!(
        plain
            .columns
            .iter()
            .any(|c| c.name == "Seq" && c.kusto_type == "long")
    );
    let missing = h.engine.table_columns(WS, "Nothing").await.unwrap_err();
    assert_eq!(missing.code(), Some(404), "{missing}");
}

#[tokio::test]
async fn declared_rows_under_a_customer_key_survive_compaction_and_a_reopen() {
    let h = home().await;
    h.workspace(WS);
    h.cluster_with_key(false, None).await;
    h.engine.control().link_workspace(WS, CLUSTER).unwrap();
    h.engine
        .create_table(WS, "AppEvents", &columns())
        .await
        .unwrap();
    let (lines, bad) = rows();
    // Two ingests, so compaction has two segments to merge.
    let a = h.ingest(WS, "AppEvents", &lines[..2]).await;
    assert!(a.account.starts_with("cluster"), "{}", a.account);
    let b = h.ingest(WS, "AppEvents", &lines[2..]).await;
    assert_eq!(a.nulled + b.nulled, bad);
    let reports = h
        .engine
        .compact(
            WS,
            Some("AppEvents"),
            logvault::store::CompactionOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        (reports[0].segments_before, reports[0].segments_after),
        (2, 1)
    );
    let reopened = h.reopen().await;
    let codes = h
        .column(&reopened, WS, "SELECT arrow_typeof(\"Code\") || ':' || COALESCE(CAST(\"Code\" AS VARCHAR), 'null') FROM \"AppEvents\" ORDER BY \"TimeGenerated\"")
        .await
        .unwrap();
    assert_eq!(codes, ["Int32:200", "Int32:404", "Int32:null"]);
}
