//! Counting reads: an [`ObjectStore`] wrapper that counts the read requests and bytes that reach
//! the store it wraps, per storage account (the first segment of a routed path), so that tests
//! and benchmarks can prove that cache hits never reach storage.
//!
//! One concern per wrapper: it only counts. A `get` (including `head`) is one request; a
//! `get_ranges` call is one request per range, as an object store over HTTP would issue.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use serde::Serialize;

/// Reads counted by a [`CountingStore`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadCounts {
    /// Read requests (gets, heads, ranges).
    pub requests: u64,
    /// Bytes returned.
    pub bytes: u64,
    /// Listings.
    pub lists: u64,
    /// The same, per storage account.
    pub by_account: BTreeMap<String, AccountReads>,
}

/// Reads of one storage account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountReads {
    /// Read requests.
    pub requests: u64,
    /// Bytes returned.
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct Counts {
    requests: AtomicU64,
    bytes: AtomicU64,
    lists: AtomicU64,
    by_account: Mutex<BTreeMap<String, AccountReads>>,
}

/// An object store that counts what is read from the store it wraps.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    counts: Arc<Counts>,
}

impl CountingStore {
    /// Counts reads of `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            counts: Arc::default(),
        }
    }

    /// What was read so far.
    pub fn counts(&self) -> ReadCounts {
        let c = &self.counts;
        ReadCounts {
            requests: c.requests.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            lists: c.lists.load(Ordering::Relaxed),
            by_account: c
                .by_account
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    fn record(&self, location: &Path, requests: u64, bytes: u64) {
        record(&self.counts, location, requests, bytes);
    }
}

fn record(counts: &Counts, location: &Path, requests: u64, bytes: u64) {
    counts.requests.fetch_add(requests, Ordering::Relaxed);
    counts.bytes.fetch_add(bytes, Ordering::Relaxed);
    let account = location
        .parts()
        .next()
        .map(|p| p.as_ref().to_owned())
        .unwrap_or_default();
    let mut by = counts
        .by_account
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let entry = by.entry(account).or_default();
    entry.requests += requests;
    entry.bytes += bytes;
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let got = self.inner.get_opts(location, options).await?;
        let len = got.range.end.saturating_sub(got.range.start);
        let GetResult {
            payload,
            meta,
            range,
            attributes,
        } = got;
        let payload = match payload {
            GetResultPayload::Stream(stream) => {
                // Count the bytes as they are streamed.
                self.record(location, 1, 0);
                let counts = Arc::clone(&self.counts);
                let loc = location.clone();
                let stream = stream
                    .map(move |chunk| {
                        if let Ok(b) = &chunk {
                            record(&counts, &loc, 0, b.len() as u64);
                        }
                        chunk
                    })
                    .boxed();
                GetResultPayload::Stream(stream)
            }
            other => {
                self.record(location, 1, len);
                other
            }
        };
        Ok(GetResult {
            payload,
            meta,
            range,
            attributes,
        })
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let got = self.inner.get_ranges(location, ranges).await?;
        let bytes = got.iter().map(|b| b.len() as u64).sum();
        self.record(location, ranges.len() as u64, bytes);
        Ok(got)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.counts.lists.fetch_add(1, Ordering::Relaxed);
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.counts.lists.fetch_add(1, Ordering::Relaxed);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn counts_requests_and_bytes_per_account() {
        let inner = Arc::new(InMemory::new());
        inner
            .put(&Path::from("service/a"), PutPayload::from(vec![1u8; 100]))
            .await
            .unwrap();
        inner
            .put(&Path::from("cluster-x/b"), PutPayload::from(vec![2u8; 50]))
            .await
            .unwrap();
        let counting = CountingStore::new(inner);
        assert_eq!(counting.counts(), ReadCounts::default());
        let got = counting.get(&Path::from("service/a")).await.unwrap();
        assert_eq!(got.bytes().await.unwrap().len(), 100);
        counting
            .get_ranges(&Path::from("cluster-x/b"), &[0..10, 20..30])
            .await
            .unwrap();
        let c = counting.counts();
        assert_eq!((c.requests, c.bytes), (3, 120));
        assert_eq!(
            c.by_account["service"],
            AccountReads {
                requests: 1,
                bytes: 100
            }
        );
        assert_eq!(
            c.by_account["cluster-x"],
            AccountReads {
                requests: 2,
                bytes: 20
            }
        );
    }
}
