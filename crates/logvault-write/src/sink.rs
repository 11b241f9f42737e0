//! The segment sink over the store: each segment is written encrypted under the writer's
//! account key lease as its rows arrive (`logvault_store::SegmentWriter`), then stored and
//! recorded in its table's catalog with the log records it holds, then admitted to the hot
//! cache.
//!
//! A deferred sink (a bulk load's, `load.rs`) stores each segment's file as it finishes but
//! leaves it out of the catalog: [`StoreSink::commit`] lists every segment finished since the
//! last commit in one catalog update per table (then admits them to the hot cache), and
//! [`StoreSink::discard`] deletes their files instead.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use logvault_cache::HotCache;
use logvault_ingest::{
    IngestError, OpenSegment, PartitionKey, SegmentBatch, SegmentDone, SegmentSink,
};
use logvault_store::{
    AccountKeyLease, SegmentEntry, SegmentLocation, SegmentWriter, Store, WalRange,
};

/// Segments stored and not yet listed in the catalog (a deferred sink's).
type Uncommitted = Arc<Mutex<Vec<(SegmentLocation, SegmentEntry)>>>;

/// Writes segments of one workspace into one storage account.
pub(crate) struct StoreSink {
    store: Arc<Store>,
    cache: HotCache,
    workspace: String,
    lease: AccountKeyLease,
    written: Arc<AtomicUsize>,
    /// `Some` for a deferred sink: finished segments wait here for [`StoreSink::commit`].
    uncommitted: Option<Uncommitted>,
}

impl StoreSink {
    pub(crate) fn new(
        store: Arc<Store>,
        cache: HotCache,
        workspace: &str,
        lease: AccountKeyLease,
    ) -> Arc<Self> {
        Self::with(store, cache, workspace, lease, None)
    }

    /// A deferred sink (see the module documentation).
    pub(crate) fn deferred(
        store: Arc<Store>,
        cache: HotCache,
        workspace: &str,
        lease: AccountKeyLease,
    ) -> Arc<Self> {
        Self::with(store, cache, workspace, lease, Some(Arc::default()))
    }

    fn with(
        store: Arc<Store>,
        cache: HotCache,
        workspace: &str,
        lease: AccountKeyLease,
        uncommitted: Option<Uncommitted>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            cache,
            workspace: workspace.to_owned(),
            lease,
            written: Arc::new(AtomicUsize::new(0)),
            uncommitted,
        })
    }

    /// Segments written (and listed in the catalog) so far.
    pub(crate) fn written(&self) -> usize {
        self.written.load(Ordering::Relaxed)
    }

    fn take_uncommitted(&self) -> Vec<(SegmentLocation, SegmentEntry)> {
        self.uncommitted.as_ref().map_or_else(Vec::new, |u| {
            std::mem::take(&mut *u.lock().unwrap_or_else(PoisonError::into_inner))
        })
    }

    /// Lists every segment a deferred sink finished since its last commit in its table's
    /// catalog, one update per table, then admits them to the hot cache. Returns the rows they
    /// hold. A table whose update fails keeps its files (the update may have landed, its reply
    /// lost; if it did not, they are orphans the collection deletes); the tables before it stay
    /// listed, those after it are not and their files are deleted.
    pub(crate) async fn commit(&self) -> Result<u64, IngestError> {
        let mut by_table: BTreeMap<String, Vec<(SegmentLocation, SegmentEntry)>> = BTreeMap::new();
        for (loc, entry) in self.take_uncommitted() {
            by_table
                .entry(loc.table.clone())
                .or_default()
                .push((loc, entry));
        }
        let mut rows = 0;
        let mut tables = by_table.into_iter();
        while let Some((table, segments)) = tables.next() {
            let entries = segments.iter().map(|(_, e)| e.clone()).collect();
            let listed = self
                .store
                .catalog()
                .add_segments(&self.workspace, &table, self.store.clock().now(), entries)
                .await;
            if let Err(e) = listed {
                // The update may have landed with its reply lost: then the catalog lists these
                // files, which must stay. They are left as they are: unlisted, they are orphans
                // that the store's collection deletes after its grace period. The tables after
                // this one are not listed; their files are deleted.
                let unlisted = tables.flat_map(|(_, s)| s);
                self.delete(unlisted.map(|(loc, _)| loc)).await;
                return Err(IngestError::Sink {
                    table,
                    reason: e.to_string(),
                });
            }
            for (loc, entry) in segments {
                rows += entry.rows;
                // New data is hot (R-F1): the cache admits it.
                self.cache.admit(loc, entry.max_time);
                self.written.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(rows)
    }

    /// Deletes the files of the segments a deferred sink finished and did not commit.
    pub(crate) async fn discard(&self) {
        let unlisted = self.take_uncommitted();
        self.delete(unlisted.into_iter().map(|(loc, _)| loc)).await;
    }

    /// Deletes files no manifest lists; one that stays (a failed delete) is an orphan that the
    /// store's collection deletes after its grace period.
    async fn delete(&self, locations: impl Iterator<Item = SegmentLocation>) {
        for loc in locations {
            self.store.delete_unlisted_segment(&loc).await;
        }
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
    uncommitted: Option<Uncommitted>,
    writer: SegmentWriter,
}

impl StoreSink {
    fn segment(&self, writer: SegmentWriter) -> StoreSegment {
        StoreSegment {
            store: Arc::clone(&self.store),
            cache: self.cache.clone(),
            workspace: self.workspace.clone(),
            written: Arc::clone(&self.written),
            uncommitted: self.uncommitted.clone(),
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
    /// cache's admission (a deferred sink's: the file, and the entry waits for its commit).
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
            uncommitted,
            writer,
        } = *self;
        let loc = writer.location().clone();
        let mut entry = writer.finish().await.map_err(fail)?;
        entry.wal = done
            .wal
            .iter()
            .map(|r| WalRange {
                first: r.first,
                last: r.last,
            })
            .collect();
        if let Some(uncommitted) = uncommitted {
            uncommitted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((loc, entry));
            return Ok(());
        }
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
