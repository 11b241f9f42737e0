//! A short-lived cache of the catalog for queries (several nodes on one storage).
//!
//! Every query reads its workspace's table list and each table's latest manifest. On remote
//! storage those are round trips (a list and a get per table) that a hot query, whose segments
//! are all in the hot cache, otherwise spends most of its time on. With a refresh period set
//! (`Catalog::set_query_refresh`), a query may use what was read (or written by this process)
//! less than that period ago: another process's change is seen within the period, this
//! process's own changes at once. Only queries read through it
//! ([`Catalog::manifest_for_query`], [`Catalog::tables_for_query`]): writers, compaction,
//! retention and the scrub always read the storage. Off (`None`) by default.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::StoreError;
use crate::catalog::{Catalog, Manifest};

#[derive(Debug, Default)]
pub(crate) struct QueryCache {
    refresh: Option<Duration>,
    manifests: HashMap<(String, String), (Instant, Manifest)>,
    tables: HashMap<String, (Instant, Vec<String>)>,
}

/// The cache shared by a catalog's clones.
pub(crate) type SharedQueryCache = Arc<Mutex<QueryCache>>;

fn fresh(at: Instant, refresh: Option<Duration>) -> bool {
    refresh.is_some_and(|r| at.elapsed() < r)
}

impl Catalog {
    fn cache(&self) -> std::sync::MutexGuard<'_, QueryCache> {
        self.query_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How old what a query reads of the catalog may be (`None`: read the storage at every
    /// query, the default).
    pub fn set_query_refresh(&self, refresh: Option<Duration>) {
        let mut cache = self.cache();
        cache.refresh = refresh.filter(|r| !r.is_zero());
        cache.manifests.clear();
        cache.tables.clear();
    }

    /// Forgets what the cache holds: the next query reads the storage (a query that found a
    /// segment gone runs again on the catalog as it is now).
    pub fn forget_for_queries(&self) {
        let mut cache = self.cache();
        cache.manifests.clear();
        cache.tables.clear();
    }

    /// A table's latest manifest as a query may see it: at most the refresh period old.
    ///
    /// # Errors
    /// As [`Catalog::manifest`].
    pub async fn manifest_for_query(
        &self,
        workspace: &str,
        table: &str,
    ) -> Result<Manifest, StoreError> {
        {
            let cache = self.cache();
            if let Some((at, m)) = cache
                .manifests
                .get(&(workspace.to_owned(), table.to_owned()))
                && fresh(*at, cache.refresh)
            {
                return Ok(m.clone());
            }
        }
        let m = self.manifest(workspace, table).await?;
        self.remember(&m);
        Ok(m)
    }

    /// A workspace's tables as a query may see them: at most the refresh period old.
    ///
    /// # Errors
    /// As [`Catalog::tables`].
    pub async fn tables_for_query(&self, workspace: &str) -> Result<Vec<String>, StoreError> {
        {
            let cache = self.cache();
            if let Some((at, names)) = cache.tables.get(workspace)
                && fresh(*at, cache.refresh)
            {
                return Ok(names.clone());
            }
        }
        let names = self.tables(workspace).await?;
        let mut cache = self.cache();
        if cache.refresh.is_some() {
            cache
                .tables
                .insert(workspace.to_owned(), (Instant::now(), names.clone()));
        }
        Ok(names)
    }

    /// Keeps `m` (just read, or just written by this process) for queries; a newer version
    /// already kept wins.
    pub(crate) fn remember(&self, m: &Manifest) {
        let mut cache = self.cache();
        if cache.refresh.is_none() {
            return;
        }
        let key = (m.workspace.clone(), m.table.clone());
        if cache
            .manifests
            .get(&key)
            .is_some_and(|(_, kept)| kept.version > m.version)
        {
            return;
        }
        if let Some((_, names)) = cache.tables.get_mut(&m.workspace)
            && !names.contains(&m.table)
        {
            names.push(m.table.clone());
            names.sort();
        }
        cache.manifests.insert(key, (Instant::now(), m.clone()));
    }
}
