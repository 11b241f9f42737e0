//! Double encryption (R-B4): an [`ObjectStore`] wrapper that puts every object it stores under
//! the infrastructure layer ([`InfraKey::encrypt_object`], chunked ChaCha20-Poly1305 with an
//! independent key), and decrypts on the way out. A multipart upload (a segment sent as it is
//! encoded) is encrypted part by part as it comes ([`InfraKey::sealer`], the layer's streamed
//! format, whose length follows from the stored size), never gathered whole.
//!
//! One concern per wrapper: this one only encrypts. It sits between the account's object view
//! and the backend, so segments (already Parquet-encrypted) and manifests (already sealed) are
//! encrypted a second time with another algorithm and another key.
//!
//! Range reads fetch the 40-byte header, then only the chunks that cover the range, and decrypt
//! those. `head` and listings report plaintext sizes: a listing computes them from the stored
//! size and the account's chunk size (fixed at creation); reads check the header's chunk size.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use logvault_crypto::infra::{CHUNK_TAG_LEN, HEADER_LEN};
use logvault_crypto::{CryptoError, InfraHeader, InfraKey, InfraSealer};

use crate::layout::AccountId;
use crate::read_cache::{ObjectVersion, ReadCaches};
use object_store::path::Path;
use object_store::{
    CopyMode, CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, UploadPart,
};

const STORE: &str = "InfraEncryption";

/// Objects larger than this are encrypted and decrypted on the blocking pool.
const INLINE_LIMIT: usize = 256 * 1024;

/// An object store whose objects are encrypted by the infrastructure layer.
#[derive(Debug)]
pub struct InfraEncryptedStore {
    inner: Arc<dyn ObjectStore>,
    key: Arc<InfraKey>,
    chunk_size: u32,
    /// Where decrypted chunks are kept, and for which account (see [`ReadCaches`]).
    cache: Option<(Arc<ReadCaches>, AccountId)>,
}

impl InfraEncryptedStore {
    /// Wraps `inner`: objects are encrypted under `key` in chunks of `chunk_size` bytes.
    pub fn new(inner: Arc<dyn ObjectStore>, key: Arc<InfraKey>, chunk_size: u32) -> Self {
        Self {
            inner,
            key,
            chunk_size,
            cache: None,
        }
    }

    /// Keeps the plaintext of the chunks it decrypts in `caches`, as `account`'s (wiped with
    /// the account key), and serves warm reads from there.
    #[must_use]
    pub fn with_read_cache(mut self, caches: Arc<ReadCaches>, account: AccountId) -> Self {
        self.cache = caches.caches_outer().then_some((caches, account));
        self
    }

    async fn encrypt(
        &self,
        location: &Path,
        payload: PutPayload,
    ) -> object_store::Result<PutPayload> {
        let key = self.key.clone();
        let loc = location.to_string();
        let chunk = self.chunk_size;
        // Encrypted from its pieces as they are (an encoded segment is kept in pieces): no
        // copy of the whole plaintext is made.
        let len = payload.content_length();
        let ct = on_cpu(len, move || {
            let pieces: Vec<&[u8]> = payload.iter().map(|b| b.as_ref()).collect();
            key.encrypt_object_pieces(&loc, &pieces, chunk)
        })
        .await?;
        Ok(PutPayload::from(ct))
    }

    /// Reads and checks the header of `location`, with the preconditions of `options`.
    async fn header(
        &self,
        location: &Path,
        options: &GetOptions,
    ) -> object_store::Result<(InfraHeader, ObjectMeta)> {
        let opts = GetOptions {
            range: Some(GetRange::Bounded(0..HEADER_LEN as u64)),
            head: false,
            ..options.clone()
        };
        let got = match self.inner.get_opts(location, opts).await {
            Ok(got) => got,
            Err(
                e @ (object_store::Error::NotFound { .. }
                | object_store::Error::Precondition { .. }
                | object_store::Error::NotModified { .. }),
            ) => return Err(e),
            // An empty object has no range 0..40: report it as the truncation it is.
            Err(e) => match self.inner.head(location).await {
                Ok(meta) if meta.size < HEADER_LEN as u64 => {
                    return Err(crypto_error(CryptoError::Integrity {
                        context: format!(
                            "infrastructure layer of {location}: object of {} bytes has no header",
                            meta.size
                        ),
                    }));
                }
                _ => return Err(e),
            },
        };
        let meta = got.meta.clone();
        let bytes = got.bytes().await?;
        let loc = location.to_string();
        let header = InfraHeader::parse_sized(&bytes, meta.size, &loc).map_err(crypto_error)?;
        if header.chunk_size != self.chunk_size {
            return Err(crypto_error(CryptoError::Integrity {
                context: format!(
                    "infrastructure layer of {location}: chunk size {} differs from the account's {}",
                    header.chunk_size, self.chunk_size
                ),
            }));
        }
        Ok((header, meta))
    }

    /// Decrypts the plaintext `ranges` of `location` (stored as `meta`), from the read cache
    /// where it holds them, otherwise fetching only the chunks they cover.
    async fn read_ranges(
        &self,
        location: &Path,
        header: &InfraHeader,
        meta: &ObjectMeta,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        if let Some((caches, account)) = &self.cache {
            let object = Arc::new(ObjectVersion {
                account: account.clone(),
                path: location.to_string(),
                version: meta.e_tag.clone().unwrap_or_else(|| {
                    format!("{}@{}", meta.size, meta.last_modified.timestamp_micros())
                }),
            });
            return self
                .read_ranges_cached(location, header, ranges, caches, &object)
                .await;
        }
        let plans: Vec<_> = ranges.iter().map(|r| header.chunks_for(r)).collect();
        let wanted: Vec<Range<u64>> = plans
            .iter()
            .filter(|(chunks, _)| !chunks.is_empty())
            .map(|(_, bytes)| bytes.clone())
            .collect();
        let mut fetched = self.inner.get_ranges(location, &wanted).await?.into_iter();
        let mut out = Vec::with_capacity(ranges.len());
        for (range, (chunks, _)) in ranges.iter().zip(plans) {
            if chunks.is_empty() {
                out.push(Bytes::new());
                continue;
            }
            let cipher = fetched.next().ok_or_else(|| {
                crypto_error(CryptoError::Integrity {
                    context: format!("infrastructure layer of {location}: short read"),
                })
            })?;
            let key = self.key.clone();
            let loc = location.to_string();
            let head = header.clone();
            let first = chunks.start;
            let plain = on_cpu(cipher.len(), move || {
                key.decrypt_chunks(&loc, &head, chunks, &cipher)
            })
            .await?;
            let offset = usize::try_from(range.start - first * u64::from(header.chunk_size))
                .unwrap_or(usize::MAX);
            let end = range.end.min(header.plaintext_len);
            let len = usize::try_from(end.saturating_sub(range.start)).unwrap_or(usize::MAX);
            let piece = plain
                .get(offset..offset.saturating_add(len))
                .ok_or_else(|| {
                    crypto_error(CryptoError::Integrity {
                        context: format!("infrastructure layer of {location}: chunk too short"),
                    })
                })?;
            out.push(Bytes::copy_from_slice(piece));
        }
        Ok(out)
    }

    /// [`Self::read_ranges`] through the read cache: the chunks of each range it does not hold
    /// (from the first missing to the last missing one) are fetched in one batch, decrypted and
    /// kept; then each range is cut from its chunks.
    async fn read_ranges_cached(
        &self,
        location: &Path,
        header: &InfraHeader,
        ranges: &[Range<u64>],
        caches: &ReadCaches,
        object: &Arc<ObjectVersion>,
    ) -> object_store::Result<Vec<Bytes>> {
        let generation = caches.generation(&object.account);
        let cs = u64::from(header.chunk_size);
        let stride = cs + CHUNK_TAG_LEN as u64;
        // Per range: its chunks, the cached ones filled in.
        let mut held: Vec<(Range<u64>, Vec<Option<Bytes>>)> = Vec::with_capacity(ranges.len());
        let mut missing: Vec<Range<u64>> = Vec::new();
        for range in ranges {
            let (chunks, _) = header.chunks_for(range);
            let have: Vec<Option<Bytes>> = chunks
                .clone()
                .map(|i| caches.outer_chunk(object, i, generation))
                .collect();
            let first = have.iter().position(Option::is_none);
            let last = have.iter().rposition(Option::is_none);
            if let (Some(f), Some(l)) = (first, last) {
                missing.push(chunks.start + f as u64..chunks.start + l as u64 + 1);
            }
            held.push((chunks, have));
        }
        if !missing.is_empty() {
            let wanted: Vec<Range<u64>> = missing
                .iter()
                .map(|c| {
                    HEADER_LEN as u64 + c.start * stride
                        ..(HEADER_LEN as u64 + c.end * stride).min(header.object_len())
                })
                .collect();
            let fetched = self.inner.get_ranges(location, &wanted).await?;
            if fetched.len() != missing.len() {
                return Err(crypto_error(CryptoError::Integrity {
                    context: format!("infrastructure layer of {location}: short read"),
                }));
            }
            let mut decrypted = missing.iter().zip(fetched);
            for (chunks, have) in &mut held {
                if have.iter().all(Option::is_some) {
                    continue;
                }
                let Some((span, cipher)) = decrypted.next() else {
                    break;
                };
                let key = self.key.clone();
                let loc = location.to_string();
                let head = header.clone();
                let span_chunks = span.clone();
                let plain = Bytes::from(
                    on_cpu(cipher.len(), move || {
                        key.decrypt_chunks(&loc, &head, span_chunks, &cipher)
                    })
                    .await?,
                );
                caches.count_outer_decrypts(span.end - span.start);
                // One buffer per chunk, so that the cache's bound counts what it holds.
                let pieces: Vec<Bytes> = (0..span.end - span.start)
                    .map(|k| {
                        let lo = usize::try_from(k * cs)
                            .unwrap_or(usize::MAX)
                            .min(plain.len());
                        let hi = usize::try_from((k + 1) * cs)
                            .unwrap_or(usize::MAX)
                            .min(plain.len());
                        Bytes::copy_from_slice(&plain[lo..hi])
                    })
                    .collect();
                for (k, piece) in pieces.iter().enumerate() {
                    let slot = usize::try_from(span.start - chunks.start).unwrap_or(usize::MAX) + k;
                    if let Some(s) = have.get_mut(slot) {
                        *s = Some(piece.clone());
                    }
                }
                caches.put_outer_chunks(object, span.start, pieces, generation);
            }
        }
        let mut out = Vec::with_capacity(ranges.len());
        for (range, (chunks, have)) in ranges.iter().zip(held) {
            if chunks.is_empty() {
                out.push(Bytes::new());
                continue;
            }
            let end = range.end.min(header.plaintext_len);
            let offset = usize::try_from(range.start - chunks.start * cs).unwrap_or(usize::MAX);
            let len = usize::try_from(end.saturating_sub(range.start)).unwrap_or(usize::MAX);
            let pieces: Vec<Bytes> = have.into_iter().flatten().collect();
            let piece = if let [one] = pieces.as_slice() {
                one.get(offset..offset.saturating_add(len))
                    .map(|_| one.slice(offset..offset + len))
            } else {
                let joined: Vec<u8> = pieces.concat();
                joined
                    .get(offset..offset.saturating_add(len))
                    .map(Bytes::copy_from_slice)
            };
            out.push(piece.ok_or_else(|| {
                crypto_error(CryptoError::Integrity {
                    context: format!("infrastructure layer of {location}: chunk too short"),
                })
            })?);
        }
        Ok(out)
    }

    fn sizes(&self) -> PlainSizes {
        PlainSizes {
            chunk_size: self.chunk_size,
        }
    }
}

impl fmt::Display for InfraEncryptedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfraEncrypted({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for InfraEncryptedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let payload = self.encrypt(location, payload).await?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        // Streamed (format version 2): each part is encrypted as it comes and goes on to the
        // backend's upload; the length is not in the header but follows from the stored size.
        let sealer = self
            .key
            .sealer(location.as_ref(), self.chunk_size)
            .map_err(crypto_error)?;
        Ok(Box::new(StreamedUpload {
            inner: self.inner.put_multipart_opts(location, opts).await?,
            sealer: Some(sealer),
            sealed: Vec::new(),
            min_part: None,
            chunk_size: self.chunk_size as usize,
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let (header, meta) = self.header(location, &options).await?;
        let meta = ObjectMeta {
            size: header.plaintext_len,
            ..meta
        };
        if options.head {
            return Ok(GetResult {
                payload: GetResultPayload::Stream(stream::empty().boxed()),
                range: 0..0,
                meta,
                attributes: Default::default(),
            });
        }
        let range = match &options.range {
            Some(r) => {
                r.as_range(header.plaintext_len)
                    .map_err(|e| object_store::Error::Generic {
                        store: STORE,
                        source: Box::new(e),
                    })?
            }
            None => 0..header.plaintext_len,
        };
        let bytes = if range.is_empty() {
            Bytes::new()
        } else {
            let mut got = self
                .read_ranges(location, &header, &meta, std::slice::from_ref(&range))
                .await?;
            got.pop().unwrap_or_default()
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream::once(async move { Ok(bytes) }).boxed()),
            range,
            meta,
            attributes: Default::default(),
        })
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let (header, meta) = self.header(location, &GetOptions::default()).await?;
        for r in ranges {
            if r.start > r.end || r.end > header.plaintext_len {
                return Err(object_store::Error::Generic {
                    store: STORE,
                    source: format!(
                        "range {}..{} is out of bounds for {location} of {} bytes",
                        r.start, r.end, header.plaintext_len
                    )
                    .into(),
                });
            }
        }
        self.read_ranges(location, &header, &meta, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let sizes = self.sizes();
        self.inner
            .list(prefix)
            .map(move |m| m.map(|m| sizes.meta(m)))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let mut listed = self.inner.list_with_delimiter(prefix).await?;
        listed.objects = listed
            .objects
            .into_iter()
            .map(|m| self.sizes().meta(m))
            .collect();
        Ok(listed)
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        // Objects are bound to their location: a copy is decrypted and encrypted again.
        let plain = self.get(from).await?.bytes().await?;
        let mode = match options.mode {
            CopyMode::Overwrite => PutMode::Overwrite,
            CopyMode::Create => PutMode::Create,
        };
        let opts = PutOptions {
            mode,
            extensions: options.extensions,
            ..PutOptions::default()
        };
        self.put_opts(to, PutPayload::from(plain), opts)
            .await
            .map(|_| ())
    }
}

/// Plaintext sizes from stored sizes, for objects written with one chunk size.
#[derive(Clone, Copy)]
struct PlainSizes {
    chunk_size: u32,
}

impl PlainSizes {
    fn meta(self, mut meta: ObjectMeta) -> ObjectMeta {
        let header = HEADER_LEN as u64;
        let tag = CHUNK_TAG_LEN as u64;
        let body = meta.size.saturating_sub(header);
        let chunks = body.div_ceil(u64::from(self.chunk_size) + tag);
        meta.size = body.saturating_sub(chunks * tag);
        meta
    }
}

/// The most encrypted bytes a streamed upload gathers before it sends them as a part: S3's
/// smallest part (every part but the last must be at least this large).
const MIN_PART_BYTES: usize = 5 << 20;

/// An upload encrypted as its parts come (format version 2). The backend's parts are the
/// encrypted bytes, sent once as many as the first part given (at most [`MIN_PART_BYTES`]) are
/// ready, so that each but the last is at least that large; what is left goes with the last
/// part at completion. It holds at most about one part of each: the plaintext given and its
/// ciphertext (in a buffer sized for it, not grown by doubling).
struct StreamedUpload {
    inner: Box<dyn MultipartUpload>,
    /// `None` once completed or aborted.
    sealer: Option<InfraSealer>,
    /// Encrypted bytes not sent yet.
    sealed: Vec<u8>,
    /// The size of the first part given, at most [`MIN_PART_BYTES`]: the smallest part sent
    /// on before the last.
    min_part: Option<usize>,
    chunk_size: usize,
}

impl fmt::Debug for StreamedUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamedUpload")
            .field("sealer", &self.sealer)
            .field("sealed", &self.sealed.len())
            .finish_non_exhaustive()
    }
}

fn upload_closed() -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: "the upload was completed or aborted".into(),
    }
}

#[async_trait]
impl MultipartUpload for StreamedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let Some(sealer) = self.sealer.as_mut() else {
            return Box::pin(async { Err(upload_closed()) });
        };
        // Sealed here, in call order (a part's chunks depend on the parts before it): about a
        // millisecond per MiB on this thread.
        let len = data.content_length();
        let min_part = *self.min_part.get_or_insert(len.clamp(1, MIN_PART_BYTES));
        // Room at once for what this part gives out: its chunks, with the chunk held back
        // from the last part, and the header.
        let chunks = len / self.chunk_size + 2;
        self.sealed
            .reserve_exact(len + self.chunk_size + chunks * CHUNK_TAG_LEN + HEADER_LEN);
        for piece in data.iter() {
            if let Err(e) = sealer.push(piece, &mut self.sealed) {
                let e = crypto_error(e);
                return Box::pin(async move { Err(e) });
            }
        }
        if self.sealed.len() < min_part {
            return Box::pin(async { Ok(()) });
        }
        let part = std::mem::take(&mut self.sealed);
        self.inner.put_part(PutPayload::from(part))
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let sealer = self.sealer.take().ok_or_else(upload_closed)?;
        sealer.finish(&mut self.sealed).map_err(crypto_error)?;
        let last = std::mem::take(&mut self.sealed);
        self.inner.put_part(PutPayload::from(last)).await?;
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.sealer = None;
        self.sealed = Vec::new();
        self.inner.abort().await
    }
}

fn crypto_error(e: CryptoError) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: Box::new(e),
    }
}

/// Runs a CPU-bound crypto step inline for small objects, on the blocking pool for large ones.
async fn on_cpu<F>(len: usize, f: F) -> object_store::Result<Vec<u8>>
where
    F: FnOnce() -> Result<Vec<u8>, CryptoError> + Send + 'static,
{
    if len <= INLINE_LIMIT || tokio::runtime::Handle::try_current().is_err() {
        return f().map_err(crypto_error);
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| object_store::Error::Generic {
            store: STORE,
            source: Box::new(e),
        })?
        .map_err(crypto_error)
}
