//! The needle index: a Bloom filter of each row group of a segment, for its identifier columns,
//! so that a lookup of one value (`RequestId = '...'`, `where TraceId == "..."`) reads only the
//! row groups that may hold it instead of every page of the column.
//!
//! **When.** Only when the store is told to (`SegmentOptions::needle_index`, the home's
//! `needleIndex`; off by default): the index sits in the footer, which every read of it
//! decrypts and the footer cache holds (docs/format.md, "Needle index", has the costs).
//!
//! **Which columns.** Decided per segment on its first [`SAMPLE_ROWS`] rows: a string column
//! whose sampled values are mostly distinct (at least one distinct value in two non-null
//! values, at least [`MIN_SAMPLED`] of them), short (at most [`MAX_AVERAGE_LEN`] bytes on
//! average) and without spaces (at most one value in ten has an ASCII whitespace): request,
//! trace and user ids, host names, addresses; not messages, not levels.
//!
//! **Where.** In the segment's footer, which is encrypted with the footer key like the rest of
//! its metadata (the column statistics are there too), as a key-value entry per column:
//! `logvault.needles.v1.<column>` = base64 of, for each row group in order, its row count
//! (`u32`, little-endian), the length of the filter (`u32`) and the filter as Parquet writes a
//! Bloom filter (`Sbbf::write`: a Thrift header, then the split-block bitset; xxHash64 of the
//! value's bytes), built for the row group's rows at a false-positive rate of [`FPP`] and folded
//! to the smallest size that keeps it. Parquet's own Bloom filters are not used: the Parquet
//! crate writes them in plaintext even in an encrypted file.
//!
//! **Reading.** [`row_groups_to_scan`] tells which row groups may hold the values of the given
//! [`Needle`]s; it answers `None` (read everything) for a segment without an index, or whose
//! index does not match its row groups (row counts differ), never a wrong "absent". A query
//! reads it through [`crate::SegmentReaderFactory::needle_scan`], which keeps the decoded
//! [`NeedleIndex`] with the segment's cached footer (and wipes it with it).
//!
//! ```
//! # use std::sync::Arc;
//! # use arrow::array::{RecordBatch, StringArray};
//! # use arrow::datatypes::{DataType, Field, Schema};
//! use logvault_store::needles::{Needle, NeedleIndexBuilder, row_groups_to_scan};
//! let schema = Arc::new(Schema::new(vec![Field::new("RequestId", DataType::Utf8, false)]));
//! let ids: Vec<String> = (0..1000).map(|i| format!("req-{i:05}")).collect();
//! let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(ids))])?;
//! // Row groups of 500 rows: the first holds req-00000..req-00499.
//! let mut index = NeedleIndexBuilder::new(500);
//! index.observe(&batch);
//! let entries = index.finish();
//! assert_eq!(entries.len(), 1);
//! // Written into a Parquet file's key-value metadata; read back from its metadata:
//! let mut writer = parquet::arrow::ArrowWriter::try_new(
//!     Vec::new(),
//!     schema,
//!     Some(parquet::file::properties::WriterProperties::builder()
//!         .set_max_row_group_row_count(Some(500)).build()),
//! )?;
//! writer.write(&batch)?;
//! for kv in entries {
//!     writer.append_key_value_metadata(kv);
//! }
//! let file = bytes::Bytes::from(writer.into_inner()?);
//! let meta = parquet::file::metadata::ParquetMetaDataReader::new().parse_and_finish(&file)?;
//! let needle = Needle::new("RequestId", vec!["req-00742".into()]);
//! assert_eq!(row_groups_to_scan(&meta, &[needle]), Some(vec![false, true]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use parquet::bloom_filter::Sbbf;
use parquet::file::metadata::{KeyValue, ParquetMetaData};

/// The key-value entries' prefix; the column's name follows.
pub const KEY_PREFIX: &str = "logvault.needles.v1.";
/// The false-positive rate each row group's filter is built and folded for. 3% keeps a full
/// row group of unique ids at 128 KiB (8 bits a value; the filter's size is a power of two, and
/// 1% would take 256 KiB), and costs a lookup about one row group read in 33 for nothing.
pub const FPP: f64 = 0.03;
/// Rows of a segment sampled to choose its indexed columns.
pub const SAMPLE_ROWS: usize = 4096;
/// Non-null values a column needs among the sampled rows to be indexed.
pub const MIN_SAMPLED: usize = 64;
/// The longest average value (bytes) of an indexed column.
pub const MAX_AVERAGE_LEN: usize = 128;

/// Values of one column that a query looks for (a conjunct `column = v` or `column IN (...)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needle {
    /// The column.
    pub column: String,
    /// The values; a row group may hold a match when it may hold any of them.
    pub values: Vec<String>,
}

impl Needle {
    /// Looks for any of `values` in `column`.
    pub fn new(column: impl Into<String>, values: Vec<String>) -> Self {
        Self {
            column: column.into(),
            values,
        }
    }
}

/// Which row groups of a segment may hold rows matching every needle (`true`: read it). `None`
/// when no needle's column is indexed in the segment, or the index does not fit the segment.
/// (Decodes the index each time: [`NeedleIndex`] keeps it decoded.)
pub fn row_groups_to_scan(meta: &ParquetMetaData, needles: &[Needle]) -> Option<Vec<bool>> {
    NeedleIndex::from_metadata(meta).row_groups_to_scan(needles)
}

/// Whether the segment indexes the column of any of `needles` (a look at the metadata's keys,
/// nothing decoded): a lookup by columns it does not index needs no decoding.
pub fn indexes_any(meta: &ParquetMetaData, needles: &[Needle]) -> bool {
    let Some(entries) = meta.file_metadata().key_value_metadata() else {
        return false;
    };
    entries.iter().any(|kv| {
        kv.key
            .strip_prefix(KEY_PREFIX)
            .is_some_and(|column| needles.iter().any(|n| n.column == column))
    })
}

/// A segment's needle index, decoded: the filters of each indexed column, one per row group.
#[derive(Debug, Default)]
pub struct NeedleIndex {
    columns: Vec<(String, Vec<Sbbf>)>,
    bytes: usize,
}

impl NeedleIndex {
    /// The index in a segment's metadata (empty without one; an entry that does not fit the
    /// segment's row groups is left out, with a warning).
    pub fn from_metadata(meta: &ParquetMetaData) -> Self {
        let Some(entries) = meta.file_metadata().key_value_metadata() else {
            return Self::default();
        };
        let row_counts: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        let mut index = Self::default();
        for kv in entries {
            let (Some(column), Some(value)) = (kv.key.strip_prefix(KEY_PREFIX), &kv.value) else {
                continue;
            };
            match decode(value, &row_counts) {
                Some(filters) => {
                    index.bytes += filters.iter().map(|f| f.num_blocks() * 32).sum::<usize>();
                    index.columns.push((column.to_owned(), filters));
                }
                None => {
                    tracing::warn!(
                        column,
                        "a segment's needle index does not fit its row groups; not used"
                    );
                }
            }
        }
        index
    }

    /// Bytes the decoded filters hold.
    pub fn memory_size(&self) -> usize {
        self.bytes
    }

    /// Which row groups may hold rows matching every needle (`true`: read it); `None` when no
    /// needle's column is indexed.
    pub fn row_groups_to_scan(&self, needles: &[Needle]) -> Option<Vec<bool>> {
        let mut scan: Option<Vec<bool>> = None;
        for needle in needles {
            let Some((_, filters)) = self.columns.iter().find(|(c, _)| *c == needle.column) else {
                continue;
            };
            let may_hold: Vec<bool> = filters
                .iter()
                .map(|f| needle.values.iter().any(|v| f.check(v.as_str())))
                .collect();
            scan = Some(match scan {
                None => may_hold,
                Some(before) => before
                    .iter()
                    .zip(&may_hold)
                    .map(|(a, b)| *a && *b)
                    .collect(),
            });
        }
        scan
    }
}

/// The filters of an entry, one per row group, if their row counts are the segment's.
fn decode(value: &str, row_counts: &[i64]) -> Option<Vec<Sbbf>> {
    let bytes = BASE64.decode(value).ok()?;
    let mut rest = bytes.as_slice();
    let mut filters = Vec::with_capacity(row_counts.len());
    for &rows in row_counts {
        let (count, tail) = take_u32(rest)?;
        let (len, tail) = take_u32(tail)?;
        let len = usize::try_from(len).ok()?;
        if i64::from(count) != rows || tail.len() < len {
            return None;
        }
        let (filter, tail) = tail.split_at(len);
        filters.push(Sbbf::from_bytes(filter).ok()?);
        rest = tail;
    }
    rest.is_empty().then_some(filters)
}

fn take_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, tail) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head), tail))
}

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
    /// The finished row groups, framed as the entry holds them.
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

    /// The key-value entries of the index (none when no column was chosen).
    pub fn finish(mut self) -> Vec<KeyValue> {
        if matches!(self.state, State::Sampling(_)) {
            self.start();
        }
        let rows_in_group = self.rows_in_group;
        let State::Indexing(columns) = self.state else {
            return Vec::new();
        };
        columns
            .into_iter()
            .filter_map(|mut c| {
                if rows_in_group > 0 {
                    close_group(&mut c, rows_in_group, self.rows_per_group)?;
                }
                Some(KeyValue::new(
                    format!("{KEY_PREFIX}{}", c.name),
                    BASE64.encode(&c.done),
                ))
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray, StringViewArray};
    use arrow::datatypes::{Field, Schema};
    use parquet::file::metadata::{ParquetMetaDataReader, RowGroupMetaData};
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// `n` rows from row `from`: `Id` (unique, a view), `Message` (unique, with spaces),
    /// `Level` (3 values), `Bytes` (a number), `Sparse` (an id on one row in 100).
    fn rows(from: usize, n: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("Id", DataType::Utf8View, false),
            Field::new("Message", DataType::Utf8, false),
            Field::new("Level", DataType::Utf8, false),
            Field::new("Bytes", DataType::Int64, false),
            Field::new("Sparse", DataType::Utf8, true),
        ]));
        let range = from..from + n;
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringViewArray::from_iter_values(
                    range.clone().map(|i| format!("id-{i:07}")),
                )),
                Arc::new(StringArray::from_iter_values(
                    range.clone().map(|i| format!("request {i} done")),
                )),
                Arc::new(StringArray::from_iter_values(
                    range.clone().map(|i| ["INFO", "WARN", "ERROR"][i % 3]),
                )),
                Arc::new(Int64Array::from_iter_values(
                    range.clone().map(|i| i as i64),
                )),
                Arc::new(StringArray::from_iter(
                    range.map(|i| (i % 100 == 0).then(|| format!("s-{i}"))),
                )),
            ],
        )
        .unwrap()
    }

    /// A file of `batches` in row groups of `group_rows`, with the index built beside it.
    fn file(batches: &[RecordBatch], group_rows: usize) -> ParquetMetaData {
        let mut index = NeedleIndexBuilder::new(group_rows);
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group_rows))
            .build();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(Vec::new(), batches[0].schema(), Some(props))
                .unwrap();
        for b in batches {
            writer.write(b).unwrap();
            index.observe(b);
        }
        for kv in index.finish() {
            writer.append_key_value_metadata(kv);
        }
        let bytes = bytes::Bytes::from(writer.into_inner().unwrap());
        ParquetMetaDataReader::new()
            .parse_and_finish(&bytes)
            .unwrap()
    }

    fn indexed(meta: &ParquetMetaData) -> Vec<String> {
        let mut keys: Vec<String> = meta
            .file_metadata()
            .key_value_metadata()
            .into_iter()
            .flatten()
            .filter_map(|kv| kv.key.strip_prefix(KEY_PREFIX).map(str::to_owned))
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn identifiers_are_indexed_per_row_group_across_uneven_batches() {
        // Batches of 700, 3,000 and 2,300 rows (sampling waits for 4,096) in groups of 1,000.
        let batches = [rows(0, 700), rows(700, 3000), rows(3700, 2300)];
        let meta = file(&batches, 1000);
        assert_eq!(meta.num_row_groups(), 6);
        // Not the message (spaces), the level (3 values), the number; the sparse ids have
        // 41 values among the sampled rows, under the 64 needed.
        assert_eq!(indexed(&meta), vec!["Id".to_owned()]);
        // Each id is found in its row group; the others answer "absent" but for the filters'
        // false positives (3% a check: about one in these 30 checks).
        let mut false_positives = 0;
        for probe in [0usize, 999, 1000, 3699, 3700, 5999] {
            let needle = Needle::new("Id", vec![format!("id-{probe:07}")]);
            let scan = row_groups_to_scan(&meta, &[needle]).unwrap();
            assert!(scan[probe / 1000], "{probe} must be found in its row group");
            false_positives += scan.iter().filter(|s| **s).count() - 1;
        }
        assert!(
            false_positives <= 4,
            "{false_positives} false positives in 30"
        );
        // Several values, several needles (a conjunction), a column without an index.
        let two = Needle::new("Id", vec!["id-0000005".into(), "id-0004321".into()]);
        let scan = row_groups_to_scan(&meta, std::slice::from_ref(&two)).unwrap();
        assert!(scan[0] && scan[4], "{scan:?}");
        let level = Needle::new("Level", vec!["INFO".into()]);
        assert_eq!(
            row_groups_to_scan(&meta, std::slice::from_ref(&level)),
            None
        );
        assert!(!indexes_any(&meta, std::slice::from_ref(&level)));
        assert!(indexes_any(&meta, &[level.clone(), two.clone()]));
        let one = Needle::new("Id", vec!["id-0000005".into()]);
        let alone = row_groups_to_scan(&meta, std::slice::from_ref(&one)).unwrap();
        let with = row_groups_to_scan(&meta, &[two, level, one]).unwrap();
        // The conjunction reads at most what the narrower needle reads, and its row group.
        assert!(
            with[0] && with.iter().zip(&alone).all(|(w, a)| !*w || *a),
            "{with:?}"
        );
        // An absent id: no row group but a false positive's.
        let none = Needle::new("Id", vec!["id-9999999".into()]);
        let scan = row_groups_to_scan(&meta, &[none]).unwrap();
        assert!(scan.iter().filter(|s| **s).count() <= 1, "{scan:?}");
    }

    #[test]
    fn an_index_that_does_not_fit_the_row_groups_is_not_used() {
        let meta = file(&[rows(0, 5000)], 1000);
        let needle = Needle::new("Id", vec!["id-0000001".into()]);
        assert!(row_groups_to_scan(&meta, std::slice::from_ref(&needle)).is_some());
        // The same entries over a file in row groups of 1,250: the row counts differ.
        let entries = meta.file_metadata().key_value_metadata().unwrap().clone();
        let other = file(&[rows(0, 5000)], 1250);
        let groups: Vec<RowGroupMetaData> = other.row_groups().to_vec();
        let file_meta = parquet::file::metadata::FileMetaData::new(
            other.file_metadata().version(),
            other.file_metadata().num_rows(),
            None,
            Some(entries),
            other.file_metadata().schema_descr_ptr(),
            None,
        );
        let mismatched = ParquetMetaData::new(file_meta, groups);
        assert_eq!(row_groups_to_scan(&mismatched, &[needle]), None);
        // Damaged text, or a truncated entry: not used either.
        assert!(decode("not base64!", &[5000]).is_none());
        let entry = meta
            .file_metadata()
            .key_value_metadata()
            .unwrap()
            .iter()
            .find(|kv| kv.key == format!("{KEY_PREFIX}Id"))
            .and_then(|kv| kv.value.clone())
            .unwrap();
        let bytes = BASE64.decode(&entry).unwrap();
        let counts = [1000; 5];
        assert!(decode(&entry, &counts).is_some());
        assert!(decode(&BASE64.encode(&bytes[..bytes.len() - 1]), &counts).is_none());
        assert!(
            decode(&entry, &counts[..4]).is_none(),
            "a row group too few"
        );
    }

    #[test]
    fn a_segment_of_few_rows_has_no_index_and_memory_is_counted() {
        let mut few = NeedleIndexBuilder::new(1000);
        few.observe(&rows(0, 50));
        assert!(few.finish().is_empty(), "50 ids are too few to choose from");
        let mut many = NeedleIndexBuilder::new(1000);
        assert_eq!(many.memory(), 0);
        many.observe(&rows(0, 5000));
        assert!(many.memory() > 1000, "{}", many.memory());
        assert_eq!(many.finish().len(), 1);
    }
}
