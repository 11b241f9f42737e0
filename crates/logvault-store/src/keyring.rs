//! The keyring: each storage account's key (AEK), persisted only wrapped by a vault key (KEK),
//! and a cache of unwrapped account keys.
//!
//! Wrapped copies are numbered records under `<account>/keys/aek/` (see [`crate::records`]):
//! creating the key writes record 1, every rotation writes the next one, so history is kept and
//! two processes cannot lose each other's rotation. The infrastructure key of a double-encrypted
//! account is kept the same way under `<account>/keys/infra/`, wrapped by the service key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use logvault_core::SharedClock;
use logvault_crypto::{Aek, SecretBytes};
use logvault_kms::{KeyRef, KeyVault, PrincipalId, VaultErrorKind, WrappedKey};
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::error::parse_versioned;
use crate::layout::{AEK_DIR, AccountId, INFRA_DIR, account_prefix};
use crate::read_cache::{ReadCacheConfig, ReadCaches};
use crate::records::{Created, MAX_ATTEMPTS, RecordLog};

mod infra;
mod standby;

/// Format version of wrapped key records.
pub const KEY_RECORD_FORMAT_VERSION: u32 = 1;
/// The account key epoch written today. An account keeps one AEK per epoch; a new AEK (never
/// needed by rotation, which only re-wraps) would start a new epoch.
pub const CURRENT_AEK_EPOCH: u32 = 1;

/// Which vault key wraps an account's key, and on whose behalf the vault is called.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KekBinding {
    /// The key (a version, or the latest when none is given).
    pub key: KeyRef,
    /// The identity the vault checks permissions for.
    pub principal: PrincipalId,
}

/// A wrapped key record as stored (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyRecordFile {
    format_version: u32,
    account: AccountId,
    purpose: String,
    epoch: u32,
    created: DateTime<Utc>,
    binding: KekBinding,
    wrapped: WrappedKey,
    /// A key check value (a fingerprint of a subkey bound to the account and epoch): proves on
    /// unwrap that the key belongs to this account. Not secret.
    check: Option<String>,
}

/// What one wrapped copy of an account key says (never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AekRecord {
    /// The account.
    pub account: AccountId,
    /// The record's number (1 at creation, +1 per rotation).
    pub seq: u64,
    /// The account key's epoch.
    pub epoch: u32,
    /// When this copy was written.
    pub created: DateTime<Utc>,
    /// The binding it was wrapped for.
    pub binding: KekBinding,
    /// The exact key version that wrapped it.
    pub wrapped_by: KeyRef,
}

/// An account key held for a while by a writer, with the wrapped copy it came from: a write
/// admitted under it finishes with it, even if the key is revoked meanwhile (the rows after a
/// revocation are refused by the caller's gate, not by this lease). Prints no key.
#[derive(Clone)]
pub struct AccountKeyLease {
    /// The account.
    pub account: AccountId,
    /// The account key.
    pub aek: Arc<Aek>,
    /// The wrapped copy it was unwrapped from.
    pub record: AekRecord,
}

impl std::fmt::Debug for AccountKeyLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountKeyLease")
            .field("account", &self.account)
            .field("aek", &"REDACTED")
            .field("record", &self.record.seq)
            .finish()
    }
}

/// Settings of the keyring.
#[derive(Debug, Clone)]
pub struct KeyringConfig {
    /// How long an unwrapped account key is used before [`Keyring::aek`] unwraps it again
    /// (R-B5: 6 to 60 seconds). Measured on the store's clock.
    pub aek_ttl: Duration,
    /// How many account keys the cache holds at most.
    pub capacity: u64,
    /// Bounds of the caches of decrypted footers and outer-layer plaintext, wiped with the
    /// account key ([`ReadCaches`]).
    pub read_caches: ReadCacheConfig,
}

impl Default for KeyringConfig {
    fn default() -> Self {
        Self {
            aek_ttl: Duration::seconds(60),
            capacity: 10_000,
            read_caches: ReadCacheConfig::default(),
        }
    }
}

#[derive(Debug)]
struct CachedKey {
    aek: Arc<Aek>,
    record: AekRecord,
    checked_at: DateTime<Utc>,
    /// Tells one unwrap from the next, so that waiters on a load reuse its result.
    generation: u64,
}

/// The account keys of every storage account under one storage root.
#[derive(Debug)]
pub struct Keyring {
    root: Arc<dyn ObjectStore>,
    vault: Arc<dyn KeyVault>,
    clock: SharedClock,
    config: KeyringConfig,
    cache: moka::sync::Cache<AccountId, Arc<CachedKey>>,
    loading: Mutex<HashMap<AccountId, Arc<tokio::sync::Mutex<()>>>>,
    generation: AtomicU64,
    read_caches: Arc<ReadCaches>,
}

impl Keyring {
    /// A keyring over the storage root `root`, unwrapping through `vault`.
    pub fn new(
        root: Arc<dyn ObjectStore>,
        vault: Arc<dyn KeyVault>,
        clock: SharedClock,
        config: KeyringConfig,
    ) -> Self {
        let read_caches = Arc::new(ReadCaches::new(config.read_caches));
        let wiped = Arc::clone(&read_caches);
        let cache = moka::sync::Cache::builder()
            .max_capacity(config.capacity)
            // A key pushed out by the bound takes what was decrypted with it along.
            .eviction_listener(move |account: Arc<AccountId>, _, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    wiped.wipe(&account);
                }
            })
            .build();
        Self {
            root,
            vault,
            clock,
            config,
            cache,
            loading: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            read_caches,
        }
    }

    /// The caches of what queries decrypt (segment footers, outer-layer plaintext), wiped
    /// whenever an account's key is evicted.
    pub fn read_caches(&self) -> &Arc<ReadCaches> {
        &self.read_caches
    }

    /// The vault the keyring calls.
    pub fn vault(&self) -> &Arc<dyn KeyVault> {
        &self.vault
    }

    fn log(&self, account: &AccountId, dir: &str, purpose: &str) -> RecordLog {
        let mut path = account_prefix(account);
        for part in dir.split('/') {
            path = path.join(part);
        }
        RecordLog::new(
            self.root.clone(),
            path,
            ".json",
            format!("{purpose} records of storage account {account}"),
        )
    }

    fn aek_log(&self, account: &AccountId) -> RecordLog {
        self.log(account, AEK_DIR, "account key")
    }

    fn infra_log(&self, account: &AccountId) -> RecordLog {
        self.log(account, INFRA_DIR, "infrastructure key")
    }

    /// Creates the account's key: a random AEK, stored only wrapped by `binding`'s vault key.
    ///
    /// # Errors
    /// [`StoreError::AccountKeyExists`] if the account already has one (also when another process
    /// created it concurrently); [`StoreError::Vault`] if the vault refuses to wrap.
    pub async fn create_aek(
        &self,
        account: &AccountId,
        binding: &KekBinding,
    ) -> Result<AekRecord, StoreError> {
        let log = self.aek_log(account);
        ensure_absent(&log, account).await?;
        let aek = Aek::generate().map_err(|e| StoreError::crypto("account key", &e))?;
        let check = check_value(&aek, account, CURRENT_AEK_EPOCH)?;
        let file = self
            .wrap(account, "aek", binding, &aek.to_secret(), Some(check))
            .await?;
        create_first(&log, account, &file).await?;
        let record = to_record(1, &file);
        tracing::info!(%account, key = %record.wrapped_by, "created account key");
        self.insert(account, Arc::new(aek), record.clone());
        Ok(record)
    }

    /// Rotation (R-B7): unwraps the account key with its current wrapped copy and writes a new
    /// copy wrapped by `binding`. The key itself, and so every segment, is unchanged.
    ///
    /// # Errors
    /// [`StoreError::NoAccountKey`]; [`StoreError::Vault`] if the current copy cannot be
    /// unwrapped or the new key refuses to wrap; [`StoreError::Conflict`] after too many races.
    pub async fn rewrap_aek(
        &self,
        account: &AccountId,
        binding: &KekBinding,
    ) -> Result<AekRecord, StoreError> {
        let (n, file, secret) = self
            .rewrap(&self.aek_log(account), account, binding)
            .await?;
        let aek = Aek::from_secret(&secret).map_err(|e| StoreError::AccountKeyMismatch {
            account: account.to_string(),
            reason: e.to_string(),
        })?;
        let record = to_record(n, &file);
        tracing::info!(%account, key = %record.wrapped_by, seq = n, "re-wrapped account key");
        self.insert(account, Arc::new(aek), record.clone());
        Ok(record)
    }

    /// Unwraps the latest record of `log` (checking it belongs to the account), wraps the same
    /// key with `binding` and stores it as the next record, retrying on lost races. Returns the
    /// new record's number, the record, and the key.
    async fn rewrap(
        &self,
        log: &RecordLog,
        account: &AccountId,
        binding: &KekBinding,
    ) -> Result<(u64, KeyRecordFile, SecretBytes), StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let (n, current) = self.latest_file(log, account).await?;
            let mut from_standby = false;
            let secret = match self.unwrap_checked(account, &current).await {
                Ok(secret) => secret,
                // The current copy's key version was revoked: the cluster is being moved to a
                // newer version, under which a standby copy may have been made (standby.rs).
                Err(e) if e.is_revocation() && current.purpose == "aek" => {
                    match self.standby_secret(account, binding).await? {
                        Some((_, secret)) => {
                            from_standby = true;
                            secret
                        }
                        None => return Err(no_standby(account, &current, binding, e)),
                    }
                }
                Err(e) => return Err(e),
            };
            let file = self
                .wrap(
                    account,
                    &current.purpose,
                    binding,
                    &secret,
                    current.check.clone(),
                )
                .await?;
            let file = KeyRecordFile {
                epoch: current.epoch,
                ..file
            };
            if log.create(n + 1, encode(&file, log)?).await? == Created::Yes {
                if from_standby {
                    self.drop_standby(account, &binding.key).await;
                }
                return Ok((n + 1, file, secret));
            }
        }
        Err(StoreError::Conflict {
            what: log.what().to_owned(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// The account's key: from the cache while it is younger than the configured expiry,
    /// otherwise unwrapped again by the vault. If the vault is unreachable (a transient error)
    /// and a key is cached, the cached key stays in use (R-B6); if the vault says the key is
    /// revoked, the cached key is evicted and the error returned.
    ///
    /// # Errors
    /// [`StoreError::NoAccountKey`], [`StoreError::Vault`], [`StoreError::AccountKeyMismatch`],
    /// storage errors reading the wrapped copy.
    pub async fn aek(&self, account: &AccountId) -> Result<Arc<Aek>, StoreError> {
        Ok(self.account_key(account, false).await?.aek.clone())
    }

    /// Unwraps the account key again now, whatever its age in the cache, with the same rules
    /// for transient and revocation errors as [`Keyring::aek`].
    ///
    /// # Errors
    /// As [`Keyring::aek`].
    pub async fn refresh_aek(&self, account: &AccountId) -> Result<Arc<Aek>, StoreError> {
        Ok(self.account_key(account, true).await?.aek.clone())
    }

    /// A lease of the account's key and its record, taken together from one cache entry: the
    /// cached key whatever its age when there is one (the caller's gate decides whether it may
    /// still be used), otherwise unwrapped by the vault as [`Keyring::aek`] does.
    ///
    /// # Errors
    /// As [`Keyring::aek`].
    pub async fn lease(&self, account: &AccountId) -> Result<AccountKeyLease, StoreError> {
        let entry = match self.cache.get(account) {
            Some(entry) => entry,
            None => self.account_key(account, false).await?,
        };
        Ok(AccountKeyLease {
            account: account.clone(),
            aek: Arc::clone(&entry.aek),
            record: entry.record.clone(),
        })
    }

    /// The cached account key, whatever its age; never calls the vault.
    pub fn cached_aek(&self, account: &AccountId) -> Option<Arc<Aek>> {
        self.cache.get(account).map(|c| c.aek.clone())
    }

    /// [`Self::cached_aek`], or [`StoreError::AccountKeyNotCached`] naming the account: for
    /// reads of segments, whose account keys are resolved before planning.
    pub(crate) fn require_cached_aek(&self, account: &AccountId) -> Result<Arc<Aek>, StoreError> {
        self.cached_aek(account)
            .ok_or_else(|| StoreError::AccountKeyNotCached {
                account: account.to_string(),
            })
    }

    /// The wrapped copy the cached key was unwrapped from (or written as); never calls the vault.
    pub fn cached_record(&self, account: &AccountId) -> Option<AekRecord> {
        self.cache.get(account).map(|c| c.record.clone())
    }

    /// Puts an account key obtained elsewhere into the cache: the key lifecycle's local copy
    /// (kept sealed under the service key) lets a new process go on through a vault outage.
    /// `verified_at` is when the vault last unwrapped it; the entry ages from then.
    pub fn seed(
        &self,
        account: &AccountId,
        aek: Arc<Aek>,
        record: AekRecord,
        verified_at: DateTime<Utc>,
    ) {
        let entry = Arc::new(CachedKey {
            aek,
            record,
            checked_at: verified_at,
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
        });
        self.cache.insert(account.clone(), entry);
    }

    /// Drops the account's key from the cache (revocation), and with it everything the read
    /// caches hold for the account (decrypted footers, outer-layer plaintext).
    pub fn evict(&self, account: &AccountId) {
        self.cache.invalidate(account);
        self.read_caches.wipe(account);
    }

    /// The latest wrapped copy of the account's key, read from storage (no vault call).
    ///
    /// # Errors
    /// [`StoreError::NoAccountKey`] or storage errors.
    pub async fn latest_record(&self, account: &AccountId) -> Result<AekRecord, StoreError> {
        let (n, file) = self.latest_file(&self.aek_log(account), account).await?;
        Ok(to_record(n, &file))
    }

    /// Every wrapped copy of the account's key, oldest first (no vault call).
    ///
    /// # Errors
    /// Storage errors or a corrupted record.
    pub async fn history(&self, account: &AccountId) -> Result<Vec<AekRecord>, StoreError> {
        let log = self.aek_log(account);
        let mut out = Vec::new();
        for n in log.numbers().await? {
            if let Some(bytes) = log.get(n).await? {
                out.push(to_record(n, &decode(&bytes, &log, account, n)?));
            }
        }
        Ok(out)
    }

    async fn account_key(
        &self,
        account: &AccountId,
        force: bool,
    ) -> Result<Arc<CachedKey>, StoreError> {
        if !force && let Some(hit) = self.fresh(account) {
            return Ok(hit);
        }
        let lock = {
            let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
            loading.entry(account.clone()).or_default().clone()
        };
        let seen = self.cache.get(account).map(|c| c.generation);
        let _guard = lock.lock().await;
        // Someone else may have unwrapped it while we waited.
        if let Some(hit) = self.cache.get(account)
            && (Some(hit.generation) != seen || (!force && self.is_fresh(&hit)))
        {
            return Ok(hit);
        }
        match self.load(account).await {
            Ok((aek, record)) => Ok(self.insert(account, Arc::new(aek), record)),
            Err(e) if e.vault_kind() == Some(VaultErrorKind::Transient) => {
                match self.cache.get(account) {
                    Some(stale) => {
                        tracing::warn!(%account, error = %e, "vault unreachable; keeping the cached account key");
                        Ok(stale)
                    }
                    None => Err(e),
                }
            }
            Err(e) => {
                if e.is_revocation() {
                    tracing::warn!(%account, error = %e, "account key revoked; evicting it");
                    self.evict(account);
                }
                Err(e)
            }
        }
    }

    fn fresh(&self, account: &AccountId) -> Option<Arc<CachedKey>> {
        self.cache.get(account).filter(|c| self.is_fresh(c))
    }

    fn is_fresh(&self, cached: &CachedKey) -> bool {
        self.clock.now() - cached.checked_at < self.config.aek_ttl
    }

    fn insert(&self, account: &AccountId, aek: Arc<Aek>, record: AekRecord) -> Arc<CachedKey> {
        let entry = Arc::new(CachedKey {
            aek,
            record,
            checked_at: self.clock.now(),
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
        });
        self.cache.insert(account.clone(), entry.clone());
        entry
    }

    async fn load(&self, account: &AccountId) -> Result<(Aek, AekRecord), StoreError> {
        let (n, file) = self.latest_file(&self.aek_log(account), account).await?;
        let aek = self.unwrap_aek(account, &file).await?;
        Ok((aek, to_record(n, &file)))
    }

    async fn latest_file(
        &self,
        log: &RecordLog,
        account: &AccountId,
    ) -> Result<(u64, KeyRecordFile), StoreError> {
        let (n, bytes) = log
            .latest()
            .await?
            .ok_or_else(|| StoreError::NoAccountKey {
                account: account.to_string(),
            })?;
        Ok((n, decode(&bytes, log, account, n)?))
    }

    async fn unwrap_secret(
        &self,
        account: &AccountId,
        file: &KeyRecordFile,
    ) -> Result<SecretBytes, StoreError> {
        self.vault
            .unwrap_key(&file.binding.principal, &file.wrapped)
            .await
            .map_err(|e| StoreError::vault(account.as_str(), &e))
    }

    async fn unwrap_aek(
        &self,
        account: &AccountId,
        file: &KeyRecordFile,
    ) -> Result<Aek, StoreError> {
        let secret = self.unwrap_checked(account, file).await?;
        Aek::from_secret(&secret).map_err(|e| StoreError::AccountKeyMismatch {
            account: account.to_string(),
            reason: e.to_string(),
        })
    }

    /// Unwraps a record's key; for an account key, proves with the key check value that it is
    /// this account's.
    async fn unwrap_checked(
        &self,
        account: &AccountId,
        file: &KeyRecordFile,
    ) -> Result<SecretBytes, StoreError> {
        let secret = self.unwrap_secret(account, file).await?;
        if let Some(stored) = &file.check {
            let aek = Aek::from_secret(&secret).map_err(|e| StoreError::AccountKeyMismatch {
                account: account.to_string(),
                reason: e.to_string(),
            })?;
            if check_value(&aek, account, file.epoch)? != *stored {
                return Err(StoreError::AccountKeyMismatch {
                    account: account.to_string(),
                    reason: "its key check value does not match".into(),
                });
            }
        } else if file.purpose == "aek" {
            return Err(StoreError::corrupt(
                format!("account key record of storage account {account}"),
                "it has no key check value",
            ));
        }
        Ok(secret)
    }

    async fn wrap(
        &self,
        account: &AccountId,
        purpose: &str,
        binding: &KekBinding,
        secret: &SecretBytes,
        check: Option<String>,
    ) -> Result<KeyRecordFile, StoreError> {
        let wrapped = self
            .vault
            .wrap_key(&binding.principal, &binding.key, secret)
            .await
            .map_err(|e| StoreError::vault(account.as_str(), &e))?;
        Ok(KeyRecordFile {
            format_version: KEY_RECORD_FORMAT_VERSION,
            account: account.clone(),
            purpose: purpose.to_owned(),
            epoch: CURRENT_AEK_EPOCH,
            created: self.clock.now(),
            binding: binding.clone(),
            wrapped,
            check,
        })
    }
}

/// Fails if the log already has a record (the key exists).
async fn ensure_absent(log: &RecordLog, account: &AccountId) -> Result<(), StoreError> {
    match log.latest_number().await? {
        Some(_) => Err(StoreError::AccountKeyExists {
            account: account.to_string(),
        }),
        None => Ok(()),
    }
}

/// Writes record 1; losing that race means another process created the key first.
async fn create_first(
    log: &RecordLog,
    account: &AccountId,
    file: &KeyRecordFile,
) -> Result<(), StoreError> {
    match log.create(1, encode(file, log)?).await? {
        Created::Yes => Ok(()),
        Created::Lost => Err(StoreError::AccountKeyExists {
            account: account.to_string(),
        }),
    }
}

/// The error for a re-wrap whose current copy no longer unwraps and that has no standby copy
/// under the wanted version: with the way out when the key is the same and only the version
/// changes (the seed's recovery from a disabled explicit version).
fn no_standby(
    account: &AccountId,
    current: &KeyRecordFile,
    binding: &KekBinding,
    e: StoreError,
) -> StoreError {
    let held = current.wrapped.key_ref();
    let same_key = held.vault == binding.key.vault && held.name == binding.key.name;
    let (StoreError::Vault { kind, message, .. }, Some(wanted), true) =
        (&e, binding.key.version.as_deref(), same_key)
    else {
        return e;
    };
    let old = held.version.as_deref().unwrap_or("?");
    StoreError::Vault {
        account: account.to_string(),
        kind: *kind,
        message: format!(
            "the account key is wrapped only under key {}/{} version {old}, which the vault \
             refuses ({message}), and no copy under version {wanted} was made while {old} was usable \
             ({wanted} did not exist yet, or no key check ran since it was created): enable \
             version {old} again, update the cluster to version {wanted}, then disable {old}",
            held.vault, held.name
        ),
    }
}

fn check_value(aek: &Aek, account: &AccountId, epoch: u32) -> Result<String, StoreError> {
    aek.derive_purpose_key(&format!("aek-check/{account}/{epoch}"))
        .map(|k| k.fingerprint())
        .map_err(|e| StoreError::crypto(format!("account key of {account}"), &e))
}

fn to_record(seq: u64, file: &KeyRecordFile) -> AekRecord {
    AekRecord {
        account: file.account.clone(),
        seq,
        epoch: file.epoch,
        created: file.created,
        binding: file.binding.clone(),
        wrapped_by: file.wrapped.key_ref(),
    }
}

fn encode(file: &KeyRecordFile, log: &RecordLog) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec_pretty(file).map_err(|e| StoreError::corrupt(log.what(), e.to_string()))
}

fn decode(
    bytes: &[u8],
    log: &RecordLog,
    account: &AccountId,
    n: u64,
) -> Result<KeyRecordFile, StoreError> {
    let what = format!("{} (record {n})", log.what());
    let file: KeyRecordFile = parse_versioned(bytes, &what, KEY_RECORD_FORMAT_VERSION)?;
    if &file.account != account {
        return Err(StoreError::corrupt(
            what,
            format!("it belongs to storage account {}", file.account),
        ));
    }
    Ok(file)
}
