//! sqllogictest files (`tests/slt/*.slt`) run against a workspace of the bundled samples whose
//! data is under two keys: `Syslog` under the service key, `SecurityEvent` and
//! `AzureNetworkAnalytics_CL` under a customer key (the workspace linked in between). The
//! expected results in the files are what the queries must return whatever the keys.
//!
//! Values print as Arrow displays them, NULL as `NULL`; column types are checked: `I`
//! (integers), `R` (floating point and decimals) and `T` (everything else).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use logvault::ingest::Format;
use logvault::{Engine, IngestOptions};
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::common::{CLUSTER, Home, WS, home};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SltError(String);

/// One "connection": SQL through the engine's query session of the workspace.
struct Workspace {
    engine: Arc<Engine>,
}

fn column_type(t: &DataType) -> DefaultColumnType {
    match t {
        t if t.is_integer() => DefaultColumnType::Integer,
        t if t.is_floating()
            || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) =>
        {
            DefaultColumnType::FloatingPoint
        }
        _ => DefaultColumnType::Text,
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for Workspace {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let err = |e: &dyn std::fmt::Display| SltError(e.to_string());
        let session = self.engine.query_session(WS).await.map_err(|e| err(&e))?;
        let frame = session.context().sql(sql).await.map_err(|e| err(&e))?;
        let types: Vec<DefaultColumnType> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let batches = frame.collect().await.map_err(|e| err(&e))?;
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(&e))?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| f.value(row).to_string())
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}
}

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(file)
}

async fn ingest(h: &Home, file: &str, table: &str, format: Format) {
    let input = std::io::BufReader::new(std::fs::File::open(data(file)).unwrap());
    let r = h
        .engine
        .ingest(WS, table, input, &IngestOptions::new(format), None)
        .await
        .unwrap();
    assert!(r.accepted > 0 && r.dropped == 0, "{table}: {r:?}");
}

#[tokio::test]
async fn sqllogictest_files_over_samples_under_two_keys() {
    let h = home().await;
    h.workspace(WS);
    ingest(&h, "Syslog.csv", "Syslog", Format::Csv).await;
    h.cluster_with_key(false, None).await;
    h.engine.control().link_workspace(WS, CLUSTER).unwrap();
    ingest(
        &h,
        "SecurityEvent.jsonl",
        "SecurityEvent",
        Format::JsonLines,
    )
    .await;
    ingest(
        &h,
        "AzureNetworkAnalytics_CL.csv",
        "AzureNetworkAnalytics_CL",
        Format::Csv,
    )
    .await;

    let engine = Arc::new(h.engine.clone());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    for file in files {
        let engine = Arc::clone(&engine);
        let mut runner = sqllogictest::Runner::new(move || {
            let engine = Arc::clone(&engine);
            async move { Ok(Workspace { engine }) }
        });
        runner.with_column_validator(sqllogictest::strict_column_validator);
        if let Err(e) = runner.run_file_async(&file).await {
            panic!("{}: {}", file.display(), e.display(false));
        }
    }
}
