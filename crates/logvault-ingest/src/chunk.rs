//! Turns the records of one chunk of a payload into one Arrow `RecordBatch`.
//!
//! Values are collected column by column, sparsely (only non-null cells, with their row), so that
//! wide and sparse schemas (226 columns, most of them empty) cost memory in proportion to what
//! is there. When the chunk is complete each column's kind is the widening of its values and of
//! the table's current kind, the table schema grows, and the arrays are built in one pass.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::datatypes::Schema;

use crate::IngestError;
use crate::kind::{ColumnKind, TIME_GENERATED, TIME_RECEIVED, UTC};
use crate::schema::{TableSchema, column_field, free_name};
use crate::time::{epoch_float_to_micros, epoch_int_to_micros, parse_timestamp};
use crate::value::{Cell, Scalar};

/// Name of the optional source of `TimeGenerated` when a record has none (any case).
const TIMESTAMP_FIELD: &str = "timestamp";

struct ChunkColumn<'a> {
    name: String,
    zone: Option<String>,
    cells: Vec<(u32, Cell<'a>)>,
}

/// Collects the rows of one chunk.
pub(crate) struct ChunkBuilder<'a> {
    columns: Vec<ChunkColumn<'a>>,
    index: HashMap<String, usize>,
    /// The column of the n-th field pushed in recent rows: records of one source mostly give
    /// their fields in the same order, so a name compared with its hint skips the hash lookup.
    /// Only a hint (columns an aborted row added are gone): the name decides.
    hint: Vec<usize>,
    /// Fields pushed in the current row so far (the hint's position).
    field: usize,
    rows: u32,
    times: Vec<i64>,
    row_time: Option<i64>,
    /// The columns named `timestamp` (any case, no zone), in the chunk's order: where a row
    /// without `TimeGenerated` takes its time from, as it stands when the row ends.
    timestamp_columns: Vec<usize>,
    row_first_new_column: usize,
    received: i64,
    max_columns: usize,
    /// Rows this chunk is expected to hold ([`ChunkBuilder::expect_rows`]): a column found dense
    /// in its first rows gets room for them all at once, rather than growing by doubling
    /// (each growth a copy of every cell so far).
    expected_rows: usize,
}

/// Cells a column holds before it may be found dense: it is, when they came in at most twice
/// as many rows.
const DENSE_PROBE: usize = 64;

impl<'a> ChunkBuilder<'a> {
    /// A builder for rows received at `received` (UTC microseconds), adding at most
    /// `max_columns` columns to a table in total.
    pub(crate) fn new(received: i64, max_columns: usize) -> Self {
        Self {
            columns: Vec::new(),
            index: HashMap::new(),
            hint: Vec::new(),
            field: 0,
            rows: 0,
            times: Vec::new(),
            row_time: None,
            timestamp_columns: Vec::new(),
            row_first_new_column: 0,
            received,
            max_columns,
            expected_rows: 0,
        }
    }

    /// Says how many rows this chunk will likely hold (a hint: more or fewer may come).
    pub(crate) fn expect_rows(&mut self, rows: usize) {
        self.expected_rows = rows;
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows as usize
    }

    pub(crate) fn begin_row(&mut self) {
        self.row_time = None;
        self.row_first_new_column = self.columns.len();
        self.field = 0;
    }

    /// Sets the current row's time (what a `TimeGenerated` field that is a timestamp does).
    pub(crate) fn set_row_time(&mut self, micros: i64) {
        self.row_time = Some(micros);
    }

    /// Adds one field of the current row. `cell` is `None` for a null. A field named
    /// `TimeGenerated` (any case) becomes the row's time and must be a timestamp; a field named
    /// `timestamp` (any case) is kept and also gives the time of a row without `TimeGenerated`.
    /// The last of two fields with the same name wins ([`ChunkBuilder::push_null`] for a null
    /// that must win too).
    ///
    /// Returns the reason the row must be rejected, if it must.
    pub(crate) fn push_field(
        &mut self,
        schema: &TableSchema,
        name: &str,
        zone: Option<&str>,
        cell: Option<Cell<'a>>,
    ) -> Result<(), String> {
        if name.eq_ignore_ascii_case(TIME_GENERATED) {
            if let Some(cell) = cell {
                let t = time_of(&cell).ok_or_else(|| {
                    format!(
                        "{TIME_GENERATED} {:?} is not a recognised timestamp",
                        cell.text
                    )
                })?;
                self.set_row_time(t);
            }
            return Ok(());
        }
        let Some(cell) = cell else {
            return Ok(());
        };
        let name = stored_name(name);
        let name = name.as_ref();
        let i = match self.hint.get(self.field) {
            Some(&i) if self.columns.get(i).is_some_and(|c| c.name == name) => i,
            _ => {
                let i = match self.index.get(name) {
                    Some(&i) => i,
                    None => self.add_column(schema, name, zone)?,
                };
                match self.hint.get_mut(self.field) {
                    Some(h) => *h = i,
                    None => self.hint.push(i),
                }
                i
            }
        };
        self.field += 1;
        let cells = &mut self.columns[i].cells;
        match cells.last_mut() {
            Some((row, last)) if *row == self.rows => *last = cell,
            _ => {
                if cells.len() == DENSE_PROBE
                    && (self.rows as usize) < 2 * DENSE_PROBE
                    && self.expected_rows > cells.capacity()
                {
                    cells.reserve_exact(self.expected_rows - cells.len());
                }
                cells.push((self.rows, cell));
            }
        }
        Ok(())
    }

    /// An explicit null for `name` in the current row: what a field of the same name gave
    /// earlier in this row is dropped, as the last of two fields wins. Only for formats where a
    /// name can repeat in a record (JSON objects); others pass `None` to
    /// [`ChunkBuilder::push_field`], which costs no lookup (a wide CSV export is mostly empty
    /// fields).
    pub(crate) fn push_null(&mut self, name: &str) {
        if name.eq_ignore_ascii_case(TIME_GENERATED) {
            self.row_time = None;
            return;
        }
        if let Some(&i) = self.index.get(stored_name(name).as_ref()) {
            let cells = &mut self.columns[i].cells;
            if cells.last().is_some_and(|(row, _)| *row == self.rows) {
                cells.pop();
            }
        }
    }

    fn add_column(
        &mut self,
        schema: &TableSchema,
        name: &str,
        zone: Option<&str>,
    ) -> Result<usize, String> {
        if schema.get(name).is_none() {
            let new_here = self
                .columns
                .iter()
                .filter(|c| schema.get(&c.name).is_none())
                .count();
            if schema.len() + new_here >= self.max_columns {
                return Err(format!(
                    "column {name:?} would take table {} past its limit of {} columns",
                    schema.table(),
                    self.max_columns
                ));
            }
        }
        let i = self.columns.len();
        if zone.is_none() && name.eq_ignore_ascii_case(TIMESTAMP_FIELD) {
            self.timestamp_columns.push(i);
        }
        self.columns.push(ChunkColumn {
            name: name.to_owned(),
            zone: zone.map(str::to_owned),
            cells: Vec::new(),
        });
        self.index.insert(name.to_owned(), i);
        Ok(i)
    }

    /// Drops what the current row added.
    pub(crate) fn abort_row(&mut self) {
        for col in &mut self.columns {
            if col.cells.last().is_some_and(|(row, _)| *row == self.rows) {
                col.cells.pop();
            }
        }
        for col in self.columns.drain(self.row_first_new_column..) {
            self.index.remove(&col.name);
        }
        let kept = self.row_first_new_column;
        self.timestamp_columns.retain(|&i| i < kept);
    }

    pub(crate) fn end_row(&mut self) {
        let t = match self.row_time {
            Some(t) => t,
            None => self.timestamp_time().unwrap_or(self.received),
        };
        self.times.push(t);
        self.rows += 1;
    }

    /// The time the current row's `timestamp` field gives, as stored (the last of a repeated
    /// key, not one a later null or non-time value replaced); of several fields named so in
    /// different cases, the first column of the chunk that holds a time.
    fn timestamp_time(&self) -> Option<i64> {
        self.timestamp_columns
            .iter()
            .find_map(|&i| match self.columns[i].cells.last() {
                Some((row, cell)) if *row == self.rows => time_of(cell),
                _ => None,
            })
    }

    /// Grows `schema` with this chunk's columns and builds the batch: `TimeGenerated`,
    /// `_TimeReceived`, then the chunk's non-null columns in the table's column order. `None`
    /// for a chunk without rows.
    pub(crate) fn finish(
        self,
        schema: &mut TableSchema,
    ) -> Result<Option<RecordBatch>, IngestError> {
        if self.rows == 0 {
            return Ok(None);
        }
        let rows = self.rows;
        let mut present = Vec::with_capacity(self.columns.len());
        for col in self.columns {
            let kind = col
                .cells
                .iter()
                .fold(ColumnKind::Null, |k, (_, c)| k.widen(c.scalar.kind()));
            schema.observe(&col.name, kind, col.zone.as_deref());
            if let Some(def) = schema.get(&col.name)
                && def.kind != ColumnKind::Null
            {
                present.push((
                    schema.position(&col.name).unwrap_or(usize::MAX),
                    def.kind,
                    col,
                ));
            }
        }
        present.sort_by_key(|(pos, _, _)| *pos);

        let mut fields = Vec::with_capacity(present.len() + 2);
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(present.len() + 2);
        fields.push(column_field(TIME_GENERATED, ColumnKind::Timestamp, None));
        arrays.push(Arc::new(
            TimestampMicrosecondArray::from(self.times).with_timezone(UTC),
        ));
        fields.push(column_field(TIME_RECEIVED, ColumnKind::Timestamp, None));
        arrays.push(Arc::new(
            TimestampMicrosecondArray::from(vec![self.received; rows as usize]).with_timezone(UTC),
        ));
        for (_, kind, col) in present {
            fields.push(column_field(&col.name, kind, col.zone.as_deref()));
            arrays.push(build_array(kind, &col.cells, rows));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map(Some)
            .map_err(|e| IngestError::arrow(schema.table(), e))
    }
}

/// The column a field named `name` is stored in: its own name, except a field sent as
/// `_TimeReceived`, the system column logvault fills itself (docs/ingest.md).
fn stored_name(name: &str) -> Cow<'_, str> {
    if name == TIME_RECEIVED {
        Cow::Owned(free_name(TIME_RECEIVED, |n| n == TIME_RECEIVED))
    } else {
        Cow::Borrowed(name)
    }
}

/// The time a value stands for, when it is the source of `TimeGenerated`.
fn time_of(cell: &Cell<'_>) -> Option<i64> {
    match cell.scalar {
        Scalar::Time(t) => Some(t),
        Scalar::Int(n) => epoch_int_to_micros(n),
        Scalar::Float(x) => epoch_float_to_micros(x),
        Scalar::Str => parse_timestamp(&cell.text),
        Scalar::Bool(_) | Scalar::Json => None,
    }
}

/// Fills a column of `rows` rows from sparse cells whose kinds all widen to `kind`.
fn build_array(kind: ColumnKind, cells: &[(u32, Cell<'_>)], rows: u32) -> ArrayRef {
    let n = rows as usize;
    match kind {
        ColumnKind::Bool => {
            let mut b = sparse(
                BooleanBuilder::with_capacity(n),
                cells,
                rows,
                |b, c| match c.scalar {
                    Scalar::Bool(v) => b.append_value(v),
                    _ => b.append_null(),
                },
                BooleanBuilder::append_nulls,
            );
            Arc::new(b.finish())
        }
        ColumnKind::Int => {
            let mut b = sparse(
                Int64Builder::with_capacity(n),
                cells,
                rows,
                |b, c| match c.scalar {
                    Scalar::Int(v) => b.append_value(v),
                    _ => b.append_null(),
                },
                Int64Builder::append_nulls,
            );
            Arc::new(b.finish())
        }
        ColumnKind::Float => {
            let mut b = sparse(
                Float64Builder::with_capacity(n),
                cells,
                rows,
                |b, c| match c.scalar {
                    Scalar::Int(v) => b.append_value(v as f64),
                    Scalar::Float(v) => b.append_value(v),
                    _ => b.append_null(),
                },
                Float64Builder::append_nulls,
            );
            Arc::new(b.finish())
        }
        ColumnKind::Timestamp => {
            let mut b = sparse(
                TimestampMicrosecondBuilder::with_capacity(n).with_timezone(UTC),
                cells,
                rows,
                |b, c| match c.scalar {
                    Scalar::Time(v) => b.append_value(v),
                    _ => b.append_null(),
                },
                TimestampMicrosecondBuilder::append_nulls,
            );
            Arc::new(b.finish())
        }
        ColumnKind::Dynamic | ColumnKind::String | ColumnKind::Null => {
            let bytes = cells.iter().map(|(_, c)| c.text.len()).sum();
            let mut b = sparse(
                StringBuilder::with_capacity(n, bytes),
                cells,
                rows,
                |b, c| b.append_value(&c.text),
                StringBuilder::append_nulls,
            );
            Arc::new(b.finish())
        }
    }
}

/// Appends `rows` values to `b`: the cells at their rows, nulls in between.
fn sparse<B>(
    mut b: B,
    cells: &[(u32, Cell<'_>)],
    rows: u32,
    append: impl Fn(&mut B, &Cell<'_>),
    nulls: impl Fn(&mut B, usize),
) -> B {
    let mut next = 0u32;
    for (row, cell) in cells {
        nulls(&mut b, (row - next) as usize);
        append(&mut b, cell);
        next = row + 1;
    }
    nulls(&mut b, (rows - next) as usize);
    b
}
