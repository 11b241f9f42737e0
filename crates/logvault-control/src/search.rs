//! Search jobs (R-J1): the rule of where they may run and the record of one. The engine runs
//! them and keeps their records (sealed, with the workspace's other artifacts).

use chrono::{DateTime, Utc};
use logvault_core::NameKind;
use serde::{Deserialize, Serialize};

use crate::{ControlError, ControlPlane, rules};

/// The suffix of a search job's result table.
pub const SEARCH_TABLE_SUFFIX: &str = "_SRCH";

/// Where a search job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SearchJobStatus {
    /// Created, not started.
    Queued,
    /// Running.
    InProgress,
    /// Finished: its result table holds every row found.
    Succeeded,
    /// Cancelled: its result table holds the rows found before.
    Cancelled,
    /// Failed (the error says why).
    Failed,
}

impl SearchJobStatus {
    /// Whether the job has stopped.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Cancelled | Self::Failed)
    }
}

/// A search job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchJob {
    /// Its name; the result table is `<name>_SRCH`.
    pub name: String,
    /// The workspace.
    pub workspace: String,
    /// The table searched.
    pub table: String,
    /// The KQL query over the table.
    pub query: String,
    /// Start of the time range searched (inclusive).
    pub start: DateTime<Utc>,
    /// End of the time range searched (exclusive).
    pub end: DateTime<Utc>,
    /// The result table.
    pub result_table: String,
    /// Where it is.
    pub status: SearchJobStatus,
    /// Cancellation was asked for.
    pub cancel_requested: bool,
    /// Rows written to the result table so far.
    pub rows_written: u64,
    /// Progress, 0 to 100.
    pub percent_complete: u8,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it stopped.
    pub finished: Option<DateTime<Utc>>,
}

/// Checks a search job's names: the job name makes a valid table name with `_SRCH`.
///
/// # Errors
/// 400 naming the bad name.
pub fn check_search_job_names(name: &str, table: &str) -> Result<String, ControlError> {
    rules::name(NameKind::Table, table)?;
    let result = format!("{name}{SEARCH_TABLE_SUFFIX}");
    rules::name(NameKind::Table, &result)?;
    Ok(result)
}

impl ControlPlane {
    /// R-J1: a search job may run on `workspace` only if its data is not under a customer key
    /// (as the seed says, search jobs aren't supported with customer-managed keys).
    ///
    /// # Errors
    /// 404 for an unknown workspace; 400 for a workspace linked to a cluster with a customer
    /// key, saying why.
    pub fn check_search_job_allowed(&self, workspace: &str) -> Result<(), ControlError> {
        let (state, _) = self.snapshot()?;
        let ws = state
            .workspaces
            .iter()
            .find(|w| w.name == workspace && w.deleted_at.is_none())
            .ok_or_else(|| rules::workspace_not_found(workspace))?;
        let keyed = ws.cluster.as_ref().and_then(|c| {
            state
                .clusters
                .iter()
                .find(|k| &k.name == c && k.is_active())
                .and_then(|k| k.key.as_ref().map(|key| (c, key)))
        });
        match keyed {
            Some((cluster, key)) => Err(ControlError::bad_request(format!(
                "Search jobs aren't supported in the Customer-managed key scenario: workspace \
                 {workspace} is linked to cluster {cluster}, whose data is encrypted with \
                 customer key {} of {}",
                key.key_name, key.key_vault_uri
            ))),
            None => Ok(()),
        }
    }
}
