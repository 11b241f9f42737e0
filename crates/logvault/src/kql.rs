//! KQL through the engine: the same query session (key gate, hot cache, pushdown) as SQL, with
//! the result's Kusto schema.

use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::DataFrame;
use logvault_kql::{KqlPlan, KustoSchema, PlanOptions};

use crate::{Engine, EngineError};

/// The result of a KQL query: its columns with their Kusto types, and its rows as a stream of
/// Arrow record batches (column `i` of every batch is `schema[i]`).
pub struct KqlResult {
    /// The result's columns and Kusto types.
    pub schema: KustoSchema,
    /// The visualization a `render` operator asked for, if any (it changes no rows).
    pub render: Option<String>,
    /// The rows.
    pub stream: SendableRecordBatchStream,
}

impl std::fmt::Debug for KqlResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KqlResult")
            .field("schema", &self.schema)
            .field("render", &self.render)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Plans `kql` on `workspace` without reading any data: the DataFusion plan and the
    /// result's Kusto schema. `now()` and `ago()` read the engine's clock.
    ///
    /// # Errors
    /// As [`Engine::query_session`]; [`EngineError::Kql`] for syntax and semantic errors (with
    /// line, column and a caret).
    pub async fn plan_kql(&self, workspace: &str, kql: &str) -> Result<KqlPlan, EngineError> {
        let session = self.query_session(workspace).await?;
        self.plan_in(&session, workspace, kql).await
    }

    /// Plans `kql` in `session` with the workspace's saved functions in scope (R-H1). If the
    /// functions cannot be read (a linked storage account's key is revoked), the query is
    /// planned without them, and if it then fails, the key error is the one returned.
    pub(crate) async fn plan_in(
        &self,
        session: &logvault_query::WorkspaceSession,
        workspace: &str,
        kql: &str,
    ) -> Result<KqlPlan, EngineError> {
        self.plan_kql_in(session, workspace, kql, &PlanOptions::at(self.now()))
            .await
    }

    /// Plans `kql` in `session` (of `workspace`) with `options` (the clock, a time range) and the
    /// workspace's saved functions in scope (R-H1): what the server's query API runs. If the
    /// functions cannot be read (a linked storage account's key is revoked), the query is
    /// planned without them, and if it then fails, the key error is the one returned.
    ///
    /// Other workspaces the query names with `workspace("name").Table` (a name, a
    /// `customerId` or an ARM resource id) are added to `session` first, each admitted by its
    /// key; a caller that authorises users checks them before
    /// ([`logvault_kql::referenced_workspaces`] lists them).
    ///
    /// # Errors
    /// [`EngineError::Kql`] for syntax and semantic errors; the functions' key errors; 404 for a
    /// `workspace()` that names no workspace, and a referenced workspace's key errors.
    pub async fn plan_kql_in(
        &self,
        session: &logvault_query::WorkspaceSession,
        workspace: &str,
        kql: &str,
        options: &PlanOptions,
    ) -> Result<KqlPlan, EngineError> {
        self.add_referenced_workspaces(session, kql).await?;
        let (functions, unreadable) = match self.stored_functions(workspace).await {
            Ok(f) => (f, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        match logvault_kql::plan_in_session_with_functions(
            session.context(),
            kql,
            &functions,
            options,
        )
        .await
        {
            Ok(plan) => Ok(plan),
            Err(e) => Err(unreadable.unwrap_or(EngineError::Kql(e))),
        }
    }

    /// Runs `kql` on `workspace`.
    ///
    /// # Errors
    /// As [`Engine::plan_kql`], and execution errors.
    pub async fn query_kql(&self, workspace: &str, kql: &str) -> Result<KqlResult, EngineError> {
        let session = self.query_session(workspace).await?;
        let plan = self.plan_in(&session, workspace, kql).await?;
        let df = DataFrame::new(session.context().state(), plan.plan);
        let stream = df
            .execute_stream()
            .await
            .map_err(logvault_query::QueryError::from)?;
        Ok(KqlResult {
            schema: plan.schema,
            render: plan.render,
            stream,
        })
    }
}
