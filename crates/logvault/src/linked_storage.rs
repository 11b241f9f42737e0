//! Storage accounts and linked storage (R-H2, R-H3): the engine side of the control plane's
//! records. An account is a store account `storage-<name>` whose key is wrapped by the service
//! key or, once set, by the customer's key on behalf of the account's identity.

use logvault_control::{
    DataSourceType, KeyVaultProperties, LinkedStorage, SavedSearch, StorageAccountResource,
    StorageAccountSpec,
};
use logvault_kms::KeyRef;
use logvault_store::{AccountId, KekBinding, StoreError};

use crate::artifacts::{DocKind, refused};
use crate::{Engine, EngineError};

/// The result of linking a storage account to a workspace.
#[derive(Debug, Clone)]
pub struct LinkOutcome {
    /// The link.
    pub link: LinkedStorage,
    /// The saved searches removed from the workspace (linking for `Query`, R-H3).
    pub removed_saved_searches: Vec<SavedSearch>,
    /// Query history entries removed (history is not kept while linked for `Query`).
    pub removed_history: usize,
    /// Alert rules and fired alerts moved into the account (linking for `Alerts`).
    pub moved_alert_documents: usize,
}

impl Engine {
    /// Creates a storage account: the record (its key validated as a cluster's), then its
    /// storage with a fresh account key wrapped by the service key, re-wrapped by the customer
    /// key when one is given.
    ///
    /// # Errors
    /// As [`logvault_control::ControlPlane::create_storage_account`]; vault and storage errors
    /// creating the account (the record is then removed).
    pub async fn create_storage_account(
        &self,
        spec: StorageAccountSpec,
    ) -> Result<StorageAccountResource, EngineError> {
        let account = self.control().create_storage_account(spec).await?;
        if let Err(e) = self.provision_storage_account(&account).await {
            // Nothing half-made stays behind; a failure to clean up is secondary to `e`.
            let id = AccountId::storage(&account.name)?;
            let _ = self.store().remove_storage_account(&id).await;
            self.control().forget_storage_account(&account.name)?;
            return Err(e);
        }
        Ok(account)
    }

    async fn provision_storage_account(
        &self,
        account: &StorageAccountResource,
    ) -> Result<(), EngineError> {
        let id = AccountId::storage(&account.name)?;
        match self
            .store()
            .create_account(&id, &self.store().service_binding(), false)
            .await
        {
            Ok(_) => {}
            Err(StoreError::AccountExists { .. }) => {
                self.store().open_account(&id, Some(false)).await?;
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(key) = &account.key {
            self.bind_storage_key(account, key).await?;
        }
        Ok(())
    }

    async fn bind_storage_key(
        &self,
        account: &StorageAccountResource,
        key: &KeyVaultProperties,
    ) -> Result<(), EngineError> {
        let id = AccountId::storage(&account.name)?;
        let version = Some(key.key_version.as_str());
        let key_ref = KeyRef::from_uri(&key.key_vault_uri, &key.key_name, version)?;
        let principal = account.identity.principal_id.clone().ok_or_else(|| {
            refused(
                400,
                format!("storage account {} has no identity", account.name),
            )
        })?;
        let binding = KekBinding {
            key: key_ref,
            principal,
        };
        self.store().rotate_account_key(&id, &binding).await?;
        self.document_key(&id).await?;
        Ok(())
    }

    /// Sets or changes a storage account's customer key (validated first): its account key is
    /// re-wrapped; nothing it holds is touched.
    ///
    /// # Errors
    /// As [`logvault_control::ControlPlane::set_storage_account_key`]; vault errors.
    pub async fn set_storage_account_key(
        &self,
        name: &str,
        key: KeyVaultProperties,
    ) -> Result<StorageAccountResource, EngineError> {
        let account = self
            .control()
            .set_storage_account_key(name, key.clone())
            .await?;
        self.bind_storage_key(&account, &key).await?;
        Ok(account)
    }

    /// Deletes a storage account and everything it holds.
    ///
    /// # Errors
    /// 404; 409 while a workspace links it.
    pub async fn delete_storage_account(
        &self,
        name: &str,
    ) -> Result<StorageAccountResource, EngineError> {
        let account = self.control().delete_storage_account(name)?;
        self.store()
            .remove_storage_account(&AccountId::storage(name)?)
            .await?;
        Ok(account)
    }

    /// Links `account` to `workspace` for `kind` (R-H2, R-H3). For `Query`, the workspace's
    /// saved searches are removed (export them first: they are returned, and the CLI refuses
    /// without `--yes`) and its query history is deleted; new saved searches go to the account.
    /// For `Alerts`, the alert rules and fired alerts move into the account, under its key.
    ///
    /// # Errors
    /// As [`logvault_control::ControlPlane::link_storage`]; the account's key errors (the
    /// account must be usable to be linked).
    pub async fn link_storage(
        &self,
        workspace: &str,
        kind: DataSourceType,
        account: &str,
    ) -> Result<LinkOutcome, EngineError> {
        let target = AccountId::storage(account)?;
        self.control().get_storage_account(account)?;
        // The account's key must work before anything moves.
        self.document_key(&target).await?;
        let mut outcome = LinkOutcome {
            link: self.control().link_storage(workspace, kind, account)?,
            removed_saved_searches: Vec::new(),
            removed_history: 0,
            moved_alert_documents: 0,
        };
        match kind {
            DataSourceType::Query => {
                let service = self
                    .docs_in(workspace, DocKind::SavedSearches, AccountId::service())
                    .await?;
                outcome.removed_saved_searches = service.all().await?;
                for s in &outcome.removed_saved_searches {
                    service.delete(&s.id).await?;
                }
                let history = self
                    .docs_in(workspace, DocKind::History, AccountId::service())
                    .await?;
                for id in history.ids().await? {
                    history.delete(&id).await?;
                    outcome.removed_history += 1;
                }
            }
            DataSourceType::Alerts => {
                for kind in [DocKind::AlertRules, DocKind::FiredAlerts] {
                    let from = self.docs_in(workspace, kind, AccountId::service()).await?;
                    let to = self.docs_in(workspace, kind, target.clone()).await?;
                    outcome.moved_alert_documents += from.move_all(&to).await?;
                }
            }
        }
        Ok(outcome)
    }

    /// Removes the link of `workspace` for `kind`. Alert rules and fired alerts move back under
    /// the service key (the account's key must work); saved searches stay in the account.
    ///
    /// # Errors
    /// As [`logvault_control::ControlPlane::unlink_storage`]; the account's key errors.
    pub async fn unlink_storage(
        &self,
        workspace: &str,
        kind: DataSourceType,
    ) -> Result<LinkedStorage, EngineError> {
        let ws = self.control().get_workspace(workspace)?;
        if kind == DataSourceType::Alerts
            && let Some(account) = ws.linked_for(kind)
        {
            let source = AccountId::storage(account)?;
            for doc_kind in [DocKind::AlertRules, DocKind::FiredAlerts] {
                let from = self.docs_in(workspace, doc_kind, source.clone()).await?;
                let to = self
                    .docs_in(workspace, doc_kind, AccountId::service())
                    .await?;
                from.move_all(&to).await?;
            }
        }
        Ok(self.control().unlink_storage(workspace, kind)?)
    }
}
