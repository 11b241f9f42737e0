//! The DataFusion side: an [`EncryptionFactory`] that gives DataFusion's Parquet reader the
//! decryption properties of each segment it opens.
//!
//! The factory maps a file's path (in the account router's namespace,
//! `<account>/segments/<ws>/<table>/<id>.parquet`) to its account and segment, and derives the
//! segment's data key from the account key in the keyring's cache only. It never waits on the
//! vault per file: the query engine resolves the account keys a query touches (with
//! [`crate::Keyring::aek`]) before planning, and a file whose account key is not cached fails with
//! [`StoreError::AccountKeyNotCached`] naming the account.
//!
//! DataFusion asks for one file's properties several times in one query; the answer is not
//! cached here, because deriving a data key is one HKDF (microseconds) and a cache would keep a
//! segment readable after its account key was evicted on revocation.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::common::config::{EncryptionFactoryOptions, TableParquetOptions};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::parquet_encryption::EncryptionFactory;
use object_store::path::Path;
use parquet::encryption::decrypt::FileDecryptionProperties;
use parquet::encryption::encrypt::FileEncryptionProperties;

use crate::StoreError;
use crate::keyring::Keyring;
use crate::layout::SegmentLocation;
use crate::segment;

/// The id under which the factory is registered with DataFusion's runtime.
pub const ENCRYPTION_FACTORY_ID: &str = "logvault";

/// Decryption (and encryption) properties for segments, from the keyring's cached account keys.
#[derive(Debug, Clone)]
pub struct SegmentEncryptionFactory {
    keyring: Arc<Keyring>,
}

impl SegmentEncryptionFactory {
    /// A factory over `keyring`'s cache.
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Self { keyring }
    }

    fn cached(
        &self,
        path: &Path,
    ) -> Result<(SegmentLocation, Arc<logvault_crypto::Aek>, u32), StoreError> {
        let loc = SegmentLocation::from_routed_path(path)?;
        let aek = self.keyring.require_cached_aek(&loc.account)?;
        let epoch = self
            .keyring
            .cached_record(&loc.account)
            .map_or(crate::keyring::CURRENT_AEK_EPOCH, |r| r.epoch);
        Ok((loc, aek, epoch))
    }
}

fn df(e: StoreError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[async_trait]
impl EncryptionFactory for SegmentEncryptionFactory {
    async fn get_file_encryption_properties(
        &self,
        _config: &EncryptionFactoryOptions,
        _schema: &SchemaRef,
        file_path: &Path,
    ) -> DfResult<Option<Arc<FileEncryptionProperties>>> {
        // Never `None`: that would let DataFusion write plaintext.
        let (loc, aek, epoch) = self.cached(file_path).map_err(df)?;
        segment::encryption_properties(&loc, &aek, epoch)
            .map(Some)
            .map_err(df)
    }

    async fn get_file_decryption_properties(
        &self,
        _config: &EncryptionFactoryOptions,
        file_path: &Path,
    ) -> DfResult<Option<Arc<FileDecryptionProperties>>> {
        let (loc, aek, epoch) = self.cached(file_path).map_err(df)?;
        segment::decryption_properties(&loc, &aek, epoch, None)
            .map(Some)
            .map_err(df)
    }
}

/// Parquet table options that read (and write) through the factory, with pruning on: row-group
/// statistics and the page index.
pub fn table_parquet_options() -> TableParquetOptions {
    let mut options = TableParquetOptions::default();
    options.crypto.factory_id = Some(ENCRYPTION_FACTORY_ID.to_owned());
    options.global.pruning = true;
    options.global.enable_page_index = true;
    options.global.pushdown_filters = true;
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{AccountId, SegmentId};
    use logvault_core::SystemClock;
    use logvault_crypto::SecretBytes;
    use logvault_kms::{
        KeyProperties, KeyRef, PrincipalId, VaultError, VaultProperties, WrappedKey,
    };

    /// A vault that is never reachable: the factory must not need it.
    #[derive(Debug)]
    struct Unreachable;

    fn down() -> VaultError {
        VaultError::Transient {
            vault: "v".into(),
            reason: "down".into(),
        }
    }

    #[async_trait]
    impl logvault_kms::KeyVault for Unreachable {
        async fn vault_properties(
            &self,
            _: &PrincipalId,
            _: &KeyRef,
        ) -> Result<VaultProperties, VaultError> {
            Err(down())
        }
        async fn get_key(&self, _: &PrincipalId, _: &KeyRef) -> Result<KeyProperties, VaultError> {
            Err(down())
        }
        async fn wrap_key(
            &self,
            _: &PrincipalId,
            _: &KeyRef,
            _: &SecretBytes,
        ) -> Result<WrappedKey, VaultError> {
            Err(down())
        }
        async fn unwrap_key(
            &self,
            _: &PrincipalId,
            _: &WrappedKey,
        ) -> Result<SecretBytes, VaultError> {
            Err(down())
        }
    }

    #[tokio::test]
    async fn uncached_accounts_and_foreign_paths_fail_clearly() {
        let keyring = Arc::new(Keyring::new(
            Arc::new(object_store::memory::InMemory::new()),
            Arc::new(Unreachable),
            Arc::new(SystemClock),
            crate::KeyringConfig::default(),
        ));
        let factory = SegmentEncryptionFactory::new(keyring);
        let options = EncryptionFactoryOptions::default();
        let loc = SegmentLocation::new(
            AccountId::cluster("prod1").unwrap(),
            "ws-one",
            "Syslog",
            SegmentId::generate(),
        )
        .unwrap();
        let err = factory
            .get_file_decryption_properties(&options, &loc.routed_path())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cluster-prod1") && err.contains("not cached"),
            "{err}"
        );
        let schema = Arc::new(arrow::datatypes::Schema::empty());
        let err = factory
            .get_file_encryption_properties(&options, &schema, &Path::from("elsewhere/x.parquet"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("elsewhere/x.parquet"), "{err}");
        let opts = table_parquet_options();
        assert_eq!(
            opts.crypto.factory_id.as_deref(),
            Some(ENCRYPTION_FACTORY_ID)
        );
    }
}
