//! A DataFusion [`ParquetFileReaderFactory`] that keeps segments' decrypted footers.
//!
//! DataFusion 55 caches Parquet metadata in its runtime's `FileMetadataCache`, keyed by path,
//! but never for an encrypted file (`DFParquetMetadata::fetch_metadata` skips the cache when
//! decryption properties are given): the cached metadata would carry the file's decryptor and
//! its plaintext statistics beyond the life of the key. So every query decrypted and parsed
//! every segment's footer and page index again. This factory reads segments as DataFusion's
//! default one does, except that a segment's metadata is taken from the keyring's
//! [`ReadCaches`] when present, and put there (with its page index) when decrypted, keyed by
//! the segment, its size and the account key's epoch, and wiped with the account key.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::datasource::physical_plan::parquet::DefaultParquetFileReaderFactory;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::ObjectStore;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};

use crate::StoreError;
use crate::keyring::{CURRENT_AEK_EPOCH, Keyring};
use crate::layout::SegmentLocation;
use crate::needles::{self, BlockRef, Needle, NeedleIndex, indexes_any_with, row_counts};
use crate::read_cache::{FooterKey, ReadCaches};

/// Reads segments through `store`, their footers through the keyring's footer cache.
#[derive(Debug)]
pub struct SegmentReaderFactory {
    inner: DefaultParquetFileReaderFactory,
    keyring: Arc<Keyring>,
}

impl SegmentReaderFactory {
    /// A factory reading from `store` (the object store at [`crate::STORAGE_URL`]).
    pub fn new(store: Arc<dyn ObjectStore>, keyring: Arc<Keyring>) -> Self {
        Self {
            inner: DefaultParquetFileReaderFactory::new(store),
            keyring,
        }
    }

    /// Which row groups of `file`, whose footer is `metadata` (as [`Self::footer`] read it),
    /// may hold the values of `needles` (see [`crate::needles`]; `None`: every row group). Its
    /// needle index is read (the sealed block after its row groups, opened with the segment's
    /// block key from the keyring's cached account key) and decoded once, and kept with the
    /// cached footer. An index that cannot be read or opened is not used (every row group is
    /// read, with a warning), and not kept.
    ///
    /// # Errors
    /// Creating the file's reader.
    pub async fn needle_scan(
        &self,
        file: PartitionedFile,
        metadata: &Arc<ParquetMetaData>,
        needles: &[Needle],
    ) -> datafusion::common::Result<Option<Vec<bool>>> {
        let key = self.footer_key(&file);
        let path = file.object_meta.location.clone();
        let caches = self.keyring.read_caches();
        let cached = key
            .as_ref()
            .and_then(|k| caches.footer_entry(k).map(|e| (k, e)))
            .filter(|(_, (entry, _))| Arc::ptr_eq(&entry.metadata, metadata));
        if let Some((_, (entry, _))) = &cached
            && let Some(index) = entry.needles.get()
        {
            return Ok(index.row_groups_to_scan(needles));
        }
        let block = BlockRef::of(metadata).and_then(Result::ok);
        if !indexes_any_with(metadata, block.as_ref(), needles) {
            return Ok(None);
        }
        let read = match block {
            Some(block) => {
                let mut reader =
                    self.reader(file, key.clone(), None, 0, &ExecutionPlanMetricsSet::new())?;
                self.read_block(&path, &block, metadata, reader.as_mut())
                    .await
            }
            None => Ok(NeedleIndex::from_metadata(metadata)),
        };
        let index = match read {
            Ok(index) => Arc::new(index),
            Err(e) => {
                tracing::warn!(
                    segment = %path,
                    error = %e,
                    "a segment's needle index was not read; all its row groups are"
                );
                return Ok(None);
            }
        };
        let scan = index.row_groups_to_scan(needles);
        if let Some((key, (entry, generation))) = cached
            && entry.needles.set(index).is_ok()
        {
            caches.reweigh_footer(key, Arc::clone(&entry), generation);
        }
        Ok(scan)
    }

    /// The footer of `file`, read as a scan reads it: through the footer cache, decrypted with
    /// the keys in `options` (a planner's look at the segment before its scan, which then finds
    /// the footer cached; [`Self::needle_scan`] takes it).
    ///
    /// # Errors
    /// Reading or decrypting the footer (the scan would fail the same way).
    pub async fn footer(
        &self,
        file: PartitionedFile,
        options: &ArrowReaderOptions,
    ) -> datafusion::common::Result<Arc<ParquetMetaData>> {
        let key = self.footer_key(&file);
        let mut reader = self.reader(file, key, None, 0, &ExecutionPlanMetricsSet::new())?;
        Ok(reader.get_metadata(Some(options)).await?)
    }

    /// Version 2's index of the segment at `path` whose footer is `metadata`: its `block` read
    /// through `reader` and opened with the segment's block key.
    async fn read_block(
        &self,
        path: &object_store::path::Path,
        block: &BlockRef,
        metadata: &ParquetMetaData,
        reader: &mut (dyn AsyncFileReader + Send),
    ) -> Result<NeedleIndex, StoreError> {
        let loc = SegmentLocation::from_routed_path(path)?;
        let key = needles::block::key(&*self.keyring.require_cached_aek(&loc.account)?, &loc)?;
        let sealed = reader
            .get_bytes(block.range())
            .await
            .map_err(|e| StoreError::Storage {
                what: format!("the needle index of segment {loc}"),
                reason: e.to_string(),
            })?;
        let plain = needles::block::open(&key, &loc, &sealed)?;
        Ok(NeedleIndex::from_block(&plain, &row_counts(metadata)))
    }

    /// A reader of `file` whose footer goes through the footer cache under `key`.
    fn reader(
        &self,
        file: PartitionedFile,
        key: Option<FooterKey>,
        metadata_size_hint: Option<usize>,
        partition_index: usize,
        metrics: &ExecutionPlanMetricsSet,
    ) -> datafusion::common::Result<Box<dyn AsyncFileReader + Send>> {
        let inner = self
            .inner
            .create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(SegmentReader {
            inner,
            key,
            keyring: Arc::clone(&self.keyring),
            caches: Arc::clone(self.keyring.read_caches()),
        }))
    }

    /// The footer cache's key of `file`: only segments (paths that name their account) of a
    /// store whose footer cache is on.
    fn footer_key(&self, file: &PartitionedFile) -> Option<FooterKey> {
        let path = &file.object_meta.location;
        SegmentLocation::from_routed_path(path)
            .ok()
            .filter(|_| self.keyring.read_caches().caches_footers())
            .map(|loc| FooterKey {
                epoch: self
                    .keyring
                    .cached_record(&loc.account)
                    .map_or(CURRENT_AEK_EPOCH, |r| r.epoch),
                account: loc.account,
                path: path.to_string(),
                size: file.object_meta.size,
            })
    }
}

impl ParquetFileReaderFactory for SegmentReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> datafusion::common::Result<Box<dyn AsyncFileReader + Send>> {
        let key = self.footer_key(&file);
        self.reader(file, key, metadata_size_hint, partition_index, metrics)
    }
}

struct SegmentReader {
    inner: Box<dyn AsyncFileReader + Send>,
    key: Option<FooterKey>,
    keyring: Arc<Keyring>,
    caches: Arc<ReadCaches>,
}

impl AsyncFileReader for SegmentReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        // Cached only for a read that brings the file's keys (the gate passed for it) while
        // the account's key is still held.
        let key = self.key.clone().filter(|k| {
            options.is_some_and(|o| o.file_decryption_properties().is_some())
                && self.keyring.cached_aek(&k.account).is_some()
        });
        let Some(key) = key else {
            let caches = Arc::clone(&self.caches);
            return async move {
                let got = self.inner.get_metadata(options).await;
                if got.is_ok() {
                    caches.put_footer(None, 0, None);
                }
                got
            }
            .boxed();
        };
        if let Some(hit) = self.caches.footer(&key) {
            return futures::future::ready(Ok(hit)).boxed();
        }
        let generation = self.caches.generation(&key.account);
        async move {
            // With the page index: it is kept for the next query, which may prune with it.
            let options = options
                .cloned()
                .unwrap_or_default()
                .with_page_index_policy(PageIndexPolicy::Optional);
            let metadata = self.inner.get_metadata(Some(&options)).await?;
            self.caches
                .put_footer(Some(key), generation, Some(Arc::clone(&metadata)));
            Ok(metadata)
        }
        .boxed()
    }
}
