//! Building a segment's needle index as its rows are written.

use std::collections::HashSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use parquet::bloom_filter::Sbbf;
use twox_hash::XxHash64;

use super::block::NeedleBlock;
use super::{FPP, MAX_AVERAGE_LEN, MIN_SAMPLED, SAMPLE_ROWS};

/// Builds a segment's needle index as its rows are written (in the order they are written,
/// in row groups of the writer's `max_row_group_rows`).
#[derive(Debug)]
pub struct NeedleIndexBuilder {
    rows_per_group: usize,
    rows_in_group: usize,
    /// Blocks of a row group's filter: `parquet`'s size for `rows_per_group` distinct values at
    /// [`FPP`]; `None` when it cannot make one (no column is then indexed).
    blocks_per_filter: Option<usize>,
    /// The current slice's hashes, kept to reuse the allocation.
    hashes: Vec<u64>,
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
    current: Filter,
    /// The finished row groups, framed as the block holds them.
    done: Vec<u8>,
}

/// The split-block Bloom filter of the row group being written, as the Parquet format
/// specifies it and `parquet`'s [`Sbbf`] builds it (which it becomes when the group closes).
///
/// Built here rather than with [`Sbbf::insert`] for speed: a row group's filter (128 KiB for
/// unique values) does not stay in a core's cache between two batches, so each value's block is
/// a miss, and `Sbbf::insert` hashes a value, then waits for its block, one at a time. Here a
/// batch's values are hashed first, then their bits set in a loop of independent loads that
/// the processor overlaps. The bits are the same (a test compares them with `Sbbf`'s).
struct Filter {
    blocks: Vec<[u32; 8]>,
}

/// The Parquet format's salts of a block's eight words.
const SALT: [u32; 8] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];

impl Filter {
    fn new(blocks: usize) -> Self {
        Self {
            blocks: vec![[0; 8]; blocks],
        }
    }

    /// Sets the bits of each hash (xxHash64 of a value's bytes, seed 0).
    fn insert_hashes(&mut self, hashes: &[u64]) {
        let n = self.blocks.len() as u64;
        for &hash in hashes {
            // The block: the hash's upper half scaled to the block count (both under 2^32).
            let i = ((hash >> 32).saturating_mul(n) >> 32) as usize;
            let Some(block) = self.blocks.get_mut(i) else {
                continue;
            };
            let x = hash as u32;
            for (word, salt) in block.iter_mut().zip(SALT) {
                *word |= 1 << (x.wrapping_mul(salt) >> 27);
            }
        }
    }

    /// The filter as `parquet` holds it.
    fn into_sbbf(self) -> Sbbf {
        let bytes: Vec<u8> = self
            .blocks
            .iter()
            .flat_map(|b| b.iter().flat_map(|w| w.to_le_bytes()))
            .collect();
        Sbbf::new(&bytes)
    }
}

impl std::fmt::Debug for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Column").field("name", &self.name).finish()
    }
}

impl NeedleIndexBuilder {
    /// A builder for row groups of `rows_per_group` rows.
    pub fn new(rows_per_group: usize) -> Self {
        let rows_per_group = rows_per_group.max(1);
        Self {
            rows_per_group,
            rows_in_group: 0,
            blocks_per_filter: Sbbf::new_with_ndv_fpp(rows_per_group as u64, FPP)
                .ok()
                .map(|f| f.num_blocks()),
            hashes: Vec::new(),
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
                .map(|c| c.current.blocks.len() * 32 + c.done.len())
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
                && close_group(&mut c, rows_in_group, self.blocks_per_filter).is_none()
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
                    current: Filter::new(self.blocks_per_filter?),
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
                    let hashes = &mut self.hashes;
                    hashes.clear();
                    for_each_str(array.slice(start, len).as_ref(), |v| {
                        hashes.push(XxHash64::oneshot(0, v.as_bytes()));
                    });
                    c.current.insert_hashes(hashes);
                }
            }
            start += len;
            self.rows_in_group += len;
            if self.rows_in_group == self.rows_per_group {
                let rows = self.rows_in_group;
                let blocks = self.blocks_per_filter;
                // A column whose filter cannot be written is dropped from the index.
                columns.retain_mut(|c| close_group(c, rows, blocks).is_some());
                self.rows_in_group = 0;
            }
        }
    }
}

/// Folds, frames and keeps the current row group's filter; starts the next one.
fn close_group(c: &mut Column, rows: usize, blocks: Option<usize>) -> Option<()> {
    let current = std::mem::replace(&mut c.current, Filter::new(blocks?));
    let mut filter = current.into_sbbf();
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::StringViewArray;
    use arrow::datatypes::{Field, Schema};

    use super::*;

    /// The block `parquet`'s own `Sbbf::insert` makes of the same row groups.
    fn with_parquets_filter(groups: &[Vec<Option<String>>]) -> NeedleBlock {
        let mut done = Vec::new();
        for group in groups {
            let mut filter = Sbbf::new_with_ndv_fpp(1000, FPP).unwrap();
            for v in group.iter().flatten() {
                filter.insert(v.as_str());
            }
            filter.fold_to_target_fpp(FPP);
            let mut bytes = Vec::new();
            filter.write(&mut bytes).unwrap();
            done.extend_from_slice(&(group.len() as u32).to_le_bytes());
            done.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            done.extend_from_slice(&bytes);
        }
        let mut block = NeedleBlock::default();
        block.push("Id".to_owned(), &done);
        block
    }

    #[test]
    fn the_filters_set_the_bits_parquets_own_filter_sets() {
        // 2,500 ids, one in seven null, in batches of 700 rows: row groups of 1,000 rows span
        // batches, and the last holds 500.
        let values: Vec<Option<String>> = (0..2500)
            .map(|i| (i % 7 != 3).then(|| format!("req-{i:06}-{}", i * 7919 % 1000)))
            .collect();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "Id",
            DataType::Utf8View,
            true,
        )]));
        let mut builder = NeedleIndexBuilder::new(1000);
        for chunk in values.chunks(700) {
            let array = StringViewArray::from_iter(chunk.iter().map(Option::as_deref));
            let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(array)]).unwrap();
            builder.observe(&batch);
        }
        let block = builder.finish().expect("the ids are indexed");
        let groups: Vec<Vec<Option<String>>> = values.chunks(1000).map(<[_]>::to_vec).collect();
        assert_eq!(groups.len(), 3);
        let expected = with_parquets_filter(&groups);
        assert_eq!(block.columns, expected.columns);
        assert_eq!(block.bytes, expected.bytes);
    }
}
