//! The engine's calls into the hot cache tier: for the key lifecycle (R-F3, R-F4) and the
//! per-workspace hot window (R-F1).

use chrono::Duration;
use logvault_control::Workspace;

use crate::{Engine, EngineError};

impl Engine {
    /// Sets how many days of `workspace`'s newest data the hot cache keeps (R-F1: 14 days by
    /// default, configurable per workspace); `None` goes back to the home's default. Kept with
    /// the workspace, so every process that opens the home applies it.
    ///
    /// # Errors
    /// [`EngineError::Control`]: 404 for a missing workspace, 400 outside 1 to 730 days.
    pub fn set_hot_window(
        &self,
        workspace: &str,
        days: Option<u32>,
    ) -> Result<Workspace, EngineError> {
        let ws = self.control().set_workspace_hot_window(workspace, days)?;
        self.apply_hot_window(&ws);
        Ok(ws)
    }

    /// Gives the hot cache `ws`'s window.
    pub(crate) fn apply_hot_window(&self, ws: &Workspace) {
        match ws.hot_window_days {
            Some(days) => self
                .inner
                .cache
                .set_hot_window(&ws.name, Duration::days(i64::from(days))),
            None => self.inner.cache.reset_hot_window(&ws.name),
        }
    }

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
