//! How segments come into the memory tier: a query's read or a new segment's admission starts a
//! background promotion (one decoded at a time, when queries and ingestion are quiet), and a
//! compaction's merged segment is built from its members' rows already there.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use logvault_store::{MergedSegments, SegmentLocation};

use super::{HotCache, lock};
use crate::CacheError;
use crate::memory::HotSegment;

impl HotCache {
    /// Tells the cache that a query reads `segments` (location and newest row time) from
    /// files: their times are kept for the hot window, and (with `promoteOnRead`) they are
    /// decoded into the memory tier in the background.
    pub fn note_read(&self, segments: impl IntoIterator<Item = (SegmentLocation, DateTime<Utc>)>) {
        self.inner.ctx.activity.mark();
        for (loc, max_time) in segments {
            self.inner.ctx.hints.insert(loc.clone(), max_time);
            if self.inner.config.promote_on_read {
                self.spawn_promotion(loc, max_time);
            }
        }
    }

    /// Tells the cache that other foreground work (an ingestion) is running: promotions wait
    /// for it to be quiet as they wait for queries.
    pub fn note_activity(&self) {
        self.inner.ctx.activity.mark();
    }

    /// Admits a newly written segment (R-F1: data ingested in the hot window): fetches it into
    /// the disk tier and, if `promoteOnRead` is on, the memory tier, in the background.
    pub fn admit(&self, loc: SegmentLocation, max_time: DateTime<Utc>) {
        if max_time < self.inner.now() - self.inner.hot_window(&loc.workspace) {
            return;
        }
        self.inner.ctx.hints.insert(loc.clone(), max_time);
        if self.inner.config.promote_on_read && self.inner.memory.capacity() > 0 {
            self.spawn_promotion(loc, max_time);
        } else if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let inner = Arc::clone(&self.inner);
            let generation = inner.ctx.generations.current(&loc.workspace);
            lock(&self.inner.tasks).spawn_on(
                async move {
                    if let Err(e) = inner.load_disk(&loc, Some(generation)).await {
                        tracing::debug!(segment = %loc, error = %e, "admission failed");
                    }
                },
                &handle,
            );
        }
    }

    /// A compaction replaced `merge.members` by `merge.segment`. When some members are in the
    /// memory tier, the merged segment is built from their rows there and the other members'
    /// files (still kept for the grace period), on a blocking thread in the turn promotions take
    /// (one segment built at a time), and takes their place, so
    /// hot data stays hot across a merge; otherwise it is admitted as new data
    /// ([`HotCache::admit`]).
    pub async fn adopt_merge(&self, merge: MergedSegments) {
        let inner = Arc::clone(&self.inner);
        {
            // The members' promotions still waiting would decode files no query reads again.
            let mut promoting = lock(&inner.promoting);
            for m in &merge.members {
                if let Some(replaced) = promoting.get_mut(m) {
                    *replaced = true;
                }
            }
        }
        let generation = inner.ctx.generations.current(&merge.segment.workspace);
        let turn = inner.turn().await;
        let parts = match inner.merge_parts(&merge, generation).await {
            Ok(Some(parts)) => parts,
            Ok(None) => return self.admit(merge.segment, merge.max_time),
            Err(e) => {
                tracing::debug!(segment = %merge.segment, error = %e, "reading a merged segment's members failed");
                return self.admit(merge.segment, merge.max_time);
            }
        };
        let adopted = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let adopted = inner.adopt_merge(&merge, parts, generation);
            (merge, adopted)
        })
        .await;
        match adopted {
            Ok((_, Ok(()))) => {}
            Ok((merge, Err(e))) => {
                tracing::debug!(segment = %merge.segment, error = %e, "building a merged segment from its members failed");
                self.admit(merge.segment, merge.max_time);
            }
            Err(e) => tracing::debug!(error = %e, "building a merged segment stopped"),
        }
    }

    fn spawn_promotion(&self, loc: SegmentLocation, max_time: DateTime<Utc>) {
        let inner = &self.inner;
        if inner.memory.capacity() == 0 || inner.memory.contains(&loc) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        match lock(&inner.promoting).entry(loc.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => return,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(false);
            }
        }
        let task_inner = Arc::clone(inner);
        // Decided now: a purge before the task runs (it waits for quiet) cancels it.
        let generation = inner.ctx.generations.current(&loc.workspace);
        let mut tasks = lock(&inner.tasks);
        while tasks.try_join_next().is_some() {}
        tasks.spawn_on(
            async move {
                if let Err(e) = task_inner
                    .load_memory_since(&loc, Some(max_time), generation)
                    .await
                {
                    tracing::debug!(segment = %loc, error = %e, "promotion to memory failed");
                }
                lock(&task_inner.promoting).remove(&loc);
            },
            &handle,
        );
    }

    /// Decodes `loc` into the memory tier now (reading it from the disk tier, or storage).
    ///
    /// # Errors
    /// [`CacheError::Storage`], [`CacheError::Decode`] (integrity errors included, and an
    /// account key that is not cached).
    pub async fn promote(
        &self,
        loc: &SegmentLocation,
        max_time: Option<DateTime<Utc>>,
    ) -> Result<Arc<HotSegment>, CacheError> {
        self.inner.load_memory(loc, max_time).await
    }

    /// Waits for the background promotions, admissions and cache file writes started so far.
    pub async fn settle(&self) {
        loop {
            let mut set = std::mem::take(&mut *lock(&self.inner.tasks));
            if set.is_empty() {
                break;
            }
            while set.join_next().await.is_some() {}
        }
        self.inner.ctx.writes_done().await;
    }
}
