//! The hot cache tier of logvault (R-F1..R-F4).
//!
//! Two tiers, each bounded in bytes:
//! - the **disk tier** ([`CachedStore`], an `ObjectStore` wrapper the query engine reads
//!   through): whole segments fetched from storage, kept under the engine's `HOME/cache`,
//!   each sealed under a key derived from the *service* account's key whatever the workspace's
//!   key (R-F2), in a chunked format that serves range reads by decrypting only the chunks they
//!   cover. It survives restarts (a directory scan; corrupt files are dropped and counted, never
//!   served);
//! - the **memory tier**: hot segments decoded, each as one Arrow IPC buffer that is zeroized
//!   when let go, decoded once (zero-copy) into batches that queries share
//!   ([`HotSegment::read_as`]); promotions run on one low-priority thread.
//!
//! What is hot: segments in the workspace's hot window (14 days by default) and segments read
//! by recent queries. [`HotCache::purge_workspace`] empties both tiers of a workspace at
//! revocation (R-F3); [`HotCache::warm`] reloads its hot window in the background when its key
//! is back (R-F4). [`CountingStore`] counts what reaches storage, so hits can be proven.
//!
//! It must never: write a byte of segment data to disk that is not sealed under the service
//! key, serve a cache file that does not authenticate, serve a memory-tier segment whose
//! account key is not cached, or call the vault while a query reads. The cache file format is
//! specified in `docs/cache.md`.

mod activity;
mod cached_store;
mod config;
mod counting;
mod disk;
mod error;
mod file;
mod hot;
mod machine;
mod memory;
mod merged;
mod metrics;
mod promoter;
mod stamp;
mod warm;

pub use cached_store::CachedStore;
pub use config::{DEFAULT_DISK_BYTES, DEFAULT_MEMORY_BYTES, DEFAULT_RECENT_SECS, HotCacheConfig};
pub use counting::{AccountReads, CountingStore, ReadCounts};
pub use error::CacheError;
pub use file::{CACHE_FILE_VERSION, DATA_KEY_LABEL, META_KEY_LABEL};
pub use hot::{CachePurgeReport, HotCache, StartupScan, SweepReport, UnlistedReport};
pub use machine::{
    MEMORY_TIER_SHARE, MIN_DEFAULT_MEMORY_BYTES, available_memory_bytes, default_memory_bytes,
    memory_tier_bytes_for,
};
pub use memory::HotSegment;
pub use metrics::{CounterSnapshot, HotCacheStatus, WorkspaceCacheStatus};
pub use promoter::PROMOTION_THREAD_NAME;
pub use stamp::CatalogMark;
pub use warm::{WarmHandle, WarmProgress, WarmState};
