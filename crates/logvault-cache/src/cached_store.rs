//! The disk tier as an [`ObjectStore`] wrapper: the query engine reads segments through it.
//!
//! One concern per wrapper: it only caches. A read of a segment (`<account>/segments/<ws>/
//! <table>/<id>.parquet`) that the disk tier holds is served from its cache file and never
//! reaches the wrapped store; a miss fetches the whole object once (concurrent misses of one
//! segment share the fetch), seals it into a cache file, and serves the read from the fetched
//! bytes. Any other path, and every write, list and delete, goes to the wrapped store (a
//! delete also drops the cached copy). Segments are written once and never modified, so a
//! cached copy never goes stale; preconditions of a get are not checked against it. With a
//! disk tier of 0 bytes every read passes through unchanged.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::stream::{self, BoxStream, StreamExt};
use logvault_core::SharedClock;
use logvault_store::SegmentLocation;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use crate::activity::Activity;
use crate::disk::{DiskEntry, DiskTier};
use crate::error::STORE_NAME;
use crate::file::{CACHE_FILE_VERSION, FileError, FileMeta};
use crate::metrics::{Event, Metrics};

/// A whole object fetched from storage.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub(crate) bytes: Bytes,
    pub(crate) meta: ObjectMeta,
}

/// A fetch failure, shareable between the readers waiting on one fetch.
#[derive(Debug, Clone)]
pub(crate) struct FetchError {
    not_found: bool,
    path: String,
    message: String,
}

impl From<FetchError> for object_store::Error {
    fn from(e: FetchError) -> Self {
        if e.not_found {
            object_store::Error::NotFound {
                path: e.path,
                source: e.message.into(),
            }
        } else {
            object_store::Error::Generic {
                store: STORE_NAME,
                source: e.message.into(),
            }
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

type SharedFetch = Shared<BoxFuture<'static, Result<Fetched, FetchError>>>;

/// Per-workspace generations: a purge moves its workspace's on, so a fetch that started before
/// the purge does not put the workspace's data back into the cache.
#[derive(Debug, Default)]
pub(crate) struct Generations(Mutex<HashMap<String, u64>>);

impl Generations {
    pub(crate) fn current(&self, workspace: &str) -> u64 {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(workspace).copied().unwrap_or(0)
    }

    /// Moves `workspace` to a new generation, then runs `purge`, under the lock that
    /// [`Generations::if_current`] takes: an entry is either kept before the purge (and purged)
    /// or refused after it.
    pub(crate) fn bump_then<T>(&self, workspace: &str, purge: impl FnOnce() -> T) -> T {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *map.entry(workspace.to_owned()).or_default() += 1;
        purge()
    }

    /// Runs `then` with whether `workspace` is still at `generation`, under the lock.
    pub(crate) fn with_current<T>(
        &self,
        workspace: &str,
        generation: u64,
        then: impl FnOnce(bool) -> T,
    ) -> T {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        then(map.get(workspace).copied().unwrap_or(0) == generation)
    }
}

/// What the disk tier needs to fill itself.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) inner: Arc<dyn ObjectStore>,
    pub(crate) disk: Arc<DiskTier>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clock: SharedClock,
    pub(crate) generations: Generations,
    /// The newest row time of segments the query engine told about (for the hot window).
    pub(crate) hints: moka::sync::Cache<SegmentLocation, DateTime<Utc>>,
    inflight: Mutex<HashMap<SegmentLocation, SharedFetch>>,
    /// Cache files being written (see [`Ctx::writes_done`]).
    writes: tokio::sync::watch::Sender<usize>,
    /// When queries last planned a scan or read a segment (promotions wait for quiet).
    pub(crate) activity: Arc<Activity>,
}

impl Ctx {
    pub(crate) fn new(
        inner: Arc<dyn ObjectStore>,
        disk: Arc<DiskTier>,
        metrics: Arc<Metrics>,
        clock: SharedClock,
    ) -> Self {
        Self {
            inner,
            disk,
            metrics,
            clock,
            generations: Generations::default(),
            hints: moka::sync::Cache::new(1 << 20),
            inflight: Mutex::default(),
            writes: tokio::sync::watch::Sender::new(0),
            activity: Arc::default(),
        }
    }

    /// Waits until no cache file is being written.
    pub(crate) async fn writes_done(&self) {
        let mut rx = self.writes.subscribe();
        // The sender lives as long as `self`: waiting cannot fail.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// Fetches the whole of `loc` from storage (sharing a fetch already under way) and keeps it in
/// the disk tier, unless its workspace was purged since `generation` (the workspace's generation
/// when the work that needs the fetch was decided; `None`: now). A promotion or admission decided
/// before a purge that waits for quiet across it must not bring the workspace's data back.
pub(crate) async fn fetch(
    ctx: &Arc<Ctx>,
    loc: &SegmentLocation,
    generation: Option<u64>,
) -> Result<Fetched, FetchError> {
    let generation = generation.unwrap_or_else(|| ctx.generations.current(&loc.workspace));
    let shared = {
        let mut inflight = ctx.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        match inflight.get(loc) {
            Some(f) => f.clone(),
            None => {
                let f = fetch_and_store(Arc::clone(ctx), loc.clone(), generation)
                    .boxed()
                    .shared();
                inflight.insert(loc.clone(), f.clone());
                f
            }
        }
    };
    shared.await
}

async fn fetch_and_store(
    ctx: Arc<Ctx>,
    loc: SegmentLocation,
    generation: u64,
) -> Result<Fetched, FetchError> {
    let result = fetch_inner(&ctx, &loc, generation).await;
    ctx.inflight
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&loc);
    result
}

async fn fetch_inner(
    ctx: &Arc<Ctx>,
    loc: &SegmentLocation,
    generation: u64,
) -> Result<Fetched, FetchError> {
    let routed = loc.routed_path();
    if ctx.generations.current(&loc.workspace) != generation {
        return Err(FetchError {
            not_found: false,
            path: routed.to_string(),
            message: format!("segment {loc}: its workspace was purged from the hot cache"),
        });
    }
    let fail = |e: object_store::Error| FetchError {
        not_found: matches!(e, object_store::Error::NotFound { .. }),
        path: routed.to_string(),
        message: format!("segment {loc}: {e}"),
    };
    let got = ctx
        .inner
        .get_opts(&routed, GetOptions::default())
        .await
        .map_err(fail)?;
    let meta = got.meta.clone();
    let bytes = got.bytes().await.map_err(fail)?;
    ctx.metrics.add(&loc.workspace, Event::DiskMiss, 1);
    let meta = ObjectMeta {
        location: routed.clone(),
        size: bytes.len() as u64,
        ..meta
    };
    if ctx.disk.admits(bytes.len() as u64) {
        let file_meta = FileMeta {
            format_version: CACHE_FILE_VERSION,
            path: routed.to_string(),
            workspace: loc.workspace.clone(),
            size: bytes.len() as u64,
            last_modified: meta.last_modified,
            e_tag: meta.e_tag.clone(),
            max_time: ctx.hints.get(loc),
            cached_at: ctx.clock.now(),
        };
        // In a task of its own, so that a reader that gives up (a cancelled query or reload)
        // does not leave a written file unchecked against a purge.
        let task_ctx = Arc::clone(ctx);
        let task_loc = loc.clone();
        let plain = bytes.clone();
        ctx.writes.send_modify(|n| *n += 1);
        let stored = tokio::spawn(async move {
            let ctx = task_ctx;
            let _done = WriteDone(&ctx.writes);
            match ctx.disk.write(&task_loc, plain, file_meta).await {
                Ok(Some(entry)) => {
                    ctx.generations
                        .with_current(&task_loc.workspace, generation, |current| {
                            if current {
                                ctx.disk.insert(entry);
                            } else {
                                ctx.disk.discard(&entry);
                            }
                        });
                }
                Ok(None) => {}
                // The read is still served; the segment is just not cached.
                Err(e) => {
                    tracing::warn!(segment = %task_loc, error = %e, "cannot write hot cache file");
                }
            }
        });
        if let Err(e) = stored.await {
            tracing::warn!(segment = %loc, error = %e, "hot cache write task failed");
        }
    }
    Ok(Fetched { bytes, meta })
}

/// Counts a write as finished when dropped (even if its task panics).
struct WriteDone<'a>(&'a tokio::sync::watch::Sender<usize>);

impl Drop for WriteDone<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Reads `ranges` of a cached object; a corrupt file is dropped and `None` returned.
pub(crate) async fn read_cached(
    ctx: &Ctx,
    entry: &Arc<DiskEntry>,
    ranges: Vec<Range<u64>>,
) -> Option<Vec<Bytes>> {
    match ctx.disk.read(entry, ranges).await {
        Ok(bytes) => {
            ctx.metrics.add(&entry.loc.workspace, Event::DiskHit, 1);
            entry.touch(ctx.clock.now());
            Some(bytes)
        }
        Err(FileError::Corrupt(reason)) => {
            ctx.disk.drop_corrupt(entry, &reason);
            None
        }
        Err(e @ FileError::Version(_)) => {
            ctx.disk.drop_corrupt(entry, &e.to_string());
            None
        }
    }
}

/// The whole of segment `loc`: from the disk tier, or fetched from storage (and cached).
pub(crate) async fn whole(
    ctx: &Arc<Ctx>,
    loc: &SegmentLocation,
    generation: Option<u64>,
) -> Result<Bytes, FetchError> {
    if let Some(entry) = ctx.disk.get(loc) {
        let size = entry.opened.header.plaintext_len;
        if let Some(mut got) = read_cached(ctx, &entry, std::iter::once(0..size).collect()).await {
            return Ok(got.pop().unwrap_or_default());
        }
    }
    fetch(ctx, loc, generation).await.map(|f| f.bytes)
}

/// The disk tier in front of an object store.
#[derive(Debug)]
pub struct CachedStore {
    ctx: Arc<Ctx>,
}

impl CachedStore {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }
}

fn segment_of(location: &Path) -> Option<SegmentLocation> {
    SegmentLocation::from_routed_path(location).ok()
}

fn meta_of(location: &Path, entry: &DiskEntry) -> ObjectMeta {
    ObjectMeta {
        location: location.clone(),
        last_modified: entry.opened.meta.last_modified,
        size: entry.opened.meta.size,
        e_tag: entry.opened.meta.e_tag.clone(),
        version: None,
    }
}

fn result(meta: ObjectMeta, range: Range<u64>, bytes: Bytes) -> GetResult {
    GetResult {
        payload: GetResultPayload::Stream(stream::once(async move { Ok(bytes) }).boxed()),
        meta,
        range,
        attributes: Default::default(),
    }
}

fn range_of(options: &GetOptions, size: u64) -> object_store::Result<Range<u64>> {
    match &options.range {
        Some(r) => r.as_range(size).map_err(|e| object_store::Error::Generic {
            store: STORE_NAME,
            source: Box::new(e),
        }),
        None => Ok(0..size),
    }
}

fn slice(bytes: &Bytes, range: &Range<u64>, location: &Path) -> object_store::Result<Bytes> {
    let (start, end) = (
        usize::try_from(range.start).unwrap_or(usize::MAX),
        usize::try_from(range.end).unwrap_or(usize::MAX),
    );
    if start > end || end > bytes.len() {
        return Err(object_store::Error::Generic {
            store: STORE_NAME,
            source: format!(
                "range {start}..{end} is out of bounds for {location} of {} bytes",
                bytes.len()
            )
            .into(),
        });
    }
    Ok(bytes.slice(start..end))
}

impl fmt::Display for CachedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HotCache({})", self.ctx.inner)
    }
}

#[async_trait]
impl ObjectStore for CachedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.ctx.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.ctx.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.ctx.activity.mark();
        let Some(loc) = segment_of(location).filter(|_| self.ctx.disk.capacity() > 0) else {
            return self.ctx.inner.get_opts(location, options).await;
        };
        if let Some(entry) = self.ctx.disk.get(&loc) {
            let meta = meta_of(location, &entry);
            if options.head {
                self.ctx.metrics.add(&loc.workspace, Event::DiskHit, 1);
                return Ok(result(meta, 0..0, Bytes::new()));
            }
            let range = range_of(&options, meta.size)?;
            if let Some(mut got) = read_cached(&self.ctx, &entry, vec![range.clone()]).await {
                let bytes = got.pop().unwrap_or_default();
                return Ok(result(meta, range, bytes));
            }
        }
        let fetched = fetch(&self.ctx, &loc, None).await?;
        let meta = ObjectMeta {
            location: location.clone(),
            ..fetched.meta
        };
        if options.head {
            return Ok(result(meta, 0..0, Bytes::new()));
        }
        let range = range_of(&options, meta.size)?;
        let bytes = slice(&fetched.bytes, &range, location)?;
        Ok(result(meta, range, bytes))
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.ctx.activity.mark();
        let Some(loc) = segment_of(location).filter(|_| self.ctx.disk.capacity() > 0) else {
            return self.ctx.inner.get_ranges(location, ranges).await;
        };
        if let Some(entry) = self.ctx.disk.get(&loc) {
            let size = entry.opened.meta.size;
            if let Some(r) = ranges.iter().find(|r| r.start > r.end || r.end > size) {
                return Err(object_store::Error::Generic {
                    store: STORE_NAME,
                    source: format!(
                        "range {}..{} is out of bounds for {location} of {size} bytes",
                        r.start, r.end
                    )
                    .into(),
                });
            }
            if let Some(got) = read_cached(&self.ctx, &entry, ranges.to_vec()).await {
                return Ok(got);
            }
        }
        let fetched = fetch(&self.ctx, &loc, None).await?;
        ranges
            .iter()
            .map(|r| slice(&fetched.bytes, r, location))
            .collect()
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let ctx = Arc::clone(&self.ctx);
        let locations = locations
            .map(move |l| {
                if let Ok(path) = &l
                    && let Some(loc) = segment_of(path)
                {
                    ctx.disk.remove(&loc);
                }
                l
            })
            .boxed();
        self.ctx.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.ctx.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.ctx.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.ctx.inner.copy_opts(from, to, options).await
    }
}
