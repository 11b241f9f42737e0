//! Stamps: a process-wide counter that orders the moments entries are made against the
//! moments catalogs are read, so that [`crate::HotCache::forget_unlisted`] drops only entries
//! made before the catalog it was given was read.
//!
//! Every entry of either tier is made for a segment that a committed catalog version listed
//! (ingestion admits after its commit; queries and reloads read what a catalog listed), so an
//! entry stamped before a catalog read began was listed by a version at most as new as the one
//! read: if the catalog read no longer lists it, it was removed (compaction, retention) and can
//! go. An entry stamped later may belong to a version newer than the one read, and stays.

use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A stamp later than every stamp handed out before.
pub(crate) fn next() -> u64 {
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// A mark taken before a catalog is read (see [`crate::HotCache::catalog_mark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CatalogMark(pub(crate) u64);

impl CatalogMark {
    pub(crate) fn now() -> Self {
        Self(next())
    }

    /// Whether an entry with `stamp` was made before this mark.
    pub(crate) fn is_after(self, stamp: u64) -> bool {
        stamp < self.0
    }
}
