//! The needle index: a Bloom filter of each row group of a segment, for its identifier columns,
//! so that a lookup of one value (`RequestId = '...'`, `where TraceId == "..."`) reads only the
//! row groups that may hold it instead of every page of the column.
//!
//! **When.** Unless the store is told not to (`SegmentOptions::needle_index`, the home's
//! `needleIndex`; on by default since version 2 of the index).
//!
//! **Which columns.** Decided per segment on its first [`SAMPLE_ROWS`] rows: a string column
//! whose sampled values are mostly distinct (at least one distinct value in two non-null
//! values, at least [`MIN_SAMPLED`] of them), short (at most [`MAX_AVERAGE_LEN`] bytes on
//! average) and without spaces (at most one value in ten has an ASCII whitespace): request,
//! trace and user ids, host names, addresses; not messages, not levels.
//!
//! **Where (version 2).** In the segment's own file, after its last row group, as one block
//! sealed under a key of the segment's ([`block`]); the footer (encrypted like the rest of the
//! metadata) holds only where the block lies and which columns it indexes. So a query that
//! looks for no value never reads it, and the footers every query decrypts stay as small as
//! without an index. Each column's part holds, for each row group in order, its row count
//! (`u32`, little-endian), the length of the filter (`u32`) and the filter as Parquet writes a
//! Bloom filter (`Sbbf::write`: a Thrift header, then the split-block bitset; xxHash64 of the
//! value's bytes), built for the row group's rows at a false-positive rate of [`FPP`] and folded
//! to the smallest size that keeps it. Parquet's own Bloom filters are not used: the Parquet
//! crate writes them in plaintext even in an encrypted file. Segments written with version 1
//! (December 2026, opt-in) hold the same parts as footer entries `logvault.needles.v1.<column>`
//! (base64), still read.
//!
//! **Reading.** [`NeedleIndex::row_groups_to_scan`] tells which row groups may hold the values
//! of the given [`Needle`]s; it answers `None` (read everything) for a segment without an
//! index, or whose index does not match its row groups (row counts differ), never a wrong
//! "absent". A query reads it through [`crate::SegmentReaderFactory::needle_scan`], which
//! fetches and opens the block once and keeps the decoded [`NeedleIndex`] with the segment's
//! cached footer (and wipes it with it).
//!
//! ```
//! # use std::sync::Arc;
//! # use arrow::array::{RecordBatch, StringArray};
//! # use arrow::datatypes::{DataType, Field, Schema};
//! use logvault_store::needles::{Needle, NeedleIndex, NeedleIndexBuilder};
//! let schema = Arc::new(Schema::new(vec![Field::new("RequestId", DataType::Utf8, false)]));
//! let ids: Vec<String> = (0..1000).map(|i| format!("req-{i:05}")).collect();
//! let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(ids))])?;
//! // Row groups of 500 rows: the first holds req-00000..req-00499.
//! let mut index = NeedleIndexBuilder::new(500);
//! index.observe(&batch);
//! let block = index.finish().expect("request ids are indexed");
//! assert_eq!(block.columns, ["RequestId"]);
//! // The segment writer seals the block into the file; a reader opens it and decodes it
//! // against the file's row groups (their row counts):
//! let decoded = NeedleIndex::from_block(&block.bytes, &[500, 500]);
//! let needle = Needle::new("RequestId", vec!["req-00742".into()]);
//! assert_eq!(decoded.row_groups_to_scan(&[needle]), Some(vec![false, true]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod block;
mod builder;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use parquet::bloom_filter::Sbbf;
use parquet::file::metadata::ParquetMetaData;

pub use block::{BlockRef, NeedleBlock};
pub use builder::NeedleIndexBuilder;

/// The prefix of version 1's footer entries (one per column, base64); the column's name follows.
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

/// Whether the segment indexes the column of any of `needles` (a look at its footer's entries,
/// nothing decoded or read): a lookup by columns it does not index needs neither.
pub fn indexes_any(meta: &ParquetMetaData, needles: &[Needle]) -> bool {
    indexes_any_with(
        meta,
        BlockRef::of(meta).and_then(Result::ok).as_ref(),
        needles,
    )
}

/// [`indexes_any`] with the segment's version-2 entry already read from `meta` (`None`: it has
/// none, or a malformed one, and version 1's entries are looked at).
pub(crate) fn indexes_any_with(
    meta: &ParquetMetaData,
    block: Option<&BlockRef>,
    needles: &[Needle],
) -> bool {
    if let Some(block) = block {
        return block.indexes_any(needles);
    }
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
    /// Version 1's index, in a segment's footer entries (empty without them; an entry that
    /// does not fit the segment's row groups is left out, with a warning).
    pub fn from_metadata(meta: &ParquetMetaData) -> Self {
        let Some(entries) = meta.file_metadata().key_value_metadata() else {
            return Self::default();
        };
        let row_counts = row_counts(meta);
        let mut index = Self::default();
        for kv in entries {
            let (Some(column), Some(value)) = (kv.key.strip_prefix(KEY_PREFIX), &kv.value) else {
                continue;
            };
            let part = BASE64.decode(value).unwrap_or_default();
            index.add(column, &part, &row_counts);
        }
        index
    }

    /// Version 2's index, from its block in clear, for a segment whose row groups hold
    /// `row_counts` rows (empty if the block is malformed; a column whose part does not fit the
    /// row groups is left out; both with a warning).
    pub fn from_block(block: &[u8], row_counts: &[i64]) -> Self {
        let mut index = Self::default();
        match NeedleBlock::parts(block) {
            Ok(parts) => {
                for (column, part) in parts {
                    index.add(&column, part, row_counts);
                }
            }
            Err(reason) => {
                tracing::warn!(%reason, "a segment's needle index is malformed; not used");
            }
        }
        index
    }

    fn add(&mut self, column: &str, part: &[u8], row_counts: &[i64]) {
        match decode(part, row_counts) {
            Some(filters) => {
                self.bytes += filters.iter().map(|f| f.num_blocks() * 32).sum::<usize>();
                self.columns.push((column.to_owned(), filters));
            }
            None => {
                tracing::warn!(
                    column,
                    "a segment's needle index does not fit its row groups; not used"
                );
            }
        }
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

/// The row counts of a segment's row groups, in file order.
pub fn row_counts(meta: &ParquetMetaData) -> Vec<i64> {
    meta.row_groups().iter().map(|g| g.num_rows()).collect()
}

/// The filters of a column's part, one per row group, if their row counts are the segment's.
fn decode(part: &[u8], row_counts: &[i64]) -> Option<Vec<Sbbf>> {
    let mut rest = part;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray, StringViewArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::file::metadata::ParquetMetaDataReader;
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

    /// A file of `batches` in row groups of `group_rows`, with the index built beside it: the
    /// file's metadata (its footer names the indexed columns as a segment's does) and the block.
    fn file(batches: &[RecordBatch], group_rows: usize) -> (ParquetMetaData, NeedleBlock) {
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
        let block = index.finish().unwrap_or_default();
        let reference = BlockRef {
            offset: 0,
            length: 0,
            columns: block.columns.clone(),
        };
        writer.append_key_value_metadata(reference.key_value().unwrap());
        let bytes = bytes::Bytes::from(writer.into_inner().unwrap());
        let meta = ParquetMetaDataReader::new()
            .parse_and_finish(&bytes)
            .unwrap();
        (meta, block)
    }

    fn decoded(meta: &ParquetMetaData, block: &NeedleBlock) -> NeedleIndex {
        NeedleIndex::from_block(&block.bytes, &row_counts(meta))
    }

    #[test]
    fn identifiers_are_indexed_per_row_group_across_uneven_batches() {
        // Batches of 700, 3,000 and 2,300 rows (sampling waits for 4,096) in groups of 1,000.
        let batches = [rows(0, 700), rows(700, 3000), rows(3700, 2300)];
        let (meta, block) = file(&batches, 1000);
        assert_eq!(meta.num_row_groups(), 6);
        // Not the message (spaces), the level (3 values), the number; the sparse ids have
        // 41 values among the sampled rows, under the 64 needed.
        assert_eq!(block.columns, vec!["Id".to_owned()]);
        assert_eq!(BlockRef::of(&meta).unwrap().unwrap().columns, block.columns);
        let index = decoded(&meta, &block);
        // Each id is found in its row group; the others answer "absent" but for the filters'
        // false positives (3% a check: about one in these 30 checks).
        let mut false_positives = 0;
        for probe in [0usize, 999, 1000, 3699, 3700, 5999] {
            let needle = Needle::new("Id", vec![format!("id-{probe:07}")]);
            let scan = index.row_groups_to_scan(&[needle]).unwrap();
            assert!(scan[probe / 1000], "{probe} must be found in its row group");
            false_positives += scan.iter().filter(|s| **s).count() - 1;
        }
        assert!(
            false_positives <= 4,
            "{false_positives} false positives in 30"
        );
        // Several values, several needles (a conjunction), a column without an index.
        let two = Needle::new("Id", vec!["id-0000005".into(), "id-0004321".into()]);
        let scan = index
            .row_groups_to_scan(std::slice::from_ref(&two))
            .unwrap();
        assert!(scan[0] && scan[4], "{scan:?}");
        let level = Needle::new("Level", vec!["INFO".into()]);
        assert_eq!(index.row_groups_to_scan(std::slice::from_ref(&level)), None);
        assert!(!indexes_any(&meta, std::slice::from_ref(&level)));
        assert!(indexes_any(&meta, &[level.clone(), two.clone()]));
        let one = Needle::new("Id", vec!["id-0000005".into()]);
        let alone = index
            .row_groups_to_scan(std::slice::from_ref(&one))
            .unwrap();
        let with = index.row_groups_to_scan(&[two, level, one]).unwrap();
        // The conjunction reads at most what the narrower needle reads, and its row group.
        assert!(
            with[0] && with.iter().zip(&alone).all(|(w, a)| !*w || *a),
            "{with:?}"
        );
        // An absent id: no row group but a false positive's.
        let none = Needle::new("Id", vec!["id-9999999".into()]);
        let scan = index.row_groups_to_scan(&[none]).unwrap();
        assert!(scan.iter().filter(|s| **s).count() <= 1, "{scan:?}");
    }

    #[test]
    fn an_index_that_does_not_fit_the_row_groups_is_not_used() {
        let (meta, block) = file(&[rows(0, 5000)], 1000);
        let needle = Needle::new("Id", vec!["id-0000001".into()]);
        let counts = row_counts(&meta);
        assert_eq!(counts, [1000; 5]);
        let fits = NeedleIndex::from_block(&block.bytes, &counts);
        assert!(
            fits.row_groups_to_scan(std::slice::from_ref(&needle))
                .is_some()
        );
        assert!(fits.memory_size() > 0);
        // The same block over row groups of 1,250 rows, or a row group too few: not used.
        for other in [&[1250i64; 4][..], &counts[..4]] {
            let index = NeedleIndex::from_block(&block.bytes, other);
            assert_eq!(
                index.row_groups_to_scan(std::slice::from_ref(&needle)),
                None
            );
        }
        // A block cut short, or a column's part cut short: not used either.
        let cut = NeedleIndex::from_block(&block.bytes[..block.bytes.len() - 1], &counts);
        assert_eq!(cut.row_groups_to_scan(std::slice::from_ref(&needle)), None);
        let parts = NeedleBlock::parts(&block.bytes).unwrap();
        let (_, part) = &parts[0];
        let mut short = NeedleBlock::default();
        short.push("Id".into(), &part[..part.len() - 1]);
        let index = NeedleIndex::from_block(&short.bytes, &counts);
        assert_eq!(
            index.row_groups_to_scan(std::slice::from_ref(&needle)),
            None
        );
    }

    #[test]
    fn version_one_entries_in_the_footer_are_still_read() {
        let (meta, block) = file(&[rows(0, 3000)], 1000);
        // A segment of version 1: the same parts, as base64 footer entries, and no block.
        let entries: Vec<_> = NeedleBlock::parts(&block.bytes)
            .unwrap()
            .into_iter()
            .map(|(column, part)| {
                parquet::file::metadata::KeyValue::new(
                    format!("{KEY_PREFIX}{column}"),
                    BASE64.encode(part),
                )
            })
            .collect();
        let file_meta = parquet::file::metadata::FileMetaData::new(
            meta.file_metadata().version(),
            meta.file_metadata().num_rows(),
            None,
            Some(entries),
            meta.file_metadata().schema_descr_ptr(),
            None,
        );
        let v1 = ParquetMetaData::new(file_meta, meta.row_groups().to_vec());
        assert!(BlockRef::of(&v1).is_none());
        let needle = Needle::new("Id", vec!["id-0002500".into()]);
        assert!(indexes_any(&v1, std::slice::from_ref(&needle)));
        let scan = NeedleIndex::from_metadata(&v1)
            .row_groups_to_scan(&[needle])
            .unwrap();
        assert!(scan[2], "{scan:?}");
        // Damaged base64 is not used.
        assert!(decode(&BASE64.decode("bm90").unwrap(), &[1000]).is_none());
    }

    #[test]
    fn a_segment_of_few_rows_has_no_index_and_memory_is_counted() {
        let mut few = NeedleIndexBuilder::new(1000);
        few.observe(&rows(0, 50));
        assert!(few.finish().is_none(), "50 ids are too few to choose from");
        let mut many = NeedleIndexBuilder::new(1000);
        assert_eq!(many.memory(), 0);
        many.observe(&rows(0, 5000));
        assert!(many.memory() > 1000, "{}", many.memory());
        assert_eq!(many.finish().map(|b| b.columns.len()), Some(1));
    }
}
