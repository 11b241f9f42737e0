//! Rows built value by value by a caller that decoded its own format (a server decoding OTLP),
//! typed as the JSON parser types them: the same batches as writing each row as a JSON object
//! and parsing it ([`crate::parse`]), without the text in between.
//!
//! A value is given with its JSON type: a string is a timestamp when it has a timestamp form
//! (else text), an integer is `Int`, a number `Float` (a non-finite one is a null, as JSON has
//! no such number), JSON text is dynamic. Columns take the widening of their values and grow
//! the table's schema as the parser's do; batches hold at most
//! [`crate::ParseOptions::batch_rows`] rows.

use std::borrow::Cow;
use std::sync::LazyLock;

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};

use crate::IngestError;
use crate::chunk::ChunkBuilder;
use crate::schema::TableSchema;
use crate::time::parse_timestamp;
use crate::value::{Cell, Scalar};

/// Builds the batches of one payload row by row (see the module documentation).
pub struct RowBuilder<'a> {
    chunk: ChunkBuilder<'a>,
    received: i64,
    max_columns: usize,
    batch_rows: usize,
    batches: Vec<RecordBatch>,
    row_error: Option<String>,
}

impl std::fmt::Debug for RowBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowBuilder")
            .field("rows", &self.chunk.rows())
            .field("batches", &self.batches.len())
            .finish_non_exhaustive()
    }
}

impl<'a> RowBuilder<'a> {
    /// A builder of rows received at `received`, with the parser's limits of `options` (most
    /// columns of a table, most rows in a batch).
    pub fn new(received: DateTime<Utc>, options: &crate::ParseOptions) -> Self {
        let received = received.timestamp_micros();
        Self {
            chunk: ChunkBuilder::new(received, options.max_columns),
            received,
            max_columns: options.max_columns,
            batch_rows: options.batch_rows.max(1),
            batches: Vec::new(),
            row_error: None,
        }
    }

    /// Starts a row.
    pub fn begin_row(&mut self) {
        self.row_error = None;
        self.chunk.begin_row();
    }

    fn push(&mut self, schema: &TableSchema, name: &str, cell: Option<Cell<'a>>) {
        if self.row_error.is_none()
            && let Err(e) = self.chunk.push_field(schema, name, None, cell)
        {
            self.row_error = Some(e);
        }
    }

    /// A JSON string: a timestamp if it has one of the timestamp forms, else text.
    pub fn push_str(&mut self, schema: &TableSchema, name: &str, value: Cow<'a, str>) {
        let scalar = parse_timestamp(&value).map_or(Scalar::Str, Scalar::Time);
        self.push(
            schema,
            name,
            Some(Cell {
                text: value,
                scalar,
            }),
        );
    }

    /// A string known to be the timestamp `micros` (UTC microseconds) written as `text` (the
    /// caller formatted it in a timestamp form that reads back as `micros`).
    pub fn push_time(&mut self, schema: &TableSchema, name: &str, text: Cow<'a, str>, micros: i64) {
        self.push(
            schema,
            name,
            Some(Cell {
                text,
                scalar: Scalar::Time(micros),
            }),
        );
    }

    /// The row's `TimeGenerated`, the timestamp `micros` (UTC microseconds): what
    /// [`RowBuilder::push_time`] of a `TimeGenerated` field does, without its text (the row's
    /// time is kept as a number only).
    pub fn push_time_generated(&mut self, micros: i64) {
        if self.row_error.is_none() {
            self.chunk.set_row_time(micros);
        }
    }

    /// A JSON integer.
    pub fn push_int(&mut self, schema: &TableSchema, name: &str, value: i64) {
        self.push(
            schema,
            name,
            Some(Cell {
                text: int_text(value),
                scalar: Scalar::Int(value),
            }),
        );
    }

    /// A JSON number that is not an integer; a non-finite one is a null.
    pub fn push_float(&mut self, schema: &TableSchema, name: &str, value: f64) {
        let cell = value.is_finite().then(|| Cell {
            text: Cow::Owned(serde_json::Value::from(value).to_string()),
            scalar: Scalar::Float(value),
        });
        self.push(schema, name, cell);
    }

    /// A JSON boolean.
    pub fn push_bool(&mut self, schema: &TableSchema, name: &str, value: bool) {
        self.push(
            schema,
            name,
            Some(Cell {
                text: Cow::Borrowed(if value { "true" } else { "false" }),
                scalar: Scalar::Bool(value),
            }),
        );
    }

    /// A JSON object or array, as its JSON text: a dynamic value.
    pub fn push_json(&mut self, schema: &TableSchema, name: &str, text: Cow<'a, str>) {
        self.push(
            schema,
            name,
            Some(Cell {
                text,
                scalar: Scalar::Json,
            }),
        );
    }

    /// Ends the row: kept, or refused with the reason (a column past the table's limit, a
    /// `TimeGenerated` that is not a timestamp), its values dropped.
    ///
    /// # Errors
    /// The reason the row was refused; building a full batch (an Arrow error).
    pub fn end_row(&mut self, schema: &mut TableSchema) -> Result<Result<(), String>, IngestError> {
        if let Some(e) = self.row_error.take() {
            self.chunk.abort_row();
            return Ok(Err(e));
        }
        self.chunk.end_row();
        if self.chunk.rows() >= self.batch_rows {
            self.finish_chunk(schema)?;
        }
        Ok(Ok(()))
    }

    fn finish_chunk(&mut self, schema: &mut TableSchema) -> Result<(), IngestError> {
        let full = std::mem::replace(
            &mut self.chunk,
            ChunkBuilder::new(self.received, self.max_columns),
        );
        if let Some(batch) = full.finish(schema)? {
            self.batches.push(batch);
        }
        Ok(())
    }

    /// The batches of every row kept, `schema` grown with their columns.
    ///
    /// # Errors
    /// An Arrow error building a batch.
    pub fn finish(mut self, schema: &mut TableSchema) -> Result<Vec<RecordBatch>, IngestError> {
        self.finish_chunk(schema)?;
        Ok(self.batches)
    }
}

/// An integer's text: borrowed for the small ones (flags, severities, status codes below 256),
/// which most integer fields of logs are.
fn int_text(value: i64) -> Cow<'static, str> {
    static SMALL: LazyLock<Vec<String>> =
        LazyLock::new(|| (0..256).map(|i| i.to_string()).collect());
    match usize::try_from(value).ok().and_then(|i| SMALL.get(i)) {
        Some(text) => Cow::Borrowed(text),
        None => Cow::Owned(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, ParseOptions, parse_payload};
    use chrono::TimeZone;
    use logvault_core::TestClock;

    /// The rows given value by value give the batches the parser gives for the same rows as
    /// JSON lines.
    #[test]
    fn rows_built_value_by_value_equal_the_parsed_json_lines() {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap();
        let clock = TestClock::new(at);
        let options = ParseOptions {
            batch_rows: 2,
            ..ParseOptions::default()
        };
        let lines = concat!(
            r#"{"TimeGenerated":"2026-01-01T00:00:01.5Z","A":"x","B":1,"C":true,"D":{"k":[1,2]},"E":1.5,"F":"2026-01-02T03:04:05Z"}"#,
            "\n",
            r#"{"A":"y","B":2.5,"C":false,"D":[],"E":2,"G":"2026-01-02"}"#,
            "\n",
            r#"{"TimeGenerated":"2026-01-01T00:00:03Z","A":"2026-01-01T00:00:00Z","B":"text","E":null}"#,
            "\n",
        );
        let mut parsed_schema = TableSchema::new("T").unwrap();
        let parsed = parse_payload(
            std::io::Cursor::new(lines),
            Format::JsonLines,
            &mut parsed_schema,
            &options,
            &clock,
        )
        .unwrap();

        let mut schema = TableSchema::new("T").unwrap();
        let mut b = RowBuilder::new(at, &options);
        b.begin_row();
        let t = parse_timestamp("2026-01-01T00:00:01.5Z").unwrap();
        b.push_time(&schema, "TimeGenerated", "2026-01-01T00:00:01.5Z".into(), t);
        b.push_str(&schema, "A", "x".into());
        b.push_int(&schema, "B", 1);
        b.push_bool(&schema, "C", true);
        b.push_json(&schema, "D", r#"{"k":[1,2]}"#.into());
        b.push_float(&schema, "E", 1.5);
        b.push_str(&schema, "F", "2026-01-02T03:04:05Z".into());
        b.end_row(&mut schema).unwrap().unwrap();
        b.begin_row();
        b.push_str(&schema, "A", "y".into());
        b.push_float(&schema, "B", 2.5);
        b.push_bool(&schema, "C", false);
        b.push_json(&schema, "D", "[]".into());
        b.push_int(&schema, "E", 2);
        b.push_str(&schema, "G", "2026-01-02".into());
        b.end_row(&mut schema).unwrap().unwrap();
        b.begin_row();
        b.push_str(&schema, "TimeGenerated", "2026-01-01T00:00:03Z".into());
        b.push_str(&schema, "A", "2026-01-01T00:00:00Z".into());
        b.push_str(&schema, "B", "text".into());
        b.push_float(&schema, "E", f64::NAN);
        b.end_row(&mut schema).unwrap().unwrap();
        let built = b.finish(&mut schema).unwrap();

        assert_eq!(built.len(), 2);
        assert_eq!(built, parsed.batches);
        assert_eq!(schema, parsed_schema);
    }

    /// The row's time given as a number equals the one given with its text, and integers keep
    /// their texts (small ones borrowed) for a column that widens to strings.
    #[test]
    fn the_row_time_as_a_number_and_integers_widened_to_text() {
        use arrow::array::{AsArray, StringArray};
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap();
        let text = "2026-01-01T00:00:01.5Z";
        let t = parse_timestamp(text).unwrap();
        let values = [255, 256, -1, 0, i64::MAX];
        let build = |numeric: bool| {
            let mut schema = TableSchema::new("T").unwrap();
            let mut b = RowBuilder::new(at, &ParseOptions::default());
            for v in values {
                b.begin_row();
                if numeric {
                    b.push_time_generated(t + v % 1_000_000);
                } else {
                    let t = t + v % 1_000_000;
                    let text = DateTime::from_timestamp_micros(t).unwrap().to_rfc3339();
                    b.push_time(&schema, "TimeGenerated", text.into(), t);
                }
                b.push_int(&schema, "A", v);
                b.end_row(&mut schema).unwrap().unwrap();
            }
            b.begin_row();
            b.push_str(&schema, "A", "x".into());
            b.end_row(&mut schema).unwrap().unwrap();
            b.finish(&mut schema).unwrap()
        };
        let numeric = build(true);
        assert_eq!(numeric, build(false));
        assert_eq!(
            numeric[0].column_by_name("A").unwrap().as_string::<i32>(),
            &StringArray::from(vec!["255", "256", "-1", "0", "9223372036854775807", "x"])
        );
    }

    #[test]
    fn a_row_whose_time_is_not_a_timestamp_is_refused_and_dropped() {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap();
        let mut schema = TableSchema::new("T").unwrap();
        let mut b = RowBuilder::new(at, &ParseOptions::default());
        b.begin_row();
        b.push_str(&schema, "A", "kept?".into());
        b.push_bool(&schema, "TimeGenerated", true);
        let refused = b.end_row(&mut schema).unwrap();
        assert!(refused.unwrap_err().contains("TimeGenerated"));
        b.begin_row();
        b.push_int(&schema, "B", 7);
        b.end_row(&mut schema).unwrap().unwrap();
        let built = b.finish(&mut schema).unwrap();
        assert_eq!(built.len(), 1);
        assert_eq!(built[0].num_rows(), 1);
        assert!(built[0].schema().field_with_name("A").is_err());
        assert!(built[0].schema().field_with_name("B").is_ok());
    }

    /// Fields in another order from row to row, and a refused row whose new column is dropped
    /// and whose place the next new column takes: every value lands in its own column (the
    /// column of the n-th field is only a hint).
    #[test]
    fn fields_in_changing_orders_land_in_their_columns() {
        use arrow::array::{AsArray, Int64Array, StringArray};
        use arrow::datatypes::Int64Type;
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap();
        let mut schema = TableSchema::new("T").unwrap();
        let mut b = RowBuilder::new(at, &ParseOptions::default());
        b.begin_row();
        b.push_int(&schema, "A", 1);
        b.push_str(&schema, "B", "x".into());
        b.end_row(&mut schema).unwrap().unwrap();
        b.begin_row();
        b.push_str(&schema, "B", "y".into());
        b.push_int(&schema, "A", 2);
        b.end_row(&mut schema).unwrap().unwrap();
        b.begin_row();
        b.push_int(&schema, "A", 3);
        b.push_str(&schema, "C", "gone".into());
        b.push_bool(&schema, "TimeGenerated", true);
        assert!(b.end_row(&mut schema).unwrap().is_err());
        b.begin_row();
        b.push_int(&schema, "D", 4);
        b.push_int(&schema, "A", 5);
        b.end_row(&mut schema).unwrap().unwrap();
        let built = b.finish(&mut schema).unwrap();
        assert_eq!(built.len(), 1);
        let batch = &built[0];
        let ints = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone()
        };
        assert_eq!(ints("A"), Int64Array::from(vec![1, 2, 5]));
        assert_eq!(ints("D"), Int64Array::from(vec![None, None, Some(4)]));
        assert_eq!(
            batch.column_by_name("B").unwrap().as_string::<i32>(),
            &StringArray::from(vec![Some("x"), Some("y"), None])
        );
        assert!(batch.column_by_name("C").is_none());
    }
}
