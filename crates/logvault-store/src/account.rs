//! Storage accounts and the storage root they live under.
//!
//! A storage account is a prefix of the storage root (`service/`, `cluster-<name>/`) holding its
//! metadata, its wrapped keys and its object view (`objects/`: segments and, in the service
//! account, the catalog). All storage goes through object_store: the local filesystem by
//! default, or any backend object_store can open from a URL.

use std::path::Path as FsPath;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::error::parse_versioned;
use crate::infra_store::InfraEncryptedStore;
use crate::keyring::{KekBinding, Keyring};
use crate::layout::{ACCOUNT_META, AccountId, account_prefix, objects_prefix};
use crate::local_reads::LocalReads;

/// Format version of `account.json`.
pub const ACCOUNT_FORMAT_VERSION: u32 = 1;

/// Opens the local filesystem directory `dir` (created if missing) as a storage root. The
/// embedded default is `HOME/storage`. Reads the page cache holds are done in place
/// ([`LocalReads`]).
///
/// # Errors
/// [`StoreError::Storage`] if the directory cannot be created or opened.
pub fn local_root(dir: &FsPath) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let what = || format!("storage root {}", dir.display());
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Storage {
        what: what(),
        reason: e.to_string(),
    })?;
    let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| StoreError::storage(what(), &e))?;
    Ok(Arc::new(LocalReads::new(fs)))
}

/// Opens any object_store backend compiled in (`file://`, `memory://`, `s3://`, `az://`) from a
/// URL, with backend options (credentials, endpoints). The URL's
/// path becomes the root's prefix.
///
/// # Errors
/// [`StoreError::InvalidUrl`] if the URL does not parse or names a backend not compiled in.
pub fn url_root<I, K, V>(url: &str, options: I) -> Result<Arc<dyn ObjectStore>, StoreError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Into<String>,
{
    let bad = |reason: String| StoreError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let (store, prefix) =
        object_store::parse_url_opts(&parsed, options).map_err(|e| bad(e.to_string()))?;
    let store: Arc<dyn ObjectStore> = Arc::from(store);
    if prefix.as_ref().is_empty() {
        Ok(store)
    } else {
        Ok(Arc::new(PrefixStore::new(store, prefix)))
    }
}

/// As [`url_root`], with the backend's options taken from the environment the way its
/// `from_env` builder takes them: every `AWS_*` variable for `s3://`, every `AZURE_*` variable
/// for `az://`/`azure://`/`abfs://` (Azurite: `AZURE_STORAGE_USE_EMULATOR=true`, and
/// `AZURITE_BLOB_STORAGE_URL` for its address). Variables a backend does not know are ignored.
///
/// # Errors
/// As [`url_root`].
pub fn url_root_env(url: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let scheme = url
        .split_once(':')
        .map_or("", |(s, _)| s)
        .to_ascii_lowercase();
    let prefix = match scheme.as_str() {
        "s3" | "s3a" => Some("AWS_"),
        "az" | "azure" | "abfs" | "abfss" | "adl" => Some("AZURE_"),
        "gs" => Some("GOOGLE_"),
        _ => None,
    };
    let options: Vec<(String, String)> = prefix
        .map(|prefix| {
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .filter(|(k, _)| k.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    url_root(url, options)
}

/// What `account.json` holds. Fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountMeta {
    /// Format version of the account's layout.
    pub format_version: u32,
    /// The account's id.
    pub id: AccountId,
    /// Whether the infrastructure layer is on (R-B4; cannot change).
    pub double_encryption: bool,
    /// Plaintext bytes per infrastructure chunk, when double encryption is on.
    pub infra_chunk_size: Option<u32>,
    /// When it was created.
    pub created: DateTime<Utc>,
}

/// An opened storage account.
#[derive(Debug)]
pub struct StorageAccount {
    meta: AccountMeta,
    objects: Arc<dyn ObjectStore>,
}

impl StorageAccount {
    /// The account's id.
    pub fn id(&self) -> &AccountId {
        &self.meta.id
    }

    /// Its metadata.
    pub fn meta(&self) -> &AccountMeta {
        &self.meta
    }

    /// Whether double encryption is on.
    pub fn double_encryption(&self) -> bool {
        self.meta.double_encryption
    }

    /// The account's object view (segments, catalog), through the infrastructure layer when
    /// double encryption is on.
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }
}

fn meta_path(account: &AccountId) -> Path {
    account_prefix(account).join(ACCOUNT_META)
}

/// Reads an account's metadata; `None` if the account does not exist.
pub(crate) async fn read_meta(
    root: &Arc<dyn ObjectStore>,
    account: &AccountId,
) -> Result<Option<AccountMeta>, StoreError> {
    let what = format!("metadata of storage account {account}");
    let bytes = match root.get(&meta_path(account)).await {
        Ok(got) => got
            .bytes()
            .await
            .map_err(|e| StoreError::storage(&what, &e))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(StoreError::storage(&what, &e)),
    };
    let meta: AccountMeta = parse_versioned(&bytes, &what, ACCOUNT_FORMAT_VERSION)?;
    if &meta.id != account {
        return Err(StoreError::corrupt(
            what,
            format!("it names storage account {}", meta.id),
        ));
    }
    Ok(Some(meta))
}

/// How to create an account.
#[derive(Debug, Clone)]
pub(crate) struct NewAccount<'a> {
    pub(crate) id: &'a AccountId,
    pub(crate) binding: &'a KekBinding,
    pub(crate) service: &'a KekBinding,
    pub(crate) double_encryption: bool,
    pub(crate) chunk_size: u32,
    pub(crate) now: DateTime<Utc>,
}

/// Creates an account: its metadata (the claim, written with `PutMode::Create`), its account
/// key wrapped by `binding`, and, with double encryption, its infrastructure key wrapped by the
/// service key. A creation interrupted after the claim is completed by calling this again with
/// the same settings.
pub(crate) async fn create(
    root: &Arc<dyn ObjectStore>,
    keyring: &Keyring,
    new: NewAccount<'_>,
) -> Result<StorageAccount, StoreError> {
    let id = new.id;
    let meta = AccountMeta {
        format_version: ACCOUNT_FORMAT_VERSION,
        id: id.clone(),
        double_encryption: new.double_encryption,
        infra_chunk_size: new.double_encryption.then_some(new.chunk_size),
        created: new.now,
    };
    let what = format!("metadata of storage account {id}");
    let body =
        serde_json::to_vec_pretty(&meta).map_err(|e| StoreError::corrupt(&what, e.to_string()))?;
    let opts = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    let meta = match root
        .put_opts(&meta_path(id), PutPayload::from(body), opts)
        .await
    {
        Ok(_) => meta,
        Err(object_store::Error::AlreadyExists { .. }) => {
            // Resume an interrupted creation with the same settings; otherwise it exists.
            let existing = read_meta(root, id)
                .await?
                .ok_or_else(|| StoreError::AccountExists {
                    account: id.to_string(),
                })?;
            let has_key = keyring.latest_record(id).await.is_ok();
            if has_key || existing.double_encryption != new.double_encryption {
                return Err(StoreError::AccountExists {
                    account: id.to_string(),
                });
            }
            existing
        }
        Err(e) => return Err(StoreError::storage(what, &e)),
    };
    if meta.double_encryption {
        match keyring.create_infra_key(id, new.service).await {
            Ok(_) | Err(StoreError::AccountKeyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    keyring.create_aek(id, new.binding).await?;
    open_with_meta(root, keyring, meta).await
}

/// Opens an existing account, checking its double-encryption setting when one is expected.
pub(crate) async fn open(
    root: &Arc<dyn ObjectStore>,
    keyring: &Keyring,
    id: &AccountId,
    expect_double: Option<bool>,
) -> Result<StorageAccount, StoreError> {
    let meta = read_meta(root, id)
        .await?
        .ok_or_else(|| StoreError::AccountNotFound {
            account: id.to_string(),
        })?;
    if let Some(requested) = expect_double
        && requested != meta.double_encryption
    {
        return Err(StoreError::DoubleEncryptionMismatch {
            account: id.to_string(),
            stored: meta.double_encryption,
            requested,
        });
    }
    open_with_meta(root, keyring, meta).await
}

async fn open_with_meta(
    root: &Arc<dyn ObjectStore>,
    keyring: &Keyring,
    meta: AccountMeta,
) -> Result<StorageAccount, StoreError> {
    let plain: Arc<dyn ObjectStore> =
        Arc::new(PrefixStore::new(root.clone(), objects_prefix(&meta.id)));
    let objects = match (meta.double_encryption, meta.infra_chunk_size) {
        (false, _) => plain,
        (true, Some(chunk_size)) if chunk_size > 0 => {
            let key = keyring.infra_key(&meta.id).await?;
            Arc::new(
                InfraEncryptedStore::new(plain, Arc::new(key), chunk_size)
                    .with_read_cache(Arc::clone(keyring.read_caches()), meta.id.clone()),
            ) as _
        }
        (true, _) => {
            return Err(StoreError::corrupt(
                format!("metadata of storage account {}", meta.id),
                "double encryption is on but no chunk size is recorded",
            ));
        }
    };
    Ok(StorageAccount { meta, objects })
}
