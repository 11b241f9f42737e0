//! Test support: an in-memory fake key vault that can be told to fail, log-like data, and a
//! store in a temporary directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use logvault_core::TestClock;
use logvault_crypto::parquet_keys::segment_decryption_properties_checked;
use logvault_crypto::{Key256, SecretBytes, aead};
use logvault_kms::{
    KeyProperties, KeyRef, KeyType, KeyVault, KeyVersionProperties, PrincipalId, VaultError,
    VaultErrorKind, VaultProperties, WrappedKey,
};
use logvault_store::{AccountId, KekBinding, SegmentLocation, Store, StoreConfig, local_root};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};

/// A vault holding AES keys in memory. Failures can be injected per key (and version).
#[derive(Debug, Default)]
pub(crate) struct FakeVault {
    keys: Mutex<HashMap<(String, String), Vec<Key256>>>,
    failures: Mutex<HashMap<(String, Option<String>), VaultErrorKind>>,
    unwraps: AtomicUsize,
}

impl FakeVault {
    /// Adds a new version of `vault/name` and returns its version id ("1", "2", ...).
    pub(crate) fn add_version(&self, vault: &str, name: &str) -> String {
        let mut keys = self.keys.lock().unwrap();
        let versions = keys.entry((vault.into(), name.into())).or_default();
        versions.push(Key256::generate().unwrap());
        versions.len().to_string()
    }

    /// Makes every call on `name` (or only on `version` of it) fail with `kind`; `None` heals.
    pub(crate) fn fail(&self, name: &str, version: Option<&str>, kind: Option<VaultErrorKind>) {
        let key = (name.to_owned(), version.map(str::to_owned));
        let mut failures = self.failures.lock().unwrap();
        match kind {
            Some(k) => {
                failures.insert(key, k);
            }
            None => {
                failures.remove(&key);
            }
        }
    }

    /// How many unwraps were asked for.
    pub(crate) fn unwraps(&self) -> usize {
        self.unwraps.load(Ordering::SeqCst)
    }

    fn check(
        &self,
        vault: &str,
        name: &str,
        version: &str,
        principal: &PrincipalId,
    ) -> Result<(), VaultError> {
        let failures = self.failures.lock().unwrap();
        let kind = failures
            .get(&(name.to_owned(), Some(version.to_owned())))
            .or_else(|| failures.get(&(name.to_owned(), None)));
        let (vault, key, version) = (vault.to_owned(), name.to_owned(), version.to_owned());
        match kind {
            None => Ok(()),
            Some(kind) => Err(match kind {
                VaultErrorKind::NotFound => VaultError::KeyNotFound {
                    vault,
                    key,
                    version,
                },
                VaultErrorKind::Forbidden => VaultError::Forbidden {
                    vault,
                    principal: principal.to_string(),
                    permission: "unwrapKey".into(),
                },
                VaultErrorKind::Disabled => VaultError::Disabled {
                    vault,
                    key,
                    version: Some(version),
                },
                VaultErrorKind::Deleted => VaultError::Deleted {
                    vault,
                    key,
                    purge_date: "later".into(),
                },
                VaultErrorKind::NotRecoverable => VaultError::NotRecoverable {
                    vault,
                    key,
                    reason: "no purge protection".into(),
                },
                VaultErrorKind::BadRequest => VaultError::BadRequest {
                    vault,
                    reason: "bad".into(),
                },
                VaultErrorKind::Transient => VaultError::Transient {
                    vault,
                    reason: "connection refused".into(),
                },
                VaultErrorKind::Internal | VaultErrorKind::Conflict => VaultError::Internal {
                    vault,
                    reason: "broken".into(),
                },
            }),
        }
    }

    fn versions<'a>(
        keys: &'a HashMap<(String, String), Vec<Key256>>,
        vault: &str,
        name: &str,
        version: &str,
    ) -> Result<&'a Vec<Key256>, VaultError> {
        keys.get(&(vault.to_owned(), name.to_owned()))
            .ok_or_else(|| VaultError::KeyNotFound {
                vault: vault.to_owned(),
                key: name.to_owned(),
                version: version.to_owned(),
            })
    }

    fn aad(vault: &str, name: &str, version: &str) -> Vec<u8> {
        format!("fake/{vault}/{name}/{version}").into_bytes()
    }
}

#[async_trait]
impl KeyVault for FakeVault {
    async fn vault_properties(
        &self,
        _principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<VaultProperties, VaultError> {
        Ok(VaultProperties {
            name: key.vault.clone(),
            uri: format!("https://{}.vault.local", key.vault),
            region: "local".into(),
            tenant: "local".into(),
            soft_delete: true,
            purge_protection: true,
        })
    }

    async fn get_key(
        &self,
        _principal: &PrincipalId,
        key: &KeyRef,
    ) -> Result<KeyProperties, VaultError> {
        let keys = self.keys.lock().unwrap();
        let versions = Self::versions(&keys, &key.vault, &key.name, key.version_or_latest())?;
        Ok(KeyProperties {
            name: key.name.clone(),
            vault: key.vault.clone(),
            kid: format!(
                "https://{}.vault.local/keys/{}/{}",
                key.vault,
                key.name,
                versions.len()
            ),
            kty: KeyType::Oct,
            size: 256,
            enabled: true,
            version: versions.len().to_string(),
            versions: (1..=versions.len())
                .map(|v| KeyVersionProperties {
                    version: v.to_string(),
                    enabled: true,
                    created: Utc::now(),
                })
                .collect(),
            created: Utc::now(),
            scheduled_purge_date: None,
            deleted: None,
        })
    }

    async fn wrap_key(
        &self,
        principal: &PrincipalId,
        key: &KeyRef,
        plaintext: &SecretBytes,
    ) -> Result<WrappedKey, VaultError> {
        let keys = self.keys.lock().unwrap();
        let versions = Self::versions(&keys, &key.vault, &key.name, key.version_or_latest())?;
        let version = key
            .version
            .clone()
            .unwrap_or_else(|| versions.len().to_string());
        self.check(&key.vault, &key.name, &version, principal)?;
        let index: usize = version.parse().unwrap();
        let kek = &versions[index - 1];
        let value =
            aead::seal_secret(kek, &Self::aad(&key.vault, &key.name, &version), plaintext).unwrap();
        Ok(WrappedKey {
            vault: key.vault.clone(),
            key: key.name.clone(),
            version,
            alg: "A256GCM".into(),
            value,
        })
    }

    async fn unwrap_key(
        &self,
        principal: &PrincipalId,
        wrapped: &WrappedKey,
    ) -> Result<SecretBytes, VaultError> {
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        self.check(&wrapped.vault, &wrapped.key, &wrapped.version, principal)?;
        let keys = self.keys.lock().unwrap();
        let versions = Self::versions(&keys, &wrapped.vault, &wrapped.key, &wrapped.version)?;
        let kek = &versions[wrapped.version.parse::<usize>().unwrap() - 1];
        aead::open_secret(
            kek,
            &Self::aad(&wrapped.vault, &wrapped.key, &wrapped.version),
            &wrapped.value,
            "fake unwrap",
        )
        .map_err(|e| VaultError::BadRequest {
            vault: wrapped.vault.clone(),
            reason: e.to_string(),
        })
    }
}

pub(crate) const SERVICE_VAULT: &str = "lv-service";
pub(crate) const SERVICE_KEY: &str = "mmk";
pub(crate) const CUSTOMER_VAULT: &str = "contoso";
pub(crate) const CUSTOMER_KEY: &str = "cmk";
pub(crate) const CLUSTER: &str = "prod1";
pub(crate) const WS: &str = "ws-one";
pub(crate) const TABLE: &str = "Syslog";

pub(crate) fn service_binding() -> KekBinding {
    KekBinding {
        key: KeyRef::latest(SERVICE_VAULT, SERVICE_KEY),
        principal: PrincipalId("logvault-service".into()),
    }
}

pub(crate) fn customer_binding(version: Option<&str>) -> KekBinding {
    KekBinding {
        key: KeyRef {
            vault: CUSTOMER_VAULT.into(),
            name: CUSTOMER_KEY.into(),
            version: version.map(str::to_owned),
        },
        principal: PrincipalId("cluster-prod1-identity".into()),
    }
}

pub(crate) fn cluster() -> AccountId {
    AccountId::cluster(CLUSTER).unwrap()
}

/// `batch` with a `RequestId` column holding `ids` (one a row), which segments' needle index
/// chooses when the ids are mostly distinct.
pub(crate) fn with_request_ids(
    batch: &arrow::array::RecordBatch,
    ids: Vec<String>,
) -> arrow::array::RecordBatch {
    use arrow::datatypes::{DataType, Field, Schema};
    let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new("RequestId", DataType::Utf8, false)));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(arrow::array::StringArray::from(ids)));
    arrow::array::RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

/// A store in a temporary directory, with its vault and clock.
pub(crate) struct Harness {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) vault: Arc<FakeVault>,
    pub(crate) clock: TestClock,
    pub(crate) store: Store,
    pub(crate) config: StoreConfig,
}

impl Harness {
    pub(crate) async fn new() -> Self {
        Self::with_config(StoreConfig::default()).await
    }

    pub(crate) async fn with_config(config: StoreConfig) -> Self {
        let vault = Arc::new(FakeVault::default());
        vault.add_version(SERVICE_VAULT, SERVICE_KEY);
        vault.add_version(CUSTOMER_VAULT, CUSTOMER_KEY);
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new(t0());
        let store = open_store(dir.path(), vault.clone(), &clock, config.clone()).await;
        Self {
            dir,
            vault,
            clock,
            store,
            config,
        }
    }

    /// Another store on the same directory and vault: a second process.
    pub(crate) async fn reopen(&self) -> Store {
        open_store(
            self.dir.path(),
            self.vault.clone(),
            &self.clock,
            self.config.clone(),
        )
        .await
    }

    /// Creates the cluster's account under the customer key.
    pub(crate) async fn cluster_account(&self, double: bool) -> AccountId {
        let id = cluster();
        self.store
            .create_account(&id, &customer_binding(None), double)
            .await
            .unwrap();
        id
    }

    pub(crate) fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The file of the segment at `loc` in local storage.
    pub(crate) fn segment_file(&self, loc: &SegmentLocation) -> PathBuf {
        self.storage()
            .join(loc.account.as_str())
            .join("objects")
            .join(loc.object_path().as_ref())
    }

    /// The decrypted metadata of `bytes`, a (single-layer) segment stored at `loc`, with its
    /// page indexes when `page_index`.
    pub(crate) async fn segment_metadata(
        &self,
        loc: &SegmentLocation,
        bytes: &[u8],
        page_index: bool,
    ) -> ParquetMetaData {
        let aek = self.store.keyring().aek(&loc.account).await.unwrap();
        let dek = aek.derive_dek(&loc.segment.to_string()).unwrap();
        let aad = format!(
            "logvault/segment/v1/{}/{}/{}/{}",
            loc.account, loc.workspace, loc.table, loc.segment
        );
        let props =
            segment_decryption_properties_checked(dek, aad.as_bytes(), Box::new(|_| Ok(())))
                .unwrap();
        let policy = if page_index {
            PageIndexPolicy::Required
        } else {
            PageIndexPolicy::Skip
        };
        ParquetMetaDataReader::new()
            .with_page_index_policy(policy)
            .with_decryption_properties(Some(props))
            .parse_and_finish(&bytes::Bytes::from(bytes.to_vec()))
            .unwrap()
    }
}

pub(crate) async fn open_store(
    dir: &Path,
    vault: Arc<FakeVault>,
    clock: &TestClock,
    config: StoreConfig,
) -> Store {
    let root = local_root(&dir.join("storage")).unwrap();
    Store::open(
        root,
        vault,
        service_binding(),
        config,
        Arc::new(clock.clone()),
    )
    .await
    .unwrap()
}

#[allow(unused_imports)] // each user of this module takes what it needs
pub(crate) use logvault_testkit::{concat, contains, files, log_batch, log_schema};
