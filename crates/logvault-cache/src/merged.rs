//! Compaction without going cold: a merged segment built from its members' hot copies.
//!
//! A compaction writes a new segment from small ones and retires them. The new segment is a new
//! file the memory tier does not hold, so until it is promoted (which waits for queries to be
//! quiet, on the nice-19 promotion thread) queries read it from its file, decrypting and
//! decoding it: a server merging every minute under steady queries made its median query slower
//! (docs/bench/README.md, "A server's small segments, merged in the background"). Its rows are
//! its members' rows, in member order, each member's columns conformed to the merged schema, so
//! when every member is in the memory tier the merged segment is built from there: a copy, no
//! storage read, no decryption. The members then leave the tier (the catalog no longer lists
//! them; a query that planned with them still holds its own reference).
//!
//! What it keeps: the copy is made under the workspace's purge generation taken before the
//! members are read, and kept only if no purge came since (R-F3); a member whose account key is
//! not cached is not read ([`crate::HotCache::lookup`]'s rule), and the merge is then admitted as
//! new data instead. The batches in between are plaintext Arrow buffers freed (not zeroized)
//! once encoded, as the promotion's decoded batches are.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::BatchCoalescer;
use arrow::datatypes::SchemaRef;
use logvault_store::{MergedSegments, SegmentLocation};

use crate::CacheError;
use crate::hot::{HOT_BATCH_ROWS, Inner};
use crate::memory::HotSegment;
use crate::metrics::Event;

/// What became of a merge in the memory tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Adopted {
    /// Built from its members, now in the tier in their place.
    Built,
    /// A member is not in the tier (or its key is not cached): nothing done.
    NotHot,
    /// The workspace was purged while it was built: nothing kept.
    Purged,
}

impl Inner {
    /// Builds `merge`'s segment from its members in the memory tier (see the module
    /// documentation). Blocking: a copy of every member's rows.
    pub(crate) fn adopt_merge(&self, merge: &MergedSegments) -> Result<Adopted, CacheError> {
        let loc = &merge.segment;
        if self.memory.capacity() == 0 || self.memory.contains(loc) {
            return Ok(Adopted::NotHot);
        }
        let generation = self.ctx.generations.current(&loc.workspace);
        let keyring = self.store.keyring();
        let mut members: Vec<Arc<HotSegment>> = Vec::with_capacity(merge.members.len());
        for m in &merge.members {
            match self.memory.get(m) {
                Some(seg) if keyring.cached_aek(&m.account).is_some() => members.push(seg),
                _ => return Ok(Adopted::NotHot),
            }
        }
        let schema = logvault_store::schema::view_types(&merge.schema);
        let estimate = members.iter().map(|m| m.bytes()).sum();
        let seg = Arc::new(HotSegment::encode_from(
            loc,
            Arc::clone(&schema),
            estimate,
            coalesced(&members, &schema, loc),
            Some(merge.max_time),
            Arc::clone(&self.metrics.zeroized_bytes),
            &self.metrics.allocated_bytes,
        )?);
        seg.touch(self.now());
        let kept = self
            .ctx
            .generations
            .with_current(&loc.workspace, generation, |current| {
                if current {
                    self.memory.insert(Arc::clone(&seg));
                }
                current
            });
        if !kept {
            return Ok(Adopted::Purged);
        }
        self.ctx.hints.insert(loc.clone(), merge.max_time);
        for m in &merge.members {
            self.memory.remove(m);
        }
        self.metrics.add(&loc.workspace, Event::MergeAdopted, 1);
        Ok(Adopted::Built)
    }
}

/// The members' rows as `schema`, in batches of the promotion's size, made one at a time as
/// they are encoded (a member's own batches are shared, not copied, until coalesced).
fn coalesced<'a>(
    members: &'a [Arc<HotSegment>],
    schema: &'a SchemaRef,
    loc: &'a SegmentLocation,
) -> impl Iterator<Item = Result<RecordBatch, CacheError>> + 'a {
    let fail = |e: arrow::error::ArrowError| CacheError::Decode {
        segment: loc.to_string(),
        reason: e.to_string(),
    };
    let mut coalescer = BatchCoalescer::new(Arc::clone(schema), HOT_BATCH_ROWS);
    let mut members = members.iter();
    let mut current = Vec::new().into_iter();
    let mut done = false;
    std::iter::from_fn(move || {
        loop {
            if let Some(b) = coalescer.next_completed_batch() {
                return Some(Ok(b));
            }
            if done {
                return None;
            }
            if let Some(batch) = current.next() {
                if let Err(e) = coalescer.push_batch(batch) {
                    done = true;
                    return Some(Err(fail(e)));
                }
                continue;
            }
            match members.next() {
                Some(member) => match member.read_as(schema, |_, _| true) {
                    Ok(batches) => current = batches.into_iter(),
                    Err(e) => {
                        done = true;
                        return Some(Err(e));
                    }
                },
                None => {
                    done = true;
                    if let Err(e) = coalescer.finish_buffered_batch() {
                        return Some(Err(fail(e)));
                    }
                }
            }
        }
    })
}
