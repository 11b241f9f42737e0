//! The key lifecycle: the customer's key decides, all the time, whether a cluster's data can be
//! read and written (R-B5, R-B6, R-G1..R-G6, R-C5).
//!
//! Each cluster with a customer key is *checked* every 6 to 60 seconds (jittered; `Timings`):
//! the account key is unwrapped again by the vault on behalf of the cluster's identity. The
//! outcome moves the cluster's [`KeyState`]:
//! - success: `Active`; with autorotation (no key version configured) a newer key version is
//!   picked up first and the account key re-wrapped by it (R-G4); nothing is re-encrypted;
//! - forbidden, disabled, deleted or missing key or version, identity `None`: `Revoked`; the
//!   account key is evicted from memory, its local sealed copy deleted, the hot cache of the
//!   linked workspaces purged; ingestion drops and queries fail until a later check succeeds
//!   (R-G2, R-G3), when the hot cache is warmed again (R-F4);
//! - the vault unreachable: `Degraded`; the cached account key stays in use for the whole
//!   outage (R-B6).
//!
//! Both modes work: a long-running process runs [`Engine::spawn_key_monitor`]; a one-shot CLI
//! checks a key when it uses it and a check is due (the state, with its next check time, is
//! kept under `HOME/keys`), and otherwise uses the account key's local copy sealed under the
//! service key ([`sealed`]), so that it behaves the same across invocations.

mod sealed;
mod state;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use logvault_cache::HotCache;
use logvault_control::{Cluster, ControlPlane, IdentityType};
use logvault_core::Timings;
use logvault_kms::{KeyVault, VaultErrorKind};
use logvault_store::{AccountId, AccountKeyLease, KekBinding, Store, StoreError};

pub use state::{KeyState, KeyStatus};

use crate::{Engine, EngineError};

/// Why a workspace's data cannot be read or written now because of its cluster's key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyStateError {
    /// The customer key is revoked.
    #[error(
        "the key of cluster {cluster} ({key}{}) is revoked since {since}: {reason}; ingestion is \
         dropped and queries are refused until it is restored",
        version.as_ref().map(|v| format!(" version {v}")).unwrap_or_default()
    )]
    Revoked {
        /// The cluster.
        cluster: String,
        /// The key, `vault/key`.
        key: String,
        /// The key version the account key was last unwrapped with.
        version: Option<String>,
        /// Since when, to the second in UTC.
        since: String,
        /// What the vault answered.
        reason: String,
    },
    /// The vault cannot be reached and no account key is cached.
    #[error("the key {key} of cluster {cluster} is unavailable: {reason}")]
    Unavailable {
        /// The cluster.
        cluster: String,
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The cluster's key is not provisioned (a key update is running, or identity `None`).
    #[error("{reason}")]
    NotProvisioned {
        /// The cluster.
        cluster: String,
        /// Why.
        reason: String,
    },
}

/// The key lifecycle of one engine: which clusters' keys are usable, checked against the vault
/// every 6 to 60 seconds, and what follows from a revocation or a restore. Every read and write
/// of a cluster's data is admitted here first ([`KeyLifecycle::admit`]); writers take a lease
/// of the account key from here ([`KeyLifecycle::lease`]).
#[derive(Debug)]
pub struct KeyLifecycle {
    dir: PathBuf,
    timings: Timings,
    control: ControlPlane,
    store: Arc<Store>,
    cache: HotCache,
    vault: Arc<dyn KeyVault>,
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Bumped whenever a check in this process changes a cluster's key state: a long-lived
    /// ingestor asks its gate again then, instead of using its last decision for up to a second
    /// (of the engine's clock, which a test or an embedder may hold still).
    generation: std::sync::atomic::AtomicU64,
}

impl KeyLifecycle {
    pub(crate) fn new(
        dir: PathBuf,
        timings: Timings,
        control: ControlPlane,
        store: Arc<Store>,
        cache: HotCache,
        vault: Arc<dyn KeyVault>,
    ) -> Self {
        Self {
            dir,
            timings,
            control,
            store,
            cache,
            vault,
            locks: std::sync::Mutex::new(HashMap::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many key state changes checks in this process have made (see the field).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current time (the control plane's: never earlier than its last change).
    fn now(&self) -> DateTime<Utc> {
        self.control
            .now()
            .unwrap_or_else(|_| self.store.clock().now())
    }

    fn lock(&self, cluster: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(cluster.to_owned())
            .or_default()
            .clone()
    }

    /// The next check: the interval jittered between the configured bounds.
    fn next_check(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let (lo, hi) = (
            self.timings.key_check_min_secs,
            self.timings.key_check_max_secs,
        );
        let mut r = [0u8; 8];
        let jitter = match logvault_crypto::fill_random(&mut r) {
            Ok(()) => (u64::from_le_bytes(r) % ((hi - lo + 1).max(1) as u64)) as i64,
            Err(_) => 0,
        };
        now + Duration::seconds(lo + jitter)
    }
}

/// A failed check: the vault's failure kind (if the vault answered or was unreachable) and the
/// message.
struct CheckFailure {
    kind: Option<VaultErrorKind>,
    message: String,
}

impl From<StoreError> for CheckFailure {
    fn from(e: StoreError) -> Self {
        Self {
            kind: e.vault_kind(),
            // The vault's own words name the vault, key and version; the wrapper adds nothing
            // the key state does not say.
            message: match &e {
                StoreError::Vault { message, .. } => message.clone(),
                other => other.to_string(),
            },
        }
    }
}

impl From<logvault_kms::VaultError> for CheckFailure {
    fn from(e: logvault_kms::VaultError) -> Self {
        Self {
            kind: Some(e.kind()),
            message: e.to_string(),
        }
    }
}

fn is_revocation(kind: Option<VaultErrorKind>) -> bool {
    kind.is_some_and(VaultErrorKind::is_revocation)
}

fn cluster_account(cluster: &str) -> Result<AccountId, EngineError> {
    Ok(AccountId::cluster(cluster)?)
}

impl KeyLifecycle {
    /// The key state of `cluster`, checking the key with the vault if a check is due (or
    /// `force`). A cluster without a customer key is `None`.
    ///
    /// # Errors
    /// 404 if the cluster does not exist; local state errors. Vault failures are not errors:
    /// they are the state.
    pub async fn check(&self, cluster: &str, force: bool) -> Result<KeyStatus, EngineError> {
        let record = self.control.get_cluster(cluster)?;
        let lock = self.lock(cluster);
        let _held = lock.lock().await;
        let dir = self.dir.clone();
        let mut status = state::load(&dir, cluster)?;
        let now = self.now();
        let account = cluster_account(cluster)?;
        let keyring = self.store.keyring().clone();
        let Some(key) = record.key_ref()? else {
            status.key = None;
            status.enter(KeyState::None, None, now);
            status.key_version_in_use = None;
            state::save(&dir, &status)?;
            return Ok(status);
        };
        status.key = Some(format!("{}/{}", key.vault, key.name));
        if record.identity.kind == IdentityType::None {
            if status.key_state != KeyState::Revoked {
                self.on_revoked(&record, &account, &mut status).await?;
            }
            status.enter(
                KeyState::Revoked,
                Some(format!(
                    "cluster {cluster} has identity type None, which revokes access for good"
                )),
                now,
            );
            status.next_check = Some(self.next_check(now));
            state::save(&dir, &status)?;
            return Ok(status);
        }
        let mut due = force || status.next_check.is_none_or(|t| now >= t);
        if !due && keyring.cached_aek(&account).is_none() && status.key_state != KeyState::Revoked {
            // A new process: go on with the sealed local copy until the next check.
            due = !self.seed_from_local_copy(cluster, &account).await?;
        }
        if !due {
            return Ok(status);
        }
        let before = status.key_state;
        match self.unwrap_now(&record, &key, &account, &mut status).await {
            Ok(()) => {
                status.enter(KeyState::Active, None, now);
                status.last_unwrap = Some(now);
                status.unwraps += 1;
                status.key_version_in_use = keyring
                    .cached_record(&account)
                    .and_then(|r| r.wrapped_by.version);
                if let Some(aek) = keyring.cached_aek(&account) {
                    let purpose = self.local_copy_key().await?;
                    sealed::store(&dir, cluster, account.as_str(), &purpose, &aek, now)?;
                }
                if before == KeyState::Revoked {
                    self.on_restored(&record).await;
                }
            }
            Err(failure) if is_revocation(failure.kind) => {
                status.failures += 1;
                if before != KeyState::Revoked {
                    self.on_revoked(&record, &account, &mut status).await?;
                }
                status.enter(KeyState::Revoked, Some(failure.message), now);
            }
            Err(failure) => {
                status.failures += 1;
                if keyring.cached_aek(&account).is_none() {
                    self.seed_from_local_copy(cluster, &account).await?;
                }
                if before == KeyState::Revoked {
                    // Still revoked as far as anyone knows; the vault just cannot say.
                    status.reason = Some(format!(
                        "{} (and the vault is unreachable: {})",
                        status.reason.clone().unwrap_or_default(),
                        failure.message
                    ));
                } else {
                    status.enter(KeyState::Degraded, Some(failure.message), now);
                }
            }
        }
        status.next_check = Some(self.next_check(now));
        state::save(&dir, &status)?;
        if status.key_state != before {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        Ok(status)
    }

    /// Checks every cluster whose check is due (the body of the key monitor).
    ///
    /// # Errors
    /// Control-plane or local state errors.
    pub async fn check_all(&self, force: bool) -> Result<Vec<KeyStatus>, EngineError> {
        let mut out = Vec::new();
        for cluster in self.control.list_clusters(None, None)? {
            out.push(self.check(&cluster.name, force).await?);
        }
        Ok(out)
    }

    /// Checks now the clusters whose key is `key` of `vault` (after the key was rotated, so
    /// that autorotation picks up the new version and clusters on an explicit version keep a
    /// standby copy under it without waiting for their next check).
    ///
    /// # Errors
    /// Control-plane or local state errors.
    pub async fn check_using(&self, vault: &str, key: &str) -> Result<Vec<KeyStatus>, EngineError> {
        let mut out = Vec::new();
        for cluster in self.control.list_clusters(None, None)? {
            let uses = cluster
                .key_ref()
                .ok()
                .flatten()
                .is_some_and(|k| k.vault == vault && k.name == key);
            if uses {
                out.push(self.check(&cluster.name, true).await?);
            }
        }
        Ok(out)
    }

    /// Unwraps the cluster's account key now with the vault, re-wrapping it first when the
    /// configured key (version) or identity no longer matches the wrapped copy.
    async fn unwrap_now(
        &self,
        cluster: &Cluster,
        key: &logvault_kms::KeyRef,
        account: &AccountId,
        status: &mut KeyStatus,
    ) -> Result<(), CheckFailure> {
        let Some(principal) = cluster.identity.principal_id.clone() else {
            return Err(CheckFailure {
                kind: Some(VaultErrorKind::Forbidden),
                message: format!("cluster {} has no identity", cluster.name),
            });
        };
        let keyring = self.store.keyring();
        let record = keyring.latest_record(account).await?;
        let wanted_version = match &key.version {
            Some(v) => v.clone(),
            // Autorotation: the latest version in the vault (R-G4).
            None => self.vault.get_key(&principal, key).await?.version,
        };
        if record.wrapped_by.version.as_deref() != Some(wanted_version.as_str())
            || record.binding.principal != principal
            || record.wrapped_by.vault != key.vault
            || record.wrapped_by.name != key.name
        {
            let binding = KekBinding {
                key: logvault_kms::KeyRef {
                    version: Some(wanted_version),
                    ..key.clone()
                },
                principal: principal.clone(),
            };
            self.store.rotate_account_key(account, &binding).await?;
            status.rotations += 1;
        }
        keyring.refresh_aek(account).await?;
        if key.version.is_some()
            && let Err(e) = self.standby_copies(account, key, &principal).await
        {
            // The check itself succeeded; the copies are made at a later check.
            tracing::warn!(account = %account, error = %e.message, "could not make standby copies of the account key");
        }
        Ok(())
    }

    /// For a cluster on an explicit key version: wraps the account key (just unwrapped) under
    /// each newer enabled version of the same key that has no copy yet, so that the cluster can
    /// be moved to it even after its own version is disabled (the seed's "update new key
    /// identifier details in the cluster"). One `get` call on the key per check, one `wrapKey`
    /// per new version, once.
    async fn standby_copies(
        &self,
        account: &AccountId,
        key: &logvault_kms::KeyRef,
        principal: &logvault_kms::PrincipalId,
    ) -> Result<(), CheckFailure> {
        let props = self.vault.get_key(principal, key).await?;
        let Some(current) = props
            .versions
            .iter()
            .position(|v| Some(&v.version) == key.version.as_ref())
        else {
            return Ok(());
        };
        let newer: Vec<String> = props.versions[current + 1..]
            .iter()
            .filter(|v| v.enabled)
            .map(|v| v.version.clone())
            .collect();
        if newer.is_empty() {
            return Ok(());
        }
        self.store
            .keyring()
            .ensure_standby_copies(account, key, principal, &newer)
            .await?;
        Ok(())
    }

    /// The subkey that seals local copies of account keys (from the service account's key).
    async fn local_copy_key(&self) -> Result<logvault_crypto::Key256, EngineError> {
        let service = self.store.keyring().aek(&AccountId::service()).await?;
        service
            .derive_purpose_key(sealed::PURPOSE)
            .map_err(|e| EngineError::State {
                what: "sealed account key",
                path: self.dir.clone(),
                reason: e.to_string(),
            })
    }

    /// Seeds the keyring with the sealed local copy, if there is one; whether it did.
    async fn seed_from_local_copy(
        &self,
        cluster: &str,
        account: &AccountId,
    ) -> Result<bool, EngineError> {
        let purpose = self.local_copy_key().await?;
        let Some((aek, verified)) = sealed::load(&self.dir, cluster, account.as_str(), &purpose)?
        else {
            return Ok(false);
        };
        let record = self.store.keyring().latest_record(account).await?;
        self.store
            .keyring()
            .seed(account, Arc::new(aek), record, verified);
        Ok(true)
    }

    /// Revocation takes effect: the account key leaves memory and disk, the linked workspaces'
    /// hot cache is purged (R-F3).
    async fn on_revoked(
        &self,
        cluster: &Cluster,
        account: &AccountId,
        status: &mut KeyStatus,
    ) -> Result<(), EngineError> {
        self.store.keyring().evict(account);
        sealed::delete(&self.dir, &cluster.name)?;
        for ws in self.linked_workspaces(&cluster.name)? {
            let report = self.cache.purge_workspace(&ws);
            tracing::info!(workspace = %ws, ?report, "hot cache purged");
        }
        status.purges += 1;
        tracing::warn!(cluster = %cluster.name, "customer key revoked");
        Ok(())
    }

    /// The key is back: warm the linked workspaces' hot cache again (R-F4).
    async fn on_restored(&self, cluster: &Cluster) {
        if let Ok(workspaces) = self.linked_workspaces(&cluster.name) {
            for ws in workspaces {
                let _reload = self.cache.warm(&ws);
                tracing::info!(workspace = %ws, "hot cache reload started");
            }
        }
        tracing::info!(cluster = %cluster.name, "customer key restored");
    }

    fn linked_workspaces(&self, cluster: &str) -> Result<Vec<String>, EngineError> {
        Ok(self
            .control
            .list_workspaces()?
            .into_iter()
            .filter(|w| w.cluster.as_deref() == Some(cluster))
            .map(|w| w.name)
            .collect())
    }

    /// Admits reading (or writing) `account`'s data: its cluster's key must not be revoked,
    /// and its account key must be in memory (from the vault, or through an outage from the
    /// cache or the sealed local copy).
    pub async fn admit(&self, account: &AccountId) -> Result<(), EngineError> {
        let keyring = self.store.keyring();
        let Some(cluster) = account.cluster_name() else {
            keyring.aek(account).await?;
            return Ok(());
        };
        let status = match self.check(cluster, false).await {
            Ok(s) => s,
            // A deleted cluster's data: as readable as its key is.
            Err(EngineError::Control(e)) if e.code() == 404 => {
                keyring.aek(account).await?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let key = status.key.clone().unwrap_or_else(|| "(service key)".into());
        match status.key_state {
            KeyState::Revoked => Err(KeyStateError::Revoked {
                cluster: cluster.to_owned(),
                key,
                version: status.key_version_in_use.clone(),
                since: status
                    .since
                    .map(logvault_core::display_time)
                    .unwrap_or_default(),
                reason: status.reason.unwrap_or_default(),
            }
            .into()),
            KeyState::Degraded if keyring.cached_aek(account).is_none() => {
                Err(KeyStateError::Unavailable {
                    cluster: cluster.to_owned(),
                    key,
                    reason: status.reason.unwrap_or_default(),
                }
                .into())
            }
            KeyState::Degraded => Ok(()),
            KeyState::Active | KeyState::None => {
                if keyring.cached_aek(account).is_none() {
                    keyring.aek(account).await?;
                }
                Ok(())
            }
        }
    }

    /// The key state of every cluster, without checking.
    ///
    /// # Errors
    /// Local state errors.
    pub fn states(&self) -> Result<Vec<KeyStatus>, EngineError> {
        let mut out = Vec::new();
        for c in self.control.list_clusters(None, None)? {
            out.push(state::load(&self.dir, &c.name)?);
        }
        Ok(out)
    }

    /// Admits writing `account`'s data and leases its account key with its record, for a
    /// writer to finish with even if the key is revoked meanwhile (its gate then stops it).
    ///
    /// # Errors
    /// As [`KeyLifecycle::admit`].
    pub async fn lease(&self, account: &AccountId) -> Result<AccountKeyLease, EngineError> {
        self.admit(account).await?;
        Ok(self.store.keyring().lease(account).await?)
    }

    /// Whether `account`'s cluster is known to be revoked now (its key state, no vault call).
    pub fn is_revoked(&self, account: &AccountId) -> bool {
        account.cluster_name().is_some_and(|cluster| {
            state::load(&self.dir, cluster).is_ok_and(|s| s.key_state == KeyState::Revoked)
        })
    }
}

impl Engine {
    /// The key lifecycle.
    pub fn keys(&self) -> &KeyLifecycle {
        &self.inner.keys
    }

    /// The key state of `cluster`, checking the key with the vault if a check is due (or
    /// `force`); see [`KeyLifecycle::check`].
    ///
    /// # Errors
    /// As [`KeyLifecycle::check`].
    pub async fn check_key(&self, cluster: &str, force: bool) -> Result<KeyStatus, EngineError> {
        self.inner.keys.check(cluster, force).await
    }

    /// Checks every cluster whose check is due (or all, with `force`).
    ///
    /// # Errors
    /// As [`KeyLifecycle::check_all`].
    pub async fn check_keys(&self, force: bool) -> Result<Vec<KeyStatus>, EngineError> {
        self.inner.keys.check_all(force).await
    }

    /// Checks now the clusters on `key` of `vault`; see [`KeyLifecycle::check_using`].
    ///
    /// # Errors
    /// As [`KeyLifecycle::check_using`].
    pub async fn check_keys_using(
        &self,
        vault: &str,
        key: &str,
    ) -> Result<Vec<KeyStatus>, EngineError> {
        self.inner.keys.check_using(vault, key).await
    }

    /// The key state of every cluster, without checking.
    ///
    /// # Errors
    /// Local state errors.
    pub fn key_states(&self) -> Result<Vec<KeyStatus>, EngineError> {
        self.inner.keys.states()
    }

    pub(crate) async fn admit_account(&self, account: &AccountId) -> Result<(), EngineError> {
        self.inner.keys.admit(account).await
    }

    /// Runs the key monitor in the background until the engine is dropped everywhere: every
    /// second it checks the clusters whose check is due; every minute it also purges what is
    /// past retention (R-K1).
    pub fn spawn_key_monitor(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick: u64 = 0;
            loop {
                let Some(inner) = weak.upgrade() else { break };
                let engine = Engine { inner };
                if let Err(e) = engine.check_keys(false).await {
                    tracing::warn!(error = %e, "key check failed");
                }
                if tick.is_multiple_of(60) {
                    match engine.purge_expired().await {
                        Ok(_) => {}
                        // Another node of several runs it now.
                        Err(EngineError::Store(logvault_store::StoreError::LeaseHeld {
                            holder,
                            ..
                        })) => {
                            tracing::debug!(holder = %holder, "retention runs on another node");
                        }
                        Err(e) => tracing::warn!(error = %e, "retention purge failed"),
                    }
                    engine.hot_cache().sweep();
                }
                tick += 1;
                drop(engine);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        })
    }
}
