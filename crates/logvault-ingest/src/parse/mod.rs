//! Parsing payloads (JSON lines, JSON arrays, CSV, text lines) into Arrow batches.
//!
//! A [`Parser`] reads its input incrementally: it frames up to [`ParseOptions::batch_rows`]
//! records or [`ParseOptions::chunk_bytes`] bytes, turns them into one `RecordBatch`, grows the
//! table's schema, and starts again. Memory stays bounded by those limits whatever the size of
//! the input; a record longer than [`ParseOptions::max_record_bytes`] is skipped without being
//! held, and reported. [`parse_payload`] runs a parser to the end and collects its batches.
//!
//! A malformed record is reported with its line and reason. Under [`ErrorPolicy::Skip`] (the
//! default) it is skipped and counted, and the first [`ParseOptions::max_error_samples`] errors
//! are kept; under [`ErrorPolicy::Refuse`] the first one fails the payload, before anything is
//! handed on, so nothing of it is written.

mod array;
mod csv;
mod json;
mod text;

use std::fmt;
use std::io::BufRead;
use std::ops::Range;
use std::path::Path;

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use logvault_core::Clock;

use crate::IngestError;
use crate::chunk::ChunkBuilder;
use crate::input::{ArraySplitter, Framed, LineReader, peek_first_byte, skip_bom};
use crate::schema::TableSchema;

/// The format of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON object per line.
    JsonLines,
    /// One JSON array of objects.
    JsonArray,
    /// JSON of either kind: an array if the first byte that is not whitespace is `[`.
    Json,
    /// CSV with a header row (RFC 4180).
    Csv,
    /// Plain text, one row per line; syslog prefixes are parsed into fields.
    Text,
}

impl Format {
    /// The format named `json`, `jsonl` (`ndjson`), `csv` or `text` (`txt`, `log`, `syslog`).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "json" => Self::Json,
            "jsonl" | "ndjson" | "jsonlines" => Self::JsonLines,
            "csv" => Self::Csv,
            "text" | "txt" | "log" | "syslog" => Self::Text,
            _ => return None,
        })
    }

    /// The format implied by a file's extension (as [`Format::from_name`]).
    pub fn from_path(path: &Path) -> Option<Self> {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(Self::from_name)
    }
}

/// What to do with a malformed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorPolicy {
    /// Skip it, count it, and keep the first errors for the report.
    #[default]
    Skip,
    /// Refuse the whole payload.
    Refuse,
}

/// Limits and choices of parsing.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Most rows in one batch.
    pub batch_rows: usize,
    /// Most input bytes framed into one batch (with `batch_rows`, this bounds memory).
    pub chunk_bytes: usize,
    /// Longest record accepted, in bytes; a longer one is skipped and reported.
    pub max_record_bytes: usize,
    /// Most columns a table may have, system columns included.
    pub max_columns: usize,
    /// Most errors kept in the report (all are counted).
    pub max_error_samples: usize,
    /// What to do with a malformed record.
    pub on_error: ErrorPolicy,
    /// Keep a CSV's unnamed first column (a pandas index, as in msticpy's exports) as
    /// `Column1` instead of dropping it.
    pub keep_unnamed_index: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            batch_rows: 8192,
            chunk_bytes: 4 << 20,
            max_record_bytes: 1 << 20,
            max_columns: 1000,
            max_error_samples: 10,
            on_error: ErrorPolicy::Skip,
            keep_unnamed_index: false,
        }
    }
}

impl ParseOptions {
    fn validate(&self) -> Result<(), IngestError> {
        let bad = |reason: &str| {
            Err(IngestError::InvalidOption {
                reason: reason.to_owned(),
            })
        };
        if self.batch_rows == 0 || self.batch_rows > u32::MAX as usize {
            return bad("batch_rows must be between 1 and 2^32-1");
        }
        if self.chunk_bytes == 0 || self.max_record_bytes == 0 {
            return bad("chunk_bytes and max_record_bytes must be positive");
        }
        if self.max_columns < 3 {
            return bad("max_columns must leave room for a column beside the system columns");
        }
        Ok(())
    }
}

/// A rejected record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The 1-based line where the record starts.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// The counts of a parse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseReport {
    /// Rows accepted.
    pub accepted: u64,
    /// Records rejected.
    pub rejected: u64,
    /// The first rejected records, in order.
    pub errors: Vec<RecordError>,
}

/// The result of parsing a whole payload.
#[derive(Debug, Clone, Default)]
pub struct ParseOutcome {
    /// The batches, in input order.
    pub batches: Vec<RecordBatch>,
    /// Accepted and rejected counts, and error samples.
    pub report: ParseReport,
}

/// Parses a whole payload for `schema`'s table, growing the schema (unless the payload is
/// refused: then the schema is left as it was).
///
/// # Errors
/// [`IngestError::Refused`] under [`ErrorPolicy::Refuse`] or when the payload cannot be framed
/// at all (see [`Parser::next_batch`]); [`IngestError::Read`] if reading fails.
pub fn parse_payload<R: BufRead>(
    input: R,
    format: Format,
    schema: &mut TableSchema,
    options: &ParseOptions,
    clock: &dyn Clock,
) -> Result<ParseOutcome, IngestError> {
    // A refused payload leaves the schema as it was.
    let before = (options.on_error == ErrorPolicy::Refuse).then(|| schema.clone());
    let run = |schema: &mut TableSchema| {
        let mut parser = Parser::new(input, format, schema, options.clone(), clock.now())?;
        let mut batches = Vec::new();
        while let Some(batch) = parser.next_batch()? {
            batches.push(batch);
        }
        Ok(ParseOutcome {
            batches,
            report: parser.into_report(),
        })
    };
    let result = run(schema);
    if result.is_err()
        && let Some(before) = before
    {
        *schema = before;
    }
    result
}

/// [`parse_payload`] of a JSON array held whole in memory (`Format::JsonArray`): under
/// [`ErrorPolicy::Refuse`] serde_json reads the array in one pass, each element's fields
/// borrowed from `payload` (`array.rs`); whatever that pass does not take (a refusal
/// among others) goes to the streaming parser, so the outcome is [`parse_payload`]'s.
///
/// # Errors
/// As [`parse_payload`].
pub fn parse_json_array(
    payload: &[u8],
    schema: &mut TableSchema,
    options: &ParseOptions,
    clock: &dyn Clock,
) -> Result<ParseOutcome, IngestError> {
    // Only a refusing parse has a pass to try: a skipping one goes straight to the streaming
    // parser, without the copy of the schema the pass's failure would need.
    if options.on_error == ErrorPolicy::Refuse && options.validate().is_ok() {
        let before = schema.clone();
        let received = clock.now().timestamp_micros();
        if let Some(batches) = array::one_pass(payload, schema, options, received) {
            let accepted = batches.iter().map(|b| b.num_rows() as u64).sum();
            return Ok(ParseOutcome {
                batches,
                report: ParseReport {
                    accepted,
                    ..ParseReport::default()
                },
            });
        }
        *schema = before;
    }
    parse_payload(payload, Format::JsonArray, schema, options, clock)
}

enum Source<R> {
    JsonLines(LineReader<R>),
    JsonArray(ArraySplitter<R>),
    Text(LineReader<R>),
    Csv(Box<csv::CsvSource<R>>),
}

/// Where one framed record lies in the chunk buffer.
struct Span {
    bytes: Range<usize>,
    /// CSV only: where its field ends lie in the ends buffer.
    ends: Range<usize>,
    line: u64,
}

/// A streaming parser of one payload.
pub struct Parser<'s, R> {
    schema: &'s mut TableSchema,
    options: ParseOptions,
    received: DateTime<Utc>,
    source: Source<R>,
    report: ParseReport,
    buf: Vec<u8>,
    ends: Vec<usize>,
    spans: Vec<Span>,
    done: bool,
}

impl<'s, R: BufRead> Parser<'s, R> {
    /// A parser of `input`, for rows received at `received`.
    ///
    /// # Errors
    /// [`IngestError::InvalidOption`]; for CSV, [`IngestError::Refused`] if the header row
    /// cannot be read and [`IngestError::Read`] if reading fails.
    pub fn new(
        mut input: R,
        format: Format,
        schema: &'s mut TableSchema,
        options: ParseOptions,
        received: DateTime<Utc>,
    ) -> Result<Self, IngestError> {
        options.validate()?;
        let table = schema.table().to_owned();
        let read_err = |source| IngestError::Read {
            table: table.clone(),
            line: 1,
            source,
        };
        let source = match format {
            Format::Csv => Source::Csv(Box::new(csv::CsvSource::new(input, &table, &options)?)),
            other => {
                skip_bom(&mut input).map_err(read_err)?;
                let array = match other {
                    Format::JsonArray => true,
                    Format::Json => peek_first_byte(&mut input).map_err(read_err)? == Some(b'['),
                    _ => false,
                };
                if array {
                    Source::JsonArray(ArraySplitter::new(input))
                } else if other == Format::Text {
                    Source::Text(LineReader::new(input))
                } else {
                    Source::JsonLines(LineReader::new(input))
                }
            }
        };
        Ok(Self {
            schema,
            options,
            received,
            source,
            report: ParseReport::default(),
            buf: Vec::new(),
            ends: Vec::new(),
            spans: Vec::new(),
            done: false,
        })
    }

    /// The counts so far.
    pub fn report(&self) -> &ParseReport {
        &self.report
    }

    /// The counts, once parsing is over.
    pub fn into_report(self) -> ParseReport {
        self.report
    }

    /// The next batch, or `None` at the end of the input.
    ///
    /// # Errors
    /// [`IngestError::Refused`] for a malformed record under [`ErrorPolicy::Refuse`], and always
    /// when a JSON array's framing is broken after its last good element was parsed under
    /// `Refuse`; [`IngestError::Read`] if reading fails; [`IngestError::Arrow`] if a batch cannot
    /// be built.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, IngestError> {
        while !self.done {
            self.fill_chunk()?;
            if let Some(batch) = self.build_chunk()? {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }

    fn fill_chunk(&mut self) -> Result<(), IngestError> {
        self.buf.clear();
        self.ends.clear();
        self.spans.clear();
        let max = self.options.max_record_bytes;
        while self.spans.len() < self.options.batch_rows
            && self.buf.len() < self.options.chunk_bytes
        {
            let start = self.buf.len();
            let ends_start = self.ends.len();
            let framed = match &mut self.source {
                Source::JsonLines(r) | Source::Text(r) => r.next(&mut self.buf, max),
                Source::JsonArray(r) => r.next(&mut self.buf, max),
                Source::Csv(r) => r.next(&mut self.buf, &mut self.ends, max),
            }
            .map_err(|source| IngestError::Read {
                table: self.schema.table().to_owned(),
                line: self.source_line(),
                source,
            })?;
            match framed {
                Framed::Record { line } => self.spans.push(Span {
                    bytes: start..self.buf.len(),
                    ends: ends_start..self.ends.len(),
                    line,
                }),
                Framed::TooLarge { line, bytes } => {
                    let reason = format!(
                        "record of {bytes} bytes exceeds the limit of {max} bytes; skipped"
                    );
                    self.reject(line, reason)?;
                }
                Framed::Broken { line, reason } => {
                    self.done = true;
                    self.reject(line, reason)?;
                    break;
                }
                Framed::End => {
                    self.done = true;
                    break;
                }
            }
        }
        Ok(())
    }

    fn source_line(&self) -> u64 {
        match &self.source {
            Source::JsonLines(r) | Source::Text(r) => r.line(),
            Source::JsonArray(r) => r.line(),
            Source::Csv(r) => r.line(),
        }
    }

    fn build_chunk(&mut self) -> Result<Option<RecordBatch>, IngestError> {
        let received = self.received.timestamp_micros();
        let mut builder = ChunkBuilder::new(received, self.options.max_columns);
        builder.expect_rows(self.spans.len());
        let mut rejected = Vec::new();
        let mut json_fields = Vec::new();
        let syslog_year = text::SyslogYear::new(self.received);
        for span in &self.spans {
            let bytes = &self.buf[span.bytes.clone()];
            let Ok(record) = std::str::from_utf8(bytes) else {
                rejected.push((span.line, "record is not valid UTF-8".to_owned()));
                continue;
            };
            if record.trim().is_empty() && !matches!(self.source, Source::Csv(_)) {
                continue;
            }
            builder.begin_row();
            let result = match &self.source {
                Source::JsonLines(_) | Source::JsonArray(_) => {
                    json::push_record(&mut builder, self.schema, record, &mut json_fields)
                }
                Source::Text(_) => text::push_line(&mut builder, self.schema, record, &syslog_year),
                Source::Csv(src) => src.push_record(
                    &mut builder,
                    self.schema,
                    record,
                    &self.ends[span.ends.clone()],
                ),
            };
            match result {
                Ok(()) => builder.end_row(),
                Err(reason) => {
                    builder.abort_row();
                    rejected.push((span.line, reason));
                }
            }
        }
        if self.options.on_error == ErrorPolicy::Refuse && !rejected.is_empty() {
            let (line, reason) = rejected.swap_remove(0);
            // Refused before the schema grows with this chunk.
            return Err(self.refuse(line, reason));
        }
        let rows = builder.rows() as u64;
        let batch = builder.finish(self.schema)?;
        for (line, reason) in rejected {
            self.reject(line, reason)?;
        }
        self.report.accepted += rows;
        Ok(batch)
    }

    fn refuse(&mut self, line: u64, reason: String) -> IngestError {
        self.done = true;
        IngestError::Refused {
            table: self.schema.table().to_owned(),
            line,
            reason,
        }
    }

    fn reject(&mut self, line: u64, reason: String) -> Result<(), IngestError> {
        if self.options.on_error == ErrorPolicy::Refuse {
            return Err(self.refuse(line, reason));
        }
        tracing::debug!(table = %self.schema.table(), line, %reason, "record rejected");
        self.report.rejected += 1;
        if self.report.errors.len() < self.options.max_error_samples {
            self.report.errors.push(RecordError { line, reason });
        }
        Ok(())
    }
}
