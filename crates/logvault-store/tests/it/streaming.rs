//! A segment goes to storage in parts as it is written (multipart upload), so it holds about
//! one part in memory, not its whole file; the object appears only when the segment is
//! finished; an error or a dropped writer aborts the upload, and the staging file a crash
//! leaves on local files is neither listed nor counted, and is deleted by the next
//! maintenance pass once the grace period is over.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Duration;
use futures::TryStreamExt;
use futures::stream::BoxStream;
use logvault_store::{
    AccountId, SegmentCompression, SegmentOptions, SegmentWriter, Store, StoreConfig, local_root,
};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

use crate::common::*;

/// What a [`Recording`] store saw.
#[derive(Debug, Default)]
struct Seen {
    /// Sizes of whole-object puts of segments.
    puts: Mutex<Vec<usize>>,
    /// Sizes of the parts of multipart uploads.
    parts: Mutex<Vec<usize>>,
    uploads: AtomicUsize,
    completed: AtomicUsize,
    aborted: AtomicUsize,
    /// Parts after which every `put_part` fails (`usize::MAX`: never).
    fail_after_parts: AtomicUsize,
}

/// Records the puts and parts that reach the store it wraps.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ObjectStore>,
    seen: Arc<Seen>,
}

impl fmt::Display for Recording {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Recording")
    }
}

fn is_segment(l: &Path) -> bool {
    l.as_ref().contains("/segments/")
}

#[async_trait]
impl ObjectStore for Recording {
    async fn put_opts(
        &self,
        l: &Path,
        p: PutPayload,
        o: PutOptions,
    ) -> object_store::Result<PutResult> {
        if is_segment(l) {
            self.seen.puts.lock().unwrap().push(p.content_length());
        }
        self.inner.put_opts(l, p, o).await
    }
    async fn put_multipart_opts(
        &self,
        l: &Path,
        o: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.seen.uploads.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(RecordingUpload {
            inner: self.inner.put_multipart_opts(l, o).await?,
            seen: Arc::clone(&self.seen),
        }))
    }
    async fn get_opts(&self, l: &Path, o: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(l, o).await
    }
    async fn get_ranges(
        &self,
        l: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(l, ranges).await
    }
    fn delete_stream(
        &self,
        l: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(l)
    }
    fn list(&self, p: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(p)
    }
    async fn list_with_delimiter(&self, p: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(p).await
    }
    async fn copy_opts(&self, f: &Path, t: &Path, o: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(f, t, o).await
    }
}

#[derive(Debug)]
struct RecordingUpload {
    inner: Box<dyn MultipartUpload>,
    seen: Arc<Seen>,
}

#[async_trait]
impl MultipartUpload for RecordingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let mut parts = self.seen.parts.lock().unwrap();
        if parts.len() >= self.seen.fail_after_parts.load(Ordering::SeqCst) {
            return Box::pin(async {
                Err(object_store::Error::Generic {
                    store: "Recording",
                    source: "injected part failure".into(),
                })
            });
        }
        parts.push(data.content_length());
        self.inner.put_part(data)
    }
    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.seen.completed.fetch_add(1, Ordering::SeqCst);
        self.inner.complete().await
    }
    async fn abort(&mut self) -> object_store::Result<()> {
        self.seen.aborted.fetch_add(1, Ordering::SeqCst);
        self.inner.abort().await
    }
}

const PART: usize = 64 * 1024;

struct Setup {
    dir: tempfile::TempDir,
    store: Store,
    seen: Arc<Seen>,
}

/// A store on local files behind a [`Recording`], with small row groups and parts, pages
/// uncompressed (so that the file is large for its rows), staging files swept.
async fn setup() -> Setup {
    let vault = Arc::new(FakeVault::default());
    vault.add_version(SERVICE_VAULT, SERVICE_KEY);
    vault.add_version(CUSTOMER_VAULT, CUSTOMER_KEY);
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let seen = Arc::new(Seen::default());
    seen.fail_after_parts.store(usize::MAX, Ordering::SeqCst);
    let root: Arc<dyn ObjectStore> = Arc::new(Recording {
        inner: local_root(&storage).unwrap(),
        seen: Arc::clone(&seen),
    });
    let config = StoreConfig {
        segments: SegmentOptions {
            max_row_group_rows: 1000,
            data_page_rows: 250,
            compression: SegmentCompression::Uncompressed,
            part_bytes: PART,
            // The index's block follows the last row group, in the last part or the one before.
            needle_index: true,
        },
        local_storage_dir: Some(storage),
        ..StoreConfig::default()
    };
    let clock = logvault_core::TestClock::new(t0());
    let store = Store::open(root, vault, service_binding(), config, Arc::new(clock))
        .await
        .unwrap();
    Setup { dir, store, seen }
}

async fn open_writer(store: &Store, account: &AccountId) -> SegmentWriter {
    let aek = store.keyring().aek(account).await.unwrap();
    let record = store.keyring().latest_record(account).await.unwrap();
    store
        .open_segment_under(account, &aek, &record, WS, TABLE, log_schema())
        .await
        .unwrap()
}

/// The table's segment directory of `account` on local storage.
fn segment_dir(s: &Setup, account: &AccountId) -> std::path::PathBuf {
    s.dir
        .path()
        .join("storage")
        .join(account.as_str())
        .join("objects/segments")
        .join(WS)
        .join(TABLE)
}

/// The files in the table's segment directory of `account` (staging files included).
fn files_on_disk(s: &Setup, account: &AccountId) -> Vec<String> {
    let dir = segment_dir(s, account);
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The segment objects the store lists for the table.
async fn listed(store: &Store) -> Vec<Path> {
    store
        .root()
        .list(None)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.location)
        .filter(is_segment)
        .collect()
}

#[tokio::test]
async fn a_segment_goes_to_storage_in_parts_and_appears_only_when_finished() {
    let s = setup().await;
    let account = AccountId::service();
    let mut writer = open_writer(&s.store, &account).await;
    let batches: Vec<_> = (0..30)
        .map(|i| log_batch(t0() + Duration::hours(i), 1000, "streamed"))
        .collect();
    let mut most_held = 0;
    for b in &batches {
        writer.write(b.clone()).await.unwrap();
        most_held = most_held.max(writer.memory());
    }
    // Parts went out while the rows came in, and the object is not there yet: neither listed
    // nor readable (only the staging file is on disk).
    assert!(writer.sent() > 0, "no part sent before finish");
    assert!(listed(&s.store).await.is_empty());
    assert!(
        files_on_disk(&s, &account).iter().all(|f| f.contains('#')),
        "{:?}",
        files_on_disk(&s, &account)
    );
    let loc = writer.location().clone();
    assert!(
        matches!(
            s.store.read_segment(&loc, None).await,
            Err(logvault_store::StoreError::SegmentNotFound { .. })
                | Err(logvault_store::StoreError::Storage { .. })
        ),
        "an unfinished segment must not be readable"
    );
    let entry = writer.finish().await.unwrap();
    let file = entry.bytes as usize;
    let parts = s.seen.parts.lock().unwrap().clone();
    assert!(
        parts.len() >= 8,
        "{} parts of a {file}-byte file",
        parts.len()
    );
    assert_eq!(parts.iter().sum::<usize>(), file);
    // Every part but the last is at least the part size (S3's rule), and none holds more than
    // a part and a row group.
    let (last, rest) = parts.split_last().unwrap();
    assert!(rest.iter().all(|&p| p >= PART), "{parts:?}");
    let largest = *parts.iter().max().unwrap();
    assert!(largest < 2 * PART, "largest part {largest}: {parts:?}");
    assert!(*last > 0);
    // What the writer held stayed far below the file.
    assert!(
        most_held < file / 4,
        "held up to {most_held} bytes of a {file}-byte file"
    );
    assert!(s.seen.puts.lock().unwrap().is_empty(), "no whole put");
    assert_eq!(s.seen.completed.load(Ordering::SeqCst), 1);
    assert_eq!(s.seen.aborted.load(Ordering::SeqCst), 0);
    // Complete now, and it reads back.
    assert_eq!(listed(&s.store).await.len(), 1);
    assert_eq!(files_on_disk(&s, &account).len(), 1);
    let back = s.store.read_segment(&loc, None).await.unwrap();
    assert_eq!(concat(&back), concat(&batches));
}

#[tokio::test]
async fn a_small_segment_is_one_put_and_double_encryption_streams_in_parts_too() {
    let s = setup().await;
    // Under one part: one put with `PutMode::Create`, no upload.
    let service = AccountId::service();
    let mut writer = open_writer(&s.store, &service).await;
    let small = log_batch(t0(), 200, "small");
    writer.write(small.clone()).await.unwrap();
    let loc = writer.location().clone();
    writer.finish().await.unwrap();
    assert_eq!(s.seen.uploads.load(Ordering::SeqCst), 0);
    assert_eq!(s.seen.puts.lock().unwrap().len(), 1);
    assert_eq!(
        concat(&s.store.read_segment(&loc, None).await.unwrap()),
        concat(&[small])
    );

    // Double encryption: the infrastructure layer encrypts each part as it comes (its
    // streamed format), so the writer holds about a part, not the file, and the backend gets
    // encrypted parts of at least the part size but the last.
    let cluster = cluster();
    s.store
        .create_account(&cluster, &customer_binding(None), true)
        .await
        .unwrap();
    let mut writer = open_writer(&s.store, &cluster).await;
    let batches: Vec<_> = (0..30)
        .map(|i| log_batch(t0() + Duration::hours(i), 1000, "double"))
        .collect();
    let mut most_held = 0;
    for b in &batches {
        writer.write(b.clone()).await.unwrap();
        most_held = most_held.max(writer.memory());
    }
    assert!(writer.sent() > 0, "no part sent before finish");
    let loc = writer.location().clone();
    let entry = writer.finish().await.unwrap();
    let file = entry.bytes as usize;
    assert!(
        most_held < file / 4,
        "held up to {most_held} bytes of a {file}-byte file"
    );
    assert_eq!(s.seen.uploads.load(Ordering::SeqCst), 1);
    assert_eq!(s.seen.puts.lock().unwrap().len(), 1, "no whole put");
    assert_eq!(s.seen.completed.load(Ordering::SeqCst), 1);
    let parts = s.seen.parts.lock().unwrap().clone();
    assert!(parts.len() >= 4, "{parts:?}");
    let (_, rest) = parts.split_last().unwrap();
    assert!(rest.iter().all(|&p| p >= PART), "{parts:?}");
    // The stored object is the file, a header and a tag per 64 KiB chunk.
    let stored: usize = parts.iter().sum();
    assert_eq!(stored, 40 + file + file.div_ceil(64 * 1024) * 16);
    assert_eq!(
        concat(&s.store.read_segment(&loc, None).await.unwrap()),
        concat(&batches)
    );
    // Listings and `head` give the Parquet file's size.
    let head = s
        .store
        .account(&cluster)
        .expect("the account is open")
        .objects()
        .head(&loc.object_path())
        .await
        .unwrap();
    assert_eq!(head.size, entry.bytes);
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn an_interrupted_upload_leaves_nothing_readable_or_counted() {
    let s = setup().await;
    let account = AccountId::service();
    // A committed segment, so that the table has a manifest.
    s.store
        .append(&account, WS, TABLE, vec![log_batch(t0(), 10, "kept")])
        .await
        .unwrap();

    // A writer dropped after sending parts: the upload is aborted, its staging file deleted.
    let mut writer = open_writer(&s.store, &account).await;
    for i in 0..10 {
        writer
            .write(log_batch(t0() + Duration::hours(i), 1000, "dropped"))
            .await
            .unwrap();
    }
    assert!(writer.sent() > 0);
    assert!(files_on_disk(&s, &account).iter().any(|f| f.contains('#')));
    drop(writer);
    wait_until("the dropped upload is aborted", || {
        s.seen.aborted.load(Ordering::SeqCst) == 1
            && files_on_disk(&s, &account).iter().all(|f| !f.contains('#'))
    })
    .await;

    // A part that fails: the write fails, the upload is aborted at once.
    s.seen
        .fail_after_parts
        .store(s.seen.parts.lock().unwrap().len() + 1, Ordering::SeqCst);
    let mut writer = open_writer(&s.store, &account).await;
    let mut failed = None;
    for i in 0..10 {
        if let Err(e) = writer
            .write(log_batch(t0() + Duration::hours(i), 1000, "failing"))
            .await
        {
            failed = Some(e);
            break;
        }
    }
    let failed = failed.expect("a part failed, so a write must fail");
    assert!(
        failed.to_string().contains("injected part failure"),
        "{failed}"
    );
    assert_eq!(s.seen.aborted.load(Ordering::SeqCst), 2);
    assert!(files_on_disk(&s, &account).iter().all(|f| !f.contains('#')));
    assert!(writer.write(log_batch(t0(), 10, "after")).await.is_err());
    drop(writer);
    assert_eq!(s.seen.completed.load(Ordering::SeqCst), 0);
    assert_eq!(
        listed(&s.store).await.len(),
        1,
        "only the committed segment"
    );

    // A crash leaves a staging file: not listed, so not counted as a segment or an orphan;
    // the maintenance pass deletes it once it is older than the grace period.
    let seg_dir = segment_dir(&s, &account);
    let stale = seg_dir.join(format!("{}.parquet#3", uuid::Uuid::new_v4()));
    let fresh = seg_dir.join(format!("{}.parquet#4", uuid::Uuid::new_v4()));
    std::fs::write(&stale, b"PAR1 half a segment").unwrap();
    std::fs::write(&fresh, b"PAR1 being written").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    assert_eq!(
        listed(&s.store).await.len(),
        1,
        "staging files are not listed"
    );
    let report = s.store.collect_segments(WS, TABLE).await.unwrap();
    assert_eq!(
        (
            report.orphans_deleted,
            report.orphans_waiting,
            report.failures
        ),
        (1, 1, 0),
        "{report:?}"
    );
    assert!(!stale.exists());
    assert!(
        fresh.exists(),
        "a file younger than the grace period may be an upload under way"
    );
    let manifest = s.store.catalog().manifest(WS, TABLE).await.unwrap();
    assert_eq!(manifest.segments.len(), 1);
}
