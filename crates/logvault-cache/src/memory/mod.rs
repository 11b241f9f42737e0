//! The memory tier: hot segments decoded, each batch of a segment held as an Arrow IPC file in a
//! buffer of its own that is zeroized when the last reference to it goes (eviction, purge, or the
//! end of the last query that read it), in a moka cache weighted by bytes (TinyLFU admission, LRU
//! eviction).
//!
//! A buffer is decoded once, when the segment is promoted, and zero-copy: the arrays every
//! query shares point into the zeroizing buffers (the writer aligns every buffer to 64 bytes and
//! the decoder refuses a misaligned one instead of copying it), so the plaintext a cached
//! segment holds lives in exactly one place that is wiped when it is let go. A scan takes the
//! columns it needs and skips batches outside its `TimeGenerated` bounds: no decoding, no
//! validation and no copy per query. String columns are held as views, the type queries see
//! (`logvault_store::schema::view_types`), compacted before encoding; a string column of few
//! values is held as a dictionary too, for the groupings that read it so ([`dictionary`]).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::{DateTime, Utc};
use logvault_store::{SegmentLocation, TIME_COLUMN};
use moka::notification::RemovalCause;

use crate::CacheError;
use crate::metrics::{Event, Metrics};

pub(crate) mod dictionary;
mod ipc;

/// One hot segment: its rows as an Arrow IPC file in a zeroizing buffer, decoded once (zero-copy)
/// into the batches every query shares.
pub struct HotSegment {
    loc: SegmentLocation,
    schema: SchemaRef,
    batches: Vec<HotBatch>,
    bytes: usize,
    rows: usize,
    max_time: Option<DateTime<Utc>>,
    last_read: AtomicI64,
    /// When it was made (see [`crate::stamp`]).
    stamp: u64,
}

/// A batch, the range of its `TimeGenerated` (microseconds) when it has one, and its string
/// columns of few values as dictionaries (by column index; arrays in the batch's buffer too).
struct HotBatch {
    batch: RecordBatch,
    time: Option<(i64, i64)>,
    dictionaries: Vec<(usize, ArrayRef)>,
}

impl HotBatch {
    /// `batch` (in `schema`) and the dictionaries of its columns of few values written into a
    /// zeroizing buffer of their own and decoded back from it; with the buffer's length.
    fn hold(
        schema: &SchemaRef,
        batch: &RecordBatch,
        time_index: Option<usize>,
        zeroized: &Arc<AtomicU64>,
        allocated: &AtomicU64,
    ) -> Result<(Self, usize), String> {
        let found = dictionary::of_few_values(batch.columns());
        // Without dictionaries the batch is written as it is; with them, beside its own columns
        // (in its own schema, so that the columns match their fields as the batch's do).
        let (written_schema, written) = if found.is_empty() {
            (Arc::clone(schema), batch.clone())
        } else {
            let own = batch.schema();
            let mut fields: Vec<Field> = own.fields().iter().map(|f| f.as_ref().clone()).collect();
            let mut columns = batch.columns().to_vec();
            for (i, d) in &found {
                // The name only labels the column in this buffer: it is found by position.
                fields.push(Field::new(
                    format!("dictionary of column {i}"),
                    d.data_type().clone(),
                    true,
                ));
                columns.push(Arc::clone(d));
            }
            let written_schema =
                Arc::new(Schema::new_with_metadata(fields, own.metadata().clone()));
            let written = RecordBatch::try_new(Arc::clone(&written_schema), columns)
                .map_err(|e| e.to_string())?;
            (written_schema, written)
        };
        let (decoded, len) = ipc::encode_batch(&written_schema, &written, zeroized, allocated)?;
        drop(written);
        let n = batch.num_columns();
        if decoded.num_columns() != n + found.len() {
            return Err("ipc file holds another number of columns".into());
        }
        let (own, held) = decoded.columns().split_at(n);
        let batch = RecordBatch::try_new_with_options(
            Arc::clone(schema),
            own.to_vec(),
            &RecordBatchOptions::new().with_row_count(Some(decoded.num_rows())),
        )
        .map_err(|e| e.to_string())?;
        let dictionaries = found.iter().map(|(i, _)| *i).zip(held.to_vec()).collect();
        let time = time_index.and_then(|i| time_range(batch.column(i)));
        Ok((
            Self {
                batch,
                time,
                dictionaries,
            },
            len,
        ))
    }

    fn dictionary(&self, column: usize) -> Option<&ArrayRef> {
        self.dictionaries
            .iter()
            .find_map(|(i, d)| (*i == column).then_some(d))
    }
}

impl fmt::Debug for HotSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HotSegment")
            .field("segment", &self.loc.to_string())
            .field("rows", &self.rows)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

fn decode_error(loc: &SegmentLocation, e: impl fmt::Display) -> CacheError {
    CacheError::Decode {
        segment: loc.to_string(),
        reason: e.to_string(),
    }
}

impl HotSegment {
    /// Encodes `batches` (the segment's rows, in `schema`) into zeroizing buffers, and decodes
    /// them back from them: the arrays queries see point into those buffers and nowhere else.
    #[cfg(test)]
    pub(crate) fn encode(
        loc: &SegmentLocation,
        schema: SchemaRef,
        batches: &[RecordBatch],
        max_time: Option<DateTime<Utc>>,
        zeroized: Arc<AtomicU64>,
    ) -> Result<Self, CacheError> {
        let batches = batches.iter().map(|b| Ok(b.clone()));
        Self::encode_from(loc, schema, batches, max_time, zeroized, &AtomicU64::new(0))
    }

    /// Encodes `batches` (the segment's rows, in `schema`), made as they are encoded and each let
    /// go once written, each into a zeroizing buffer of its own, and decodes each back from its
    /// buffer (the arrays queries see point into those buffers and nowhere else), adding the
    /// buffers' capacity to `allocated` (with the zeroized count, the bytes of buffers still
    /// alive).
    ///
    /// A buffer per batch, not one for the segment: a batch's size is known before it is
    /// written, a segment's only after, and one growing buffer held up to three times the
    /// segment's bytes at once while it was copied into a larger one (and to its exact size).
    /// Building a segment now holds its buffers so far and one batch.
    pub(crate) fn encode_from(
        loc: &SegmentLocation,
        schema: SchemaRef,
        batches: impl Iterator<Item = Result<RecordBatch, CacheError>>,
        max_time: Option<DateTime<Utc>>,
        zeroized: Arc<AtomicU64>,
        allocated: &AtomicU64,
    ) -> Result<Self, CacheError> {
        let time_index = schema.index_of(TIME_COLUMN).ok();
        let mut held = Vec::new();
        let mut bytes = 0;
        for b in batches {
            let b = b?;
            if b.num_rows() == 0 {
                continue;
            }
            let (batch, len) = HotBatch::hold(&schema, &b, time_index, &zeroized, allocated)
                .map_err(|e| decode_error(loc, e))?;
            bytes += len;
            held.push(batch);
        }
        Ok(Self {
            loc: loc.clone(),
            schema,
            rows: held.iter().map(|b| b.batch.num_rows()).sum(),
            batches: held,
            bytes,
            max_time,
            last_read: AtomicI64::new(0),
            stamp: crate::stamp::next(),
        })
    }

    /// The segment.
    pub fn location(&self) -> &SegmentLocation {
        &self.loc
    }

    /// The segment's own schema (its string columns as views).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Batches held.
    pub fn batch_count(&self) -> usize {
        self.batches.len()
    }

    /// Bytes of the buffer (what the tier's bound counts).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The newest row's time, when known.
    pub fn max_time(&self) -> Option<DateTime<Utc>> {
        self.max_time
    }

    pub(crate) fn stamp(&self) -> u64 {
        self.stamp
    }

    pub(crate) fn touch(&self, now: DateTime<Utc>) {
        self.last_read
            .fetch_max(now.timestamp_micros(), Ordering::Relaxed);
    }

    pub(crate) fn last_read(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.last_read.load(Ordering::Relaxed)).unwrap_or_default()
    }

    /// Whether [`Self::read_as`] hands string column `name` as a dictionary without a cast:
    /// every batch holds one of it (its values are few), or the segment lacks the column (read
    /// as nulls).
    pub fn reads_as_dictionary(&self, name: &str) -> bool {
        self.schema.index_of(name).map_or(true, |i| {
            self.batches.iter().all(|b| b.dictionary(i).is_some())
        })
    }

    /// The segment's rows as `target` (a table's schema, projected), from the batches whose
    /// `TimeGenerated` range (microseconds, inclusive) `overlaps` accepts (a batch without one
    /// is always read). Nothing is decoded: the arrays are shared. A column the segment lacks
    /// is null, a column of another type is cast (the table's type is the one both widen to).
    /// A string column `target` types as `Dictionary(Int32, Utf8)` is the batch's
    /// dictionary of it where it holds one ([`Self::reads_as_dictionary`]), else cast.
    ///
    /// # Errors
    /// [`CacheError::Decode`] if a column cannot be cast.
    pub fn read_as(
        &self,
        target: &SchemaRef,
        overlaps: impl Fn(i64, i64) -> bool,
    ) -> Result<Vec<RecordBatch>, CacheError> {
        let wanted: Vec<Option<usize>> = target
            .fields()
            .iter()
            .map(|f| self.schema.index_of(f.name()).ok())
            .collect();
        let mut out = Vec::new();
        for hot in &self.batches {
            if hot.time.is_some_and(|(lo, hi)| !overlaps(lo, hi)) {
                continue;
            }
            let rows = hot.batch.num_rows();
            let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
            for (field, index) in target.fields().iter().zip(&wanted) {
                let column = match index {
                    Some(i) => {
                        // Only a dictionary target looks for the held one: views are read as
                        // they are held, with no search per column.
                        let held = matches!(field.data_type(), DataType::Dictionary(..))
                            .then(|| hot.dictionary(*i))
                            .flatten()
                            .filter(|d| d.data_type() == field.data_type());
                        let column = held.unwrap_or_else(|| hot.batch.column(*i));
                        let column = Arc::clone(column);
                        if column.data_type() == field.data_type() {
                            column
                        } else {
                            arrow::compute::cast(&column, field.data_type())
                                .map_err(|e| decode_error(&self.loc, e))?
                        }
                    }
                    None => new_null_array(field.data_type(), rows),
                };
                columns.push(column);
            }
            let batch = RecordBatch::try_new_with_options(
                Arc::clone(target),
                columns,
                &RecordBatchOptions::new().with_row_count(Some(rows)),
            )
            .map_err(|e| decode_error(&self.loc, e))?;
            out.push(batch);
        }
        Ok(out)
    }
}

/// The smallest and largest value of a timestamp column in microseconds, widened outwards when
/// its unit is finer (so the range always covers every row); `None` for another type or no
/// values.
fn time_range(column: &ArrayRef) -> Option<(i64, i64)> {
    use arrow::array::AsArray;
    use arrow::datatypes::{
        DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
        TimestampNanosecondType, TimestampSecondType,
    };
    // (min, max, units per microsecond, microseconds per unit)
    let (lo, hi, per_micro, micros_per) = match column.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            let v = column.as_primitive::<TimestampSecondType>();
            (
                arrow::compute::min(v)?,
                arrow::compute::max(v)?,
                1,
                1_000_000,
            )
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let v = column.as_primitive::<TimestampMillisecondType>();
            (arrow::compute::min(v)?, arrow::compute::max(v)?, 1, 1_000)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let v = column.as_primitive::<TimestampMicrosecondType>();
            (arrow::compute::min(v)?, arrow::compute::max(v)?, 1, 1)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            let v = column.as_primitive::<TimestampNanosecondType>();
            (arrow::compute::min(v)?, arrow::compute::max(v)?, 1_000, 1)
        }
        _ => return None,
    };
    let floor = |v: i64| v.div_euclid(per_micro).saturating_mul(micros_per);
    let ceil = |v: i64| {
        let q = v.div_euclid(per_micro) + i64::from(v.rem_euclid(per_micro) != 0);
        q.saturating_mul(micros_per)
    };
    Some((floor(lo), ceil(hi)))
}

type Index = moka::sync::Cache<SegmentLocation, Arc<HotSegment>>;

/// The memory tier.
#[derive(Debug)]
pub(crate) struct MemoryTier {
    cache: Index,
    capacity: u64,
    metrics: Arc<Metrics>,
}

impl MemoryTier {
    pub(crate) fn new(capacity: u64, metrics: Arc<Metrics>) -> Self {
        let evictions = Arc::clone(&metrics);
        let cache = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .weigher(|_, s: &Arc<HotSegment>| u32::try_from(s.bytes()).unwrap_or(u32::MAX))
            .eviction_listener(move |key: Arc<SegmentLocation>, _, cause| {
                if cause == RemovalCause::Size {
                    evictions.add(&key.workspace, Event::MemoryEviction, 1);
                }
            })
            .build();
        Self {
            cache,
            capacity,
            metrics,
        }
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    pub(crate) fn get(&self, loc: &SegmentLocation) -> Option<Arc<HotSegment>> {
        self.cache.get(loc)
    }

    pub(crate) fn contains(&self, loc: &SegmentLocation) -> bool {
        self.cache.contains_key(loc)
    }

    /// Inserts `segment` and evicts down to the bound at once (moka otherwise evicts when its
    /// pending work runs, which under few writes could leave the tier above its bound a while).
    /// Puts `segment` in the tier; whether the tier kept it. A segment the tier did not keep is
    /// counted (`memoryRefused`): its admission policy may refuse a new entry when full
    /// (TinyLFU: the entries it would evict were read more often), and refuses one larger than
    /// the bound.
    pub(crate) fn insert(&self, segment: Arc<HotSegment>) -> bool {
        let loc = segment.loc.clone();
        self.cache.insert(loc.clone(), segment);
        self.cache.run_pending_tasks();
        let kept = self.cache.contains_key(&loc);
        if !kept {
            self.metrics.add(&loc.workspace, Event::MemoryRefused, 1);
        }
        kept
    }

    pub(crate) fn remove(&self, loc: &SegmentLocation) {
        self.cache.invalidate(loc);
    }

    pub(crate) fn entries(&self) -> Vec<Arc<HotSegment>> {
        self.cache.iter().map(|(_, s)| s).collect()
    }

    /// Removes every segment of `workspace`: entries and bytes removed.
    pub(crate) fn purge(&self, workspace: &str) -> (u64, u64) {
        let mine: Vec<Arc<HotSegment>> = self
            .entries()
            .into_iter()
            .filter(|s| s.loc.workspace == workspace)
            .collect();
        for s in &mine {
            self.cache.invalidate(&s.loc);
        }
        self.cache.run_pending_tasks();
        (
            mine.len() as u64,
            mine.iter().map(|s| s.bytes() as u64).sum(),
        )
    }

    pub(crate) fn usage(&self) -> (u64, u64) {
        self.cache.run_pending_tasks();
        (self.cache.entry_count(), self.cache.weighted_size())
    }

    pub(crate) fn usage_of(&self, workspace: &str) -> (u64, u64) {
        self.cache
            .iter()
            .filter(|(k, _)| k.workspace == workspace)
            .fold((0, 0), |(n, b), (_, s)| (n + 1, b + s.bytes() as u64))
    }
}

#[cfg(test)]
mod tests;
