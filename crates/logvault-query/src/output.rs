//! Results as a pretty table, a JSON array of row objects, or CSV, streamed batch by batch so a
//! large result need not fit in memory (the table, which aligns columns, holds at most the row
//! limit).

use std::io::Write;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::json::writer::JsonArray;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;

use crate::QueryError;

/// How to print results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    /// An aligned table for people.
    Table,
    /// One JSON array of row objects.
    Json,
    /// CSV with a header row.
    Csv,
}

/// Bounds on a query's output and run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    /// Stop after this many rows.
    pub max_rows: Option<usize>,
    /// Fail if the query runs longer.
    pub timeout: Option<Duration>,
}

impl Default for OutputLimits {
    fn default() -> Self {
        Self {
            max_rows: None,
            timeout: Some(Duration::from_secs(300)),
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputSummary {
    /// Rows written.
    pub rows: usize,
    /// Whether the row limit cut the result short.
    pub truncated: bool,
}

enum Sink<W: Write> {
    Table(Vec<RecordBatch>, W),
    Json(arrow::json::Writer<W, JsonArray>),
    Csv(Box<arrow::csv::Writer<W>>),
}

/// Drains `stream` into `out` in `format`, within `limits`.
///
/// # Errors
/// [`QueryError::Timeout`] past the timeout; execution errors from the stream; output errors.
pub async fn write_results<W: Write>(
    stream: SendableRecordBatchStream,
    format: ResultFormat,
    out: W,
    limits: OutputLimits,
) -> Result<OutputSummary, QueryError> {
    let work = drain(stream, format, out, limits.max_rows);
    match limits.timeout {
        Some(t) => tokio::time::timeout(t, work)
            .await
            .map_err(|_| QueryError::Timeout {
                seconds: t.as_secs(),
            })?,
        None => work.await,
    }
}

async fn drain<W: Write>(
    mut stream: SendableRecordBatchStream,
    format: ResultFormat,
    out: W,
    max_rows: Option<usize>,
) -> Result<OutputSummary, QueryError> {
    let mut sink = match format {
        ResultFormat::Table => Sink::Table(Vec::new(), out),
        ResultFormat::Json => Sink::Json(
            arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, JsonArray>(out),
        ),
        ResultFormat::Csv => Sink::Csv(Box::new(
            arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out),
        )),
    };
    let mut rows = 0usize;
    let mut truncated = false;
    while let Some(batch) = stream.next().await {
        let mut batch = batch?;
        if let Some(max) = max_rows {
            let room = max.saturating_sub(rows);
            if batch.num_rows() > room {
                batch = batch.slice(0, room);
                truncated = true;
            }
        }
        rows += batch.num_rows();
        match &mut sink {
            Sink::Table(batches, _) => batches.push(batch),
            Sink::Json(w) => w.write(&batch)?,
            Sink::Csv(w) => w.write(&batch)?,
        }
        if truncated {
            break;
        }
    }
    match sink {
        Sink::Table(batches, mut out) => {
            if batches.iter().all(|b| b.num_rows() == 0) {
                writeln!(out, "(no rows)")?;
            } else {
                writeln!(
                    out,
                    "{}",
                    arrow::util::pretty::pretty_format_batches(&batches)?
                )?;
            }
        }
        Sink::Json(mut w) => {
            w.finish()?;
            let mut out = w.into_inner();
            writeln!(out)?;
        }
        Sink::Csv(w) => {
            let mut out = (*w).into_inner();
            out.flush()?;
        }
    }
    Ok(OutputSummary { rows, truncated })
}
