//! Reads of a local storage root that the OS page cache can answer, done in place.
//!
//! object_store's [`LocalFileSystem`] runs every read on tokio's blocking pool
//! (`spawn_blocking`), the right thing for a read that may wait for a disk. But a warm query
//! reads segments the page cache holds, and each of its reads (one per row group and column
//! set) then paid two thread hand-offs, during which the query's core sat idle: `perf sched`
//! counted about a tenth of both cores idle through the top-10 hosts query at 10M rows, and
//! reading in place took that query from 80-81 ms to 71-72 ms, the suite's other queries by
//! 7-15% (docs/bench/journal.md, "Reads the page cache holds, in place").
//!
//! [`LocalReads`] wraps the root's `LocalFileSystem` and answers `get_ranges`, and `get_opts`
//! of a range, itself when it can without waiting: on Linux each range is read with
//! `preadv2(RWF_NOWAIT)`, which copies what the page cache holds and refuses (`EAGAIN`) what
//! it would have to fetch from the disk. Anything short of the whole request read that way (a
//! page not cached, a range past the end, a file that cannot be opened, a kernel or filesystem
//! without `RWF_NOWAIT`) goes to the wrapped store as before, which reads it on the blocking
//! pool and words the errors. A get in place gives the object meta `LocalFileSystem` gives
//! (its e-tag scheme, pinned by a test). Writes, lists, deletes, heads and whole-object gets
//! are the wrapped store's. A read done in place yields once before it returns
//! (`LocalReads::answered_in_place`).
//!
//! Architecture Invariant: a read of file data that would wait for the disk never runs on the
//! caller's thread; only page-cache copies do (a column chunk's bytes, about as long as
//! decoding them takes). The file is opened in place: its inode is cached for any file listed
//! or read lately, and a cold one costs a lookup, not the data.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    Attributes, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    Result,
};

/// A local storage root whose cached reads are done in place (see the module).
#[derive(Debug)]
pub struct LocalReads {
    fs: LocalFileSystem,
    in_place: AtomicU64,
    deferred: AtomicU64,
}

impl LocalReads {
    /// Wraps `fs`.
    pub fn new(fs: LocalFileSystem) -> Self {
        Self {
            fs,
            in_place: AtomicU64::new(0),
            deferred: AtomicU64::new(0),
        }
    }

    /// How many reads (`get_ranges`, and `get_opts` of a range) were answered in place, and
    /// how many went to the wrapped store's blocking pool.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.in_place.load(Ordering::Relaxed),
            self.deferred.load(Ordering::Relaxed),
        )
    }

    /// The file of `location`, opened in place; `None` leaves the request to the wrapped store.
    fn open(&self, location: &Path) -> Option<std::fs::File> {
        let path = self.fs.path_to_filesystem(location).ok()?;
        std::fs::File::open(path).ok()
    }

    /// Counts a read answered in place, then yields: the blocking pool's answer used to wake
    /// the task from another thread, and a yielded task goes to its worker's queue, which
    /// wakes an idle worker that may take it. Without the yield, tasks woken on one worker
    /// stayed there: a join's two probe partitions ran on one core (the join 214-224 ms
    /// against 122-131).
    async fn answered_in_place(&self) {
        self.in_place.fetch_add(1, Ordering::Relaxed);
        tokio::task::yield_now().await;
    }

    /// Every range of `location`, or `None` if any byte of them is not in the page cache or
    /// cannot be read without waiting.
    fn read_cached(&self, location: &Path, ranges: &[Range<u64>]) -> Option<Vec<Bytes>> {
        let file = self.open(location)?;
        ranges
            .iter()
            .map(|range| read_cached_range(&file, range))
            .collect()
    }

    /// A ranged get of `location` answered from the page cache, or `None` (see
    /// [`ObjectStore::get_opts`] below for what is left to the wrapped store).
    fn get_cached(&self, location: &Path, options: &GetOptions) -> Option<GetResult> {
        let wanted = options.range.as_ref()?;
        if options.head || options.version.is_some() {
            return None;
        }
        let file = self.open(location)?;
        let metadata = file.metadata().ok()?;
        if !metadata.is_file() {
            return None;
        }
        let meta = object_meta(location, &metadata)?;
        options.check_preconditions(&meta).ok()?;
        let range = wanted.as_range(meta.size).ok()?;
        let bytes = read_cached_range(&file, &range)?;
        Some(GetResult {
            payload: GetResultPayload::Stream(futures::stream::once(async { Ok(bytes) }).boxed()),
            attributes: Attributes::default(),
            range,
            meta,
        })
    }
}

/// The object meta `LocalFileSystem` gives a file of `metadata`, e-tag included (its scheme:
/// inode, modification time in microseconds and size, in hex; the double-encryption layer
/// keys its chunk cache by it, and `the_meta_of_a_get_in_place_is_the_wrapped_stores` pins the
/// two to the same).
fn object_meta(location: &Path, metadata: &std::fs::Metadata) -> Option<ObjectMeta> {
    let modified = metadata.modified().ok()?;
    let micros = modified
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(metadata);
    #[cfg(not(unix))]
    let inode = 0u64;
    let size = metadata.len();
    Some(ObjectMeta {
        location: location.clone(),
        last_modified: modified.into(),
        size,
        e_tag: Some(format!("{inode:x}-{micros:x}-{size:x}")),
        version: None,
    })
}

/// `range` of `file` if the page cache holds all of it.
#[cfg(target_os = "linux")]
fn read_cached_range(file: &std::fs::File, range: &Range<u64>) -> Option<Bytes> {
    use rustix::io::{Errno, IoSliceMut, ReadWriteFlags, preadv2};

    let len = usize::try_from(range.end.checked_sub(range.start)?).ok()?;
    // Zeroed by `resize`, not `vec![0; len]`: jemalloc answers a large zeroed allocation with
    // pages it has the kernel zero (`MADV_DONTNEED`), whose faults and TLB shootdowns cost a
    // query more than this memset of memory it already holds.
    #[allow(clippy::slow_vector_initialization)]
    let mut buf = {
        let mut buf = Vec::with_capacity(len);
        buf.resize(len, 0u8);
        buf
    };
    let mut filled = 0;
    while filled < len {
        let offset = range.start + filled as u64;
        let mut slices = [IoSliceMut::new(&mut buf[filled..])];
        match preadv2(file, &mut slices, offset, ReadWriteFlags::NOWAIT) {
            // Past the end: the wrapped store says so in its own words.
            Ok(0) => return None,
            Ok(n) => filled += n,
            Err(Errno::INTR) => {}
            // `EAGAIN`: not cached; `EOPNOTSUPP`: no `RWF_NOWAIT` here; anything else is
            // the wrapped store's to report.
            Err(_) => return None,
        }
    }
    Some(Bytes::from(buf))
}

/// Without `RWF_NOWAIT`, every read goes to the wrapped store.
#[cfg(not(target_os = "linux"))]
fn read_cached_range(_file: &std::fs::File, _range: &Range<u64>) -> Option<Bytes> {
    None
}

impl fmt::Display for LocalReads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalReads({})", self.fs)
    }
}

#[async_trait]
impl ObjectStore for LocalReads {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.fs.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.fs.put_multipart_opts(location, opts).await
    }

    /// A get of a range whose bytes the page cache holds is answered in place (the
    /// double-encryption layer reads each object's 40-byte header so, on every read); whole
    /// objects, `head` requests, versions, failed preconditions and anything not cached are
    /// the wrapped store's.
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if let Some(result) = self.get_cached(location, &options) {
            self.answered_in_place().await;
            return Ok(result);
        }
        if options.range.is_some() {
            self.deferred.fetch_add(1, Ordering::Relaxed);
        }
        self.fs.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if let Some(bytes) = self.read_cached(location, ranges) {
            self.answered_in_place().await;
            return Ok(bytes);
        }
        self.deferred.fetch_add(1, Ordering::Relaxed);
        self.fs.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.fs.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.fs.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.fs.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.fs.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.fs.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.fs.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;

    use super::*;

    /// A `LocalReads` and a plain `LocalFileSystem` over one new directory.
    fn stores() -> anyhow::Result<(tempfile::TempDir, LocalReads, LocalFileSystem)> {
        let dir = tempfile::tempdir()?;
        let store = LocalReads::new(LocalFileSystem::new_with_prefix(dir.path())?);
        let plain = LocalFileSystem::new_with_prefix(dir.path())?;
        Ok((dir, store, plain))
    }

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[tokio::test]
    async fn ranges_read_in_place_are_the_bytes_the_wrapped_store_reads() -> anyhow::Result<()> {
        let (_dir, store, plain) = stores()?;
        let data = bytes(300_000);
        let path = Path::from("a/segment.parquet");
        store.put(&path, data.clone().into()).await?;

        let ranges = [
            0..0,
            0..1,
            5..70_000,
            69_999..300_000,
            0..300_000,
            4096..8192,
        ];
        let got = store.get_ranges(&path, &ranges).await?;
        let want = plain.get_ranges(&path, &ranges).await?;
        assert_eq!(got, want);
        for (range, got) in ranges.iter().zip(&got) {
            let (a, b) = (range.start as usize, range.end as usize);
            assert_eq!(got.as_ref(), &data[a..b], "range {range:?}");
        }
        // A file just written is in the page cache: on Linux, read without the blocking pool.
        if cfg!(target_os = "linux") {
            assert_eq!(store.counts(), (1, 0));
        }
        Ok(())
    }

    #[tokio::test]
    async fn the_meta_of_a_get_in_place_is_the_wrapped_stores() -> anyhow::Result<()> {
        use object_store::GetRange;

        let (_dir, store, plain) = stores()?;
        let data = bytes(100_000);
        let path = Path::from("b/segment.parquet");
        store.put(&path, data.clone().into()).await?;
        let head = plain.head(&path).await?;

        for (range, want) in [
            (GetRange::Bounded(0..40), 0..40),
            (GetRange::Bounded(99_000..100_000), 99_000..100_000),
            (GetRange::Offset(90_000), 90_000..100_000),
            (GetRange::Suffix(8), 99_992..100_000),
        ] {
            let options = GetOptions {
                range: Some(range.clone()),
                ..GetOptions::default()
            };
            let got = store.get_opts(&path, options.clone()).await?;
            let theirs = plain.get_opts(&path, options).await?;
            assert_eq!(got.meta, head, "{range:?}");
            assert_eq!(got.meta, theirs.meta, "{range:?}");
            assert_eq!(got.range, want, "{range:?}");
            let (a, b) = (want.start as usize, want.end as usize);
            assert_eq!(got.bytes().await?.as_ref(), &data[a..b], "{range:?}");
        }
        // A precondition that holds is answered in place, one that fails as the store fails.
        let matching = GetOptions {
            range: Some(GetRange::Bounded(0..4)),
            if_match: head.e_tag.clone(),
            ..GetOptions::default()
        };
        assert_eq!(
            store.get_opts(&path, matching).await?.bytes().await?.len(),
            4
        );
        let stale = GetOptions {
            range: Some(GetRange::Bounded(0..4)),
            if_match: Some("stale".into()),
            ..GetOptions::default()
        };
        let refused = store.get_opts(&path, stale).await;
        assert!(
            matches!(refused, Err(object_store::Error::Precondition { .. })),
            "{refused:?}"
        );
        if cfg!(target_os = "linux") {
            assert_eq!(store.counts(), (5, 1));
        }
        // Whole objects are the wrapped store's, and not counted.
        assert_eq!(store.get(&path).await?.bytes().await?.len(), 100_000);
        if cfg!(target_os = "linux") {
            assert_eq!(store.counts(), (5, 1));
        }
        Ok(())
    }

    #[tokio::test]
    async fn what_cannot_be_read_in_place_fails_as_the_wrapped_store_fails() -> anyhow::Result<()> {
        let (_dir, store, _) = stores()?;
        let path = Path::from("short");
        store.put(&path, bytes(100).into()).await?;

        let past_the_end = store.get_ranges(&path, &[0..10, 90..101]).await;
        assert!(past_the_end.is_err(), "{past_the_end:?}");
        let missing = store
            .get_ranges(&Path::from("missing"), &[0..1, 2..3])
            .await;
        assert!(
            matches!(missing, Err(object_store::Error::NotFound { .. })),
            "{missing:?}"
        );
        assert_eq!(store.counts(), (0, 2));
        // The rest is the wrapped store's.
        assert_eq!(store.get(&path).await?.bytes().await?.len(), 100);
        assert_eq!(store.head(&path).await?.size, 100);
        Ok(())
    }
}
