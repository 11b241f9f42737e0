//! The hot cache: both tiers, the policy that fills and empties them, purge and reload.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use datafusion::config::EncryptionFactoryOptions;
use datafusion::execution::parquet_encryption::EncryptionFactory;
use datafusion::prelude::SessionContext;
use logvault_store::{AccountId, STORAGE_URL, SegmentEncryptionFactory, SegmentLocation, Store};
use object_store::ObjectStore;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::encryption::decrypt::FileDecryptionProperties;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::cached_store::{self, CachedStore, Ctx};
use crate::counting::{CountingStore, ReadCounts};
use crate::disk::DiskTier;
use crate::file::CacheKeys;
use crate::memory::{HotSegment, MemoryTier};
use crate::metrics::{Event, HotCacheStatus, Metrics, WorkspaceCacheStatus};
use crate::promoter::Promoter;
use crate::warm::{self, WarmHandle, WarmProgress, WarmSlot};
use crate::{CacheError, HotCacheConfig};

mod admission;
mod upkeep;
pub use upkeep::{CachePurgeReport, SweepReport, UnlistedReport};

/// What opening the cache found on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartupScan {
    /// Cache files kept.
    pub loaded: u64,
    /// Corrupt or unreadable files deleted.
    pub dropped: u64,
}

/// The hot cache of one logvault home. Cheap to clone (a handle). When the last handle goes,
/// its background work goes too: promotions and reloads under way are stopped.
#[derive(Debug, Clone)]
pub struct HotCache {
    inner: Arc<Inner>,
    _open: Arc<Open>,
}

/// Held by every handle (not by background tasks): its drop stops the background work, which
/// would otherwise keep the cache alive and busy after its owner let it go.
#[derive(Debug)]
struct Open(Arc<Inner>);

impl Drop for Open {
    fn drop(&mut self) {
        let inner = &self.0;
        lock(&inner.tasks).abort_all();
        for slot in lock(&inner.warms).values() {
            slot.cancel(inner.now());
        }
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Arc<Store>,
    pub(crate) config: HotCacheConfig,
    dir: PathBuf,
    pub(crate) ctx: Arc<Ctx>,
    counting: Arc<CountingStore>,
    reader: Arc<CachedStore>,
    pub(crate) memory: MemoryTier,
    pub(crate) metrics: Arc<Metrics>,
    factory: Arc<SegmentEncryptionFactory>,
    hot_windows: Mutex<HashMap<String, i64>>,
    /// Promotions asked for and not finished, each with whether a compaction replaced its
    /// segment meanwhile (then it is skipped).
    promoting: Mutex<HashMap<SegmentLocation, bool>>,
    promoter: Promoter,
    /// One segment built in the memory tier at a time (a promotion, a reload's, a merge's):
    /// what a build holds besides the tier is one segment's, not one per segment waiting.
    turn: Arc<tokio::sync::Semaphore>,
    tasks: Mutex<JoinSet<()>>,
    warms: Mutex<HashMap<String, WarmSlot>>,
    startup: StartupScan,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl HotCache {
    /// Opens the cache in `dir` (the engine's `HOME/cache`) over `store`: reads go to the
    /// store's account router. Cache files already in `dir` are loaded; corrupt ones dropped.
    ///
    /// # Errors
    /// [`CacheError::Config`]; [`CacheError::Key`] if the service account's key cannot be
    /// unwrapped (the disk tier is sealed under it); [`CacheError::Io`] for the directory.
    pub async fn open(
        store: Arc<Store>,
        dir: &Path,
        config: HotCacheConfig,
    ) -> Result<Self, CacheError> {
        let router: Arc<dyn ObjectStore> = store.router();
        Self::open_over(store, router, dir, config).await
    }

    /// As [`HotCache::open`], reading from `inner` instead of the store's router (a router
    /// behind another wrapper, e.g. one that adds latency in a benchmark).
    ///
    /// # Errors
    /// As [`HotCache::open`].
    pub async fn open_over(
        store: Arc<Store>,
        inner: Arc<dyn ObjectStore>,
        dir: &Path,
        config: HotCacheConfig,
    ) -> Result<Self, CacheError> {
        config.validate()?;
        let aek = store
            .keyring()
            .aek(&AccountId::service())
            .await
            .map_err(|e| CacheError::Key {
                reason: e.to_string(),
            })?;
        let keys = CacheKeys::from_service_aek(&aek).map_err(|e| CacheError::Key {
            reason: e.to_string(),
        })?;
        let metrics = Arc::new(Metrics::default());
        let (disk, scan) = DiskTier::open(
            dir,
            Arc::new(keys),
            config.disk_bytes,
            config.chunk_size,
            Arc::clone(&metrics),
        )
        .await?;
        let counting = Arc::new(CountingStore::new(inner));
        let ctx = Arc::new(Ctx::new(
            Arc::clone(&counting) as Arc<dyn ObjectStore>,
            Arc::new(disk),
            Arc::clone(&metrics),
            store.clock().clone(),
        ));
        let inner = Inner {
            factory: store.encryption_factory(),
            memory: MemoryTier::new(config.memory_bytes, Arc::clone(&metrics)),
            reader: Arc::new(CachedStore::new(Arc::clone(&ctx))),
            store,
            config,
            dir: dir.to_owned(),
            ctx,
            counting,
            metrics,
            hot_windows: Mutex::default(),
            promoting: Mutex::default(),
            promoter: Promoter::default(),
            turn: Arc::new(tokio::sync::Semaphore::new(1)),
            tasks: Mutex::default(),
            warms: Mutex::default(),
            startup: StartupScan {
                loaded: scan.loaded,
                dropped: scan.dropped,
            },
        };
        let inner = Arc::new(inner);
        Ok(Self {
            _open: Arc::new(Open(Arc::clone(&inner))),
            inner,
        })
    }

    /// The object store the query engine reads segments through (the disk tier over the
    /// counting wrapper over the router).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.inner.reader) as Arc<dyn ObjectStore>
    }

    /// Registers [`HotCache::object_store`] in a DataFusion session at
    /// [`logvault_store::STORAGE_URL`], in place of the plain router. Call it after
    /// `Store::register` (which also registers the encryption factory).
    ///
    /// # Errors
    /// [`CacheError::Config`] never in practice ([`logvault_store::STORAGE_URL`] is constant).
    pub fn register(&self, ctx: &SessionContext) -> Result<(), CacheError> {
        let url = url_of(STORAGE_URL)?;
        ctx.register_object_store(&url, self.object_store());
        Ok(())
    }

    /// The directory of the disk tier.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The settings.
    pub fn config(&self) -> &HotCacheConfig {
        &self.inner.config
    }

    /// What opening found on disk.
    pub fn startup_scan(&self) -> StartupScan {
        self.inner.startup
    }

    /// What reached storage through the cache so far.
    pub fn read_counts(&self) -> ReadCounts {
        self.inner.counting.counts()
    }

    /// Sets `workspace`'s hot window (R-F1: configurable per workspace).
    pub fn set_hot_window(&self, workspace: &str, window: Duration) {
        lock(&self.inner.hot_windows).insert(workspace.to_owned(), window.num_seconds().max(1));
    }

    /// Gives `workspace` the configured hot window again.
    pub fn reset_hot_window(&self, workspace: &str) {
        lock(&self.inner.hot_windows).remove(workspace);
    }

    /// `workspace`'s hot window.
    pub fn hot_window(&self, workspace: &str) -> Duration {
        self.inner.hot_window(workspace)
    }

    /// The memory tier's copy of `loc`, for a query. Served only while the segment's account
    /// key is in the keyring's cache, so a revoked key stops memory reads as it stops file
    /// reads. Counts a memory hit or miss (nothing when the memory tier is off).
    pub fn lookup(&self, loc: &SegmentLocation) -> Option<Arc<HotSegment>> {
        let inner = &self.inner;
        inner.ctx.activity.mark();
        if inner.memory.capacity() == 0 {
            return None;
        }
        let key_cached = || inner.store.keyring().cached_aek(&loc.account).is_some();
        match inner.memory.get(loc) {
            Some(seg) if key_cached() => {
                inner.metrics.add(&loc.workspace, Event::MemoryHit, 1);
                seg.touch(inner.now());
                Some(seg)
            }
            _ => {
                inner.metrics.add(&loc.workspace, Event::MemoryMiss, 1);
                None
            }
        }
    }

    /// Reload (R-F4): loads `workspace`'s hot window from storage again in a background task
    /// (newest segments first; onto disk, and into memory up to its bound with `warmMemory`).
    /// A reload of the same workspace still running is stopped. Needs a tokio runtime.
    pub fn warm(&self, workspace: &str) -> WarmHandle {
        let (handle, slot) = warm::start(&self.inner, workspace);
        if let Some(old) = lock(&self.inner.warms).insert(workspace.to_owned(), slot) {
            old.cancel(self.inner.now());
        }
        handle
    }

    /// The latest reload of `workspace`.
    pub fn warm_progress(&self, workspace: &str) -> Option<WarmProgress> {
        lock(&self.inner.warms)
            .get(workspace)
            .map(|s| warm::read(&s.progress))
    }

    /// The whole cache's state.
    pub fn status(&self) -> HotCacheStatus {
        let inner = &self.inner;
        let (memory_entries, memory_bytes) = inner.memory.usage();
        let (disk_entries, disk_bytes) = inner.ctx.disk.usage();
        let mut warm: Vec<WarmProgress> = lock(&inner.warms)
            .values()
            .map(|s| warm::read(&s.progress))
            .collect();
        warm.sort_by(|a, b| a.workspace.cmp(&b.workspace));
        HotCacheStatus {
            memory_bytes,
            memory_entries,
            memory_capacity_bytes: inner.memory.capacity(),
            disk_bytes,
            disk_entries,
            disk_capacity_bytes: inner.ctx.disk.capacity(),
            zeroized_bytes: inner
                .metrics
                .zeroized_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
            memory_live_bytes: inner
                .metrics
                .allocated_bytes
                .load(std::sync::atomic::Ordering::Relaxed)
                .saturating_sub(
                    inner
                        .metrics
                        .zeroized_bytes
                        .load(std::sync::atomic::Ordering::Relaxed),
                ),
            promotions_pending: lock(&inner.promoting).len() as u64,
            counters: inner.metrics.totals(),
            storage_reads: inner.counting.counts(),
            warm,
        }
    }

    /// `workspace`'s part of the cache (`hotCache` in `logvault status`).
    pub fn workspace_status(&self, workspace: &str) -> WorkspaceCacheStatus {
        let inner = &self.inner;
        inner.memory.usage();
        let (memory_entries, memory_bytes) = inner.memory.usage_of(workspace);
        let (disk_entries, disk_bytes) = inner.ctx.disk.usage_of(workspace);
        WorkspaceCacheStatus {
            workspace: workspace.to_owned(),
            hot_window_secs: inner.hot_window(workspace).num_seconds(),
            memory_bytes,
            memory_entries,
            disk_bytes,
            disk_entries,
            counters: inner.metrics.of_workspace(workspace),
            warm: self.warm_progress(workspace),
        }
    }
}

fn url_of(s: &str) -> Result<url::Url, CacheError> {
    url::Url::parse(s).map_err(|e| CacheError::Config {
        field: "storageUrl",
        reason: e.to_string(),
    })
}

impl Inner {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.ctx.clock.now()
    }

    /// The turn to build a segment in the memory tier, once the builds before it are done
    /// (`None` never: the semaphore is not closed).
    pub(crate) async fn turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.turn).acquire_owned().await.ok()
    }

    pub(crate) fn hot_window(&self, workspace: &str) -> Duration {
        lock(&self.hot_windows)
            .get(workspace)
            .map_or_else(|| self.config.hot_window(), |s| Duration::seconds(*s))
    }

    /// Makes sure the disk tier holds `loc`, unless its workspace was purged since `generation`
    /// (`None`: now).
    pub(crate) async fn load_disk(
        &self,
        loc: &SegmentLocation,
        generation: Option<u64>,
    ) -> Result<(), CacheError> {
        if self.ctx.disk.get(loc).is_some() {
            return Ok(());
        }
        cached_store::fetch(&self.ctx, loc, generation)
            .await
            .map(|_| ())
            .map_err(|e| CacheError::Storage {
                segment: loc.to_string(),
                reason: e.to_string(),
            })
    }

    /// Decodes `loc` into the memory tier (reading it through the disk tier).
    pub(crate) async fn load_memory(
        &self,
        loc: &SegmentLocation,
        max_time: Option<DateTime<Utc>>,
    ) -> Result<Arc<HotSegment>, CacheError> {
        let generation = self.ctx.generations.current(&loc.workspace);
        self.load_memory_since(loc, max_time, generation).await
    }

    /// As [`Inner::load_memory`], for work decided at the workspace's `generation`: nothing is
    /// fetched or kept if the workspace was purged since.
    pub(crate) async fn load_memory_since(
        &self,
        loc: &SegmentLocation,
        max_time: Option<DateTime<Utc>>,
        generation: u64,
    ) -> Result<Arc<HotSegment>, CacheError> {
        if let Some(seg) = self.memory.get(loc) {
            return Ok(seg);
        }
        let result = self.decode(loc, max_time, generation).await;
        let event = match &result {
            Ok(Some(_)) => Event::Promotion,
            Ok(None) => Event::PromotionSkipped,
            Err(_) => Event::PromotionFailure,
        };
        self.metrics.add(&loc.workspace, event, 1);
        let Some(seg) = result? else {
            return Err(CacheError::Decode {
                segment: loc.to_string(),
                reason: "replaced by a compaction before its promotion ran".into(),
            });
        };
        let seg = Arc::new(seg);
        seg.touch(self.now());
        self.ctx
            .generations
            .with_current(&loc.workspace, generation, |current| {
                if current {
                    self.memory.insert(Arc::clone(&seg));
                    Ok(Arc::clone(&seg))
                } else {
                    // Purged meanwhile: do not bring the workspace's data back.
                    Err(CacheError::Decode {
                        segment: loc.to_string(),
                        reason: "workspace purged while decoding".into(),
                    })
                }
            })
    }

    /// `loc`'s file (through the disk tier, unless its workspace was purged since `generation`)
    /// and what decrypts it.
    pub(crate) async fn fetch_encrypted(
        &self,
        loc: &SegmentLocation,
        generation: u64,
    ) -> Result<(Bytes, Arc<FileDecryptionProperties>), CacheError> {
        let bytes = cached_store::whole(&self.ctx, loc, Some(generation))
            .await
            .map_err(|e| CacheError::Storage {
                segment: loc.to_string(),
                reason: e.to_string(),
            })?;
        let fail = |reason: String| CacheError::Decode {
            segment: loc.to_string(),
            reason,
        };
        let props = self
            .factory
            .get_file_decryption_properties(
                &EncryptionFactoryOptions::default(),
                &loc.routed_path(),
            )
            .await
            .map_err(|e| fail(e.strip_backtrace()))?
            .ok_or_else(|| fail("no decryption properties".into()))?;
        Ok((bytes, props))
    }

    /// `loc` decoded for the memory tier, or `None` if a compaction replaced it while its
    /// promotion waited.
    async fn decode(
        &self,
        loc: &SegmentLocation,
        max_time: Option<DateTime<Utc>>,
        generation: u64,
    ) -> Result<Option<HotSegment>, CacheError> {
        // Queries first (`activity`): the fetch, and the decoding on the promotion thread, within
        // one bound counted from now.
        let since = std::time::Instant::now();
        self.ctx.activity.quiet(since).await;
        // One segment decoded at a time: its file is read only once its turn has come.
        let turn = self.turn().await;
        if lock(&self.promoting).get(loc) == Some(&true) {
            return Ok(None);
        }
        let (bytes, props) = self.fetch_encrypted(loc, generation).await?;
        let zeroized = Arc::clone(&self.metrics.zeroized_bytes);
        let allocated = Arc::clone(&self.metrics.allocated_bytes);
        let loc2 = loc.clone();
        self.promoter
            .run(Arc::clone(&self.ctx.activity), since, move || {
                let _turn = turn;
                let (schema, reader) = decode_parquet(&loc2, bytes, props)?;
                let fail = |e: arrow::error::ArrowError| CacheError::Decode {
                    segment: loc2.to_string(),
                    reason: e.to_string(),
                };
                HotSegment::encode_from(
                    &loc2,
                    schema,
                    reader.map(|b| b.map_err(fail)),
                    max_time,
                    zeroized,
                    &allocated,
                )
                .map(Some)
            })
            .await
            .map_err(|reason| CacheError::Decode {
                segment: loc.to_string(),
                reason,
            })?
    }
}

/// Rows per batch of a hot segment: DataFusion's default batch size.
pub(crate) const HOT_BATCH_ROWS: usize = 8192;

/// A reader that decrypts and decodes a whole segment a batch at a time, with its schema. The
/// batches are plaintext Arrow buffers freed (not zeroized) once
/// encoded into the memory tier's zeroizing buffers; each is let go before the next is decoded,
/// so a promotion holds the segment's file, its buffers and one batch, not every batch at once.
pub(crate) fn decode_parquet(
    loc: &SegmentLocation,
    bytes: Bytes,
    props: Arc<FileDecryptionProperties>,
) -> Result<
    (
        arrow::datatypes::SchemaRef,
        parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    ),
    CacheError,
> {
    let fail = |e: &dyn std::fmt::Display| CacheError::Decode {
        segment: loc.to_string(),
        reason: e.to_string(),
    };
    let options = ArrowReaderOptions::new().with_file_decryption_properties(props);
    let metadata = ArrowReaderMetadata::load(&bytes, options.clone()).map_err(|e| fail(&e))?;
    // Strings as views, the type queries see (`logvault_store::schema::view_types`): decoded
    // once here instead of cast in every scan.
    let schema = logvault_store::schema::view_types(metadata.schema());
    let metadata =
        ArrowReaderMetadata::try_new(Arc::clone(metadata.metadata()), options.with_schema(schema))
            .map_err(|e| fail(&e))?;
    // Batches of the query engine's size: a scan hands them on as they are.
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, metadata)
        .with_batch_size(HOT_BATCH_ROWS);
    let schema = Arc::clone(builder.schema());
    let reader = builder.build().map_err(|e| fail(&e))?;
    Ok((schema, reader))
}
