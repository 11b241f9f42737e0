//! Counters of the hot cache, in total and per workspace, and the snapshots `logvault status`
//! shows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::counting::ReadCounts;
use crate::warm::WarmProgress;

/// One set of counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) memory_hits: AtomicU64,
    pub(crate) memory_misses: AtomicU64,
    pub(crate) disk_hits: AtomicU64,
    pub(crate) disk_misses: AtomicU64,
    pub(crate) memory_evictions: AtomicU64,
    pub(crate) memory_refused: AtomicU64,
    pub(crate) disk_evictions: AtomicU64,
    pub(crate) corrupt_dropped: AtomicU64,
    pub(crate) purges: AtomicU64,
    pub(crate) purged_bytes: AtomicU64,
    pub(crate) promotions: AtomicU64,
    pub(crate) promotion_failures: AtomicU64,
    pub(crate) promotions_skipped: AtomicU64,
    pub(crate) merges_adopted: AtomicU64,
}

/// Which counter to move.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    MemoryHit,
    MemoryMiss,
    DiskHit,
    DiskMiss,
    MemoryEviction,
    MemoryRefused,
    DiskEviction,
    Corrupt,
    Promotion,
    PromotionFailure,
    PromotionSkipped,
    MergeAdopted,
}

impl Counters {
    fn counter(&self, event: Event) -> &AtomicU64 {
        match event {
            Event::MemoryHit => &self.memory_hits,
            Event::MemoryMiss => &self.memory_misses,
            Event::DiskHit => &self.disk_hits,
            Event::DiskMiss => &self.disk_misses,
            Event::MemoryEviction => &self.memory_evictions,
            Event::MemoryRefused => &self.memory_refused,
            Event::DiskEviction => &self.disk_evictions,
            Event::Corrupt => &self.corrupt_dropped,
            Event::Promotion => &self.promotions,
            Event::PromotionFailure => &self.promotion_failures,
            Event::PromotionSkipped => &self.promotions_skipped,
            Event::MergeAdopted => &self.merges_adopted,
        }
    }
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// The counters of a cache: totals and per workspace.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    total: Counters,
    workspaces: Mutex<HashMap<String, Arc<Counters>>>,
    /// Bytes of plaintext memory-tier buffers zeroized (on eviction, purge or drop).
    pub(crate) zeroized_bytes: Arc<AtomicU64>,
    /// Bytes of plaintext memory-tier buffers made (their capacity); less `zeroized_bytes`,
    /// the buffers still alive, in the tier or held by queries after it let them go.
    pub(crate) allocated_bytes: Arc<AtomicU64>,
}

impl Metrics {
    fn workspace(&self, ws: &str) -> Arc<Counters> {
        let mut map = self
            .workspaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(ws.to_owned()).or_default())
    }

    /// Counts `event` for workspace `ws`.
    pub(crate) fn add(&self, ws: &str, event: Event, n: u64) {
        self.total.counter(event).fetch_add(n, Ordering::Relaxed);
        self.workspace(ws)
            .counter(event)
            .fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a purge of `bytes` in workspace `ws`.
    pub(crate) fn purged(&self, ws: &str, bytes: u64) {
        for c in [&self.total, &*self.workspace(ws)] {
            c.purges.fetch_add(1, Ordering::Relaxed);
            c.purged_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    pub(crate) fn totals(&self) -> CounterSnapshot {
        CounterSnapshot::of(&self.total)
    }

    pub(crate) fn of_workspace(&self, ws: &str) -> CounterSnapshot {
        CounterSnapshot::of(&self.workspace(ws))
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterSnapshot {
    /// Reads served from either tier: memory-tier segment hits plus disk-tier read requests.
    pub hits: u64,
    /// Reads that went to storage (disk-tier misses).
    pub misses: u64,
    /// Segments a query found decoded in memory.
    pub memory_hits: u64,
    /// Segments a query did not find in memory.
    pub memory_misses: u64,
    /// Read requests served from a disk-tier file.
    pub disk_hits: u64,
    /// Objects fetched from storage because no disk-tier file held them.
    pub disk_misses: u64,
    /// Entries evicted from either tier by its bound (or its admission policy).
    pub evictions: u64,
    /// Entries evicted from the memory tier (refused ones included).
    pub memory_evictions: u64,
    /// Segments decoded for the memory tier that it did not keep: its admission policy refused
    /// them when full (or they were larger than its bound). The decoding was wasted.
    pub memory_refused: u64,
    /// Entries evicted from the disk tier.
    pub disk_evictions: u64,
    /// Corrupt cache files found, dropped and fetched again (never served).
    pub corrupt_dropped: u64,
    /// Purges (R-F3).
    pub purges: u64,
    /// Bytes removed by purges, both tiers.
    pub purged_bytes: u64,
    /// Segments decoded into the memory tier.
    pub promotions: u64,
    /// Segments that could not be decoded into the memory tier (key unavailable, integrity).
    pub promotion_failures: u64,
    /// Promotions not run because a compaction replaced their segment while they waited.
    pub promotions_skipped: u64,
    /// Segments a compaction wrote that the memory tier built from the hot segments they
    /// replaced, instead of decoding them from their files.
    pub merges_adopted: u64,
}

impl CounterSnapshot {
    fn of(c: &Counters) -> Self {
        let (mh, dh, dm) = (get(&c.memory_hits), get(&c.disk_hits), get(&c.disk_misses));
        let (me, de) = (get(&c.memory_evictions), get(&c.disk_evictions));
        Self {
            hits: mh + dh,
            misses: dm,
            memory_hits: mh,
            memory_misses: get(&c.memory_misses),
            disk_hits: dh,
            disk_misses: dm,
            evictions: me + de,
            memory_evictions: me,
            memory_refused: get(&c.memory_refused),
            disk_evictions: de,
            corrupt_dropped: get(&c.corrupt_dropped),
            purges: get(&c.purges),
            purged_bytes: get(&c.purged_bytes),
            promotions: get(&c.promotions),
            promotion_failures: get(&c.promotion_failures),
            promotions_skipped: get(&c.promotions_skipped),
            merges_adopted: get(&c.merges_adopted),
        }
    }
}

/// The state of the whole cache, for `logvault status` and the benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HotCacheStatus {
    /// Bytes held by the memory tier (decoded segments).
    pub memory_bytes: u64,
    /// Segments held by the memory tier.
    pub memory_entries: u64,
    /// The memory tier's bound.
    pub memory_capacity_bytes: u64,
    /// Bytes of disk-tier files.
    pub disk_bytes: u64,
    /// Disk-tier files.
    pub disk_entries: u64,
    /// The disk tier's bound.
    pub disk_capacity_bytes: u64,
    /// Bytes of plaintext memory-tier buffers zeroized so far.
    pub zeroized_bytes: u64,
    /// Bytes of the memory tier's plaintext buffers alive now: those it holds (`memoryBytes`)
    /// and those it let go that a query still reads (freed when that query ends).
    pub memory_live_bytes: u64,
    /// Promotions asked for and not finished: waiting for quiet, fetching, queued for the
    /// promotion thread or decoding.
    pub promotions_pending: u64,
    /// The counters.
    #[serde(flatten)]
    pub counters: CounterSnapshot,
    /// What reached storage through the cache.
    pub storage_reads: ReadCounts,
    /// Reloads, latest per workspace.
    pub warm: Vec<WarmProgress>,
}

/// The state of the cache for one workspace (`hotCache` in `logvault status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceCacheStatus {
    /// The workspace.
    pub workspace: String,
    /// Its hot window in seconds.
    pub hot_window_secs: i64,
    /// Bytes of its segments in the memory tier.
    pub memory_bytes: u64,
    /// Its segments in the memory tier.
    pub memory_entries: u64,
    /// Bytes of its disk-tier files.
    pub disk_bytes: u64,
    /// Its disk-tier files.
    pub disk_entries: u64,
    /// Its counters.
    #[serde(flatten)]
    pub counters: CounterSnapshot,
    /// Its latest reload, if any.
    pub warm: Option<WarmProgress>,
}
