//! The engine: one opened home with its layers wired together.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use logvault_core::{SharedClock, SystemClock};
use logvault_kms::{KeyVault, LocalVault, ServiceKey};

use crate::{EngineError, Home};

/// How to open an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The home directory.
    pub home: PathBuf,
    /// Run as if the clock read this time (the CLI's `--now`); `None` for the wall clock.
    pub now: Option<DateTime<Utc>>,
    /// A clock to use instead of the wall clock (tests pass a `TestClock`).
    pub clock: Option<SharedClock>,
}

impl EngineOptions {
    /// Options for the home at `home`, on the wall clock.
    pub fn new(home: impl AsRef<Path>) -> Self {
        Self {
            home: home.as_ref().to_owned(),
            now: None,
            clock: None,
        }
    }

    /// Runs the engine on `clock` (a `TestClock` in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }
}

/// An opened logvault home.
#[derive(Debug, Clone)]
pub struct Engine {
    home: Home,
    clock: SharedClock,
    vault: Arc<LocalVault>,
    service_key: ServiceKey,
}

impl Engine {
    /// Opens (and on first use initializes) the home named in `options`.
    ///
    /// # Errors
    /// [`EngineError`] if the home cannot be created or its configuration is invalid, or the
    /// local vault (its master key, the service key) cannot be opened.
    pub fn open(options: EngineOptions) -> Result<Self, EngineError> {
        let home = Home::open_or_init(&options.home)?;
        let base: SharedClock = options.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let clock: SharedClock = match options.now {
            Some(now) => Arc::new(FixedClock(now)),
            None => base,
        };
        let vault = Arc::new(LocalVault::open(&home.dir("vault"), clock.clone())?);
        let service_key = vault.ensure_service_key()?;
        Ok(Self {
            home,
            clock,
            vault,
            service_key,
        })
    }

    /// The local vault, for the owner's administrative operations (vaults, keys, permissions,
    /// identities, outages, audit).
    pub fn vault(&self) -> &Arc<LocalVault> {
        &self.vault
    }

    /// The local vault as the layers above use a vault: only get, wrap and unwrap.
    pub fn key_vault(&self) -> Arc<dyn KeyVault> {
        self.vault.clone()
    }

    /// The service key (MMK) and the principal to use it with.
    pub fn service_key(&self) -> &ServiceKey {
        &self.service_key
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The engine's clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }
}

/// A clock stopped at one instant (the CLI's `--now`).
#[derive(Debug)]
struct FixedClock(DateTime<Utc>);

impl logvault_core::Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logvault_crypto::Aek;

    #[tokio::test]
    async fn every_home_has_a_usable_service_key_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineOptions::new(dir.path())).unwrap();
        let service = engine.service_key().clone();
        let aek = Aek::generate().unwrap();
        let wrapped = engine
            .key_vault()
            .wrap_key(&service.principal, &service.key, &aek.to_secret())
            .await
            .unwrap();

        // Reopened (another process, a restart): the same key, no new version.
        let again = Engine::open(EngineOptions::new(dir.path())).unwrap();
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
