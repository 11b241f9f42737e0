//! The scrub through the engine: `logvault table verify`.

use std::collections::BTreeMap;

use logvault_store::{VerifyProgress, VerifyReport};

use crate::{Engine, EngineError};

impl Engine {
    /// Reads and authenticates every module of every segment and every catalog version of
    /// `workspace` (or only `table`), and reports each damaged or missing segment by name
    /// (`Store::verify_workspace`). Segments under a key that is revoked, or that cannot be had
    /// now, are skipped and counted: the key lifecycle is honoured, a scrub never reads what a
    /// query could not. Nothing is written, and the write-ahead log is not replayed.
    ///
    /// # Errors
    /// 404 for a missing workspace; catalog or storage failures other than damage (damage is in
    /// the report).
    pub async fn verify(
        &self,
        workspace: &str,
        table: Option<&str>,
        progress: &mut (dyn FnMut(VerifyProgress) + Send),
    ) -> Result<VerifyReport, EngineError> {
        self.control().get_workspace(workspace)?;
        let mut refused = BTreeMap::new();
        for account in self.store().account_ids().await? {
            if let Err(e) = self.admit_account(&account).await {
                refused.insert(account, e.to_string());
            }
        }
        Ok(self
            .store()
            .verify_workspace(workspace, table, &refused, progress)
            .await?)
    }
}
