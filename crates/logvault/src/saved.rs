//! Saved queries and functions (R-H1) and query history (R-H3): sealed documents of the
//! workspace, under the service key or, linked for `Query`, under the linked storage account's
//! key. A saved search with a function alias is callable by that alias from every KQL query of
//! the workspace.

use chrono::{DateTime, Utc};
use logvault_control::{DataSourceType, SavedSearch};
use logvault_kql::StoredFunction;
use serde::{Deserialize, Serialize};

use crate::artifacts::{DocKind, refused};
use crate::{Engine, EngineError};

/// How many queries the history of a workspace keeps (the oldest go first).
pub const QUERY_HISTORY_LIMIT: usize = 100;

/// A query run on a workspace, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryHistoryEntry {
    /// When it ran.
    pub time: DateTime<Utc>,
    /// Its text.
    pub query: String,
    /// `kql` or `sql`.
    pub language: String,
}

impl Engine {
    /// Saves (creates or replaces) a saved search of `workspace`. A function's definition must
    /// parse, and its alias must not be another saved search's.
    ///
    /// # Errors
    /// 400 for bad fields or a definition that does not parse; 409 for an alias taken; the
    /// linked storage account's key errors.
    pub async fn save_search(
        &self,
        workspace: &str,
        mut search: SavedSearch,
    ) -> Result<SavedSearch, EngineError> {
        search.check()?;
        if let Some((alias, definition)) = search.function_definition() {
            logvault_kql::check_stored_function(&StoredFunction { alias, definition })
                .map_err(|e| refused(400, format!("saved search {}: {e}", search.id)))?;
        }
        let docs = self.docs(workspace, DocKind::SavedSearches).await?;
        if let Some(alias) = &search.function_alias {
            for other in docs.all::<SavedSearch>().await? {
                if other.id != search.id && other.function_alias.as_ref() == Some(alias) {
                    return Err(refused(
                        409,
                        format!(
                            "function alias {alias} is already saved search {} of workspace \
                             {workspace}",
                            other.id
                        ),
                    ));
                }
            }
        }
        search.updated = self.now();
        docs.put(&search.id, &search).await?;
        Ok(search)
    }

    /// A saved search.
    ///
    /// # Errors
    /// 404 if there is none; key errors of the account it lives in.
    pub async fn saved_search(
        &self,
        workspace: &str,
        id: &str,
    ) -> Result<SavedSearch, EngineError> {
        logvault_control::check_artifact_name("saved search id", id)?;
        self.docs(workspace, DocKind::SavedSearches)
            .await?
            .get(id)
            .await?
            .ok_or_else(|| {
                refused(
                    404,
                    format!("Saved search {id} not found in workspace {workspace}"),
                )
            })
    }

    /// Every saved search of `workspace`, by id.
    ///
    /// # Errors
    /// Key errors of the account they live in; damaged documents.
    pub async fn saved_searches(&self, workspace: &str) -> Result<Vec<SavedSearch>, EngineError> {
        self.docs(workspace, DocKind::SavedSearches)
            .await?
            .all()
            .await
    }

    /// Deletes a saved search.
    ///
    /// # Errors
    /// 404 if there is none.
    pub async fn delete_saved_search(&self, workspace: &str, id: &str) -> Result<(), EngineError> {
        self.saved_search(workspace, id).await?;
        self.docs(workspace, DocKind::SavedSearches)
            .await?
            .delete(id)
            .await
    }

    /// The workspace's functions (saved searches with an alias), for KQL planning.
    ///
    /// # Errors
    /// As [`Engine::saved_searches`].
    pub async fn stored_functions(
        &self,
        workspace: &str,
    ) -> Result<Vec<StoredFunction>, EngineError> {
        Ok(self
            .saved_searches(workspace)
            .await?
            .iter()
            .filter_map(SavedSearch::function_definition)
            .map(|(alias, definition)| StoredFunction { alias, definition })
            .collect())
    }

    /// Records a query in the workspace's history (encrypted under the service key), keeping the
    /// last [`QUERY_HISTORY_LIMIT`]. Not kept while the workspace is linked for `Query` (R-H3):
    /// returns `false` then. Front ends call this; queries themselves write nothing.
    ///
    /// # Errors
    /// 404 for an unknown workspace; storage errors.
    pub async fn record_query(
        &self,
        workspace: &str,
        language: &str,
        query: &str,
    ) -> Result<bool, EngineError> {
        let ws = self.control().get_workspace(workspace)?;
        if ws.linked_for(DataSourceType::Query).is_some() {
            return Ok(false);
        }
        let docs = self.docs(workspace, DocKind::History).await?;
        let now = self.now();
        let id = format!("{}-{}", now.format("%Y%m%dT%H%M%S%.9fZ"), uuid_suffix());
        docs.put(
            &id,
            &QueryHistoryEntry {
                time: now,
                query: query.to_owned(),
                language: language.to_owned(),
            },
        )
        .await?;
        let ids = docs.ids().await?;
        if ids.len() > QUERY_HISTORY_LIMIT {
            for old in &ids[..ids.len() - QUERY_HISTORY_LIMIT] {
                docs.delete(old).await?;
            }
        }
        Ok(true)
    }

    /// The workspace's query history, newest first.
    ///
    /// # Errors
    /// 409 while the workspace is linked for `Query` (history is not kept then).
    pub async fn query_history(
        &self,
        workspace: &str,
    ) -> Result<Vec<QueryHistoryEntry>, EngineError> {
        let ws = self.control().get_workspace(workspace)?;
        if let Some(account) = ws.linked_for(DataSourceType::Query) {
            return Err(refused(
                409,
                format!(
                    "query history is not kept while workspace {workspace} is linked to storage \
                     account {account} for Query"
                ),
            ));
        }
        let mut out: Vec<QueryHistoryEntry> =
            self.docs(workspace, DocKind::History).await?.all().await?;
        out.reverse();
        Ok(out)
    }
}

/// A short random suffix, so two queries in the same nanosecond keep two entries.
pub(crate) fn uuid_suffix() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    id[..8].to_owned()
}
