//! The engine: one opened home with its layers wired together.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use logvault_control::ControlPlane;
use logvault_core::{SharedClock, StartedClock, SystemClock};
use logvault_kms::{KeyVault, LocalVault, ServiceKey};
use logvault_store::{KekBinding, KeyringConfig, Store, StoreConfig};

use crate::keys::KeyLifecycle;
use crate::ports::EnginePorts;
use crate::{EngineError, Home};

/// How to open an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The home directory.
    pub home: PathBuf,
    /// Run as if the clock read this time when the engine opens, moving on with the wall clock
    /// from there (the CLI's `--now`); `None` for the wall clock.
    pub now: Option<DateTime<Utc>>,
    /// A clock to use instead of the wall clock (tests pass a `TestClock`).
    pub clock: Option<SharedClock>,
    /// Where data rests: an object_store URL (`file:///...`, `memory://`); default
    /// `HOME/storage` on the local filesystem (or the home's `storageUrl`).
    pub storage_url: Option<String>,
}

impl EngineOptions {
    /// Options for the home at `home`, on the wall clock.
    pub fn new(home: impl AsRef<Path>) -> Self {
        Self {
            home: home.as_ref().to_owned(),
            now: None,
            clock: None,
            storage_url: None,
        }
    }

    /// Runs the engine on `clock` (a `TestClock` in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) home: Home,
    pub(crate) clock: SharedClock,
    pub(crate) vault: Arc<LocalVault>,
    pub(crate) service_key: ServiceKey,
    pub(crate) store: Arc<Store>,
    pub(crate) control: ControlPlane,
    pub(crate) keys: KeyLifecycle,
    pub(crate) cache: logvault_cache::HotCache,
    pub(crate) writes: logvault_write::WriteContext,
}

/// An opened logvault home. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl Engine {
    /// Opens (and on first use initializes) the home named in `options`: the local vault and
    /// its service key, the store and its service account, the control plane, the key states.
    ///
    /// # Errors
    /// [`EngineError`] if the home cannot be created or its configuration is invalid, or the
    /// vault or the store cannot be opened.
    pub async fn open(options: EngineOptions) -> Result<Self, EngineError> {
        let home = Home::open_or_init_for(&options.home, options.storage_url.as_deref())?;
        let base: SharedClock = options.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let clock: SharedClock = match options.now {
            Some(now) => Arc::new(StartedClock::new(now)),
            None => base,
        };
        let vault = Arc::new(LocalVault::open(&home.dir("vault"), clock.clone())?);
        let service_key = vault.ensure_service_key()?;
        let timings = home.config().timings.clone();
        let root = match options
            .storage_url
            .as_deref()
            .or(home.config().storage_url.as_deref())
        {
            Some(url) => logvault_store::url_root(url, Vec::<(String, String)>::new())?,
            None => logvault_store::local_root(&home.dir("storage"))?,
        };
        let config = StoreConfig {
            // The key lifecycle drives unwraps every 6-60 s; the keyring's own expiry is only
            // the backstop of the revocation bound.
            keyring: KeyringConfig {
                aek_ttl: chrono::Duration::seconds(timings.revocation_bound_secs),
                ..KeyringConfig::default()
            },
            ..StoreConfig::default()
        };
        let service = KekBinding {
            key: service_key.key.clone(),
            principal: service_key.principal.clone(),
        };
        let vault_dyn: Arc<dyn KeyVault> = vault.clone();
        let store = Arc::new(Store::open(root, vault_dyn, service, config, clock.clone()).await?);
        let ports = Arc::new(EnginePorts {
            vault: vault.clone(),
            store: store.clone(),
        });
        let control =
            ControlPlane::open(&home.dir("control"), clock.clone(), timings.clone(), ports);
        let keys = KeyLifecycle::new(home.dir("keys"), timings, clock.clone());
        let cache = logvault_cache::HotCache::open(
            store.clone(),
            &home.dir("cache"),
            home.config().hot_cache.clone(),
        )
        .await?;
        let writes = logvault_write::WriteContext::new(
            store.clone(),
            cache.clone(),
            clock.clone(),
            home.dir("wal"),
        );
        writes.upgrade_layout().await?;
        let engine = Self {
            inner: Arc::new(Inner {
                home,
                clock,
                vault,
                service_key,
                store,
                control,
                keys,
                cache,
                writes,
            }),
        };
        // Per-workspace hot windows (R-F1) are kept with the workspaces.
        for ws in engine.control().list_workspaces()? {
            engine.apply_hot_window(&ws);
        }
        Ok(engine)
    }

    /// The local vault, for the owner's administrative operations (vaults, keys, permissions,
    /// identities, outages, audit).
    pub fn vault(&self) -> &Arc<LocalVault> {
        &self.inner.vault
    }

    /// The local vault as the layers above use a vault: only get, wrap and unwrap.
    pub fn key_vault(&self) -> Arc<dyn KeyVault> {
        self.inner.vault.clone()
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
    pub fn hot_cache(&self) -> &logvault_cache::HotCache {
        &self.inner.cache
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.inner.home
    }

    /// The engine's clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The current time (never earlier than the control plane's last write).
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
        let engine = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
        let service = engine.service_key().clone();
        let aek = Aek::generate().unwrap();
        let wrapped = engine
            .key_vault()
            .wrap_key(&service.principal, &service.key, &aek.to_secret())
            .await
            .unwrap();

        // Reopened (another process, a restart): the same key, no new version.
        let again = Engine::open(EngineOptions::new(dir.path())).await.unwrap();
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
