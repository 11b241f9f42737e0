//! The engine's calls into the hot cache tier: the per-workspace hot window (R-F1). The key
//! lifecycle purges and reloads it itself (R-F3, R-F4).

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
}
