//! Where the batcher's finished segments go: the sink traits, and what travels with a segment.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use super::{PartitionKey, SeqRange};
use crate::IngestError;

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
