//! The engine's calls into the hot cache tier, for the key lifecycle (R-F3, R-F4).

use crate::Engine;

impl Engine {
    /// Removes a workspace's data from both tiers of the hot cache (revocation): memory
    /// holding it zeroized, its files deleted.
    pub(crate) async fn purge_hot_cache(&self, workspace: &str) {
        let report = self.inner.cache.purge_workspace(workspace);
        tracing::info!(workspace, ?report, "hot cache purged");
    }

    /// Loads a workspace's hot window into the hot cache again (key restored), in the
    /// background; its progress shows in status. A one-shot CLI that exits before it ends
    /// leaves the rest to be fetched by the next queries.
    pub(crate) async fn warm_hot_cache(&self, workspace: &str) {
        let _handle = self.inner.cache.warm(workspace);
        tracing::info!(workspace, "hot cache reload started");
    }
}
