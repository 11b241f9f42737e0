//! The segment sink over the store: each segment is written encrypted under the writer's
//! account key lease as its rows arrive (`logvault_store::SegmentWriter`), then stored and
//! recorded in its table's catalog with the log records it holds, then admitted to the hot
//! cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use logvault_cache::HotCache;
use logvault_ingest::{
    IngestError, OpenSegment, PartitionKey, SegmentBatch, SegmentDone, SegmentSink,
};
use logvault_store::{AccountKeyLease, SegmentWriter, Store, WalRange};

/// Writes segments of one workspace into one storage account.
pub(crate) struct StoreSink {
    store: Arc<Store>,
    cache: HotCache,
    workspace: String,
    lease: AccountKeyLease,
    written: Arc<AtomicUsize>,
}

impl StoreSink {
    pub(crate) fn new(
        store: Arc<Store>,
        cache: HotCache,
        workspace: &str,
        lease: AccountKeyLease,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            cache,
            workspace: workspace.to_owned(),
            lease,
            written: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Segments written so far.
    pub(crate) fn written(&self) -> usize {
        self.written.load(Ordering::Relaxed)
    }

    pub(crate) fn lease(&self) -> &AccountKeyLease {
        &self.lease
    }
}

#[async_trait]
impl SegmentSink for StoreSink {
    async fn write_segment(&self, segment: SegmentBatch) -> Result<(), IngestError> {
        let fail = |e: logvault_store::StoreError| IngestError::Sink {
            table: segment.table.clone(),
            reason: e.to_string(),
        };
        let mut writer = self
            .store
            .open_segment_under(
                &self.lease.account,
                &self.lease.aek,
                &self.lease.record,
                &self.workspace,
                &segment.table,
                segment.batch.schema(),
            )
            .await
            .map_err(fail)?;
        writer.write(segment.batch.clone()).await.map_err(fail)?;
        Box::new(self.segment(writer))
            .finish(SegmentDone {
                table: segment.table.clone(),
                partition: segment.partition,
                wal: segment.wal.clone(),
                min_time: segment.min_time,
                max_time: segment.max_time,
            })
            .await
    }

    async fn open_segment(
        &self,
        table: &str,
        _partition: PartitionKey,
        schema: SchemaRef,
    ) -> Result<Option<Box<dyn OpenSegment>>, IngestError> {
        let writer = self
            .store
            .open_segment_under(
                &self.lease.account,
                &self.lease.aek,
                &self.lease.record,
                &self.workspace,
                table,
                schema,
            )
            .await
            .map_err(|e| IngestError::Sink {
                table: table.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Some(Box::new(self.segment(writer))))
    }
}

/// A segment of a [`StoreSink`] being written as its rows arrive.
struct StoreSegment {
    store: Arc<Store>,
    cache: HotCache,
    workspace: String,
    written: Arc<AtomicUsize>,
    writer: SegmentWriter,
}

impl StoreSink {
    fn segment(&self, writer: SegmentWriter) -> StoreSegment {
        StoreSegment {
            store: Arc::clone(&self.store),
            cache: self.cache.clone(),
            workspace: self.workspace.clone(),
            written: Arc::clone(&self.written),
            writer,
        }
    }
}

#[async_trait]
impl OpenSegment for StoreSegment {
    async fn write(&mut self, batch: RecordBatch) -> Result<(), IngestError> {
        let table = self.writer.location().table.clone();
        self.writer
            .write(batch)
            .await
            .map_err(|e| IngestError::Sink {
                table,
                reason: e.to_string(),
            })
    }

    fn memory(&self) -> usize {
        self.writer.memory()
    }

    /// Stores the segment: the file, then its catalog entry with its log ranges, then the hot
    /// cache's admission.
    async fn finish(self: Box<Self>, done: SegmentDone) -> Result<(), IngestError> {
        let fail = |e: logvault_store::StoreError| IngestError::Sink {
            table: done.table.clone(),
            reason: e.to_string(),
        };
        let Self {
            store,
            cache,
            workspace,
            written,
            writer,
        } = *self;
        let mut entry = writer.finish().await.map_err(fail)?;
        entry.wal = done
            .wal
            .iter()
            .map(|r| WalRange {
                first: r.first,
                last: r.last,
            })
            .collect();
        let manifest = store
            .catalog()
            .add_segments(
                &workspace,
                &done.table,
                store.clock().now(),
                vec![entry.clone()],
            )
            .await
            .map_err(fail)?;
        // New data is hot (R-F1): the cache admits it.
        cache.admit(manifest.location(&entry), entry.max_time);
        written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
