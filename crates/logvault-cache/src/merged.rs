//! Compaction without going cold: a merged segment built from its members' hot copies.
//!
//! A compaction writes a new segment from small ones and retires them. The new segment is a new
//! file the memory tier does not hold, so until it is promoted (which waits for queries to be
//! quiet, on the nice-19 promotion thread, and decodes the whole merged file) queries read it
//! from its file. Its rows are its members' rows, in member order, each member's columns
//! conformed to the merged schema, so the memory tier builds it from the members it holds (a
//! copy: no storage read, no decryption) and the few it does not hold yet (the newest, whose
//! promotion is still waiting) from their files, which stay for the grace period. The members
//! leave the tier as the build begins (the catalog no longer lists them; a query that planned
//! with them still holds its own reference) and each member's batches are let go once copied, so
//! the tier and the build together hold about what the tier held before, not that and the merged
//! segment besides (up to 600 MB for a merge of 2M rows of the HTTP load benchmark). When the
//! tier holds none of them, the merged segment is admitted as new data instead: decoding its one
//! file is then the same work.
//!
//! What it keeps: every read is made under the workspace's purge generation taken before any
//! member is read, and the result is kept only if no purge came since (R-F3); a member whose
//! account key is not cached is not read ([`crate::HotCache::lookup`]'s rule), and the merge is
//! then admitted instead. The batches in between are plaintext Arrow buffers freed (not
//! zeroized) once encoded, as a promotion's decoded batches are.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::BatchCoalescer;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use logvault_store::{MergedSegments, SegmentLocation};
use parquet::encryption::decrypt::FileDecryptionProperties;

use crate::CacheError;
use crate::hot::{HOT_BATCH_ROWS, Inner, decode_parquet};
use crate::memory::HotSegment;
use crate::metrics::Event;

/// A member of a merge, as the build reads it.
pub(crate) enum Part {
    /// In the memory tier.
    Hot(Arc<HotSegment>),
    /// Not in the memory tier: its file, to decode.
    Cold {
        loc: SegmentLocation,
        bytes: Bytes,
        props: Arc<FileDecryptionProperties>,
    },
}

type Batches<'a> = Box<dyn Iterator<Item = Result<RecordBatch, CacheError>> + 'a>;

impl Part {
    /// Its rows as `schema`, letting go of each batch once it is read (a hot member's
    /// buffers are freed as they are copied, unless a query still holds them).
    fn batches(self, schema: &SchemaRef) -> Result<Batches<'_>, CacheError> {
        match self {
            Self::Hot(seg) => {
                let batches = seg.read_as(schema, |_, _| true)?;
                drop(seg);
                Ok(Box::new(batches.into_iter().map(Ok)))
            }
            Self::Cold { loc, bytes, props } => {
                let (_, reader) = decode_parquet(&loc, bytes, props)?;
                Ok(Box::new(reader.map(move |b| {
                    b.and_then(|b| logvault_store::schema::conform(&b, schema))
                        .map_err(|e| decode_failed(&loc, &e))
                })))
            }
        }
    }
}

fn decode_failed(loc: &SegmentLocation, e: &dyn std::fmt::Display) -> CacheError {
    CacheError::Decode {
        segment: loc.to_string(),
        reason: e.to_string(),
    }
}

impl Inner {
    /// The members of `merge` as a build reads them, or `None` when the build would gain
    /// nothing or must not run: the tier is off or already holds the merged segment, no member
    /// is in the tier, or a member's account key is not cached. Reads the files of the members
    /// the tier does not hold (through the disk tier), unless a purge came since `generation`.
    pub(crate) async fn merge_parts(
        &self,
        merge: &MergedSegments,
        generation: u64,
    ) -> Result<Option<Vec<Part>>, CacheError> {
        if self.memory.capacity() == 0 || self.memory.contains(&merge.segment) {
            return Ok(None);
        }
        let keyring = self.store.keyring();
        if merge
            .members
            .iter()
            .any(|m| keyring.cached_aek(&m.account).is_none())
        {
            return Ok(None);
        }
        let hot: Vec<Option<Arc<HotSegment>>> =
            merge.members.iter().map(|m| self.memory.get(m)).collect();
        if hot.iter().all(Option::is_none) {
            return Ok(None);
        }
        let mut parts = Vec::with_capacity(hot.len());
        for (member, seg) in merge.members.iter().zip(hot) {
            parts.push(match seg {
                Some(seg) => Part::Hot(seg),
                None => {
                    let (bytes, props) = self.fetch_encrypted(member, generation).await?;
                    Part::Cold {
                        loc: member.clone(),
                        bytes,
                        props,
                    }
                }
            });
        }
        Ok(Some(parts))
    }

    /// Builds `merge`'s segment from `parts` (see the module documentation) and puts it in the
    /// tier in its members' place, unless a purge came since `generation` (then nothing is
    /// kept). Blocking: a copy of the hot members' rows, and the decoding of the others.
    pub(crate) fn adopt_merge(
        &self,
        merge: &MergedSegments,
        parts: Vec<Part>,
        generation: u64,
    ) -> Result<(), CacheError> {
        let loc = &merge.segment;
        let schema = logvault_store::schema::view_types(&merge.schema);
        // The members leave the tier before the build: the catalog no longer lists them (a
        // query that planned with them holds its own reference), and the build lets go of each
        // one's rows as it copies them, so the tier and the build together hold about what the
        // tier held, not that and the merged segment besides.
        for m in &merge.members {
            self.memory.remove(m);
        }
        let seg = Arc::new(HotSegment::encode_from(
            loc,
            Arc::clone(&schema),
            coalesced(parts, &schema, loc),
            Some(merge.max_time),
            Arc::clone(&self.metrics.zeroized_bytes),
            &self.metrics.allocated_bytes,
        )?);
        seg.touch(self.now());
        let current = self
            .ctx
            .generations
            .with_current(&loc.workspace, generation, |current| {
                current.then(|| self.memory.insert(Arc::clone(&seg)))
            });
        let Some(kept) = current else {
            return Ok(());
        };
        self.ctx.hints.insert(loc.clone(), merge.max_time);
        // A build the tier refused is counted there (`memoryRefused`), not as adopted.
        if kept {
            self.metrics.add(&loc.workspace, Event::MergeAdopted, 1);
        }
        Ok(())
    }
}

/// The parts' rows as `schema`, in batches of the promotion's size, made one at a time as they
/// are encoded (a hot member's own batches are shared, not copied, until coalesced), each part
/// let go once read.
fn coalesced<'a>(
    parts: Vec<Part>,
    schema: &'a SchemaRef,
    loc: &'a SegmentLocation,
) -> impl Iterator<Item = Result<RecordBatch, CacheError>> + 'a {
    let mut coalescer = BatchCoalescer::new(Arc::clone(schema), HOT_BATCH_ROWS);
    let mut parts = parts.into_iter();
    let mut current: Batches<'a> = Box::new(std::iter::empty());
    let mut done = false;
    std::iter::from_fn(move || {
        loop {
            if let Some(b) = coalescer.next_completed_batch() {
                return Some(Ok(b));
            }
            if done {
                return None;
            }
            match current.next() {
                Some(Ok(batch)) => {
                    if let Err(e) = coalescer.push_batch(batch) {
                        done = true;
                        return Some(Err(decode_failed(loc, &e)));
                    }
                    continue;
                }
                Some(Err(e)) => {
                    done = true;
                    return Some(Err(e));
                }
                None => {}
            }
            match parts.next() {
                Some(part) => match part.batches(schema) {
                    Ok(batches) => current = batches,
                    Err(e) => {
                        done = true;
                        return Some(Err(e));
                    }
                },
                None => {
                    done = true;
                    if let Err(e) = coalescer.finish_buffered_batch() {
                        return Some(Err(decode_failed(loc, &e)));
                    }
                }
            }
        }
    })
}
