//! Queries through the engine: a DataFusion session over one workspace, gated by its keys.

use async_trait::async_trait;
use datafusion::physical_plan::SendableRecordBatchStream;
use logvault_query::{KeyGate, QueryError, SessionOptions, WorkspaceSession};
use logvault_store::AccountId;

use crate::{Engine, EngineError};

/// Admits a storage account when the key lifecycle says its key may be used (R-G2, R-B6).
#[derive(Debug, Clone)]
struct LifecycleGate {
    engine: Engine,
}

#[async_trait]
impl KeyGate for LifecycleGate {
    async fn admit(&self, workspace: &str, account: &AccountId) -> Result<(), QueryError> {
        let refuse = |e: EngineError| QueryError::KeyUnavailable {
            workspace: workspace.to_owned(),
            account: account.to_string(),
            reason: e.to_string(),
        };
        // Opening the account puts it on the router the query reads through.
        self.engine
            .store()
            .open_account(account, None)
            .await
            .map_err(|e| refuse(e.into()))?;
        self.engine
            .admit_account(account)
            .await
            .map_err(|e| QueryError::KeyUnavailable {
                workspace: workspace.to_owned(),
                account: account.to_string(),
                reason: e.to_string(),
            })
    }
}

impl Engine {
    /// A query session on `workspace`: its tables registered under their names, every storage
    /// account its data is in admitted by the key lifecycle before anything is read. A
    /// workspace linked to a cluster whose key is revoked cannot be queried, even if all its
    /// data so far is under the service key.
    ///
    /// # Errors
    /// 404 for a missing workspace; [`QueryError::KeyUnavailable`] naming the workspace, the
    /// cluster and the key; catalog errors.
    pub async fn query_session(&self, workspace: &str) -> Result<WorkspaceSession, EngineError> {
        let gate = LifecycleGate {
            engine: self.clone(),
        };
        self.admit_workspace(&gate, workspace).await?;
        let mut options = SessionOptions::at(self.now());
        options.runtime = Some(self.inner.runtime.clone());
        Ok(WorkspaceSession::open_with_cache(
            self.store().clone(),
            workspace,
            &options,
            &gate,
            Some(&self.inner.cache),
        )
        .await?)
    }

    /// A session over several workspaces, for a cross-workspace query: each table name is the
    /// union of that table in every one of `workspaces` (by column name), with a `TenantId`
    /// column holding the workspace's id (its `customerId`). Each workspace is recovered and
    /// admitted as [`Engine::query_session`] does: one revoked key refuses the whole query.
    ///
    /// # Errors
    /// As [`Engine::query_session`], for any of the workspaces.
    pub async fn query_session_across(
        &self,
        workspaces: &[String],
    ) -> Result<WorkspaceSession, EngineError> {
        let gate = LifecycleGate {
            engine: self.clone(),
        };
        let mut pairs = Vec::with_capacity(workspaces.len());
        for workspace in workspaces {
            let ws = self.admit_workspace(&gate, workspace).await?;
            if !pairs
                .iter()
                .any(|(name, _): &(String, String)| name == workspace)
            {
                pairs.push((workspace.clone(), ws.customer_id));
            }
        }
        let mut options = SessionOptions::at(self.now());
        options.runtime = Some(self.inner.runtime.clone());
        Ok(WorkspaceSession::open_across(
            self.store().clone(),
            &pairs,
            &options,
            &gate,
            Some(&self.inner.cache),
        )
        .await?)
    }

    /// The workspace `reference` names: its name, its `customerId` (a GUID, any case) or its
    /// ARM resource id (`/subscriptions/.../workspaces/NAME`), as `workspace("...")` in KQL and
    /// the query API's `workspaces` list accept.
    ///
    /// # Errors
    /// 404 naming the reference when no workspace matches; state read errors.
    pub fn workspace_by_reference(
        &self,
        reference: &str,
    ) -> Result<logvault_control::Workspace, EngineError> {
        match self.find_workspace(reference)? {
            Some(ws) => Ok(ws),
            // The control plane's own 404, naming the workspace.
            None => Ok(self.control().get_workspace(reference)?),
        }
    }

    /// As [`Engine::workspace_by_reference`], `None` when no workspace matches.
    ///
    /// # Errors
    /// State read errors.
    pub fn find_workspace(
        &self,
        reference: &str,
    ) -> Result<Option<logvault_control::Workspace>, EngineError> {
        let name = match reference.rsplit_once("/workspaces/") {
            Some((_, name)) if reference.starts_with('/') => name.trim_end_matches('/'),
            _ => reference,
        };
        Ok(self
            .control()
            .list_workspaces()?
            .into_iter()
            .find(|w| w.name == name || w.customer_id.eq_ignore_ascii_case(name)))
    }

    /// Makes the workspaces `kql` names with `workspace("...")` readable in `session`: each is
    /// resolved ([`Engine::workspace_by_reference`]), recovered and admitted by its key as
    /// [`Engine::query_session`] does (a revoked key refuses the query), and its tables are
    /// registered under the reference as written, with a `TenantId` column.
    ///
    /// # Errors
    /// 404 for a reference to no workspace; key and catalog errors as for a session.
    pub(crate) async fn add_referenced_workspaces(
        &self,
        session: &WorkspaceSession,
        kql: &str,
    ) -> Result<(), EngineError> {
        let references = match logvault_kql::referenced_workspaces(kql) {
            Ok(r) => r,
            // The planner reports the same lexical error with its position.
            Err(_) => return Ok(()),
        };
        let gate = LifecycleGate {
            engine: self.clone(),
        };
        for reference in references {
            let ws = self.workspace_by_reference(&reference)?;
            self.admit_workspace(&gate, &ws.name).await?;
            session
                .add_workspace_as(
                    self.store().clone(),
                    &ws.name,
                    &reference,
                    &ws.customer_id,
                    &gate,
                    Some(&self.inner.cache),
                )
                .await?;
        }
        Ok(())
    }

    /// Before a session on `workspace`: rows acknowledged by an ingest that crashed are made
    /// visible, and the key of the cluster it is linked to (if any) is admitted by `gate`, so a
    /// workspace under a revoked key cannot be queried even if all its data so far is under the
    /// service key.
    async fn admit_workspace(
        &self,
        gate: &LifecycleGate,
        workspace: &str,
    ) -> Result<logvault_control::Workspace, EngineError> {
        let ws = self.control().get_workspace(workspace)?;
        self.recover_if_idle(workspace).await?;
        if let Some(cluster) = &ws.cluster {
            gate.admit(workspace, &AccountId::cluster(cluster)?).await?;
        }
        Ok(ws)
    }

    /// Runs `sql` on `workspace`; the result is a stream of Arrow record batches.
    ///
    /// # Errors
    /// As [`Engine::query_session`], and plan or execution errors.
    pub async fn query(
        &self,
        workspace: &str,
        sql: &str,
    ) -> Result<SendableRecordBatchStream, EngineError> {
        let session = self.query_session(workspace).await?;
        Ok(session.execute(sql).await?)
    }
}
