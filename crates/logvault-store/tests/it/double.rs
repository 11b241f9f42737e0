//! R-B4: double encryption. The infrastructure layer serves range reads from the chunks they
//! cover, reports plaintext sizes, is fixed at account creation, and changes every byte.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use futures::stream::BoxStream;
use logvault_crypto::InfraKey;
use logvault_store::{AccountId, InfraEncryptedStore, StoreError};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use crate::common::*;

/// Counts the bytes read from the store it wraps.
#[derive(Debug, Default)]
struct Counting {
    inner: InMemory,
    read: AtomicU64,
}

impl fmt::Display for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Counting")
    }
}

#[async_trait]
impl ObjectStore for Counting {
    async fn put_opts(
        &self,
        l: &Path,
        p: PutPayload,
        o: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(l, p, o).await
    }
    async fn put_multipart_opts(
        &self,
        l: &Path,
        o: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(l, o).await
    }
    async fn get_opts(&self, l: &Path, o: GetOptions) -> object_store::Result<GetResult> {
        let got = self.inner.get_opts(l, o).await?;
        self.read
            .fetch_add(got.range.end - got.range.start, Ordering::SeqCst);
        Ok(got)
    }
    async fn get_ranges(
        &self,
        l: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        self.read.fetch_add(total, Ordering::SeqCst);
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

async fn whole(store: &InfraEncryptedStore, path: &str) -> Bytes {
    store
        .get(&Path::from(path))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 253) as u8).collect()
}

#[tokio::test]
async fn range_reads_fetch_only_the_chunks_they_need() {
    let counting = Arc::new(Counting::default());
    let chunk = 4096u32;
    let store = InfraEncryptedStore::new(
        counting.clone(),
        Arc::new(InfraKey::generate().unwrap()),
        chunk,
    );
    let plain = data(300_000);
    let path = Path::from("a/b.bin");
    store
        .put(&path, PutPayload::from(plain.clone()))
        .await
        .unwrap();

    // Stored bytes are not the plaintext, and are larger by header and tags.
    let stored = counting
        .inner
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_ne!(&stored[..], &plain[..]);
    assert!(stored.len() > plain.len());

    // head and list report the plaintext size.
    assert_eq!(store.head(&path).await.unwrap().size, plain.len() as u64);
    let listed: Vec<ObjectMeta> = store
        .list(Some(&Path::from("a")))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed[0].size, plain.len() as u64);
    let listed = store
        .list_with_delimiter(Some(&Path::from("a")))
        .await
        .unwrap();
    assert_eq!(listed.objects[0].size, plain.len() as u64);

    // A small range in the middle reads the header and at most two chunks.
    counting.read.store(0, Ordering::SeqCst);
    let got = store.get_range(&path, 150_000..150_100).await.unwrap();
    assert_eq!(&got[..], &plain[150_000..150_100]);
    let read = counting.read.load(Ordering::SeqCst);
    assert!(
        read <= 40 + 2 * (u64::from(chunk) + 16),
        "read {read} bytes for 100"
    );

    // Several ranges at once, across chunk boundaries, the very end and the very start.
    let ranges = [0..1, 4095..4097, 299_990..300_000, 12_345..54_321];
    let got = store.get_ranges(&path, &ranges).await.unwrap();
    for (r, g) in ranges.iter().zip(&got) {
        assert_eq!(&g[..], &plain[r.start as usize..r.end as usize]);
    }
    // get_opts with suffix and offset ranges, as Parquet readers use for footers.
    let suffix = store
        .get_opts(
            &path,
            GetOptions::new().with_range(Some(GetRange::Suffix(8))),
        )
        .await
        .unwrap();
    assert_eq!(suffix.range, 299_992..300_000);
    assert_eq!(suffix.meta.size, 300_000);
    assert_eq!(&suffix.bytes().await.unwrap()[..], &plain[299_992..]);
    let offset = store
        .get_opts(
            &path,
            GetOptions::new().with_range(Some(GetRange::Offset(299_000))),
        )
        .await
        .unwrap();
    assert_eq!(&offset.bytes().await.unwrap()[..], &plain[299_000..]);
    // The whole object.
    assert_eq!(
        &store.get(&path).await.unwrap().bytes().await.unwrap()[..],
        &plain[..]
    );
    // Out of bounds is an error, not short data.
    assert!(
        store
            .get_ranges(&path, std::slice::from_ref(&(299_999..300_001)))
            .await
            .is_err()
    );

    // A copy is re-encrypted for its new location and reads back the same.
    store.copy(&path, &Path::from("a/c.bin")).await.unwrap();
    assert_eq!(&whole(&store, "a/c.bin").await[..], &plain[..]);

    // An object moved by hand (without re-encryption) fails to decrypt.
    counting
        .inner
        .put(&Path::from("a/d.bin"), PutPayload::from(stored))
        .await
        .unwrap();
    let err = store
        .get_range(&Path::from("a/d.bin"), 0..10)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("a/d.bin"), "{err}");

    // Multipart uploads are encrypted too.
    let mut upload = store.put_multipart(&Path::from("a/m.bin")).await.unwrap();
    upload
        .put_part(PutPayload::from(plain[..100_000].to_vec()))
        .await
        .unwrap();
    upload
        .put_part(PutPayload::from(plain[100_000..].to_vec()))
        .await
        .unwrap();
    upload.complete().await.unwrap();
    assert_eq!(&whole(&store, "a/m.bin").await[..], &plain[..]);
}

#[tokio::test]
async fn double_encrypted_segments_differ_and_read_back() {
    let h = Harness::new().await;
    let single = h.cluster_account(false).await;
    let double = AccountId::cluster("dbl1").unwrap();
    h.store
        .create_account(&double, &customer_binding(None), true)
        .await
        .unwrap();
    let batch = log_batch(t0(), 5000, "d");
    let mut files_of = Vec::new();
    for account in [&single, &double] {
        let (entry, m) = h
            .store
            .append(account, WS, TABLE, vec![batch.clone()])
            .await
            .unwrap();
        let loc = m.location(&entry);
        assert_eq!(
            concat(&h.store.read_segment(&loc, None).await.unwrap()),
            batch
        );
        let path = h
            .storage()
            .join(account.as_str())
            .join("objects")
            .join(loc.object_path().as_ref());
        files_of.push(std::fs::read(path).unwrap());
    }
    let (one, two) = (&files_of[0], &files_of[1]);
    // Parquet with an encrypted footer ends in "PARE"; the infrastructure layer starts "LVX1".
    assert_eq!(&one[..4], b"PARE");
    assert_eq!(&one[one.len() - 4..], b"PARE");
    assert_eq!(&two[..4], b"LVX1");
    assert_ne!(&two[two.len() - 4..], b"PARE");
    assert!(two.len() > one.len());
    assert!(!contains(two, &one[one.len() - 64..]));
}

#[tokio::test]
async fn double_encryption_is_fixed_at_creation() {
    let h = Harness::new().await;
    let double = AccountId::cluster("dbl1").unwrap();
    h.store
        .create_account(&double, &customer_binding(None), true)
        .await
        .unwrap();
    let err = h
        .store
        .open_account(&double, Some(false))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::DoubleEncryptionMismatch {
                stored: true,
                requested: false,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("cluster-dbl1"), "{err}");
    // A fresh process reads the setting from the account's metadata.
    let other = h.reopen().await;
    assert!(other.open_account(&double, Some(false)).await.is_err());
    assert!(
        other
            .open_account(&double, Some(true))
            .await
            .unwrap()
            .double_encryption()
    );
    let single = h.cluster_account(false).await;
    let err = other.open_account(&single, Some(true)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::DoubleEncryptionMismatch { stored: false, .. }
        ),
        "{err}"
    );
}

/// The outer plaintext cache: a warm read decrypts no chunk again and returns the same bytes,
/// for any ranges; a replaced object is read anew; a wipe of the account empties it.
#[tokio::test]
async fn warm_reads_come_from_the_outer_cache_until_replaced_or_wiped() {
    use logvault_store::{ReadCacheConfig, ReadCaches};
    let counting = Arc::new(Counting::default());
    let caches = Arc::new(ReadCaches::new(ReadCacheConfig::default()));
    let account = AccountId::cluster("prod1").unwrap();
    let chunk = 4096u32;
    let store = InfraEncryptedStore::new(
        counting.clone(),
        Arc::new(InfraKey::generate().unwrap()),
        chunk,
    )
    .with_read_cache(Arc::clone(&caches), account.clone());
    let plain = data(300_000);
    let path = Path::from("segments/ws/t/a.parquet");
    store
        .put(&path, PutPayload::from(plain.clone()))
        .await
        .unwrap();
    let ranges: Vec<Range<u64>> = vec![
        0..10,
        4000..4200,
        5000..5000,
        100_000..180_001,
        299_990..300_000,
        4095..4097,
    ];
    let expect = |p: &[u8]| -> Vec<Vec<u8>> {
        ranges
            .iter()
            .map(|r| p[r.start as usize..r.end as usize].to_vec())
            .collect()
    };
    async fn read_all(s: &InfraEncryptedStore, path: &Path, ranges: &[Range<u64>]) -> Vec<Vec<u8>> {
        s.get_ranges(path, ranges)
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.to_vec())
            .collect()
    }
    let read = |s| read_all(s, &path, &ranges);
    let decrypts = |c: &ReadCaches| c.stats().outer_decrypts.load(Ordering::SeqCst);
    assert_eq!(read(&store).await, expect(&plain));
    let cold = decrypts(&caches);
    assert!(cold > 0);
    let bytes_cold = counting.read.load(Ordering::SeqCst);
    // Warm: the same bytes, no chunk decrypted, only the header read from storage.
    assert_eq!(read(&store).await, expect(&plain));
    assert_eq!(decrypts(&caches), cold);
    let header_only = counting.read.load(Ordering::SeqCst) - bytes_cold;
    assert_eq!(header_only, logvault_crypto::infra::HEADER_LEN as u64);
    // A whole-object get is served from the cache as well, with the same bytes.
    let whole = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(&whole[..], &plain[..]);
    assert!(caches.held_entries(&account).1 > 0);

    // Replaced under the same path: the new content, never the cached old one.
    let other: Vec<u8> = plain.iter().map(|b| b.wrapping_add(1)).collect();
    store
        .put(&path, PutPayload::from(other.clone()))
        .await
        .unwrap();
    assert_eq!(read(&store).await, expect(&other));

    // A wipe (the account key's eviction) empties the account's entries.
    caches.wipe(&account);
    assert_eq!(caches.held_entries(&account), (0, 0));
    let before = decrypts(&caches);
    assert_eq!(read(&store).await, expect(&other));
    assert!(decrypts(&caches) > before);
}
