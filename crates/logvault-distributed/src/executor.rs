//! What an executor holds: its own store over the storage root, its own keyring, and a
//! DataFusion runtime in which logvault's encryption factory and account router are registered.
//!
//! A query node admits every storage account before it plans (`KeyGate`), and its factory only
//! reads the keyring's cache. An executor runs scans planned elsewhere, so its factory admits
//! the account itself: it opens the account (its object view goes on the executor's router)
//! and gets its key from the executor's keyring, which unwraps it at the vault under the
//! identity the account's key record names (the cluster's), once per account until the
//! keyring's expiry (60 s by default), and never per file. A revoked key fails the scan on that
//! executor with [`DistributedError::KeyUnavailable`], and the key is evicted there. No key
//! travels from the query node: plans carry segment paths and key *names* only.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::common::config::EncryptionFactoryOptions;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::parquet_encryption::EncryptionFactory;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::parquet::encryption::decrypt::FileDecryptionProperties;
use datafusion::parquet::encryption::encrypt::FileEncryptionProperties;
use logvault_store::{
    ENCRYPTION_FACTORY_ID, STORAGE_URL, SegmentEncryptionFactory, SegmentLocation, Store,
    StoreError,
};
use object_store::path::Path;

use crate::DistributedError;

/// The encryption factory of an executor: admits each account at the vault (through the
/// executor's keyring) before it gives a segment's decryption properties.
#[derive(Debug, Clone)]
pub struct ExecutorEncryptionFactory {
    executor: String,
    store: Arc<Store>,
    cached: Arc<SegmentEncryptionFactory>,
}

impl ExecutorEncryptionFactory {
    /// The factory of executor `executor` (a name for messages) over `store`.
    pub fn new(executor: &str, store: Arc<Store>) -> Self {
        Self {
            executor: executor.to_owned(),
            cached: store.encryption_factory(),
            store,
        }
    }

    async fn admit(&self, path: &Path) -> Result<(), DistributedError> {
        let loc =
            SegmentLocation::from_routed_path(path).map_err(|e| DistributedError::Segment {
                executor: self.executor.clone(),
                path: path.to_string(),
                reason: e.to_string(),
            })?;
        self.store
            .open_account(&loc.account, None)
            .await
            .map_err(|e| DistributedError::Segment {
                executor: self.executor.clone(),
                path: path.to_string(),
                reason: e.to_string(),
            })?;
        self.store
            .keyring()
            .aek(&loc.account)
            .await
            .map(|_| ())
            .map_err(|e| key_error(&self.executor, &loc, &e))
    }
}

fn key_error(executor: &str, loc: &SegmentLocation, e: &StoreError) -> DistributedError {
    match e {
        StoreError::Vault { .. } | StoreError::NoAccountKey { .. } => {
            DistributedError::KeyUnavailable {
                executor: executor.to_owned(),
                account: loc.account.to_string(),
                reason: e.to_string(),
            }
        }
        other => DistributedError::Segment {
            executor: executor.to_owned(),
            path: loc.routed_path().to_string(),
            reason: other.to_string(),
        },
    }
}

#[async_trait]
impl EncryptionFactory for ExecutorEncryptionFactory {
    async fn get_file_encryption_properties(
        &self,
        _config: &EncryptionFactoryOptions,
        _schema: &SchemaRef,
        file_path: &Path,
    ) -> DfResult<Option<Arc<FileEncryptionProperties>>> {
        // Never `None`: that would let DataFusion write plaintext.
        Err(DistributedError::Segment {
            executor: self.executor.clone(),
            path: file_path.to_string(),
            reason: "executors read segments, they never write them".into(),
        }
        .into_df())
    }

    async fn get_file_decryption_properties(
        &self,
        config: &EncryptionFactoryOptions,
        file_path: &Path,
    ) -> DfResult<Option<Arc<FileDecryptionProperties>>> {
        self.admit(file_path)
            .await
            .map_err(DistributedError::into_df)?;
        self.cached
            .get_file_decryption_properties(config, file_path)
            .await
    }
}

/// The runtime an executor runs logvault's scans in: the account router of `store` at
/// `STORAGE_URL`, an [`ExecutorEncryptionFactory`] registered as logvault's factory, and no disk
/// manager (spilled query data would rest in clear), bounded to `memory_limit` bytes if given.
///
/// # Errors
/// DataFusion's, building the runtime.
pub fn executor_runtime(
    executor: &str,
    store: Arc<Store>,
    memory_limit: Option<usize>,
) -> Result<Arc<RuntimeEnv>, DistributedError> {
    let mut builder = RuntimeEnvBuilder::new().with_disk_manager_builder(
        DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
    );
    if let Some(limit) = memory_limit {
        builder = builder.with_memory_limit(limit, 1.0);
    }
    let runtime = builder.build_arc()?;
    let url = url::Url::parse(STORAGE_URL).map_err(|e| {
        DistributedError::from(DataFusionError::Configuration(format!(
            "{STORAGE_URL}: {e}"
        )))
    })?;
    runtime.register_object_store(&url, store.router());
    runtime.register_parquet_encryption_factory(
        ENCRYPTION_FACTORY_ID,
        Arc::new(ExecutorEncryptionFactory::new(executor, store)),
    );
    Ok(runtime)
}
