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
//! (`logvault_store::schema::view_types`), compacted before encoding.

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::{FileDecoder, read_footer_length};
use arrow::ipc::writer::FileWriter;
use arrow::ipc::{Block, MetadataVersion, root_as_footer};
use chrono::{DateTime, Utc};
use logvault_store::{SegmentLocation, TIME_COLUMN};
use moka::notification::RemovalCause;
use zeroize::Zeroize;

use crate::CacheError;
use crate::metrics::{Event, Metrics};

/// Plaintext bytes, zeroized (whole capacity) when dropped.
struct Plaintext {
    bytes: Vec<u8>,
    zeroized: Arc<AtomicU64>,
}

impl AsRef<[u8]> for Plaintext {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        let n = self.bytes.capacity() as u64;
        self.bytes.zeroize();
        self.zeroized.fetch_add(n, Ordering::Relaxed);
    }
}

/// A `Write` into a buffer that zeroizes the old allocation whenever it grows, so encoding
/// leaves no stray copy of the plaintext behind.
#[derive(Default)]
struct ZeroizingWriter(Vec<u8>);

impl ZeroizingWriter {
    fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    fn reserve(&mut self, extra: usize) {
        let need = self.0.len() + extra;
        if need <= self.0.capacity() {
            return;
        }
        let mut next = Vec::with_capacity(need.max(self.0.capacity() * 2).max(4096));
        next.extend_from_slice(&self.0);
        self.0.zeroize();
        self.0 = next;
    }

    /// The bytes, in an allocation of about their size: the buffer itself when at most an
    /// eighth of it is spare (it is sized from the batch's arrays), else a copy of exactly their
    /// size (the buffer is zeroized).
    fn into_exact(mut self) -> Vec<u8> {
        let len = self.0.len();
        if self.0.capacity() - len <= len / 8 {
            return std::mem::take(&mut self.0);
        }
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&self.0);
        out
    }
}

impl Write for ZeroizingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.reserve(buf.len());
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ZeroizingWriter {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

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

/// A batch, and the range of its `TimeGenerated` (microseconds) when it has one.
struct HotBatch {
    batch: RecordBatch,
    time: Option<(i64, i64)>,
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
            let (batch, len) = encode_batch(&schema, &b, &zeroized, allocated)
                .map_err(|e| decode_error(loc, e))?;
            bytes += len;
            held.push(HotBatch {
                time: time_index.and_then(|i| time_range(batch.column(i))),
                batch,
            });
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

    /// The segment's rows as `target` (a table's schema, projected), from the batches whose
    /// `TimeGenerated` range (microseconds, inclusive) `overlaps` accepts (a batch without one
    /// is always read). Nothing is decoded: the arrays are shared. A column the segment lacks
    /// is null, a column of another type is cast (the table's type is the one both widen to).
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
                        let column = Arc::clone(hot.batch.column(*i));
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

/// `batch` (compacted) encoded as an Arrow IPC file in a zeroizing buffer of about its size, and
/// decoded back from it without a copy: the batch whose arrays point into that buffer, and the
/// buffer's length.
fn encode_batch(
    schema: &SchemaRef,
    batch: &RecordBatch,
    zeroized: &Arc<AtomicU64>,
    allocated: &AtomicU64,
) -> Result<(RecordBatch, usize), String> {
    let batch = compact_views(batch).map_err(|e| e.to_string())?;
    // The arrays' bytes, each buffer padded to 64 bytes, and the schema twice (the file's header
    // and footer).
    let columns = schema.fields().len();
    let estimate = batch.get_array_memory_size() + columns * 512 + 4096;
    let mut writer = FileWriter::try_new(ZeroizingWriter::with_capacity(estimate), schema)
        .map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    drop(batch);
    let encoded = writer.into_inner().map_err(|e| e.to_string())?;
    let owner = Plaintext {
        bytes: encoded.into_exact(),
        zeroized: Arc::clone(zeroized),
    };
    allocated.fetch_add(owner.bytes.capacity() as u64, Ordering::Relaxed);
    let data = Buffer::from(bytes::Bytes::from_owner(owner));
    let mut decoded = decode_all(&data, schema)?;
    match (decoded.pop(), decoded.is_empty()) {
        (Some(batch), true) => Ok((batch, data.len())),
        _ => Err("ipc footer lists another number of batches".into()),
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

/// Every batch of the IPC file in `data`, decoded without copying: a buffer that is not
/// aligned is an error rather than a silent copy outside the zeroizing buffer.
fn decode_all(data: &Buffer, schema: &SchemaRef) -> Result<Vec<RecordBatch>, String> {
    let (version, dictionaries, blocks) = footer(data)?;
    let mut decoder = FileDecoder::new(Arc::clone(schema), version).with_require_alignment(true);
    for block in &dictionaries {
        decoder
            .read_dictionary(block, &block_of(data, block)?)
            .map_err(|e| e.to_string())?;
    }
    let mut out = Vec::with_capacity(blocks.len());
    for block in &blocks {
        if let Some(batch) = decoder
            .read_record_batch(block, &block_of(data, block)?)
            .map_err(|e| e.to_string())?
        {
            out.push(batch);
        }
    }
    Ok(out)
}

fn block_of(data: &Buffer, block: &Block) -> Result<Buffer, String> {
    let offset = usize::try_from(block.offset()).map_err(|e| e.to_string())?;
    let meta = usize::try_from(block.metaDataLength()).map_err(|e| e.to_string())?;
    let body = usize::try_from(block.bodyLength()).map_err(|e| e.to_string())?;
    let len = meta + body;
    if offset.saturating_add(len) > data.len() {
        return Err("ipc block outside the buffer".into());
    }
    Ok(data.slice_with_length(offset, len))
}

/// `batch` with its string views copied into buffers of just the strings they view: views
/// decoded from Parquet point into whole decompressed pages, which the IPC writer would copy
/// in full.
fn compact_views(batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    use arrow::array::AsArray;
    use arrow::datatypes::DataType;
    let columns = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8View => Arc::new(c.as_string_view().gc()) as ArrayRef,
            DataType::BinaryView => Arc::new(c.as_binary_view().gc()) as ArrayRef,
            _ => Arc::clone(c),
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns)
}

type Blocks = (MetadataVersion, Vec<Block>, Vec<Block>);

fn footer(data: &Buffer) -> Result<Blocks, String> {
    let n = data.len();
    if n < 10 {
        return Err("ipc file too short".into());
    }
    let mut trailer = [0u8; 10];
    trailer.copy_from_slice(&data[n - 10..]);
    let len = read_footer_length(trailer).map_err(|e| e.to_string())?;
    let start = (n - 10)
        .checked_sub(len)
        .ok_or("ipc footer longer than the file")?;
    let footer = root_as_footer(&data[start..n - 10]).map_err(|e| e.to_string())?;
    let dictionaries = footer
        .dictionaries()
        .map(|d| d.iter().copied().collect())
        .unwrap_or_default();
    let batches = footer
        .recordBatches()
        .map(|b| b.iter().copied().collect())
        .unwrap_or_default();
    Ok((footer.version(), dictionaries, batches))
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
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use logvault_store::{AccountId, SegmentId};

    fn loc() -> SegmentLocation {
        SegmentLocation::new(AccountId::service(), "ws-one", "T", SegmentId::generate()).unwrap()
    }

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("row {i}")),
                )),
            ],
        )
        .unwrap()
    }

    #[test]
    fn round_trip_with_projection_casts_and_missing_columns() {
        let zeroized = Arc::new(AtomicU64::new(0));
        let b = [batch(10), batch(5)];
        let seg = HotSegment::encode(&loc(), b[0].schema(), &b, None, zeroized.clone()).unwrap();
        assert_eq!(seg.rows(), 15);
        let target = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("a", DataType::Float64, true),
            Field::new("new", DataType::Boolean, true),
        ]));
        let out = seg.read_as(&target, |_, _| true).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].num_rows(), 5);
        assert_eq!(out[0].column(2).null_count(), 10);
        let a = out[0]
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap();
        assert_eq!(a.value(9), 9.0);
        // No columns at all (count(*)): row counts only.
        let empty = Arc::new(Schema::empty());
        let counts: usize = seg
            .read_as(&empty, |_, _| true)
            .unwrap()
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(counts, 15);
        // The buffer is wiped when the last reference (here, the decoded arrays) goes.
        let bytes = seg.bytes() as u64;
        drop(seg);
        assert_eq!(
            zeroized.load(Ordering::Relaxed),
            0,
            "arrays still point into it"
        );
        drop(out);
        assert!(zeroized.load(Ordering::Relaxed) >= bytes);
    }

    #[test]
    fn each_batch_has_a_buffer_of_its_own_freed_when_no_query_holds_it() {
        let zeroized = Arc::new(AtomicU64::new(0));
        let allocated = AtomicU64::new(0);
        let b = [batch(1_000), batch(1_000), batch(0), batch(1_000)];
        let schema = b[0].schema();
        let seg = HotSegment::encode_from(
            &loc(),
            Arc::clone(&schema),
            b.iter().map(|b| Ok(b.clone())),
            None,
            Arc::clone(&zeroized),
            &allocated,
        )
        .unwrap();
        assert_eq!(
            (seg.rows(), seg.batch_count()),
            (3_000, 3),
            "the empty batch is left out"
        );
        // Each buffer about its batch's size: nothing held twice, no large spare room.
        let alive = allocated.load(Ordering::Relaxed) as usize;
        assert!(
            alive >= seg.bytes() && alive <= seg.bytes() * 9 / 8,
            "{alive} for {}",
            seg.bytes()
        );
        // A query that still holds one batch of an evicted segment keeps that batch's buffer
        // alone alive.
        let mut out = seg.read_as(&schema, |_, _| true).unwrap();
        drop(seg);
        let kept = out.remove(1);
        drop(out);
        let freed = zeroized.load(Ordering::Relaxed) as usize;
        assert!(freed > 0 && freed < alive, "{freed} of {alive} freed");
        assert_eq!(kept.num_rows(), 1_000);
        drop(kept);
        assert_eq!(zeroized.load(Ordering::Relaxed) as usize, alive);
    }

    fn timed(times: &[i64]) -> RecordBatch {
        use arrow::array::TimestampMicrosecondArray;
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                TIME_COLUMN,
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("n", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(TimestampMicrosecondArray::from(times.to_vec()).with_timezone("UTC")),
                Arc::new(Int64Array::from_iter_values(times.iter().map(|t| t * 10))),
            ],
        )
        .unwrap()
    }

    #[test]
    fn batches_outside_the_time_bounds_are_skipped() {
        let b = [
            timed(&[100, 150, 199]),
            timed(&[200, 250, 299]),
            timed(&[300]),
        ];
        let seg = HotSegment::encode(&loc(), b[0].schema(), &b, None, Arc::default()).unwrap();
        assert_eq!(seg.batch_count(), 3);
        let target = b[0].schema();
        // Bounds [220, 260]: only the middle batch can hold a match.
        let out = seg
            .read_as(&target, |lo, hi| hi >= 220 && lo <= 260)
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].num_rows(), 3);
        // Touching bounds are inclusive: [199, 200] overlaps the first two.
        let out = seg
            .read_as(&target, |lo, hi| hi >= 199 && lo <= 200)
            .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(seg.read_as(&target, |_, _| false).unwrap().len(), 0);
    }

    #[test]
    fn time_ranges_cover_every_row_in_any_unit() {
        use arrow::array::{TimestampMillisecondArray, TimestampNanosecondArray};
        let nanos: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![1_500, -1_500, 7_000]));
        assert_eq!(time_range(&nanos), Some((-2, 7)));
        let millis: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![3, -1]));
        assert_eq!(time_range(&millis), Some((-1_000, 3_000)));
        let none: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        assert_eq!(time_range(&none), None);
        let empty: ArrayRef = Arc::new(TimestampNanosecondArray::from(Vec::<i64>::new()));
        assert_eq!(time_range(&empty), None);
    }

    #[test]
    fn the_writer_wipes_what_it_outgrows() {
        let mut w = ZeroizingWriter::with_capacity(4);
        w.write_all(&[1; 3]).unwrap();
        w.write_all(&[2; 10_000]).unwrap();
        let v = w.into_exact();
        assert_eq!(v.len(), 10_003);
        assert_eq!(v.capacity(), 10_003);
    }

    #[test]
    fn a_buffer_much_larger_than_its_bytes_is_copied_to_their_size_and_one_close_to_it_kept() {
        let mut w = ZeroizingWriter::with_capacity(100_000);
        w.write_all(&[7; 10]).unwrap();
        let v = w.into_exact();
        assert_eq!((v.len(), v.capacity()), (10, 10));
        let mut w = ZeroizingWriter::with_capacity(1_000);
        w.write_all(&[7; 950]).unwrap();
        let kept = w.0.as_ptr();
        let v = w.into_exact();
        assert_eq!((v.len(), v.capacity()), (950, 1_000));
        assert_eq!(v.as_ptr(), kept, "the buffer itself, not a copy");
    }
}
