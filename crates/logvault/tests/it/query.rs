//! Queries over the bundled samples with known answers, schema evolution, segment pruning and
//! errors (issue: query engine).

use std::sync::atomic::Ordering;

use futures::StreamExt;
use logvault::EngineError;
use logvault::IngestOptions;
use logvault::ingest::Format;
use logvault::query::QueryError;

use crate::common::{Home, WS, home};

fn data(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(file)
}

async fn samples() -> Home {
    let h = home().await;
    h.workspace(WS);
    for (file, table, format) in [
        ("Syslog.csv", "Syslog", Format::Csv),
        ("SecurityEvent.jsonl", "SecurityEvent", Format::JsonLines),
        (
            "AzureNetworkAnalytics_CL.csv",
            "AzureNetworkAnalytics_CL",
            Format::Csv,
        ),
    ] {
        let input = std::io::BufReader::new(std::fs::File::open(data(file)).unwrap());
        h.engine
            .ingest(WS, table, input, &IngestOptions::new(format), None)
            .await
            .unwrap();
    }
    h
}

#[tokio::test]
async fn known_answers_over_the_samples() {
    let h = samples().await;
    let q = |sql: &'static str| h.column(&h.engine, WS, sql);
    assert_eq!(
        q("SELECT SeverityLevel || '=' || CAST(count(*) AS VARCHAR) AS s FROM Syslog GROUP BY SeverityLevel ORDER BY s")
            .await
            .unwrap(),
        ["info=66", "notice=34"]
    );
    assert_eq!(
        q("SELECT count(*) FROM SecurityEvent WHERE LogonType = 5")
            .await
            .unwrap(),
        ["18"]
    );
    assert_eq!(
        q("SELECT Account FROM SecurityEvent GROUP BY Account ORDER BY count(*) DESC LIMIT 1")
            .await
            .unwrap(),
        ["NT AUTHORITY\\SYSTEM"]
    );
    assert_eq!(
        q("SELECT CAST(sum(AllowedOutFlows) AS BIGINT) FROM AzureNetworkAnalytics_CL WHERE FlowDirection = 'O' OR FlowDirection = 'I'")
            .await
            .unwrap(),
        ["3065"]
    );
    // A time window (the export's `7/8/2019 16:08` form became a UTC timestamp).
    assert_eq!(
        q("SELECT count(*) FROM Syslog WHERE TimeGenerated >= '2019-07-08T15:00:00Z' AND TimeGenerated < '2019-07-08T16:00:00Z'")
            .await
            .unwrap(),
        ["72"]
    );
    assert_eq!(
        q("SELECT count(*) FROM Syslog WHERE TimeGenerated >= '2019-07-08T15:00:00Z' AND TimeGenerated < '2019-07-08T16:00:00Z' AND SeverityLevel = 'notice'")
            .await
            .unwrap(),
        ["24"]
    );
    // A join of two tables.
    assert_eq!(
        q("SELECT count(*) FROM SecurityEvent s JOIN AzureNetworkAnalytics_CL n ON lower(s.Computer) = n.VMName")
            .await
            .unwrap(),
        ["11300"]
    );
    // The helpers: binning and case-insensitive search.
    assert_eq!(
        q("SELECT count(DISTINCT bin(TimeGenerated, '1h')) FROM Syslog")
            .await
            .unwrap(),
        ["3"]
    );
    assert_eq!(
        q("SELECT count(*) FROM Syslog WHERE icontains(SyslogMessage, 'SESSION OPENED')")
            .await
            .unwrap(),
        q("SELECT count(*) FROM Syslog WHERE SyslogMessage LIKE '%session opened%'")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_schema_evolved_table_reads_old_segments_with_nulls_and_widened_types() {
    let h = home().await;
    h.workspace(WS);
    let first = [r#"{"TimeGenerated":"2026-03-01T00:00:00Z","A":1}"#.to_owned()];
    let second = [r#"{"TimeGenerated":"2026-03-01T00:01:00Z","A":2.5,"B":"new"}"#.to_owned()];
    h.ingest(WS, "Evolving", &first).await;
    h.ingest(WS, "Evolving", &second).await;
    let rows = h
        .column(
            &h.engine,
            WS,
            "SELECT CAST(A AS VARCHAR) || '/' || coalesce(B, 'null') FROM Evolving ORDER BY TimeGenerated",
        )
        .await
        .unwrap();
    assert_eq!(rows, ["1.0/null", "2.5/new"]);
}

#[tokio::test]
async fn a_narrow_time_window_opens_only_the_segments_it_needs() {
    let h = home().await;
    h.workspace(WS);
    // Three days, three payloads: three segments (one per UTC day).
    for day in 0..3 {
        h.ingest(
            WS,
            "AppLogs",
            &Home::lines(&format!("d{day}"), day * 1440, 30),
        )
        .await;
    }
    let session = h.engine.query_session(WS).await.unwrap();
    let mut stream = session
        .execute("SELECT count(*) AS n FROM AppLogs WHERE TimeGenerated >= '2026-03-02T00:00:00Z' AND TimeGenerated < '2026-03-02T01:00:00Z'")
        .await
        .unwrap();
    let batch = stream.next().await.unwrap().unwrap();
    let n = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Int64).unwrap();
    assert_eq!(
        n.as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap()
            .value(0),
        30
    );
    let stats = session.stats();
    assert_eq!(stats.segments_scanned.load(Ordering::Relaxed), 1);
    assert_eq!(stats.segments_pruned.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn unknown_tables_and_columns_are_clear_errors() {
    let h = samples().await;
    match h.engine.query(WS, "SELECT * FROM syslog").await {
        Err(EngineError::Query(QueryError::UnknownTable {
            table,
            suggestion,
            workspace,
        })) => {
            assert_eq!((table.as_str(), workspace.as_str()), ("syslog", WS));
            assert_eq!(suggestion.as_deref(), Some("Syslog"));
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    let err = match h.engine.query(WS, "SELECT Nope FROM Syslog").await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("unknown column accepted"),
    };
    assert!(err.contains("Nope"), "{err}");
    assert!(matches!(
        h.engine.query("ws-none", "SELECT 1").await,
        Err(EngineError::Control(e)) if e.code() == 404
    ));
}

/// The engine's queries share one memory pool: a query that needs more than the limit fails
/// with a clear error (nothing spills to disk, where it would rest in clear), and the engine
/// goes on serving queries that fit.
#[tokio::test]
async fn a_query_over_the_memory_limit_fails_clearly_and_the_engine_goes_on() {
    use futures::TryStreamExt;
    let dir = tempfile::tempdir().unwrap();
    let engine = logvault::Engine::builder(dir.path())
        .query_memory_limit(256 * 1024)
        .open()
        .await
        .unwrap();
    engine
        .control()
        .create_workspace(logvault::control::WorkspaceSpec::new(WS))
        .unwrap();
    let lines: String = (0..40_000)
        .map(|i| {
            format!(
                "{{\"TimeGenerated\":\"2026-03-01T00:00:{:02}Z\",\"Message\":\"message {i} with some padding to take memory\"}}\n",
                i % 60
            )
        })
        .collect();
    let options = IngestOptions::new(Format::JsonLines);
    engine
        .ingest(WS, "Big", std::io::Cursor::new(lines), &options, None)
        .await
        .unwrap();
    let sorted = engine
        .query(WS, "SELECT Message FROM Big ORDER BY Message")
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    let err = logvault::query::QueryError::from(sorted);
    assert!(
        matches!(err, logvault::query::QueryError::MemoryLimit { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("query memory limit"), "{err}");
    let counted = engine
        .query(WS, "SELECT count(*) FROM Big")
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(counted[0].num_rows(), 1);
}
