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

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::IngestError;

mod partition;
mod schemas;
mod sink;

pub use partition::{Granularity, PartitionKey, SeqRange};
use partition::{add_seq, split_by_partition};
pub use sink::{OpenSegment, SegmentBatch, SegmentDone, SegmentSink};

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
