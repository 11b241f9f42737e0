//! Building a segment's needle index as its rows are written.

use std::collections::HashSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use parquet::bloom_filter::Sbbf;

use super::block::NeedleBlock;
use super::{FPP, MAX_AVERAGE_LEN, MIN_SAMPLED, SAMPLE_ROWS};

/// Builds a segment's needle index as its rows are written (in the order they are written,
/// in row groups of the writer's `max_row_group_rows`).
#[derive(Debug)]
pub struct NeedleIndexBuilder {
    rows_per_group: usize,
    rows_in_group: usize,
    state: State,
}

#[derive(Debug)]
enum State {
    /// The first rows, kept until [`SAMPLE_ROWS`] are there to choose the columns.
    Sampling(Vec<RecordBatch>),
    Indexing(Vec<Column>),
}

struct Column {
    index: usize,
    name: String,
    current: Sbbf,
    /// The finished row groups, framed as the block holds them.
    done: Vec<u8>,
}

impl std::fmt::Debug for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Column").field("name", &self.name).finish()
    }
}

impl NeedleIndexBuilder {
    /// A builder for row groups of `rows_per_group` rows.
    pub fn new(rows_per_group: usize) -> Self {
        Self {
            rows_per_group: rows_per_group.max(1),
            rows_in_group: 0,
            state: State::Sampling(Vec::new()),
        }
    }

    /// Takes the next rows written.
    pub fn observe(&mut self, batch: &RecordBatch) {
        match &mut self.state {
            State::Sampling(kept) => {
                kept.push(batch.clone());
                if kept.iter().map(RecordBatch::num_rows).sum::<usize>() >= SAMPLE_ROWS {
                    self.start();
                }
            }
            State::Indexing(_) => self.index(batch),
        }
    }

    /// Bytes held (the filters being built, the finished ones; the sampled rows are the
    /// writer's too).
    pub fn memory(&self) -> usize {
        match &self.state {
            State::Sampling(_) => 0,
            State::Indexing(columns) => columns
                .iter()
                .map(|c| c.current.num_blocks() * 32 + c.done.len())
                .sum(),
        }
    }

    /// The index's block in clear (see [`super::block`]), or `None` when no column was chosen.
    pub fn finish(mut self) -> Option<NeedleBlock> {
        if matches!(self.state, State::Sampling(_)) {
            self.start();
        }
        let rows_in_group = self.rows_in_group;
        let State::Indexing(columns) = self.state else {
            return None;
        };
        let mut block = NeedleBlock::default();
        for mut c in columns {
            if rows_in_group > 0
                && close_group(&mut c, rows_in_group, self.rows_per_group).is_none()
            {
                continue;
            }
            block.push(c.name, &c.done);
        }
        (!block.columns.is_empty()).then_some(block)
    }

    /// Chooses the columns from the sampled rows, then indexes them.
    fn start(&mut self) {
        let State::Sampling(kept) = std::mem::replace(&mut self.state, State::Indexing(Vec::new()))
        else {
            return;
        };
        let Some(first) = kept.first() else {
            return;
        };
        let schema = first.schema();
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(i, _)| identifier_like(&kept, *i))
            .filter_map(|(index, field)| {
                Some(Column {
                    index,
                    name: field.name().clone(),
                    current: new_filter(self.rows_per_group)?,
                    done: Vec::new(),
                })
            })
            .collect();
        self.state = State::Indexing(columns);
        for batch in &kept {
            self.index(batch);
        }
    }

    fn index(&mut self, batch: &RecordBatch) {
        let State::Indexing(columns) = &mut self.state else {
            return;
        };
        if columns.is_empty() {
            return;
        }
        let mut start = 0;
        while start < batch.num_rows() {
            let len = (self.rows_per_group - self.rows_in_group).min(batch.num_rows() - start);
            for c in columns.iter_mut() {
                if let Some(array) = batch.columns().get(c.index) {
                    insert(&mut c.current, &array.slice(start, len));
                }
            }
            start += len;
            self.rows_in_group += len;
            if self.rows_in_group == self.rows_per_group {
                let rows = self.rows_in_group;
                // A column whose filter cannot be written is dropped from the index.
                columns.retain_mut(|c| close_group(c, rows, self.rows_per_group).is_some());
                self.rows_in_group = 0;
            }
        }
    }
}

fn new_filter(rows: usize) -> Option<Sbbf> {
    Sbbf::new_with_ndv_fpp(rows as u64, FPP).ok()
}

/// Folds, frames and keeps the current row group's filter; starts the next one.
fn close_group(c: &mut Column, rows: usize, rows_per_group: usize) -> Option<()> {
    let mut filter = std::mem::replace(&mut c.current, new_filter(rows_per_group)?);
    filter.fold_to_target_fpp(FPP);
    let mut bytes = Vec::new();
    filter.write(&mut bytes).ok()?;
    c.done
        .extend_from_slice(&u32::try_from(rows).ok()?.to_le_bytes());
    c.done
        .extend_from_slice(&u32::try_from(bytes.len()).ok()?.to_le_bytes());
    c.done.extend_from_slice(&bytes);
    Some(())
}

fn insert(filter: &mut Sbbf, array: &dyn Array) {
    for_each_str(array, |v| filter.insert(v));
}

/// Calls `f` with each non-null value of a string array; `false` for another type.
fn for_each_str<'a>(array: &'a dyn Array, f: impl FnMut(&'a str)) -> bool {
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().flatten().for_each(f),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().flatten().for_each(f),
        DataType::Utf8View => array.as_string_view().iter().flatten().for_each(f),
        _ => return false,
    }
    true
}

/// Whether column `i` of the sampled rows looks like identifiers (see the module).
fn identifier_like(batches: &[RecordBatch], i: usize) -> bool {
    let mut distinct: HashSet<&str> = HashSet::new();
    let (mut values, mut bytes, mut spaced) = (0usize, 0usize, 0usize);
    for batch in batches {
        let Some(array) = batch.columns().get(i) else {
            return false;
        };
        let strings = for_each_str(array.as_ref(), |v| {
            values += 1;
            bytes += v.len();
            if v.bytes().any(|b| b.is_ascii_whitespace()) {
                spaced += 1;
            }
            distinct.insert(v);
        });
        if !strings {
            return false;
        }
    }
    values >= MIN_SAMPLED
        && distinct.len() * 2 >= values
        && bytes <= MAX_AVERAGE_LEN * values
        && spaced * 10 <= values
}
