//! The segment sink over the store: each finished segment is written encrypted under the
//! writer's account key lease, then recorded in its table's catalog with the log records it
//! holds, then admitted to the hot cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use logvault_cache::HotCache;
use logvault_ingest::{IngestError, SegmentBatch, SegmentSink};
use logvault_store::{AccountKeyLease, Store, WalRange};

/// Writes segments of one workspace into one storage account.
pub(crate) struct StoreSink {
    store: Arc<Store>,
    cache: HotCache,
    workspace: String,
    lease: AccountKeyLease,
    written: AtomicUsize,
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
            written: AtomicUsize::new(0),
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
        let mut entry = self
            .store
            .write_segment_under(
                &self.lease.account,
                &self.lease.aek,
                &self.lease.record,
                &self.workspace,
                &segment.table,
                vec![segment.batch.clone()],
            )
            .await
            .map_err(fail)?;
        entry.wal = segment
            .wal
            .iter()
            .map(|r| WalRange {
                first: r.first,
                last: r.last,
            })
            .collect();
        let manifest = self
            .store
            .catalog()
            .add_segments(
                &self.workspace,
                &segment.table,
                self.store.clock().now(),
                vec![entry.clone()],
            )
            .await
            .map_err(fail)?;
        // New data is hot (R-F1): the cache admits it.
        self.cache.admit(manifest.location(&entry), entry.max_time);
        self.written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
