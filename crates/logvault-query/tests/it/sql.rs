//! The session's SQL dialect and helper functions, over an in-memory table.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use chrono::{TimeZone, Utc};
use datafusion::datasource::MemTable;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;
use logvault_query::{
    OutputLimits, QueryError, ResultFormat, SessionOptions, new_session, write_results,
};

const BASE: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

fn session() -> SessionContext {
    let now = Utc.timestamp_micros(BASE + 3_600_000_000).unwrap(); // 01:00
    let ctx = new_session(&SessionOptions::at(now), Arc::new(RuntimeEnv::default()));
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "TimeGenerated",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("Computer", DataType::Utf8, false),
        Field::new("Message", DataType::Utf8, true),
        Field::new("Properties", DataType::Utf8, true),
        Field::new("Bytes", DataType::Int64, true),
    ]));
    let minutes = [0i64, 5, 14, 31, 50, 58];
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(
                TimestampMicrosecondArray::from(
                    minutes
                        .iter()
                        .map(|m| BASE + m * 60_000_000)
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec![
                "web-1", "web-2", "web-1", "db-1", "web-1", "db-1",
            ])),
            Arc::new(StringArray::from(vec![
                Some("Failed LOGON for admin"),
                Some("ok"),
                Some("failed logon for bob"),
                None,
                Some("LOGON success"),
                Some("disk full"),
            ])),
            Arc::new(StringArray::from(vec![
                Some(r#"{"user":{"name":"admin"},"tags":["a","b"]}"#),
                Some(r#"{"user":{"name":"carol"}}"#),
                Some("not json"),
                None,
                Some(r#"{"user":{}}"#),
                Some(r#"{"user":{"name":"dave"}}"#),
            ])),
            Arc::new(Int64Array::from(vec![
                Some(10),
                Some(25),
                Some(7),
                None,
                Some(100),
                Some(3),
            ])),
        ],
    )
    .unwrap();
    ctx.register_table(
        datafusion::common::TableReference::bare("SigninLogs"),
        Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap()),
    )
    .unwrap();
    ctx
}

async fn json(ctx: &SessionContext, sql: &str) -> serde_json::Value {
    let stream = ctx.sql(sql).await.unwrap().execute_stream().await.unwrap();
    let mut out = Vec::new();
    write_results(
        stream,
        ResultFormat::Json,
        &mut out,
        OutputLimits::default(),
    )
    .await
    .unwrap();
    serde_json::from_slice(&out).unwrap()
}

#[tokio::test]
async fn unquoted_identifiers_keep_their_case() {
    let ctx = session();
    let v = json(&ctx, "SELECT Computer, COUNT(*) AS n FROM SigninLogs GROUP BY Computer ORDER BY n DESC, Computer").await;
    assert_eq!(v[0]["Computer"], "web-1");
    assert_eq!(v[0]["n"], 3);
    assert_eq!(v.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn ago_and_now_read_the_pinned_start_time() {
    let ctx = session();
    // now = 01:00; the last 30 minutes hold the rows at 00:31, 00:50, 00:58
    let v = json(
        &ctx,
        "SELECT count(*) AS n FROM SigninLogs WHERE TimeGenerated > ago('30m')",
    )
    .await;
    assert_eq!(v[0]["n"], 3);
    let v = json(
        &ctx,
        "SELECT count(*) AS n FROM SigninLogs WHERE TimeGenerated > now() - interval '11 minutes'",
    )
    .await;
    assert_eq!(v[0]["n"], 2);
}

#[tokio::test]
async fn bin_groups_times_and_numbers() {
    let ctx = session();
    let v = json(
        &ctx,
        "SELECT bin(TimeGenerated, '15m') AS t, count(*) AS n FROM SigninLogs GROUP BY 1 ORDER BY 1",
    )
    .await;
    let counts: Vec<i64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["n"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [3, 1, 2]); // [00:00,00:15) [00:30,00:45) [00:45,01:00)
    assert!(
        v[1]["t"]
            .as_str()
            .unwrap()
            .starts_with("2026-01-01T00:30:00"),
        "{v}"
    );
    let v = json(&ctx, "SELECT bin(Bytes, 10) AS b, count(*) AS n FROM SigninLogs WHERE Bytes IS NOT NULL GROUP BY 1 ORDER BY 1").await;
    assert_eq!(
        v,
        serde_json::json!([{"b":0,"n":2},{"b":10,"n":1},{"b":20,"n":1},{"b":100,"n":1}])
    );
}

#[tokio::test]
async fn json_extract_and_icontains() {
    let ctx = session();
    let v = json(
        &ctx,
        "SELECT json_extract(Properties, '$.user.name') AS u FROM SigninLogs WHERE icontains(Message, 'logon') ORDER BY TimeGenerated",
    )
    .await;
    assert_eq!(v, serde_json::json!([{"u":"admin"},{"u":null},{"u":null}]));
    let v = json(&ctx, "SELECT json_extract(Properties, '$.tags[1]') AS t FROM SigninLogs WHERE Computer = 'web-1' ORDER BY TimeGenerated LIMIT 1").await;
    assert_eq!(v[0]["t"], "b");
}

#[tokio::test]
async fn bad_sql_and_unknown_columns_are_plan_errors() {
    let ctx = session();
    for sql in [
        "SELEC 1",
        "SELECT Nope FROM SigninLogs",
        "SELECT bin(Computer, '1h') FROM SigninLogs",
        "SELECT ago('1y')",
    ] {
        let err = match ctx.sql(sql).await {
            Err(e) => QueryError::from(e),
            Ok(df) => match df.collect().await {
                Err(e) => QueryError::from(e),
                Ok(_) => panic!("{sql} should fail"),
            },
        };
        assert!(
            matches!(err, QueryError::Plan { .. } | QueryError::Execution { .. }),
            "{sql}: {err:?}"
        );
        assert!(!err.to_string().is_empty());
    }
}

#[tokio::test]
async fn formats_limits_and_timeout() {
    let ctx = session();
    let run = |format, limits| {
        let ctx = ctx.clone();
        async move {
            let stream = ctx
                .sql("SELECT Computer, Bytes FROM SigninLogs ORDER BY TimeGenerated")
                .await
                .unwrap()
                .execute_stream()
                .await
                .unwrap();
            let mut out = Vec::new();
            let summary = write_results(stream, format, &mut out, limits)
                .await
                .unwrap();
            (String::from_utf8(out).unwrap(), summary)
        }
    };
    let (csv, s) = run(ResultFormat::Csv, OutputLimits::default()).await;
    assert_eq!(csv.lines().next(), Some("Computer,Bytes"));
    assert_eq!((s.rows, s.truncated), (6, false));
    let (table, s) = run(
        ResultFormat::Table,
        OutputLimits {
            max_rows: Some(2),
            timeout: None,
        },
    )
    .await;
    assert!(table.contains("| web-2"), "{table}");
    assert!(!table.contains("db-1"), "{table}");
    assert_eq!((s.rows, s.truncated), (2, true));
    let (json, _) = run(
        ResultFormat::Json,
        OutputLimits {
            max_rows: Some(1),
            timeout: None,
        },
    )
    .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap(),
        serde_json::json!([{"Computer":"web-1","Bytes":10}])
    );

    let stream = ctx
        .sql("SELECT count(*) FROM generate_series(1, 100000000000) a")
        .await
        .unwrap()
        .execute_stream()
        .await
        .unwrap();
    let err = write_results(
        stream,
        ResultFormat::Json,
        Vec::new(),
        OutputLimits {
            max_rows: None,
            timeout: Some(Duration::from_millis(200)),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, QueryError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn empty_results() {
    let ctx = session();
    let v = json(&ctx, "SELECT * FROM SigninLogs WHERE Computer = 'none'").await;
    assert_eq!(v, serde_json::json!([]));
}
