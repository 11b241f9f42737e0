//! Writing a segment as its rows arrive: each batch is encoded (and encrypted) into the Parquet
//! file at once, so a segment being filled holds the encoder's current row group, not the Arrow
//! rows. The encoded file goes to storage as it grows: once [`SegmentOptions::part_bytes`] of it
//! are gathered they are sent as a part of a multipart upload (`put_multipart`), so a segment
//! holds at most about one part of its file in memory. The object appears only when the upload
//! is completed at [`SegmentWriter::finish`] (LocalFileSystem writes a staging file
//! `<path>#<n>` and renames it; the cloud stores commit the uploaded parts); an error, or
//! dropping the writer, aborts the upload. A segment that stays under one part is stored with
//! one put (`PutMode::Create`) at finish, as before.
//!
//! An account with double encryption takes the parts the same way: its object store encrypts
//! each part as it comes (the infrastructure layer's streamed format, docs/format.md).
//!
//! [`crate::Store::write_segment`] writes a whole segment through the same writer.

use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use logvault_crypto::{Aek, Key256};
use object_store::{MultipartUpload, ObjectStore, PutMode, PutOptions, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};

use crate::StoreError;
use crate::catalog::{KeyScheme, SegmentEntry};
use crate::layout::SegmentLocation;
use crate::needles::{BlockRef, NeedleIndexBuilder, block};
use crate::segment::{SegmentOptions, Written, encryption_properties, time_range};
use crate::segment_layout::column_encodings;

/// A segment being written (see the module documentation). Dropping it without
/// [`SegmentWriter::finish`] stores nothing.
pub struct SegmentWriter {
    objects: Arc<dyn ObjectStore>,
    loc: SegmentLocation,
    schema: SchemaRef,
    /// In a mutex only so that the writer is `Sync` (Parquet's encoders are not); every use
    /// but `memory` has it exclusively. Made at the first write, from [`Pending`].
    writer: Mutex<Option<ArrowWriter<Chunks>>>,
    /// What the Parquet writer is made of, until the first rows choose the columns' codecs
    /// ([`column_encodings`]).
    pending: Option<Pending>,
    /// The needle index of the rows written (beside the writer, for the same reason).
    needles: Mutex<Option<NeedleIndexBuilder>>,
    /// The key the needle index's block is sealed under (with the index).
    block_key: Option<Key256>,
    /// The multipart upload, once the first part was sent (in a mutex for `Sync` as well;
    /// only used exclusively).
    upload: Mutex<Option<Box<dyn MultipartUpload>>>,
    /// Bytes gathered before they are sent as a part.
    part_bytes: usize,
    /// Bytes of the file sent in parts so far.
    sent: u64,
    /// The largest part sent so far.
    largest_part: usize,
    rows: u64,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    entry: Option<EntryInfo>,
}

/// The Parquet writer's settings (encryption included) before the first rows arrive.
struct Pending {
    props: WriterPropertiesBuilder,
    compression: Compression,
}

/// What a catalog entry of the segment records besides what writing it tells.
#[derive(Debug, Clone)]
pub(crate) struct EntryInfo {
    pub(crate) key_scheme: KeyScheme,
    pub(crate) epoch: u32,
    pub(crate) created: DateTime<Utc>,
}

impl std::fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("segment", &self.loc.to_string())
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl SegmentWriter {
    /// A writer of the encrypted segment `loc` with rows of `schema`.
    pub(crate) fn new(
        objects: Arc<dyn ObjectStore>,
        loc: SegmentLocation,
        aek: &Aek,
        epoch: u32,
        schema: SchemaRef,
        options: &SegmentOptions,
    ) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::InvalidData {
            workspace: loc.workspace.clone(),
            table: loc.table.clone(),
            reason,
        };
        let compression = options.compression.parquet().map_err(invalid)?;
        let props = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_row_count(Some(options.max_row_group_rows.max(1)))
            .set_data_page_row_count_limit(options.data_page_rows.max(1))
            // The page row limit is only checked between write batches.
            .set_write_batch_size(options.data_page_rows.clamp(1, 1024))
            .with_file_encryption_properties(encryption_properties(&loc, aek, epoch)?);
        let block_key = if options.needle_index {
            Some(block::key(aek, &loc)?)
        } else {
            None
        };
        Ok(Self {
            block_key,
            objects,
            loc,
            schema,
            writer: Mutex::new(None),
            pending: Some(Pending { props, compression }),
            needles: Mutex::new(
                options
                    .needle_index
                    .then(|| NeedleIndexBuilder::new(options.max_row_group_rows.max(1))),
            ),
            upload: Mutex::new(None),
            part_bytes: options.part_bytes.max(1),
            sent: 0,
            largest_part: 0,
            rows: 0,
            range: None,
            entry: None,
        })
    }

    /// The writer of a segment that [`SegmentWriter::finish`] makes a catalog entry of.
    #[must_use]
    pub(crate) fn with_entry(mut self, entry: EntryInfo) -> Self {
        self.entry = Some(entry);
        self
    }

    /// The segment's location.
    pub fn location(&self) -> &SegmentLocation {
        &self.loc
    }

    /// The rows' schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes the segment holds in memory: the encoded bytes not sent to storage yet, the
    /// encoder's current row group and the needle index.
    pub fn memory(&self) -> usize {
        let needles = self
            .needles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, NeedleIndexBuilder::memory);
        self.writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, |w| w.inner().held() + w.memory_size())
            + needles
    }

    /// Bytes of the encoded file sent to storage as parts so far (0 until the first part).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The largest part sent so far, in bytes.
    pub fn largest_part(&self) -> usize {
        self.largest_part
    }

    /// Encodes `batch` (on the blocking pool).
    ///
    /// # Errors
    /// [`StoreError::InvalidData`] for a batch of another schema or without a time;
    /// [`StoreError::Encode`] if encoding fails (the writer is then unusable).
    pub async fn write(&mut self, batch: RecordBatch) -> Result<(), StoreError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if batch.schema() != self.schema {
            return Err(StoreError::InvalidData {
                workspace: self.loc.workspace.clone(),
                table: self.loc.table.clone(),
                reason: format!(
                    "record batches have different schemas: {:?} and {:?}",
                    self.schema.fields(),
                    batch.schema().fields()
                ),
            });
        }
        let (lo, hi) =
            time_range(std::slice::from_ref(&batch)).map_err(|reason| StoreError::InvalidData {
                workspace: self.loc.workspace.clone(),
                table: self.loc.table.clone(),
                reason,
            })?;
        let writer = match self.pending.take() {
            Some(pending) => {
                let props = column_encodings(pending.props, &batch, pending.compression).build();
                let writer =
                    ArrowWriter::try_new(Chunks::default(), Arc::clone(&self.schema), Some(props))
                        .map_err(|e| encode_error(&self.loc, &e))?;
                Some(writer)
            }
            None => self.take_writer(),
        };
        let Some(mut writer) = writer else {
            return Err(self.unusable());
        };
        let rows = batch.num_rows() as u64;
        let mut needles = self.take_needles();
        let (writer, needles, result) = tokio::task::spawn_blocking(move || {
            let result = writer.write(&batch);
            if let Some(needles) = needles.as_mut()
                && result.is_ok()
            {
                needles.observe(&batch);
            }
            (writer, needles, result)
        })
        .await
        .map_err(|e| StoreError::Encode {
            segment: self.loc.to_string(),
            reason: e.to_string(),
        })?;
        if let Err(e) = result {
            self.abort().await;
            return Err(encode_error(&self.loc, &e));
        }
        *self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = Some(writer);
        *self
            .needles
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = needles;
        self.rows += rows;
        self.range = Some(match self.range {
            Some((a, b)) => (a.min(lo), b.max(hi)),
            None => (lo, hi),
        });
        let part_bytes = self.part_bytes;
        let ready = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .filter(|w| w.inner().held() >= part_bytes)
            .map(|w| w.inner_mut().take());
        if let Some(part) = ready {
            self.send_part(part).await?;
        }
        Ok(())
    }

    /// Sends `part` as the next part of the upload, starting the upload first if needed. On
    /// failure the upload is aborted and the writer is unusable.
    async fn send_part(&mut self, part: PutPayload) -> Result<(), StoreError> {
        let len = part.content_length();
        let mut upload = match self
            .upload
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            Some(u) => u,
            None => match self
                .objects
                .put_multipart_opts(&self.loc.object_path(), Default::default())
                .await
            {
                Ok(u) => u,
                Err(e) => {
                    self.take_writer();
                    return Err(StoreError::storage(format!("segment {}", self.loc), &e));
                }
            },
        };
        let sent = upload.put_part(part).await;
        *self
            .upload
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = Some(upload);
        if let Err(e) = sent {
            self.abort().await;
            return Err(StoreError::storage(format!("segment {}", self.loc), &e));
        }
        self.sent += len as u64;
        self.largest_part = self.largest_part.max(len);
        Ok(())
    }

    /// The multipart upload in progress, if any, taken out of the writer.
    fn take_upload(&mut self) -> Option<Box<dyn MultipartUpload>> {
        self.upload
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Gives up the segment: the encoder and any upload (whose parts are deleted).
    async fn abort(&mut self) {
        self.take_writer();
        let upload = self.take_upload();
        if let Some(mut upload) = upload
            && let Err(e) = upload.abort().await
        {
            tracing::warn!(segment = %self.loc, error = %e, "aborting a segment's upload failed");
        }
    }

    /// Finishes the file and stores it (`PutMode::Create`: a segment is written once); returns
    /// its catalog entry (with no log ranges: the caller adds them), to be added to the table's
    /// catalog by the caller.
    ///
    /// # Errors
    /// [`StoreError::InvalidData`] if no row was written; encoding and storage errors.
    pub async fn finish(mut self) -> Result<SegmentEntry, StoreError> {
        let Some(entry) = self.entry.take() else {
            return Err(StoreError::Encode {
                segment: self.loc.to_string(),
                reason:
                    "a segment writer without its account's key scheme cannot make a catalog entry"
                        .into(),
            });
        };
        let id = self.loc.segment;
        let account = self.loc.account.clone();
        let written = self.finish_written().await?;
        Ok(SegmentEntry {
            id,
            account,
            min_time: written.min_time,
            max_time: written.max_time,
            rows: written.rows,
            bytes: written.bytes,
            schema: written.schema,
            key_scheme: entry.key_scheme,
            epoch: entry.epoch,
            created: entry.created,
            wal: Vec::new(),
        })
    }

    /// Finishes the file and stores it; returns what was written.
    pub(crate) async fn finish_written(mut self) -> Result<Written, StoreError> {
        let (Some(writer), Some((min_time, max_time))) = (self.take_writer(), self.range) else {
            return Err(StoreError::InvalidData {
                workspace: self.loc.workspace.clone(),
                table: self.loc.table.clone(),
                reason: "no rows to write".into(),
            });
        };
        let needles = self.take_needles();
        let block_key = self.block_key.take();
        let loc = self.loc.clone();
        let encoded = match tokio::task::spawn_blocking(move || {
            let mut writer = writer;
            if let (Some(block), Some(key)) =
                (needles.and_then(NeedleIndexBuilder::finish), block_key)
            {
                append_needle_block(&mut writer, &loc, &key, &block)?;
            }
            writer.into_inner().map_err(|e| encode_error(&loc, &e))
        })
        .await
        {
            Ok(Ok(encoded)) => encoded,
            Ok(Err(e)) => {
                self.abort().await;
                return Err(e);
            }
            Err(e) => {
                self.abort().await;
                return Err(StoreError::Encode {
                    segment: self.loc.to_string(),
                    reason: e.to_string(),
                });
            }
        };
        let bytes = encoded.len() as u64;
        let what = format!("segment {}", self.loc);
        let streaming = self
            .upload
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        if streaming {
            // The rest of the file is the last part; completing the upload makes the object.
            let mut encoded = encoded;
            let last = encoded.take();
            if last.content_length() > 0 {
                self.send_part(last).await?;
            }
            let upload = self.take_upload();
            if let Some(mut upload) = upload
                && let Err(e) = upload.complete().await
            {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(segment = %self.loc, error = %abort, "aborting a segment's upload failed");
                }
                return Err(StoreError::storage(what, &e));
            }
        } else {
            let opts = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            self.objects
                .put_opts(&self.loc.object_path(), encoded.into_payload(), opts)
                .await
                .map_err(|e| StoreError::storage(what, &e))?;
        }
        Ok(Written {
            rows: self.rows,
            bytes,
            min_time,
            max_time,
            schema: Arc::clone(&self.schema),
        })
    }

    fn take_needles(&mut self) -> Option<NeedleIndexBuilder> {
        self.needles
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn take_writer(&mut self) -> Option<ArrowWriter<Chunks>> {
        self.writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn unusable(&self) -> StoreError {
        StoreError::Encode {
            segment: self.loc.to_string(),
            reason: "an earlier write failed; the segment cannot be finished".into(),
        }
    }
}

/// Seals the needle index's `block` into the file after its last row group (the rows in hand
/// are flushed as that row group first) and names it in the footer (docs/format.md, "Needle
/// index").
fn append_needle_block(
    writer: &mut ArrowWriter<Chunks>,
    loc: &SegmentLocation,
    key: &Key256,
    needles: &crate::needles::NeedleBlock,
) -> Result<(), StoreError> {
    writer.flush().map_err(|e| encode_error(loc, &e))?;
    let sealed = block::seal(key, loc, needles)?;
    let reference = BlockRef {
        offset: writer.bytes_written() as u64,
        length: sealed.len() as u64,
        columns: needles.columns.clone(),
    };
    writer.write_all(&sealed).map_err(|e| StoreError::Encode {
        segment: loc.to_string(),
        reason: format!("writing the needle index: {e}"),
    })?;
    let entry = reference.key_value().map_err(|e| StoreError::Encode {
        segment: loc.to_string(),
        reason: format!("the needle index's footer entry: {e}"),
    })?;
    writer.append_key_value_metadata(entry);
    Ok(())
}

impl Drop for SegmentWriter {
    /// A writer dropped with an upload under way (not finished, or finishing failed) aborts
    /// it in the background, so that its parts do not stay in storage (LocalFileSystem's
    /// upload also deletes its staging file when dropped).
    fn drop(&mut self) {
        let Some(mut upload) = self.take_upload() else {
            return;
        };
        let segment = self.loc.to_string();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = upload.abort().await {
                    tracing::warn!(segment, error = %e, "aborting a dropped segment's upload failed");
                }
            });
        }
    }
}

/// The size of the pieces an encoded segment is kept in.
const CHUNK_BYTES: usize = 1 << 20;

/// An encoded segment as it grows, in pieces of [`CHUNK_BYTES`]: growing it never copies what
/// is written (a `Vec` doubles, holding up to three times the file while it moves), and the
/// pieces become the payload of a part or of the object as they are. Same-sized pieces are
/// also what the allocator can reuse from one segment to the next.
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    done: Vec<Bytes>,
    current: Vec<u8>,
    /// Bytes written in all.
    len: usize,
    /// Bytes held (written and not taken).
    held: usize,
}

impl Chunks {
    /// Bytes written.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held: written and not taken.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Takes the bytes held, in order, as a payload (a part of the file); later writes follow
    /// them.
    pub(crate) fn take(&mut self) -> PutPayload {
        if !self.current.is_empty() {
            self.done
                .push(Bytes::from(std::mem::take(&mut self.current)));
        }
        self.held = 0;
        std::mem::take(&mut self.done).into_iter().collect()
    }

    /// The pieces, as a payload to store.
    pub(crate) fn into_payload(mut self) -> PutPayload {
        if !self.current.is_empty() {
            self.done
                .push(Bytes::from(std::mem::take(&mut self.current)));
        }
        self.done.into_iter().collect()
    }
}

impl std::io::Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            if self.current.capacity() == 0 {
                self.current = Vec::with_capacity(CHUNK_BYTES);
            }
            let take = (CHUNK_BYTES - self.current.len()).min(rest.len());
            let (now, later) = rest.split_at(take);
            self.current.extend_from_slice(now);
            rest = later;
            if self.current.len() == CHUNK_BYTES {
                self.done
                    .push(Bytes::from(std::mem::take(&mut self.current)));
            }
        }
        self.len += buf.len();
        self.held += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn encode_error(loc: &SegmentLocation, e: &parquet::errors::ParquetError) -> StoreError {
    StoreError::Encode {
        segment: loc.to_string(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn chunks_keep_every_byte_in_order_across_piece_boundaries() {
        let mut chunks = Chunks::default();
        let mut expected = Vec::new();
        // Writes of many sizes, crossing piece boundaries at odd offsets.
        for (i, size) in [1, CHUNK_BYTES - 3, 7, CHUNK_BYTES * 2 + 5, 0, 1000]
            .into_iter()
            .enumerate()
        {
            let data: Vec<u8> = (0..size).map(|j| (i * 31 + j) as u8).collect();
            chunks.write_all(&data).expect("write");
            expected.extend_from_slice(&data);
        }
        assert_eq!(chunks.len(), expected.len());
        assert!(chunks.done.iter().all(|c| c.len() == CHUNK_BYTES));
        let payload = chunks.into_payload();
        let joined: Vec<u8> = payload.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(joined, expected);
    }
}
