//! The ingestion benchmark: the same NDJSON or CSV file through logvault's parser into plaintext
//! Parquet (the baseline), and through the engine into a workspace under the service key, a
//! customer key, or a customer key with double encryption.
//!
//! Each case runs in a child process (`logvault-bench ingest-case ...`), so that its peak memory
//! (`VmHWM`, reset after set-up) and CPU time are its own. Only the ingestion itself is timed:
//! generating the input and setting up vaults, clusters and links are not.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use arrow::array::{ArrayRef, RecordBatch, new_null_array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use logvault::IngestOptions;
use logvault::ingest::{Format, ParseOptions, Parser, TableSchema};
use logvault::store::SegmentOptions;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::{Deserialize, Serialize};

use crate::generator::{GenOptions, LogGenerator, host_inventory, schema};
use crate::setup::{self, HomeTimings, Protection};
use crate::sys;

/// The table the generated logs go to.
pub const LOG_TABLE: &str = "AppLogs";
/// The host inventory table (the join query's other side).
pub const INVENTORY_TABLE: &str = "HostInventory";

/// A file format of generated logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// One JSON object per line.
    Ndjson,
    /// CSV with a header row.
    Csv,
    /// Plaintext Parquet (for `gen` only).
    Parquet,
}

impl DataFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Ndjson => "ndjson",
            Self::Csv => "csv",
            Self::Parquet => "parquet",
        }
    }

    pub(crate) fn parser_format(self) -> anyhow::Result<Format> {
        match self {
            Self::Ndjson => Ok(Format::JsonLines),
            Self::Csv => Ok(Format::Csv),
            Self::Parquet => bail!("logvault ingests text formats, not parquet"),
        }
    }
}

/// Where an ingestion case writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum IngestTarget {
    /// logvault's parser writing one plaintext Parquet file (the baseline).
    Parquet,
    /// The engine, workspace under the service key.
    Service,
    /// The engine, workspace under a customer key.
    Customer,
    /// The engine, workspace under a customer key with double encryption.
    Double,
}

impl IngestTarget {
    /// All targets, baseline first.
    pub const ALL: [IngestTarget; 4] = [Self::Parquet, Self::Service, Self::Customer, Self::Double];

    /// The protection of a logvault target.
    pub fn protection(self) -> Option<Protection> {
        match self {
            Self::Parquet => None,
            Self::Service => Some(Protection::Service),
            Self::Customer => Some(Protection::Customer),
            Self::Double => Some(Protection::Double),
        }
    }

    /// The name in reports.
    pub fn label(self) -> &'static str {
        match self.protection() {
            None => "parquet-baseline",
            Some(p) => p.label(),
        }
    }
}

/// What one ingestion case measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseOutcome {
    /// Rows accepted.
    pub rows: u64,
    /// Wall-clock seconds of the ingestion.
    pub wall_secs: f64,
    /// CPU seconds (all threads) of the ingestion.
    pub cpu_secs: Option<f64>,
    /// Peak resident memory of the process during the ingestion, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Whether the peak was reset after set-up (otherwise it includes set-up).
    pub peak_reset: bool,
    /// Bytes written (the Parquet file, or the home's storage directory).
    pub output_bytes: u64,
}

/// Writes `rows` generated rows (and `seed`) to `path` in `format`, through a temporary file
/// renamed into place, so that an interrupted run never leaves a short file behind.
///
/// # Errors
/// I/O and encoding errors.
pub fn generate_file(options: GenOptions, format: DataFormat, path: &Path) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let file = BufWriter::with_capacity(
        1 << 20,
        File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
    );
    let batches = LogGenerator::new(options);
    match format {
        DataFormat::Ndjson => {
            let mut w = arrow::json::LineDelimitedWriter::new(file);
            for b in batches {
                w.write(&b)?;
            }
            w.finish()?;
        }
        DataFormat::Csv => {
            let mut w = arrow::csv::Writer::new(file);
            for b in batches {
                w.write(&b)?;
            }
        }
        DataFormat::Parquet => {
            let mut w = ArrowWriter::try_new(file, schema(), None)?;
            for b in batches {
                w.write(&b)?;
            }
            w.close()?;
        }
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// The generated input of `rows` rows in `format` under `dir`, generated on first use.
///
/// # Errors
/// As [`generate_file`].
pub fn input_file(dir: &Path, rows: u64, seed: u64, format: DataFormat) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("logs-{rows}-seed{seed}.{}", format.extension()));
    if !path.exists() {
        generate_file(
            GenOptions {
                rows,
                seed,
                ..GenOptions::default()
            },
            format,
            &path,
        )?;
    }
    Ok(path)
}

/// The host inventory as NDJSON, under `dir`.
///
/// # Errors
/// I/O errors.
pub fn inventory_file(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("host-inventory.ndjson");
    let mut w = arrow::json::LineDelimitedWriter::new(BufWriter::new(File::create(&path)?));
    w.write(&host_inventory(GenOptions::default().hosts))?;
    w.finish()?;
    Ok(path)
}

/// The Parquet writer settings of the baseline whose first rows are `first`: those of
/// logvault's segments (row groups, pages, statistics, compression, column encodings and
/// codecs), without encryption.
pub fn baseline_writer_properties(first: &RecordBatch) -> anyhow::Result<WriterProperties> {
    let segment = SegmentOptions::default();
    let compression = segment
        .compression
        .parquet()
        .map_err(|e| anyhow::anyhow!("segment compression: {e}"))?;
    Ok(
        logvault::store::column_encodings(WriterProperties::builder(), first, compression)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_row_count(Some(segment.max_row_group_rows.max(1)))
            .set_data_page_row_count_limit(segment.data_page_rows.max(1))
            .set_write_batch_size(segment.data_page_rows.clamp(1, 1024))
            .build(),
    )
}

/// The table schema the parser gives generated logs: the generator's columns with logvault's
/// kinds (integers are 64-bit), after the system columns.
fn parsed_log_schema() -> anyhow::Result<TableSchema> {
    let fields: Vec<Field> = schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Int32 => Field::new(f.name(), DataType::Int64, true),
            other => Field::new(f.name(), other.clone(), true),
        })
        .collect();
    Ok(TableSchema::from_arrow(LOG_TABLE, &Schema::new(fields))?)
}

/// `batch` with exactly the columns of `target`: missing ones (all null in this batch) as nulls,
/// others cast to the target's type, as logvault's batcher does for a segment.
pub fn conform(batch: &RecordBatch, target: &SchemaRef) -> anyhow::Result<RecordBatch> {
    let columns: Vec<ArrayRef> = target
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(col) if col.data_type() == field.data_type() => Ok(Arc::clone(col)),
            Some(col) => Ok(arrow::compute::cast(col, field.data_type())?),
            None => Ok(new_null_array(field.data_type(), batch.num_rows())),
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(RecordBatch::try_new(Arc::clone(target), columns)?)
}

/// Parses `input` with logvault's parser and writes plaintext Parquet to `output`; rows written.
///
/// # Errors
/// Parse, I/O and encoding errors; a parsed schema other than the generator's.
pub fn parse_to_parquet(input: &Path, format: DataFormat, output: &Path) -> anyhow::Result<u64> {
    let reader = BufReader::with_capacity(1 << 20, File::open(input)?);
    let mut table = parsed_log_schema()?;
    let target: SchemaRef = Arc::new(table.to_arrow());
    // Made at the first rows, which choose the columns' codecs (as a segment's writer does).
    let mut writer: Option<ArrowWriter<BufWriter<File>>> = None;
    let mut parser = Parser::new(
        reader,
        format.parser_format()?,
        &mut table,
        ParseOptions::default(),
        chrono::Utc::now(),
    )?;
    let mut rows = 0u64;
    while let Some(batch) = parser.next_batch()? {
        rows += batch.num_rows() as u64;
        let batch = conform(&batch, &target)?;
        let mut w = match writer.take() {
            Some(w) => w,
            None => {
                let file = File::create(output)
                    .with_context(|| format!("creating {}", output.display()))?;
                ArrowWriter::try_new(
                    BufWriter::with_capacity(1 << 20, file),
                    Arc::clone(&target),
                    Some(baseline_writer_properties(&batch)?),
                )?
            }
        };
        w.write(&batch)?;
        writer = Some(w);
    }
    let report = parser.into_report();
    if report.rejected > 0 {
        bail!("{} records rejected: {:?}", report.rejected, report.errors);
    }
    let Some(writer) = writer else {
        bail!("no rows in {}", input.display());
    };
    let file = writer.into_inner()?.into_inner()?;
    file.sync_all()?;
    let parsed = Arc::new(table.to_arrow());
    if parsed != target {
        bail!("the parsed schema {parsed:?} is not the generator's {target:?}");
    }
    Ok(rows)
}

/// Runs one case in this process (the child's side of [`spawn_case`]).
///
/// # Errors
/// Set-up, parse, I/O and engine errors; rows rejected or dropped.
pub async fn run_case(
    target: IngestTarget,
    format: DataFormat,
    input: &Path,
    output: &Path,
) -> anyhow::Result<CaseOutcome> {
    let engine = match target.protection() {
        None => None,
        Some(protection) => {
            let engine = setup::open_home(
                output,
                HomeTimings {
                    key_check_secs: None,
                },
            )
            .await?;
            setup::prepare_workspace(&engine, protection).await?;
            Some(engine)
        }
    };
    let peak_reset = sys::reset_peak_rss();
    let trace = crate::memtrace::start();
    let cpu_before = sys::cpu_seconds();
    let started = Instant::now();
    let rows = match &engine {
        None => parse_to_parquet(input, format, output)?,
        Some(engine) => {
            let reader = BufReader::with_capacity(1 << 20, File::open(input)?);
            // As `logvault ingest FILE` does: a bulk load, acknowledged at its checkpoints.
            let options = IngestOptions::load(format.parser_format()?);
            let report = engine
                .ingest(setup::WORKSPACE, LOG_TABLE, reader, &options, None)
                .await?;
            if report.rejected > 0 || report.dropped > 0 {
                bail!(
                    "{} rows rejected, {} dropped: {:?} {:?}",
                    report.rejected,
                    report.dropped,
                    report.errors,
                    report.reason
                );
            }
            report.accepted
        }
    };
    let wall_secs = started.elapsed().as_secs_f64();
    let cpu_secs = match (cpu_before, sys::cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let peak_rss_bytes = sys::peak_rss_bytes();
    if let Some(trace) = trace {
        trace.finish()?;
    }
    let output_bytes = match engine {
        None => std::fs::metadata(output)?.len(),
        Some(_) => sys::dir_size(&output.join("storage")),
    };
    Ok(CaseOutcome {
        rows,
        wall_secs,
        cpu_secs,
        peak_rss_bytes,
        peak_reset,
        output_bytes,
    })
}

/// The command-line name of a value.
fn value<V: clap::ValueEnum>(v: &V) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

/// Runs one case in a child process of `exe` (a copy of this executable: the original may be
/// replaced by a build while the benchmark runs) and reads its outcome.
///
/// # Errors
/// If the child cannot start, fails, or prints no outcome.
pub fn spawn_case(
    exe: &Path,
    target: IngestTarget,
    format: DataFormat,
    input: &Path,
    output: &Path,
) -> anyhow::Result<CaseOutcome> {
    let out = std::process::Command::new(exe)
        .arg("ingest-case")
        .args(["--target", &value(&target)])
        .args(["--format", &value(&format)])
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("starting an ingestion case")?;
    if !out.status.success() {
        bail!(
            "ingestion case {} {} failed ({})",
            target.label(),
            value(&format),
            out.status
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("the ingestion case printed no outcome")?;
    Ok(serde_json::from_str(line)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    #[test]
    fn conform_adds_missing_columns_and_casts() {
        let target: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Float64, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![1, 2]))],
        )
        .unwrap();
        let out = conform(&batch, &target).unwrap();
        assert_eq!(out.schema(), target);
        assert_eq!(out.column(1).null_count(), 2);
        let s = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("b", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec!["x"]))],
        )
        .unwrap();
        assert_eq!(conform(&s, &target).unwrap().column(0).null_count(), 1);
    }

    #[test]
    fn both_formats_parse_to_the_same_parquet_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut counts = Vec::new();
        for format in [DataFormat::Ndjson, DataFormat::Csv] {
            let input = input_file(dir.path(), 3000, 7, format).unwrap();
            let out = dir.path().join(format!("{}.parquet", format.extension()));
            counts.push(parse_to_parquet(&input, format, &out).unwrap());
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                File::open(&out).unwrap(),
            )
            .unwrap();
            assert_eq!(reader.metadata().file_metadata().num_rows(), 3000);
        }
        assert_eq!(counts, vec![3000, 3000]);
    }
}
