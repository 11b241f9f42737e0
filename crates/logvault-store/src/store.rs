//! The store: a storage root, its accounts, the keyring, the catalog and the account router,
//! wired together.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use logvault_core::SharedClock;
use logvault_kms::KeyVault;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::StoreError;
use crate::account::{self, NewAccount, StorageAccount};
use crate::catalog::{Catalog, KeyScheme, Manifest, SegmentEntry};
use crate::factory::{ENCRYPTION_FACTORY_ID, SegmentEncryptionFactory};
use crate::keyring::{AekRecord, KekBinding, Keyring, KeyringConfig};
use crate::layout::{AccountId, SegmentId, SegmentLocation};
use crate::router::AccountRouter;
use crate::segment::{self, SegmentOptions};
use crate::segment_writer::SegmentWriter;

/// The URL under which [`Store::register`] puts the account router in DataFusion.
pub const STORAGE_URL: &str = "logvault://storage/";

/// How long a segment replaced by a compaction is kept before it is deleted, and how old an
/// unreferenced segment file must be before it is deleted as an orphan (seconds).
pub const DEFAULT_SEGMENT_GRACE_SECS: i64 = 300;

/// Settings of a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The keyring's cache settings.
    pub keyring: KeyringConfig,
    /// How segments are encoded.
    pub segments: SegmentOptions,
    /// Plaintext bytes per infrastructure chunk for accounts created with double encryption.
    pub infra_chunk_size: u32,
    /// Whether the service account uses double encryption when this store creates it.
    pub service_double_encryption: bool,
    /// How long replaced segments stay readable before deletion, and how old an orphan file
    /// must be before it is deleted ([`Store::collect_segments`]; default
    /// [`DEFAULT_SEGMENT_GRACE_SECS`]).
    pub segment_grace: chrono::Duration,
    /// How much older than a newer version an old manifest version must be before it is deleted
    /// (default [`crate::catalog::DEFAULT_MANIFEST_VERSION_MIN_AGE_SECS`]; see there).
    pub manifest_version_min_age: chrono::Duration,
    /// The directory of a storage root on local files ([`crate::local_root`]), if it is one:
    /// [`Store::collect_segments`] then also deletes the staging files (`<path>#<n>`) that
    /// uploads interrupted by a crash leave there, which object_store's listings do not show.
    pub local_storage_dir: Option<std::path::PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            keyring: KeyringConfig::default(),
            segments: SegmentOptions::default(),
            infra_chunk_size: logvault_crypto::infra::DEFAULT_CHUNK_SIZE,
            service_double_encryption: false,
            segment_grace: chrono::Duration::seconds(DEFAULT_SEGMENT_GRACE_SECS),
            manifest_version_min_age: chrono::Duration::seconds(
                crate::catalog::DEFAULT_MANIFEST_VERSION_MIN_AGE_SECS,
            ),
            local_storage_dir: None,
        }
    }
}

/// The encrypted columnar store.
#[derive(Debug)]
pub struct Store {
    root: Arc<dyn ObjectStore>,
    keyring: Arc<Keyring>,
    service: RwLock<KekBinding>,
    config: StoreConfig,
    clock: SharedClock,
    accounts: RwLock<HashMap<AccountId, Arc<StorageAccount>>>,
    router: Arc<AccountRouter>,
    catalog: Catalog,
}

impl Store {
    /// Opens the store at `root`, creating the service account (its key wrapped by `service`,
    /// the service key) on first use.
    ///
    /// # Errors
    /// Storage errors, vault errors wrapping or unwrapping the service account's key, or a
    /// service account of an unknown format.
    pub async fn open(
        root: Arc<dyn ObjectStore>,
        vault: Arc<dyn KeyVault>,
        service: KekBinding,
        config: StoreConfig,
        clock: SharedClock,
    ) -> Result<Self, StoreError> {
        let keyring = Arc::new(Keyring::new(
            root.clone(),
            vault,
            clock.clone(),
            config.keyring.clone(),
        ));
        let id = AccountId::service();
        let service_account = match account::open(&root, &keyring, &id, None).await {
            Ok(a) => a,
            Err(StoreError::AccountNotFound { .. }) => {
                let new = NewAccount {
                    id: &id,
                    binding: &service,
                    service: &service,
                    double_encryption: config.service_double_encryption,
                    chunk_size: config.infra_chunk_size,
                    now: clock.now(),
                };
                match account::create(&root, &keyring, new).await {
                    Ok(a) => a,
                    // Another process created it first.
                    Err(StoreError::AccountExists { .. }) => {
                        account::open(&root, &keyring, &id, None).await?
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        let service_account = Arc::new(service_account);
        let router = Arc::new(AccountRouter::new());
        router.insert(id.as_str(), service_account.objects().clone());
        let catalog = Catalog::new(service_account.objects().clone(), keyring.clone())
            .with_version_min_age(config.manifest_version_min_age);
        let accounts = RwLock::new(HashMap::from([(id, service_account)]));
        Ok(Self {
            root,
            keyring,
            service: RwLock::new(service),
            config,
            clock,
            accounts,
            router,
            catalog,
        })
    }

    /// The keyring (account keys and their cache).
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The storage root.
    pub fn root(&self) -> &Arc<dyn ObjectStore> {
        &self.root
    }

    /// The grace period of replaced and orphan segments ([`StoreConfig::segment_grace`]).
    pub fn segment_grace(&self) -> chrono::Duration {
        self.config.segment_grace
    }

    /// The directory of a local storage root ([`StoreConfig::local_storage_dir`]).
    pub(crate) fn local_storage_dir(&self) -> Option<&std::path::Path> {
        self.config.local_storage_dir.as_deref()
    }

    /// The leases of this storage (work one node of several does at a time).
    pub fn leases(&self) -> crate::Leases {
        crate::Leases::new(self.root.clone())
    }

    /// The clock the store reads time from.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The service key binding.
    pub fn service_binding(&self) -> KekBinding {
        self.service
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// An open account.
    pub fn account(&self, id: &AccountId) -> Option<Arc<StorageAccount>> {
        self.accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    fn remember(&self, account: StorageAccount) -> Arc<StorageAccount> {
        let account = Arc::new(account);
        self.router
            .insert(account.id().as_str(), account.objects().clone());
        self.accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(account.id().clone(), account.clone());
        account
    }

    /// Creates a storage account whose key is wrapped by `binding` (a cluster's customer key),
    /// with double encryption on or off for good.
    ///
    /// # Errors
    /// [`StoreError::AccountExists`]; vault errors wrapping the keys; storage errors.
    pub async fn create_account(
        &self,
        id: &AccountId,
        binding: &KekBinding,
        double_encryption: bool,
    ) -> Result<Arc<StorageAccount>, StoreError> {
        let service = self.service_binding();
        let new = NewAccount {
            id,
            binding,
            service: &service,
            double_encryption,
            chunk_size: self.config.infra_chunk_size,
            now: self.clock.now(),
        };
        let account = account::create(&self.root, &self.keyring, new)
            .await
            .map_err(|e| match e {
                StoreError::AccountKeyExists { account } => StoreError::AccountExists { account },
                e => e,
            })?;
        Ok(self.remember(account))
    }

    /// Opens an existing storage account. With `double_encryption` given, refuses an account
    /// created with the other setting. Opening needs no customer key (only the service key, for
    /// a double-encrypted account's infrastructure key).
    ///
    /// # Errors
    /// [`StoreError::AccountNotFound`], [`StoreError::DoubleEncryptionMismatch`], storage or
    /// format errors.
    pub async fn open_account(
        &self,
        id: &AccountId,
        double_encryption: Option<bool>,
    ) -> Result<Arc<StorageAccount>, StoreError> {
        if let Some(open) = self.account(id) {
            if let Some(requested) = double_encryption
                && requested != open.double_encryption()
            {
                return Err(StoreError::DoubleEncryptionMismatch {
                    account: id.to_string(),
                    stored: open.double_encryption(),
                    requested,
                });
            }
            return Ok(open);
        }
        let account = account::open(&self.root, &self.keyring, id, double_encryption).await?;
        Ok(self.remember(account))
    }

    async fn opened(&self, id: &AccountId) -> Result<Arc<StorageAccount>, StoreError> {
        match self.account(id) {
            Some(a) => Ok(a),
            None => self.open_account(id, None).await,
        }
    }

    /// Removes a customer storage account (`storage-<name>`) and everything it holds: its
    /// wrapped keys and documents. The service account and clusters' accounts are never
    /// removed this way.
    ///
    /// # Errors
    /// [`StoreError::InvalidName`] for an account that is not a storage account resource's;
    /// storage errors.
    pub async fn remove_storage_account(&self, id: &AccountId) -> Result<(), StoreError> {
        use futures::TryStreamExt;
        if id.storage_name().is_none() {
            return Err(StoreError::InvalidName {
                kind: "storage account",
                name: id.to_string(),
                reason: "only storage account resources are removed".into(),
            });
        }
        let what = format!("storage account {id}");
        let prefix = crate::layout::account_prefix(id);
        let objects: Vec<_> = self
            .root
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| StoreError::storage(&what, &e))?;
        for meta in objects {
            match self.root.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(StoreError::storage(&what, &e)),
            }
        }
        self.keyring.evict(id);
        self.router.remove(id.as_str());
        self.accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        Ok(())
    }

    /// Rotation (R-B7): re-wraps the account's key with `binding` (a new key or key version).
    /// Segments are not touched.
    ///
    /// # Errors
    /// As [`Keyring::rewrap_aek`].
    pub async fn rotate_account_key(
        &self,
        id: &AccountId,
        binding: &KekBinding,
    ) -> Result<AekRecord, StoreError> {
        self.keyring.rewrap_aek(id, binding).await
    }

    /// Rotation of the service key: re-wraps the service account's key and the infrastructure
    /// key of every double-encrypted account with `binding`, which then wraps the keys of
    /// accounts created later. No data is touched.
    ///
    /// # Errors
    /// Vault errors (the current service key version must still unwrap), storage errors.
    pub async fn rotate_service_key(&self, binding: &KekBinding) -> Result<AekRecord, StoreError> {
        let record = self
            .keyring
            .rewrap_aek(&AccountId::service(), binding)
            .await?;
        for id in self.account_ids().await? {
            if let Some(meta) = account::read_meta(&self.root, &id).await?
                && meta.double_encryption
            {
                self.keyring.rewrap_infra_key(&id, binding).await?;
            }
        }
        *self.service.write().unwrap_or_else(PoisonError::into_inner) = binding.clone();
        Ok(record)
    }

    /// The ids of every storage account under the root (open or not).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn account_ids(&self) -> Result<Vec<AccountId>, StoreError> {
        let listed = self
            .root
            .list_with_delimiter(None)
            .await
            .map_err(|e| StoreError::storage("storage root", &e))?;
        let mut ids: Vec<AccountId> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| AccountId::parse(p.as_ref()).ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Writes `batches` as one encrypted segment of `workspace`/`table` in `account`, under the
    /// account's key (which may call the vault). The segment is not in the catalog yet: see
    /// [`Store::append`].
    ///
    /// # Errors
    /// Invalid names or data, key errors, encoding or storage errors.
    pub async fn write_segment(
        &self,
        account: &AccountId,
        workspace: &str,
        table: &str,
        batches: Vec<RecordBatch>,
    ) -> Result<SegmentEntry, StoreError> {
        // Names and the account first, so that a bad request is told as such before any key.
        SegmentLocation::new(account.clone(), workspace, table, SegmentId::generate())?;
        let (aek, record) = self.current_key(account).await?;
        self.write_segment_under(account, &aek, &record, workspace, table, batches)
            .await
    }

    /// The account's key and its record, for writing (the vault may be called).
    async fn current_key(
        &self,
        account: &AccountId,
    ) -> Result<(Arc<logvault_crypto::Aek>, AekRecord), StoreError> {
        self.opened(account).await?;
        let aek = self.keyring.aek(account).await?;
        let record = match self.keyring.cached_record(account) {
            Some(r) => r,
            None => self.keyring.latest_record(account).await?,
        };
        Ok((aek, record))
    }

    /// Opens a segment of `workspace`/`table` in `account` with rows of `schema`, under the
    /// account's key (which may call the vault), to be written as rows come (see
    /// [`SegmentWriter`]); the caller adds the finished entry to the catalog.
    ///
    /// # Errors
    /// Invalid names, an unknown account, key errors, encryption setup errors.
    pub(crate) async fn open_segment(
        &self,
        account: &AccountId,
        workspace: &str,
        table: &str,
        schema: arrow::datatypes::SchemaRef,
    ) -> Result<SegmentWriter, StoreError> {
        SegmentLocation::new(account.clone(), workspace, table, SegmentId::generate())?;
        let (aek, record) = self.current_key(account).await?;
        self.open_segment_under(account, &aek, &record, workspace, table, schema)
            .await
    }

    /// As [`Store::write_segment`], under an account key the caller already holds (an ingest
    /// admitted before a revocation finishes with the key it was admitted with).
    ///
    /// # Errors
    /// Invalid names or data, encoding or storage errors.
    pub async fn write_segment_under(
        &self,
        account: &AccountId,
        aek: &logvault_crypto::Aek,
        record: &AekRecord,
        workspace: &str,
        table: &str,
        batches: Vec<RecordBatch>,
    ) -> Result<SegmentEntry, StoreError> {
        let schema =
            batches
                .first()
                .map(RecordBatch::schema)
                .ok_or_else(|| StoreError::InvalidData {
                    workspace: workspace.to_owned(),
                    table: table.to_owned(),
                    reason: "no record batches to write".into(),
                })?;
        let mut writer = self
            .open_segment_under(account, aek, record, workspace, table, schema)
            .await?;
        for batch in batches {
            writer.write(batch).await?;
        }
        writer.finish().await
    }

    /// Opens a segment of `table` with rows of `schema`, to be written as they arrive (see
    /// [`SegmentWriter`]) under an account key the caller holds. Nothing is stored until
    /// [`SegmentWriter::finish`]; the caller then adds the entry to the table's catalog.
    ///
    /// # Errors
    /// Invalid names, an unknown account, encryption setup errors.
    pub async fn open_segment_under(
        &self,
        account: &AccountId,
        aek: &logvault_crypto::Aek,
        record: &AekRecord,
        workspace: &str,
        table: &str,
        schema: arrow::datatypes::SchemaRef,
    ) -> Result<SegmentWriter, StoreError> {
        let loc = SegmentLocation::new(account.clone(), workspace, table, SegmentId::generate())?;
        let acct = self.opened(account).await?;
        Ok(SegmentWriter::new(
            acct.objects().clone(),
            loc,
            aek,
            record.epoch,
            schema,
            &self.config.segments,
        )?
        .with_entry(crate::segment_writer::EntryInfo {
            key_scheme: key_scheme(account, record),
            epoch: record.epoch,
            created: self.clock.now(),
        }))
    }

    /// Writes `batches` as a segment and adds it to the table's catalog.
    ///
    /// # Errors
    /// As [`Store::write_segment`] and [`Catalog::add_segments`].
    pub async fn append(
        &self,
        account: &AccountId,
        workspace: &str,
        table: &str,
        batches: Vec<RecordBatch>,
    ) -> Result<(SegmentEntry, Manifest), StoreError> {
        let entry = self
            .write_segment(account, workspace, table, batches)
            .await?;
        let manifest = self
            .catalog
            .add_segments(workspace, table, self.clock.now(), vec![entry.clone()])
            .await?;
        Ok((entry, manifest))
    }

    /// Reads and decrypts one segment (all columns, or the named ones).
    ///
    /// # Errors
    /// [`StoreError::Integrity`] naming the segment if it does not authenticate;
    /// [`StoreError::SegmentNotFound`]; key errors; [`StoreError::UnsupportedFormat`].
    pub async fn read_segment(
        &self,
        loc: &SegmentLocation,
        columns: Option<Vec<String>>,
    ) -> Result<Vec<RecordBatch>, StoreError> {
        let (objects, aek, epoch) = self.reading(loc).await?;
        segment::read(&objects, loc, &aek, epoch, columns).await
    }

    /// What reading `loc` takes: its account's objects, key and key epoch.
    async fn reading(
        &self,
        loc: &SegmentLocation,
    ) -> Result<(Arc<dyn ObjectStore>, Arc<logvault_crypto::Aek>, u32), StoreError> {
        let acct = self.opened(&loc.account).await?;
        let aek = self.keyring.aek(&loc.account).await?;
        let epoch = self
            .keyring
            .cached_record(&loc.account)
            .map_or(crate::keyring::CURRENT_AEK_EPOCH, |r| r.epoch);
        Ok((acct.objects().clone(), aek, epoch))
    }

    /// Reads and decrypts one segment a batch at a time into `tx` (all columns), so that its
    /// rows are never all in memory; a receiver keeps nothing unless this returns `Ok` (a page
    /// may fail to authenticate after earlier batches were sent).
    ///
    /// # Errors
    /// As [`Store::read_segment`].
    pub(crate) async fn stream_segment(
        &self,
        loc: &SegmentLocation,
        tx: tokio::sync::mpsc::Sender<RecordBatch>,
    ) -> Result<(), StoreError> {
        let (objects, aek, epoch) = self.reading(loc).await?;
        segment::read_into(&objects, loc, &aek, epoch, tx).await
    }

    /// The account router, to register as DataFusion's object store for [`STORAGE_URL`].
    pub fn router(&self) -> Arc<AccountRouter> {
        self.router.clone()
    }

    /// The encryption factory, to register with DataFusion's runtime.
    pub fn encryption_factory(&self) -> Arc<SegmentEncryptionFactory> {
        Arc::new(SegmentEncryptionFactory::new(self.keyring.clone()))
    }

    /// Registers the account router at [`STORAGE_URL`] and the encryption factory (as
    /// [`ENCRYPTION_FACTORY_ID`]) in a DataFusion session.
    ///
    /// # Errors
    /// [`StoreError::InvalidUrl`] never in practice ([`STORAGE_URL`] is constant).
    pub fn register(&self, ctx: &SessionContext) -> Result<(), StoreError> {
        let url = url::Url::parse(STORAGE_URL).map_err(|e| StoreError::InvalidUrl {
            url: STORAGE_URL.to_owned(),
            reason: e.to_string(),
        })?;
        ctx.register_object_store(&url, self.router.clone());
        ctx.runtime_env()
            .register_parquet_encryption_factory(ENCRYPTION_FACTORY_ID, self.encryption_factory());
        Ok(())
    }

    /// The URL of a segment as DataFusion sees it once [`Store::register`] was called.
    pub fn segment_url(loc: &SegmentLocation) -> String {
        format!("{STORAGE_URL}{}", loc.routed_path())
    }
}

fn key_scheme(account: &AccountId, record: &AekRecord) -> KeyScheme {
    let version = record
        .wrapped_by
        .version
        .clone()
        .unwrap_or_else(|| "latest".to_owned());
    match account.cluster_name() {
        None => KeyScheme::Service {
            key_version: version,
        },
        Some(cluster) => KeyScheme::Customer {
            cluster: cluster.to_owned(),
            vault: record.wrapped_by.vault.clone(),
            key: record.wrapped_by.name.clone(),
            key_version: version,
        },
    }
}
