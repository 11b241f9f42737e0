//! `logvault query --kql`: KQL results with their Kusto types (the contract's "KQL and tables
//! with a declared schema").

use std::io::Write;

use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use logvault::kql_lang::format::{batch_row_texts, display_batch};
use logvault::query::{OutputLimits, ResultFormat, write_results};

use logvault::Engine;

use crate::args::GlobalArgs;

/// `--schema-only`: the result's columns and Kusto types, without reading data.
pub(crate) async fn schema_only(
    global: &GlobalArgs,
    engine: &Engine,
    workspace: &str,
    kql: &str,
) -> anyhow::Result<()> {
    let plan = engine.plan_kql(workspace, kql).await?;
    let mut out = std::io::stdout().lock();
    if global.output == crate::args::OutputFormat::Json {
        let doc = serde_json::json!({ "columns": plan.schema });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        let width = plan
            .schema
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(out, "{:<width$}  type", "name")?;
        for c in &plan.schema {
            writeln!(out, "{:<width$}  {}", c.name, c.ty)?;
        }
    }
    Ok(())
}

/// Runs KQL and prints it: JSON rows in the query API's conventions, or a table / CSV of the
/// values' Kusto text.
pub(crate) async fn run(
    engine: &Engine,
    workspace: &str,
    kql: &str,
    format: ResultFormat,
    limits: OutputLimits,
) -> anyhow::Result<(usize, bool)> {
    let result = engine.query_kql(workspace, kql).await?;
    if format == ResultFormat::Json {
        let work = write_json(result.stream, &result.schema, limits.max_rows);
        return match limits.timeout {
            Some(t) => tokio::time::timeout(t, work).await.map_err(|_| {
                anyhow::anyhow!(
                    "query timed out after {}s (raise it with --timeout)",
                    t.as_secs()
                )
            })?,
            None => work.await,
        };
    }
    let schema = result.schema.clone();
    let display_schema = std::sync::Arc::new(arrow::datatypes::Schema::new(
        schema
            .iter()
            .map(|c| {
                arrow::datatypes::Field::new(c.name.clone(), arrow::datatypes::DataType::Utf8, true)
            })
            .collect::<Vec<_>>(),
    ));
    let texts = result.stream.map(move |b| {
        b.and_then(|b| {
            display_batch(&b, &schema)
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))
        })
    });
    let stream = Box::pin(RecordBatchStreamAdapter::new(display_schema, texts));
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let summary = write_results(stream, format, out, limits).await?;
    Ok((summary.rows, summary.truncated))
}

async fn write_json(
    mut stream: datafusion::physical_plan::SendableRecordBatchStream,
    schema: &[logvault::kql_lang::KustoColumn],
    max_rows: Option<usize>,
) -> anyhow::Result<(usize, bool)> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    write!(out, "[")?;
    let mut rows = 0usize;
    let mut truncated = false;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        for row in batch_row_texts(&batch, schema)? {
            if max_rows.is_some_and(|m| rows >= m) {
                truncated = true;
                break;
            }
            if rows > 0 {
                write!(out, ",")?;
            }
            write!(out, "\n{row}")?;
            rows += 1;
        }
        if truncated {
            break;
        }
    }
    writeln!(out, "{}]", if rows > 0 { "\n" } else { "" })?;
    out.flush()?;
    Ok((rows, truncated))
}
