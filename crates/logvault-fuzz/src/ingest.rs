//! Targets of the ingest parsers: JSON lines, JSON arrays, CSV and text (syslog) lines.
//!
//! Every payload is parsed with small limits (so that the record-size, chunk and column limits
//! are reached by small inputs), under both error policies, and checked:
//! - `Skip` never fails, except a CSV payload refused at its header (line 1);
//! - every batch has the two system columns first, never null, and only columns of the table;
//! - `accepted` is the number of rows handed out; the error samples are the first rejections;
//! - `Refuse` accepts exactly the payloads `Skip` finds nothing wrong with, with the same rows,
//!   and refuses the others at the line of `Skip`'s first error, leaving the schema unchanged;
//! - the counts do not depend on how the input is cut into chunks;
//! - JSON lines and text lines are also checked against a reference reading of each line
//!   (`serde_json` for JSON): which lines are accepted, and every cell of every row.

use std::io::Cursor;

use arrow::array::{
    Array, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{TimeZone, Utc};
use logvault_core::TestClock;
use logvault_ingest::time::{epoch_float_to_micros, epoch_int_to_micros, parse_timestamp};
use logvault_ingest::{
    ErrorPolicy, Format, IngestError, ParseOptions, ParseOutcome, TableSchema, parse_payload,
};
use serde_json::value::RawValue;

/// The options of the fuzz runs: small, so that limits are reached.
pub fn small_options() -> ParseOptions {
    ParseOptions {
        batch_rows: 7,
        chunk_bytes: 300,
        max_record_bytes: 512,
        max_columns: 24,
        max_error_samples: 3,
        ..ParseOptions::default()
    }
}

fn clock() -> TestClock {
    TestClock::new(
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .unwrap_or_default(),
    )
}

fn parse(
    format: Format,
    data: &[u8],
    options: &ParseOptions,
) -> (TableSchema, Result<ParseOutcome, IngestError>) {
    let mut schema = crate::setup("table schema", TableSchema::new("FuzzTable"));
    let out = parse_payload(Cursor::new(data), format, &mut schema, options, &clock());
    (schema, out)
}

/// What a parse produced, for the tests' statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Rows accepted.
    pub accepted: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Whether the payload was refused as a whole (a CSV header).
    pub refused: bool,
}

/// Parses `data` as `format` and checks every invariant above; panics naming the one broken.
pub fn parse_target(format: Format, data: &[u8]) -> Summary {
    let options = small_options();
    let (schema, skip) = parse(format, data, &options);
    let out = match skip {
        Ok(out) => out,
        Err(IngestError::Refused {
            line: 1, reason, ..
        }) if format == Format::Csv => {
            assert!(!reason.is_empty(), "a refusal without a reason");
            let refuse = ParseOptions {
                on_error: ErrorPolicy::Refuse,
                ..options
            };
            assert!(
                matches!(
                    parse(format, data, &refuse).1,
                    Err(IngestError::Refused { line: 1, .. })
                ),
                "a CSV header refused under Skip but not under Refuse"
            );
            return Summary {
                refused: true,
                ..Summary::default()
            };
        }
        Err(e) => panic!("{format:?}: the Skip policy failed the payload: {e}"),
    };
    check_outcome(&schema, &out, &options);

    // Refuse: the same rows, or a refusal at Skip's first error.
    let refuse = ParseOptions {
        on_error: ErrorPolicy::Refuse,
        ..options.clone()
    };
    let (refused_schema, strict) = parse(format, data, &refuse);
    match strict {
        Ok(strict) => {
            assert_eq!(
                out.report.rejected, 0,
                "Refuse accepted a payload Skip rejected records of"
            );
            assert_eq!(
                strict.batches, out.batches,
                "Refuse and Skip gave different rows"
            );
        }
        Err(IngestError::Refused { line, reason, .. }) => {
            let first = out.report.errors.first().unwrap_or_else(|| {
                panic!("Refuse refused line {line} ({reason}) of a payload Skip found clean")
            });
            assert_eq!(
                line, first.line,
                "Refuse and Skip disagree on the first bad line"
            );
            let fresh = crate::setup("table schema", TableSchema::new("FuzzTable"));
            assert_eq!(
                refused_schema, fresh,
                "a refused payload changed the schema"
            );
        }
        Err(e) => panic!("Refuse failed otherwise than by refusing: {e}"),
    }

    // Chunking: one row per batch counts the same.
    let one = ParseOptions {
        batch_rows: 1,
        chunk_bytes: 1,
        ..options.clone()
    };
    let (_, by_one) = parse(format, data, &one);
    let by_one = by_one.unwrap_or_else(|e| panic!("one row per batch failed: {e}"));
    assert_eq!(
        (by_one.report.accepted, by_one.report.rejected),
        (out.report.accepted, out.report.rejected),
        "the counts depend on the chunking"
    );

    match format {
        Format::JsonLines => check_json_lines(data),
        Format::Text => check_text_lines(data),
        _ => {}
    }
    Summary {
        accepted: out.report.accepted,
        rejected: out.report.rejected,
        refused: false,
    }
}

fn check_outcome(schema: &TableSchema, out: &ParseOutcome, options: &ParseOptions) {
    let rows: usize = out.batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(
        rows as u64, out.report.accepted,
        "accepted differs from the rows handed out"
    );
    let samples = out.report.rejected.min(options.max_error_samples as u64);
    assert_eq!(
        out.report.errors.len() as u64,
        samples,
        "error samples are not the first rejections"
    );
    for e in &out.report.errors {
        assert!(
            e.line >= 1 && !e.reason.is_empty(),
            "an error without line or reason: {e:?}"
        );
    }
    assert!(
        schema.len() <= options.max_columns,
        "the column limit was passed"
    );
    for batch in &out.batches {
        assert!(batch.num_rows() > 0, "an empty batch");
        assert!(
            batch.num_rows() <= options.batch_rows,
            "a batch over batch_rows"
        );
        let s = batch.schema();
        assert_eq!(s.field(0).name(), "TimeGenerated");
        assert_eq!(s.field(1).name(), "_TimeReceived");
        for i in 0..2 {
            assert_eq!(batch.column(i).null_count(), 0, "a null system time");
        }
        for f in s.fields() {
            assert!(
                schema.get(f.name()).is_some(),
                "column {} is not in the table",
                f.name()
            );
        }
    }
}

/// How the reference reads one line of a line-framed payload.
enum Line {
    Skipped,
    Rejected,
    Accepted(String),
}

fn reference_lines(data: &[u8], max: usize) -> Vec<Line> {
    let mut out = Vec::new();
    let mut pieces: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    for piece in pieces {
        if piece.len() > max {
            out.push(Line::Rejected);
            continue;
        }
        let piece = piece.strip_suffix(b"\r").unwrap_or(piece);
        match std::str::from_utf8(piece) {
            Err(_) => out.push(Line::Rejected),
            Ok(s) if s.trim().is_empty() => out.push(Line::Skipped),
            Ok(s) => out.push(Line::Accepted(s.to_owned())),
        }
    }
    out
}

fn without_bom(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data)
}

fn big_options() -> ParseOptions {
    ParseOptions {
        max_columns: 100_000,
        ..small_options()
    }
}

/// Text lines: one row per line that is not blank, whose `Message` is the line exactly.
fn check_text_lines(data: &[u8]) {
    let options = big_options();
    let (_, out) = parse(Format::Text, data, &options);
    let out = out.unwrap_or_else(|e| panic!("text: {e}"));
    let lines = reference_lines(without_bom(data), options.max_record_bytes);
    let expected: Vec<&str> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Accepted(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let rejected = lines.iter().filter(|l| matches!(l, Line::Rejected)).count() as u64;
    let mut got = Vec::new();
    for b in &out.batches {
        let col = b
            .column_by_name("Message")
            .unwrap_or_else(|| panic!("text: a batch without Message"));
        let col = col.as_string::<i32>();
        for i in 0..col.len() {
            got.push(col.value(i).to_owned());
        }
    }
    assert_eq!(got, expected, "text: the Message column is not the lines");
    assert_eq!(
        out.report.rejected, rejected,
        "text: rejected lines differ from the reference"
    );
}

/// JSON lines against serde_json: a line is accepted if it is an object whose `TimeGenerated`
/// (any case) is absent, null or a timestamp; each accepted row's cells hold its values.
fn check_json_lines(data: &[u8]) {
    let options = big_options();
    let (_, out) = parse(Format::JsonLines, data, &options);
    let out = out.unwrap_or_else(|e| panic!("json lines: {e}"));
    let mut expected = Vec::new();
    let mut rejected = 0u64;
    for line in reference_lines(without_bom(data), options.max_record_bytes) {
        match line {
            Line::Skipped => {}
            Line::Rejected => rejected += 1,
            Line::Accepted(s) => match reference_row(&s) {
                Some(row) => expected.push(row),
                None => rejected += 1,
            },
        }
    }
    assert_eq!(
        (out.report.accepted, out.report.rejected),
        (expected.len() as u64, rejected),
        "json lines: accepted and rejected differ from serde_json's reading"
    );
    let mut row = 0;
    for batch in &out.batches {
        for i in 0..batch.num_rows() {
            let want = &expected[row];
            row += 1;
            for (name, raw) in &want.fields {
                let col = batch.column_by_name(name);
                check_cell(col.map(|c| (c.as_ref(), i)), raw, name);
            }
            if let Some(t) = want.time {
                let tg = batch
                    .column(0)
                    .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
                assert_eq!(tg.value(i), t, "json lines: TimeGenerated differs");
            }
        }
    }
}

struct RefRow {
    /// Final column name and raw JSON value, last occurrence winning.
    fields: Vec<(String, String)>,
    time: Option<i64>,
}

fn unescape(raw: &str) -> String {
    serde_json::from_str::<String>(raw).unwrap_or_else(|e| panic!("reference: string {raw}: {e}"))
}

fn reference_row(line: &str) -> Option<RefRow> {
    let pairs = ordered_pairs(line)?;
    // The parser decodes every string value of the record, and a lone surrogate escape
    // (`"\ud800"`: no character) fails it, so the line is rejected; `RawValue` lets it through
    // (found by AFL++, docs/reliability.md). Objects and arrays are kept as their text.
    if pairs
        .iter()
        .any(|(_, raw)| raw.starts_with('"') && serde_json::from_str::<String>(raw).is_err())
    {
        return None;
    }
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut time = None;
    let mut fallback = None;
    for (pos, (key, raw)) in pairs.into_iter().enumerate() {
        if key.eq_ignore_ascii_case("TimeGenerated") {
            if raw != "null" {
                time = Some(time_of(&raw)?);
            }
            continue;
        }
        if raw == "null" {
            continue;
        }
        if key.eq_ignore_ascii_case("timestamp") {
            fallback = time_of(&raw).or(fallback);
        }
        let name = if key.is_empty() {
            format!("Column{}", pos + 1)
        } else if key == "_TimeReceived" {
            "_TimeReceived_".to_owned()
        } else {
            key
        };
        fields.retain(|(n, _)| *n != name);
        fields.push((name, raw));
    }
    Some(RefRow {
        fields,
        time: time.or(fallback),
    })
}

fn time_of(raw: &str) -> Option<i64> {
    match raw.as_bytes().first()? {
        b'"' => parse_timestamp(&unescape(raw)),
        b'-' | b'0'..=b'9' => match raw.parse::<i64>() {
            Ok(i) => epoch_int_to_micros(i),
            Err(_) => raw
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map_or_else(|| parse_timestamp(raw), epoch_float_to_micros),
        },
        _ => None,
    }
}

/// The key-value pairs of a JSON object in order, duplicates kept, values as their raw text;
/// `None` if the line is not one JSON object.
fn ordered_pairs(line: &str) -> Option<Vec<(String, String)>> {
    let mut de = serde_json::Deserializer::from_str(line);
    let pairs = serde::de::Deserializer::deserialize_map(&mut de, PairsVisitor).ok()?;
    de.end().ok()?;
    Some(pairs)
}

struct PairsVisitor;

impl<'de> serde::de::Visitor<'de> for PairsVisitor {
    type Value = Vec<(String, String)>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
            out.push((k, v.get().to_owned()));
        }
        Ok(out)
    }
}

/// Checks that the cell at `col` holds the JSON value `raw` as its type allows: a string
/// column holds a string unescaped and any other value's text exactly as sent; a number, bool or
/// time column holds the value itself.
fn check_cell(col: Option<(&dyn Array, usize)>, raw: &str, name: &str) {
    let Some((col, i)) = col else {
        panic!("column {name:?} of a row is missing from its batch");
    };
    assert!(col.is_valid(i), "column {name:?}: a value became null");
    let is_string = raw.starts_with('"');
    match col.data_type() {
        DataType::Utf8 => {
            let got = col.as_string::<i32>().value(i);
            let want = if is_string {
                unescape(raw)
            } else {
                raw.to_owned()
            };
            assert_eq!(got, want, "column {name:?}: text differs");
        }
        DataType::Int64 => {
            let got = col
                .as_any()
                .downcast_ref::<Int64Array>()
                .map(|a| a.value(i));
            assert_eq!(
                got,
                raw.parse::<i64>().ok(),
                "column {name:?}: integer differs from {raw}"
            );
        }
        DataType::Float64 => {
            let got = col
                .as_any()
                .downcast_ref::<Float64Array>()
                .map(|a| a.value(i));
            let want = match raw.parse::<i64>() {
                Ok(n) => Some(n as f64),
                Err(_) => raw.parse::<f64>().ok(),
            };
            assert_eq!(got, want, "column {name:?}: number differs from {raw}");
        }
        DataType::Boolean => {
            let got = col
                .as_any()
                .downcast_ref::<BooleanArray>()
                .map(|a| a.value(i));
            let want = match raw {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            };
            assert_eq!(got, want, "column {name:?}: bool differs from {raw}");
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let got = col
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .map(|a| a.value(i));
            let want = is_string
                .then(|| unescape(raw))
                .as_deref()
                .and_then(parse_timestamp);
            assert_eq!(got, want, "column {name:?}: timestamp differs from {raw}");
        }
        other => panic!("column {name:?} has type {other}, which the parser never makes"),
    }
}
