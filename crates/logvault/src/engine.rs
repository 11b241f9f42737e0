//! The engine: one opened home with its layers wired together, and the builder that injects
//! its parts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use logvault_cache::{HotCache, HotCacheConfig};
use logvault_control::ControlPlane;
use logvault_core::{SharedClock, SystemClock};
use logvault_keyvault_client::KeyVaultClient;
use logvault_kms::{KeyVault, LocalVault, ServiceKey};
use logvault_store::{KekBinding, KeyringConfig, Store, StoreConfig};
use object_store::ObjectStore;

use crate::keys::KeyLifecycle;
use crate::ports::EnginePorts;
use crate::vaults::RoutingVault;
use crate::{EngineError, Home};

/// Where an engine's data rests.
#[derive(Debug, Clone)]
enum Storage {
    /// An object_store URL (`file:///...`, `memory://`, ...).
    Url(String),
    /// An object store given by the embedder.
    Store(Arc<dyn ObjectStore>),
}

/// Builds an [`Engine`] over a home, with the parts an embedder wants to give it. Every part
/// has a default: the wall clock, the home's local vault (or the remote vault its `config.json`
/// names, `vault`), `HOME/storage` on local disk (or the
/// home's `storageUrl`), a query runtime bounded by the home's `queryMemoryBytes`, the home's
/// hot cache settings.
///
/// ```
/// # async fn demo() -> anyhow::Result<()> {
/// use std::sync::Arc;
/// let dir = tempfile::tempdir()?;
/// let engine = logvault::Engine::builder(dir.path())
///     .object_store(Arc::new(object_store::memory::InMemory::new()))
///     .query_memory_limit(256 << 20)
///     .open()
///     .await?;
/// assert!(engine.control().list_workspaces()?.is_empty());
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct EngineBuilder {
    home: PathBuf,
    clock: Option<SharedClock>,
    vault: Option<Arc<dyn KeyVault>>,
    storage: Option<Storage>,
    runtime: Option<Arc<RuntimeEnv>>,
    memory_limit: Option<usize>,
    hot_cache: Option<HotCacheConfig>,
}

impl EngineBuilder {
    /// The clock every rule reads (a `TestClock` in tests; `logvault_core::StartedClock` for a
    /// command run "as if" at another time).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The vault of customer keys (clusters' keys), instead of the home's local vault or the
    /// remote vault of its `config.json`. The service key stays in the home's local vault, which
    /// also keeps the directory of identities the permissions name.
    pub fn key_vault(mut self, vault: Arc<dyn KeyVault>) -> Self {
        self.vault = Some(vault);
        self
    }

    /// Where data rests, as an object_store URL (`az://container/prefix`, `s3://bucket/prefix`,
    /// `file:///path`, `memory://`), with credentials from the backend's standard environment
    /// variables (`AZURE_*`, `AWS_*`). Kept in a new home's configuration (`storageUrl`); an
    /// existing home whose data rests elsewhere is refused.
    pub fn storage_url(mut self, url: impl Into<String>) -> Self {
        self.storage = Some(Storage::Url(url.into()));
        self
    }

    /// Where data rests, as an object store the embedder built (any object_store backend, or
    /// a wrapper around one).
    pub fn object_store(mut self, store: Arc<dyn ObjectStore>) -> Self {
        self.storage = Some(Storage::Store(store));
        self
    }

    /// The DataFusion runtime queries run in, shared with the embedder's own work. Logvault
    /// registers its object store and encryption factory in it. Its disk manager should be
    /// disabled: a spilled query would rest on disk in clear.
    pub fn runtime_env(mut self, runtime: Arc<RuntimeEnv>) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// The memory all queries of this engine may hold together, in bytes (ignored with
    /// [`EngineBuilder::runtime_env`]).
    pub fn query_memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// The hot cache's bounds and policy, instead of the home's.
    pub fn hot_cache(mut self, config: HotCacheConfig) -> Self {
        self.hot_cache = Some(config);
        self
    }

    /// Opens (and on first use initializes) the home and wires the engine.
    ///
    /// # Errors
    /// [`EngineError`] if the home cannot be created or its configuration is invalid, or the
    /// vault, the store, the hot cache or the runtime cannot be opened.
    pub async fn open(self) -> Result<Engine, EngineError> {
        Engine::open_with(self).await
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) home: Home,
    pub(crate) clock: SharedClock,
    pub(crate) vault: Arc<LocalVault>,
    pub(crate) key_vault: Arc<dyn KeyVault>,
    pub(crate) service_key: ServiceKey,
    pub(crate) store: Arc<Store>,
    pub(crate) control: ControlPlane,
    pub(crate) keys: KeyLifecycle,
    pub(crate) cache: HotCache,
    pub(crate) writes: logvault_write::WriteContext,
    pub(crate) runtime: Arc<RuntimeEnv>,
}

/// An opened logvault home. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

/// A quarter of the memory available (the machine's, or its control group's limit; the default
/// query memory limit), 1 GiB if unknown.
fn default_memory_limit() -> usize {
    logvault_cache::available_memory_bytes()
        .and_then(|bytes| usize::try_from(bytes / 4).ok())
        .unwrap_or(1 << 30)
}

fn runtime_with_limit(limit: usize) -> Result<Arc<RuntimeEnv>, EngineError> {
    RuntimeEnvBuilder::new()
        .with_memory_limit(limit, 1.0)
        // No spilling: spill files would hold query data in clear.
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()
        .map_err(|e| EngineError::Query(e.into()))
}

impl Engine {
    /// A builder for the engine over the home at `home`.
    pub fn builder(home: impl AsRef<Path>) -> EngineBuilder {
        EngineBuilder {
            home: home.as_ref().to_owned(),
            clock: None,
            vault: None,
            storage: None,
            runtime: None,
            memory_limit: None,
            hot_cache: None,
        }
    }

    /// Opens the home at `home` with every part at its default ([`Engine::builder`]).
    ///
    /// # Errors
    /// As [`EngineBuilder::open`].
    pub async fn open(home: impl AsRef<Path>) -> Result<Self, EngineError> {
        Self::builder(home).open().await
    }

    async fn open_with(b: EngineBuilder) -> Result<Self, EngineError> {
        let url = match &b.storage {
            Some(Storage::Url(url)) => Some(url.as_str()),
            _ => None,
        };
        let home = Home::open_or_init_for(&b.home, url)?;
        let clock: SharedClock = b.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let vault = Arc::new(LocalVault::open(&home.dir("vault"), clock.clone())?);
        let service_key = vault.ensure_service_key()?;
        let customer: Option<Arc<dyn KeyVault>> = match (b.vault, &home.config().vault) {
            (Some(given), _) => Some(given),
            (None, Some(remote)) => Some(Arc::new(KeyVaultClient::new(
                &remote.relative_to(home.root()),
                clock.clone(),
            )?)),
            (None, None) => None,
        };
        let key_vault: Arc<dyn KeyVault> = match customer {
            Some(customer) => Arc::new(RoutingVault {
                service: vault.clone(),
                customer,
            }),
            None => vault.clone(),
        };
        let timings = home.config().timings.clone();
        let root = match (&b.storage, home.config().storage_url.as_deref()) {
            (Some(Storage::Store(store)), _) => Arc::clone(store),
            (Some(Storage::Url(given)), recorded) if recorded != Some(given.as_str()) => {
                return Err(EngineError::Home {
                    path: home.root().join("config.json"),
                    reason: format!(
                        "the home's data rests at {}, not at {given}: a home's storage is fixed \
                         when it is created",
                        recorded.unwrap_or("HOME/storage (local files)")
                    ),
                });
            }
            (Some(Storage::Url(url)), _) => logvault_store::url_root_env(url)?,
            (None, Some(url)) => logvault_store::url_root_env(url)?,
            (None, None) if home.config().node.is_some() => {
                return Err(EngineError::Home {
                    path: home.root().join("config.json"),
                    reason: "node: several nodes share one storage, but this home's data rests \
                             in HOME/storage: set storageUrl (docs/deploy.md)"
                        .into(),
                });
            }
            (None, None) => logvault_store::local_root(&home.dir("storage"))?,
        };
        let local_storage_dir = match (&b.storage, home.config().storage_url.as_deref()) {
            (None, None) => Some(home.dir("storage")),
            _ => None,
        };
        let config = StoreConfig {
            // The key lifecycle drives unwraps every 6-60 s; the keyring's own expiry is only
            // the backstop of the revocation bound.
            keyring: KeyringConfig {
                aek_ttl: chrono::Duration::seconds(timings.revocation_bound_secs),
                read_caches: logvault_store::ReadCacheConfig {
                    footer_bytes: home
                        .config()
                        .footer_cache_bytes
                        .unwrap_or(logvault_store::DEFAULT_FOOTER_CACHE_BYTES),
                    outer_bytes: home
                        .config()
                        .outer_cache_bytes
                        .unwrap_or(logvault_store::DEFAULT_OUTER_CACHE_BYTES),
                },
                ..KeyringConfig::default()
            },
            segment_grace: chrono::Duration::seconds(
                home.config()
                    .segment_grace_secs
                    .unwrap_or(logvault_store::DEFAULT_SEGMENT_GRACE_SECS),
            ),
            local_storage_dir,
            segments: logvault_store::SegmentOptions {
                needle_index: home.config().needle_index.unwrap_or(true),
                ..logvault_store::SegmentOptions::default()
            },
            ..StoreConfig::default()
        };
        let service = KekBinding {
            key: service_key.key.clone(),
            principal: service_key.principal.clone(),
        };
        let store =
            Arc::new(Store::open(root, key_vault.clone(), service, config, clock.clone()).await?);
        if let Some(node) = &home.config().node {
            store
                .catalog()
                .set_query_refresh(Some(std::time::Duration::from_millis(
                    node.catalog_cache_millis,
                )));
        }
        let ports = Arc::new(EnginePorts {
            vault: vault.clone(),
            key_vault: key_vault.clone(),
            store: store.clone(),
        });
        let mut control =
            ControlPlane::open(&home.dir("control"), clock.clone(), timings.clone(), ports);
        if let Some(primary) = home.config().node.as_ref().and_then(|n| n.follows.clone()) {
            control = control.following(primary);
        }
        let cache_config = b
            .hot_cache
            .unwrap_or_else(|| home.config().hot_cache.clone());
        let cache = HotCache::open(store.clone(), &home.dir("cache"), cache_config).await?;
        let keys = KeyLifecycle::new(
            home.dir("keys"),
            timings,
            control.clone(),
            store.clone(),
            cache.clone(),
            key_vault.clone(),
        );
        let writes = logvault_write::WriteContext::new(
            store.clone(),
            cache.clone(),
            clock.clone(),
            home.dir("wal"),
        );
        writes.upgrade_layout().await?;
        let runtime = match b.runtime {
            Some(runtime) => runtime,
            None => runtime_with_limit(b.memory_limit.unwrap_or_else(|| {
                home.config()
                    .query_memory_bytes
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or_else(default_memory_limit)
            }))?,
        };
        let engine = Self {
            inner: Arc::new(Inner {
                home,
                clock,
                vault,
                key_vault,
                service_key,
                store,
                control,
                keys,
                cache,
                writes,
                runtime,
            }),
        };
        // A follower node starts from the primary's latest control plane; without it (storage
        // unreachable), from its last copy.
        if engine.node().is_some_and(|n| n.follows.is_some())
            && let Err(e) = engine.sync_nodes().await
        {
            tracing::warn!(error = %e, "copying the primary node's control plane failed; using the last copy");
        }
        // Per-workspace hot windows (R-F1) are kept with the workspaces.
        for ws in engine.control().list_workspaces()? {
            engine.apply_hot_window(&ws);
        }
        Ok(engine)
    }

    /// The local vault, for the owner's administrative operations (vaults, keys, permissions,
    /// identities, outages, audit). Customer keys may live in another vault
    /// ([`EngineBuilder::key_vault`]).
    pub fn vault(&self) -> &Arc<LocalVault> {
        &self.inner.vault
    }

    /// The vault as the layers use it: only get, wrap and unwrap (the service key from the
    /// local vault, customer keys from the injected vault or the local one).
    pub fn key_vault(&self) -> Arc<dyn KeyVault> {
        self.inner.key_vault.clone()
    }

    /// The service key (MMK) and the principal to use it with.
    pub fn service_key(&self) -> &ServiceKey {
        &self.inner.service_key
    }

    /// The control plane: clusters, workspaces, links.
    pub fn control(&self) -> &ControlPlane {
        &self.inner.control
    }

    /// The encrypted store.
    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// The hot cache tier.
    pub fn hot_cache(&self) -> &HotCache {
        &self.inner.cache
    }

    /// The DataFusion runtime every query of this engine runs in (its memory pool is shared).
    pub fn runtime_env(&self) -> &Arc<RuntimeEnv> {
        &self.inner.runtime
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.inner.home
    }

    /// The engine's clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// A key for one purpose of an embedder (a server's token signatures, the sealing of its
    /// TLS private key), derived (HKDF-SHA256) from the service account's key under the label
    /// `embedder/<purpose>`, apart from every key logvault derives for itself. The same home
    /// gives the same key for the same purpose, in every process, with nothing stored.
    ///
    /// # Errors
    /// [`EngineError::Store`] if the service account's key cannot be had (the local vault).
    pub async fn purpose_key(&self, purpose: &str) -> Result<logvault_crypto::Key256, EngineError> {
        let aek = self
            .store()
            .keyring()
            .aek(&logvault_store::AccountId::service())
            .await?;
        aek.derive_purpose_key(&format!("embedder/{purpose}"))
            .map_err(|e| EngineError::State {
                what: "purpose key",
                path: self.home().dir("keys"),
                reason: format!("deriving the key for {purpose}: {e}"),
            })
    }

    /// The current time (never earlier than the control plane's last change); no I/O.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner
            .control
            .now()
            .unwrap_or_else(|_| self.inner.clock.now())
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use logvault_crypto::Aek;

    #[tokio::test]
    async fn every_home_has_a_usable_service_key_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).await.unwrap();
        let service = engine.service_key().clone();
        let aek = Aek::generate().unwrap();
        let wrapped = engine
            .key_vault()
            .wrap_key(&service.principal, &service.key, &aek.to_secret())
            .await
            .unwrap();

        // Reopened (another process, a restart): the same key, no new version.
        let again = Engine::open(dir.path()).await.unwrap();
        assert_eq!(again.service_key(), &service);
        let props = again
            .vault()
            .key_properties(&service.key.vault, &service.key.name)
            .unwrap();
        assert_eq!(props.versions.len(), 1);
        let back = again
            .key_vault()
            .unwrap_key(&service.principal, &wrapped)
            .await
            .unwrap();
        assert_eq!(
            Aek::from_secret(&back).unwrap().fingerprint(),
            aek.fingerprint()
        );
    }
}

#[cfg(test)]
mod remote_vault_config_tests {
    use super::*;

    fn write_vault(dir: &Path, vault: &str) {
        std::fs::write(
            dir.join("config.json"),
            format!(r#"{{"version": 1, "vault": {vault}}}"#),
        )
        .unwrap();
    }

    /// A home told to use a remote vault opens with it (the service key stays local, so the
    /// home still opens and wraps with it); a vault it cannot use fails the open, naming why.
    #[tokio::test]
    async fn a_home_opens_with_the_remote_vault_of_its_config_and_refuses_an_unusable_one() {
        let dir = tempfile::tempdir().unwrap();
        write_vault(
            dir.path(),
            r#"{"url": "https://127.0.0.1:1/", "credential": {"type": "token", "tokenFile": "t"}}"#,
        );
        let engine = Engine::open(dir.path()).await.unwrap();
        assert!(
            format!("{:?}", engine.key_vault()).contains("KeyVaultClient"),
            "{:?}",
            engine.key_vault()
        );
        assert_eq!(
            engine
                .inner
                .home
                .config()
                .vault
                .as_ref()
                .map(|v| v.url.as_str()),
            Some("https://127.0.0.1:1/")
        );
        for (vault, expected) in [
            (
                r#"{"url": "https://127.0.0.1:1/", "caFile": "missing.pem", "credential": {"type": "token", "tokenEnv": "T"}}"#,
                "missing.pem",
            ),
            (
                r#"{"url": "http://vault.example/", "credential": {"type": "token", "tokenEnv": "T"}}"#,
                "must be https",
            ),
            (
                r#"{"url": "https://h/", "credential": {"type": "token", "tokenEnv": "T", "tokenFile": "f"}}"#,
                "one of tokenEnv and tokenFile",
            ),
            (
                r#"{"url": "https://h/", "cafile": "x", "credential": {"type": "token", "tokenEnv": "T"}}"#,
                "cafile",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            write_vault(dir.path(), vault);
            let err = Engine::open(dir.path()).await.unwrap_err().to_string();
            assert!(err.contains(expected), "{expected} not in {err}");
        }
    }
}
