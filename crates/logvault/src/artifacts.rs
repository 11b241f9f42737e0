//! Where a workspace's artifacts are kept (R-H1, R-H2): sealed documents in the service
//! account under the service key, or, when the workspace links a storage account for their
//! kind, in that account under its key (the customer's, if it has one). A customer-keyed
//! account's key is asked of the vault at every use, so revoking it hides what the account
//! holds at once and restoring it brings it back.
//!
//! Document paths: `ws/<workspace>/<kind>/<id>` (format in `docs/format.md`, "Documents").

use std::sync::Arc;

use logvault_control::{ControlError, DataSourceType};
use logvault_crypto::Aek;
use logvault_store::AccountId;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Engine, EngineError};

/// The kinds of documents kept per workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocKind {
    SavedSearches,
    History,
    AlertRules,
    FiredAlerts,
    SearchJobs,
}

impl DocKind {
    fn dir(self) -> &'static str {
        match self {
            Self::SavedSearches => "savedSearches",
            Self::History => "history",
            Self::AlertRules => "alertRules",
            Self::FiredAlerts => "firedAlerts",
            Self::SearchJobs => "searchJobs",
        }
    }

    /// The link that moves this kind to a customer storage account, if any.
    fn link(self) -> Option<DataSourceType> {
        match self {
            Self::SavedSearches => Some(DataSourceType::Query),
            Self::AlertRules | Self::FiredAlerts => Some(DataSourceType::Alerts),
            Self::History | Self::SearchJobs => None,
        }
    }
}

/// Documents of one kind of one workspace, in the account they live in, with its key.
pub(crate) struct Docs {
    engine: Engine,
    pub(crate) account: AccountId,
    aek: Arc<Aek>,
    prefix: String,
}

pub(crate) fn refused(code: u16, message: String) -> EngineError {
    EngineError::Control(ControlError::Refused { code, message })
}

impl Engine {
    /// The key of `account` for its documents: the service account's from the keyring; a
    /// storage account's unwrapped by the vault now (a revoked key fails here, clearly).
    pub(crate) async fn document_key(&self, account: &AccountId) -> Result<Arc<Aek>, EngineError> {
        if account.is_service() {
            return Ok(self.store().keyring().aek(account).await?);
        }
        self.store().open_account(account, None).await?;
        self.store()
            .keyring()
            .refresh_aek(account)
            .await
            .map_err(|e| {
                let name = account
                    .storage_name()
                    .unwrap_or(account.as_str())
                    .to_owned();
                let key = self
                    .control()
                    .get_storage_account(&name)
                    .ok()
                    .and_then(|s| s.key)
                    .map_or_else(
                        || "(service key)".to_owned(),
                        |k| format!("{} in {}", k.key_name, k.key_vault_uri),
                    );
                EngineError::StorageKey {
                    account: name,
                    key,
                    reason: e.to_string(),
                }
            })
    }

    /// The documents of `kind` of `workspace`, where they live now.
    pub(crate) async fn docs(&self, workspace: &str, kind: DocKind) -> Result<Docs, EngineError> {
        let ws = self.control().get_workspace(workspace)?;
        let account = match kind.link().and_then(|l| ws.linked_for(l)) {
            Some(name) => AccountId::storage(name)?,
            None => AccountId::service(),
        };
        self.docs_in(workspace, kind, account).await
    }

    /// The documents of `kind` of `workspace` in `account`.
    pub(crate) async fn docs_in(
        &self,
        workspace: &str,
        kind: DocKind,
        account: AccountId,
    ) -> Result<Docs, EngineError> {
        let aek = self.document_key(&account).await?;
        Ok(Docs {
            engine: self.clone(),
            account,
            aek,
            prefix: format!("ws/{workspace}/{}", kind.dir()),
        })
    }
}

impl Docs {
    fn path(&self, id: &str) -> String {
        format!("{}/{id}", self.prefix)
    }

    pub(crate) async fn put<T: Serialize>(&self, id: &str, value: &T) -> Result<(), EngineError> {
        let json = serde_json::to_vec(value).map_err(|e| EngineError::Artifact {
            what: self.path(id),
            reason: e.to_string(),
        })?;
        Ok(self
            .engine
            .store()
            .put_document(&self.account, &self.aek, &self.path(id), &json)
            .await?)
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        id: &str,
    ) -> Result<Option<T>, EngineError> {
        let Some(bytes) = self
            .engine
            .store()
            .get_document(&self.account, &self.aek, &self.path(id))
            .await?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| EngineError::Artifact {
                what: format!("{} of storage account {}", self.path(id), self.account),
                reason: e.to_string(),
            })
    }

    /// The ids, sorted.
    pub(crate) async fn ids(&self) -> Result<Vec<String>, EngineError> {
        let paths = self
            .engine
            .store()
            .list_documents(&self.account, &self.prefix)
            .await?;
        let strip = format!("{}/", self.prefix);
        Ok(paths
            .into_iter()
            .filter_map(|p| p.strip_prefix(&strip).map(str::to_owned))
            .collect())
    }

    pub(crate) async fn all<T: DeserializeOwned>(&self) -> Result<Vec<T>, EngineError> {
        let mut out = Vec::new();
        for id in self.ids().await? {
            if let Some(v) = self.get(&id).await? {
                out.push(v);
            }
        }
        Ok(out)
    }

    pub(crate) async fn delete(&self, id: &str) -> Result<(), EngineError> {
        Ok(self
            .engine
            .store()
            .delete_document(&self.account, &self.path(id))
            .await?)
    }

    /// Moves every document to `to` (re-sealed under its key), oldest first; returns how many.
    pub(crate) async fn move_all(&self, to: &Docs) -> Result<usize, EngineError> {
        let ids = self.ids().await?;
        for id in &ids {
            let Some(bytes) = self
                .engine
                .store()
                .get_document(&self.account, &self.aek, &self.path(id))
                .await?
            else {
                continue;
            };
            self.engine
                .store()
                .put_document(&to.account, &to.aek, &to.path(id), &bytes)
                .await?;
            self.delete(id).await?;
        }
        Ok(ids.len())
    }
}
