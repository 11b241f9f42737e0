//! Accumulates parsed rows per table and time partition into segments-to-be, and hands each
//! finished one to a [`SegmentSink`].
//!
//! Rows are partitioned by the UTC hour or day of their `TimeGenerated`, so that a query over a
//! time range only opens the segments of that range. A partition's buffer is flushed when it
//! reaches [`BatcherOptions::max_rows`] or [`BatcherOptions::max_bytes`], when it has gone quiet
//! (its table received [`BatcherOptions::quiet_rows`] rows since it last got any: rows in time
//! order leave yesterday's segment behind), or when all buffers together exceed
//! [`BatcherOptions::max_buffered_bytes`] (the largest that the last added batch did not touch
//! goes first, else the largest). Age is the owner's: it calls [`Batcher::flush_all`] on its
//! own timer (the server's hub does, `docs/ingest.md`).
//!
//! The batches of one segment may have been parsed with narrower kinds than the latest (a
//! column that was `Int` and is now `Float`): they are cast to the widest kind of the segment
//! (by [`crate::ColumnKind::widen`]), and a column missing from some of them is null there.
//!
//! A sink that can ([`SegmentSink::open_segment`], the store's) takes a segment's rows as they
//! arrive and encodes them at once, so a partition being filled holds encoded bytes, not Arrow
//! rows, and [`BatcherOptions::max_buffered_bytes`] bounds what the encoders hold. Such a
//! segment is opened with every column seen so far for its table; rows bringing a new column
//! or a wider type finish it and go to a new one. Other sinks get whole segments
//! ([`SegmentSink::write_segment`]), the rows kept until then. A segment that fails to be
//! written or stored loses its rows from memory, never from the log: the checkpoint stays before
//! them, and the next open replays them.
//!
//! Write-ahead log sequence numbers travel with the rows: each segment lists the sequence
//! numbers whose rows it holds (as ranges; one range when records arrive in order), and
//! [`Batcher::checkpoint`] says up to which sequence number every record is in a flushed
//! segment, so the log can be truncated up to there. A record's rows for one partition are never
//! split across two segments, which is what makes replay exact (see `docs/ingest.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::IngestError;
use crate::kind::TIME_GENERATED;

mod schemas;

/// The time span of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Granularity {
    /// One partition per UTC hour.
    Hour,
    /// One partition per UTC day.
    #[default]
    Day,
}

impl Granularity {
    fn micros(self) -> i64 {
        match self {
            Self::Hour => 3_600_000_000,
            Self::Day => 86_400_000_000,
        }
    }
}

/// A time partition: the UTC hour or day its rows' `TimeGenerated` falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    /// Its span.
    pub granularity: Granularity,
    /// Its start, in UTC microseconds since the epoch.
    pub start_micros: i64,
}

impl PartitionKey {
    /// The partition holding time `micros`.
    pub fn of(granularity: Granularity, micros: i64) -> Self {
        let span = granularity.micros();
        Self {
            granularity,
            start_micros: micros.div_euclid(span) * span,
        }
    }

    /// Its start.
    pub fn start(&self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.start_micros)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Its end (exclusive).
    pub fn end(&self) -> DateTime<Utc> {
        self.start() + Duration::microseconds(self.granularity.micros())
    }

    /// A label for paths and logs: `2021-04-26` for a day, `2021-04-26T19` for an hour.
    pub fn label(&self) -> String {
        match self.granularity {
            Granularity::Day => self.start().format("%Y-%m-%d").to_string(),
            Granularity::Hour => self.start().format("%Y-%m-%dT%H").to_string(),
        }
    }
}

/// An inclusive range of write-ahead log sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    /// The first.
    pub first: u64,
    /// The last.
    pub last: u64,
}

impl SeqRange {
    /// Whether `seq` is in the range.
    pub fn contains(&self, seq: u64) -> bool {
        (self.first..=self.last).contains(&seq)
    }
}

/// Adds `seq` to sorted, disjoint, non-adjacent ranges.
fn add_seq(ranges: &mut Vec<SeqRange>, seq: u64) {
    let i = ranges.partition_point(|r| r.last < seq);
    if ranges.get(i).is_some_and(|r| r.contains(seq)) {
        return;
    }
    let joins_prev = i > 0 && ranges[i - 1].last + 1 == seq;
    let joins_next = ranges.get(i).is_some_and(|r| r.first == seq + 1);
    match (joins_prev, joins_next) {
        (true, true) => {
            ranges[i - 1].last = ranges[i].last;
            ranges.remove(i);
        }
        (true, false) => ranges[i - 1].last = seq,
        (false, true) => ranges[i].first = seq,
        (false, false) => ranges.insert(
            i,
            SeqRange {
                first: seq,
                last: seq,
            },
        ),
    }
}

/// A finished segment-to-be.
#[derive(Debug, Clone)]
pub struct SegmentBatch {
    /// Its table.
    pub table: String,
    /// Its time partition.
    pub partition: PartitionKey,
    /// Its rows, in arrival order.
    pub batch: RecordBatch,
    /// The write-ahead log records it holds rows of, as sorted disjoint ranges (empty for rows
    /// added without a log). The catalog keeps them: replay skips a record's rows for this
    /// table and partition when a segment lists the record.
    pub wal: Vec<SeqRange>,
    /// The earliest `TimeGenerated`, UTC microseconds.
    pub min_time: i64,
    /// The latest `TimeGenerated`, UTC microseconds.
    pub max_time: i64,
}

/// Where finished segments go: the store integration writes them as encrypted Parquet and
/// records them in the table's catalog.
#[async_trait]
pub trait SegmentSink: Send + Sync {
    /// Takes one segment. Returns only once the segment is durable in the store and in the
    /// catalog, with its [`SegmentBatch::wal`] ranges: the batcher then lets the log forget it.
    async fn write_segment(&self, segment: SegmentBatch) -> Result<(), IngestError>;

    /// Opens a segment of `table` and `partition` with rows of `schema`, written as rows arrive
    /// (see [`OpenSegment`]), if the sink can: a segment being filled then holds its encoded
    /// bytes, not the rows. `None` (the default): the batcher keeps the rows and hands them to
    /// [`SegmentSink::write_segment`] when the segment is finished.
    ///
    /// # Errors
    /// Why the segment cannot be opened.
    async fn open_segment(
        &self,
        _table: &str,
        _partition: PartitionKey,
        _schema: SchemaRef,
    ) -> Result<Option<Box<dyn OpenSegment>>, IngestError> {
        Ok(None)
    }
}

/// A segment being written as its rows arrive ([`SegmentSink::open_segment`]). Dropping it
/// without [`OpenSegment::finish`] stores nothing.
#[async_trait]
pub trait OpenSegment: Send + Sync {
    /// Writes rows (of the schema the segment was opened with).
    ///
    /// # Errors
    /// Why they cannot be written; the segment is then unusable.
    async fn write(&mut self, batch: RecordBatch) -> Result<(), IngestError>;

    /// Bytes the segment holds in memory now.
    fn memory(&self) -> usize;

    /// Stores the segment: returns only once it is durable in the store and in the catalog,
    /// with `done`'s log ranges.
    ///
    /// # Errors
    /// Why it cannot be stored.
    async fn finish(self: Box<Self>, done: SegmentDone) -> Result<(), IngestError>;
}

/// What the batcher knows of a finished segment besides its rows.
#[derive(Debug, Clone)]
pub struct SegmentDone {
    /// Its table.
    pub table: String,
    /// Its time partition.
    pub partition: PartitionKey,
    /// The write-ahead log records it holds rows of (as in [`SegmentBatch::wal`]).
    pub wal: Vec<SeqRange>,
    /// The earliest `TimeGenerated`, UTC microseconds.
    pub min_time: i64,
    /// The latest `TimeGenerated`, UTC microseconds.
    pub max_time: i64,
}

/// Limits of the batcher.
#[derive(Debug, Clone)]
pub struct BatcherOptions {
    /// Rows that finish a segment.
    pub max_rows: usize,
    /// Bytes (Arrow memory) that finish a segment.
    pub max_bytes: usize,
    /// Bytes all buffers together may hold before the largest is flushed.
    pub max_buffered_bytes: usize,
    /// Rows of its table after which a segment that got none of them is finished: it has gone
    /// quiet (rows in time order have moved on to the next partition), and an open segment
    /// holds its encoders (about 10 MiB) for as long as it is open.
    pub quiet_rows: usize,
    /// Partition span.
    pub granularity: Granularity,
}

impl Default for BatcherOptions {
    fn default() -> Self {
        Self {
            max_rows: 1_000_000,
            max_bytes: 128 << 20,
            max_buffered_bytes: 64 << 20,
            quiet_rows: DEFAULT_QUIET_ROWS,
            granularity: Granularity::Day,
        }
    }
}

/// The default of [`BatcherOptions::quiet_rows`]: a row group's worth of rows
/// (`SegmentOptions::max_row_group_rows`).
pub const DEFAULT_QUIET_ROWS: usize = 128 * 1024;

/// What one add did: the segments it finished, and the rows it took (a replay skips the rows
/// already in a segment).
struct Added {
    flushed: usize,
    rows: usize,
}

/// A segment being filled: rows kept for the sink's `write_segment`, or written to the sink
/// as they arrive.
enum Segment {
    Kept(Vec<RecordBatch>),
    Open(Box<dyn OpenSegment>),
}

struct Buffer {
    segment: Segment,
    /// The rows' schema: the segment's (an open one), or their union so far (kept rows).
    schema: SchemaRef,
    rows: usize,
    /// Arrow bytes of the rows added (the segment size limit).
    bytes: usize,
    /// Bytes the buffer holds in memory now (the limit of all buffers together).
    memory: usize,
    /// The last call of [`Batcher::add`] that gave it rows (the batcher's `adds` then).
    touched: u64,
    /// Rows its table had received when it last got rows (the table's count then).
    touched_rows: u64,
    seqs: Vec<SeqRange>,
    min_time: i64,
    max_time: i64,
}

/// Which sequence numbers have been handed to the batcher: all up to `contiguous`, and some
/// beyond it.
#[derive(Debug, Default)]
struct SeqTracker {
    contiguous: u64,
    beyond: BTreeSet<u64>,
}

impl SeqTracker {
    fn mark(&mut self, seq: u64) {
        if seq <= self.contiguous {
            return;
        }
        self.beyond.insert(seq);
        while self.beyond.remove(&(self.contiguous + 1)) {
            self.contiguous += 1;
        }
    }
}

type BufferKey = (String, PartitionKey);

/// Accumulates rows per (table, partition).
pub struct Batcher {
    options: BatcherOptions,
    sink: Arc<dyn SegmentSink>,
    buffers: BTreeMap<BufferKey, Buffer>,
    buffered_bytes: usize,
    seqs: SeqTracker,
    /// Per table, the union of every schema seen: a new segment opens with it, so that a
    /// segment written as rows arrive rarely meets a column it does not have.
    tables: BTreeMap<String, SchemaRef>,
    /// The earliest log record whose rows a failed segment lost from memory: the checkpoint
    /// stays before it, so the log keeps it for the next open's replay.
    lost: Option<u64>,
    /// Calls of `add` so far: a buffer the last call did not touch has gone quiet.
    adds: u64,
    /// Per table, rows received so far: a buffer whose table received `quiet_rows` rows
    /// since it got any is finished.
    table_rows: BTreeMap<String, u64>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("buffers", &self.buffers.len())
            .field("buffered_bytes", &self.buffered_bytes)
            .field("checkpoint", &self.checkpoint())
            .finish()
    }
}

impl Batcher {
    /// A batcher handing segments to `sink`; log sequence numbers are expected from
    /// `resume_after + 1` on (0 for a new log; after a replay, the log's checkpoint).
    ///
    /// # Errors
    /// [`IngestError::InvalidOption`] for a zero limit.
    pub fn new(
        options: BatcherOptions,
        sink: Arc<dyn SegmentSink>,
        resume_after: u64,
    ) -> Result<Self, IngestError> {
        if options.max_rows == 0
            || options.max_bytes == 0
            || options.max_buffered_bytes == 0
            || options.quiet_rows == 0
        {
            return Err(IngestError::InvalidOption {
                reason: "batcher limits must be positive".into(),
            });
        }
        Ok(Self {
            options,
            sink,
            buffers: BTreeMap::new(),
            buffered_bytes: 0,
            adds: 0,
            seqs: SeqTracker {
                contiguous: resume_after,
                beyond: BTreeSet::new(),
            },
            tables: BTreeMap::new(),
            lost: None,
            table_rows: BTreeMap::new(),
        })
    }

    /// Rows held, not yet flushed.
    pub fn buffered_rows(&self) -> usize {
        self.buffers.values().map(|b| b.rows).sum()
    }

    /// Bytes held in memory, not yet flushed: the rows kept for a sink that takes whole
    /// segments, or what the segments being written hold (encoded rows, encoders).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// The highest sequence number up to which every log record handed to the batcher is in a
    /// flushed segment: the log may be checkpointed there. A segment that failed keeps it
    /// before the records whose rows it held, for the rest of the batcher's life.
    pub fn checkpoint(&self) -> u64 {
        let open = self
            .buffers
            .values()
            .filter_map(|b| b.seqs.first().map(|s| s.first.saturating_sub(1)))
            .min()
            .unwrap_or(u64::MAX);
        let lost = self.lost.map_or(u64::MAX, |s| s.saturating_sub(1));
        self.seqs.contiguous.min(open).min(lost)
    }

    /// Adds a parsed batch of `table`, from log record `seq` if it was logged. Flushes the
    /// buffers this fills; returns how many segments were flushed.
    ///
    /// # Errors
    /// [`IngestError::Arrow`] for a batch without a `TimeGenerated` timestamp column, or one
    /// that cannot be split or merged; the sink's error if writing or storing a segment fails:
    /// that segment's rows are then dropped from memory and the checkpoint stays before them
    /// (the log keeps them; the next open replays them).
    pub async fn add(
        &mut self,
        table: &str,
        batch: &RecordBatch,
        seq: Option<u64>,
    ) -> Result<usize, IngestError> {
        Ok(self
            .add_filtered(table, batch, seq, |_, _| false)
            .await?
            .flushed)
    }

    /// Adds a batch replayed from log record `seq`, skipping the partitions for which
    /// `already_flushed(partition, seq)` says the catalog has a segment of `table` listing
    /// `seq` (see `docs/ingest.md`, "crash and replay"). Returns the rows it took (not the
    /// segments it finished, as [`Batcher::add`] does).
    ///
    /// # Errors
    /// As [`Batcher::add`].
    pub async fn replay(
        &mut self,
        table: &str,
        batch: &RecordBatch,
        seq: u64,
        already_flushed: impl Fn(PartitionKey, u64) -> bool,
    ) -> Result<usize, IngestError> {
        Ok(self
            .add_filtered(table, batch, Some(seq), already_flushed)
            .await?
            .rows)
    }

    async fn add_filtered(
        &mut self,
        table: &str,
        batch: &RecordBatch,
        seq: Option<u64>,
        skip: impl Fn(PartitionKey, u64) -> bool,
    ) -> Result<Added, IngestError> {
        let parts = split_by_partition(table, batch, self.options.granularity)?;
        let mut full = Vec::new();
        let mut flushed = 0;
        let mut rows = 0;
        self.adds += 1;
        let table_rows = {
            let count = self.table_rows.entry(table.to_owned()).or_default();
            *count += batch.num_rows() as u64;
            *count
        };
        for (partition, part, min_time, max_time) in parts {
            if seq.is_some_and(|s| skip(partition, s)) {
                continue;
            }
            let key = (table.to_owned(), partition);
            let seen = match self.tables.get(table) {
                Some(known) => schemas::union(table, [known, &part.schema()])?,
                None => part.schema(),
            };
            self.tables.insert(table.to_owned(), Arc::clone(&seen));
            // A segment being written cannot take a new column or a wider type: it is
            // finished, and the rows go to a new one with every column seen so far.
            if let Some(buf) = self.buffers.get(&key)
                && matches!(buf.segment, Segment::Open(_))
                && !schemas::fits(table, &buf.schema, &part.schema())
            {
                flushed += self.flush(&key).await?;
            }
            if !self.buffers.contains_key(&key) {
                let buffer = self
                    .open(table, partition, seen, min_time, max_time)
                    .await?;
                self.buffers.insert(key.clone(), buffer);
            }
            let Some(buf) = self.buffers.get_mut(&key) else {
                continue;
            };
            let bytes = part.get_array_memory_size();
            let written = match &mut buf.segment {
                Segment::Kept(batches) => {
                    buf.schema = schemas::union(table, [&buf.schema, &part.schema()])?;
                    batches.push(part.clone());
                    Ok(bytes)
                }
                Segment::Open(segment) => match schemas::align(table, &part, &buf.schema) {
                    Ok(aligned) => segment.write(aligned).await.map(|()| segment.memory()),
                    Err(e) => Err(e),
                },
            };
            let memory = match written {
                Ok(m) => m,
                Err(e) => {
                    self.lose(&key, seq);
                    return Err(e);
                }
            };
            let memory = match buf.segment {
                Segment::Kept(_) => buf.memory + memory,
                Segment::Open(_) => memory,
            };
            self.buffered_bytes = self.buffered_bytes - buf.memory + memory;
            buf.memory = memory;
            buf.rows += part.num_rows();
            rows += part.num_rows();
            buf.bytes += bytes;
            buf.touched = self.adds;
            buf.touched_rows = table_rows;
            buf.min_time = buf.min_time.min(min_time);
            buf.max_time = buf.max_time.max(max_time);
            if let Some(s) = seq {
                add_seq(&mut buf.seqs, s);
            }
            if buf.rows >= self.options.max_rows || buf.bytes >= self.options.max_bytes {
                full.push(key);
            }
        }
        if let Some(s) = seq {
            self.seqs.mark(s);
        }
        // The table's segments that its last `quiet_rows` rows did not reach have gone quiet.
        let quiet_rows = self.options.quiet_rows as u64;
        let quiet: Vec<BufferKey> = self
            .buffers
            .iter()
            .filter(|((t, _), b)| {
                t == table && table_rows.saturating_sub(b.touched_rows) >= quiet_rows
            })
            .map(|(k, _)| k.clone())
            .filter(|k| !full.contains(k))
            .collect();
        full.extend(quiet);
        for key in full {
            flushed += self.flush(&key).await?;
        }
        // Over the bound: the largest buffer that this call did not touch goes first (rows in
        // time order leave yesterday's segment open and quiet), else the largest.
        while self.buffered_bytes > self.options.max_buffered_bytes {
            let adds = self.adds;
            let Some(victim) = self
                .buffers
                .iter()
                .max_by_key(|(_, b)| (b.touched < adds, b.memory))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            flushed += self.flush(&victim).await?;
        }
        Ok(Added { flushed, rows })
    }

    async fn open(
        &self,
        table: &str,
        partition: PartitionKey,
        schema: SchemaRef,
        min_time: i64,
        max_time: i64,
    ) -> Result<Buffer, IngestError> {
        let segment = match self
            .sink
            .open_segment(table, partition, Arc::clone(&schema))
            .await?
        {
            Some(open) => Segment::Open(open),
            None => Segment::Kept(Vec::new()),
        };
        Ok(Buffer {
            segment,
            schema,
            rows: 0,
            bytes: 0,
            memory: 0,
            touched: self.adds,
            touched_rows: self.table_rows.get(table).copied().unwrap_or(0),
            seqs: Vec::new(),
            min_time,
            max_time,
        })
    }

    /// A segment failed: its rows are gone from memory, and the checkpoint stays before the
    /// first record it held (and `seq`, whose rows it was taking).
    fn lose(&mut self, key: &BufferKey, seq: Option<u64>) {
        let first = self
            .buffers
            .remove(key)
            .and_then(|buf| {
                self.buffered_bytes -= buf.memory;
                buf.seqs.first().map(|r| r.first)
            })
            .into_iter()
            .chain(seq)
            .min();
        if let Some(first) = first {
            self.lost = Some(self.lost.map_or(first, |l| l.min(first)));
        }
    }

    /// Flushes every buffer (at shutdown).
    ///
    /// # Errors
    /// The first sink error; the buffers not flushed stay.
    pub async fn flush_all(&mut self) -> Result<usize, IngestError> {
        let keys: Vec<BufferKey> = self.buffers.keys().cloned().collect();
        let mut flushed = 0;
        for key in keys {
            flushed += self.flush(&key).await?;
        }
        Ok(flushed)
    }

    async fn flush(&mut self, key: &BufferKey) -> Result<usize, IngestError> {
        let Some(buf) = self.buffers.remove(key) else {
            return Ok(0);
        };
        self.buffered_bytes -= buf.memory;
        let (table, partition) = key;
        tracing::debug!(table, partition = %partition.label(), rows = buf.rows, "flushing segment");
        let first = buf.seqs.first().map(|r| r.first);
        let result = match buf.segment {
            Segment::Kept(batches) => match schemas::merge_batches(table, &batches) {
                Ok(merged) => {
                    self.sink
                        .write_segment(SegmentBatch {
                            table: table.clone(),
                            partition: *partition,
                            batch: merged,
                            wal: buf.seqs,
                            min_time: buf.min_time,
                            max_time: buf.max_time,
                        })
                        .await
                }
                Err(e) => Err(e),
            },
            Segment::Open(segment) => {
                segment
                    .finish(SegmentDone {
                        table: table.clone(),
                        partition: *partition,
                        wal: buf.seqs,
                        min_time: buf.min_time,
                        max_time: buf.max_time,
                    })
                    .await
            }
        };
        match result {
            Ok(()) => Ok(1),
            Err(e) => {
                if let Some(first) = first {
                    self.lost = Some(self.lost.map_or(first, |l| l.min(first)));
                }
                Err(e)
            }
        }
    }
}

/// Splits a batch by the partition of each row's `TimeGenerated`, keeping row order within a
/// partition; with each part, its earliest and latest time.
fn split_by_partition(
    table: &str,
    batch: &RecordBatch,
    granularity: Granularity,
) -> Result<Vec<(PartitionKey, RecordBatch, i64, i64)>, IngestError> {
    let times = batch
        .column_by_name(TIME_GENERATED)
        .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
        .filter(|c| c.null_count() == 0)
        .ok_or_else(|| {
            IngestError::arrow(
                table,
                "batch has no non-null TimeGenerated timestamp column",
            )
        })?;
    let values = times.values();
    let (Some(&lo), Some(&hi)) = (values.iter().min(), values.iter().max()) else {
        return Ok(Vec::new());
    };
    let first = PartitionKey::of(granularity, lo);
    if first == PartitionKey::of(granularity, hi) {
        return Ok(vec![(first, batch.clone(), lo, hi)]);
    }
    let mut groups: BTreeMap<PartitionKey, Vec<u32>> = BTreeMap::new();
    for (row, &t) in values.iter().enumerate() {
        let row = u32::try_from(row).map_err(|e| IngestError::arrow(table, e))?;
        groups
            .entry(PartitionKey::of(granularity, t))
            .or_default()
            .push(row);
    }
    groups
        .into_iter()
        .map(|(key, rows)| {
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for &r in &rows {
                let t = values[r as usize];
                lo = lo.min(t);
                hi = hi.max(t);
            }
            let part = take_record_batch(batch, &UInt32Array::from(rows))
                .map_err(|e| IngestError::arrow(table, e))?;
            Ok((key, part, lo, hi))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_ranges_stay_sorted_and_coalesced() {
        let mut r = Vec::new();
        for s in [5, 1, 2, 9, 4, 3, 7, 2, 8] {
            add_seq(&mut r, s);
        }
        let got: Vec<(u64, u64)> = r.iter().map(|x| (x.first, x.last)).collect();
        assert_eq!(got, vec![(1, 5), (7, 9)]);
        add_seq(&mut r, 6);
        assert_eq!(r, vec![SeqRange { first: 1, last: 9 }]);
    }
}
