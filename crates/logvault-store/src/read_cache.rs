//! Memory caches of what a query decrypts and would otherwise decrypt again on every query:
//! - **footers**: a segment's decoded Parquet metadata (footer and page index), decrypted with
//!   the segment's data key. It holds the file's column statistics in plaintext (minima and
//!   maxima of row groups and pages) and the segment's file decryptor (the data keys of its
//!   columns), so it is as sensitive as the account key it came from.
//! - **outer plaintext**: for double-encrypted accounts, the infrastructure layer's plaintext of
//!   segment chunks (64 KiB by default). That is still ciphertext under the segment's Parquet
//!   keys: a warm read skips the second cipher and still decrypts every page with the data key.
//!
//! Both are bounded (bytes, least recently used out first), in memory only (never written to
//! disk), and keyed by account: [`ReadCaches::wipe`] empties an account's entries, and the
//! keyring calls it wherever it evicts the account's key ([`crate::Keyring::evict`]: revocation,
//! removal). A wipe moves the account to a new generation first, and an entry is served only
//! under the generation it was filled in, so a read that began before a revocation cannot put
//! back anything that a later query would use. A footer is also served only while the account's
//! key is in the keyring's cache (the gate passes first anyway: DataFusion asks the encryption
//! factory for the file's keys before its metadata, and that fails without the account key).
//!
//! Entries name the object's version: a footer by its path, size and key epoch (a compaction
//! writes a new segment under a new id and deletes the old one), outer chunks by path and the
//! stored object's e-tag (or size and modification time), so a replaced object is never served
//! stale.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use parquet::file::metadata::ParquetMetaData;

use crate::layout::AccountId;
use crate::needles::NeedleIndex;

/// Default bound of the footer cache (bytes of decoded metadata).
pub const DEFAULT_FOOTER_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Default bound of the outer plaintext cache (bytes of infrastructure-layer plaintext).
pub const DEFAULT_OUTER_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// Bounds of the read caches; 0 turns a cache off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCacheConfig {
    /// Bytes of decoded segment metadata held at most.
    pub footer_bytes: u64,
    /// Bytes of infrastructure-layer plaintext held at most.
    pub outer_bytes: u64,
}

impl Default for ReadCacheConfig {
    fn default() -> Self {
        Self {
            footer_bytes: DEFAULT_FOOTER_CACHE_BYTES,
            outer_bytes: DEFAULT_OUTER_CACHE_BYTES,
        }
    }
}

/// Counters of the read caches (for tests, benchmarks and status).
#[derive(Debug, Default)]
pub struct ReadCacheStats {
    /// Footers served from the cache.
    pub footer_hits: AtomicU64,
    /// Footers decrypted and decoded (cache misses, and every read with the cache off).
    pub footer_decrypts: AtomicU64,
    /// Outer-layer chunks served from the cache.
    pub outer_hits: AtomicU64,
    /// Outer-layer chunks decrypted.
    pub outer_decrypts: AtomicU64,
    /// Wipes of an account's entries.
    pub wipes: AtomicU64,
}

/// Which footer: the segment's routed path, its size, and the account key epoch it was
/// decrypted under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FooterKey {
    pub(crate) account: AccountId,
    pub(crate) path: String,
    pub(crate) size: u64,
    pub(crate) epoch: u32,
}

/// Which version of a stored object an outer chunk belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ObjectVersion {
    pub(crate) account: AccountId,
    pub(crate) path: String,
    /// The e-tag, or the size and modification time when the backend gives none.
    pub(crate) version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ChunkKey {
    object: Arc<ObjectVersion>,
    chunk: u64,
}

/// A cached footer: the decoded metadata, and its needle index once a lookup decoded it (held
/// and wiped with the footer; the entry is weighed again then).
pub(crate) struct CachedFooter {
    pub(crate) metadata: Arc<ParquetMetaData>,
    pub(crate) needles: OnceLock<Arc<NeedleIndex>>,
}

impl CachedFooter {
    fn memory_size(&self) -> usize {
        self.metadata.memory_size() + self.needles.get().map_or(0, |n| n.memory_size())
    }
}

#[derive(Clone)]
struct Tagged<T> {
    generation: u64,
    value: T,
}

/// The footer and outer plaintext caches of one store, keyed by account.
pub struct ReadCaches {
    footers: Option<moka::sync::Cache<FooterKey, Tagged<Arc<CachedFooter>>>>,
    outer: Option<moka::sync::Cache<ChunkKey, Tagged<Bytes>>>,
    generations: Mutex<HashMap<AccountId, u64>>,
    next_generation: AtomicU64,
    stats: ReadCacheStats,
}

impl std::fmt::Debug for ReadCaches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCaches")
            .field(
                "footers",
                &self.footers.as_ref().map(moka::sync::Cache::weighted_size),
            )
            .field(
                "outer",
                &self.outer.as_ref().map(moka::sync::Cache::weighted_size),
            )
            .finish_non_exhaustive()
    }
}

fn weight(bytes: usize) -> u32 {
    u32::try_from(bytes.max(1)).unwrap_or(u32::MAX)
}

impl ReadCaches {
    /// Caches bounded by `config`.
    pub fn new(config: ReadCacheConfig) -> Self {
        let footers = (config.footer_bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(config.footer_bytes)
                .weigher(|_, v: &Tagged<Arc<CachedFooter>>| weight(v.value.memory_size()))
                .support_invalidation_closures()
                .build()
        });
        let outer = (config.outer_bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(config.outer_bytes)
                .weigher(|_, v: &Tagged<Bytes>| weight(v.value.len()))
                .support_invalidation_closures()
                .build()
        });
        Self {
            footers,
            outer,
            generations: Mutex::new(HashMap::new()),
            next_generation: AtomicU64::new(1),
            stats: ReadCacheStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &ReadCacheStats {
        &self.stats
    }

    /// Bytes held now (footers, outer plaintext), after pending evictions are applied.
    pub fn held_bytes(&self) -> (u64, u64) {
        let footers = self.footers.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.weighted_size()
        });
        let outer = self.outer.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.weighted_size()
        });
        (footers, outer)
    }

    /// Entries held now for `account` (footers, outer chunks).
    pub fn held_entries(&self, account: &AccountId) -> (usize, usize) {
        let footers = self.footers.as_ref().map_or(0, |c| {
            c.iter().filter(|(k, _)| &k.account == account).count()
        });
        let outer = self.outer.as_ref().map_or(0, |c| {
            c.iter()
                .filter(|(k, _)| &k.object.account == account)
                .count()
        });
        (footers, outer)
    }

    /// The account's current generation (0 until its first wipe).
    pub(crate) fn generation(&self, account: &AccountId) -> u64 {
        self.generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(account)
            .copied()
            .unwrap_or(0)
    }

    /// Drops every entry of `account` (its key was evicted: revocation or removal). Entries
    /// being filled by reads that started before are not served afterwards either.
    pub fn wipe(&self, account: &AccountId) {
        let generation = self.next_generation.fetch_add(1, Ordering::SeqCst);
        self.generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(account.clone(), generation);
        self.stats.wipes.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = &self.footers {
            let a = account.clone();
            if c.invalidate_entries_if(move |k, _| k.account == a).is_err() {
                c.invalidate_all();
            }
            c.run_pending_tasks();
        }
        if let Some(c) = &self.outer {
            let a = account.clone();
            if c.invalidate_entries_if(move |k, _| k.object.account == a)
                .is_err()
            {
                c.invalidate_all();
            }
            c.run_pending_tasks();
        }
    }

    /// Whether the footer cache is on.
    pub(crate) fn caches_footers(&self) -> bool {
        self.footers.is_some()
    }

    /// The cached footer of `key`, if it was filled in the account's current generation.
    pub(crate) fn footer(&self, key: &FooterKey) -> Option<Arc<ParquetMetaData>> {
        let cache = self.footers.as_ref()?;
        let hit = cache.get(key)?;
        if hit.generation != self.generation(&key.account) {
            cache.invalidate(key);
            return None;
        }
        self.stats.footer_hits.fetch_add(1, Ordering::Relaxed);
        Some(Arc::clone(&hit.value.metadata))
    }

    /// The cached entry of a footer (not counted as a hit), for its needle index.
    pub(crate) fn footer_entry(&self, key: &FooterKey) -> Option<(Arc<CachedFooter>, u64)> {
        let cache = self.footers.as_ref()?;
        let hit = cache.get(key)?;
        (hit.generation == self.generation(&key.account)).then_some((hit.value, hit.generation))
    }

    /// Puts `entry` back after its needle index was decoded, so that it is weighed with it
    /// (unless the account was wiped since, or the entry replaced).
    pub(crate) fn reweigh_footer(
        &self,
        key: &FooterKey,
        entry: Arc<CachedFooter>,
        generation: u64,
    ) {
        let Some(cache) = &self.footers else {
            return;
        };
        let current = cache.get(key);
        if current.is_some_and(|c| Arc::ptr_eq(&c.value, &entry) && c.generation == generation) {
            cache.insert(
                key.clone(),
                Tagged {
                    generation,
                    value: entry,
                },
            );
            if self.generation(&key.account) != generation {
                cache.invalidate(key);
            }
        }
    }

    /// Counts a footer decrypted and keeps it under `key` (if any), unless the account was
    /// wiped since `generation` (read before the footer was fetched).
    pub(crate) fn put_footer(
        &self,
        key: Option<FooterKey>,
        generation: u64,
        metadata: Option<Arc<ParquetMetaData>>,
    ) {
        self.stats.footer_decrypts.fetch_add(1, Ordering::Relaxed);
        let (Some(cache), Some(key), Some(value)) = (&self.footers, key, metadata) else {
            return;
        };
        let account = key.account.clone();
        let value = Arc::new(CachedFooter {
            metadata: value,
            needles: OnceLock::new(),
        });
        cache.insert(key.clone(), Tagged { generation, value });
        // A wipe between the fetch and here: drop what was just put back.
        if self.generation(&account) != generation {
            cache.invalidate(&key);
        }
    }

    /// Whether the outer plaintext cache is on.
    pub(crate) fn caches_outer(&self) -> bool {
        self.outer.is_some()
    }

    /// The cached plaintext of `chunk` of `object`, if filled in the account's generation.
    pub(crate) fn outer_chunk(
        &self,
        object: &Arc<ObjectVersion>,
        chunk: u64,
        generation: u64,
    ) -> Option<Bytes> {
        let cache = self.outer.as_ref()?;
        let key = ChunkKey {
            object: Arc::clone(object),
            chunk,
        };
        let hit = cache.get(&key)?;
        if hit.generation != generation {
            cache.invalidate(&key);
            return None;
        }
        self.stats.outer_hits.fetch_add(1, Ordering::Relaxed);
        Some(hit.value)
    }

    /// Counts `count` outer chunks decrypted.
    pub(crate) fn count_outer_decrypts(&self, count: u64) {
        self.stats
            .outer_decrypts
            .fetch_add(count, Ordering::Relaxed);
    }

    /// Keeps the plaintext of `chunks` (first index `first`) of `object`, unless the account was
    /// wiped since `generation`.
    pub(crate) fn put_outer_chunks(
        &self,
        object: &Arc<ObjectVersion>,
        first: u64,
        chunks: Vec<Bytes>,
        generation: u64,
    ) {
        let Some(cache) = &self.outer else {
            return;
        };
        let keys: Vec<ChunkKey> = (first..)
            .zip(chunks)
            .map(|(chunk, value)| {
                let key = ChunkKey {
                    object: Arc::clone(object),
                    chunk,
                };
                cache.insert(key.clone(), Tagged { generation, value });
                key
            })
            .collect();
        if self.generation(&object.account) != generation {
            for k in &keys {
                cache.invalidate(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(account: &AccountId, path: &str) -> Arc<ObjectVersion> {
        Arc::new(ObjectVersion {
            account: account.clone(),
            path: path.to_owned(),
            version: "1".to_owned(),
        })
    }

    #[test]
    fn a_wipe_drops_the_account_and_refuses_fills_begun_before_it() {
        let caches = ReadCaches::new(ReadCacheConfig::default());
        let a = AccountId::cluster("prod1").unwrap();
        let b = AccountId::cluster("prod2").unwrap();
        let (oa, ob) = (object(&a, "x"), object(&b, "x"));
        let g = caches.generation(&a);
        caches.put_outer_chunks(&oa, 0, vec![Bytes::from_static(b"aa")], g);
        caches.put_outer_chunks(&ob, 0, vec![Bytes::from_static(b"bb")], g);
        assert_eq!(caches.outer_chunk(&oa, 0, g).as_deref(), Some(&b"aa"[..]));
        caches.wipe(&a);
        assert_eq!(caches.held_entries(&a), (0, 0));
        assert_eq!(caches.held_entries(&b), (0, 1));
        let g2 = caches.generation(&a);
        assert_ne!(g, g2);
        assert!(caches.outer_chunk(&oa, 0, g2).is_none());
        // A read that began before the wipe puts its chunk back: not kept.
        caches.put_outer_chunks(&oa, 0, vec![Bytes::from_static(b"aa")], g);
        assert_eq!(caches.held_entries(&a), (0, 0));
        assert!(caches.outer_chunk(&oa, 0, g2).is_none());
        assert_eq!(caches.outer_chunk(&ob, 0, 0).as_deref(), Some(&b"bb"[..]));
    }

    #[test]
    fn the_outer_cache_stays_within_its_bound() {
        let caches = ReadCaches::new(ReadCacheConfig {
            footer_bytes: 0,
            outer_bytes: 64 * 1024,
        });
        let a = AccountId::cluster("prod1").unwrap();
        let o = object(&a, "x");
        for i in 0..64u64 {
            caches.put_outer_chunks(&o, i, vec![Bytes::from(vec![0u8; 4096])], 0);
        }
        let (_, outer) = caches.held_bytes();
        assert!(outer <= 64 * 1024, "{outer}");
        assert!(outer > 0);
        assert!(!caches.caches_footers());
    }
}
